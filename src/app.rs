//! The gateway's HTTP surface: routes and layers, nothing else.
//!
//! A chat request passes these stages, in this order (folders of `src/` follow it):
//! 0. `guard/`: client keys (`[server] api_keys`), before any handler.
//! 1. `api/`: parse and validate the OpenAI-shaped body; headers in.
//! 2. `pipeline`: the whole flow on one screen: cache lookup -> plan -> run -> write back.
//! 3. `cache/`: exact fingerprint, then semantic match inside the request's namespace.
//! 4. `router/`: route (named, or chosen from the prompt) -> tier (rules, difficulty, learned
//!    policy) -> ordered targets -> failover loop with breakers.
//! 5. `provider/`: OpenAI-compatible or Anthropic adapter, one pooled client per provider.
//! 6. `accounting/`: prices, cost, audit record, savings.
//!
//! `state` holds what they share (`AppState`, the request id).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api;
use crate::error::ApiError;
use crate::guard;
use crate::state::{request_id, AppState};

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(api::chat::completions))
        .route("/chat/completions", post(api::chat::completions))
        .route("/v1/embeddings", post(api::embeddings::create))
        .route("/embeddings", post(api::embeddings::create))
        .route("/v1/feedback", post(api::feedback::create))
        .route("/feedback", post(api::feedback::create))
        .route("/v1/models", get(api::models::list))
        .route("/v1/models/{*id}", get(api::models::get))
        .route("/models", get(api::models::list))
        .route("/models/{*id}", get(api::models::get))
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        .route("/metrics", get(api::admin::metrics))
        .route("/admin/cache/stats", get(api::admin::cache_stats))
        .route("/admin/routing", get(api::admin::routing))
        .route(
            "/admin/cache",
            axum::routing::delete(api::admin::cache_purge),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.config.server.api_keys.clone(),
            guard::auth::require_key,
        ))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::UnknownUrl {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
    }
}

async fn method_not_allowed(req: Request) -> Response {
    let mut r = ApiError::BadRequest {
        message: format!(
            "Method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
        param: None,
        code: Some("method_not_allowed"),
    }
    .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}
