//! Thin axum handlers: wire format in, `chat` types to the pipeline, wire format out.

pub mod admin;
pub mod chat;
pub mod embeddings;
pub mod health;
pub mod models;
pub mod sse;

use std::sync::Arc;

use crate::error::ApiError;
use crate::state::{AppState, RequestId};

/// The request body, within `max_body_bytes` (else 413) and `body_read_timeout_ms` (else 408:
/// a client that trickles its body does not hold a worker).
async fn read_body(s: &AppState, body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = s.config.server.max_body_bytes;
    let timeout = s.config.server.limits.body_read_timeout;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::RequestTimeout(timeout.as_millis() as u64)),
        Ok(Err(_)) => Err(ApiError::PayloadTooLarge(limit)),
        Ok(Ok(b)) => Ok(b),
    }
}

/// The key the request was admitted with (absent without keys).
fn key_of(req: &axum::extract::Request) -> Option<Arc<crate::access::Key>> {
    req.extensions().get::<Arc<crate::access::Key>>().cloned()
}

/// The request's id (set by the request-id middleware) and the `request` span the call runs
/// in (info level, so the id is on every log line inside it; the pipeline records the route
/// and the final status on it).
fn request_span(req: &axum::extract::Request) -> (Arc<str>, Option<Arc<str>>, tracing::Span) {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| Arc::from("unknown"));
    let caller = req
        .extensions()
        .get::<crate::guard::auth::Caller>()
        .map(|c| c.0.clone());
    let span = tracing::info_span!(
        "request",
        request_id = &*request_id,
        caller = caller.as_deref(),
        route = tracing::field::Empty,
        status = tracing::field::Empty,
        error = tracing::field::Empty,
    );
    (request_id, caller, span)
}
