//! Client keys: with keys on (`[server] api_keys`, or keys created with `sluice keys create`),
//! every request but the health checks must carry one, as OpenAI clients send theirs
//! (`Authorization: Bearer`) or as Anthropic-style clients and Azure do (`x-api-key`,
//! `api-key`). `/admin/*` and `/metrics` need an admin key (`/metrics` is open with
//! `[server] public_metrics = true`). An API call (a POST outside `/admin`) is then admitted by
//! the key's meters: budgets, request and token rates, concurrency; the key's permit is held
//! until the response body ends.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::hold;
use crate::access::{retry_after_secs, Key, Refusal};
use crate::error::ApiError;
use crate::state::AppState;

/// Paths a load balancer reads without a key.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];

/// The name of the key a request came with, for its audit record (also on the response, for the
/// record of a request refused before the pipeline).
#[derive(Clone)]
pub struct Caller(pub Arc<str>);

pub async fn require_key(State(s): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !s.access.keys_on() || OPEN_PATHS.contains(&path) {
        return next.run(req).await;
    }
    let is_metrics = path == "/metrics";
    if is_metrics && s.config.server.public_metrics {
        return next.run(req).await;
    }
    let admin_only = is_metrics || path == "/admin" || path.starts_with("/admin/");
    let key = match presented_key(req.headers()) {
        Some(k) => s.access.authenticate(k),
        None => return ApiError::Unauthorized { missing: true }.into_response(),
    };
    let Some(key) = key else {
        return ApiError::Unauthorized { missing: false }.into_response();
    };
    let caller = Caller(key.name.clone());
    if admin_only && !key.policy.is_admin() {
        let mut resp = ApiError::Forbidden {
            message: format!(
                "{} needs an admin key; key \"{}\" has the client role",
                if is_metrics { "/metrics" } else { "/admin" },
                key.name
            ),
            code: "admin_required",
        }
        .into_response();
        resp.extensions_mut().insert(caller);
        return resp;
    }
    let api_call = req.method() == Method::POST && !admin_only;
    let permit = if api_call {
        match s.access.admit(&key) {
            Ok(p) => Some(p),
            Err(r) => {
                let mut resp = refusal(&key, r).into_response();
                resp.extensions_mut().insert(caller);
                return resp;
            }
        }
    } else {
        None
    };
    req.extensions_mut().insert(caller.clone());
    req.extensions_mut().insert(key);
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(caller);
    match permit {
        Some(p) => hold(resp, p),
        None => resp,
    }
}

/// A key's refusal as the client's error.
fn refusal(key: &Key, r: Refusal) -> ApiError {
    match r {
        Refusal::Budget {
            period,
            limit_usd,
            spent_usd,
            retry_after,
        } => ApiError::BudgetExceeded {
            message: format!(
                "Budget exceeded: key \"{}\" has spent ${spent_usd:.4} of its {period} budget of ${limit_usd:.2}; no request is sent upstream until it resets",
                key.name
            ),
            retry_after_secs: retry_after_secs(retry_after),
        },
        Refusal::Rate {
            what,
            per_minute,
            retry_after,
        } => ApiError::RateLimited {
            message: format!(
                "Rate limit reached for key \"{}\": {per_minute} {what} per minute; retry after the wait in Retry-After",
                key.name
            ),
            kind: what,
            code: "rate_limit_exceeded",
            retry_after_secs: retry_after_secs(retry_after),
        },
        Refusal::Concurrency { max } => ApiError::RateLimited {
            message: format!(
                "Key \"{}\" already has {max} requests in flight (its max_concurrent)",
                key.name
            ),
            kind: "requests",
            code: "concurrency_limit_exceeded",
            retry_after_secs: 1,
        },
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
