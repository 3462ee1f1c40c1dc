//! Sluice: a self-hosted LLM gateway.
//!
//! Modules are declared in layers, top to bottom: a module imports only modules of the layers
//! below its own (`tests/it/layers.rs` checks it against the order written there). A request
//! meets them in this order: `app` (routes and layers) -> `guard` (client keys) -> `api`
//! (handlers) -> `pipeline` -> `cache` / `router` -> `provider`, with `accounting` recording it;
//! `state` is what the handlers, guard and pipeline share. The ground floor (`telemetry`,
//! `store`, `config`, `error`, `outcome`, `wire`, `chat`) is imported by the layers above it and
//! imports nothing of theirs.

// -- the binary's commands --
pub mod cli;
pub mod commands;

// -- the gateway, in request order --
pub mod access;
pub mod accounting;
pub mod api;
pub mod app;
pub mod cache;
pub mod guard;
pub mod pipeline;
pub mod provider;
pub mod router;
pub mod sim;
pub mod state;
pub mod text;

// -- ground floor --
pub mod chat;
pub mod config;
pub mod error;
pub mod outcome;
pub mod store;
pub mod telemetry;
pub mod wire;
