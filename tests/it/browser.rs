//! The dashboard in a real browser: headless Chromium (Debian's `chromium`) loads `/dashboard` of
//! a gateway (client keys on: the browser logs in with the key) that served a mixed demo run
//! (cache misses, exact and semantic hits, failovers, two gateway routes and an observe-mode
//! one, OpenAI and Anthropic clients), and the figures the page drew (read from the DOM, where
//! every chart element carries its value) must be the JSON endpoints' figures. A screenshot is
//! written to `target/dashboard.png` (and to `$SLUICE_SCREENSHOT` when set: the README's
//! `docs/dashboard.png` is made so).
//!
//! Without Chromium the test says it is skipped and passes, unless `SLUICE_REQUIRE_BROWSER=1`
//! (`.ci/run` installs Chromium and sets it), which makes a missing browser a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::support::{ask, ask_messages, Gateway};

const KEY: &str = "sk-dashboard-demo";

/// Each route's primary fails its first requests (the mock's `-times-<n>` faults, counted per
/// model: with two retries, a failing request takes three): two `support` requests and one
/// `summarize` request fail over to the other provider.
const DEMO: &str = r#"
[accounting]
log_prompts = true
[providers.oa.models]
"gpt-4o-mini" = { upstream_model = "gpt-4o-mini+status-503-times-6", input_per_mtok = 0.15, output_per_mtok = 0.60 }
"gpt-4o" = { input_per_mtok = 2.50, output_per_mtok = 10.0 }
[providers.an.models]
"claude-3-haiku" = { input_per_mtok = 0.25, output_per_mtok = 1.25 }
"claude-3-5-haiku" = { upstream_model = "claude-3-5-haiku+status-529-times-3", input_per_mtok = 0.80, output_per_mtok = 4.0 }
[routes.support]
reference_model = "oa/gpt-4o"
tiers.cheap = ["oa/gpt-4o-mini", "an/claude-3-haiku"]
[routes.summarize]
reference_model = "oa/gpt-4o"
tiers.cheap = ["an/claude-3-5-haiku", "oa/gpt-4o-mini"]
[routes.legacy]
mode = "observe"
tiers.premium = ["oa/gpt-4o"]
"#;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Headless Chromium with a fresh profile and nothing of its own on the network.
fn browser(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--hide-scrollbars",
        "--virtual-time-budget=15000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

async fn send(g: &Gateway, path: &str, body: Value) {
    let r = g
        .http
        .post(g.url(path))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path} {body}");
    let _ = r.bytes().await;
    if let Some(c) = &g.state.cache {
        c.flush().await.unwrap();
    }
}

/// The demo run: misses and hits (exact and semantic), failovers both ways (see [`DEMO`]), an
/// observe-mode baseline, both client APIs, streams.
async fn demo_run(g: &Gateway) {
    let chat = "/v1/chat/completions";
    let messages = "/v1/messages";
    for q in [
        "How do I reset my password?",
        "How do I reset my password?",
        "What are the steps to reset my password?",
        "Where can I download my invoices?",
        "Where can I download my invoices?",
        "How do I add a user to my team?",
    ] {
        send(g, chat, ask("support", q)).await;
    }
    send(
        g,
        messages,
        ask_messages("support", "How do I add a user to my team?"),
    )
    .await;
    let mut streamed = ask("support", "Can I change the billing email?");
    streamed["stream"] = json!(true);
    send(g, chat, streamed).await;
    for q in ["Why was my card declined?", "Is there a status page?"] {
        send(g, chat, ask("support", q)).await;
    }
    for doc in [
        "the quarterly report",
        "the incident review",
        "the board minutes",
    ] {
        let q = format!("Summarize {doc} in three bullet points.");
        send(g, messages, ask_messages("summarize", &q)).await;
        send(g, chat, ask("summarize", &q)).await;
    }
    for q in [
        "Draft a reply to this complaint.",
        "Translate this paragraph to German.",
    ] {
        send(g, chat, ask("legacy", q)).await;
    }
}

/// The value of `attr` on the element whose start tag contains `anchor`.
fn attr(dom: &str, anchor: &str, attr: &str) -> Option<String> {
    let at = dom.find(anchor)?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    let tag = &dom[start..end];
    let key = format!(" {attr}=\"");
    let from = tag.find(&key)? + key.len();
    let len = tag[from..].find('"')?;
    Some(tag[from..from + len].replace("&amp;", "&"))
}

fn num(dom: &str, anchor: &str, name: &str) -> f64 {
    attr(dom, anchor, name)
        .unwrap_or_else(|| panic!("no {name} on {anchor}"))
        .parse()
        .unwrap_or_else(|e| panic!("{anchor} {name}: {e}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-9)
}

#[tokio::test]
async fn dashboard_draws_the_demo_run_in_chromium() {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var("SLUICE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "SLUICE_REQUIRE_BROWSER=1 but no chromium found (apt-get install chromium)"
        );
        eprintln!("browser test skipped: no chromium found (apt-get install chromium, or set SLUICE_CHROMIUM)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[server.api_keys.ops]\nkey = \"{KEY}\"\nrole = \"admin\"\n{DEMO}");
    let g = Gateway::start_cached(&config, dir.path()).await;
    demo_run(&g).await;
    g.state.audit.flush().await.unwrap();

    let profile = tempfile::tempdir().unwrap();
    let authority = g.base.strip_prefix("http://").unwrap();
    let url = format!("http://ops:{KEY}@{authority}/dashboard?window=1h");
    let out = tokio::task::spawn_blocking({
        let (bin, profile, url) = (bin.clone(), profile.path().to_owned(), url.clone());
        move || browser(&bin, &profile).arg("--dump-dom").arg(url).output()
    })
    .await
    .unwrap()
    .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("data-state=\"ready\""),
        "the page did not finish loading: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        dom.chars().take(3000).collect::<String>()
    );

    let get = |path: &'static str| {
        let r = g.http.get(g.url(path)).bearer_auth(KEY).send();
        async move { r.await.unwrap().json::<Value>().await.unwrap() }
    };
    let s = get("/admin/stats/summary?window=1h").await;
    let ts = get("/admin/stats/timeseries?window=1h").await;
    let b = get("/admin/stats/breakdown?window=1h").await;
    let t = get("/admin/stats/targets?window=1h").await;
    let c = get("/admin/stats/cache").await;
    let total = &s["total"];
    assert_eq!(total["requests"], 18, "{s}");
    assert!(total["hits_semantic"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(total["failovers"], 3, "{s}");

    // KPI cards.
    for (kpi, field) in [
        ("requests", "requests"),
        ("spend", "spend_usd"),
        ("avoided", "cost_avoided_usd"),
        ("hit_rate", "hit_rate"),
        ("failovers", "failovers"),
    ] {
        let drawn = num(&dom, &format!("data-kpi=\"{kpi}\""), "data-value");
        assert!(
            close(drawn, total[field].as_f64().unwrap()),
            "{kpi}: {drawn} vs {}",
            total[field]
        );
    }
    // Blended cost now vs the observe-mode baseline.
    for (key, field) in [
        ("now", "now_usd_per_mtok"),
        ("baseline", "baseline_usd_per_mtok"),
    ] {
        let drawn = num(&dom, &format!("data-blended=\"{key}\""), "data-value");
        assert!(close(drawn, s["blended"][field].as_f64().unwrap()), "{key}");
    }
    // Spend and cost avoided over time: the plotted points add up to the totals.
    let points = ts["points"].as_array().unwrap();
    assert_eq!(
        num(&dom, "data-chart=\"chart-spend\"", "data-points") as usize,
        points.len()
    );
    let spend = num(&dom, "data-series=\"spend\"", "data-sum");
    assert!(
        close(spend, total["spend_usd"].as_f64().unwrap()),
        "{spend}"
    );
    let avoided = num(&dom, "data-series=\"avoided\"", "data-sum");
    assert!(
        close(avoided, total["cost_avoided_usd"].as_f64().unwrap()),
        "{avoided}"
    );
    // Hit rate by route, exact vs semantic.
    for r in ts["routes"].as_array().unwrap() {
        let sum = |k: &str| {
            r["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h[k].as_u64().unwrap())
                .sum::<u64>()
        };
        if sum("lookups") == 0 {
            continue;
        }
        let anchor = format!("<figure data-route=\"{}\"", r["route"].as_str().unwrap());
        for (a, k) in [
            ("data-exact", "hits_exact"),
            ("data-semantic", "hits_semantic"),
            ("data-lookups", "lookups"),
        ] {
            assert_eq!(num(&dom, &anchor, a) as u64, sum(k), "{anchor} {a}");
        }
    }
    // Requests by route and target.
    let mut bars = 0;
    for r in b["routes"].as_array().unwrap() {
        for a in r["answered_by"].as_array().unwrap() {
            let anchor = format!(
                "data-route=\"{}\" data-target=\"{}\"",
                r["route"].as_str().unwrap(),
                a["name"].as_str().unwrap()
            );
            assert_eq!(
                num(&dom, &anchor, "data-requests") as u64,
                a["requests"].as_u64().unwrap(),
                "{anchor}"
            );
            bars += 1;
        }
    }
    assert!(bars >= 5, "{b}");
    // Targets: breaker state and failovers.
    for x in t["targets"].as_array().unwrap() {
        let anchor = format!("<tr data-target=\"{}\"", x["target"].as_str().unwrap());
        assert_eq!(
            attr(&dom, &anchor, "data-breaker").as_deref(),
            x["breaker"].as_str(),
            "{anchor}"
        );
        assert_eq!(
            num(&dom, &anchor, "data-failed-over") as u64,
            x["failed_over_from"].as_u64().unwrap()
        );
    }
    for f in t["failovers"].as_array().unwrap() {
        assert!(dom.contains(&format!(
            "data-request=\"{}\"",
            f["request_id"].as_str().unwrap()
        )));
    }
    // Most-hit cache entries, with their prompts (prompt logging is on in the demo).
    let top = &c["entries"][0];
    let anchor = format!("data-entry=\"{}\"", top["id"]);
    assert_eq!(
        num(&dom, &anchor, "data-hits") as u64,
        top["hits"].as_u64().unwrap()
    );
    assert!(dom.contains(top["prompt"].as_str().unwrap()));

    // The screenshot.
    let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard.png");
    let out = tokio::task::spawn_blocking({
        let (bin, profile, png) = (bin, profile.path().to_owned(), png.clone());
        move || {
            browser(&bin, &profile)
                .arg("--window-size=1400,2080")
                .arg(format!("--screenshot={}", png.display()))
                .arg(url)
                .output()
        }
    })
    .await
    .unwrap()
    .expect("chromium runs");
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 20_000,
        "screenshot of {size} bytes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(to) = std::env::var_os("SLUICE_SCREENSHOT") {
        std::fs::copy(&png, &to).unwrap();
    }
}
