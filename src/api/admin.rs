//! Admin endpoints: cache statistics and purge, what the router learned.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cache::Visibility;
use crate::error::ApiError;
use crate::guard::auth::Caller;
use crate::state::AppState;

/// Prometheus text exposition.
pub async fn metrics(State(s): State<Arc<AppState>>) -> impl axum::response::IntoResponse {
    let breakers: Vec<&'static str> = (0..s.config.targets.len())
        .map(|i| {
            s.router
                .health(crate::config::TargetId(i))
                .breaker
                .state()
                .as_str()
        })
        .collect();
    let body = s.metrics.render(&crate::telemetry::metrics::Gauges {
        breaker_states: &breakers,
        cache_entries: s.cache.as_ref().map(|c| c.len()),
        audit_dropped: s.audit.dropped(),
    });
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// What a caller may see of the cache: with client keys, its own scope and the shared entries
/// (never another caller's); without keys, everything.
pub(super) fn visibility(s: &AppState, caller: Option<&Caller>) -> Visibility {
    match caller {
        Some(c) if !s.config.server.api_keys.is_empty() => {
            Visibility::Owner(format!("caller:{}", c.0))
        }
        _ => Visibility::All,
    }
}

pub async fn cache_stats(
    State(s): State<Arc<AppState>>,
    caller: Option<Extension<Caller>>,
) -> Json<Value> {
    match &s.cache {
        None => Json(json!({"enabled": false})),
        Some(c) => {
            let visible = visibility(&s, caller.as_deref());
            let mut v = serde_json::to_value(c.stats(&visible)).unwrap_or_default();
            v["enabled"] = json!(true);
            Json(v)
        }
    }
}

#[derive(Deserialize)]
pub struct PurgeQuery {
    route: Option<String>,
}

/// `DELETE /admin/cache` (everything) or `DELETE /admin/cache?route=NAME`.
pub async fn cache_purge(
    State(s): State<Arc<AppState>>,
    caller: Option<Extension<Caller>>,
    Query(q): Query<PurgeQuery>,
) -> Result<Json<Value>, ApiError> {
    let Some(c) = &s.cache else {
        return Ok(Json(json!({"deleted": 0})));
    };
    let deleted = c
        .purge(q.route.as_deref(), visibility(&s, caller.as_deref()))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({"deleted": deleted, "route": q.route})))
}

/// `GET /admin/routing`: examples per route and source, the difficulty model's coverage, each
/// learned route's clusters, feedback and exploration.
pub async fn routing(State(s): State<Arc<AppState>>) -> Json<Value> {
    let mut v = serde_json::to_value(s.router.routing_stats()).unwrap_or_default();
    v["prompt_log_rounds"] = json!(*s.prompt_log_rounds.borrow());
    v["auto_routes"] = json!(s
        .config
        .routing
        .autos
        .iter()
        .map(|a| json!({
            "name": a.name,
            "candidates": a.candidates.iter().map(|r| &s.config.routes[r.0].name).collect::<Vec<_>>(),
            "default_route": s.config.routes[a.default_route.0].name,
            "min_confidence": a.min_confidence,
        }))
        .collect::<Vec<_>>());
    Json(v)
}
