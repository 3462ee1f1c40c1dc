//! The gateway's HTTP surface: routes and layers, nothing else.
//!
//! A chat request passes these stages, in this order (folders of `src/` follow it):
//! 0. `guard/`: every refusal recorded; browser-origin checks; the cap on requests in flight;
//!    client keys with their roles, budgets, rates and concurrency; before any handler;
//!    administrator access to the dashboard, `/admin/` and `/metrics`.
//! 1. `api/`: parse and validate the body (OpenAI's chat completions, or Anthropic's Messages
//!    translated to the same canonical request); headers in.
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
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::api;
use crate::error::ApiError;
use crate::guard;
use crate::state::{request_id, AppState};
use crate::wire::Dialect;

pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(api::chat::completions))
        .route("/chat/completions", post(api::chat::completions))
        .route("/v1/messages", post(api::messages::create))
        .route("/messages", post(api::messages::create))
        .route(
            "/v1/messages/count_tokens",
            post(api::messages::count_tokens),
        )
        .route("/messages/count_tokens", post(api::messages::count_tokens))
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
        .merge(admin(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Request order, outermost first: request id, refusals' records, origin checks, the
        // gateway's concurrency cap, client keys (each layer wraps the ones added before it).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::auth::require_key,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::limits::concurrency,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::origin::same_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::record::refusals,
        ))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

/// The admin endpoints and the dashboard, behind the admin check (`guard::admin`).
fn admin(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/cache/stats", get(api::admin::cache_stats))
        .route("/admin/routing", get(api::admin::routing))
        .route(
            "/admin/cache",
            axum::routing::delete(api::admin::cache_purge),
        )
        .route("/admin/stats/summary", get(api::stats::summary))
        .route("/admin/stats/timeseries", get(api::stats::timeseries))
        .route("/admin/stats/breakdown", get(api::stats::breakdown))
        .route("/admin/stats/targets", get(api::stats::targets))
        .route("/admin/stats/cache", get(api::stats::cache))
        .route("/dashboard", get(api::dashboard::page))
        .route("/dashboard/app.js", get(api::dashboard::script))
        .route("/dashboard/style.css", get(api::dashboard::style))
        .route("/admin/flush", post(api::admin::flush))
        .route(
            "/admin/keys",
            get(api::admin::keys_list).post(api::admin::keys_create),
        )
        .route(
            "/admin/keys/{name}",
            axum::routing::delete(api::admin::keys_revoke),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::admin::require_admin,
        ))
}

/// 404 in the shape of the API the path belongs to.
async fn not_found(req: Request) -> Response {
    ApiError::UnknownUrl {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
    }
    .into_response_for(Dialect::of_path(req.uri().path()))
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
    .into_response_for(Dialect::of_path(req.uri().path()));
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}
