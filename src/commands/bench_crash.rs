//! `sluice bench crash`: crash safety under a write load.
//!
//! Each round starts the gateway (this binary, `sluice serve`) on one data directory, checks
//! what earlier rounds made durable, runs a write load (unique prompts on a cached route, from
//! `--writers` clients) and kills it with SIGKILL at a random moment. A client counts data as
//! durable only when `POST /admin/flush` answered after it: then every cache entry and audit
//! record of the answers it had received must survive any crash. After each restart:
//!
//! - the store opens (the gateway becomes ready);
//! - every audit record acknowledged so far is in the audit table;
//! - every cache entry acknowledged so far is in the store, and those of the last round are
//!   served from the cache (`x-sluice-cache: only-if-cached` hits): the index agrees;
//! - the index holds exactly the store's entries (`/admin/cache/stats` against the file).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};

use super::child::{absolute, Gateway};
use crate::cli::CrashArgs;
use crate::sim;
use crate::store::{StoreReader, DB_FILE};

/// Kill moments: this long after the gateway is ready, at random.
const KILL_AFTER_MS: std::ops::Range<u64> = 150..1500;
/// Requests a writer sends between two flushes.
const FLUSH_EVERY: usize = 5;

#[derive(Debug, Default, Serialize)]
pub struct CrashReport {
    pub rounds: u32,
    pub kills: u32,
    /// Audit records acknowledged durable before a kill, checked present after restarts
    /// (each record once, in the round after it was acknowledged).
    pub audit_records_checked: u64,
    /// Cache entries acknowledged durable, checked served from the cache after the restart.
    pub cache_entries_checked: u64,
    /// Every acknowledged entry checked in the store file again at every restart.
    pub store_entry_checks: u64,
    /// Index against store comparisons (one per restart).
    pub index_checks: u32,
    pub requests_answered: u64,
    /// Answers received but not acknowledged before the kill (may or may not survive).
    pub unacknowledged: u64,
    pub failures: Vec<String>,
    pub elapsed_s: f64,
    pub seed: u64,
}

/// What the writers had acknowledged.
#[derive(Default)]
struct Durable {
    /// Request ids with a durable audit record, not yet checked.
    audit_new: Vec<String>,
    /// Prompts whose answers are durable in the cache, not yet checked through HTTP.
    cache_new: Vec<String>,
    /// Every prompt acknowledged so far (checked in the store file every round).
    cache_all: Vec<String>,
    unacknowledged: u64,
    answered: u64,
}

pub async fn run(args: CrashArgs) -> Result<(), String> {
    let report = crash(&args).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "crash: {} rounds, {} SIGKILLs; checked {} audit records, {} cache entries through the index, {} store entry checks, {} index/store comparisons; {} answers unacknowledged at a kill; {} failures; {:.0} s",
            report.rounds,
            report.kills,
            report.audit_records_checked,
            report.cache_entries_checked,
            report.store_entry_checks,
            report.index_checks,
            report.unacknowledged,
            report.failures.len(),
            report.elapsed_s
        );
        for f in &report.failures {
            println!("  FAIL {f}");
        }
    }
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} crash-safety failures", report.failures.len()))
    }
}

pub async fn crash(args: &CrashArgs) -> Result<CrashReport, String> {
    let started = Instant::now();
    let mock = sim::spawn(([127, 0, 0, 1], 0).into(), sim::MockOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data = dir.path().join("data");
    let config = format!(
        r#"
[server]
listen = "{{LISTEN}}"
data_dir = "{data}"
models_dir = "{models}"
shutdown_grace_secs = 1
[cache]
enabled = true
similarity_threshold = 1.0
[providers.oa]
kind = "openai"
base_url = "{mock}/v1"
models."gpt-4o-mini" = {{ input_per_mtok = 0.15, output_per_mtok = 0.6 }}
[routes.crash]
tiers.cheap = ["oa/gpt-4o-mini"]
"#,
        data = data.display(),
        models = absolute(&args.models_dir).display(),
        mock = mock.base_url(),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut report = CrashReport {
        seed: args.seed,
        ..CrashReport::default()
    };
    let durable = Arc::new(Mutex::new(Durable::default()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    for round in 0..args.rounds {
        let mut gw = match Gateway::start(&config, dir.path(), Duration::from_secs(120)).await {
            Ok(g) => g,
            Err(e) => {
                report
                    .failures
                    .push(format!("round {round}: the store did not open: {e}"));
                break;
            }
        };
        report.rounds += 1;
        if round > 0 {
            check(&http, &gw.base, &data, &durable, &mut report, round).await;
        }
        // The load, then a kill at a random moment.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..args.writers)
            .map(|w| {
                tokio::spawn(writer(
                    http.clone(),
                    gw.base.clone(),
                    format!("{} {}", letters(u64::from(round)), letters(w as u64)),
                    durable.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(KILL_AFTER_MS))).await;
        gw.kill();
        report.kills += 1;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            let _ = w.await;
        }
    }
    let d = durable.lock();
    report.requests_answered = d.answered;
    report.unacknowledged = d.unacknowledged;
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One writer: unique prompts; every `FLUSH_EVERY` answers a flush, after which they are
/// durable. Ends when the gateway is gone.
async fn writer(
    http: reqwest::Client,
    base: String,
    tag: String,
    durable: Arc<Mutex<Durable>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut pending: Vec<(String, String)> = Vec::new();
    for i in 0.. {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        // Letters only: the stored text is the prompt itself (no number becomes an operand).
        let prompt = format!("Tell me about crash check {tag} {}", letters(i));
        let sent = http
            .post(format!("{base}/v1/chat/completions"))
            .json(&json!({"model": "crash", "messages": [{"role": "user", "content": prompt}]}))
            .send()
            .await;
        let Ok(r) = sent else { break };
        if !r.status().is_success() {
            break;
        }
        let id = r
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if r.bytes().await.is_err() {
            break;
        }
        durable.lock().answered += 1;
        pending.push((id, prompt));
        if pending.len() >= FLUSH_EVERY {
            let flushed = http
                .post(format!("{base}/admin/flush"))
                .json(&json!({}))
                .send()
                .await;
            if !matches!(flushed, Ok(ref r) if r.status().is_success()) {
                break;
            }
            let mut d = durable.lock();
            for (id, prompt) in pending.drain(..) {
                d.audit_new.push(id);
                d.cache_new.push(prompt.clone());
                d.cache_all.push(prompt);
            }
        }
    }
    durable.lock().unacknowledged += pending.len() as u64;
}

/// `n` in letters (`a`, `b`, ..., `ba`, ...), so that prompts differ in words, not numbers.
fn letters(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The checks after a restart (see the module doc); failures go into the report.
async fn check(
    http: &reqwest::Client,
    base: &str,
    data: &std::path::Path,
    durable: &Mutex<Durable>,
    report: &mut CrashReport,
    round: u32,
) {
    let (audit_new, cache_new, cache_all) = {
        let mut d = durable.lock();
        (
            std::mem::take(&mut d.audit_new),
            std::mem::take(&mut d.cache_new),
            d.cache_all.clone(),
        )
    };
    // Audit records, read beside the running gateway.
    match crate::accounting::audit::open_reader(&data.join(DB_FILE)) {
        Err(e) => report
            .failures
            .push(format!("round {round}: audit unreadable: {e}")),
        Ok(db) => {
            let ids: HashSet<String> = match crate::accounting::audit::read(&db, 0..u64::MAX) {
                Ok(rows) => rows.filter_map(Result::ok).map(|r| r.request_id).collect(),
                Err(e) => {
                    report
                        .failures
                        .push(format!("round {round}: audit unreadable: {e}"));
                    HashSet::new()
                }
            };
            for id in &audit_new {
                if !ids.contains(id) {
                    report.failures.push(format!(
                        "round {round}: durable audit record {id} is missing"
                    ));
                }
            }
            report.audit_records_checked += audit_new.len() as u64;
        }
    }
    // Cache entries in the store file, and the index against it.
    let stored = StoreReader::open(data)
        .and_then(|r| r.cache_entries())
        .map_err(|e| e.to_string());
    let stats: Result<Value, String> = async {
        http.get(format!("{base}/admin/cache/stats"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match (stored, stats) {
        (Ok(entries), Ok(stats)) => {
            let texts: HashSet<&str> = entries.iter().map(|e| e.entry.text.as_str()).collect();
            for p in &cache_all {
                if !texts.contains(p.as_str()) {
                    report.failures.push(format!(
                        "round {round}: durable cache entry for {p:?} is missing from the store"
                    ));
                }
            }
            report.store_entry_checks += cache_all.len() as u64;
            let now = crate::chat::unix_now();
            let live = entries
                .iter()
                .filter(|e| e.entry.expires_unix > now)
                .count() as u64;
            if stats["entries"].as_u64() != Some(live) {
                report.failures.push(format!(
                    "round {round}: the index holds {} entries, the store {live}",
                    stats["entries"]
                ));
            }
            report.index_checks += 1;
        }
        (Err(e), _) | (_, Err(e)) => report.failures.push(format!(
            "round {round}: cannot compare index and store: {e}"
        )),
    }
    // The last round's entries, served through the index.
    for p in &cache_new {
        let r = http
            .post(format!("{base}/v1/chat/completions"))
            .header("x-sluice-cache", "only-if-cached")
            .json(&json!({"model": "crash", "messages": [{"role": "user", "content": p}]}))
            .send()
            .await;
        let hit = matches!(&r, Ok(r) if r.status().is_success()
            && r.headers().get("x-sluice-cache").is_some_and(|v| v == "hit-exact"));
        if !hit {
            report.failures.push(format!(
                "round {round}: durable cache entry for {p:?} is not served from the cache"
            ));
        }
        report.cache_entries_checked += 1;
    }
}
