//! Complete answers in both directions: [`MessagesResponse::into_chat`] (an Anthropic upstream's
//! answer for the pipeline) and [`MessagesResponse::from_chat`] (the pipeline's answer for an
//! Anthropic client).
//!
//! Anthropic's stop reason travels in the canonical choice as OpenRouter's
//! `native_finish_reason` (with the matched `stop_sequence`), so an Anthropic client of an
//! Anthropic target gets `stop_sequence` or `pause_turn` back rather than their OpenAI
//! approximation.

use serde_json::{json, Map, Value};

use super::request::{REASONING_CONTENT, THINKING_BLOCKS};
use super::{message_id, ContentBlock, MessagesResponse, Role, StopReason, Usage};
use crate::chat::{self, ChatResponse, Choice, Message};

/// The choice field holding the provider's own stop reason (OpenRouter's name).
pub(super) const NATIVE_FINISH: &str = "native_finish_reason";
/// The choice field holding the stop sequence that ended the answer.
pub(super) const STOP_SEQUENCE: &str = "stop_sequence";

impl MessagesResponse {
    /// Anthropic answer -> canonical `chat.completion`.
    pub fn into_chat(self) -> ChatResponse {
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        let mut thinking = Vec::new();
        let mut reasoning = String::new();
        for block in self.content {
            match block {
                ContentBlock::Text { text: t, .. } => text.push_str(&t),
                ContentBlock::ToolUse {
                    id, name, input, ..
                } => tool_calls.push(json!({
                    "id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}
                })),
                b @ (ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. }) => {
                    if let ContentBlock::Thinking { thinking: t, .. } = &b {
                        reasoning.push_str(t);
                    }
                    thinking.push(serde_json::to_value(b).unwrap_or_default());
                }
                _ => {}
            }
        }
        let mut message = Message::new(chat::Role::Assistant, text);
        if !tool_calls.is_empty() {
            message.tool_calls = Some(tool_calls);
        }
        if !thinking.is_empty() {
            message
                .extra
                .insert(REASONING_CONTENT.into(), reasoning.into());
            message
                .extra
                .insert(THINKING_BLOCKS.into(), Value::Array(thinking));
        }
        ChatResponse {
            id: self.id,
            object: "chat.completion".to_owned(),
            created: chat::unix_now(),
            model: self.model,
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason: self.stop_reason.map(|r| r.to_finish_reason().to_owned()),
                logprobs: None,
                extra: native_finish(self.stop_reason, self.stop_sequence),
            }],
            // Prompt tokens include the cache reads and writes, as OpenAI's do.
            usage: Some(self.usage.into_openai()),
            extra: Map::new(),
        }
    }

    /// Canonical answer (of any upstream, or the cache) -> Anthropic message: the first choice's
    /// thinking, text and tool calls as blocks, its stop reason, the usage in Anthropic's shape.
    pub fn from_chat(resp: ChatResponse) -> MessagesResponse {
        let id = message_id(&resp.id);
        let usage = resp
            .usage
            .as_ref()
            .map(Usage::from_openai)
            .unwrap_or_default();
        let Some(choice) = resp.choices.into_iter().next() else {
            return MessagesResponse {
                id,
                kind: "message".into(),
                role: Role::Assistant,
                content: vec![ContentBlock::text("")],
                model: resp.model,
                stop_reason: Some(StopReason::EndTurn),
                stop_sequence: None,
                usage,
            };
        };
        let (stop_reason, stop_sequence) =
            stop_reason_of(choice.finish_reason.as_deref(), &choice.extra).unzip();
        let mut m = choice.message;
        let mut content = thinking_blocks(&mut m.extra);
        let text = m.text();
        if !text.is_empty() {
            content.push(ContentBlock::text(text));
        }
        for call in m.tool_calls.iter().flatten() {
            content.push(tool_use(call));
        }
        if content.is_empty() {
            content.push(ContentBlock::text(""));
        }
        MessagesResponse {
            id,
            kind: "message".into(),
            role: Role::Assistant,
            content,
            model: resp.model,
            stop_reason,
            stop_sequence: stop_sequence.flatten(),
            usage,
        }
    }
}

/// A canonical tool call as a `tool_use` block (arguments that are no JSON object become `{}`).
pub(super) fn tool_use(call: &Value) -> ContentBlock {
    let f = &call["function"];
    let input = f["arguments"]
        .as_str()
        .and_then(|a| serde_json::from_str::<Value>(a).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    ContentBlock::tool_use(
        call["id"].as_str().unwrap_or_default(),
        f["name"].as_str().unwrap_or_default(),
        input,
    )
}

/// A message's thinking: its `thinking_blocks` as Anthropic sent them, else its
/// `reasoning_content` as one thinking block (an OpenAI-compatible reasoning model's).
fn thinking_blocks(extra: &mut Map<String, Value>) -> Vec<ContentBlock> {
    let reasoning = match extra.remove(REASONING_CONTENT) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let mut blocks: Vec<ContentBlock> = match extra.remove(THINKING_BLOCKS) {
        Some(Value::Array(list)) => list
            .into_iter()
            .filter_map(|b| serde_json::from_value(b).ok())
            .filter(|b| {
                matches!(
                    b,
                    ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. }
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    // A streamed answer reassembled for the cache keeps the text apart from the signature.
    match blocks.first_mut() {
        Some(ContentBlock::Thinking { thinking, .. }) if thinking.is_empty() => {
            *thinking = reasoning;
        }
        None if !reasoning.is_empty() => blocks.push(ContentBlock::Thinking {
            thinking: reasoning,
            signature: String::new(),
        }),
        _ => {}
    }
    blocks
}

/// The choice fields that keep Anthropic's stop reason.
pub(super) fn native_finish(
    reason: Option<StopReason>,
    sequence: Option<String>,
) -> Map<String, Value> {
    let mut extra = Map::new();
    if let Some(r) = reason.filter(|r| *r != StopReason::Unknown) {
        extra.insert(
            NATIVE_FINISH.into(),
            serde_json::to_value(r).unwrap_or_default(),
        );
    }
    if let Some(s) = sequence {
        extra.insert(STOP_SEQUENCE.into(), s.into());
    }
    extra
}

/// Anthropic's stop reason (and stop sequence) for a canonical finish: the provider's own when
/// the choice kept it (`native_finish_reason`), else mapped from OpenAI's finish reason.
pub fn stop_reason_of(
    finish: Option<&str>,
    extra: &Map<String, Value>,
) -> Option<(StopReason, Option<String>)> {
    let native = extra
        .get(NATIVE_FINISH)
        .and_then(|v| serde_json::from_value::<StopReason>(v.clone()).ok())
        .filter(|r| *r != StopReason::Unknown);
    let sequence = || {
        extra
            .get(STOP_SEQUENCE)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(r) = native {
        let seq = (r == StopReason::StopSequence).then(sequence).flatten();
        return Some((r, seq));
    }
    let reason = match finish? {
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::Refusal,
        _ => StopReason::EndTurn,
    };
    Some((reason, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_answer_translates_stop_reasons_and_usage() {
        let msg: MessagesResponse = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-haiku",
            "content": [{"type": "text", "text": "Hi"},
                        {"type": "tool_use", "id": "tu_1", "name": "wx", "input": {"a": 1}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2}
        }))
        .unwrap();
        let r = msg.into_chat();
        assert_eq!(r.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(r.choices[0].message.text(), "Hi");
        assert_eq!(
            r.choices[0].message.tool_calls.as_ref().unwrap()[0]["function"]["arguments"],
            "{\"a\":1}"
        );
        let u = r.usage.as_ref().unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (12, 5));
        assert_eq!(u.tokens().cache_read, 2);
    }

    /// An Anthropic answer through the canonical form comes back as it was (ids aside).
    #[test]
    fn anthropic_answer_round_trips() {
        let wire = json!({
            "id": "msg_9", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "Hmm.", "signature": "s1"},
                {"type": "text", "text": "Done"},
                {"type": "tool_use", "id": "toolu_1", "name": "wx", "input": {"city": "Oslo"}}
            ],
            "stop_reason": "stop_sequence", "stop_sequence": "END",
            "usage": {"input_tokens": 3, "output_tokens": 4,
                      "cache_creation_input_tokens": 1, "cache_read_input_tokens": 2,
                      "service_tier": "standard"}
        });
        let msg: MessagesResponse = serde_json::from_value(wire.clone()).unwrap();
        let back = MessagesResponse::from_chat(msg.into_chat());
        assert_eq!(serde_json::to_value(back).unwrap(), wire);
    }

    #[test]
    fn openai_answers_map_finish_reasons_and_arguments() {
        let resp: ChatResponse = serde_json::from_value(json!({
            "id": "chatcmpl-abc", "model": "gpt-4o-mini", "created": 1,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "wx", "arguments": "{\"q\":\"x\"}"}},
                    {"id": "call_2", "type": "function",
                     "function": {"name": "wx", "arguments": "not json"}}
                ]}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
                      "prompt_tokens_details": {"cached_tokens": 4}}
        }))
        .unwrap();
        let m = MessagesResponse::from_chat(resp);
        assert_eq!(m.id, "msg_abc");
        assert_eq!(m.stop_reason, Some(StopReason::ToolUse));
        assert_eq!(m.content.len(), 2);
        assert!(matches!(&m.content[0], ContentBlock::ToolUse { input, .. } if input["q"] == "x"));
        assert!(
            matches!(&m.content[1], ContentBlock::ToolUse { input, .. } if *input == json!({}))
        );
        assert_eq!(
            (m.usage.input_tokens, m.usage.cache_read_input_tokens),
            (6, Some(4))
        );
        for (finish, want) in [
            ("stop", StopReason::EndTurn),
            ("length", StopReason::MaxTokens),
            ("content_filter", StopReason::Refusal),
        ] {
            assert_eq!(stop_reason_of(Some(finish), &Map::new()).unwrap().0, want);
        }
    }
}
