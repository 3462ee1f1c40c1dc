//! Thin axum handlers: wire format in, `chat` types to the pipeline, wire format out.

pub mod admin;
pub mod chat;
pub mod embeddings;
pub mod health;
pub mod models;
mod sse;
