use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::state::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: accepting new work (503 while draining for shutdown, and while the store is out
/// of service after a storage fault: requests are still served, uncached and unaudited).
pub async fn readyz(State(s): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    if s.is_shutting_down() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
    } else if let Some(reason) = s.store_fault() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "store": reason})),
        )
    } else {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    }
}
