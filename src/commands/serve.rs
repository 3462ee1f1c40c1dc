//! `sluice serve`: load config, start the built-in simulated providers if needed, serve until
//! SIGTERM / Ctrl-C, then drain in-flight requests and streams.
//!
//! The accept loop is Sluice's own (`conn.rs`) so that every connection has limits: a cap on
//! open connections, header / keep-alive timeouts and a write timeout (see `conn.rs`).

mod conn;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    let allow_open = config.server.allow_open_listen;
    let state = AppState::new(config).await?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if !state.access.keys_on() && !addr.ip().is_loopback() {
        if !allow_open {
            return Err(format!(
                "refusing to listen on {addr} without client keys: anyone who can reach it could \
                 spend the providers' credit and read other teams' cached answers. Add \
                 [server] api_keys (or `sluice keys create`), listen on 127.0.0.1, or set \
                 [server] allow_open_listen = true"
            ));
        }
        tracing::warn!(
            "listening on {addr} without client keys (allow_open_listen): anyone who can reach \
             it can spend the providers' credit"
        );
    }
    tracing::info!(
        client_keys = state.access.keys_on(),
        "sluice listening on http://{addr}"
    );
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
    let limits = Arc::new(state.config.server.limits.clone());
    let router = app(state.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let kill = tokio_util::sync::CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    let open = Arc::new(AtomicUsize::new(0));
    // Auto routing learns from the prompt log in the background (when configured).
    let teaching = crate::pipeline::teach::spawn(&state);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = conn::Slot::take(&open);
        if slot.count() > limits.max_connections {
            tracker.spawn(conn::refuse(stream, slot));
            continue;
        }
        tracker.spawn(conn::serve(
            stream,
            slot,
            router.clone(),
            limits.clone(),
            stop_rx.clone(),
            kill.clone(),
        ));
    }
    state.begin_shutdown();
    tracing::info!("shutting down: draining in-flight requests");
    drop(listener);
    let _ = stop_tx.send(true);
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            open = open.load(Ordering::Relaxed),
            "shutdown grace period over: closing remaining connections"
        );
        kill.cancel();
        tracker.wait().await;
    }
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
