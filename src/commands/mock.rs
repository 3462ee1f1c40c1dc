//! `sluice mock`: the simulated provider (`crate::sim`) alone, until Ctrl-C or SIGTERM.

use crate::cli::MockArgs;
use crate::sim::{self, MockOptions};

pub async fn run(args: MockArgs) -> Result<(), String> {
    let opts = MockOptions {
        latency_ms: args.latency_ms,
        token_pace_ms: args.token_pace_ms,
    };
    let handle = sim::spawn(args.listen, opts)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    tracing::info!("mock provider listening on {}", handle.base_url());
    super::shutdown_signal().await;
    tracing::info!("mock provider shutting down");
    handle.shutdown().await;
    Ok(())
}
