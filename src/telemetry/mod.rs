//! Logging and tracing setup. Logs are structured `tracing` output on stderr (`RUST_LOG`
//! filters, `SLUICE_LOG_FORMAT=json` switches to JSON lines); with `[telemetry] otlp_endpoint`
//! set, spans are also exported over OTLP (`otlp`).
//!
//! Spans of a chat request: `request` (info: `request_id`, `route`, `status`) with the stages
//! inside it at debug level: `cache.lookup`, one `attempt` per upstream call, `cache.write_back`,
//! `audit.record`. Every log line inside a request carries its `request_id` through the
//! `request` span. The stage spans are debug so that at the default `info` level they are
//! disabled at their callsite (no span, no allocation, no formatting); the export layer
//! enables them for itself only, without turning them on in the logs.

pub mod counters;
pub mod metrics;
pub mod otlp;
pub mod routing;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::OtlpConfig;

/// The log filter when `RUST_LOG` is unset.
const DEFAULT_LOG_FILTER: &str = "info,hyper=warn,reqwest=warn,ort=warn,hnsw_rs=warn";

/// Logs only: every command but `serve`.
pub fn init_logging() {
    let _ = init(None);
}

/// Install the process-wide subscriber: the log layer, and with `otlp` the export layer (each
/// with its own filter, so `RUST_LOG` does not decide what is exported). With `otlp` this must
/// run inside a Tokio runtime; the returned handle flushes the exporter at shutdown. A failure
/// to start the exporter is logged and leaves logging on.
pub fn init(otlp: Option<&OtlpConfig>) -> Option<otlp::OtlpHandle> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let json = std::env::var("SLUICE_LOG_FORMAT").is_ok_and(|v| v == "json");
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        logs.json().with_filter(filter).boxed()
    } else {
        logs.compact().with_filter(filter).boxed()
    };
    let registry = tracing_subscriber::registry().with(logs);
    // Two shapes rather than an `Option` layer: with export off the stack is exactly the log
    // layer, whose filter keeps debug callsites disabled outright.
    let Some(cfg) = otlp else {
        let _ = registry.try_init();
        return None;
    };
    match otlp::layer(cfg) {
        Ok((export, handle)) => {
            if registry.with(export).try_init().is_ok() {
                tracing::info!(
                    url = %cfg.traces_url,
                    service = %cfg.service_name,
                    sample_ratio = cfg.sample_ratio,
                    "exporting traces over OTLP/HTTP"
                );
            }
            Some(handle)
        }
        Err(e) => {
            let _ = registry.try_init();
            tracing::error!(error = %e, "OTLP trace export could not start; continuing without it");
            None
        }
    }
}
