//! Serde types of upstream wire formats that differ from the canonical (OpenAI-shaped) `chat`
//! types, shared by `provider/` and the mock server.

pub mod anthropic;
