//! Sluice: a self-hosted LLM gateway.
//!
//! Modules are declared in the order a request meets them (see `app` for the stage list);
//! the ground floor (`chat`, `wire`, `store`, `config`, `error`, `telemetry`) is imported by the
//! layers above it and imports nothing of theirs.

pub mod app;
pub mod api;
pub mod pipeline;
pub mod cache;
pub mod router;
pub mod provider;
pub mod accounting;
pub mod commands;

// -- ground floor --
pub mod chat;
pub mod wire;
pub mod store;
pub mod config;
pub mod error;
pub mod telemetry;
