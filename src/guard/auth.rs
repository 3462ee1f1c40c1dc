//! Client authentication: with `[server] api_keys` set, every request but the health checks and
//! `/metrics` must carry one of the keys, as OpenAI clients send theirs (`Authorization: Bearer`)
//! or as Anthropic-style clients and Azure do (`x-api-key`, `api-key`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::ApiKeys;
use crate::error::ApiError;

/// Paths a load balancer or a Prometheus scraper reads without a key.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The name of the key a request came with (`[server] api_keys`), for its audit record.
#[derive(Clone)]
pub struct Caller(pub Arc<str>);

pub async fn require_key(State(keys): State<ApiKeys>, mut req: Request, next: Next) -> Response {
    if keys.is_empty() || OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let caller = match presented_key(req.headers()) {
        Some(k) => keys.caller(k).cloned(),
        None => return ApiError::Unauthorized { missing: true }.into_response(),
    };
    match caller {
        Some(name) => {
            req.extensions_mut().insert(Caller(name));
            next.run(req).await
        }
        None => ApiError::Unauthorized { missing: false }.into_response(),
    }
}

fn presented_key(h: &HeaderMap) -> Option<&str> {
    let bearer = h
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        });
    bearer
        .or_else(|| h.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| h.get("api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}
