//! One conformance list that every provider adapter passes, for both inbound APIs: each check
//! runs through the gateway against the mock speaking that provider's wire format (`oa` =
//! OpenAI-compatible, `an` = Anthropic Messages), with an OpenAI client (`/v1/chat/completions`)
//! and with an Anthropic client (`/v1/messages`, the `messages_*` checks).

use serde_json::{json, Value};

use crate::support::{ask, ask_messages, header, Events, Gateway, Sse};

/// Models named `<provider>-m...` exist only at that provider, so pass-through requests
/// reach exactly one adapter.
async fn gateway(p: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
        [providers.{p}.models]
        "{p}-m" = {{ upstream_model = "base" }}
        "{p}-429" = {{ upstream_model = "base+status-429" }}
        "{p}-ctx" = {{ upstream_model = "base+context-length" }}
        "{p}-filter" = {{ upstream_model = "base+content-filter" }}
        "{p}-auth" = {{ upstream_model = "base+status-401" }}
        "{p}-cached" = {{ upstream_model = "base+cached-20" }}
        "{p}-quota" = {{ upstream_model = "base+quota" }}
        "{p}-cut" = {{ upstream_model = "base+cut-after-5" }}
        [routes.conf]
        tiers.only = ["{p}/{p}-m"]
        [routes.resumed]
        tiers.only = ["{p}/{p}-cut", "{p}/{p}-m"]
        "#,
    ))
    .await
}

fn tools_request(model: &str, stream: bool) -> Value {
    json!({
        "model": model, "stream": stream,
        "messages": [{"role": "user", "content": "What is the weather in Oslo?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}],
        "tool_choice": "required"
    })
}

pub async fn non_stream_round_trip(p: &str) {
    let g = gateway(p).await;
    let (status, h, v) = g.chat(&ask("conf", "Tell me about rivers")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "base", "the model that actually answered");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        text.starts_with("Mock answer to: Tell me about rivers"),
        "{text}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(u["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap())
    );
    assert_eq!(header(&h, "x-sluice-target"), format!("{p}/{p}-m"));
    assert_eq!(header(&h, "x-sluice-route"), "conf");
    assert_eq!(header(&h, "x-sluice-attempts"), "1");
    assert!(!header(&h, "x-request-id").is_empty());
}

pub async fn stream_round_trip(p: &str) {
    let g = gateway(p).await;
    let (_, _, whole) = g.chat(&ask("conf", "Tell me about lakes")).await;
    let mut req = ask("conf", "Tell me about lakes");
    req["stream"] = json!(true);
    let resp = g.post(&req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(resp.headers(), "content-type"), "text/event-stream");
    let sse = Sse::read(resp).await;
    assert!(sse.done(), "{:?}", sse.data);
    assert!(!sse.body_error);
    let chunks = sse.json();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        sse.content(),
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "usage only when asked"
    );
}

pub async fn stream_include_usage(p: &str) {
    let g = gateway(p).await;
    let (_, _, whole) = g.chat(&ask("conf", "Count the stars")).await;
    let mut req = ask("conf", "Count the stars");
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let sse = Sse::read(g.post(&req).await).await;
    assert!(sse.done());
    let chunks = sse.json();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], whole["usage"]);
}

/// Prompt tokens read from the provider's cache reach the client as OpenAI's
/// `prompt_tokens_details.cached_tokens`, counted in `prompt_tokens`, streamed or not.
pub async fn cached_tokens_in_openai_shape(p: &str) {
    let g = gateway(p).await;
    let text = "Summarize the minutes of the planning meeting about the new office, the budget \
                and the hiring plan for next year.";
    let (status, _, whole) = g.chat(&ask(&format!("{p}-cached"), text)).await;
    assert_eq!(status, 200, "{whole}");
    let u = &whole["usage"];
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 20, "{u}");
    assert!(u["prompt_tokens"].as_u64().unwrap() > 20);
    let mut req = ask(&format!("{p}-cached"), text);
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let sse = Sse::read(g.post(&req).await).await;
    assert!(sse.done());
    assert_eq!(sse.json().last().unwrap()["usage"], *u);
}

pub async fn length_cut_off(p: &str) {
    let g = gateway(p).await;
    let mut req = ask("conf", "Write a long story");
    req["max_tokens"] = json!(3);
    let (status, _, v) = g.chat(&req).await;
    assert_eq!(status, 200);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);
}

pub async fn tool_call(p: &str) {
    let g = gateway(p).await;
    let (status, _, v) = g.chat(&tools_request("conf", false)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["query"], "What is the weather in Oslo?");
}

pub async fn stream_tool_call(p: &str) {
    let g = gateway(p).await;
    let sse = Sse::read(g.post(&tools_request("conf", true)).await).await;
    assert!(sse.done());
    let mut name = String::new();
    let mut args = String::new();
    for c in sse.json() {
        for call in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            name.push_str(call["function"]["name"].as_str().unwrap_or(""));
            args.push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(name, "get_weather");
    let args: Value = serde_json::from_str(&args).unwrap();
    assert_eq!(args["query"], "What is the weather in Oslo?");
}

pub async fn multi_turn_with_system(p: &str) {
    let g = gateway(p).await;
    let req = json!({"model": "conf", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [{"type": "text", "text": "Name a color"}]}
    ]});
    let (status, _, v) = g.chat(&req).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains("Name a color"));
}

pub async fn errors_keep_status_and_shape(p: &str) {
    let g = gateway(p).await;
    for (model, status) in [
        (format!("{p}-ctx"), 400),
        (format!("{p}-filter"), 400),
        (format!("{p}-429"), 429),
    ] {
        let (got, h, v) = g.chat(&ask(&model, "hello")).await;
        assert_eq!(got, status, "{model}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        assert!(v["error"]["type"].is_string());
        let attempts: usize = header(&h, "x-sluice-attempts").parse().unwrap();
        // 429 is retried (max_retries = 2); the others are the client's errors: one attempt.
        assert_eq!(attempts, if status == 429 { 3 } else { 1 }, "{model}");
    }
}

/// The gateway's own faults at the provider (key, credit) are classed alike by every adapter:
/// no retry, no relay of the upstream's words, a 502 naming the target and the class.
pub async fn provider_faults_are_the_gateways(p: &str) {
    let g = gateway(p).await;
    for (model, class) in [
        (format!("{p}-auth"), "auth"),
        (format!("{p}-quota"), "billing"),
    ] {
        let (got, h, v) = g.chat(&ask(&model, "hello")).await;
        assert_eq!(got, 502, "{model}: {v}");
        assert_eq!(v["error"]["code"], "all_targets_failed");
        let text = v.to_string();
        assert!(
            !text.contains("sk-mock")
                && !text.contains("credit balance")
                && !text.contains("current quota"),
            "the upstream's message stays out: {v}"
        );
        let outcome = v["error"]["attempts"][0]["outcome"].as_str().unwrap();
        assert!(
            outcome.contains(&format!("provider fault ({class})")),
            "{outcome}"
        );
        assert_eq!(v["error"]["attempts"][0]["target"], format!("{p}/{model}"));
        assert_eq!(header(&h, "x-sluice-attempts"), "1", "{model}: not retried");
    }
}

/// A stream cut after output continues at the route's next target through the same adapter
/// (Anthropic by prefill, OpenAI-compatible by the continuation request) into the answer the
/// model gives unbroken.
pub async fn stream_resumes_after_a_cut(p: &str) {
    let g = gateway(p).await;
    let (_, _, whole) = g
        .chat(&ask("resumed", "Tell me about lakes and rivers"))
        .await;
    let mut req = ask("resumed", "Tell me about lakes and rivers");
    req["stream"] = json!(true);
    let sse = Sse::read(g.post(&req).await).await;
    assert!(sse.done() && sse.error().is_none(), "{:?}", sse.data);
    assert_eq!(sse.data.iter().filter(|d| *d == "[DONE]").count(), 1);
    assert_eq!(
        sse.content(),
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
}

// -- Anthropic clients ------------------------------------------------------------------------

fn messages_tools(model: &str, stream: bool) -> Value {
    json!({
        "model": model, "max_tokens": 512, "stream": stream,
        "messages": [{"role": "user", "content": "What is the weather in Oslo?"}],
        "tools": [{"name": "get_weather", "description": "Weather of a place",
            "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}],
        "tool_choice": {"type": "any"}
    })
}

pub async fn messages_round_trip(p: &str) {
    let g = gateway(p).await;
    let (_, _, openai) = g.chat(&ask("conf", "Tell me about rivers")).await;
    let (status, h, v) = g
        .messages(&ask_messages("conf", "Tell me about rivers"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"), "{v}");
    assert_eq!(v["model"], "base", "the model that actually answered");
    assert_eq!(v["content"][0]["type"], "text");
    assert_eq!(
        v["content"][0]["text"], openai["choices"][0]["message"]["content"],
        "the same upstream answer as an OpenAI client gets"
    );
    assert_eq!(v["stop_reason"], "end_turn");
    let u = &v["usage"];
    assert!(u["input_tokens"].as_u64().unwrap() > 0, "{u}");
    assert_eq!(u["output_tokens"], openai["usage"]["completion_tokens"]);
    assert_eq!(u["cache_read_input_tokens"], 0);
    assert_eq!(header(&h, "x-sluice-target"), format!("{p}/{p}-m"));
    assert_eq!(header(&h, "x-sluice-route"), "conf");
    assert_eq!(header(&h, "request-id"), header(&h, "x-request-id"));
    assert!(!header(&h, "request-id").is_empty());
}

pub async fn messages_stream(p: &str) {
    let g = gateway(p).await;
    let (_, _, whole) = g
        .messages(&ask_messages("conf", "Tell me about lakes"))
        .await;
    let mut req = ask_messages("conf", "Tell me about lakes");
    req["stream"] = json!(true);
    let resp = g.post_messages(&req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(resp.headers(), "content-type"), "text/event-stream");
    let ev = Events::read(resp).await;
    assert!(!ev.body_error);
    let names = ev.names();
    assert_eq!(names[0], "message_start", "{names:?}");
    assert!(names.contains(&"ping"));
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    assert!(ev.error().is_none());
    let m = ev.message();
    assert_eq!(
        m["content"], whole["content"],
        "the streamed blocks add up to the answer"
    );
    assert_eq!(m["stop_reason"], "end_turn");
    for k in ["input_tokens", "output_tokens", "cache_read_input_tokens"] {
        assert_eq!(m["usage"][k], whole["usage"][k], "{k}");
    }
}

/// A tool call and its result, both ways, through either upstream kind.
pub async fn messages_tool_round_trip(p: &str) {
    let g = gateway(p).await;
    let (status, _, v) = g.messages(&messages_tools("conf", false)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stop_reason"], "tool_use");
    let call = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool_use in {v}"))
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"]["query"], "What is the weather in Oslo?");
    let streamed = Events::read(g.post_messages(&messages_tools("conf", true)).await).await;
    let m = streamed.message();
    assert_eq!(m["stop_reason"], "tool_use");
    let block = m["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap();
    assert_eq!(
        block["input"], call["input"],
        "input_json_delta pieces join to the input"
    );
    // The result goes back; the model answers in text.
    let mut next = messages_tools("conf", false);
    next["tool_choice"] = json!({"type": "auto"});
    next["messages"] = json!([
        {"role": "user", "content": "What is the weather in Oslo?"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call["id"], "content": "Rain, 12 C"}
        ]}
    ]);
    let (status, _, v) = g.messages(&next).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Mock answer to:"));
}

pub async fn messages_system_multi_turn_and_images(p: &str) {
    let g = gateway(p).await;
    let req = json!({"model": "conf", "max_tokens": 300,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="}},
            {"type": "text", "text": "Name a color"}
        ]}
    ]});
    let (status, _, v) = g.messages(&req).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("Name a color"));
}

/// `max_tokens` cuts the answer (`max_tokens`); a stop sequence ends it: Anthropic upstreams say
/// which (`stop_sequence`), OpenAI-compatible ones cannot (`end_turn`).
pub async fn messages_stop_reasons(p: &str) {
    let g = gateway(p).await;
    let mut req = ask_messages("conf", "Write a long story");
    req["max_tokens"] = json!(3);
    let (status, _, v) = g.messages(&req).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 3);
    let mut req = ask_messages("conf", "Write a long story");
    req["stop_sequences"] = json!(["answer"]);
    for stream in [false, true] {
        req["stream"] = json!(stream);
        let m = if stream {
            Events::read(g.post_messages(&req).await).await.message()
        } else {
            g.messages(&req).await.2
        };
        assert_eq!(m["content"][0]["text"], "Mock ", "stream {stream}: {m}");
        if p == "an" {
            assert_eq!(m["stop_reason"], "stop_sequence", "{m}");
            assert_eq!(m["stop_sequence"], "answer");
        } else {
            assert_eq!(m["stop_reason"], "end_turn", "{m}");
        }
    }
}

/// Errors in Anthropic's shape and status codes, whatever the upstream's kind.
pub async fn messages_errors(p: &str) {
    let g = gateway(p).await;
    for (model, status, kind) in [
        (format!("{p}-ctx"), 400, "invalid_request_error"),
        (format!("{p}-429"), 429, "rate_limit_error"),
        (format!("{p}-auth"), 500, "api_error"),
        ("no-such-model".to_owned(), 404, "not_found_error"),
    ] {
        let (got, _, v) = g.messages(&ask_messages(&model, "hello")).await;
        assert_eq!(got, status, "{model}: {v}");
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], kind, "{model}: {v}");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        assert!(
            !v.to_string().contains("sk-mock"),
            "no upstream secret: {v}"
        );
    }
    let (got, _, v) = g
        .messages(&json!({"model": "conf", "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(
        (got, v["error"]["message"].as_str()),
        (400, Some("max_tokens: Field required"))
    );
}

/// Prompt tokens read from the provider's cache reach the client as Anthropic's
/// `cache_read_input_tokens`, apart from `input_tokens`, streamed or not.
pub async fn messages_cached_tokens(p: &str) {
    let g = gateway(p).await;
    let text = "Summarize the minutes of the planning meeting about the new office, the budget \
                and the hiring plan for next year.";
    let (status, _, openai) = g.chat(&ask(&format!("{p}-cached"), text)).await;
    assert_eq!(status, 200, "{openai}");
    let (status, _, v) = g
        .messages(&ask_messages(&format!("{p}-cached"), text))
        .await;
    assert_eq!(status, 200, "{v}");
    let u = &v["usage"];
    assert_eq!(u["cache_read_input_tokens"], 20, "{u}");
    let prompt = openai["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(u["input_tokens"].as_u64().unwrap() + 20, prompt, "{u}");
    let mut req = ask_messages(&format!("{p}-cached"), text);
    req["stream"] = json!(true);
    let m = Events::read(g.post_messages(&req).await).await.message();
    assert_eq!(m["usage"]["cache_read_input_tokens"], 20);
    assert_eq!(m["usage"]["input_tokens"], u["input_tokens"]);
}

/// A stream cut after output continues at the route's next target: the Anthropic client reads
/// one message that is the unbroken answer, ended by one `message_stop`.
pub async fn messages_stream_resumes_after_a_cut(p: &str) {
    let g = gateway(p).await;
    let (_, _, whole) = g
        .messages(&ask_messages("resumed", "Tell me about lakes and rivers"))
        .await;
    let mut req = ask_messages("resumed", "Tell me about lakes and rivers");
    req["stream"] = json!(true);
    let ev = Events::read(g.post_messages(&req).await).await;
    assert!(ev.error().is_none(), "{:?}", ev.events);
    assert_eq!(
        ev.names().iter().filter(|n| **n == "message_stop").count(),
        1
    );
    assert_eq!(ev.text(), whole["content"][0]["text"].as_str().unwrap());
}

macro_rules! conformance {
    ($($adapter:ident => $provider:literal),*) => {$(
        mod $adapter {
            #[tokio::test] async fn non_stream_round_trip() { super::non_stream_round_trip($provider).await }
            #[tokio::test] async fn stream_round_trip() { super::stream_round_trip($provider).await }
            #[tokio::test] async fn stream_include_usage() { super::stream_include_usage($provider).await }
            #[tokio::test] async fn cached_tokens_in_openai_shape() { super::cached_tokens_in_openai_shape($provider).await }
            #[tokio::test] async fn length_cut_off() { super::length_cut_off($provider).await }
            #[tokio::test] async fn tool_call() { super::tool_call($provider).await }
            #[tokio::test] async fn stream_tool_call() { super::stream_tool_call($provider).await }
            #[tokio::test] async fn multi_turn_with_system() { super::multi_turn_with_system($provider).await }
            #[tokio::test] async fn errors_keep_status_and_shape() { super::errors_keep_status_and_shape($provider).await }
            #[tokio::test] async fn provider_faults_are_the_gateways() { super::provider_faults_are_the_gateways($provider).await }
            #[tokio::test] async fn stream_resumes_after_a_cut() { super::stream_resumes_after_a_cut($provider).await }
            #[tokio::test] async fn messages_round_trip() { super::messages_round_trip($provider).await }
            #[tokio::test] async fn messages_stream() { super::messages_stream($provider).await }
            #[tokio::test] async fn messages_tool_round_trip() { super::messages_tool_round_trip($provider).await }
            #[tokio::test] async fn messages_system_multi_turn_and_images() { super::messages_system_multi_turn_and_images($provider).await }
            #[tokio::test] async fn messages_stop_reasons() { super::messages_stop_reasons($provider).await }
            #[tokio::test] async fn messages_errors() { super::messages_errors($provider).await }
            #[tokio::test] async fn messages_cached_tokens() { super::messages_cached_tokens($provider).await }
            #[tokio::test] async fn messages_stream_resumes_after_a_cut() { super::messages_stream_resumes_after_a_cut($provider).await }
        }
    )*};
}

conformance!(openai => "oa", anthropic => "an");
