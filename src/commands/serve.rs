//! `sluice serve`: load config, start the built-in simulated providers if needed, serve until
//! SIGTERM / Ctrl-C, then drain in-flight requests and streams.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::app::app;
use crate::cli::ServeArgs;
use crate::config::{Config, ProviderKind};
use crate::sim;
use crate::state::AppState;
use crate::telemetry;

/// How long shutdown waits for the last spans to reach the OTLP collector.
const TRACE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(args: ServeArgs) -> Result<(), String> {
    let mut config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let traces = telemetry::init(config.telemetry.otlp.as_ref());
    match &args.config {
        Some(p) => tracing::info!(config = %p.display(), "config loaded"),
        None => tracing::info!("no --config given: using the embedded default config"),
    }
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.server.data_dir = dir;
    }
    // Kept alive for the life of the server.
    let _mock = start_simulated_providers(&mut config).await?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    let keys = config.server.api_keys.len();
    let state = AppState::new(config).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(client_keys = keys, "sluice listening on http://{addr}");
    if keys == 0 && !addr.ip().is_loopback() {
        tracing::warn!(
            "listening on {addr} without [server] api_keys: anyone who can reach it can spend \
             the providers' credit"
        );
    }
    let served = serve(listener, state, super::shutdown_signal()).await;
    if let Some(t) = traces {
        match tokio::time::timeout(TRACE_FLUSH_TIMEOUT, t.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "last traces not exported"),
            Err(_) => {
                tracing::warn!("last traces not exported: the collector did not answer in time")
            }
        }
    }
    served.map_err(|e| e.to_string())
}

/// Serve until `shutdown` resolves, then stop accepting, let in-flight requests and streams
/// finish for up to `server.shutdown_grace`, and return.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.config.server.shutdown_grace;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let st = state.clone();
    let signalled = async move {
        shutdown.await;
        st.begin_shutdown();
        tracing::info!("shutting down: draining in-flight requests");
        let _ = tx.send(true);
    };
    let server = axum::serve(listener, app(state.clone()).into_make_service())
        .with_graceful_shutdown(signalled);
    // Auto routing learns from the prompt log in the background (when configured).
    let teaching = crate::pipeline::teach::spawn(&state);
    let mut rx2 = rx.clone();
    tokio::select! {
        r = server => r?,
        _ = async move {
            let _ = rx2.wait_for(|v| *v).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("shutdown grace period over: closing remaining connections"),
    }
    drop(rx);
    if let Some(t) = teaching {
        t.abort();
    }
    state.drain().await;
    Ok(())
}

/// Providers without their API key (and `simulate_without_key`) are served by the built-in
/// mock, started in-process on a free loopback port.
async fn start_simulated_providers(config: &mut Config) -> Result<Option<sim::MockHandle>, String> {
    if !config.providers.iter().any(|p| p.simulated) {
        return Ok(None);
    }
    let handle = sim::spawn(([127, 0, 0, 1], 0).into(), sim::MockOptions::default())
        .await
        .map_err(|e| format!("cannot start the simulated provider: {e}"))?;
    for p in config.providers.iter_mut().filter(|p| p.simulated) {
        p.base_url = match p.kind {
            ProviderKind::OpenAi => format!("{}/v1", handle.base_url()),
            ProviderKind::Anthropic => handle.base_url(),
        };
        tracing::warn!(
            provider = %p.name,
            "no API key for provider {}: answering with the built-in SIMULATED provider at {} (set its key to use the real API)",
            p.name,
            p.base_url
        );
    }
    Ok(Some(handle))
}
