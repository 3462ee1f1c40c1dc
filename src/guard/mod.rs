//! Layers in front of the handlers that decide whether a request is let in at all (HTTP
//! concerns, so axum middleware): client keys, and administrator access.

pub mod admin;
pub mod auth;
