//! The dashboard's JSON, under `/admin/stats/`: each endpoint reads the audit rollups of a window
//! (`accounting::dashboard`, never the ledger) and the live state it shows (breakers, cache).
//!
//! The window: `?window=15m|1h|6h|24h|7d|30d` (any `<n>m`, `<n>h`, `<n>d` up to 400 days;
//! default 24h), or `?since=MS&until=MS` (unix ms).
//!
//! - `summary`: totals of the window, blended cost now vs the observe-mode baseline, requests by
//!   client API;
//! - `timeseries`: per bucket, spend, cost avoided, requests, errors, cache hits, latency, and
//!   each route's exact and semantic hits;
//! - `breakdown`: per route, its figures and its requests by answering target;
//! - `targets`: per target, breaker state and latency now, its attempts and failovers in the
//!   window, and the latest failovers;
//! - `cache`: the most-hit cache entries (with a prompt preview only where prompt logging is on).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::admin::visibility;
use crate::accounting::dashboard::{self, View, Window};
use crate::accounting::unix_ms_now;
use crate::config::TargetId;
use crate::error::ApiError;
use crate::guard::auth::Caller;
use crate::state::AppState;

/// The longest window a query may ask for.
const MAX_SPAN_MS: u64 = 400 * 24 * 3_600_000;
const DEFAULT_SPAN_MS: u64 = 24 * 3_600_000;
/// Failovers listed by `targets`.
const RECENT_FAILOVERS: usize = 20;
/// Entries listed by `cache`.
const TOP_ENTRIES: usize = 10;

#[derive(Debug, Default, Deserialize)]
pub struct WindowQuery {
    window: Option<String>,
    since: Option<u64>,
    until: Option<u64>,
}

impl WindowQuery {
    fn window(&self, now_ms: u64) -> Result<Window, ApiError> {
        let bad = |message: String| ApiError::BadRequest {
            message,
            param: None,
            code: Some("invalid_window"),
        };
        if let Some(since) = self.since {
            let until = self.until.unwrap_or(now_ms);
            if since >= until || until - since > MAX_SPAN_MS {
                return Err(bad(format!(
                    "since ({since}) must be before until ({until}), at most 400 days apart"
                )));
            }
            return Ok(Window {
                since_ms: since,
                until_ms: until,
            });
        }
        let span = match self.window.as_deref() {
            None => DEFAULT_SPAN_MS,
            Some(w) => parse_span(w).ok_or_else(|| {
                bad(format!(
                    "window: `{w}` is not a span such as 15m, 1h, 24h or 7d (at most 400d)"
                ))
            })?,
        };
        Ok(Window::last(span, now_ms))
    }
}

/// `15m`, `6h`, `7d` in ms.
fn parse_span(w: &str) -> Option<u64> {
    let (n, unit) = w.trim().split_at(w.trim().len().checked_sub(1)?);
    let n: u64 = n.parse().ok().filter(|n| *n > 0)?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).filter(|ms| *ms <= MAX_SPAN_MS)
}

/// The window's view, read off the async runtime.
async fn read_view(
    s: &Arc<AppState>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<View, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest {
        message: format!("bad query: {e}"),
        param: None,
        code: Some("invalid_window"),
    })?;
    let now = unix_ms_now();
    let w = q.window(now)?;
    let s = s.clone();
    tokio::task::spawn_blocking(move || match s.audit.database() {
        Some(Ok(db)) => {
            dashboard::view(&*db, w, now).map_err(|e| ApiError::Internal(e.to_string()))
        }
        Some(Err(e)) => Err(ApiError::Internal(e)),
        None => Ok(dashboard::empty_view(w, now)),
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

fn window_json(s: &AppState, v: &View) -> Value {
    json!({
        "since_ms": v.since_ms, "until_ms": v.until_ms, "step_ms": v.step_ms,
        "resolution": v.resolution, "rows_read": v.rows_read,
        "audit_enabled": s.audit.is_enabled(),
    })
}

pub async fn summary(
    State(s): State<Arc<AppState>>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let v = read_view(&s, q).await?;
    Ok(Json(json!({
        "window": window_json(&s, &v),
        "total": v.total,
        "blended": v.blended,
        "apis": v.apis,
    })))
}

pub async fn timeseries(
    State(s): State<Arc<AppState>>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let v = read_view(&s, q).await?;
    let routes: Vec<Value> = v
        .routes
        .iter()
        .map(|r| json!({"route": r.route, "hits": r.hits}))
        .collect();
    Ok(Json(json!({
        "window": window_json(&s, &v),
        "points": v.points,
        "routes": routes,
    })))
}

pub async fn breakdown(
    State(s): State<Arc<AppState>>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let v = read_view(&s, q).await?;
    let routes: Vec<Value> = v
        .routes
        .iter()
        .map(|r| {
            let mut row = serde_json::to_value(&r.figures).unwrap_or_default();
            row["route"] = json!(r.route);
            row["answered_by"] = json!(r.answered_by);
            row
        })
        .collect();
    Ok(Json(
        json!({"window": window_json(&s, &v), "routes": routes}),
    ))
}

pub async fn targets(
    State(s): State<Arc<AppState>>,
    q: Result<Query<WindowQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let v = read_view(&s, q).await?;
    let st = s.clone();
    let failovers = tokio::task::spawn_blocking(move || match st.audit.database() {
        Some(Ok(db)) => dashboard::recent_failovers(&*db, RECENT_FAILOVERS)
            .map_err(|e| ApiError::Internal(e.to_string())),
        Some(Err(e)) => Err(ApiError::Internal(e)),
        None => Ok(Vec::new()),
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    // Every configured target (live state), with the window's figures where it has any; a
    // target in the records but no longer configured keeps its figures.
    let mut rows: Vec<Value> = (0..s.config.targets.len())
        .map(|i| {
            let name = &s.config.target(TargetId(i)).name;
            let health = s.router.health(TargetId(i));
            let mut row = match v.targets.iter().find(|t| &t.target == name) {
                Some(t) => serde_json::to_value(t).unwrap_or_default(),
                None => json!({"target": name, "answered": 0, "spend_usd": 0.0, "attempts": 0,
                    "attempt_failures": 0, "failed_over_from": 0}),
            };
            row["breaker"] = json!(health.breaker.state().as_str());
            row["latency_ewma_ms"] = json!(health.latency_ms());
            row
        })
        .collect();
    for t in &v.targets {
        if !rows.iter().any(|r| r["target"] == t.target.as_str()) {
            let mut row = serde_json::to_value(t).unwrap_or_default();
            row["breaker"] = Value::Null;
            rows.push(row);
        }
    }
    let failovers: Vec<Value> = failovers
        .into_iter()
        .map(|(time_ms, e)| {
            let mut row = serde_json::to_value(e).unwrap_or_default();
            row["time_ms"] = json!(time_ms);
            row
        })
        .collect();
    Ok(Json(json!({
        "window": window_json(&s, &v),
        "targets": rows,
        "failovers": failovers,
    })))
}

pub async fn cache(
    State(s): State<Arc<AppState>>,
    caller: Option<Extension<Caller>>,
    key: Option<Extension<Arc<crate::access::Key>>>,
) -> Result<Json<Value>, ApiError> {
    let Some(c) = s.cache.clone() else {
        return Ok(Json(json!({"enabled": false, "entries": []})));
    };
    let visible = visibility(&s, caller.as_deref(), key.as_deref().map(|k| &**k));
    let prompts = s.config.accounting.log_prompts;
    let entries = tokio::task::spawn_blocking(move || c.most_hit(TOP_ENTRIES, &visible, prompts))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json!({
        "enabled": true,
        "prompts_logged": prompts,
        "entries": entries,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_are_bounded() {
        assert_eq!(parse_span("15m"), Some(900_000));
        assert_eq!(parse_span("24h"), Some(86_400_000));
        assert_eq!(parse_span("400d"), Some(MAX_SPAN_MS));
        for bad in ["", "h", "0h", "401d", "5x", "-1h", "99999999999999999999d"] {
            assert_eq!(parse_span(bad), None, "{bad}");
        }
        let q = WindowQuery {
            since: Some(10),
            until: Some(5),
            ..WindowQuery::default()
        };
        assert!(q.window(100).is_err());
    }
}
