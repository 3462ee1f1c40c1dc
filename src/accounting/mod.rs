//! Accounting: prices, usage -> cost, audit records, savings (issue 4).
//!
//! - `prices`: the built-in dated price table and model-name lookup.
//! - `cost`: resolved prices per target (config overrides the table), the cost of a request and
//!   the cost it avoided against the route's reference model.
//! - `audit`: the audit record, its table in the store, and reading it back (also from another
//!   process while the gateway runs).
//! - `writer`: `AuditLog`, the background writer that batches records into redb off the
//!   response path, prunes past the retention, and can be flushed at shutdown.
//! - `report`: aggregation of records into per-route / per-model spend, blended cost per 1M
//!   tokens, savings, latency and error rates.

pub mod audit;
pub mod cost;
pub mod prices;
pub mod report;
pub mod writer;

pub use audit::{AuditAttempt, AuditRecord};
pub use cost::{Accountant, CostInput, Costs, TokenUsage};
pub use prices::{ModelPrice, PRICES_AS_OF};
pub use writer::AuditLog;

/// Milliseconds since the Unix epoch (the audit clock).
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
