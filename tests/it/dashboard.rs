//! The dashboard's figures: rollups written by the audit writer agree with a full scan of the
//! ledger (`sluice report`'s aggregation), are rebuilt for a store written without them, and the
//! `/admin/stats/*` endpoints and the page over real HTTP, admin-protected.

use serde_json::{json, Value};
use sluice::accounting::audit::{AuditAttempt, RequestTags};
use sluice::accounting::dashboard::{self, Window};
use sluice::accounting::report;
use sluice::accounting::{unix_ms_now, AuditLog, AuditRecord};
use sluice::config::AccountingSettings;
use sluice::outcome::CacheOutcome;
use sluice::store::Store;
use sluice::wire::Dialect;

use crate::support::{ask, ask_messages, header, Gateway};

const MINUTE: u64 = 60_000;

/// A varied, deterministic record: two gateway routes and an observe one, three targets,
/// hits, misses, failovers, failures, both APIs.
pub fn record(i: u64, time_ms: u64) -> AuditRecord {
    let route = ["support", "summarize", "legacy"][(i % 3) as usize];
    let observe = route == "legacy";
    let cache = match (observe, i % 5) {
        (true, _) => CacheOutcome::Off,
        (false, 0) => CacheOutcome::HitExact,
        (false, 1) => CacheOutcome::HitSemantic,
        (false, 4) => CacheOutcome::Bypass,
        _ => CacheOutcome::Miss,
    };
    let failed = !cache.is_hit() && i % 11 == 7;
    let failover = !cache.is_hit() && !failed && i % 7 == 2;
    let primary = if observe {
        "oa/gpt-4o"
    } else {
        "oa/gpt-4o-mini"
    };
    let backup = "an/claude-3-haiku";
    let mut attempts = Vec::new();
    if !cache.is_hit() {
        let attempt = |target: &str, ok: bool| AuditAttempt {
            target: target.into(),
            status: Some(if ok { 200 } else { 503 }),
            outcome: if ok { "ok" } else { "HTTP 503: overloaded" }.into(),
            elapsed_ms: 10 + i % 90,
        };
        if failed {
            attempts.push(attempt(primary, false));
            attempts.push(attempt(backup, false));
        } else if failover {
            attempts.push(attempt(primary, false));
            attempts.push(attempt(primary, false));
            attempts.push(attempt(backup, true));
        } else {
            attempts.push(attempt(primary, true));
        }
    }
    let target = match (cache.is_hit(), failed, failover) {
        (true, ..) | (_, true, _) => None,
        (_, _, true) => Some(backup.to_owned()),
        _ => Some(primary.to_owned()),
    };
    let (input, output) = if failed {
        (0, 0)
    } else {
        (200 + (i % 400) as u32, 20 + (i % 60) as u32)
    };
    let cost = match (&target, failed) {
        (None, false) => Some(0.0),
        (None, true) => Some(0.0),
        (Some(t), _) if t.contains("claude") => None, // unpriced, on purpose
        (Some(_), _) => Some(f64::from(input) * 0.15e-6 + f64::from(output) * 0.6e-6),
    };
    AuditRecord {
        time_ms,
        request_id: format!("req_{i}"),
        caller: None,
        route: route.into(),
        requested_model: route.into(),
        target,
        attempts,
        cache,
        similarity: (cache == CacheOutcome::HitSemantic).then_some(0.91),
        stream: i % 2 == 0,
        input_tokens: input,
        output_tokens: output,
        usage_estimated: false,
        cost_usd: cost,
        cost_avoided_usd: Some(if cache.is_hit() {
            0.0009
        } else if observe {
            0.0
        } else {
            0.0001
        }),
        total_ms: 5 + (i * 37) % 2000,
        upstream_ms: None,
        ttft_ms: None,
        status: if failed { 502 } else { 200 },
        error: failed.then(|| "all_targets_failed".into()),
        prompt: None,
        detail: Default::default(),
        tags: RequestTags {
            api: if i % 4 == 1 {
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

async fn write(store: &Store, records: &[AuditRecord]) {
    let log = AuditLog::open(store.clone(), &AccountingSettings::default()).unwrap();
    // The writer's backlog is bounded (`QUEUE` records): flush before it fills.
    for chunk in records.chunks(500) {
        for r in chunk {
            log.record(r.clone());
        }
        log.flush().await.unwrap();
    }
    assert_eq!(log.dropped(), 0);
    tokio::task::spawn_blocking(move || log.close())
        .await
        .unwrap();
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-6)
}

/// The blended cost of the records of one mode, by a full scan.
fn blended(records: &[AuditRecord], observe: bool) -> f64 {
    let sel = records
        .iter()
        .filter(|r| r.tags.observe == observe && r.cost_usd.is_some());
    let spend: f64 = sel.clone().filter_map(|r| r.cost_usd).sum();
    let tokens: u64 = sel
        .map(|r| u64::from(r.input_tokens + r.output_tokens))
        .sum();
    spend / tokens as f64 * 1e6
}

/// The same figures from the rollups as from scanning every record of the window (`records`);
/// the baseline is every observe-mode record in the store (`all`).
fn assert_agree(view: &dashboard::View, records: &[AuditRecord], all: &[AuditRecord]) {
    let rep = report::aggregate(records.iter().cloned(), 0, u64::MAX);
    assert_eq!(view.total.requests, rep.total.requests);
    assert_eq!(view.total.errors, rep.total.errors);
    assert!(close(view.total.spend_usd, rep.total.spend_usd));
    assert!(close(
        view.total.cost_avoided_usd,
        rep.total.cost_avoided_usd
    ));
    assert!(close(
        view.total.cache_hit_saved_usd,
        rep.total.cache_hit_saved_usd
    ));
    assert_eq!(view.total.unpriced, rep.total.unknown_cost_requests);
    assert_eq!(
        view.total.hits_exact + view.total.hits_semantic,
        rep.total.cache_hits
    );
    assert_eq!(view.total.lookups, rep.total.cache_lookups);
    let b = (
        view.total.blended_usd_per_mtok.unwrap(),
        rep.total.blended_usd_per_mtok.unwrap(),
    );
    assert!(close(b.0, b.1), "{b:?}");
    for r in &rep.by_route {
        let v = view.routes.iter().find(|v| v.route == r.name).unwrap();
        assert_eq!(v.figures.requests, r.requests, "{}", r.name);
        assert!(close(v.figures.spend_usd, r.spend_usd), "{}", r.name);
        assert_eq!(v.figures.lookups, r.cache_lookups, "{}", r.name);
        // Percentiles from the histogram: within a bucket (19%) of the exact nearest rank.
        let (p50, exact) = (
            v.figures.latency_p50_ms.unwrap(),
            r.latency_p50_ms.unwrap() as f64,
        );
        assert!(
            (p50 / exact - 1.0).abs() < 0.2,
            "{}: {p50} vs {exact}",
            r.name
        );
        let by: u64 = v.answered_by.iter().map(|s| s.requests).sum();
        assert_eq!(by, r.requests);
    }
    // Attempts per target, and the requests that left it.
    for t in &view.targets {
        let attempts = records
            .iter()
            .flat_map(|r| &r.attempts)
            .filter(|a| a.target == t.target)
            .count() as u64;
        assert_eq!(t.attempts, attempts, "{}", t.target);
    }
    let failovers = records
        .iter()
        .filter(|r| r.attempts.iter().any(|a| a.target != r.attempts[0].target))
        .count() as u64;
    assert_eq!(view.total.failovers, failovers);
    // Blended now (the window's gateway traffic) vs baseline (all observe-mode traffic).
    assert!(close(
        view.blended.now_usd_per_mtok.unwrap(),
        blended(records, false)
    ));
    assert!(close(
        view.blended.baseline_usd_per_mtok.unwrap(),
        blended(all, true)
    ));
    let apis: u64 = view.apis.values().sum();
    assert_eq!(apis, rep.total.requests);
    assert_eq!(
        view.apis.get("anthropic").copied().unwrap_or(0),
        records
            .iter()
            .filter(|r| r.tags.api == Dialect::Anthropic)
            .count() as u64
    );
}

#[tokio::test]
async fn rollups_agree_with_a_full_scan_of_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Three hours of records ending a minute ago, at minute boundaries' mercy.
    let now = unix_ms_now();
    let end = now - now % MINUTE;
    let start = end - 180 * MINUTE;
    let records: Vec<AuditRecord> = (0..3000)
        .map(|i| record(i, start + i * 180 * MINUTE / 3000))
        .collect();
    write(&store, &records).await;

    for (span, resolution) in [
        (181 * MINUTE, "1m"),
        (24 * 60 * MINUTE, "10m"),
        (7 * 1440 * MINUTE, "1h"),
    ] {
        let view =
            dashboard::view(&*store.database().unwrap(), Window::last(span, now), now).unwrap();
        assert_eq!(view.resolution, resolution);
        assert_agree(&view, &records, &records);
        let per_point: u64 = view.points.iter().map(|p| p.requests).sum();
        assert_eq!(per_point, records.len() as u64);
        let spend: f64 = view.points.iter().map(|p| p.spend_usd).sum();
        assert!(close(spend, view.total.spend_usd));
    }
    // A window of the last hour counts the records of its minutes only.
    let since = end - 60 * MINUTE;
    let view = dashboard::view(
        &*store.database().unwrap(),
        Window {
            since_ms: since,
            until_ms: now,
        },
        now,
    )
    .unwrap();
    let inside: Vec<AuditRecord> = records
        .iter()
        .filter(|r| r.time_ms >= since)
        .cloned()
        .collect();
    assert_agree(&view, &inside, &records);
    assert_eq!(view.points.len(), 61);
    let route_hits: u64 = view
        .routes
        .iter()
        .flat_map(|r| &r.hits)
        .map(|h| h.hits_exact + h.hits_semantic)
        .sum();
    assert_eq!(route_hits, view.total.hits_exact + view.total.hits_semantic);
    // The latest failovers, newest first.
    let recent = dashboard::recent_failovers(&*store.database().unwrap(), 3).unwrap();
    let moved = |r: &&AuditRecord| r.attempts.iter().any(|a| a.target != r.attempts[0].target);
    let last = records.iter().rev().find(moved).unwrap();
    assert_eq!(recent[0].1.request_id, last.request_id);
    assert_eq!(recent[0].1.tried.len(), 2);
    assert_eq!(recent[0].1.answered_by, last.target);
    let answered = records
        .iter()
        .rev()
        .filter(moved)
        .find(|r| r.target.is_some())
        .unwrap();
    let event = recent
        .iter()
        .find(|(_, e)| e.request_id == answered.request_id)
        .unwrap();
    assert_eq!(event.1.answered_by.as_deref(), Some("an/claude-3-haiku"));
    assert_eq!(
        event.1.tried[0].1, "HTTP 503: overloaded",
        "the last outcome at each target"
    );
    assert!(recent.windows(2).all(|w| w[0].0 >= w[1].0));
}

/// A store written before rollups existed (or by a binary that did not keep them) gets them
/// rebuilt from its ledger when the audit log opens it.
#[tokio::test]
async fn rollups_are_rebuilt_for_a_store_written_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let now = unix_ms_now();
    let records: Vec<AuditRecord> = (0..500)
        .map(|i| record(i, now - 100 * MINUTE + i * 1000))
        .collect();
    write(&store, &records).await;
    let window = Window::last(3 * 60 * MINUTE, now);
    let before = dashboard::view(&*store.database().unwrap(), window, now).unwrap();
    {
        let w = store.database().unwrap().begin_write().unwrap();
        w.delete_table(sluice::store::AUDIT_ROLLUPS).unwrap();
        w.open_table(sluice::store::AUDIT_META)
            .unwrap()
            .insert("rollup_seq", 0)
            .unwrap();
        w.commit().unwrap();
    }
    let emptied = dashboard::view(&*store.database().unwrap(), window, now).unwrap();
    assert_eq!(emptied.total.requests, 0);
    write(&store, &[]).await;
    let after = dashboard::view(&*store.database().unwrap(), window, now).unwrap();
    assert_eq!(after, before);
    assert_agree(&after, &records, &records);
}

const ROUTES: &str = r#"
[providers.oa.models]
"gpt-4o-mini" = {}
broken = { upstream_model = "x+status-503" }
[providers.an.models]
"claude-3-haiku" = {}
[routes.support]
tiers.cheap = ["oa/gpt-4o-mini"]
[routes.summarize]
tiers.only = ["oa/broken", "an/claude-3-haiku"]
"#;

/// The endpoints over HTTP: admin-protected (a browser is asked for the key), and their figures
/// are the audit's.
#[tokio::test]
async fn admin_stats_endpoints_are_protected_and_count_the_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server.api_keys]\nteam = \"sk-team\"\n[server.api_keys.ops]\nkey = \"sk-ops\"\nrole = \"admin\"\n{ROUTES}"
    );
    let g = Gateway::start_cached(&config, dir.path()).await;
    let post = |path: &str, body: Value| {
        g.http
            .post(g.url(path))
            .bearer_auth("sk-ops")
            .json(&body)
            .send()
    };
    for text in [
        "How do I reset my password?",
        "How do I reset my password?",
        "Where is my invoice?",
    ] {
        let r = post("/v1/chat/completions", ask("support", text))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
        g.state.cache.as_ref().unwrap().flush().await.unwrap();
    }
    let r = post(
        "/v1/messages",
        ask_messages("summarize", "Summarize the quarterly report"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "x-sluice-target"), "an/claude-3-haiku");
    let failover_id = header(r.headers(), "x-request-id").to_owned();
    let _ = r.bytes().await;
    let records = g.audit_records().await;
    assert_eq!(records.len(), 4);

    // Without a key: 401 and a login prompt for browsers; a client key: 403; an admin key (as
    // Basic auth too) opens them.
    let paths = [
        "/dashboard",
        "/dashboard/app.js",
        "/admin/stats/summary",
        "/admin/stats/timeseries",
        "/admin/stats/breakdown",
        "/admin/stats/targets",
        "/admin/stats/cache",
    ];
    for path in paths {
        let r = g.http.get(g.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(
            header(r.headers(), "www-authenticate").starts_with("Basic"),
            "{path}"
        );
    }
    let get = |path: &str| {
        g.http
            .get(g.url(path))
            .basic_auth("admin", Some("sk-ops"))
            .send()
    };
    let json = |path: &'static str| {
        let req = get(path);
        async move {
            let r = req.await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.unwrap()
        }
    };
    let s = json("/admin/stats/summary?window=1h").await;
    assert_eq!(s["total"]["requests"], 4, "{s}");
    assert_eq!(s["total"]["hits_exact"], 1);
    assert_eq!(s["total"]["failovers"], 1);
    assert_eq!(s["apis"], json!({"anthropic": 1, "openai": 3}));
    assert_eq!(s["window"]["resolution"], "1m");
    let spend: f64 = records.iter().filter_map(|r| r["cost_usd"].as_f64()).sum();
    assert!((s["total"]["spend_usd"].as_f64().unwrap() - spend).abs() < 1e-12);

    let ts = json("/admin/stats/timeseries?window=1h").await;
    let points = ts["points"].as_array().unwrap();
    assert_eq!(points.len(), 61);
    let n: u64 = points.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
    assert_eq!(n, 4);
    let support = ts["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "support")
        .unwrap();
    let exact: u64 = support["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hits_exact"].as_u64().unwrap())
        .sum();
    assert_eq!(exact, 1);

    let b = json("/admin/stats/breakdown?window=1h").await;
    let summarize = b["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "summarize")
        .unwrap();
    assert_eq!(
        summarize["answered_by"],
        json!([{"name": "an/claude-3-haiku", "requests": 1, "errors": 0,
        "spend_usd": records[3]["cost_usd"]}])
    );

    let t = json("/admin/stats/targets?window=1h").await;
    let broken = t["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["target"] == "oa/broken")
        .unwrap();
    assert_eq!(broken["failed_over_from"], 1, "{t}");
    assert_eq!(broken["attempts"], 3, "max_retries = 2");
    assert!(["closed", "open"].contains(&broken["breaker"].as_str().unwrap()));
    assert_eq!(t["failovers"][0]["request_id"], failover_id.as_str());

    let c = json("/admin/stats/cache").await;
    assert_eq!(c["prompts_logged"], false);
    assert_eq!(c["entries"][0]["hits"], 1);
    assert_eq!(c["entries"][0]["route"], "support");
    assert_eq!(
        c["entries"][0]["prompt"],
        Value::Null,
        "no preview without prompt logging"
    );

    for bad in ["window=5x", "since=abc", "since=10&until=5"] {
        let r = g
            .http
            .get(g.url(&format!("/admin/stats/summary?{bad}")))
            .bearer_auth("sk-ops")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_window", "{bad}");
    }
    let r = get("/dashboard").await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(r.headers(), "content-type").starts_with("text/html"));
    assert!(header(r.headers(), "content-security-policy").contains("script-src 'self'"));
    assert!(r.text().await.unwrap().contains("/dashboard/app.js"));
    let r = get("/dashboard/app.js").await.unwrap();
    assert!(header(r.headers(), "content-type").starts_with("text/javascript"));
    // A client key is refused (403) everywhere there.
    for path in paths {
        for client in [
            g.http.get(g.url(path)).bearer_auth("sk-team"),
            g.http.get(g.url(path)).basic_auth("admin", Some("sk-team")),
        ] {
            let r = client.send().await.unwrap();
            assert_eq!(r.status(), 403, "{path}: a client key");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "admin_required", "{path}");
        }
    }
    // The client keys' refusals are recorded; a browser's login challenge (no key at all) is not.
    let refusals = g.audit_records().await;
    assert!(refusals.iter().all(|r| r["status"] != 401), "{refusals:?}");
    let forbidden = refusals.iter().filter(|r| r["status"] == 403);
    assert!(forbidden.clone().all(|r| r["caller"] == "team"));
    assert_eq!(forbidden.count(), 14);
}

/// With prompt logging on, the most-hit entries show the start of their prompt.
#[tokio::test]
async fn most_hit_entries_show_prompts_only_when_logged() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[accounting]\nlog_prompts = true\n{ROUTES}");
    let g = Gateway::start_cached(&config, dir.path()).await;
    for _ in 0..3 {
        let (status, _, _) = g.chat(&ask("support", "How do I export my data?")).await;
        assert_eq!(status, 200);
        g.state.cache.as_ref().unwrap().flush().await.unwrap();
    }
    let c = g.get_json("/admin/stats/cache").await;
    assert_eq!(c["prompts_logged"], true);
    assert_eq!(c["entries"][0]["hits"], 2);
    assert_eq!(c["entries"][0]["prompt"], "How do I export my data?");
}

/// `sluice bench dashboard` end to end on a small store: it fills the store, rebuilds the
/// rollups, scans the ledger, then serves the store with the gateway (which must be able to
/// open it: the benchmark lets go of every handle first) and reads every endpoint.
#[test]
fn bench_dashboard_runs_end_to_end() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "dashboard", "--records", "3000", "--days", "1"])
        .args(["--iterations", "1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"], 3000);
    assert!(!v["endpoints"].as_array().unwrap().is_empty(), "{v}");
}
