//! The mock provider over real HTTP: both wire formats, streaming, counters and every fault.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use sluice::chat::{ChatChunk, ChatRequest, ChatResponse};
use sluice::sim::{self as mock, MockHandle, MockOptions};
use sluice::wire::anthropic::{MessagesRequest, MessagesResponse, StreamEvent};

/// `127.0.0.1:0`: a free loopback port.
fn loopback_any_port() -> std::net::SocketAddr {
    (std::net::Ipv4Addr::LOCALHOST, 0).into()
}

/// Long enough to never fire on a healthy request, even on a loaded machine.
const GENEROUS: Duration = Duration::from_secs(10);
/// Short enough for tests that expect a hang.
const SHORT: Duration = Duration::from_millis(300);

pub(crate) async fn start() -> MockHandle {
    mock::spawn(loopback_any_port(), MockOptions::default())
        .await
        .expect("mock binds")
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(GENEROUS)
        .build()
        .unwrap()
}

pub(crate) fn chat_body(model: &str, prompt: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": prompt}
    ]})
}

pub(crate) fn messages_body(model: &str, prompt: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "system": "You are terse.",
           "messages": [{"role": "user", "content": prompt}]})
}

pub(crate) async fn post(m: &MockHandle, path: &str, body: &Value) -> reqwest::Response {
    post_with(m, path, body, None)
        .await
        .expect("request succeeds")
}

pub(crate) async fn post_with(
    m: &MockHandle,
    path: &str,
    body: &Value,
    fault: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut req = client().post(format!("{}{path}", m.base_url())).json(body);
    if let Some(f) = fault {
        req = req.header(mock::FAULT_HEADER, f);
    }
    req.send().await
}

pub(crate) async fn chat(m: &MockHandle, body: &Value) -> Value {
    let res = post(m, "/v1/chat/completions", body).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The `data:` payloads of an SSE body, in order.
pub(crate) fn data_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect()
}

/// `(event, data)` pairs of an SSE body with `event:` lines.
pub(crate) fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let mut lines = frame.lines();
            let event = lines.next().unwrap().strip_prefix("event: ").unwrap();
            let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
            (event.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

/// Parses a complete OpenAI stream: every data line but the last is a chunk; the last is [DONE].
pub(crate) fn chunks(text: &str) -> Vec<ChatChunk> {
    let lines = data_lines(text);
    assert_eq!(
        lines.last(),
        Some(&"[DONE]"),
        "stream ends with [DONE]: {text}"
    );
    let body = &lines[..lines.len() - 1];
    body.iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn streamed_text(chunks: &[ChatChunk]) -> String {
    let deltas = chunks.iter().flat_map(|c| &c.choices);
    deltas.filter_map(|c| c.delta.content.clone()).collect()
}

/// Reads a streamed body to its end or first error: (bytes so far, whether it failed).
async fn read_until_error(res: reqwest::Response) -> (String, bool) {
    let mut body = res.bytes_stream();
    let mut text = Vec::new();
    while let Some(item) = body.next().await {
        match item {
            Ok(bytes) => text.extend_from_slice(&bytes),
            Err(_) => return (String::from_utf8(text).unwrap(), true),
        }
    }
    (String::from_utf8(text).unwrap(), false)
}

// ---------------------------------------------------------------------------------------------
// OpenAI shapes

#[tokio::test]
async fn openai_non_stream_shape_and_usage() {
    let m = start().await;
    let body = chat_body(
        "gpt-4o-mini",
        "What is the capital of France, and why is it Paris?",
    );
    let v = chat(&m, &body).await;
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    let choice = &v["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    let text = choice["message"]["content"].as_str().unwrap();
    assert!(
        text.starts_with("Mock answer to: What is the capital of France, and why"),
        "{text}"
    );
    assert_eq!(text.split_whitespace().count(), 24);

    let req: ChatRequest = serde_json::from_value(body).unwrap();
    let res: ChatResponse = serde_json::from_value(v.clone()).unwrap();
    let usage = res.usage.as_ref().unwrap();
    assert_eq!(usage.prompt_tokens, req.estimate_prompt_tokens());
    assert_eq!(usage.completion_tokens, 24);
    assert_eq!(usage.total_tokens, usage.prompt_tokens + 24);
    assert!(res.is_complete());

    let again = chat(&m, &chat_body("gpt-4o-mini", "hi")).await;
    assert_ne!(again["id"], v["id"], "ids are unique per call");
}

#[tokio::test]
async fn openai_stream_shape_matches_non_stream() {
    let m = start().await;
    let mut body = chat_body("gpt-4o-mini", "Tell me about streams");
    let full = chat(&m, &body).await;
    body["stream"] = json!(true);
    let res = post(&m, "/v1/chat/completions", &body).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let chunks = chunks(&res.text().await.unwrap());

    let first = &chunks[0].choices[0].delta;
    assert_eq!(first.role, Some(sluice::chat::Role::Assistant));
    assert_eq!(first.content.as_deref(), Some(""));
    assert_eq!(
        chunks.len(),
        1 + 24 + 1,
        "role chunk, one per word, finish chunk"
    );
    assert!(chunks.iter().all(|c| c.object == "chat.completion.chunk"
        && c.model == "gpt-4o-mini"
        && c.id == chunks[0].id
        && c.usage.is_none()));
    let last = chunks.last().unwrap();
    assert_eq!(last.choices[0].finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        streamed_text(&chunks),
        full["choices"][0]["message"]["content"]
    );
}

#[tokio::test]
async fn openai_stream_include_usage_ends_with_usage_chunk() {
    let m = start().await;
    let mut body = chat_body("gpt-4o-mini", "count my tokens");
    let full = chat(&m, &body).await;
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = post(&m, "/v1/chat/completions", &body)
        .await
        .text()
        .await
        .unwrap();
    let chunks = chunks(&text);
    let usage_chunk = chunks.last().unwrap();
    assert!(usage_chunk.choices.is_empty());
    let usage = serde_json::to_value(usage_chunk.usage.as_ref().unwrap()).unwrap();
    assert_eq!(usage, full["usage"]);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish.choices[0].finish_reason.as_deref(), Some("stop"));
}

#[tokio::test]
async fn answers_are_deterministic_and_sized_by_tokens() {
    let m = start().await;
    let text = |v: Value| {
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let a = text(chat(&m, &chat_body("gpt-4o-mini", "same prompt")).await);
    let b = text(chat(&m, &chat_body("gpt-4o-mini", "same prompt")).await);
    let c = text(chat(&m, &chat_body("gpt-4o-mini", "another prompt")).await);
    assert_eq!(a, b);
    assert_ne!(a, c);
    let five = text(chat(&m, &chat_body("gpt-4o-mini+tokens-5", "one two three")).await);
    assert_eq!(five, "Mock answer to: one two.");
}

#[tokio::test]
async fn max_tokens_truncates_with_length() {
    let m = start().await;
    let mut body = chat_body("gpt-4o-mini", "be long");
    body["max_completion_tokens"] = json!(6);
    let v = chat(&m, &body).await;
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 6);
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 6);

    body["stream"] = json!(true);
    let chunks = chunks(
        &post(&m, "/v1/chat/completions", &body)
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(streamed_text(&chunks), text);
    let finish = chunks.last().unwrap().choices[0].finish_reason.as_deref();
    assert_eq!(finish, Some("length"));
}

#[tokio::test]
async fn openai_forced_tool_call() {
    let m = start().await;
    let mut body = chat_body("gpt-4o-mini", "weather in Oslo");
    body["tools"] = json!([
        {"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    ]);
    body["tool_choice"] = json!({"type": "function", "function": {"name": "weather"}});
    let v = chat(&m, &body).await;
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"query": "weather in Oslo"}));

    body["tool_choice"] = json!("required");
    body["stream"] = json!(true);
    let chunks = chunks(
        &post(&m, "/v1/chat/completions", &body)
            .await
            .text()
            .await
            .unwrap(),
    );
    let calls: Vec<&Value> = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter_map(|c| c.delta.tool_calls.as_ref())
        .flatten()
        .collect();
    assert_eq!(calls[0]["function"]["name"], "search");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    let streamed: String = calls
        .iter()
        .map(|c| c["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), args);
    let finish = chunks.last().unwrap().choices[0].finish_reason.as_deref();
    assert_eq!(finish, Some("tool_calls"));

    body["tool_choice"] = json!("auto");
    body["stream"] = json!(false);
    assert_eq!(chat(&m, &body).await["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn models_lists_a_few() {
    let m = start().await;
    let url = format!("{}/v1/models", m.base_url());
    let v: Value = client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert!(v["data"].as_array().unwrap().len() >= 2);
    assert_eq!(v["data"][0]["object"], "model");
}

// ---------------------------------------------------------------------------------------------
// Anthropic shapes

#[tokio::test]
async fn anthropic_non_stream_shape_and_usage() {
    let m = start().await;
    let body = messages_body("claude-3-5-haiku-latest", "Why is the sky blue today?");
    let res = post(&m, "/v1/messages", &body).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-3-5-haiku-latest");
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["content"][0]["type"], "text");
    let text = v["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Mock answer to: Why is the sky blue today?"),
        "{text}"
    );

    let req: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
    let res: MessagesResponse = serde_json::from_value(v).unwrap();
    assert_eq!(res.usage.input_tokens, req.estimate_input_tokens());
    assert_eq!(res.usage.output_tokens, 24);

    let mut short = body;
    short["max_tokens"] = json!(3);
    let v: Value = post(&m, "/v1/messages", &short).await.json().await.unwrap();
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["content"][0]["text"], "Mock answer to:");
}

#[tokio::test]
async fn anthropic_stream_event_order() {
    let m = start().await;
    let mut body = messages_body("claude-sonnet-4-5", "stream me please");
    let full: Value = post(&m, "/v1/messages", &body).await.json().await.unwrap();
    body["stream"] = json!(true);
    let res = post(&m, "/v1/messages", &body).await;
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let evs = events(&res.text().await.unwrap());

    let names: Vec<&str> = evs.iter().map(|(e, _)| e.as_str()).collect();
    let deltas = names
        .iter()
        .filter(|n| **n == "content_block_delta")
        .count();
    assert_eq!(deltas, 24);
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    for (name, data) in &evs {
        assert_eq!(data["type"], name.as_str(), "event name matches data type");
        let _: StreamEvent = serde_json::from_value(data.clone()).unwrap();
    }
    assert_eq!(evs[0].1["message"]["model"], "claude-sonnet-4-5");
    let text: String = evs
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, full["content"][0]["text"].as_str().unwrap());
    let delta = &evs[evs.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 24);
}

#[tokio::test]
async fn anthropic_forced_tool_use() {
    let m = start().await;
    let mut body = messages_body("claude-sonnet-4-5", "find rust books");
    body["tools"] = json!([{"name": "lookup", "input_schema": {"type": "object"}}]);
    body["tool_choice"] = json!({"type": "any"});
    let v: Value = post(&m, "/v1/messages", &body).await.json().await.unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    let block = &v["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "lookup");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["input"], json!({"query": "find rust books"}));

    body["stream"] = json!(true);
    let evs = events(&post(&m, "/v1/messages", &body).await.text().await.unwrap());
    assert_eq!(evs[1].1["content_block"]["type"], "tool_use");
    let json_text: String = evs
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
        .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&json_text).unwrap(),
        block["input"]
    );
    assert_eq!(evs[evs.len() - 2].1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn stop_sequences_end_the_answer() {
    let m = start().await;
    let mut body = chat_body("gpt-4o-mini", "alpha beta gamma");
    body["stop"] = json!(["gamma"]);
    let v = chat(&m, &body).await;
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Mock answer to: alpha beta "
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    let mut body = messages_body("claude-sonnet-4-5", "alpha beta gamma");
    body["stop_sequences"] = json!(["beta"]);
    let v: Value = post(&m, "/v1/messages", &body).await.json().await.unwrap();
    assert_eq!(v["stop_reason"], "stop_sequence");
    assert_eq!(v["stop_sequence"], "beta");
}

// ---------------------------------------------------------------------------------------------
// Counters and bad input

#[tokio::test]
async fn counters_count_every_request_and_reset() {
    let m = start().await;
    chat(&m, &chat_body("a-model", "x")).await;
    chat(&m, &chat_body("a-model", "y")).await;
    let failed = post(&m, "/v1/messages", &messages_body("b+status-500", "z")).await;
    assert_eq!(failed.status(), 500);
    assert_eq!(
        (m.count("a-model"), m.count("b+status-500"), m.count("c")),
        (2, 1, 0)
    );

    let url = format!("{}/mock/counters", m.base_url());
    let v: Value = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"counts": {"a-model": 2, "b+status-500": 1}, "streams_open": 0})
    );

    let reset = client()
        .post(format!("{}/mock/reset", m.base_url()))
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success());
    assert_eq!(m.count("a-model"), 0);
    chat(&m, &chat_body("a-model", "x")).await;
    m.reset();
    assert_eq!(m.count("a-model"), 0);
}

#[tokio::test]
async fn bad_json_is_400_in_provider_shape() {
    let m = start().await;
    let raw = |path: &str| {
        client()
            .post(format!("{}{path}", m.base_url()))
            .header("content-type", "application/json")
            .body("{not json")
    };
    let res = raw("/v1/chat/completions").send().await.unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].is_string());

    let res = raw("/v1/messages").send().await.unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        (&v["type"], &v["error"]["type"]),
        (&json!("error"), &json!("invalid_request_error"))
    );

    let no_max = json!({"model": "claude", "messages": [{"role": "user", "content": "x"}]});
    assert_eq!(post(&m, "/v1/messages", &no_max).await.status(), 400);
}

// ---------------------------------------------------------------------------------------------
// Status faults

#[tokio::test]
async fn status_always_fails_with_provider_error_bodies() {
    let m = start().await;
    for _ in 0..2 {
        let res = post(
            &m,
            "/v1/chat/completions",
            &chat_body("gpt+status-503", "x"),
        )
        .await;
        assert_eq!(res.status(), 503);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"]["type"], "server_error");
        assert!(v["error"].as_object().unwrap().contains_key("param"));
        assert!(v["error"].as_object().unwrap().contains_key("code"));
    }
    let res = post(&m, "/v1/messages", &messages_body("claude+status-529", "x")).await;
    assert_eq!(res.status(), 529);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");

    let res = post(&m, "/v1/messages", &messages_body("claude+status-429", "x")).await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["type"],
        "rate_limit_error"
    );
    let res = post(
        &m,
        "/v1/chat/completions",
        &chat_body("gpt+status-401", "x"),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["type"],
        "authentication_error"
    );
    let res = post(&m, "/v1/messages", &messages_body("claude+status-401", "x")).await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["type"],
        "authentication_error"
    );

    let body = chat_body("gpt", "x");
    let res = post_with(&m, "/v1/chat/completions", &body, Some("status-418")).await;
    assert_eq!(
        res.unwrap().status(),
        418,
        "faults also come from the header"
    );
}

#[tokio::test]
async fn status_once_and_times_fail_only_the_first_attempts() {
    let m = start().await;
    let statuses = |model: &'static str, n: usize| {
        let m = &m;
        async move {
            let mut out = Vec::new();
            for _ in 0..n {
                let res = post(m, "/v1/chat/completions", &chat_body(model, "x")).await;
                out.push(res.status().as_u16());
            }
            out
        }
    };
    assert_eq!(
        statuses("gpt-4o-mini+status-500-once", 3).await,
        [500, 200, 200]
    );
    assert_eq!(statuses("gpt-4o-mini+fail-once", 2).await, [500, 200]);
    assert_eq!(
        statuses("gpt-4o-mini+status-429-times-2", 3).await,
        [429, 429, 200]
    );
    assert_eq!(m.count("gpt-4o-mini+status-429-times-2"), 3);
    m.reset();
    assert_eq!(
        statuses("gpt-4o-mini+fail-once", 1).await,
        [500],
        "reset re-arms -once"
    );
}

#[tokio::test]
async fn retry_after_only_with_429() {
    let m = start().await;
    let res = post(
        &m,
        "/v1/chat/completions",
        &chat_body("g+status-429+retry-after-7", "x"),
    )
    .await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "7");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let res = post(
        &m,
        "/v1/messages",
        &messages_body("c+status-429+retry-after-2", "x"),
    )
    .await;
    assert_eq!(res.headers()["retry-after"], "2");
    let res = post(&m, "/v1/chat/completions", &chat_body("g+status-429", "x")).await;
    assert!(res.headers().get("retry-after").is_none());
    let res = post(
        &m,
        "/v1/chat/completions",
        &chat_body("g+status-500+retry-after-7", "x"),
    )
    .await;
    assert!(res.headers().get("retry-after").is_none());
}

#[tokio::test]
async fn context_length_and_window() {
    let m = start().await;
    let res = post(
        &m,
        "/v1/chat/completions",
        &chat_body("g+context-length", "x"),
    )
    .await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("maximum context length"));

    let small = chat_body("g+window-100", "short");
    assert_eq!(post(&m, "/v1/chat/completions", &small).await.status(), 200);
    let long = chat_body("g+window-100", &"word ".repeat(200));
    let res = post(&m, "/v1/chat/completions", &long).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "context_length_exceeded"
    );

    let res = post(
        &m,
        "/v1/messages",
        &messages_body("c+window-100", &"word ".repeat(200)),
    )
    .await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("prompt is too long"));
    let ok = post(&m, "/v1/messages", &messages_body("c+window-100", "short")).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn content_filter() {
    let m = start().await;
    let res = post(
        &m,
        "/v1/chat/completions",
        &chat_body("g+content-filter", "x"),
    )
    .await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "content_filter");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("content management policy"));

    let res = post(&m, "/v1/messages", &messages_body("c+content-filter", "x")).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("content filtering policy"));
}

// ---------------------------------------------------------------------------------------------
// Connection faults

#[tokio::test]
async fn reset_is_a_transport_error() {
    let m = start().await;
    let res = post_with(&m, "/v1/chat/completions", &chat_body("g+reset", "x"), None).await;
    let err = res.expect_err("a reset connection gives no response");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    let res = post_with(&m, "/v1/messages", &messages_body("c+reset", "x"), None).await;
    assert!(res.is_err());

    let once = chat_body("g+reset-once", "x");
    assert!(post_with(&m, "/v1/chat/completions", &once, None)
        .await
        .is_err());
    assert_eq!(post(&m, "/v1/chat/completions", &once).await.status(), 200);
    assert_eq!(m.count("g+reset-once"), 2);
}

#[tokio::test]
async fn reset_is_a_tcp_rst_not_a_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let m = start().await;
    let body = chat_body("g+reset", "x").to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut tcp = tokio::net::TcpStream::connect(m.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let err = tcp
        .read_to_end(&mut got)
        .await
        .expect_err("no clean end of stream");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(got.is_empty(), "nothing was sent before the reset");
}

#[tokio::test]
async fn cut_after_aborts_the_body() {
    let m = start().await;
    let mut body = chat_body("g+cut-after-3", "x");
    body["stream"] = json!(true);
    let res = post(&m, "/v1/chat/completions", &body).await;
    assert_eq!(res.status(), 200);
    let (text, failed) = read_until_error(res).await;
    assert!(failed, "the client sees an error, not a clean end");
    assert!(!text.contains("[DONE]"));
    assert_eq!(
        data_lines(&text).len(),
        1 + 3,
        "role chunk and 3 content chunks: {text}"
    );

    let mut body = messages_body("c+cut-after-2", "x");
    body["stream"] = json!(true);
    let (text, failed) = read_until_error(post(&m, "/v1/messages", &body).await).await;
    assert!(failed);
    assert_eq!(text.matches("event: content_block_delta").count(), 2);

    let res = post(&m, "/v1/chat/completions", &chat_body("g+cut-after-0", "x")).await;
    assert_eq!(res.status(), 200, "headers arrive");
    assert!(res.json::<Value>().await.is_err(), "the body does not");
}

#[tokio::test]
async fn malformed_after_sends_broken_json_then_stops() {
    let m = start().await;
    let mut body = chat_body("g+malformed-after-2", "x");
    body["stream"] = json!(true);
    let res = post(&m, "/v1/chat/completions", &body).await;
    let text = res.text().await.expect("the body ends cleanly");
    let lines = data_lines(&text);
    assert_eq!(lines.len(), 1 + 2 + 1);
    for line in &lines[..3] {
        serde_json::from_str::<ChatChunk>(line).unwrap();
    }
    assert!(serde_json::from_str::<Value>(lines[3]).is_err());
    assert!(!text.contains("[DONE]"));

    let mut body = messages_body("c+malformed-after-1", "x");
    body["stream"] = json!(true);
    let text = post(&m, "/v1/messages", &body).await.text().await.unwrap();
    let last = data_lines(&text).pop().unwrap();
    assert!(serde_json::from_str::<Value>(last).is_err());
    assert!(!text.contains("message_stop"));
}

#[tokio::test]
async fn no_done_ends_cleanly_without_terminator() {
    let m = start().await;
    let mut body = chat_body("g+no-done", "x");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = post(&m, "/v1/chat/completions", &body)
        .await
        .text()
        .await
        .unwrap();
    let lines = data_lines(&text);
    assert!(!text.contains("[DONE]"));
    let all: Vec<ChatChunk> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(all.last().unwrap().usage.is_some());
    let finish = &all[all.len() - 2].choices[0];
    assert_eq!(finish.finish_reason.as_deref(), Some("stop"));

    let mut body = messages_body("c+no-done", "x");
    body["stream"] = json!(true);
    let text = post(&m, "/v1/messages", &body).await.text().await.unwrap();
    assert_eq!(events(&text).last().unwrap().0, "message_delta");
}

#[tokio::test]
async fn stalls_and_slow_first_token_time_out_a_short_client() {
    let m = start().await;
    let short = reqwest::Client::builder().timeout(SHORT).build().unwrap();
    let url = format!("{}/v1/chat/completions", m.base_url());
    let err = short
        .post(&url)
        .json(&chat_body("g+stall-headers", "x"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let slow = chat_body("g+latency-30000ms", "x");
    assert!(short
        .post(&url)
        .json(&slow)
        .send()
        .await
        .unwrap_err()
        .is_timeout());

    let mut body = chat_body("g+slow-first-token-30000ms", "x");
    body["stream"] = json!(true);
    let res = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("headers come at once");
    let mut stream = res.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\"role\"") {
        let bytes = stream.next().await.unwrap().unwrap();
        seen.push_str(std::str::from_utf8(&bytes).unwrap());
    }
    assert!(
        tokio::time::timeout(SHORT, stream.next()).await.is_err(),
        "first token is slow"
    );

    let mut body = chat_body("g+stall-after-2", "x");
    body["stream"] = json!(true);
    let res = client().post(&url).json(&body).send().await.unwrap();
    let mut stream = res.bytes_stream();
    let mut seen = String::new();
    while data_lines(&seen).len() < 3 {
        let bytes = stream.next().await.unwrap().unwrap();
        seen.push_str(std::str::from_utf8(&bytes).unwrap());
    }
    assert!(
        tokio::time::timeout(SHORT, stream.next()).await.is_err(),
        "stream stalls"
    );
}

#[tokio::test]
async fn shutdown_releases_stalled_requests() {
    let m = start().await;
    let url = format!("{}/v1/chat/completions", m.base_url());
    let stalled = tokio::spawn(
        client()
            .post(url)
            .json(&chat_body("g+stall-headers", "x"))
            .send(),
    );
    while m.count("g+stall-headers") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::timeout(GENEROUS, m.shutdown())
        .await
        .expect("shutdown is not blocked");
    let res = stalled.await.unwrap();
    assert!(res.is_err(), "the stalled request fails instead of hanging");
}

#[tokio::test]
async fn pace_and_options_still_produce_complete_streams() {
    let opts = MockOptions {
        latency_ms: 1,
        token_pace_ms: 1,
    };
    let m = mock::spawn(loopback_any_port(), opts).await.unwrap();
    let mut body = chat_body("g+pace-2ms+tokens-4", "x");
    body["stream"] = json!(true);
    let chunks = chunks(
        &post(&m, "/v1/chat/completions", &body)
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(chunks.len(), 1 + 4 + 1);
    assert!(m.base_url().starts_with("http://127.0.0.1:"));
}
