//! Administrator access: the dashboard (`/dashboard`) and everything under `/admin/`.
//!
//! [`is_admin`] is the one place that decides it. Today a key is a key: with client keys on, any
//! of them opens the admin endpoints (the key guard has already refused requests without one);
//! when keys get roles, it becomes `role == admin`.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::Caller;
use crate::config::ApiKeys;
use crate::error::ApiError;
use crate::wire::Dialect;

/// May this caller use the admin endpoints? Without client keys everyone may (the gateway then
/// listens on a trusted network, see the README); with keys, a caller that presented one.
pub fn is_admin(keys: &ApiKeys, caller: Option<&Caller>) -> bool {
    keys.is_empty() || caller.is_some()
}

/// The layer on the admin routes.
pub async fn require_admin(State(keys): State<ApiKeys>, req: Request, next: Next) -> Response {
    if is_admin(&keys, req.extensions().get::<Caller>()) {
        return next.run(req).await;
    }
    ApiError::Forbidden("This endpoint needs an administrator key".into())
        .into_response_for(Dialect::OpenAi)
}
