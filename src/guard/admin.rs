//! Administrator access: the dashboard (`/dashboard`), everything under `/admin/`, and
//! `/metrics` (unless `[server] public_metrics = true`).
//!
//! [`is_admin`] is the one place that decides it; the key guard (`auth`) asks it before any
//! handler, and this layer on the admin routes asks it again, so a route added there cannot
//! slip past.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::access::Key;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::Dialect;

/// Paths only an administrator may use when client keys are on.
pub fn admin_path(path: &str) -> bool {
    path == "/admin"
        || path.starts_with("/admin/")
        || path == "/dashboard"
        || path.starts_with("/dashboard/")
}

/// May this caller use the admin endpoints? Without client keys everyone may (the gateway then
/// listens on loopback or a network the config vouches for, see the README); with keys, only a
/// key with the admin role.
pub fn is_admin(s: &AppState, key: Option<&Key>) -> bool {
    !s.access.keys_on() || key.is_some_and(|k| k.policy.is_admin())
}

/// The layer on the admin routes.
pub async fn require_admin(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if is_admin(&s, req.extensions().get::<Arc<Key>>().map(|k| &**k)) {
        return next.run(req).await;
    }
    ApiError::Forbidden {
        message: "This endpoint needs an admin key".into(),
        code: "admin_required",
    }
    .into_response_for(Dialect::OpenAi)
}
