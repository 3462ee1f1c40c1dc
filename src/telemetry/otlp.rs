//! OpenTelemetry trace export over OTLP/HTTP with JSON bodies, without the OpenTelemetry SDK.
//!
//! A `tracing_subscriber::Layer` gives every span a trace id and span id (children inherit the
//! trace id and link to their parent), collects its fields as attributes and the events logged
//! inside it, and on close queues it into a bounded channel. A background task batches the
//! queue (every second, or at 512 spans) and POSTs `ExportTraceServiceRequest` JSON to
//! `{otlp_endpoint}/v1/traces`.
//!
//! Invariants: the request path never waits on export (a full queue drops the span and counts
//! it); an export failure never stops the gateway and is logged at most once a minute; the
//! layer itself never logs (a log line from inside a subscriber callback would re-enter it).
//! The batching task and the JSON mapping are in `export.rs`.

mod export;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{FilterFn, Filtered, LevelFilter};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::config::OtlpConfig;
use export::Exporter;

/// Finished spans waiting for export; more are dropped (and counted).
const QUEUE: usize = 4096;
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events kept per span (the first ones; the rest are counted in `sluice.events_dropped`).
const MAX_EVENTS: usize = 32;

/// The export layer with its filter: Sluice's own spans down to `debug` (the stage spans) and
/// its events down to `info`; nothing from dependencies.
pub type OtlpFilteredLayer<S> = Filtered<OtlpLayer, FilterFn, S>;

/// Build the layer and start its exporter task (call inside a Tokio runtime). The handle
/// flushes and reports drops; the task ends when the layer and every handle are dropped.
pub fn layer<S>(cfg: &OtlpConfig) -> Result<(OtlpFilteredLayer<S>, OtlpHandle), String>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in &cfg.headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| format!("telemetry.otlp_headers.{k}: {e}"))?;
        let mut value = reqwest::header::HeaderValue::from_str(v.expose())
            .map_err(|_| format!("telemetry.otlp_headers.{k}: not a valid header value"))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .default_headers(headers)
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let exporter = Exporter::new(
        client,
        cfg.traces_url.clone(),
        &cfg.service_name,
        dropped.clone(),
    );
    tokio::spawn(exporter.run(rx));
    let layer = OtlpLayer {
        tx: tx.clone(),
        dropped: dropped.clone(),
        sample_below: sample_threshold(cfg.sample_ratio),
    };
    Ok((layer.with_filter(filter()), OtlpHandle { tx, dropped }))
}

/// Sluice's spans at `debug` and above, its events at `info` and above. Static per callsite,
/// so `tracing` caches the answer and a disabled callsite costs one load.
fn filter() -> FilterFn {
    FilterFn::new(exported as fn(&Metadata<'_>) -> bool).with_max_level_hint(LevelFilter::DEBUG)
}

fn exported(m: &Metadata<'_>) -> bool {
    let ours = m.target() == "sluice" || m.target().starts_with("sluice::");
    let floor = if m.is_span() {
        Level::DEBUG
    } else {
        Level::INFO
    };
    ours && *m.level() <= floor
}

/// Sampled when the trace id's low 64 bits are below this (`u64::MAX` with ratio 1 samples
/// all but one id in 2^64, which is close enough; 0 samples none).
fn sample_threshold(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        u64::MAX
    } else if ratio > 0.0 {
        (ratio * u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Flush and drop counts of a running exporter.
#[derive(Clone)]
pub struct OtlpHandle {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl OtlpHandle {
    /// Export every span that closed before this call; the error says why the export failed.
    pub async fn flush(&self) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Flush(done))
            .await
            .map_err(|_| "OTLP exporter stopped".to_owned())?;
        wait.await.map_err(|_| "OTLP exporter stopped".to_owned())?
    }

    /// Spans dropped because the export queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

enum Msg {
    Span(Box<FinishedSpan>),
    Flush(oneshot::Sender<Result<(), String>>),
}

pub struct OtlpLayer {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
    sample_below: u64,
}

/// What the layer keeps in a span's registry extensions while it is open.
struct SpanState {
    trace_id: u128,
    span_id: u64,
    parent_span_id: Option<u64>,
    /// Decided at the root, inherited by every child: a trace is exported whole or not at all.
    sampled: bool,
    start_ns: u64,
    attributes: Vec<(&'static str, AttrValue)>,
    events: Vec<SpanEvent>,
    events_dropped: u32,
}

struct SpanEvent {
    time_ns: u64,
    name: String,
    attributes: Vec<(&'static str, AttrValue)>,
}

struct FinishedSpan {
    name: &'static str,
    state: SpanState,
    end_ns: u64,
}

#[derive(Debug, Clone, PartialEq)]
enum AttrValue {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // `parent()` follows explicit and contextual parents, skipping spans this layer's
        // filter disabled.
        let inherited = span.parent().and_then(|p| {
            p.extensions()
                .get::<SpanState>()
                .map(|s| (s.trace_id, s.span_id, s.sampled))
        });
        let (trace_id, parent_span_id, sampled) = match inherited {
            Some((trace, parent, sampled)) => (trace, Some(parent), sampled),
            None => {
                let trace = nonzero_u128();
                (trace, None, (trace as u64) < self.sample_below)
            }
        };
        let mut state = SpanState {
            trace_id,
            span_id: nonzero_u64(),
            parent_span_id,
            sampled,
            start_ns: if sampled { unix_nanos() } else { 0 },
            attributes: Vec::new(),
            events: Vec::new(),
            events_dropped: 0,
        };
        if sampled {
            attrs.record(&mut Attrs(&mut state.attributes));
        }
        span.extensions_mut().insert(state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(state) = ext.get_mut::<SpanState>().filter(|s| s.sampled) {
            values.record(&mut Attrs(&mut state.attributes));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut ext = span.extensions_mut();
        let Some(state) = ext.get_mut::<SpanState>().filter(|s| s.sampled) else {
            return;
        };
        if state.events.len() >= MAX_EVENTS {
            state.events_dropped += 1;
            return;
        }
        let mut attributes = vec![(
            "level",
            AttrValue::Str(event.metadata().level().as_str().to_owned()),
        )];
        event.record(&mut Attrs(&mut attributes));
        let name = match attributes.iter().position(|(k, _)| *k == "message") {
            Some(i) => match attributes.remove(i).1 {
                AttrValue::Str(s) => s,
                other => format!("{other:?}"),
            },
            None => event.metadata().name().to_owned(),
        };
        state.events.push(SpanEvent {
            time_ns: unix_nanos(),
            name,
            attributes,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(state) = span.extensions_mut().remove::<SpanState>() else {
            return;
        };
        if !state.sampled {
            return;
        }
        let finished = FinishedSpan {
            name: span.metadata().name(),
            state,
            end_ns: unix_nanos(),
        };
        // Never wait here: this runs on the request path.
        if self.tx.try_send(Msg::Span(Box::new(finished))).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Collects fields as attributes; a field recorded again replaces its earlier value.
struct Attrs<'a>(&'a mut Vec<(&'static str, AttrValue)>);

impl Attrs<'_> {
    fn put(&mut self, field: &Field, value: AttrValue) {
        let key = field.name();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
}

impl Visit for Attrs<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, AttrValue::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, AttrValue::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(
            field,
            i64::try_from(value).map_or_else(|_| AttrValue::Str(value.to_string()), AttrValue::Int),
        );
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, AttrValue::Double(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, AttrValue::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, AttrValue::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, AttrValue::Str(format!("{value:?}")));
    }
}
fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// All-zero ids are invalid in OTLP.
fn nonzero_u128() -> u128 {
    loop {
        let v = rand::random::<u128>();
        if v != 0 {
            return v;
        }
    }
}

fn nonzero_u64() -> u64 {
    loop {
        let v = rand::random::<u64>();
        if v != 0 {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_threshold_covers_the_ratio() {
        assert_eq!(sample_threshold(1.0), u64::MAX);
        assert_eq!(sample_threshold(0.0), 0);
        let half = sample_threshold(0.5);
        assert!(half > u64::MAX / 2 - 4096 && half < u64::MAX / 2 + 4096);
    }
}
