//! The mock's continuations (prefill and the gateway's continuation request) and the faults the
//! failover tests drive: one malformed or unknown event mid-stream, no usage chunk, prefill
//! rejection, billing errors, a flapping model, and header tokens scoped to one model.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice::chat::{ChatChunk, CONTINUE_REQUEST};
use sluice::sim::FAULT_HEADER;

use crate::mock::{
    chat, chat_body, chunks, client, data_lines, events, messages_body, post, post_with, start,
    streamed_text,
};

const PROMPT: &str = "Tell me about the lighthouse keeper and the storm";

fn text_of(v: &Value) -> String {
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {v}"))
        .to_owned()
}

/// The answer's words with their trailing spaces, as the mock streams them.
fn pieces(text: &str) -> Vec<String> {
    text.split_inclusive(' ').map(str::to_owned).collect()
}

/// `body` with `extra` messages appended.
fn with_messages(mut body: Value, extra: &[Value]) -> Value {
    let msgs = body["messages"].as_array_mut().unwrap();
    msgs.extend(extra.iter().cloned());
    body
}

#[tokio::test]
async fn fault_tokens_do_not_change_the_answer() {
    let m = start().await;
    let plain = text_of(&chat(&m, &chat_body("gpt-4o-mini", PROMPT)).await);
    let faulted = text_of(&chat(&m, &chat_body("gpt-4o-mini+latency-1ms", PROMPT)).await);
    assert_eq!(plain, faulted);
    let other = text_of(&chat(&m, &chat_body("gpt-4o", PROMPT)).await);
    assert_ne!(plain, other, "another model answers otherwise");
}

#[tokio::test]
async fn an_openai_prefill_is_continued_after_its_words() {
    let m = start().await;
    let a = pieces(&text_of(&chat(&m, &chat_body("model-a", PROMPT)).await));
    let b = pieces(&text_of(&chat(&m, &chat_body("model-b", PROMPT)).await));
    assert_eq!(a.len(), 24);
    // Model b continues what model a started, after its 11 words.
    let prefix = a[..11].concat();
    let body = with_messages(
        chat_body("model-b", PROMPT),
        &[json!({"role": "assistant", "content": prefix})],
    );
    let v = chat(&m, &body).await;
    assert_eq!(text_of(&v), b[11..].concat());
    assert_eq!(v["usage"]["completion_tokens"], 13);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let text = post(&m, "/v1/chat/completions", &streamed)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(streamed_text(&chunks(&text)), b[11..].concat());
}

#[tokio::test]
async fn the_continuation_request_continues_the_assistant_turn_before_it() {
    let m = start().await;
    let b = pieces(&text_of(&chat(&m, &chat_body("model-b", PROMPT)).await));
    let partial = b[..6].concat();
    let ask = format!("{CONTINUE_REQUEST}«{}»", partial.trim_end());
    let body = with_messages(
        chat_body("model-b", PROMPT),
        &[
            json!({"role": "assistant", "content": partial}),
            json!({"role": "user", "content": ask}),
        ],
    );
    assert_eq!(text_of(&chat(&m, &body).await), b[6..].concat());

    let mut msg = messages_body("claude-b", PROMPT);
    msg["messages"] = json!([
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": partial},
        {"role": "user", "content": ask},
    ]);
    let v: Value = post(&m, "/v1/messages", &msg).await.json().await.unwrap();
    let whole: Value = post(&m, "/v1/messages", &messages_body("claude-b", PROMPT))
        .await
        .json()
        .await
        .unwrap();
    let whole = pieces(whole["content"][0]["text"].as_str().unwrap());
    assert_eq!(v["content"][0]["text"], whole[6..].concat());
}

#[tokio::test]
async fn an_anthropic_prefill_must_not_end_in_whitespace() {
    let m = start().await;
    let whole: Value = post(&m, "/v1/messages", &messages_body("claude", PROMPT))
        .await
        .json()
        .await
        .unwrap();
    let whole = pieces(whole["content"][0]["text"].as_str().unwrap());
    let prefill = |text: &str| {
        let mut b = messages_body("claude", PROMPT);
        b["messages"] = json!([
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": text},
        ]);
        b
    };
    let res = post(&m, "/v1/messages", &prefill(&whole[..3].concat())).await;
    assert_eq!(
        res.status(),
        400,
        "a trailing space is refused, as Anthropic does"
    );
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("trailing whitespace"));

    let trimmed = whole[..3].concat().trim_end().to_owned();
    let mut b = prefill(&trimmed);
    b["stream"] = json!(true);
    let text = post(&m, "/v1/messages", &b).await.text().await.unwrap();
    let deltas: String = events(&text)
        .iter()
        .filter(|(e, _)| e == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deltas, format!(" {}", whole[3..].concat()));
}

#[tokio::test]
async fn no_prefill_refuses_prefills_only() {
    let m = start().await;
    let plain = chat_body("m+no-prefill", PROMPT);
    assert_eq!(post(&m, "/v1/chat/completions", &plain).await.status(), 200);
    let prefill = with_messages(
        plain.clone(),
        &[json!({"role": "assistant", "content": "Mock answer"})],
    );
    let res = post(&m, "/v1/chat/completions", &prefill).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["param"], "messages");
    assert!(v["error"]["message"].as_str().unwrap().contains("prefill"));
    let ask = with_messages(
        plain,
        &[
            json!({"role": "assistant", "content": "Mock answer"}),
            json!({"role": "user", "content": format!("{CONTINUE_REQUEST}«Mock answer»")}),
        ],
    );
    assert_eq!(post(&m, "/v1/chat/completions", &ask).await.status(), 200);

    let mut msg = messages_body("c+no-prefill", PROMPT);
    msg["messages"] = json!([
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": "Mock answer"},
    ]);
    let res = post(&m, "/v1/messages", &msg).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("prefill"));
}

#[tokio::test]
async fn malformed_and_unknown_events_mid_stream_leave_the_rest_intact() {
    let m = start().await;
    let whole = text_of(&chat(&m, &chat_body("g", PROMPT)).await);
    for (fault, bad, unknown) in [
        ("malformed-at-2", 1, 0),
        ("malformed-run-3-at-5", 3, 0),
        ("unknown-at-1", 0, 1),
    ] {
        let mut body = chat_body(&format!("g+{fault}"), PROMPT);
        body["stream"] = json!(true);
        let text = post(&m, "/v1/chat/completions", &body)
            .await
            .text()
            .await
            .unwrap();
        let lines = data_lines(&text);
        assert_eq!(lines.last(), Some(&"[DONE]"), "{fault}");
        let invalid = lines
            .iter()
            .filter(|l| serde_json::from_str::<Value>(l).is_err() && **l != "[DONE]")
            .count();
        assert_eq!(invalid, bad, "{fault}");
        let not_chunks = lines
            .iter()
            .filter(|l| serde_json::from_str::<Value>(l).is_ok())
            .filter(|l| serde_json::from_str::<ChatChunk>(l).is_err())
            .count();
        assert_eq!(not_chunks, unknown, "{fault}");
        let good: Vec<ChatChunk> = lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(streamed_text(&good), whole, "{fault}");
    }
    let mut body = messages_body("c+unknown-at-2", PROMPT);
    body["stream"] = json!(true);
    let text = post(&m, "/v1/messages", &body).await.text().await.unwrap();
    let names: Vec<String> = events(&text).into_iter().map(|(e, _)| e).collect();
    assert!(
        names.contains(&"gateway_test_event".to_owned()),
        "{names:?}"
    );
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
}

#[tokio::test]
async fn no_usage_leaves_out_the_usage_chunk() {
    let m = start().await;
    let mut body = chat_body("g+no-usage+no-done", PROMPT);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = post(&m, "/v1/chat/completions", &body)
        .await
        .text()
        .await
        .unwrap();
    let all: Vec<ChatChunk> = data_lines(&text)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(all.iter().all(|c| c.usage.is_none()));
    let last = &all.last().unwrap().choices[0];
    assert_eq!(
        last.finish_reason.as_deref(),
        Some("stop"),
        "ends at the finish"
    );
}

#[tokio::test]
async fn quota_is_each_providers_billing_error() {
    let m = start().await;
    let res = post(&m, "/v1/chat/completions", &chat_body("g+quota", "x")).await;
    assert_eq!(res.status(), 429);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "insufficient_quota");
    let res = post(&m, "/v1/messages", &messages_body("c+quota", "x")).await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("credit balance"));

    let res = post(&m, "/v1/chat/completions", &chat_body("g+status-401", "x")).await;
    let v: Value = res.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("sk-mock-"),
        "like OpenAI's, the message carries the masked key: {v}"
    );
}

#[tokio::test]
async fn a_flapping_model_is_down_first_and_healthy_after_its_periods() {
    const PERIOD_MS: u64 = 100;
    let m = start().await;
    let body = chat_body("g+flap-100ms", "x");
    let status = |b: &Value| {
        let b = b.clone();
        let m = &m;
        async move { post(m, "/v1/chat/completions", &b).await.status().as_u16() }
    };
    let first = status(&body).await;
    let first_back = Instant::now();
    assert_eq!(first, 503, "down from its first request");
    // The mock's clock started before `first_back`, so after six periods (three down, three
    // up) on ours, it is past them too.
    let healthy_from = first_back + Duration::from_millis(6 * PERIOD_MS + 20);
    tokio::time::sleep_until(healthy_from.into()).await;
    for _ in 0..5 {
        assert_eq!(status(&body).await, 200);
    }
}

#[tokio::test]
async fn header_tokens_can_name_their_model() {
    let m = start().await;
    let send = |model: &str| {
        let body = chat_body(model, "x");
        let m = &m;
        async move {
            post_with(
                m,
                "/v1/chat/completions",
                &body,
                Some("model-a:status-503, latency-1ms"),
            )
            .await
            .unwrap()
            .status()
            .as_u16()
        }
    };
    assert_eq!(send("model-a").await, 503);
    assert_eq!(send("model-a+tokens-3").await, 503, "the base name counts");
    assert_eq!(send("model-b").await, 200);
    let plain = client()
        .post(format!("{}/v1/chat/completions", m.base_url()))
        .header(FAULT_HEADER, "status-502")
        .json(&chat_body("model-b", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        plain.status(),
        502,
        "an unscoped token applies to every model"
    );
}
