//! `POST /v1/messages` through the whole gateway (what the shared conformance list does not
//! cover): cache hits replayed as Anthropic events, failover across provider kinds, the audit,
//! client keys, `count_tokens`, and errors in Anthropic's shape on every path under it.

use serde_json::{json, Value};

use crate::support::{ask_messages, header, Events, Gateway};

const ROUTES: &str = r#"
[providers.oa.models]
"gpt-4o-mini" = {}
broken = { upstream_model = "x+status-503" }
cut = { upstream_model = "x+cut-after-3" }
[providers.an.models]
"claude-3-haiku" = {}
"an-broken" = { upstream_model = "y+status-529" }
[routes.support]
tiers.cheap = ["oa/gpt-4o-mini"]
[routes.claude]
tiers.cheap = ["an/claude-3-haiku"]
[routes.to_anthropic]
tiers.only = ["oa/broken", "an/claude-3-haiku"]
[routes.to_openai]
tiers.only = ["an/an-broken", "oa/gpt-4o-mini"]
[routes.fragile_stream]
tiers.only = ["oa/cut"]
"#;

/// A cache hit is served to an Anthropic client as a message, or replayed as Anthropic's
/// events, equal to the answer it was stored from; whichever API stored it.
#[tokio::test]
async fn cache_hits_replay_as_anthropic_messages_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start_cached(ROUTES, dir.path()).await;
    for route in ["support", "claude"] {
        let q = ask_messages(route, "How do I rotate my API keys safely?");
        let (status, h, first) = g.messages(&q).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(header(&h, "x-sluice-cache"), "miss");
        g.state.cache.as_ref().unwrap().flush().await.unwrap();

        let (_, h, hit) = g.messages(&q).await;
        assert_eq!(header(&h, "x-sluice-cache"), "hit-exact", "{route}");
        assert_eq!(hit["content"], first["content"]);
        assert_eq!(hit["usage"], first["usage"], "the original answer's usage");
        assert_ne!(hit["id"], first["id"], "a fresh id");

        let mut stream = q.clone();
        stream["stream"] = json!(true);
        let resp = g.post_messages(&stream).await;
        assert_eq!(header(resp.headers(), "x-sluice-cache"), "hit-exact");
        let ev = Events::read(resp).await;
        assert_eq!(ev.names()[0], "message_start");
        assert_eq!(ev.names().last(), Some(&"message_stop"));
        let m = ev.message();
        assert_eq!(m["content"], first["content"], "{route}");
        assert_eq!(m["stop_reason"], "end_turn");
        assert_eq!(m["usage"]["output_tokens"], first["usage"]["output_tokens"]);
        assert_eq!(m["usage"]["input_tokens"], first["usage"]["input_tokens"]);
    }
    // An answer an OpenAI client stored serves an Anthropic client asking the same.
    let (status, _, v) = g
        .chat(&json!({"model": "support", "max_tokens": 1024,
            "messages": [{"role": "user", "content": "What does a circuit breaker do?"}]}))
        .await;
    assert_eq!(status, 200, "{v}");
    g.state.cache.as_ref().unwrap().flush().await.unwrap();
    let (_, h, m) = g
        .messages(&ask_messages("support", "What does a circuit breaker do?"))
        .await;
    assert_eq!(header(&h, "x-sluice-cache"), "hit-exact");
    assert_eq!(
        m["content"][0]["text"],
        v["choices"][0]["message"]["content"]
    );
}

/// Failover crosses provider kinds for Anthropic clients too, and the audit records the API.
#[tokio::test]
async fn failover_crosses_provider_kinds_and_is_audited() {
    let g = Gateway::start(ROUTES).await;
    for (route, answered) in [
        ("to_anthropic", "an/claude-3-haiku"),
        ("to_openai", "oa/gpt-4o-mini"),
    ] {
        for stream in [false, true] {
            let mut q = ask_messages(route, "Tell me about failover");
            q["stream"] = json!(stream);
            let resp = g.post_messages(&q).await;
            assert_eq!(resp.status(), 200);
            assert_eq!(header(resp.headers(), "x-sluice-target"), answered);
            let m = if stream {
                Events::read(resp).await.message()
            } else {
                resp.json::<Value>().await.unwrap()
            };
            assert!(
                m["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("Mock answer to: Tell me about failover"),
                "{m}"
            );
        }
    }
    let recs = g.audit_records().await;
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert_eq!(r["api"], "anthropic", "{r}");
        assert_eq!(r["status"], 200);
        assert!(r["attempts"].as_array().unwrap().len() >= 2, "{r}");
        assert!(r["input_tokens"].as_u64().unwrap() > 0);
    }
    let (_, _, _) = g.chat(&crate::support::ask("support", "x")).await;
    let recs = g.audit_records().await;
    assert_eq!(recs.last().unwrap()["api"], "openai");
}

/// A stream that breaks and cannot be continued ends with an `error` event, which Anthropic's
/// SDKs raise, and no `message_stop`.
#[tokio::test]
async fn a_broken_stream_ends_with_an_error_event() {
    let g = Gateway::start(ROUTES).await;
    let mut q = ask_messages("fragile_stream", "Describe the lighthouse at night");
    q["stream"] = json!(true);
    let ev = Events::read(g.post_messages(&q).await).await;
    let names = ev.names();
    assert_eq!(names.last(), Some(&"error"), "{names:?}");
    assert!(!names.contains(&"message_stop"));
    let err = ev.error().unwrap();
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "api_error");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("interrupted"));
    assert!(
        ev.text().starts_with("Mock answer to:"),
        "the part that was sent"
    );
}

#[tokio::test]
async fn count_tokens_estimates_for_a_known_model() {
    let g = Gateway::start(ROUTES).await;
    let count = |body: Value| {
        let g = &g;
        async move {
            let r = g
                .http
                .post(g.url("/v1/messages/count_tokens"))
                .header("anthropic-version", "2023-06-01")
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let short = json!({"model": "claude", "messages": [{"role": "user", "content": "Hi"}]});
    let (status, v) = count(short.clone()).await;
    assert_eq!(status, 200, "{v}");
    let n = v["input_tokens"].as_u64().unwrap();
    assert!(n > 0);
    let long = json!({"model": "claude", "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi ".repeat(400)}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}]});
    let (_, v) = count(long).await;
    assert!(v["input_tokens"].as_u64().unwrap() > n + 250, "{v}");
    let (status, v) = count(json!({"model": "nope", "messages": []})).await;
    assert_eq!(
        (status, &v["error"]["type"]),
        (404, &json!("not_found_error")),
        "{v}"
    );
    let (status, v) = count(json!({"model": "claude"})).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["message"], "messages: Field required");
    // Nothing went upstream; a count is not recorded, its refusals are (as every refusal).
    assert_eq!(g.mock.counts().values().sum::<u64>(), 0);
    let recs = g.audit_records().await;
    let statuses: Vec<_> = recs.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [404, 400], "{recs:?}");
    assert!(recs.iter().all(|r| r["api"] == "anthropic"), "{recs:?}");
}

/// Every way a request can be refused before the pipeline has Anthropic's shape under
/// `/v1/messages`, with Anthropic's status codes.
#[tokio::test]
async fn refusals_under_messages_have_anthropic_shape() {
    let g = Gateway::start(&format!("[server]\nmax_body_bytes = 2000\n{ROUTES}")).await;
    let shape = |v: &Value, kind: &str| {
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert!(v["error"]["message"].is_string());
    };
    let r = g.http.get(g.url("/v1/messages")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    shape(&r.json().await.unwrap(), "invalid_request_error");
    let r = g
        .http
        .post(g.url("/v1/messages/batches"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    shape(&r.json().await.unwrap(), "not_found_error");
    let r = g
        .http
        .post(g.url("/v1/messages"))
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    shape(&r.json().await.unwrap(), "invalid_request_error");
    let (status, _, v) = g
        .messages(&ask_messages("support", &"x".repeat(3000)))
        .await;
    assert_eq!(status, 413);
    shape(&v, "request_too_large");
    let mut q = ask_messages("support", "hi");
    q["messages"][0]["content"] =
        json!([{"type": "image", "source": {"type": "file", "file_id": "file_1"}}]);
    let (status, _, v) = g.messages(&q).await;
    assert_eq!(status, 400);
    assert_eq!(
        v["error"]["message"].as_str().unwrap().split(':').next(),
        Some("messages.0.content.0.source")
    );
    // OpenAI's endpoints keep OpenAI's shape.
    let r = g
        .http
        .get(g.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.json::<Value>().await.unwrap()["error"]["code"].is_string());
}

/// With client keys, Anthropic clients authenticate as their SDKs do (`x-api-key`) and are
/// refused in Anthropic's shape; any `anthropic-version` is accepted (and none).
#[tokio::test]
async fn client_keys_and_any_anthropic_version() {
    let g = Gateway::start(&format!("[server.api_keys]\nteam = \"sk-team\"\n{ROUTES}")).await;
    let post = |key: Option<&str>, version: Option<&str>| {
        let mut r = g
            .http
            .post(g.url("/v1/messages"))
            .json(&ask_messages("support", "hi"));
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        if let Some(v) = version {
            r = r.header("anthropic-version", v);
        }
        r.send()
    };
    for (key, status, kind) in [
        (None, 401, Some("authentication_error")),
        (Some("sk-wrong"), 401, Some("authentication_error")),
        (Some("sk-team"), 200, None),
    ] {
        let r = post(key, Some("2023-06-01")).await.unwrap();
        assert_eq!(r.status(), status, "{key:?}");
        let v: Value = r.json().await.unwrap();
        if let Some(kind) = kind {
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["type"], kind);
        }
    }
    for version in [None, Some("2023-01-01"), Some("2099-12-31")] {
        let r = post(Some("sk-team"), version).await.unwrap();
        assert_eq!(r.status(), 200, "{version:?}");
    }
    // The answered ones are the key's; the two refusals are recorded too, with no caller.
    let recs = g.audit_records().await;
    let (answered, refused): (Vec<_>, Vec<_>) = recs.iter().partition(|r| r["status"] == 200);
    assert_eq!(answered.len(), 4);
    assert!(answered.iter().all(|r| r["caller"] == "team"));
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused
        .iter()
        .all(|r| r["status"] == 401 && r["caller"].is_null()));
}
