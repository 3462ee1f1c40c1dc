//! `sluice bench dashboard`: the dashboard's JSON endpoints against a store of many audit
//! records.
//!
//! Fills a fresh store with `--records` (300,000) seeded synthetic records spread over the last
//! `--days` (7), written through the real audit writer (batched, rollups included), times the
//! one-off rebuild of the rollups from the ledger, then serves the store with the gateway and
//! times every `/admin/stats/*` endpoint over real HTTP on loopback for windows of 1 hour to 30
//! days, next to one full scan of the ledger (what each page load would cost without rollups).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::accounting::audit::{self, AuditAttempt, RequestTags};
use crate::accounting::{report, unix_ms_now, AuditLog, AuditRecord};
use crate::cli::DashboardArgs;
use crate::config::{AccountingSettings, Config};
use crate::outcome::CacheOutcome;
use crate::state::AppState;
use crate::store::{Store, AUDIT_META};
use crate::wire::Dialect;

const SEED: u64 = 0x5eed_da5b_0a2d;
const WARMUP: usize = 3;
const ENDPOINTS: [&str; 4] = ["summary", "timeseries", "breakdown", "targets"];
const WINDOWS: [&str; 5] = ["1h", "6h", "24h", "7d", "30d"];

const CONFIG: &str = r#"
[cache]
enabled = false
[providers.oa]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
models = { "gpt-4o-mini" = {}, "gpt-4o" = {} }
[providers.an]
kind = "anthropic"
base_url = "http://127.0.0.1:9"
models = { "claude-3-haiku-20240307" = {}, "claude-3-5-sonnet-20241022" = {} }
[routes.support]
tiers.cheap = ["oa/gpt-4o-mini", "an/claude-3-haiku-20240307"]
[routes.summarize]
tiers.cheap = ["an/claude-3-haiku-20240307", "oa/gpt-4o-mini"]
[routes.chat]
tiers.standard = ["oa/gpt-4o", "an/claude-3-5-sonnet-20241022"]
[routes.legacy]
mode = "observe"
tiers.premium = ["oa/gpt-4o"]
"#;

/// xorshift64*: the same records every run, no dependency on a PRNG crate's stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One synthetic record at `time_ms`: four routes (one in observe mode), their targets, 30%
/// cache hits, 3% failovers, 1% failures, a long-tailed latency, a quarter Anthropic clients.
fn record(rng: &mut Rng, i: u64, time_ms: u64) -> AuditRecord {
    const ROUTES: [(&str, &str, &str); 4] = [
        ("support", "oa/gpt-4o-mini", "an/claude-3-haiku-20240307"),
        ("summarize", "an/claude-3-haiku-20240307", "oa/gpt-4o-mini"),
        ("chat", "oa/gpt-4o", "an/claude-3-5-sonnet-20241022"),
        ("legacy", "oa/gpt-4o", "oa/gpt-4o"),
    ];
    let (route, primary, backup) = ROUTES[(rng.next() % 4) as usize];
    let observe = route == "legacy";
    let roll = rng.unit();
    let cache = match (observe, roll) {
        (true, _) => CacheOutcome::Off,
        (false, r) if r < 0.22 => CacheOutcome::HitExact,
        (false, r) if r < 0.30 => CacheOutcome::HitSemantic,
        (false, r) if r < 0.33 => CacheOutcome::Bypass,
        _ => CacheOutcome::Miss,
    };
    let roll = rng.unit();
    let failed = !cache.is_hit() && roll < 0.01;
    let failover = !cache.is_hit() && !failed && roll < 0.04;
    let attempt = |target: &str, ok: bool| AuditAttempt {
        target: target.into(),
        status: Some(if ok { 200 } else { 503 }),
        outcome: if ok { "ok" } else { "HTTP 503: overloaded" }.into(),
        elapsed_ms: 400,
    };
    let attempts = match (cache.is_hit(), failed, failover) {
        (true, ..) => Vec::new(),
        (_, true, _) => vec![attempt(primary, false), attempt(backup, false)],
        (_, _, true) => vec![attempt(primary, false), attempt(backup, true)],
        _ => vec![attempt(primary, true)],
    };
    let target = match (cache.is_hit(), failed, failover) {
        (true, ..) | (_, true, _) => None,
        (_, _, true) => Some(backup.to_owned()),
        _ => Some(primary.to_owned()),
    };
    let input = 200 + (rng.next() % 3000) as u32;
    let output = if failed {
        0
    } else {
        20 + (rng.next() % 600) as u32
    };
    let price = if primary.contains("4o-mini") {
        (0.15, 0.6)
    } else {
        (2.5, 10.0)
    };
    let cost = (f64::from(input) * price.0 + f64::from(output) * price.1) / 1e6;
    AuditRecord {
        time_ms,
        request_id: format!("req_{i:012x}"),
        caller: None,
        route: route.into(),
        requested_model: route.into(),
        target: target.clone(),
        attempts,
        cache,
        similarity: (cache == CacheOutcome::HitSemantic).then_some(0.9),
        stream: rng.next() % 2 == 0,
        input_tokens: if failed { 0 } else { input },
        output_tokens: output,
        usage_estimated: false,
        cost_usd: Some(if target.is_some() { cost } else { 0.0 }),
        cost_avoided_usd: Some(if observe {
            0.0
        } else if cache.is_hit() {
            cost * 4.0
        } else {
            cost
        }),
        // 50 ms .. ~20 s, most near 1 s.
        total_ms: (50.0 + 1000.0 * (-rng.unit().max(1e-9).ln()).powf(1.5)) as u64,
        upstream_ms: None,
        ttft_ms: None,
        status: if failed { 502 } else { 200 },
        error: failed.then(|| "all_targets_failed".into()),
        prompt: None,
        detail: Default::default(),
        tags: RequestTags {
            api: if rng.next() % 4 == 0 {
                Dialect::Anthropic
            } else {
                Dialect::OpenAi
            },
            observe,
        },
        routing: Default::default(),
        feedback: None,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run(args: DashboardArgs) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let now = unix_ms_now();
    let span = u64::from(args.days.max(1)) * 86_400_000;
    let settings = AccountingSettings {
        retention_days: args.days.max(1) + 1,
        ..AccountingSettings::default()
    };

    // 1. Fill the store through the audit writer.
    let store = Store::open(dir.path()).map_err(|e| e.to_string())?;
    let log = AuditLog::open(store.clone(), &settings).map_err(|e| e.to_string())?;
    let mut rng = Rng(SEED);
    let started = Instant::now();
    let step = span / args.records.max(1);
    for i in 0..args.records {
        log.record(record(&mut rng, i, now - span + i * step));
        // The writer's queue is bounded (1,000 records): let it catch up rather than drop.
        if i % 500 == 499 {
            log.flush().await.map_err(|e| e.to_string())?;
        }
    }
    log.flush().await.map_err(|e| e.to_string())?;
    let ingest = started.elapsed();
    if log.dropped() > 0 {
        return Err(format!("{} records dropped while filling", log.dropped()));
    }
    tokio::task::spawn_blocking(move || log.close())
        .await
        .map_err(|e| e.to_string())?;

    // 2. The one-off rebuild from the ledger (a store written before rollups existed).
    {
        let db = store.database().map_err(|e| e.to_string())?;
        let w = db.begin_write().map_err(|e| e.to_string())?;
        let mut meta = w.open_table(AUDIT_META).map_err(|e| e.to_string())?;
        meta.insert("rollup_seq", 0).map_err(|e| e.to_string())?;
        drop(meta);
        w.commit().map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let log = AuditLog::open(store.clone(), &settings).map_err(|e| e.to_string())?;
    let rebuild = started.elapsed();
    tokio::task::spawn_blocking(move || log.close())
        .await
        .map_err(|e| e.to_string())?;

    // 3. One full scan of the ledger, as a page load without rollups would cost.
    let db = store.database().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let records = audit::read(&*db, 0..u64::MAX)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok);
    let full = report::aggregate(records, 0, u64::MAX);
    let scan = started.elapsed();
    if full.total.requests != args.records {
        return Err(format!("the store holds {} records", full.total.requests));
    }
    let store_bytes = std::fs::metadata(store.path())
        .map(|m| m.len())
        .unwrap_or(0);
    // The gateway opens the file next: every handle on it goes first.
    drop(db);
    drop(store);

    // 4. The gateway over the store, its endpoints over HTTP.
    let text = format!(
        "[server]\ndata_dir = \"{}\"\n{CONFIG}",
        dir.path().display()
    );
    let mut config = Config::parse(&text, "bench config").map_err(|e| e.to_string())?;
    config.accounting = settings;
    let state = AppState::new(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(super::serve::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    for window in WINDOWS {
        for endpoint in ENDPOINTS {
            let url = format!("{base}/admin/stats/{endpoint}?window={window}");
            let mut times = Vec::with_capacity(args.iterations);
            let mut last = Value::Null;
            let mut bytes = 0;
            for i in 0..WARMUP + args.iterations {
                let t = Instant::now();
                let r = http.get(&url).send().await.map_err(|e| e.to_string())?;
                let status = r.status();
                let body = r.bytes().await.map_err(|e| e.to_string())?;
                let elapsed = t.elapsed();
                if !status.is_success() {
                    return Err(format!("{url}: {status}"));
                }
                if i >= WARMUP {
                    times.push(ms(elapsed));
                }
                bytes = body.len();
                last = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            }
            times.sort_by(f64::total_cmp);
            rows.push(json!({
                "endpoint": endpoint, "window": window,
                "resolution": last["window"]["resolution"], "rows_read": last["window"]["rows_read"],
                "p50_ms": percentile(&times, 50.0), "p95_ms": percentile(&times, 95.0),
                "max_ms": times.last().copied().unwrap_or(0.0), "bytes": bytes,
            }));
        }
    }
    let _ = stop.send(());
    let _ = server.await;
    let worst = rows
        .iter()
        .filter_map(|r| r["max_ms"].as_f64())
        .fold(0.0, f64::max);
    let out = json!({
        "records": args.records, "days": args.days, "iterations": args.iterations,
        "store_bytes": store_bytes,
        "ingest_s": ingest.as_secs_f64(),
        "ingest_records_per_s": args.records as f64 / ingest.as_secs_f64(),
        "rebuild_ms": ms(rebuild),
        "full_scan_ms": ms(scan),
        "worst_ms": worst,
        "endpoints": rows,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print!("{}", table(&out));
    }
    Ok(())
}

fn table(out: &Value) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} audit records over {} days ({:.0} MB store), written in {:.1} s ({:.0} records/s with rollups)",
        out["records"],
        out["days"],
        out["store_bytes"].as_f64().unwrap_or(0.0) / 1e6,
        out["ingest_s"].as_f64().unwrap_or(0.0),
        out["ingest_records_per_s"].as_f64().unwrap_or(0.0)
    );
    let _ = writeln!(
        s,
        "full scan of the ledger: {:.0} ms; rollups rebuilt from it once: {:.0} ms\n",
        out["full_scan_ms"].as_f64().unwrap_or(0.0),
        out["rebuild_ms"].as_f64().unwrap_or(0.0)
    );
    let _ = writeln!(
        s,
        "{:<12}{:>8}{:>6}{:>8}{:>10}{:>10}{:>10}{:>10}",
        "endpoint", "window", "res", "rows", "p50_ms", "p95_ms", "max_ms", "bytes"
    );
    for r in out["endpoints"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "{:<12}{:>8}{:>6}{:>8}{:>10.2}{:>10.2}{:>10.2}{:>10}",
            r["endpoint"].as_str().unwrap_or(""),
            r["window"].as_str().unwrap_or(""),
            r["resolution"].as_str().unwrap_or(""),
            r["rows_read"],
            r["p50_ms"].as_f64().unwrap_or(0.0),
            r["p95_ms"].as_f64().unwrap_or(0.0),
            r["max_ms"].as_f64().unwrap_or(0.0),
            r["bytes"]
        );
    }
    let _ = writeln!(
        s,
        "\nslowest answer: {:.2} ms",
        out["worst_ms"].as_f64().unwrap_or(0.0)
    );
    s
}
