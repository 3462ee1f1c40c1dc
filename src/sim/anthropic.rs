//! `POST /v1/messages`: the Anthropic-compatible endpoint. Any `x-api-key` is accepted, and a
//! missing `anthropic-version` header too.

use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::json;

use super::answer::{Answer, Finish, Prompt, PromptHash};
use super::conn::KillSwitch;
use super::stream::{self, Frames, Playback};
use super::{base_model, error_response, gate, new_id, status_message, Refusal, Shared};
use crate::chat::CONTINUE_REQUEST;
use crate::wire::anthropic::{
    error_type_for_status, BlockDelta, ContentBlock, DeltaUsage, ErrorBody, InputMessage,
    MessageDelta, MessagesRequest, MessagesResponse, Role, StopReason, StreamEvent, ToolChoice,
    Usage,
};

pub(super) async fn messages(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<KillSwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req: MessagesRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => return refusal(Refusal::BadJson(e.to_string())),
    };
    let prompt = prompt_of(&req);
    let faults = match gate(&shared, &conn, &req.model, &headers, &prompt).await {
        Ok(faults) => faults,
        Err(r) => return refusal(r),
    };
    let prefill = prompt.continue_from.as_deref().filter(|_| prompt.prefill);
    if prefill.is_some_and(|p| p.ends_with(char::is_whitespace)) {
        // What Anthropic answers, so the gateway must trim its prefills.
        return refusal(Refusal::Invalid(
            "messages: final assistant content cannot end with trailing whitespace".into(),
        ));
    }
    let answer = match &faults.answer {
        Some(text) => Answer::fixed(&prompt, text),
        None => Answer::new(&prompt, faults.words),
    };
    let reply = Reply {
        id: new_id("msg_"),
        model: req.model,
        usage: faults
            .usage
            .anthropic(prompt.prompt_tokens, answer.completion_tokens),
        tool_use_id: answer.tool.as_ref().map(|_| new_id("toolu_")),
        answer,
    };
    if req.stream {
        let play = Playback::new(&faults, shared.opts.token_pace_ms);
        stream::sse(
            reply.frames(),
            play,
            shared.shutdown.clone(),
            &shared.streams_open,
        )
    } else if faults.cut_after.is_some() {
        let json = serde_json::to_vec(&reply.response()).expect("responses always serialize");
        stream::cut_json(StatusCode::OK, json)
    } else {
        Json(reply.response()).into_response()
    }
}

fn prompt_of(req: &MessagesRequest) -> Prompt {
    let (messages, continuation) = split_continuation(&req.messages);
    let mut hash = PromptHash::new();
    hash.field(base_model(&req.model).as_bytes());
    if let Some(system) = &req.system {
        hash.field(b"s").field(system.text().as_bytes());
    }
    for m in messages {
        hash.field(&[m.role as u8])
            .field(m.content.text().as_bytes());
    }
    let last_user = messages.iter().rev().find(|m| m.role == Role::User);
    Prompt {
        last_user: last_user.map(|m| m.content.text()).unwrap_or_default(),
        hash: hash.finish(),
        prompt_tokens: req.estimate_input_tokens(),
        max_tokens: Some(req.max_tokens),
        stop: req.stop_sequences.clone().unwrap_or_default(),
        forced_tool: forced_tool(req),
        prefill: continuation.as_ref().is_some_and(|c| c.1),
        continue_from: continuation.map(|c| c.0),
    }
}

/// The conversation before a continuation, and the assistant text to continue with whether it
/// came as a prefill (see `openai::split_continuation`).
fn split_continuation(messages: &[InputMessage]) -> (&[InputMessage], Option<(String, bool)>) {
    match messages {
        [before @ .., last] if last.role == Role::Assistant => {
            (before, Some((last.content.text(), true)))
        }
        [before @ .., partial, ask]
            if partial.role == Role::Assistant
                && ask.role == Role::User
                && ask.content.text().starts_with(CONTINUE_REQUEST) =>
        {
            (before, Some((partial.content.text(), false)))
        }
        _ => (messages, None),
    }
}

/// The tool a request forces: `{"type":"any"}` (the first tool) or `{"type":"tool","name":..}`.
fn forced_tool(req: &MessagesRequest) -> Option<String> {
    let first = req.tools.as_ref()?.first()?;
    match req.tool_choice.as_ref()? {
        ToolChoice::Any { .. } => Some(first.name.clone()),
        ToolChoice::Tool { name, .. } => Some(name.clone()),
        ToolChoice::Auto { .. } | ToolChoice::None => None,
    }
}

fn stop_reason(finish: &Finish) -> (StopReason, Option<String>) {
    match finish {
        Finish::Stop => (StopReason::EndTurn, None),
        Finish::Length => (StopReason::MaxTokens, None),
        Finish::StopSequence(s) => (StopReason::StopSequence, Some(s.clone())),
        Finish::ToolCalls => (StopReason::ToolUse, None),
    }
}

/// One answer, ready to render as a response or as stream events.
struct Reply {
    id: String,
    model: String,
    /// The whole answer's usage (a stream's `message_start` reports 1 output token so far).
    usage: Usage,
    answer: Answer,
    tool_use_id: Option<String>,
}

impl Reply {
    fn message(&self, content: Vec<ContentBlock>, output_tokens: u32) -> MessagesResponse {
        MessagesResponse {
            id: self.id.clone(),
            kind: "message".to_owned(),
            role: Role::Assistant,
            content,
            model: self.model.clone(),
            stop_reason: None,
            stop_sequence: None,
            usage: Usage {
                output_tokens,
                ..self.usage.clone()
            },
        }
    }

    /// The single content block, complete (`full`) or as a stream's empty start block.
    fn block(&self, full: bool) -> ContentBlock {
        match (&self.answer.tool, &self.tool_use_id) {
            (Some(tool), Some(id)) => {
                let input = if full {
                    serde_json::from_str(&tool.arguments).unwrap_or_else(|_| json!({}))
                } else {
                    json!({})
                };
                ContentBlock::tool_use(id.clone(), tool.name.clone(), input)
            }
            _ => ContentBlock::text(if full {
                self.answer.text()
            } else {
                String::new()
            }),
        }
    }

    fn response(&self) -> MessagesResponse {
        let mut message = self.message(vec![self.block(true)], self.usage.output_tokens);
        let (reason, sequence) = stop_reason(&self.answer.finish);
        message.stop_reason = Some(reason);
        message.stop_sequence = sequence;
        message
    }

    fn frames(&self) -> Frames {
        let frame = |ev: StreamEvent| Bytes::from(ev.to_sse());
        let head = vec![
            frame(StreamEvent::MessageStart {
                message: self.message(Vec::new(), 1),
            }),
            frame(StreamEvent::ContentBlockStart {
                index: 0,
                content_block: self.block(false),
            }),
            frame(StreamEvent::Ping),
        ];
        let is_tool = self.answer.tool.is_some();
        let content = self
            .answer
            .pieces
            .iter()
            .map(|piece| {
                let delta = if is_tool {
                    BlockDelta::InputJsonDelta {
                        partial_json: piece.clone(),
                    }
                } else {
                    BlockDelta::TextDelta {
                        text: piece.clone(),
                    }
                };
                frame(StreamEvent::ContentBlockDelta { index: 0, delta })
            })
            .collect();
        let (stop_reason, stop_sequence) = stop_reason(&self.answer.finish);
        let tail = vec![
            frame(StreamEvent::ContentBlockStop { index: 0 }),
            frame(StreamEvent::MessageDelta {
                delta: MessageDelta {
                    stop_reason: Some(stop_reason),
                    stop_sequence,
                },
                // Cumulative, with the input and cache counts repeated as the API does now.
                usage: DeltaUsage {
                    output_tokens: self.usage.output_tokens,
                    input_tokens: Some(self.usage.input_tokens),
                    cache_creation_input_tokens: self.usage.cache_creation_input_tokens,
                    cache_read_input_tokens: self.usage.cache_read_input_tokens,
                    extra: serde_json::Map::new(),
                },
            }),
            frame(StreamEvent::MessageStop),
        ];
        Frames {
            head,
            content,
            tail,
            malformed: "event: content_block_delta\ndata: {\"id\": broken\n\n",
            unknown: "event: gateway_test_event\ndata: {\"type\": \"gateway_test_event\"}\n\n",
        }
    }
}

/// The error in Anthropic's shape: `{"type":"error","error":{"type","message"}}`.
fn refusal(r: Refusal) -> Response {
    let (status, kind, message, retry_after) = match r {
        Refusal::BadJson(e) | Refusal::Invalid(e) => (400, "invalid_request_error", e, None),
        Refusal::Status {
            code,
            retry_after_secs,
        } => {
            let message = status_message(code).to_owned();
            (code, error_type_for_status(code), message, retry_after_secs)
        }
        Refusal::ContextLength { tokens, limit } => (
            400,
            "invalid_request_error",
            format!("prompt is too long: {tokens} tokens > {limit} maximum"),
            None,
        ),
        Refusal::ContentFilter => (
            400,
            "invalid_request_error",
            "Output blocked by content filtering policy".to_owned(),
            None,
        ),
        Refusal::Quota => (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & \
             Billing to upgrade or purchase credits."
                .to_owned(),
            None,
        ),
        Refusal::Prefill => (
            400,
            "invalid_request_error",
            "This model does not support assistant message prefill. The conversation must end \
             with a user message."
                .to_owned(),
            None,
        ),
        Refusal::Reset => (500, "api_error", "connection reset".to_owned(), None),
    };
    let body = serde_json::to_value(ErrorBody::new(kind, message)).expect("errors serialize");
    error_response(status, &body, retry_after)
}
