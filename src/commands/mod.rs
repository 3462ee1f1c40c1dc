//! Bodies of the subcommands.

pub mod bench_cache;
pub mod bench_crash;
pub mod bench_dashboard;
pub mod bench_failover;
pub mod bench_load;
pub mod bench_route;
pub mod bench_soak;
pub mod cache;
mod child;
pub mod keys;
pub mod mock;
pub mod prices;
pub mod report;
pub mod route;
pub mod serve;

use std::path::Path;

use crate::config::Config;

/// `sluice config check [--config] PATH`: validate and summarise.
pub fn config_check(path: &Path) -> Result<(), String> {
    let cfg = Config::load(Some(path)).map_err(|e| e.to_string())?;
    println!("{}: ok", path.display());
    println!(
        "  {} providers, {} models, {} routes",
        cfg.providers.len(),
        cfg.targets.len(),
        cfg.routes.len()
    );
    let clients = match cfg.server.api_keys.len() {
        0 => "open (no [server] api_keys)".to_owned(),
        n => format!("{n} API key(s) required"),
    };
    println!("  clients: {clients}");
    for p in &cfg.providers {
        let key = if p.simulated {
            "simulated (no API key)"
        } else if p.api_key.is_some() {
            "API key set"
        } else {
            "no API key"
        };
        println!(
            "  provider {} ({:?}, {}): {key}",
            p.name, p.kind, p.base_url
        );
    }
    for r in &cfg.routes {
        println!("  route {}:", r.name);
        for (i, t) in r.tiers.iter().enumerate() {
            let names: Vec<&str> = t
                .targets
                .iter()
                .map(|(id, _)| cfg.target(*id).name.as_str())
                .collect();
            let default = if i == r.default_tier {
                " (default)"
            } else {
                ""
            };
            println!(
                "    tier {}{default} [{:?}]: {}",
                t.name,
                t.strategy,
                names.join(" -> ")
            );
        }
        if !r.rules.is_empty() {
            println!("    {} rule(s)", r.rules.len());
        }
        if r.policy.stream_resume == crate::config::StreamResume::Error {
            println!(
                "    streams that break after output end with an error (stream_resume = \"error\")"
            );
        }
    }
    for t in cfg.targets.iter().filter(|t| !t.fallbacks.is_empty()) {
        let names: Vec<&str> = t
            .fallbacks
            .iter()
            .map(|f| cfg.target(*f).name.as_str())
            .collect();
        println!("  model {}: {} -> {}", t.model, t.name, names.join(" -> "));
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
