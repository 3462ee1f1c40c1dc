//! Deadline budgets, the breaker and retry budget, provider-side faults and fallbacks on plain
//! model names, over real HTTP. Time bounds are asserted only where the behaviour is about time
//! (a fallback that started well before the deadline), generously, and preferably on the
//! attempts' recorded `elapsed_ms`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{ask, header, Gateway, Sse, BASE_CONFIG};

/// Route `r`: a primary whose upstream model carries `faults` and a healthy backup at the
/// other provider; `policy` is the route's.
async fn gateway(faults: &str, policy: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
        [providers.oa.models]
        primary = {{ upstream_model = "p+{faults}" }}
        [providers.an.models]
        backup = {{ upstream_model = "b" }}
        [routes.r]
        tiers.main = ["oa/primary", "an/backup"]
        [routes.r.policy]
        {policy}
        "#
    ))
    .await
}

/// Long stage limits, a 6 s deadline: only the deadline's shares can move the request on.
const SHARES: &str =
    "first_byte_timeout_ms = 60000\nfirst_token_timeout_ms = 60000\ntotal_timeout_ms = 6000";

fn attempt_ms(rec: &Value, i: usize) -> u64 {
    rec["attempts"][i]["elapsed_ms"].as_u64().unwrap()
}

#[tokio::test]
async fn a_target_that_never_answers_leaves_the_backup_most_of_the_deadline() {
    let g = gateway("stall-headers", SHARES).await;
    let started = Instant::now();
    let (status, h, v) = g.chat(&ask("r", "hi")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(header(&h, "x-sluice-target"), "an/backup");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "answered within the deadline"
    );
    assert_eq!(
        g.mock.count("p+stall-headers"),
        1,
        "a timed-out target is not retried"
    );
    let rec = &g.audit_records().await[0];
    let outcome = rec["attempts"][0]["outcome"].as_str().unwrap();
    assert!(outcome.contains("share of the deadline"), "{rec}");
    // A third of the deadline: the backup started well before it ran out.
    assert!((1_500..3_500).contains(&attempt_ms(rec, 0)), "{rec}");
}

#[tokio::test]
async fn a_slow_first_token_fails_over_at_the_end_of_its_share() {
    let g = gateway("slow-first-token-20000ms", SHARES).await;
    let mut req = ask("r", "hi");
    req["stream"] = json!(true);
    let resp = g.post(&req).await;
    assert_eq!(header(resp.headers(), "x-sluice-target"), "an/backup");
    let sse = Sse::read(resp).await;
    assert!(sse.done() && sse.error().is_none(), "{:?}", sse.data);
    assert_eq!(g.mock.count("p+slow-first-token-20000ms"), 1);
    let rec = &g.audit_records().await[0];
    assert!((1_500..3_500).contains(&attempt_ms(rec, 0)), "{rec}");
    assert!(rec["ttft_ms"].as_u64().unwrap() < 6_000, "{rec}");
}

/// Both targets hang: a 504 `deadline_exceeded`. The primary ran out of its share (held
/// against it); the backup ran out of the request's own deadline (not held against it).
#[tokio::test]
async fn the_request_deadline_is_not_held_against_a_target() {
    let text = BASE_CONFIG.replace("failure_threshold = 50", "failure_threshold = 1")
        + r#"
        [providers.oa.models]
        primary = { upstream_model = "p+stall-headers" }
        [providers.an.models]
        backup = { upstream_model = "b+stall-headers" }
        [routes.r]
        tiers.main = ["oa/primary", "an/backup"]
        [routes.r.policy]
        first_byte_timeout_ms = 60000
        total_timeout_ms = 1500
        "#;
    let g = Gateway::start_raw(&text).await;
    let (status, _, v) = g.chat(&ask("r", "hi")).await;
    assert_eq!(status, 504, "{v}");
    assert_eq!(v["error"]["code"], "deadline_exceeded");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("before any target answered"));
    let attempts = v["error"]["attempts"].as_array().unwrap();
    assert!(attempts[0]["outcome"]
        .as_str()
        .unwrap()
        .contains("share of the deadline"));
    assert!(attempts[1]["outcome"]
        .as_str()
        .unwrap()
        .contains("total deadline"));
    let state = |t: &str, s: &str| format!(r#"sluice_breaker_state{{target="{t}",state="{s}"}}"#);
    assert_eq!(g.metric(&state("oa/primary", "open")).await, 1.0);
    assert_eq!(g.metric(&state("an/backup", "closed")).await, 1.0);
}

#[tokio::test]
async fn a_stream_that_outlives_the_deadline_says_it_was_interrupted() {
    let g = Gateway::start(
        r#"
        [providers.oa.models]
        only = { upstream_model = "p+stall-after-5" }
        [routes.r]
        tiers.main = ["oa/only"]
        [routes.r.policy]
        idle_timeout_ms = 60000
        total_timeout_ms = 1500
        "#,
    )
    .await;
    let mut req = ask("r", "hi");
    req["stream"] = json!(true);
    let sse = Sse::read(g.post(&req).await).await;
    assert!(!sse.done() && !sse.content().is_empty(), "{:?}", sse.data);
    let err = sse.error().unwrap();
    assert_eq!(err["error"]["code"], "stream_interrupted", "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("deadline ran out"));
    let rec = &g.audit_records().await[0];
    assert_eq!(
        (rec["status"].as_u64(), rec["error"].as_str()),
        (Some(504), Some("stream_interrupted"))
    );
}

#[tokio::test]
async fn provider_faults_fail_over_at_once_and_open_the_breaker() {
    for (fault, class) in [
        ("status-401", "auth"),
        ("status-403", "auth"),
        ("status-402", "billing"),
        ("quota", "billing"),
        ("status-404", "not_found"),
    ] {
        let g = gateway(fault, "").await;
        let (status, h, v) = g.chat(&ask("r", "hi")).await;
        assert_eq!(status, 200, "{fault}: {v}");
        assert_eq!(header(&h, "x-sluice-target"), "an/backup", "{fault}");
        assert_eq!(
            g.mock.count(&format!("p+{fault}")),
            1,
            "{fault}: not retried"
        );
        let series =
            format!(r#"sluice_provider_faults_total{{target="oa/primary",fault="{class}"}}"#);
        assert_eq!(g.metric(&series).await, 1.0, "{fault}");
        // Its circuit is open: the next request goes straight to the backup.
        let (_, h, _) = g.chat(&ask("r", "hi")).await;
        assert_eq!(header(&h, "x-sluice-attempts"), "1", "{fault}");
        assert_eq!(g.mock.count(&format!("p+{fault}")), 1, "{fault}");
        let rec = &g.audit_records().await[0];
        let outcome = rec["attempts"][0]["outcome"].as_str().unwrap();
        assert!(
            outcome.starts_with(&format!("provider fault ({class})")),
            "{rec}"
        );
        assert!(!rec.to_string().contains("sk-mock"), "{rec}");
    }
}

#[tokio::test]
async fn a_flapping_primary_gets_traffic_back_soon_after_it_recovers() {
    // Opens after two failures; a 200 ms first cooldown doubling to 1.6 s. The primary is down
    // for 0.4 s, up 0.4 s, down, up, down, then up for good from 2 s after its first request.
    let text = BASE_CONFIG.replace(
        "failure_threshold = 50\ncooldown_ms = 60000",
        "failure_threshold = 2\ncooldown_ms = 200\nmax_cooldown_ms = 1600",
    ) + r#"
        [providers.oa.models]
        primary = { upstream_model = "p+flap-400ms" }
        [providers.an.models]
        backup = { upstream_model = "b" }
        [routes.r]
        tiers.main = ["oa/primary", "an/backup"]
        [routes.r.policy]
        max_retries = 0
        "#;
    let g = Gateway::start_raw(&text).await;
    let first = Instant::now();
    let recovered = first + Duration::from_millis(2_000);
    let (mut skipped, mut back) = (false, None);
    while first.elapsed() < Duration::from_secs(15) {
        let (status, h, v) = g.chat(&ask("r", "hi")).await;
        assert_eq!(status, 200, "{v}");
        let target = header(&h, "x-sluice-target");
        skipped |= target == "an/backup" && header(&h, "x-sluice-attempts") == "1";
        if target == "oa/primary" && Instant::now() > recovered {
            back = Some(Instant::now() - recovered);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(skipped, "the breaker opened while the primary was down");
    let back = back.expect("traffic returned to the primary");
    // At most one 1.6 s cooldown (the cap) after it recovered, with room for a slow machine.
    assert!(back < Duration::from_secs(5), "back after {back:?}");
}

#[tokio::test]
async fn the_retry_budget_stops_retries_once_spent() {
    let text = BASE_CONFIG.replace(
        "failure_threshold = 50",
        "failure_threshold = 50\nretry_budget = 0.0\nretry_budget_floor = 1",
    ) + r#"
        [providers.oa.models]
        primary = { upstream_model = "p+status-503" }
        [providers.an.models]
        backup = { upstream_model = "b" }
        [routes.r]
        tiers.main = ["oa/primary", "an/backup"]
        "#;
    let g = Gateway::start_raw(&text).await;
    for _ in 0..2 {
        let (status, h, _) = g.chat(&ask("r", "hi")).await;
        assert_eq!(status, 200);
        assert_eq!(header(&h, "x-sluice-target"), "an/backup");
    }
    // max_retries = 2 would make six; the budget allowed one retry in the window.
    assert_eq!(g.mock.count("p+status-503"), 3);
    let series = r#"sluice_retries_denied_total{target="oa/primary"}"#;
    assert_eq!(g.metric(series).await, 2.0);
}

#[tokio::test]
async fn plain_model_names_fall_back_across_providers() {
    let g = Gateway::start(
        r#"
        [providers.oa.models."gpt-x"]
        upstream_model = "gx+status-503"
        fallbacks = ["an/claude-y"]
        [providers.an.models."claude-y"]
        upstream_model = "cy"
        [providers.oa.models."gpt-z"]
        upstream_model = "gz"
        [routes."gpt-z"]
        tiers.main = ["an/claude-y"]
        "#,
    )
    .await;
    let (status, h, v) = g.chat(&ask("gpt-x", "hi")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(header(&h, "x-sluice-route"), "passthrough");
    assert_eq!(header(&h, "x-sluice-target"), "an/claude-y");
    assert_eq!(g.mock.count("gx+status-503"), 3);
    // A route named like a model takes the model's requests.
    let (_, h, _) = g.chat(&ask("gpt-z", "hi")).await;
    assert_eq!(header(&h, "x-sluice-route"), "gpt-z");
    assert_eq!(header(&h, "x-sluice-target"), "an/claude-y");
    assert_eq!(g.mock.count("gz"), 0);
}

/// `x-mock-fault` reaches the built-in simulated provider, never a configured upstream.
#[tokio::test]
async fn the_fault_header_reaches_simulated_providers_only() {
    let g = Gateway::start(
        r#"
        [providers.sim]
        kind = "openai"
        api_key_env = "SLUICE_TEST_KEY_THAT_IS_NEVER_SET"
        simulate_without_key = true
        models.s = {}
        [providers.oa.models]
        real = { upstream_model = "r" }
        [routes.sim]
        tiers.main = ["sim/s"]
        [routes.real]
        tiers.main = ["oa/real"]
        "#,
    )
    .await;
    assert!(g.state.config.providers.iter().any(|p| p.simulated));
    let send = |route: &str| {
        let req = g
            .http
            .post(g.url("/v1/chat/completions"))
            .header("x-mock-fault", "status-418")
            .json(&ask(route, "hi"));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send("real").await, 200);
    assert_eq!(send("sim").await, 418, "relayed as the client's error");
}

/// `x-sluice-timeout-ms`: the client's shorter deadline is planned within, and what it cuts
/// short is not held against the target.
#[tokio::test]
async fn a_client_deadline_shortens_the_request() {
    let text = BASE_CONFIG.replace("failure_threshold = 50", "failure_threshold = 1")
        + r#"
        [providers.oa.models]
        primary = { upstream_model = "p+stall-headers" }
        [routes.r]
        tiers.main = ["oa/primary"]
        [routes.r.policy]
        first_byte_timeout_ms = 60000
        total_timeout_ms = 60000
        "#;
    let g = Gateway::start_raw(&text).await;
    let send = |timeout: &str| {
        let req = g
            .http
            .post(g.url("/v1/chat/completions"))
            .header("x-sluice-timeout-ms", timeout)
            .json(&ask("r", "hi"));
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = send("800").await;
    assert_eq!(status, 504, "{v}");
    assert_eq!(v["error"]["code"], "deadline_exceeded");
    let ms = v["error"]["attempts"][0]["elapsed_ms"].as_u64().unwrap();
    assert!(
        (700..5_000).contains(&ms),
        "ended by the client's 800 ms: {v}"
    );
    let closed = r#"sluice_breaker_state{target="oa/primary",state="closed"}"#;
    assert_eq!(
        g.metric(closed).await,
        1.0,
        "the client's deadline is not the target's fault"
    );
    let (status, v) = send("soon").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_header"))
    );
}
