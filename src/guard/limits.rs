//! The gateway's cap on requests in flight (`[server] max_concurrent_requests`): one more is
//! refused at once with 503 and `Retry-After` (never queued). The health checks and `/metrics`
//! always pass, so an overloaded gateway can still be watched.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::hold;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::Dialect;

pub async fn concurrency(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    match s.access.admit_global() {
        Some(permit) => hold(next.run(req).await, permit),
        None => ApiError::Overloaded {
            retry_after_secs: 1,
        }
        .into_response_for(Dialect::of_path(req.uri().path())),
    }
}
