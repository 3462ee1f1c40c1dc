//! Routing, the API surface, bad input and shutdown, over real HTTP.

use serde_json::json;

use crate::support::{ask, header, Gateway, Sse};

const ROUTES: &str = r#"
[providers.oa.models]
"gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.6, context_window = 128000 }
"gpt-4-turbo" = { input_per_mtok = 10.0, output_per_mtok = 30.0, context_window = 128000 }
[providers.an.models]
"claude-3-haiku" = { input_per_mtok = 0.25, output_per_mtok = 1.25, context_window = 200000 }
"claude-3-5-sonnet" = { input_per_mtok = 3.0, output_per_mtok = 15.0, context_window = 200000 }

[routes.simple_classification]
tiers.cheap = ["an/claude-3-haiku", "oa/gpt-4o-mini"]

[routes.support]
tiers.cheap = ["oa/gpt-4o-mini", "an/claude-3-haiku"]
tiers.standard = ["an/claude-3-5-sonnet", "oa/gpt-4-turbo"]
tiers.premium = { targets = ["an/claude-3-5-sonnet", "oa/gpt-4-turbo"], strategy = "cheapest" }
[[routes.support.rules]]
tier = "premium"
metadata = { priority = "high" }
[[routes.support.rules]]
tier = "standard"
has_tools = true
[[routes.support.rules]]
tier = "standard"
keywords = ["refund", "chargeback"]
[[routes.support.rules]]
tier = "premium"
min_prompt_tokens = 2000
"#;

#[tokio::test]
async fn routes_by_name_header_rule_and_passthrough() {
    let g = Gateway::start(ROUTES).await;
    let target = |h: &reqwest::header::HeaderMap| header(h, "x-sluice-target").to_owned();

    let (_, h, v) = g.chat(&ask("simple_classification", "Is this spam?")).await;
    assert_eq!(target(&h), "an/claude-3-haiku");
    assert_eq!(v["model"], "claude-3-haiku");

    // The header wins over the model field.
    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .header("x-sluice-route", "support")
        .json(&ask("gpt-4o", "Where is my parcel?"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(r.headers(), "x-sluice-route"), "support");
    assert_eq!(header(r.headers(), "x-sluice-target"), "oa/gpt-4o-mini");

    let (_, h, _) = g.chat(&ask("support", "I want a REFUND now")).await;
    assert_eq!(
        target(&h),
        "an/claude-3-5-sonnet",
        "keyword rule -> standard"
    );

    let mut tools = ask("support", "look it up");
    tools["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    let (_, h, _) = g.chat(&tools).await;
    assert_eq!(target(&h), "an/claude-3-5-sonnet", "tools rule -> standard");

    let mut meta = ask("support", "hello");
    meta["metadata"] = json!({"priority": "high"});
    let (_, h, _) = g.chat(&meta).await;
    assert_eq!(
        target(&h),
        "an/claude-3-5-sonnet",
        "premium, cheapest first"
    );

    let (_, h, _) = g.chat(&ask("support", &"word ".repeat(2000))).await;
    assert_eq!(target(&h), "an/claude-3-5-sonnet", "long prompt -> premium");

    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .header("x-sluice-tier", "premium")
        .json(&ask("support", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(r.headers(), "x-sluice-target"),
        "an/claude-3-5-sonnet"
    );

    let (_, h, v) = g.chat(&ask("gpt-4-turbo", "plain model")).await;
    assert_eq!(header(&h, "x-sluice-route"), "passthrough");
    assert_eq!(target(&h), "oa/gpt-4-turbo");
    assert_eq!(v["model"], "gpt-4-turbo");
}

#[tokio::test]
async fn models_and_health_endpoints() {
    let g = Gateway::start(ROUTES).await;
    let v: serde_json::Value = g.get_json("/v1/models").await;
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for id in [
        "simple_classification",
        "support",
        "gpt-4o-mini",
        "claude-3-haiku",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let one = g
        .http
        .get(g.url("/v1/models/support"))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let missing = g.http.get(g.url("/v1/models/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    // Clients whose base URL has no `/v1` (as for `/chat/completions`).
    let bare: serde_json::Value = g.get_json("/models").await;
    assert_eq!(bare, v);
    assert_eq!(
        g.http.get(g.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        g.http.get(g.url("/readyz")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn bad_input_gets_openai_shaped_errors() {
    let g = Gateway::start(ROUTES).await;
    let raw = |body: &'static str| {
        g.http
            .post(g.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // (case, body, status, code, param)
    let cases = [
        ("malformed", "{\"model\": ", 400, Some("invalid_json"), None),
        ("not json", "hello", 400, Some("invalid_json"), None),
        (
            "missing messages",
            r#"{"model":"support"}"#,
            400,
            Some("invalid_request"),
            Some("messages"),
        ),
        (
            "wrong type",
            r#"{"model":"support","messages":"hi"}"#,
            400,
            Some("invalid_request"),
            Some("messages"),
        ),
        (
            "bad role",
            r#"{"model":"support","messages":[{"role":"wizard","content":"x"}]}"#,
            400,
            Some("invalid_request"),
            Some("messages[0].role"),
        ),
        (
            "bad second message",
            r#"{"model":"support","messages":[{"role":"user","content":"x"},{"role":"user","content":7}]}"#,
            400,
            Some("invalid_request"),
            Some("messages[1].content"),
        ),
        (
            "temperature type",
            r#"{"model":"support","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
            400,
            Some("invalid_request"),
            Some("temperature"),
        ),
        (
            "user type",
            r#"{"model":"support","messages":[{"role":"user","content":"x"}],"user":5}"#,
            400,
            Some("invalid_request"),
            Some("user"),
        ),
        (
            "empty messages",
            r#"{"model":"support","messages":[]}"#,
            400,
            Some("invalid_request"),
            Some("messages"),
        ),
        (
            "unknown model",
            r#"{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}"#,
            404,
            Some("model_not_found"),
            Some("model"),
        ),
    ];
    for (name, body, status, code, param) in cases {
        let resp = raw(body).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{name}");
        let v: serde_json::Value = resp.json().await.unwrap();
        let e = &v["error"];
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: {v}"
        );
        assert_eq!(e["type"], "invalid_request_error", "{name}");
        assert_eq!(e["code"].as_str(), code, "{name}");
        assert_eq!(e["param"].as_str(), param, "{name}: {v}");
    }

    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .header("x-sluice-route", "nope")
        .json(&ask("support", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let huge = json!({"model": "support", "messages": [{"role": "user", "content": "x".repeat(9 * 1024 * 1024)}]});
    let r = g.post(&huge).await;
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large");

    let r = g
        .http
        .get(g.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = g.http.get(g.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unknown_url");

    // Still serving after all that.
    let (status, _, _) = g.chat(&ask("support", "still there?")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let g = Gateway::start(ROUTES).await;
    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .header("x-request-id", "abc-123")
        .json(&ask("support", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(r.headers(), "x-request-id"), "abc-123");
    let (_, h, _) = g.chat(&ask("support", "x")).await;
    assert!(header(&h, "x-request-id").starts_with("req_"));
}

#[tokio::test]
async fn shutdown_drains_in_flight_streams() {
    let mut g = Gateway::start(
        r#"
        [providers.oa.models]
        slow = { upstream_model = "s+pace-20ms+tokens-30" }
        [providers.an.models]
        unused = {}
        "#,
    )
    .await;
    let mut req = ask("slow", "tell me slowly");
    req["stream"] = json!(true);
    let resp = g.post(&req).await;
    assert_eq!(resp.status(), 200);
    // The stream has started; now ask the server to stop.
    g.trigger_shutdown();
    let sse = Sse::read(resp).await;
    assert!(
        sse.done(),
        "the in-flight stream completes: {:?}",
        sse.data.len()
    );
    assert_eq!(sse.content().split_whitespace().count(), 30);
    assert!(g.state.is_shutting_down());
    // The server task ends once drained.
    g.shutdown().await;
}

#[test]
fn shipped_example_configs_validate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            sluice::config::Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 2);
}

#[tokio::test]
async fn embeddings_pass_through_with_failover() {
    let g = Gateway::start(
        r#"
        [providers.oa.models]
        "text-embedding-3-small" = { upstream_model = "emb+status-503", input_per_mtok = 0.02 }
        [providers.oa2]
        kind = "openai"
        base_url = "{MOCK}/v1"
        models."text-embedding-3-small" = { upstream_model = "emb", input_per_mtok = 0.02 }
        [providers.an.models]
        "claude-3-haiku" = {}
        "#,
    )
    .await;
    let post = |body: serde_json::Value| g.http.post(g.url("/v1/embeddings")).json(&body).send();
    let r = post(json!({"model": "text-embedding-3-small", "input": ["hello", "world"]}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(r.headers(), "x-sluice-target"),
        "oa2/text-embedding-3-small"
    );
    assert_eq!(
        header(r.headers(), "x-sluice-attempts"),
        "4",
        "3 tries at the failing provider, then the other"
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let r = post(json!({"model": "claude-3-haiku", "input": "x"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no OpenAI-compatible provider serves it");
    let r = post(json!({"model": "text-embedding-3-small"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "input");
}

#[tokio::test]
async fn client_keys_are_required_when_configured() {
    let g = Gateway::start(&format!(
        "[server]\napi_keys = [\"sk-team-a\", \"sk-team-b\"]\n{ROUTES}"
    ))
    .await;
    let send = |key: Option<(&'static str, &'static str)>| {
        let mut r = g
            .http
            .post(g.url("/v1/chat/completions"))
            .json(&ask("support", "who am I?"));
        if let Some((name, value)) = key {
            r = r.header(name, value);
        }
        r.send()
    };
    for (case, key, status) in [
        ("no key", None, 401),
        (
            "wrong key",
            Some(("authorization", "Bearer sk-team-c")),
            401,
        ),
        (
            "not bearer",
            Some(("authorization", "Basic sk-team-a")),
            401,
        ),
        ("bearer", Some(("authorization", "Bearer sk-team-a")), 200),
        (
            "lower-case scheme",
            Some(("authorization", "bearer sk-team-b")),
            200,
        ),
        ("x-api-key", Some(("x-api-key", "sk-team-b")), 200),
    ] {
        let r = send(key).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{case}");
        assert!(!header(r.headers(), "x-request-id").is_empty(), "{case}");
        let v: serde_json::Value = r.json().await.unwrap();
        if status == 401 {
            assert_eq!(v["error"]["code"], "invalid_api_key", "{case}: {v}");
            assert_eq!(v["error"]["type"], "invalid_request_error", "{case}");
        } else {
            assert_eq!(v["object"], "chat.completion", "{case}");
        }
    }
    // Refused before any upstream call.
    assert_eq!(g.mock.count("gpt-4o-mini"), 3);
    // Other endpoints are closed too (metrics need an admin key); health checks stay open.
    let get = |path: &'static str| g.http.get(g.url(path)).send();
    assert_eq!(get("/v1/models").await.unwrap().status(), 401);
    assert_eq!(get("/admin/cache/stats").await.unwrap().status(), 401);
    assert_eq!(get("/metrics").await.unwrap().status(), 401);
    for open in ["/healthz", "/readyz"] {
        assert_eq!(get(open).await.unwrap().status(), 200, "{open}");
    }
}
