//! Sluice: a self-hosted LLM gateway.
//!
//! Modules are declared in the order a request meets them (see `app` for the stage list);
//! the ground floor (`chat`, `wire`, `store`, `config`, `error`, `telemetry`) is imported by the
//! layers above it and imports nothing of theirs.

pub mod accounting;
pub mod api;
pub mod app;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod guard;
pub mod pipeline;
pub mod provider;
pub mod router;

// -- ground floor --
pub mod chat;
pub mod config;
pub mod error;
pub mod store;
pub mod telemetry;
pub mod wire;
