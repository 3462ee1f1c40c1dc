//! What the chat endpoints (OpenAI's and Anthropic's) read besides the body's own fields: the
//! body within the size limit, and the gateway's request headers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};

use crate::config::SIM_FAULT_HEADER;
use crate::error::ApiError;
use crate::pipeline::feedback::Given;
use crate::pipeline::{CacheControl, RequestCtx};
use crate::state::AppState;
use crate::wire::Dialect;

/// Longest `x-mock-fault` value passed on (it only ever reaches the built-in simulator).
const MAX_SIM_FAULTS_BYTES: usize = 1024;

/// The whole body, refused past `[server] max_body_bytes` (413), when it does not arrive within
/// `body_read_timeout_ms` (408: a client that trickles its body does not hold a worker), and
/// while shutting down.
pub(super) async fn read_body(s: &AppState, body: Body) -> Result<Bytes, ApiError> {
    read_body_within(s, body, s.config.server.max_body_bytes).await
}

/// [`read_body`] with an endpoint's own (smaller) size limit.
pub(super) async fn read_body_within(
    s: &AppState,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if s.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    let timeout = s.config.server.limits.body_read_timeout;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::RequestTimeout(timeout.as_millis() as u64)),
        Ok(Err(_)) => Err(ApiError::PayloadTooLarge(limit)),
        Ok(Ok(b)) => Ok(b),
    }
}

/// The key the request was admitted with (absent without keys).
pub(super) fn key_of(req: &axum::extract::Request) -> Option<Arc<crate::access::Key>> {
    req.extensions().get::<Arc<crate::access::Key>>().cloned()
}

/// The gateway's headers of a chat request.
pub(super) struct Common {
    cache: CacheControl,
    route_hint: Option<String>,
    tier_hint: Option<String>,
    sim_faults: Option<String>,
    timeout: Option<Duration>,
    /// `x-sluice-feedback`: scores of earlier requests.
    feedback: Vec<Given>,
}

impl Common {
    /// `x-sluice-cache` and `Cache-Control`, `x-sluice-route`, `x-sluice-tier`,
    /// `x-sluice-timeout-ms`, `x-mock-fault`, `x-sluice-feedback`.
    pub(super) fn of(h: &HeaderMap) -> Result<Common, ApiError> {
        Ok(Common {
            cache: cache_control(h)?,
            route_hint: header_str(h, "x-sluice-route"),
            tier_hint: header_str(h, "x-sluice-tier"),
            sim_faults: header_str(h, SIM_FAULT_HEADER).filter(|v| v.len() <= MAX_SIM_FAULTS_BYTES),
            timeout: client_timeout(h)?,
            feedback: super::feedback::from_header(h)?,
        })
    }

    /// The scores of earlier requests this one carries (`x-sluice-feedback`).
    pub(super) fn take_feedback(&mut self) -> Vec<Given> {
        std::mem::take(&mut self.feedback)
    }

    /// The pipeline's context of the request.
    pub(super) fn ctx(
        self,
        request_id: Arc<str>,
        caller: Option<Arc<str>>,
        started: Instant,
        span: tracing::Span,
        dialect: Dialect,
        key: Option<Arc<crate::access::Key>>,
    ) -> RequestCtx {
        RequestCtx {
            request_id,
            caller,
            cache: self.cache,
            route_hint: self.route_hint,
            tier_hint: self.tier_hint,
            started,
            span,
            sim_faults: self.sim_faults,
            timeout: self.timeout,
            dialect,
            key,
        }
    }
}

/// `x-sluice-timeout-ms: N`: the client's own deadline for the whole request (the route's
/// `total_timeout_ms` still caps it). Failover plans within it, and what it cuts short is not
/// held against a target.
fn client_timeout(h: &HeaderMap) -> Result<Option<Duration>, ApiError> {
    let Some(t) = header_str(h, "x-sluice-timeout-ms") else {
        return Ok(None);
    };
    match t.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(ApiError::BadRequest {
            message: format!("x-sluice-timeout-ms: `{t}` is not a positive number of milliseconds"),
            param: None,
            code: Some("invalid_header"),
        }),
    }
}

/// `x-sluice-cache: bypass | refresh | only-if-cached`, `Cache-Control: no-store | no-cache`,
/// `x-sluice-cache-ttl: SECONDS`.
fn cache_control(h: &HeaderMap) -> Result<CacheControl, ApiError> {
    let mut c = CacheControl::default();
    match header_str(h, "x-sluice-cache").as_deref() {
        None => {}
        Some("bypass") => {
            c.read = false;
            c.write = false;
        }
        Some("refresh") => c.read = false,
        Some("only-if-cached") => c.only_if_cached = true,
        Some(other) => {
            return Err(ApiError::BadRequest {
                message: format!(
                    "x-sluice-cache: unknown value `{other}` (expected bypass, refresh or only-if-cached)"
                ),
                param: None,
                code: Some("invalid_header"),
            })
        }
    }
    for v in h.get_all(header::CACHE_CONTROL) {
        for d in v.to_str().unwrap_or("").split(',').map(str::trim) {
            if d.eq_ignore_ascii_case("no-store") {
                c.write = false;
            } else if d.eq_ignore_ascii_case("no-cache") {
                c.read = false;
            } else if d.eq_ignore_ascii_case("only-if-cached") {
                c.only_if_cached = true;
            }
        }
    }
    if let Some(t) = header_str(h, "x-sluice-cache-ttl") {
        let secs: u64 = t.parse().map_err(|_| ApiError::BadRequest {
            message: format!("x-sluice-cache-ttl: `{t}` is not a number of seconds"),
            param: None,
            code: Some("invalid_header"),
        })?;
        c.ttl = Some(Duration::from_secs(secs));
    }
    Ok(c)
}

pub(super) fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
