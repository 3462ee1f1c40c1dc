//! Trace export: a request's spans reach an OTLP/HTTP (JSON) receiver with the request id and
//! route, and its stages (attempts, cache lookup and write-back, audit record) are children of
//! the request span in the same trace.
//!
//! The layer is installed per test with `set_default` (a thread-local subscriber): `#[tokio::test]`
//! runs the gateway's tasks on the test's thread, so they all see it, and tests running on other
//! threads do not.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header as h, HeaderMap};
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::{json, Value};
use sluice::telemetry::otlp::{self, OtlpHandle};
use tracing_subscriber::layer::SubscriberExt;

use crate::support::{ask, header, loopback_any_port, Gateway, Sse};

type Bodies = Arc<Mutex<Vec<Value>>>;

/// A collector stand-in: keeps every JSON body POSTed to `/v1/traces`.
async fn collector() -> (String, Bodies) {
    async fn traces(State(b): State<Bodies>, headers: HeaderMap, body: Bytes) -> &'static str {
        assert_eq!(headers[h::CONTENT_TYPE], "application/json");
        b.lock()
            .push(serde_json::from_slice(&body).expect("OTLP body is JSON"));
        "{}"
    }
    let bodies = Bodies::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(traces))
        .with_state(bodies.clone());
    let listener = tokio::net::TcpListener::bind(loopback_any_port())
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

/// Every exported span, with its resource's `service.name` checked.
fn spans(bodies: &Bodies, service: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for body in bodies.lock().iter() {
        for rs in body["resourceSpans"].as_array().expect("resourceSpans") {
            assert_eq!(attr(&rs["resource"], "service.name"), json!(service));
            for ss in rs["scopeSpans"].as_array().expect("scopeSpans") {
                out.extend(ss["spans"].as_array().expect("spans").iter().cloned());
            }
        }
    }
    out
}

/// An attribute's value, unwrapped from its `AnyValue` (`intValue` stays a string, as in
/// the protobuf JSON mapping); `null` when absent.
fn attr(span: &Value, key: &str) -> Value {
    span["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|kv| kv["key"] == key))
        .and_then(|kv| kv["value"].as_object())
        .and_then(|v| v.values().next().cloned())
        .unwrap_or(Value::Null)
}

/// Flush until the request span with this id has been exported. Its last handle is dropped
/// when the handler future is, which hyper does around sending the response, so the first
/// flush can come a moment early; this waits on the export, never on a timer.
async fn request_span(handle: &OtlpHandle, bodies: &Bodies, service: &str, id: &str) -> Value {
    for _ in 0..200 {
        handle.flush().await.expect("export succeeds");
        if let Some(s) = spans(bodies, service)
            .into_iter()
            .find(|s| s["name"] == "request" && attr(s, "request_id") == id)
        {
            return s;
        }
        tokio::task::yield_now().await;
    }
    panic!("no request span for {id}");
}

/// Spans of `request`'s trace that name it as their parent.
fn children<'a>(all: &'a [Value], request: &Value, name: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|s| s["name"] == name && s["parentSpanId"] == request["spanId"])
        .inspect(|s| assert_eq!(s["traceId"], request["traceId"], "{name} in the trace"))
        .collect()
}

fn is_hex(v: &Value, len: usize) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0')
    })
}

async fn send(g: &Gateway, id: &str, body: &Value) -> reqwest::Response {
    g.http
        .post(g.url("/v1/chat/completions"))
        .header("x-request-id", id)
        .json(body)
        .send()
        .await
        .expect("gateway answers")
}

#[tokio::test]
async fn request_span_with_attempts_and_audit_as_children() {
    let (url, bodies) = collector().await;
    let g = Gateway::start(&format!(
        r#"
        [telemetry]
        otlp_endpoint = "{url}"
        service_name = "sluice-test"
        [providers.oa.models]
        flaky = {{ upstream_model = "p+status-500-once" }}
        steady = {{ upstream_model = "s" }}
        [routes.r]
        tiers.main = ["oa/flaky"]
        [routes.s]
        tiers.main = ["oa/steady"]
        "#
    ))
    .await;
    let cfg = g.state.config.telemetry.otlp.clone().expect("export on");
    let (layer, handle) = otlp::layer(&cfg).expect("exporter starts");
    let _sub = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    // A retried call: one failed attempt, then an answer from the same target.
    let r = send(&g, "req-otlp-retry", &ask("r", "hi")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "x-sluice-attempts"), "2");
    r.bytes().await.unwrap();
    let req = request_span(&handle, &bodies, "sluice-test", "req-otlp-retry").await;
    let all = spans(&bodies, "sluice-test");
    assert!(is_hex(&req["traceId"], 32), "{req}");
    assert!(is_hex(&req["spanId"], 16), "{req}");
    assert!(
        req.get("parentSpanId").is_none(),
        "the request span is the root"
    );
    assert_eq!(req["kind"], 2, "server span");
    assert_eq!(attr(&req, "route"), "r");
    assert_eq!(attr(&req, "status"), "200");
    let start: u128 = req["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u128 = req["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 0 && end >= start);

    let attempts = children(&all, &req, "attempt");
    assert_eq!(attempts.len(), 2, "{all:#?}");
    let mut attempts = attempts;
    attempts.sort_by_key(|s| attr(s, "retry").as_str().unwrap().to_owned());
    assert_eq!(attr(attempts[0], "target"), "oa/flaky");
    assert_eq!(attr(attempts[0], "retry"), "0");
    assert_eq!(attr(attempts[0], "outcome"), "retryable");
    assert_eq!(attr(attempts[0], "status"), "500");
    assert_eq!(
        attempts[0]["status"]["code"], 2,
        "a failed attempt is an error"
    );
    assert_eq!(attr(attempts[1], "retry"), "1");
    assert_eq!(attr(attempts[1], "outcome"), "ok");
    assert_eq!(attempts[1]["status"]["code"], 0);
    assert_eq!(attempts[1]["kind"], 3, "client span");
    assert_ne!(attempts[0]["spanId"], attempts[1]["spanId"]);
    assert_eq!(children(&all, &req, "audit.record").len(), 1);
    // The log line about the failed attempt is an event on that attempt's span.
    let events = attempts[0]["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["name"] == "upstream attempt failed"),
        "{events:?}"
    );

    // A stream: its request span ends when the stream does, and is a trace of its own.
    let mut body = ask("s", "stream please");
    body["stream"] = json!(true);
    let sse = Sse::read(send(&g, "req-otlp-stream", &body).await).await;
    assert!(sse.done());
    let sreq = request_span(&handle, &bodies, "sluice-test", "req-otlp-stream").await;
    let all = spans(&bodies, "sluice-test");
    assert_ne!(sreq["traceId"], req["traceId"]);
    assert_eq!(attr(&sreq, "route"), "s");
    assert_eq!(attr(&sreq, "status"), "200");
    let attempts = children(&all, &sreq, "attempt");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attr(attempts[0], "outcome"), "ok");
    assert_eq!(children(&all, &sreq, "audit.record").len(), 1);
    assert_eq!(handle.dropped(), 0);

    drop(_sub);
    g.shutdown().await;
}

#[tokio::test]
async fn cache_stages_are_spans_of_the_request() {
    let (url, bodies) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start_cached(
        &format!(
            r#"
            [telemetry]
            otlp_endpoint = "{url}/v1/traces"
            [providers.oa.models]
            "gpt-4o-mini" = {{}}
            [routes.support]
            tiers.cheap = ["oa/gpt-4o-mini"]
            "#
        ),
        dir.path(),
    )
    .await;
    let cfg = g.state.config.telemetry.otlp.clone().expect("export on");
    assert_eq!(
        cfg.traces_url,
        format!("{url}/v1/traces"),
        "a full URL is kept"
    );
    let (layer, handle) = otlp::layer(&cfg).expect("exporter starts");
    let _sub = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    let question = ask("support", "How do I reset my password?");
    let r = send(&g, "req-otlp-miss", &question).await;
    assert_eq!(header(r.headers(), "x-sluice-cache"), "miss");
    r.bytes().await.unwrap();
    g.state.cache.as_ref().unwrap().flush().await.unwrap();
    let r = send(&g, "req-otlp-hit", &question).await;
    assert_eq!(header(r.headers(), "x-sluice-cache"), "hit-exact");
    r.bytes().await.unwrap();

    let miss = request_span(&handle, &bodies, "sluice", "req-otlp-miss").await;
    let hit = request_span(&handle, &bodies, "sluice", "req-otlp-hit").await;
    let all = spans(&bodies, "sluice");
    let lookup = children(&all, &miss, "cache.lookup");
    assert_eq!(lookup.len(), 1);
    assert_eq!(attr(lookup[0], "outcome"), "miss");
    assert_eq!(children(&all, &miss, "attempt").len(), 1);
    let write = children(&all, &miss, "cache.write_back");
    assert_eq!(write.len(), 1);
    assert_eq!(attr(write[0], "queued"), true);

    let lookup = children(&all, &hit, "cache.lookup");
    assert_eq!(lookup.len(), 1);
    assert_eq!(attr(lookup[0], "outcome"), "hit-exact");
    assert_eq!(attr(lookup[0], "similarity"), 1.0);
    assert!(
        children(&all, &hit, "attempt").is_empty(),
        "a hit goes nowhere"
    );
    assert_eq!(children(&all, &hit, "audit.record").len(), 1);

    drop(_sub);
    g.shutdown().await;
}

#[tokio::test]
async fn sample_ratio_zero_exports_nothing() {
    let (url, bodies) = collector().await;
    let g = Gateway::start(&format!(
        r#"
        [telemetry]
        otlp_endpoint = "{url}"
        sample_ratio = 0.0
        [providers.oa.models]
        m = {{}}
        "#
    ))
    .await;
    let cfg = g.state.config.telemetry.otlp.clone().expect("export on");
    let (layer, handle) = otlp::layer(&cfg).expect("exporter starts");
    let _sub = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    for i in 0..3 {
        let r = send(&g, &format!("req-unsampled-{i}"), &ask("m", "hi")).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    handle.flush().await.unwrap();
    assert!(spans(&bodies, "sluice").is_empty());
    drop(_sub);
    g.shutdown().await;
}
