//! Integration tests: one binary, one module per area, real HTTP on 127.0.0.1.

mod audit;
mod audit_http;
mod bench_cache;
mod bench_failover;
mod browser;
mod cache;
mod cache_http;
mod cache_trust;
mod conformance;
mod dashboard;
mod deadlines;
mod failover;
mod gateway;
mod layers;
mod messages;
mod mock;
mod mock_faults;
mod otlp;
mod resume;
mod routing;
mod support;
mod usage_cost;
