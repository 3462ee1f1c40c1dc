//! Accounting: prices, usage -> cost, audit records, savings (issue 4).
//!
//! - `prices`: the built-in dated price table and model-name lookup.
//! - `price_map`: prices from a map in LiteLLM's format (`[accounting] price_map`, or imported
//!   into the data directory by `sluice prices import`), with where and when it was loaded.
//! - `resolve`: which price applies to a model, field by field (config over map over table,
//!   the rest derived), and where it came from.
//! - `cost`: resolved prices per target, the cost of a request in parts (uncached input, cache
//!   reads, cache writes, output) and the cost it avoided against the route's reference model.
//! - `audit`: the audit record, its table in the store, and reading it back (also from another
//!   process while the gateway runs).
//! - `writer`: `AuditLog`, the background writer that batches records into redb off the
//!   response path, prunes past the retention, and can be flushed at shutdown.
//! - `report`: aggregation of records into per-route / per-model spend, blended cost per 1M
//!   tokens, savings, latency and error rates; `quality`: feedback scores per route, tier and
//!   target.
//! - `rollup`: the records' figures per minute, 10 minutes, hour and day, kept by the writer
//!   with the records; `dashboard`: the views the dashboard's endpoints read from them.

pub mod audit;
pub mod cost;
pub mod dashboard;
pub mod price_map;
pub mod prices;
pub mod quality;
pub mod report;
pub mod resolve;
pub mod rollup;
pub mod writer;

pub use audit::{AuditAttempt, AuditError, AuditRecord, Feedback, RoutingDetail, UsageDetail};
pub use cost::{Accountant, CostInput, CostParts, Costs, TokenUsage};
pub use price_map::{MapOrigin, PriceMap};
pub use prices::{ModelPrice, PRICES_AS_OF};
pub use resolve::{PriceBase, PriceOrigin};
pub use writer::{AuditLog, Rated};

/// Milliseconds since the Unix epoch (the audit clock).
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `2025-12-07 03:31 UTC` for unix milliseconds (proleptic Gregorian, H. Hinnant's algorithm).
pub fn format_utc_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{d:02} {h:02}:{m:02} UTC")
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::format_utc_ms(0), "1970-01-01 00:00 UTC");
        assert_eq!(
            super::format_utc_ms(1_709_251_200_000 + 3_723_000),
            "2024-03-01 01:02 UTC"
        );
        assert_eq!(
            super::format_utc_ms(951_782_400_000),
            "2000-02-29 00:00 UTC"
        );
    }
}
