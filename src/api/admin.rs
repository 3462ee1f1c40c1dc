//! Admin endpoints: cache statistics and purge.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
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
        cache_entries: s.cache.as_ref().map(|c| c.stats().entries),
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

pub async fn cache_stats(State(s): State<Arc<AppState>>) -> Json<Value> {
    match &s.cache {
        None => Json(json!({"enabled": false})),
        Some(c) => {
            let mut v = serde_json::to_value(c.stats()).unwrap_or_default();
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
    Query(q): Query<PurgeQuery>,
) -> Result<Json<Value>, ApiError> {
    let Some(c) = &s.cache else {
        return Ok(Json(json!({"deleted": 0})));
    };
    let deleted = c
        .purge(q.route.as_deref())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({"deleted": deleted, "route": q.route})))
}
