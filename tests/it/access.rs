//! Client keys with roles, budgets and rate limits, over real HTTP: who may call what, what a
//! refusal looks like (and that it makes no upstream call), and that every refusal is audited.

use serde_json::{json, Value};

use crate::support::{ask, header, Gateway};

const MODELS: &str = r#"
[providers.oa.models]
"gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.6, context_window = 128000 }
"gpt-4-turbo" = { input_per_mtok = 10.0, output_per_mtok = 30.0, context_window = 128000 }
[providers.an.models]
"claude-3-haiku" = { input_per_mtok = 0.25, output_per_mtok = 1.25, context_window = 200000 }

[routes.chat]
tiers.cheap = ["oa/gpt-4o-mini"]
tiers.premium = ["oa/gpt-4-turbo"]
[routes.summarize]
tiers.cheap = ["an/claude-3-haiku"]
"#;

/// Keys of every kind used below.
fn keys(extra: &str) -> String {
    format!(
        r#"
[server.api_keys]
plain = "sk-plain"
[server.api_keys.ops]
key = "sk-admin"
role = "admin"
[server.api_keys.chat-only]
key = "sk-chat-only"
routes = ["chat"]
models = []
[server.api_keys.premium]
key = "sk-premium"
tiers = ["premium"]
{extra}
{MODELS}"#
    )
}

async fn call(
    g: &Gateway,
    key: Option<&str>,
    body: &Value,
    tier: Option<&str>,
) -> reqwest::Response {
    let mut r = g.http.post(g.url("/v1/chat/completions")).json(body);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    if let Some(t) = tier {
        r = r.header("x-sluice-tier", t);
    }
    r.send().await.unwrap()
}

async fn status_code(r: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = r.status().as_u16();
    let h = r.headers().clone();
    (status, h, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn roles_routes_models_and_tiers() {
    let g = Gateway::start(&keys("")).await;
    let get = |path: &'static str, key: Option<&'static str>| {
        let mut r = g.http.get(g.url(path));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    // No key, a wrong key: 401 before anything else.
    for key in [None, Some("sk-nope")] {
        let (s, _, v) = status_code(call(&g, key, &ask("chat", "hi"), None).await).await;
        assert_eq!(s, 401, "{key:?}");
        assert_eq!(v["error"]["code"], "invalid_api_key");
    }
    // A client key on /admin and /metrics: 403; the admin key: 200.
    for path in ["/admin/cache/stats", "/metrics", "/admin/keys"] {
        let r = get(path, Some("sk-plain")).await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "admin_required", "{path}");
        assert_eq!(
            get(path, Some("sk-admin")).await.unwrap().status(),
            200,
            "{path}"
        );
    }
    let r = g
        .http
        .delete(g.url("/admin/cache"))
        .bearer_auth("sk-plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a client key cannot purge the cache");

    // A key without the route: 403, no upstream call.
    let (s, _, v) =
        status_code(call(&g, Some("sk-chat-only"), &ask("summarize", "x"), None).await).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("route_not_allowed")),
        "{v}"
    );
    let (s, _, v) =
        status_code(call(&g, Some("sk-chat-only"), &ask("gpt-4o-mini", "x"), None).await).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("model_not_allowed")),
        "{v}"
    );
    assert_eq!(
        g.mock.count("claude-3-haiku") + g.mock.count("gpt-4o-mini"),
        0
    );
    let (s, ..) = status_code(call(&g, Some("sk-chat-only"), &ask("chat", "x"), None).await).await;
    assert_eq!(s, 200);

    // Tier override only where allowed.
    let (s, _, v) =
        status_code(call(&g, Some("sk-plain"), &ask("chat", "x"), Some("premium")).await).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("tier_not_allowed")),
        "{v}"
    );
    assert_eq!(g.mock.count("gpt-4-turbo"), 0);
    let r = call(&g, Some("sk-premium"), &ask("chat", "x"), Some("premium")).await;
    assert_eq!(header(r.headers(), "x-sluice-target"), "oa/gpt-4-turbo");
    let r = call(&g, Some("sk-admin"), &ask("chat", "y"), Some("premium")).await;
    assert_eq!(r.status(), 200, "admins may force any tier");
    assert_eq!(g.mock.count("gpt-4-turbo"), 2);
}

#[tokio::test]
async fn keys_created_and_revoked_over_http() {
    let g = Gateway::start(&keys("")).await;
    let created = g
        .http
        .post(g.url("/admin/keys"))
        .bearer_auth("sk-admin")
        .json(&json!({"name": "team-b", "routes": ["chat"], "requests_per_minute": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let v: Value = created.json().await.unwrap();
    let key = v["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-sluice-") && key.len() > 40, "{key}");
    let (s, ..) = status_code(call(&g, Some(&key), &ask("chat", "hi"), None).await).await;
    assert_eq!(s, 200);
    // The list never shows a key, only a digest prefix; names stay unique.
    let list: Value = g
        .http
        .get(g.url("/admin/keys"))
        .bearer_auth("sk-admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = list.to_string();
    assert!(!text.contains(&key) && !text.contains("sk-plain"), "{text}");
    let team = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "team-b")
        .unwrap();
    assert_eq!(team["source"], "store");
    assert_eq!(team["requests_per_minute"], 100);
    let again = g
        .http
        .post(g.url("/admin/keys"))
        .bearer_auth("sk-admin")
        .json(&json!({"name": "team-b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    // Revoked: 401 at once.
    let r = g
        .http
        .delete(g.url("/admin/keys/team-b"))
        .bearer_auth("sk-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, _, v) = status_code(call(&g, Some(&key), &ask("chat", "hi"), None).await).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    // A config key cannot be revoked over HTTP.
    let r = g
        .http
        .delete(g.url("/admin/keys/plain"))
        .bearer_auth("sk-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn budgets_are_enforced_from_the_ledger_with_no_upstream_call() {
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\ndata_dir = \"{}\"\n{}",
        data.path().display(),
        keys("[server.api_keys.capped]\nkey = \"sk-capped\"\nbudget_usd_per_day = 0.00000001\n")
    );
    let g = Gateway::start(&text).await;
    // The first request passes (nothing spent yet) and costs more than the budget.
    let (s, ..) = status_code(call(&g, Some("sk-capped"), &ask("chat", "hello"), None).await).await;
    assert_eq!(s, 200);
    assert_eq!(g.mock.count("gpt-4o-mini"), 1);
    let (s, h, v) =
        status_code(call(&g, Some("sk-capped"), &ask("chat", "again"), None).await).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["error"]["code"], "budget_exceeded");
    assert_eq!(v["error"]["type"], "insufficient_quota");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily budget"),
        "{v}"
    );
    let wait: u64 = header(&h, "retry-after").parse().unwrap();
    assert!((1..=86_400).contains(&wait), "{wait}");
    assert_eq!(
        g.mock.count("gpt-4o-mini"),
        1,
        "no upstream call over budget"
    );
    // Other keys are not affected.
    let (s, ..) = status_code(call(&g, Some("sk-plain"), &ask("chat", "hello"), None).await).await;
    assert_eq!(s, 200);
    let records = g.audit_records().await;
    let refused = records
        .iter()
        .find(|r| r["error"] == "budget_exceeded")
        .expect("the refusal is audited");
    assert_eq!(refused["caller"], "capped");
    assert_eq!(refused["status"], 429);
    g.shutdown().await;

    // After a restart the budget starts from the audit ledger: still refused.
    let g = Gateway::start(&text).await;
    let (s, _, v) =
        status_code(call(&g, Some("sk-capped"), &ask("chat", "third"), None).await).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (429, Some("budget_exceeded"))
    );
    assert_eq!(g.mock.count("gpt-4o-mini"), 0);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let g = Gateway::start(&keys(
        "[server.api_keys.slow]\nkey = \"sk-slow\"\nrequests_per_minute = 2\n[server.api_keys.tight]\nkey = \"sk-tight\"\ntokens_per_minute = 10\n",
    ))
    .await;
    for i in 0..2 {
        let (s, ..) = status_code(call(&g, Some("sk-slow"), &ask("chat", "hi"), None).await).await;
        assert_eq!(s, 200, "request {i}");
    }
    let (s, h, v) = status_code(call(&g, Some("sk-slow"), &ask("chat", "hi"), None).await).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert_eq!(v["error"]["type"], "requests");
    let wait: u64 = header(&h, "retry-after").parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert_eq!(g.mock.count("gpt-4o-mini"), 2);
    // Tokens: one answer's usage puts the key in debt; the next request waits.
    let (s, ..) = status_code(
        call(
            &g,
            Some("sk-tight"),
            &ask("chat", "a longer question about things"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(s, 200);
    let (s, h, v) =
        status_code(call(&g, Some("sk-tight"), &ask("chat", "again"), None).await).await;
    assert_eq!(
        (s, v["error"]["type"].as_str()),
        (429, Some("tokens")),
        "{v}"
    );
    assert!(header(&h, "retry-after").parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn every_refusal_before_the_pipeline_is_audited() {
    let g = Gateway::start(&format!("[server]\nmax_body_bytes = 1000\n{MODELS}")).await;
    let post = |path: &'static str, body: &'static str| {
        g.http
            .post(g.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let mut want = Vec::new();
    for (path, body, status) in [
        ("/v1/chat/completions", "{not json", 400),
        ("/v1/chat/completions", r#"{"model":"chat"}"#, 400),
        ("/v1/nothing-here", "{}", 404),
    ] {
        let r = post(path, body).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path} {body}");
        want.push((status, header(r.headers(), "x-request-id").to_owned()));
    }
    let big = format!(
        r#"{{"model":"chat","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(2000)
    );
    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    want.push((413, header(r.headers(), "x-request-id").to_owned()));
    let r = g
        .http
        .get(g.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    want.push((405, header(r.headers(), "x-request-id").to_owned()));
    // Successful reads are not recorded.
    assert_eq!(
        g.http.get(g.url("/healthz")).send().await.unwrap().status(),
        200
    );
    let records = g.audit_records().await;
    assert_eq!(records.len(), want.len(), "{records:#?}");
    for (status, id) in want {
        let r = records
            .iter()
            .find(|r| r["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no record of the {status}"));
        assert_eq!(r["status"], status);
        assert!(r["error"].is_string(), "{r}");
        assert_eq!(r["route"], "(none)");
    }
    assert_eq!(g.mock.counts().values().sum::<u64>(), 0);
}

/// `sluice keys create | list | revoke` on a data directory (the gateway stopped): the key it
/// prints works on the next start, the list never shows it, and a revoked key is refused.
#[tokio::test]
async fn keys_cli_on_a_data_directory() {
    let data = tempfile::tempdir().unwrap();
    let sluice = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let created = sluice(&[
        "keys",
        "create",
        "team-a",
        "--routes",
        "chat",
        "--requests-per-minute",
        "50",
    ]);
    let key = created
        .lines()
        .find(|l| l.starts_with("sk-sluice-"))
        .expect("the key is printed")
        .to_owned();
    sluice(&["keys", "create", "ops", "--role", "admin"]);
    let list = sluice(&["keys", "list", "--format", "json"]);
    assert!(!list.contains(&key), "{list}");
    let v: Value = serde_json::from_str(&list).unwrap();
    let names: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert_eq!(names, ["ops", "team-a"]);
    let text = format!(
        "[server]\ndata_dir = \"{}\"\n{MODELS}",
        data.path().display()
    );
    let g = Gateway::start(&text).await;
    let (s, ..) = status_code(call(&g, Some(&key), &ask("chat", "hi"), None).await).await;
    assert_eq!(s, 200, "a stored key works after a restart");
    let (s, ..) = status_code(call(&g, None, &ask("chat", "hi"), None).await).await;
    assert_eq!(s, 401, "stored keys turn authentication on");
    g.shutdown().await;
    sluice(&["keys", "revoke", "team-a"]);
    let g = Gateway::start(&text).await;
    let (s, ..) = status_code(call(&g, Some(&key), &ask("chat", "hi"), None).await).await;
    assert_eq!(s, 401, "revoked");
}

/// Anthropic's Messages API passes the same checks as chat completions: the key as Anthropic
/// SDKs send it (`x-api-key`), routes and tiers, budgets, rates, browser origin; every refusal in
/// Anthropic's shape and without an upstream call.
#[tokio::test]
async fn anthropic_messages_pass_the_same_checks() {
    let data = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\ndata_dir = \"{}\"\n{}",
        data.path().display(),
        keys(
            "[server.api_keys.capped]\nkey = \"sk-capped\"\nbudget_usd_per_day = 0.00000001\n\
             [server.api_keys.slow]\nkey = \"sk-slow\"\nrequests_per_minute = 1\n"
        )
    );
    let g = Gateway::start(&text).await;
    let msg = |model: &str, text: &str| {
        json!({"model": model, "max_tokens": 32,
               "messages": [{"role": "user", "content": text}]})
    };
    let send = |path: &'static str, key: Option<&'static str>, body: Value| {
        let mut r = g
            .http
            .post(g.url(path))
            .header("anthropic-version", "2023-06-01")
            .json(&body);
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        r
    };
    let refused = |v: &Value, kind: &str, code: &str| {
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
    };
    let upstream = || g.mock.counts().values().sum::<u64>();

    for key in [None, Some("sk-nope")] {
        let r = send("/v1/messages", key, msg("chat", "hi")).send().await;
        let (s, _, v) = status_code(r.unwrap()).await;
        assert_eq!(s, 401, "{key:?}");
        refused(&v, "authentication_error", "invalid_api_key");
    }
    let r = send("/v1/messages", Some("sk-plain"), msg("chat", "hi")).send();
    let (s, _, v) = status_code(r.await.unwrap()).await;
    assert_eq!((s, v["type"].as_str()), (200, Some("message")), "{v}");
    assert_eq!(upstream(), 1);

    // Routes, models and tiers.
    let r = send("/v1/messages", Some("sk-chat-only"), msg("summarize", "x")).send();
    let (s, _, v) = status_code(r.await.unwrap()).await;
    assert_eq!(s, 403);
    refused(&v, "permission_error", "route_not_allowed");
    let r = send(
        "/v1/messages",
        Some("sk-chat-only"),
        msg("gpt-4o-mini", "x"),
    )
    .send();
    let (s, _, v) = status_code(r.await.unwrap()).await;
    assert_eq!(s, 403);
    refused(&v, "permission_error", "model_not_allowed");
    let r = send(
        "/v1/messages/count_tokens",
        Some("sk-chat-only"),
        msg("summarize", "x"),
    )
    .send();
    let (s, _, v) = status_code(r.await.unwrap()).await;
    assert_eq!(s, 403);
    refused(&v, "permission_error", "route_not_allowed");
    let r = send("/v1/messages", Some("sk-plain"), msg("chat", "x"))
        .header("x-sluice-tier", "premium")
        .send();
    let (s, _, v) = status_code(r.await.unwrap()).await;
    assert_eq!(s, 403);
    refused(&v, "permission_error", "tier_not_allowed");
    assert_eq!(upstream(), 1);

    // A budget spent: 429 with Retry-After, nothing sent upstream.
    let r = send("/v1/messages", Some("sk-capped"), msg("chat", "hello")).send();
    assert_eq!(r.await.unwrap().status(), 200);
    let before = upstream();
    let r = send("/v1/messages", Some("sk-capped"), msg("chat", "again")).send();
    let (s, h, v) = status_code(r.await.unwrap()).await;
    assert_eq!(s, 429, "{v}");
    refused(&v, "rate_limit_error", "budget_exceeded");
    assert!(header(&h, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(upstream(), before, "no upstream call over budget");

    // A request rate: 429 with Retry-After.
    let r = send("/v1/messages", Some("sk-slow"), msg("chat", "one")).send();
    assert_eq!(r.await.unwrap().status(), 200);
    let before = upstream();
    let r = send("/v1/messages", Some("sk-slow"), msg("chat", "two")).send();
    let (s, h, v) = status_code(r.await.unwrap()).await;
    assert_eq!(s, 429, "{v}");
    refused(&v, "rate_limit_error", "rate_limit_exceeded");
    assert!(header(&h, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(upstream(), before);

    // Browser origin: a text/plain body and a cross-site JSON POST are refused, key or not.
    let r = g
        .http
        .post(g.url("/v1/messages"))
        .header("x-api-key", "sk-plain")
        .header("content-type", "text/plain")
        .body(msg("chat", "planted").to_string())
        .send();
    let (s, _, v) = status_code(r.await.unwrap()).await;
    assert_eq!(s, 415, "{v}");
    assert_eq!(v["type"], "error", "{v}");
    let r = send("/v1/messages", Some("sk-plain"), msg("chat", "planted"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send();
    let (s, _, v) = status_code(r.await.unwrap()).await;
    assert_eq!(s, 403);
    refused(&v, "permission_error", "cross_site_request");
    assert_eq!(upstream(), before);

    // Every refusal is audited, as an Anthropic request.
    let records = g.audit_records().await;
    let budget = records
        .iter()
        .find(|r| r["error"] == "budget_exceeded")
        .expect("the budget refusal is audited");
    assert_eq!(budget["caller"], "capped");
    assert_eq!(budget["api"], "anthropic", "{budget}");
}

/// Feedback (`POST /v1/feedback`, the `x-sluice-feedback` header) needs a key like any API call,
/// and a client key rates only its own requests: another caller's id reads as unknown (404), so
/// ids reveal nothing; an admin key rates any.
#[tokio::test]
async fn feedback_rates_only_the_callers_own_requests() {
    let g = Gateway::start(&keys("")).await;
    let r = call(&g, Some("sk-plain"), &ask("chat", "hello there"), None).await;
    assert_eq!(r.status(), 200);
    let id = header(r.headers(), "x-request-id").to_owned();
    let rate = |key: Option<&'static str>, score: f64| {
        let mut r = g
            .http
            .post(g.url("/v1/feedback"))
            .json(&json!({"request_id": id, "score": score}));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    assert_eq!(rate(None, 0.5).await.unwrap().status(), 401);
    let other = rate(Some("sk-chat-only"), 0.0).await.unwrap();
    assert_eq!(other.status(), 404);
    let v: Value = other.json().await.unwrap();
    assert_eq!(v["error"]["code"], "request_not_found");
    // By header, on another caller's next request: not stored either.
    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .bearer_auth("sk-chat-only")
        .header("x-sluice-feedback", format!("{id}=0"))
        .json(&ask("chat", "something else"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "x-sluice-feedback-stored"), "0/1");
    assert_eq!(rate(Some("sk-plain"), 1.0).await.unwrap().status(), 200);
    assert_eq!(rate(Some("sk-admin"), 0.75).await.unwrap().status(), 200);
    let records = g.audit_records().await;
    let rec = records
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .expect("the rated record");
    assert_eq!(rec["feedback"]["score"], 0.75, "{rec}");
    g.shutdown().await;
}
