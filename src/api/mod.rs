//! Thin axum handlers: wire format in, `chat` types to the pipeline, wire format out.

pub mod admin;
pub mod chat;
pub mod dashboard;
pub mod embeddings;
pub mod feedback;
pub mod health;
pub mod messages;
pub mod models;
mod request;
pub mod sse;
pub mod stats;

use std::sync::Arc;

use crate::state::RequestId;

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
