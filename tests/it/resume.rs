//! Streams that break after output continue at another target (prefill, regenerate, the
//! continuation request) as one stream with one `[DONE]`; tolerant framing (a malformed event
//! skipped, a run of them failing the attempt, an answer complete without `[DONE]`). Each test
//! checks what the client got, the upstream requests the mock counted, and the audit record.

use serde_json::{json, Value};

use crate::support::{header, spliced, Gateway, Sse};

const PROMPT: &str = "Tell me about the lighthouse keeper and the storm";

/// Route `r`: a primary at the OpenAI-compatible mock whose upstream model carries `faults`,
/// and a backup at the Anthropic one (which takes a prefill) carrying `backup`.
async fn gateway(faults: &str, backup: &str, extra: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
        [providers.oa.models]
        primary = {{ upstream_model = "p+{faults}", input_per_mtok = 1.0, output_per_mtok = 2.0 }}
        [providers.an.models]
        backup = {{ upstream_model = "b{backup}", input_per_mtok = 3.0, output_per_mtok = 4.0 }}
        [routes.r]
        tiers.main = ["oa/primary", "an/backup"]
        {extra}
        "#
    ))
    .await
}

fn stream_req() -> Value {
    json!({"model": "r", "stream": true, "stream_options": {"include_usage": true},
           "messages": [{"role": "user", "content": PROMPT}]})
}

/// The primary's and the backup's whole answers, read before the counters are reset.
async fn answers(g: &Gateway) -> (Vec<String>, Vec<String>) {
    let a = g.mock_words("p", PROMPT, true).await;
    let b = g.mock_words("b", PROMPT, false).await;
    g.mock.reset();
    (a, b)
}

fn outcomes(rec: &Value) -> Vec<String> {
    let attempts = rec["attempts"].as_array().unwrap();
    attempts
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_cut_stream_continues_at_the_backup_by_prefill() {
    let g = gateway("cut-after-14", "", "").await;
    let (a, b) = answers(&g).await;
    let started = std::time::Instant::now();
    let resp = g.post(&stream_req()).await;
    assert_eq!(header(resp.headers(), "x-sluice-target"), "oa/primary");
    let sse = Sse::read(resp).await;
    let elapsed = started.elapsed();
    assert!(sse.done() && sse.error().is_none(), "{:?}", sse.data);
    assert_eq!(sse.dones(), 1);
    assert_eq!(
        sse.content(),
        spliced(&a, &b, 14),
        "the primary's words, then the backup's"
    );
    let chunks = sse.json();
    let ids: std::collections::HashSet<&str> =
        chunks.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids.len(), 1, "one stream id");
    let roles = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["role"].is_string());
    assert_eq!(roles.count(), 1, "one role chunk");
    assert_eq!((g.mock.count("p+cut-after-14"), g.mock.count("b")), (1, 1));

    // Usage: the primary's part (estimated) plus what the backup reported for its part.
    let usage = sse.usage().expect("usage chunk");
    let (p, c) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(c > (b.len() - 14) as u64, "both parts billed: {usage}");
    assert_eq!(usage["total_tokens"].as_u64(), Some(p + c));

    let recs = g.audit_records().await;
    let rec = &recs[0];
    assert_eq!(rec["status"], 200, "{rec}");
    assert!(rec["error"].is_null());
    assert_eq!(rec["target"], "an/backup", "the target that finished it");
    let out = outcomes(rec);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].starts_with("stream interrupted after output was sent"),
        "{out:?}"
    );
    assert_eq!(out[1], "ok: resumed the interrupted stream (prefill)");
    assert_eq!(rec["output_tokens"].as_u64(), Some(c));
    assert_eq!(rec["usage_estimated"], true);
    assert!(rec["cost_usd"].as_f64().unwrap() > 0.0);
    assert!(rec["total_ms"].as_u64().unwrap() <= elapsed.as_millis() as u64 + 5);
    let series = r#"sluice_stream_resumes_total{route="r",outcome="prefill"}"#;
    assert_eq!(g.metric(series).await, 1.0);
}

#[tokio::test]
async fn a_stalled_stream_continues_once_its_share_of_the_deadline_runs_out() {
    // A long idle limit: the share of the 6 s deadline (a third) decides when to move on.
    let policy = "[routes.r.policy]\nidle_timeout_ms = 30000\ntotal_timeout_ms = 6000";
    let g = gateway("stall-after-14", "", policy).await;
    let (a, b) = answers(&g).await;
    let sse = Sse::read(g.post(&stream_req()).await).await;
    assert!(sse.done() && sse.error().is_none(), "{:?}", sse.data);
    assert_eq!(sse.content(), spliced(&a, &b, 14));
    let rec = &g.audit_records().await[0];
    let stalled = &rec["attempts"][0];
    assert!(
        stalled["outcome"]
            .as_str()
            .unwrap()
            .contains("share of the deadline"),
        "{rec}"
    );
    // Given up on well before the deadline, leaving the backup the rest.
    let ms = stalled["elapsed_ms"].as_u64().unwrap();
    assert!((1_500..4_500).contains(&ms), "{rec}");
}

#[tokio::test]
async fn a_malformed_tail_or_a_run_of_bad_events_continues_at_the_backup() {
    for fault in ["malformed-after-14", "malformed-run-3-at-14"] {
        let g = gateway(fault, "", "").await;
        let (a, b) = answers(&g).await;
        let sse = Sse::read(g.post(&stream_req()).await).await;
        assert!(
            sse.done() && sse.error().is_none(),
            "{fault}: {:?}",
            sse.data
        );
        assert_eq!(sse.content(), spliced(&a, &b, 14), "{fault}");
        assert_eq!(g.mock.count("b"), 1, "{fault}");
    }
}

#[tokio::test]
async fn one_malformed_or_unknown_event_is_skipped_and_counted() {
    for (fault, skipped) in [
        ("malformed-at-5", 1.0),
        ("unknown-at-5", 1.0),
        ("malformed-run-2-at-5", 2.0),
    ] {
        let g = gateway(fault, "", "").await;
        let (a, _) = answers(&g).await;
        let sse = Sse::read(g.post(&stream_req()).await).await;
        assert!(
            sse.done() && sse.error().is_none(),
            "{fault}: {:?}",
            sse.data
        );
        assert_eq!(
            sse.content(),
            a.concat(),
            "{fault}: the primary's whole answer"
        );
        assert_eq!(
            (g.mock.count(&format!("p+{fault}")), g.mock.count("b")),
            (1, 0)
        );
        let series = r#"sluice_stream_events_skipped_total{target="oa/primary"}"#;
        assert_eq!(g.metric(series).await, skipped, "{fault}");
    }
    // The limit is the route's: four in a row are tolerated with max_malformed_events = 5.
    let policy = "[routes.r.policy]\nmax_malformed_events = 5";
    let g = gateway("malformed-run-4-at-5", "", policy).await;
    let sse = Sse::read(g.post(&stream_req()).await).await;
    assert!(sse.done(), "{:?}", sse.data);
    assert_eq!(g.mock.count("b"), 0);
}

#[tokio::test]
async fn an_answer_with_its_finish_reason_and_usage_is_complete_without_done() {
    let g = gateway("no-done", "", "").await;
    let (a, _) = answers(&g).await;
    let sse = Sse::read(g.post(&stream_req()).await).await;
    assert!(sse.done() && sse.error().is_none(), "{:?}", sse.data);
    assert_eq!(sse.dones(), 1);
    assert_eq!(sse.content(), a.concat());
    assert!(sse.usage().is_some());
    assert_eq!((g.mock.count("p+no-done"), g.mock.count("b")), (1, 0));
    let rec = &g.audit_records().await[0];
    assert_eq!(
        (rec["status"].as_u64(), rec["usage_estimated"].as_bool()),
        (Some(200), Some(false))
    );

    // Anthropic's stream without `message_stop`: its usage came with `message_delta`.
    let g = Gateway::start(
        r#"
        [providers.an.models]
        only = { upstream_model = "c+no-done" }
        [routes.r]
        tiers.main = ["an/only"]
        "#,
    )
    .await;
    let sse = Sse::read(g.post(&stream_req()).await).await;
    assert!(sse.done() && sse.error().is_none(), "{:?}", sse.data);
    assert!(sse
        .usage()
        .is_some_and(|u| u["completion_tokens"].as_u64() > Some(0)));

    // Without the usage the client asked for, it is not complete: not presented as an answer.
    let g = gateway("no-done+no-usage", "", "").await;
    let sse = Sse::read(g.post(&stream_req()).await).await;
    assert!(!sse.done(), "{:?}", sse.data);
    assert_eq!(sse.error().unwrap()["error"]["code"], "stream_interrupted");
}

#[tokio::test]
async fn a_rejected_prefill_falls_back_to_the_continuation_request() {
    let g = gateway("cut-after-14", "+no-prefill", "").await;
    let (a, b) = answers(&g).await;
    let sse = Sse::read(g.post(&stream_req()).await).await;
    assert!(sse.done() && sse.error().is_none(), "{:?}", sse.data);
    assert_eq!(sse.content(), spliced(&a, &b, 14));
    assert_eq!(
        g.mock.count("b+no-prefill"),
        2,
        "the prefill, then the continuation request"
    );
    let out = outcomes(&g.audit_records().await[0]);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(
        out[1].contains("HTTP 400") && out[1].contains("prefill"),
        "{out:?}"
    );
    assert_eq!(out[2], "ok: resumed the interrupted stream (user_turn)");
    let series = r#"sluice_stream_resumes_total{route="r",outcome="user_turn"}"#;
    assert_eq!(g.metric(series).await, 1.0);
}

/// The same model at another provider: regenerated, the part already sent skipped when the
/// new answer repeats it exactly; when it does not, the continuation request is used instead.
#[tokio::test]
async fn the_same_model_elsewhere_regenerates_and_skips_what_was_sent() {
    let g = Gateway::start(
        r#"
        [providers.oa.models]
        m = { upstream_model = "s+cut-after-14" }
        [providers.oa2]
        kind = "openai"
        base_url = "{MOCK}/v1"
        models.m = { upstream_model = "s" }
        [routes.r]
        tiers.main = ["oa/m", "oa2/m"]
        "#,
    )
    .await;
    let a = g.mock_words("s", PROMPT, true).await;
    g.mock.reset();
    let sse = Sse::read(g.post(&stream_req()).await).await;
    assert!(sse.done() && sse.error().is_none(), "{:?}", sse.data);
    assert_eq!(sse.content(), a.concat(), "one answer, nothing repeated");
    assert_eq!(g.mock.count("s"), 1);
    let out = outcomes(&g.audit_records().await[0]);
    assert_eq!(out[1], "ok: resumed the interrupted stream (regenerate)");

    // At the Anthropic endpoint the same model answers otherwise: no splice of that answer.
    let g = Gateway::start(
        r#"
        [providers.oa.models]
        m = { upstream_model = "s+cut-after-14" }
        [providers.an2]
        kind = "anthropic"
        base_url = "{MOCK}"
        prefill = false
        models.m = { upstream_model = "s" }
        [routes.r]
        tiers.main = ["oa/m", "an2/m"]
        "#,
    )
    .await;
    let a = g.mock_words("s", PROMPT, true).await;
    let b = g.mock_words("s", PROMPT, false).await;
    g.mock.reset();
    let sse = Sse::read(g.post(&stream_req()).await).await;
    assert!(sse.done() && sse.error().is_none(), "{:?}", sse.data);
    assert_eq!(sse.content(), spliced(&a, &b, 14));
    assert_eq!(g.mock.count("s"), 2, "regenerated, then asked to continue");
    let out = outcomes(&g.audit_records().await[0]);
    assert!(
        out[1].contains("does not repeat the text already sent"),
        "{out:?}"
    );
    assert_eq!(out[2], "ok: resumed the interrupted stream (user_turn)");
}

#[tokio::test]
async fn a_stream_nothing_can_continue_ends_with_an_error_and_no_done() {
    let g = gateway("cut-after-14", "+status-503", "").await;
    let sse = Sse::read(g.post(&stream_req()).await).await;
    assert!(!sse.done(), "{:?}", sse.data);
    let err = sse.error().expect("in-band error");
    assert_eq!(err["error"]["code"], "stream_interrupted");
    let attempts = err["error"]["attempts"].as_array().unwrap();
    assert_eq!(attempts[0]["target"], "oa/primary");
    assert!(attempts[1..]
        .iter()
        .all(|a| a["target"] == "an/backup" && a["status"] == 503));
    assert_eq!(
        g.mock.count("b+status-503"),
        1,
        "no retries while a client waits mid-stream"
    );
    let rec = &g.audit_records().await[0];
    assert_eq!(
        (rec["status"].as_u64(), rec["error"].as_str()),
        (Some(502), Some("stream_interrupted"))
    );
    let series = r#"sluice_stream_resumes_total{route="r",outcome="failed"}"#;
    assert_eq!(g.metric(series).await, 1.0);

    // Tool calls are not continued: their arguments cannot be spliced safely.
    let g = gateway("cut-after-2", "", "").await;
    let mut req = stream_req();
    req["tools"] = json!([{"type": "function", "function": {"name": "search",
        "parameters": {"type": "object"}}}]);
    req["tool_choice"] = json!("required");
    let sse = Sse::read(g.post(&req).await).await;
    assert!(!sse.done() && sse.error().is_some(), "{:?}", sse.data);
    assert_eq!(g.mock.count("b"), 0);
}

#[tokio::test]
async fn a_resumed_answer_is_cached_only_when_complete() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start_cached(
        r#"
        [providers.oa.models]
        primary = { upstream_model = "p+cut-after-14" }
        broken = { upstream_model = "x+cut-after-14" }
        [providers.an.models]
        backup = { upstream_model = "b" }
        down = { upstream_model = "d+status-503" }
        [routes.r]
        tiers.main = ["oa/primary", "an/backup"]
        [routes.lost]
        tiers.main = ["oa/broken", "an/down"]
        "#,
        dir.path(),
    )
    .await;
    let send = |model: &str| {
        let mut req = stream_req();
        req["model"] = json!(model);
        let g = &g;
        async move {
            let r = g.post(&req).await;
            let cache = header(r.headers(), "x-sluice-cache").to_owned();
            let sse = Sse::read(r).await;
            g.state.cache.as_ref().unwrap().flush().await.unwrap();
            (cache, sse)
        }
    };
    let (first, resumed) = send("r").await;
    assert!(resumed.done());
    let (second, hit) = send("r").await;
    assert_eq!((first.as_str(), second.as_str()), ("miss", "hit-exact"));
    assert_eq!(hit.content(), resumed.content());

    let (_, failed) = send("lost").await;
    assert!(!failed.done());
    let (again, _) = send("lost").await;
    assert_eq!(again, "miss", "an interrupted answer is never cached");
}
