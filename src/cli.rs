//! Command-line interface (clap structs only; `main.rs` dispatches).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Self-hosted LLM gateway: one OpenAI-compatible endpoint with semantic cache, cost-tiered routing, failover and audit"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Run the mock LLM provider (OpenAI- and Anthropic-compatible) for tests and benchmarks.
    Mock(MockArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Inspect or empty the cache of a data directory (works while the gateway runs: read-only
    /// stats; purge needs the gateway stopped, or use DELETE /admin/cache).
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Spend, tokens, blended cost per 1M tokens, cache hit rate and latency from the audit store.
    Report(crate::commands::report::ReportArgs),
    /// Raw audit records.
    #[command(subcommand)]
    Audit(crate::commands::report::AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries, bytes and hits per route.
    Stats {
        /// The data directory (holds sluice.redb).
        #[arg(long, alias = "data-dir", default_value = "data")]
        data: PathBuf,
    },
    /// Delete cached entries: all, or one route's.
    Purge {
        #[arg(long, alias = "data-dir", default_value = "data")]
        data: PathBuf,
        #[arg(long)]
        route: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Cache quality on a labelled workload: hits, precision, recall and false hits per threshold.
    Cache(crate::commands::bench_cache::CacheArgs),
    /// Gateway overhead against calling the mock directly, interleaved in one run.
    Load(crate::commands::bench_load::LoadArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Config file (TOML). Without it, the embedded default config is used.
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: server.listen from the config, 127.0.0.1:8080]
    #[arg(long, env = "SLUICE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the cache and audit database [default: server.data_dir, ./data]
    #[arg(long, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,
    /// Delay before response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Delay between streamed tokens, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub token_pace_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and print a summary of its routes; exit 1 with every problem found.
    Check {
        /// The config file to check.
        path: PathBuf,
    },
    /// Print the embedded default config.
    Default,
}
