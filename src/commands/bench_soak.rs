//! `sluice bench soak --minutes N`: a bounded soak of the gateway (this binary, `sluice serve`,
//! in a child process) against the mock: cache hits, misses, streams and upstream faults from
//! concurrent clients, with the gateway's resident memory sampled over time and every error
//! counted by kind. The cache is capped (`max_entries`), so a gateway without leaks levels off
//! once the cache is full: the report compares the peak RSS of the second half with the first.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;

use super::child::{absolute, Gateway};
use crate::cli::SoakArgs;
use crate::sim;

/// Cache entries per route: small, so the cache fills early in the soak.
const MAX_ENTRIES: u32 = 2000;
/// Prompts that repeat (hits after their first request).
const HOT_PROMPTS: u64 = 200;

#[derive(Debug, Default, Serialize)]
pub struct SoakReport {
    pub minutes: f64,
    pub clients: usize,
    pub requests: u64,
    pub per_second: f64,
    pub cache_hits: u64,
    pub streams: u64,
    /// Requests sent to routes whose first target fails (failover) or whose stream breaks
    /// (continued at another target).
    pub fault_requests: u64,
    /// Client-visible errors, by kind: HTTP status >= 400, a stream without `[DONE]`, a
    /// transport error.
    pub errors_status: u64,
    pub errors_stream: u64,
    pub errors_transport: u64,
    /// (seconds since start, RSS in MiB)
    pub rss_mib: Vec<(f64, f64)>,
    pub rss_peak_first_half_mib: f64,
    pub rss_peak_second_half_mib: f64,
    /// Peak RSS of the second half over the first, in percent (near 0: levelled off).
    pub rss_growth_second_half_pct: f64,
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    hits: AtomicU64,
    streams: AtomicU64,
    faults: AtomicU64,
    errors_status: AtomicU64,
    errors_stream: AtomicU64,
    errors_transport: AtomicU64,
}

pub async fn run(args: SoakArgs) -> Result<(), String> {
    let r = soak(&args).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "soak: {:.1} min, {} clients, {} requests ({:.0}/s: {} cache hits, {} streams, {} to faulty upstreams); errors: {} status, {} broken streams, {} transport; RSS peak {:.1} MiB (first half) -> {:.1} MiB (second half), {:+.1}%",
            r.minutes,
            r.clients,
            r.requests,
            r.per_second,
            r.cache_hits,
            r.streams,
            r.fault_requests,
            r.errors_status,
            r.errors_stream,
            r.errors_transport,
            r.rss_peak_first_half_mib,
            r.rss_peak_second_half_mib,
            r.rss_growth_second_half_pct
        );
        for (t, mib) in &r.rss_mib {
            println!("  {t:>7.0} s  {mib:>8.1} MiB");
        }
    }
    Ok(())
}

pub async fn soak(args: &SoakArgs) -> Result<SoakReport, String> {
    let mock = sim::spawn(([127, 0, 0, 1], 0).into(), sim::MockOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = format!(
        r#"
[server]
listen = "{{LISTEN}}"
data_dir = "{data}"
models_dir = "{models}"
[cache]
enabled = true
max_entries = {MAX_ENTRIES}
[breaker]
failure_threshold = 1000000
[providers.oa]
kind = "openai"
base_url = "{mock}/v1"
models."gpt-4o-mini" = {{ input_per_mtok = 0.15, output_per_mtok = 0.6 }}
models."gpt-4o-mini+status-503" = {{ input_per_mtok = 0.15, output_per_mtok = 0.6 }}
models."gpt-4o-mini+cut-after-3" = {{ input_per_mtok = 0.15, output_per_mtok = 0.6 }}
[providers.an]
kind = "anthropic"
base_url = "{mock}"
models."claude-3-haiku" = {{ input_per_mtok = 0.25, output_per_mtok = 1.25 }}
[routes.chat]
tiers.cheap = ["oa/gpt-4o-mini"]
[routes.flaky]
tiers.cheap = ["oa/gpt-4o-mini+status-503", "an/claude-3-haiku"]
[routes.cut]
tiers.cheap = ["oa/gpt-4o-mini+cut-after-3", "an/claude-3-haiku"]
"#,
        data = dir.path().join("data").display(),
        models = absolute(&args.models_dir).display(),
        mock = mock.base_url(),
    );
    let gw = Gateway::start(&config, dir.path(), Duration::from_secs(120)).await?;
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let clients: Vec<_> = (0..args.clients)
        .map(|c| {
            tokio::spawn(client(
                http.clone(),
                gw.base.clone(),
                c as u64,
                counts.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let started = Instant::now();
    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let every = Duration::from_secs(args.sample_secs.max(1));
    let mut rss = Vec::new();
    loop {
        let t = started.elapsed();
        if let Some(b) = gw.rss_bytes() {
            rss.push((t.as_secs_f64(), b as f64 / (1024.0 * 1024.0)));
        }
        if t >= total {
            break;
        }
        tokio::time::sleep(every.min(total - t)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let half = elapsed / 2.0;
    let peak = |pred: &dyn Fn(f64) -> bool| {
        rss.iter()
            .filter(|(t, _)| pred(*t))
            .map(|(_, m)| *m)
            .fold(0.0, f64::max)
    };
    let first = peak(&|t| t < half);
    let second = peak(&|t| t >= half);
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(SoakReport {
        minutes: elapsed / 60.0,
        clients: args.clients,
        requests: n(&counts.requests),
        per_second: n(&counts.requests) as f64 / elapsed,
        cache_hits: n(&counts.hits),
        streams: n(&counts.streams),
        fault_requests: n(&counts.faults),
        errors_status: n(&counts.errors_status),
        errors_stream: n(&counts.errors_stream),
        errors_transport: n(&counts.errors_transport),
        rss_mib: rss,
        rss_peak_first_half_mib: first,
        rss_peak_second_half_mib: second,
        rss_growth_second_half_pct: if first > 0.0 {
            (second - first) / first * 100.0
        } else {
            0.0
        },
    })
}

/// One client: a mix of repeated prompts (hits), unique ones (misses, filling the cache),
/// streams, and routes with faulty upstreams.
async fn client(
    http: reqwest::Client,
    base: String,
    id: u64,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(id);
    let url = format!("{base}/v1/chat/completions");
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let roll: f64 = rng.random();
        let unique = format!(
            "Soak question {id} {n}: describe item {}",
            n * 7919 % 100_003
        );
        let (model, prompt, stream) = if roll < 0.4 {
            let hot = rng.random_range(0..HOT_PROMPTS);
            (
                "chat",
                format!("What is the hot question number {hot}?"),
                false,
            )
        } else if roll < 0.7 {
            ("chat", unique, false)
        } else if roll < 0.9 {
            ("chat", unique, true)
        } else if roll < 0.95 {
            ("flaky", unique, false)
        } else {
            ("cut", unique, true)
        };
        if model != "chat" {
            counts.faults.fetch_add(1, Ordering::Relaxed);
        }
        let body = json!({"model": model, "stream": stream,
            "stream_options": {"include_usage": stream},
            "messages": [{"role": "user", "content": prompt}]});
        counts.requests.fetch_add(1, Ordering::Relaxed);
        let r = match http.post(&url).json(&body).send().await {
            Ok(r) => r,
            Err(_) => {
                counts.errors_transport.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        if !r.status().is_success() {
            counts.errors_status.fetch_add(1, Ordering::Relaxed);
            let _ = r.bytes().await;
            continue;
        }
        if r.headers()
            .get("x-sluice-cache")
            .is_some_and(|v| v.as_bytes().starts_with(b"hit"))
        {
            counts.hits.fetch_add(1, Ordering::Relaxed);
        }
        match r.bytes().await {
            Err(_) => {
                counts.errors_transport.fetch_add(1, Ordering::Relaxed);
            }
            Ok(b) if stream => {
                counts.streams.fetch_add(1, Ordering::Relaxed);
                if !b.ends_with(b"data: [DONE]\n\n") {
                    counts.errors_stream.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(_) => {}
        }
    }
}
