//! Admin endpoints: cache statistics and purge, client keys, what the router learned. With
//! keys on, only admin keys reach them (the `auth` guard).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::access::{AccessError, Key};
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
        store: s.store.as_ref().map(|st| (st.is_healthy(), st.faults())),
        in_flight: s.access.in_flight() as u64,
    });
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// What a caller may see of the cache: an admin key (or anyone, without keys) everything; a
/// client key (should one reach here) its own scope and the shared entries.
pub(super) fn visibility(s: &AppState, caller: Option<&Caller>, key: Option<&Key>) -> Visibility {
    match (caller, key) {
        (_, Some(k)) if k.policy.is_admin() => Visibility::All,
        (Some(c), _) if s.access.keys_on() => Visibility::Owner(format!("caller:{}", c.0)),
        _ => Visibility::All,
    }
}

pub async fn cache_stats(
    State(s): State<Arc<AppState>>,
    caller: Option<Extension<Caller>>,
    key: Option<Extension<Arc<Key>>>,
) -> Json<Value> {
    match &s.cache {
        None => Json(json!({"enabled": false})),
        Some(c) => {
            let visible = visibility(&s, caller.as_deref(), key.as_deref().map(|k| &**k));
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
    key: Option<Extension<Arc<Key>>>,
    Query(q): Query<PurgeQuery>,
) -> Result<Json<Value>, ApiError> {
    let Some(c) = &s.cache else {
        return Ok(Json(json!({"deleted": 0})));
    };
    let visible = visibility(&s, caller.as_deref(), key.as_deref().map(|k| &**k));
    let deleted = c
        .purge(q.route.as_deref(), visible)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({"deleted": deleted, "route": q.route})))
}

/// `POST /admin/flush`: answers once every cache write and audit record queued before it is
/// committed (fsync'd): what a client needs to know its data is durable (`sluice bench crash`).
pub async fn flush(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    if let Some(c) = &s.cache {
        c.flush()
            .await
            .map_err(|e| ApiError::Internal(format!("cache flush: {e}")))?;
    }
    s.audit
        .flush()
        .await
        .map_err(|e| ApiError::Internal(format!("audit flush: {e}")))?;
    Ok(Json(json!({"flushed": true})))
}

/// `GET /admin/keys`: every key (never the key itself), with this period's spend.
pub async fn keys_list(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let keys = run_blocking(s, |s| s.access.list()).await?;
    Ok(Json(json!({ "keys": keys })))
}

/// `POST /admin/keys`: `{"name": "...", "role": "client", "routes": [...], ...}` (the fields
/// of a `[server.api_keys.NAME]` table); answers the new key, shown this once.
pub async fn keys_create(
    State(s): State<Arc<AppState>>,
    req: axum::extract::Request,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    /// A key's policy is a few lines of JSON.
    const MAX_BODY_BYTES: usize = 16 * 1024;
    #[derive(Deserialize)]
    struct NewKey {
        name: String,
        #[serde(flatten)]
        policy: crate::config::keys::RawKeyTable,
    }
    let bad = |message: String| ApiError::BadRequest {
        message,
        param: None,
        code: Some("invalid_request"),
    };
    let limit = MAX_BODY_BYTES.min(s.config.server.max_body_bytes);
    let body = super::request::read_body_within(&s, req.into_body(), limit).await?;
    let new: NewKey = serde_json::from_slice(&body).map_err(|e| bad(format!("{e}")))?;
    if new.policy.key.is_some() || new.policy.key_sha256.is_some() {
        return Err(bad("the gateway makes the key: send no `key`".into()));
    }
    let policy = new.policy.policy("key").map_err(bad)?;
    let name = new.name;
    let shown = name.clone();
    let key = run_blocking(s, move |s| s.access.create(&name, policy)).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({"name": shown, "key": key})),
    ))
}

/// `DELETE /admin/keys/{name}`: the key stops working at once.
pub async fn keys_revoke(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let shown = name.clone();
    run_blocking(s, move |s| s.access.revoke(&name)).await?;
    Ok(Json(json!({"revoked": shown})))
}

/// Key operations write the store (an fsync): off the async workers.
async fn run_blocking<T: Send + 'static>(
    s: Arc<AppState>,
    f: impl FnOnce(&AppState) -> Result<T, AccessError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            AccessError::NameTaken(_)
            | AccessError::BadName(_)
            | AccessError::Policy(_)
            | AccessError::ConfigKey(_) => ApiError::BadRequest {
                message: e.to_string(),
                param: None,
                code: Some("invalid_request"),
            },
            AccessError::NoSuchKey(_) => ApiError::BadRequest {
                message: e.to_string(),
                param: None,
                code: Some("key_not_found"),
            },
            AccessError::NoStore | AccessError::Store(_) => ApiError::Internal(e.to_string()),
        })
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
