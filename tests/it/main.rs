//! Integration tests: one binary, one module per area, real HTTP on 127.0.0.1.

mod audit;
mod audit_http;
mod bench_cache;
mod cache;
mod cache_http;
mod conformance;
mod failover;
mod gateway;
mod layers;
mod mock;
mod mock_faults;
mod otlp;
mod support;
