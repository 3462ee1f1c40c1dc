//! Faults at the upstream and what the client sees, with attempt counts read from the mock and
//! the request's audit record.

use serde_json::{json, Value};

use crate::support::{ask, header, Gateway, Sse};

/// Route `r`: a primary at `oa` whose upstream model carries `faults`, and a healthy backup at
/// the other provider (`an/backup`).
async fn with_primary(faults: &str, extra: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
        [providers.oa.models]
        primary = {{ upstream_model = "p+{faults}", context_window = 1000 }}
        [providers.an.models]
        backup = {{ upstream_model = "b", context_window = 200000 }}
        [routes.r]
        tiers.main = ["oa/primary", "an/backup"]
        {extra}
        "#
    ))
    .await
}

fn primary(faults: &str) -> String {
    format!("p+{faults}")
}

/// The last request's audit record: one attempt per upstream request the mock saw, `target`
/// the one that answered (`None`: nothing did), its status, and a total time that covers every
/// attempt (each attempt's time is rounded to the millisecond, hence the slack).
async fn recorded(g: &Gateway, target: Option<&str>, status: u16) -> Value {
    let rec = g.audit_records().await.pop().expect("recorded");
    let attempts = rec["attempts"].as_array().unwrap();
    let upstream: u64 = g.mock.counts().values().sum();
    assert_eq!(attempts.len() as u64, upstream, "{rec}");
    let spent: u64 = attempts
        .iter()
        .map(|a| a["elapsed_ms"].as_u64().unwrap())
        .sum();
    let total = rec["total_ms"].as_u64().unwrap();
    assert!(total + attempts.len() as u64 >= spent, "{rec}");
    assert_eq!(rec["target"].as_str(), target, "{rec}");
    assert_eq!(rec["status"].as_u64(), Some(u64::from(status)), "{rec}");
    rec
}

#[tokio::test]
async fn error_once_is_retried_on_the_same_target() {
    let g = with_primary("status-500-once", "").await;
    let (status, h, _) = g.chat(&ask("r", "hi")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-sluice-target"), "oa/primary");
    assert_eq!(header(&h, "x-sluice-attempts"), "2");
    assert_eq!(g.mock.count(&primary("status-500-once")), 2);
    assert_eq!(g.mock.count("b"), 0);
    let rec = recorded(&g, Some("oa/primary"), 200).await;
    assert_eq!(rec["attempts"][0]["status"], 500);
    assert_eq!(rec["attempts"][1]["outcome"], "ok");
}

#[tokio::test]
async fn persistent_5xx_fails_over_to_the_other_provider() {
    for fault in ["status-503", "status-500", "reset"] {
        let g = with_primary(fault, "").await;
        let (status, h, v) = g.chat(&ask("r", "hi")).await;
        assert_eq!(status, 200, "{fault}: {v}");
        assert_eq!(header(&h, "x-sluice-target"), "an/backup", "{fault}");
        assert_eq!(
            header(&h, "x-sluice-attempts"),
            "4",
            "{fault}: 1 + 2 retries + backup"
        );
        assert_eq!(g.mock.count(&primary(fault)), 3, "{fault}");
        assert_eq!(v["model"], "b");
        let rec = recorded(&g, Some("an/backup"), 200).await;
        assert!(
            rec["output_tokens"].as_u64() > Some(0),
            "{fault}: the answer's usage"
        );
    }
}

#[tokio::test]
async fn rate_limit_with_retry_after_waits_when_it_fits() {
    let g = with_primary("status-429-once+retry-after-1", "").await;
    let started = std::time::Instant::now();
    let (status, h, _) = g.chat(&ask("r", "hi")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-sluice-target"), "oa/primary");
    assert_eq!(g.mock.count(&primary("status-429-once+retry-after-1")), 2);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(950),
        "waited Retry-After"
    );
    let rec = recorded(&g, Some("oa/primary"), 200).await;
    assert!(
        rec["total_ms"].as_u64().unwrap() >= 950,
        "the wait is in the answer's time: {rec}"
    );
}

#[tokio::test]
async fn rate_limit_with_long_retry_after_moves_on() {
    // max_retry_after_ms is 1500: a 30 s Retry-After is not waited for.
    let g = with_primary("status-429+retry-after-30", "").await;
    let (status, h, _) = g.chat(&ask("r", "hi")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-sluice-target"), "an/backup");
    assert_eq!(g.mock.count(&primary("status-429+retry-after-30")), 1);
    let rec = recorded(&g, Some("an/backup"), 200).await;
    assert_eq!(rec["attempts"][0]["status"], 429);
}

#[tokio::test]
async fn rate_limit_without_retry_after_backs_off_then_moves_on() {
    let g = with_primary("status-429", "").await;
    let (status, h, _) = g.chat(&ask("r", "hi")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-sluice-target"), "an/backup");
    assert_eq!(g.mock.count(&primary("status-429")), 3);
    recorded(&g, Some("an/backup"), 200).await;
}

#[tokio::test]
async fn context_length_moves_to_a_larger_window_without_retry() {
    let g = with_primary("context-length", "").await;
    let (status, h, _) = g.chat(&ask("r", "a long prompt")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-sluice-target"), "an/backup");
    assert_eq!(
        g.mock.count(&primary("context-length")),
        1,
        "never retried at the same size"
    );
    let rec = recorded(&g, Some("an/backup"), 200).await;
    assert!(rec["attempts"][0]["outcome"]
        .as_str()
        .unwrap()
        .contains("maximum context length"));
}

#[tokio::test]
async fn client_errors_are_returned_without_retry_or_failover() {
    for (fault, status) in [("content-filter", 400), ("status-400", 400)] {
        let g = with_primary(fault, "").await;
        let (got, h, v) = g.chat(&ask("r", "hi")).await;
        assert_eq!(got, status, "{fault}: {v}");
        assert!(v["error"]["message"].is_string());
        assert_eq!(header(&h, "x-sluice-attempts"), "1");
        assert_eq!(g.mock.count(&primary(fault)), 1);
        assert_eq!(
            g.mock.count("b"),
            0,
            "{fault}: no failover on the client's error"
        );
        let rec = recorded(&g, None, status).await;
        assert_eq!(rec["error"], "upstream_rejected", "{fault}");
    }
    let g = with_primary("content-filter", "").await;
    let (_, _, v) = g.chat(&ask("r", "hi")).await;
    assert_eq!(v["error"]["code"], "content_filter");
}

#[tokio::test]
async fn stalled_headers_time_out_and_fail_over() {
    let g = with_primary("stall-headers", "[routes.r.policy]\nmax_retries = 0").await;
    let (status, h, _) = g.chat(&ask("r", "hi")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-sluice-target"), "an/backup");
    assert_eq!(g.mock.count(&primary("stall-headers")), 1);
    let rec = recorded(&g, Some("an/backup"), 200).await;
    // The first-byte limit (1.5 s here), not the deadline, moved it on.
    let outcome = rec["attempts"][0]["outcome"].as_str().unwrap();
    assert_eq!(outcome, "timeout: first byte", "{rec}");
}

#[tokio::test]
async fn every_target_failing_gives_one_error_listing_each_attempt() {
    let g = Gateway::start(
        r#"
        [providers.oa.models]
        a = { upstream_model = "a+status-503" }
        [providers.an.models]
        b = { upstream_model = "b+status-500" }
        [routes.r]
        tiers.main = ["oa/a", "an/b"]
        [routes.r.policy]
        max_retries = 1
        "#,
    )
    .await;
    let (status, h, v) = g.chat(&ask("r", "hi")).await;
    assert_eq!(status, 502, "{v}");
    assert_eq!(v["error"]["code"], "all_targets_failed");
    let attempts = v["error"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4);
    assert_eq!(attempts[0]["target"], "oa/a");
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts[3]["target"], "an/b");
    assert_eq!(header(&h, "x-sluice-attempts"), "4");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("oa/a") && msg.contains("an/b"), "{msg}");
    let rec = recorded(&g, None, 502).await;
    assert_eq!(
        rec["attempts"], v["error"]["attempts"],
        "the audit lists what the client was told"
    );
    assert_eq!(
        (rec["input_tokens"].as_u64(), rec["cost_usd"].as_f64()),
        (Some(0), Some(0.0))
    );
}

#[tokio::test]
async fn breaker_opens_skips_the_target_and_recovers() {
    // Threshold 2 and a short cooldown for this test.
    let g = Gateway::start_raw(
        &(crate::support::BASE_CONFIG.replace(
            "failure_threshold = 50\ncooldown_ms = 60000",
            "failure_threshold = 2\ncooldown_ms = 300",
        ) + r#"
        [providers.oa.models]
        primary = { upstream_model = "p+status-500-times-2" }
        [providers.an.models]
        backup = { upstream_model = "b" }
        [routes.r]
        tiers.main = ["oa/primary", "an/backup"]
        [routes.r.policy]
        max_retries = 0
        "#),
    )
    .await;
    let model = primary("status-500-times-2");
    for _ in 0..2 {
        let (_, h, _) = g.chat(&ask("r", "hi")).await;
        assert_eq!(header(&h, "x-sluice-target"), "an/backup");
    }
    assert_eq!(g.mock.count(&model), 2);
    // Open: the primary is skipped.
    let (_, h, _) = g.chat(&ask("r", "hi")).await;
    assert_eq!(header(&h, "x-sluice-target"), "an/backup");
    assert_eq!(header(&h, "x-sluice-attempts"), "1");
    assert_eq!(g.mock.count(&model), 2);
    // After the cooldown one probe goes through; the upstream has recovered, so it closes.
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let (_, h, _) = g.chat(&ask("r", "hi")).await;
    assert_eq!(header(&h, "x-sluice-target"), "oa/primary");
    assert_eq!(g.mock.count(&model), 3);
    let (_, h, _) = g.chat(&ask("r", "hi")).await;
    assert_eq!(header(&h, "x-sluice-target"), "oa/primary");
}

fn stream_req(model: &str) -> serde_json::Value {
    let mut r = ask(model, "Tell me a long story about a lighthouse");
    r["stream"] = json!(true);
    // Asked for: a stream that ends after its finish reason is complete only with its usage.
    r["stream_options"] = json!({"include_usage": true});
    r
}

#[tokio::test]
async fn a_json_answer_to_a_stream_request_is_relayed_as_a_stream() {
    let g = with_primary("no-stream", "").await;
    let mut req = stream_req("r");
    req["stream_options"] = json!({"include_usage": true});
    let resp = g.post(&req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(resp.headers(), "x-sluice-target"), "oa/primary");
    let sse = Sse::read(resp).await;
    assert!(sse.done() && sse.error().is_none(), "{:?}", sse.data);
    assert!(sse.content().starts_with("Mock answer to:"));
    let usage = sse.json().into_iter().find(|c| c["usage"].is_object());
    assert!(usage.is_some_and(|u| u["usage"]["completion_tokens"].as_u64() > Some(0)));
    assert_eq!(g.mock.count(&primary("no-stream")), 1);
    assert_eq!(g.mock.count("b"), 0);
    let rec = recorded(&g, Some("oa/primary"), 200).await;
    assert!(rec["ttft_ms"].as_u64() <= rec["total_ms"].as_u64(), "{rec}");
}

#[tokio::test]
async fn stream_failure_before_output_fails_over_invisibly() {
    for fault in ["status-500", "slow-first-token-3000ms", "cut-after-0"] {
        let g = with_primary(fault, "[routes.r.policy]\nmax_retries = 0").await;
        let resp = g.post(&stream_req("r")).await;
        assert_eq!(resp.status(), 200, "{fault}");
        assert_eq!(
            header(resp.headers(), "x-sluice-target"),
            "an/backup",
            "{fault}"
        );
        let sse = Sse::read(resp).await;
        assert!(sse.done(), "{fault}: {:?}", sse.data);
        assert!(sse.error().is_none(), "{fault}");
        assert!(sse.content().starts_with("Mock answer to:"), "{fault}");
        let rec = recorded(&g, Some("an/backup"), 200).await;
        assert_eq!(rec["attempts"][1]["outcome"], "ok", "{fault}");
    }
}

/// With `stream_resume = "error"` (and, by default, when nothing can continue the stream: see
/// `resume.rs`), a stream that breaks after output ends with an in-band error, never `[DONE]`.
#[tokio::test]
async fn stream_failure_after_output_never_ends_clean() {
    for fault in [
        "cut-after-3",
        "stall-after-3",
        "malformed-after-3",
        "malformed-run-3-at-3",
        "no-done+no-usage",
    ] {
        let g = with_primary(fault, "[routes.r.policy]\nstream_resume = \"error\"").await;
        let resp = g.post(&stream_req("r")).await;
        assert_eq!(resp.status(), 200, "{fault}");
        assert_eq!(header(resp.headers(), "x-sluice-target"), "oa/primary");
        let sse = Sse::read(resp).await;
        assert!(
            !sse.done(),
            "{fault}: a broken stream must not end with [DONE]"
        );
        let err = sse
            .error()
            .unwrap_or_else(|| panic!("{fault}: in-band error expected"));
        assert_eq!(err["error"]["code"], "stream_interrupted", "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("interrupted after output was sent"),
            "{err}"
        );
        assert!(
            !sse.content().is_empty(),
            "{fault}: output was sent before the failure"
        );
        // The committed attempt is listed with its failure, not as `ok`.
        let attempts = err["error"]["attempts"].as_array().unwrap();
        let last = attempts.last().unwrap();
        assert_eq!(last["target"], "oa/primary", "{err}");
        assert!(
            last["outcome"].as_str().unwrap().contains("interrupted"),
            "{err}"
        );
        assert!(attempts.iter().all(|a| a["outcome"] != "ok"), "{err}");
        if fault.starts_with("stall") {
            // It failed when the idle timeout ran out, not at its first output.
            assert!(last["elapsed_ms"].as_u64().unwrap() > 0, "{err}");
        }
        assert_eq!(
            g.mock.count(&primary(fault)),
            1,
            "{fault}: no retry after output"
        );
        let rec = recorded(&g, Some("oa/primary"), 502).await;
        assert_eq!(rec["error"], "stream_interrupted", "{fault}");
        assert_eq!(rec["attempts"], err["error"]["attempts"], "{fault}");
    }
}
