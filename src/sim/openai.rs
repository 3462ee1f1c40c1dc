//! `POST /v1/chat/completions`: the OpenAI-compatible endpoint.

use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::answer::{Answer, Finish, Prompt, PromptHash};
use super::conn::KillSwitch;
use super::stream::{self, Frames, Playback};
use super::{base_model, error_response, gate, new_id, status_message, Refusal, Shared};
use crate::chat::{
    new_completion_id, unix_now, ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice,
    Content, Delta, Message, Role, Usage, CONTINUE_REQUEST,
};

pub(super) async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<KillSwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => return refusal(Refusal::BadJson(e.to_string())),
    };
    let prompt = prompt_of(&req);
    let faults = match gate(&shared, &conn, &req.model, &headers, &prompt).await {
        Ok(faults) => faults,
        Err(r) => return refusal(r),
    };
    let answer = match &faults.answer {
        Some(text) => Answer::fixed(&prompt, text),
        None => Answer::new(&prompt, faults.words),
    };
    let reply = Reply {
        id: new_completion_id(),
        created: unix_now(),
        model: req.model,
        usage: faults
            .usage
            .openai(prompt.prompt_tokens, answer.completion_tokens),
        extra: faults.usage.extra("response"),
        choice_extra: faults.usage.extra("choice"),
        tool_call_id: answer.tool.as_ref().map(|_| new_id("call_")),
        answer,
    };
    if req.stream && !faults.no_stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        let frames = reply.frames(include_usage && !faults.no_usage);
        let play = Playback::new(&faults, shared.opts.token_pace_ms);
        stream::sse(frames, play, shared.shutdown.clone(), &shared.streams_open)
    } else if faults.cut_after.is_some() {
        let json = serde_json::to_vec(&reply.response()).expect("responses always serialize");
        stream::cut_json(StatusCode::OK, json)
    } else {
        Json(reply.response()).into_response()
    }
}

fn prompt_of(req: &ChatRequest) -> Prompt {
    let (messages, continuation) = split_continuation(&req.messages);
    let mut hash = PromptHash::new();
    hash.field(base_model(&req.model).as_bytes());
    for m in messages {
        hash.field(&[m.role as u8]).field(m.text().as_bytes());
    }
    let last_user = messages.iter().rev().find(|m| m.role == Role::User);
    Prompt {
        last_user: last_user.map(Message::text).unwrap_or_default(),
        hash: hash.finish(),
        prompt_tokens: req.estimate_prompt_tokens(),
        max_tokens: req.max_output_tokens(),
        stop: req.stop.as_ref().map(|s| s.to_vec()).unwrap_or_default(),
        forced_tool: forced_tool(req),
        prefill: continuation.as_ref().is_some_and(|c| c.1),
        continue_from: continuation.map(|c| c.0),
    }
}

/// The conversation before a continuation, and the assistant text to continue with whether it
/// came as a prefill (a trailing assistant turn) rather than with the gateway's continuation
/// request.
fn split_continuation(messages: &[Message]) -> (&[Message], Option<(String, bool)>) {
    match messages {
        [before @ .., last] if last.role == Role::Assistant => (before, Some((last.text(), true))),
        [before @ .., partial, ask]
            if partial.role == Role::Assistant
                && ask.role == Role::User
                && ask.text().starts_with(CONTINUE_REQUEST) =>
        {
            (before, Some((partial.text(), false)))
        }
        _ => (messages, None),
    }
}

/// The tool a request forces: `tool_choice: "required"` (the first tool) or
/// `{"type":"function","function":{"name":...}}`; none without tools.
fn forced_tool(req: &ChatRequest) -> Option<String> {
    let tools = req.tools.as_ref().filter(|t| !t.is_empty())?;
    let name_of = |v: &Value| {
        v.pointer("/function/name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match req.tool_choice.as_ref()? {
        Value::String(s) if s == "required" => name_of(&tools[0]),
        choice @ Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            name_of(choice).or_else(|| name_of(&tools[0]))
        }
        _ => None,
    }
}

fn finish_reason(finish: &Finish) -> &'static str {
    match finish {
        Finish::Stop | Finish::StopSequence(_) => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
    }
}

/// One answer, ready to render as a response or as stream frames.
struct Reply {
    id: String,
    created: u64,
    model: String,
    answer: Answer,
    usage: Usage,
    tool_call_id: Option<String>,
    /// Unknown top-level fields (`extra-fields`).
    extra: Map<String, Value>,
    /// Unknown fields of the choice (`extra-fields`).
    choice_extra: Map<String, Value>,
}

/// What OpenAI puts on every response and chunk, and Sluice does not model.
const SYSTEM_FINGERPRINT: &str = "fp_sluice_mock";

impl Reply {
    fn response(&self) -> ChatResponse {
        let mut message = Message::new(Role::Assistant, "");
        match (&self.answer.tool, &self.tool_call_id) {
            (Some(tool), Some(id)) => {
                message.content = None;
                message.tool_calls = Some(vec![json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": tool.name, "arguments": tool.arguments},
                })]);
            }
            _ => message.content = Some(Content::Text(self.answer.text())),
        }
        ChatResponse {
            id: self.id.clone(),
            object: "chat.completion".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason: Some(finish_reason(&self.answer.finish).to_owned()),
                logprobs: None,
                extra: self.choice_extra.clone(),
            }],
            usage: Some(self.usage.clone()),
            extra: self.top_extra(),
        }
    }

    fn frames(&self, include_usage: bool) -> Frames {
        let role = Delta {
            role: Some(Role::Assistant),
            content: Some(String::new()),
            ..Delta::default()
        };
        let mut content = Vec::with_capacity(self.answer.pieces.len() + 1);
        if let (Some(tool), Some(id)) = (&self.answer.tool, &self.tool_call_id) {
            let call = json!({"index": 0, "id": id, "type": "function",
                              "function": {"name": tool.name, "arguments": ""}});
            content.push(self.chunk(tool_delta(call), None));
            for piece in &self.answer.pieces {
                let args = json!({"index": 0, "function": {"arguments": piece}});
                content.push(self.chunk(tool_delta(args), None));
            }
        } else {
            for piece in &self.answer.pieces {
                let delta = Delta {
                    content: Some(piece.clone()),
                    ..Delta::default()
                };
                content.push(self.chunk(delta, None));
            }
        }
        let finish = finish_reason(&self.answer.finish);
        let mut tail = vec![self.chunk(Delta::default(), Some(finish))];
        if include_usage {
            tail.push(self.usage_chunk());
        }
        tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
        Frames {
            head: vec![self.chunk(role, None)],
            content,
            tail,
            malformed: "data: {\"id\": broken\n\n",
            unknown: "data: {\"object\": \"keepalive\"}\n\n",
        }
    }

    /// A chunk; the finishing one carries the choice's unknown fields.
    fn chunk(&self, delta: Delta, finish: Option<&str>) -> Bytes {
        let choice = ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish.map(str::to_owned),
            logprobs: None,
            extra: if finish.is_some() {
                self.choice_extra.clone()
            } else {
                Map::new()
            },
        };
        self.frame(vec![choice], None)
    }

    fn usage_chunk(&self) -> Bytes {
        self.frame(Vec::new(), Some(self.usage.clone()))
    }

    fn top_extra(&self) -> Map<String, Value> {
        let mut m = self.extra.clone();
        m.insert("system_fingerprint".into(), SYSTEM_FINGERPRINT.into());
        m
    }

    fn frame(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> Bytes {
        let chunk = ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
            extra: self.top_extra(),
        };
        let mut out = b"data: ".to_vec();
        serde_json::to_writer(&mut out, &chunk).expect("chunks always serialize");
        out.extend_from_slice(b"\n\n");
        Bytes::from(out)
    }
}

fn tool_delta(call: Value) -> Delta {
    Delta {
        tool_calls: Some(vec![call]),
        ..Delta::default()
    }
}

/// The error in OpenAI's shape: `{"error":{"message","type","param","code"}}`.
fn refusal(r: Refusal) -> Response {
    let (status, message, kind, param, code, retry_after) = match r {
        Refusal::BadJson(e) => (
            400,
            format!("We could not parse the JSON body of your request: {e}"),
            "invalid_request_error",
            None,
            None,
            None,
        ),
        Refusal::Invalid(message) => (400, message, "invalid_request_error", None, None, None),
        Refusal::Status {
            code,
            retry_after_secs,
        } => {
            let (kind, err_code) = status_kind(code);
            let message = status_message(code).to_owned();
            (code, message, kind, None, err_code, retry_after_secs)
        }
        Refusal::ContextLength { tokens, limit } => (
            400,
            format!(
                "This model's maximum context length is {limit} tokens. However, your messages \
                 resulted in {tokens} tokens. Please reduce the length of the messages."
            ),
            "invalid_request_error",
            Some("messages"),
            Some("context_length_exceeded"),
            None,
        ),
        Refusal::ContentFilter => (
            400,
            "The response was filtered due to the prompt triggering our content management \
             policy. Please modify your prompt and retry."
                .to_owned(),
            "invalid_request_error",
            Some("prompt"),
            Some("content_filter"),
            None,
        ),
        Refusal::Quota => (
            429,
            "You exceeded your current quota, please check your plan and billing details."
                .to_owned(),
            "insufficient_quota",
            None,
            Some("insufficient_quota"),
            None,
        ),
        Refusal::Prefill => (
            400,
            "This model does not support assistant message prefill: the final message must be \
             a user message."
                .to_owned(),
            "invalid_request_error",
            Some("messages"),
            None,
            None,
        ),
        Refusal::Reset => (
            500,
            "connection reset".to_owned(),
            "server_error",
            None,
            None,
            None,
        ),
    };
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    error_response(status, &body, retry_after)
}

/// OpenAI's error `type` and `code` for a status.
fn status_kind(code: u16) -> (&'static str, Option<&'static str>) {
    match code {
        401 => ("authentication_error", Some("invalid_api_key")),
        403 => ("permission_error", None),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        c if c < 500 => ("invalid_request_error", None),
        _ => ("server_error", None),
    }
}

/// `POST /v1/embeddings`: deterministic unit vectors (8 dimensions unless `dimensions` says
/// otherwise) derived from each input's text; faults as for chat.
pub(super) async fn embeddings(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<KillSwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return refusal(Refusal::BadJson(e.to_string())),
    };
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let inputs: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect(),
        _ => {
            return refusal(Refusal::BadJson(
                "`input` must be a string or an array".into(),
            ))
        }
    };
    let tokens: u32 = inputs
        .iter()
        .map(|s| crate::chat::estimate_tokens_from_chars(s.len()))
        .sum();
    if let Err(r) = gate(&shared, &conn, &model, &headers, &Prompt::tokens(tokens)).await {
        return refusal(r);
    }
    let dims = req
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(8)
        .clamp(1, 4096) as usize;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut hash = PromptHash::new();
            hash.field(text.as_bytes());
            let seed = hash.finish();
            let raw: Vec<f64> = (0..dims)
                .map(|d| {
                    let x = seed.rotate_left((d as u32 * 7) % 64) ^ (d as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    (x % 2001) as f64 / 1000.0 - 1.0
                })
                .collect();
            let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-9);
            json!({"object": "embedding", "index": i, "embedding": raw.iter().map(|x| x / norm).collect::<Vec<_>>()})
        })
        .collect();
    Json(json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
    .into_response()
}
