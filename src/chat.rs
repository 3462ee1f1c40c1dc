//! The canonical request, response and stream-event types the pipeline speaks.
//!
//! They follow OpenAI's chat-completions wire format, because that is what clients send and what
//! most upstreams accept. Every struct keeps the fields it does not model in `extra`, so unknown
//! request fields reach OpenAI-compatible upstreams untouched (a client using a newer parameter
//! must not be silently downgraded by the gateway).

mod usage;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use usage::{count_of, saturating_count, saturating_count_opt, TokenUsage, Usage};

/// A chat-completions request as the client sent it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// OpenAI's `metadata` (string -> string); routing rules may match on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Every other field, passed through to OpenAI-compatible upstreams.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// An Anthropic client sent it (`/v1/messages`): it may carry Anthropic-only fields that an
    /// OpenAI-compatible upstream must not get (`wire::anthropic::for_openai`). Not part of what
    /// the request asks, so never serialized (nor in its cache key).
    #[serde(skip)]
    pub from_anthropic: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ChatRequest {
    /// Effective output cap: `max_completion_tokens` wins over the legacy `max_tokens`.
    pub fn max_output_tokens(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }

    /// The text of the last user message (all its text parts), if any.
    pub fn last_user_text(&self) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.text())
    }

    /// Rough prompt size in tokens (about four characters a token, plus per-message overhead).
    /// Used for routing rules and for usage estimates when a provider reports none; not billing.
    pub fn estimate_prompt_tokens(&self) -> u32 {
        let chars: usize = self.messages.iter().map(|m| m.text_len()).sum();
        let tools: usize = self
            .tools
            .as_ref()
            .map(|t| t.iter().map(|v| v.to_string().len()).sum())
            .unwrap_or(0);
        let per_message = u32::try_from(self.messages.len())
            .unwrap_or(u32::MAX)
            .saturating_mul(4);
        estimate_tokens_from_chars(chars.saturating_add(tools))
            .saturating_add(per_message)
            .saturating_add(3)
    }
}

/// The user turn with which the gateway asks a model to continue an answer that broke off at
/// another target, when the model takes no prefill: the partial answer goes before it as an
/// assistant turn, and the answer's last words, quoted, after it. It lives here, on the ground
/// floor, because the simulated provider recognises it as well as the router sends it.
pub const CONTINUE_REQUEST: &str = "Your previous message was cut off. Continue it exactly \
where it stopped: do not repeat any of it, add no preamble or comment, start with the very next \
characters. It ended with: ";

/// About four characters per token for English text (OpenAI's rule of thumb).
pub fn estimate_tokens_from_chars(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s.clone()],
            Stop::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    /// OpenAI's newer name for system instructions on reasoning models.
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

impl Role {
    /// The wire name (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Function => "function",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub role: Role,
    /// Optional: assistant messages that only carry tool calls have none.
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: Some(Content::Text(text.into())),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            extra: Map::new(),
        }
    }

    /// All text of this message, text parts joined by newlines.
    pub fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(s)) => s.clone(),
            Some(Content::Parts(parts)) => {
                let mut out = String::new();
                for t in parts.iter().filter_map(part_text) {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(t);
                }
                out
            }
        }
    }

    /// Bytes of text in the message (content parts without text count 0).
    pub fn text_len(&self) -> usize {
        match &self.content {
            None => 0,
            Some(Content::Text(s)) => s.len(),
            Some(Content::Parts(parts)) => parts.iter().filter_map(part_text).map(str::len).sum(),
        }
    }
}

/// The text of a content part `{"type":"text","text":...}`; other parts (images, audio) have none.
pub fn part_text(part: &Value) -> Option<&str> {
    if part.get("type").and_then(Value::as_str) == Some("text") {
        part.get("text").and_then(Value::as_str)
    } else {
        None
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    /// Multi-part content (text, image_url, input_audio, ...), kept as JSON.
    Parts(Vec<Value>),
}

/// A complete (non-streaming) answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    #[serde(default = "completion_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn completion_object() -> String {
    "chat.completion".to_owned()
}

impl ChatResponse {
    /// True when every choice ended naturally (`stop` or `tool_calls`): only such answers are
    /// complete enough to cache.
    pub fn is_complete(&self) -> bool {
        !self.choices.is_empty()
            && self.choices.iter().all(|c| {
                matches!(
                    c.finish_reason.as_deref(),
                    Some("stop") | Some("tool_calls")
                )
            })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    pub message: Message,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
    /// Every other field of the choice (`content_filter_results`, `native_finish_reason`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One streamed `chat.completion.chunk`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatChunk {
    pub id: String,
    #[serde(default = "chunk_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    pub model: String,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Present (with `choices: []`) on the final chunk when `include_usage` was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn chunk_object() -> String {
    "chat.completion.chunk".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
    /// Every other field of the choice.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<Value>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Seconds since the Unix epoch, for `created` fields.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh `chatcmpl-...` id (random, 24 hex chars).
pub fn new_completion_id() -> String {
    format!("chatcmpl-{:024x}", rand::random::<u128>() >> 32)
}

/// Reassembles a streamed answer into a `ChatResponse` (for the cache): content and finish
/// reason per choice, the usage chunk as it came, the answering model, and the fields Sluice
/// does not model, so that a replay carries them too: the chunks' own (merged, later values
/// win) onto the response, the choices' onto its choices, the deltas' onto the messages (the
/// streamed text fields [`STREAMED_TEXT`] joined piece by piece).
#[derive(Debug, Default)]
pub struct StreamAssembler {
    id: String,
    model: String,
    created: u64,
    choices: Vec<Assembled>,
    usage: Option<Usage>,
    extra: Map<String, Value>,
    /// Tool-call deltas are not reassembled: such answers are not cacheable from a stream.
    has_tool_calls: bool,
    /// A choice index past [`MAX_ASSEMBLED_CHOICES`] arrived: the answer is not kept.
    out_of_range: bool,
}

/// Most choices a streamed answer is reassembled into (a request's `n` is at most 128). The
/// index comes from upstream data: it must not size an allocation.
pub const MAX_ASSEMBLED_CHOICES: usize = 128;

/// Delta fields whose pieces concatenate to the message's field (OpenAI's `refusal`, DeepSeek's
/// `reasoning_content`, OpenRouter's `reasoning`); any other unknown delta field keeps its
/// latest value.
pub const STREAMED_TEXT: [&str; 3] = ["refusal", "reasoning_content", "reasoning"];

#[derive(Debug, Default, Clone)]
struct Assembled {
    text: String,
    finish: Option<String>,
    extra: Map<String, Value>,
    message_extra: Map<String, Value>,
}

impl StreamAssembler {
    pub fn push(&mut self, c: &ChatChunk) {
        if self.id.is_empty() {
            self.id.clone_from(&c.id);
            self.model.clone_from(&c.model);
            self.created = c.created;
        }
        if let Some(u) = &c.usage {
            self.usage = Some(u.clone());
        }
        merge(&mut self.extra, &c.extra);
        for ch in &c.choices {
            let i = ch.index as usize;
            if i >= MAX_ASSEMBLED_CHOICES {
                self.out_of_range = true;
                continue;
            }
            if self.choices.len() <= i {
                self.choices.resize(i + 1, Assembled::default());
            }
            let a = &mut self.choices[i];
            if let Some(t) = &ch.delta.content {
                a.text.push_str(t);
            }
            if ch.delta.tool_calls.is_some() {
                self.has_tool_calls = true;
            }
            if let Some(f) = &ch.finish_reason {
                a.finish = Some(f.clone());
            }
            merge(&mut a.extra, &ch.extra);
            for (k, v) in &ch.delta.extra {
                match (a.message_extra.get_mut(k), v) {
                    (Some(Value::String(so_far)), Value::String(piece))
                        if STREAMED_TEXT.contains(&k.as_str()) =>
                    {
                        so_far.push_str(piece)
                    }
                    (Some(old), _) if old == v => {}
                    _ => {
                        a.message_extra.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }

    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The answer as one `chat.completion`; `None` when it cannot be represented faithfully
    /// (tool calls) or nothing arrived.
    pub fn finish(self) -> Option<ChatResponse> {
        if self.has_tool_calls || self.out_of_range || self.choices.is_empty() {
            return None;
        }
        Some(ChatResponse {
            id: self.id,
            object: completion_object(),
            created: self.created,
            model: self.model,
            choices: self
                .choices
                .into_iter()
                .enumerate()
                .map(|(i, a)| {
                    let mut message = Message::new(Role::Assistant, a.text);
                    message.extra = a.message_extra;
                    Choice {
                        index: i as u32,
                        message,
                        finish_reason: a.finish,
                        logprobs: None,
                        extra: a.extra,
                    }
                })
                .collect(),
            usage: self.usage,
            extra: self.extra,
        })
    }
}

/// `from`'s fields into `into`, cloning only what is new or changed (a chunk repeats its
/// `system_fingerprint` on every chunk).
fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        if into.get(k) != Some(v) {
            into.insert(k.clone(), v.clone());
        }
    }
}

/// A complete answer replayed as stream chunks: a role chunk (carrying the message's unknown
/// fields), the content in word-group pieces, a finish chunk per choice (carrying the choice's),
/// and (when asked) a final usage chunk with no choices and the whole usage. Every chunk
/// carries the response's unknown top-level fields, as OpenAI repeats `system_fingerprint`.
pub fn replay_chunks(resp: &ChatResponse, id: &str, include_usage: bool) -> Vec<ChatChunk> {
    const WORDS_PER_CHUNK: usize = 4;
    let created = unix_now();
    let chunk = |choices: Vec<ChunkChoice>| ChatChunk {
        id: id.to_owned(),
        object: chunk_object(),
        created,
        model: resp.model.clone(),
        choices,
        usage: None,
        extra: resp.extra.clone(),
    };
    let choice = |index: u32, delta: Delta| {
        chunk(vec![ChunkChoice {
            index,
            delta,
            finish_reason: None,
            logprobs: None,
            extra: Map::new(),
        }])
    };
    let mut out = Vec::new();
    for c in &resp.choices {
        out.push(choice(
            c.index,
            Delta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                extra: c.message.extra.clone(),
                ..Delta::default()
            },
        ));
        let text = c.message.text();
        let mut piece = String::new();
        let mut words = 0;
        for (i, part) in text.split_inclusive(char::is_whitespace).enumerate() {
            piece.push_str(part);
            words += 1;
            if words == WORDS_PER_CHUNK || i == 0 {
                out.push(choice(c.index, delta_text(std::mem::take(&mut piece))));
                words = 0;
            }
        }
        if !piece.is_empty() {
            out.push(choice(c.index, delta_text(piece)));
        }
        if c.message.tool_calls.is_some() {
            out.push(choice(
                c.index,
                Delta {
                    tool_calls: c.message.tool_calls.as_ref().map(|calls| {
                        calls
                            .iter()
                            .enumerate()
                            .map(|(i, call)| {
                                let mut call = call.clone();
                                // A stored answer's calls are upstream data: only an object
                                // takes an index (indexing another value would panic).
                                if let Some(obj) = call.as_object_mut() {
                                    obj.insert("index".into(), Value::from(i));
                                }
                                call
                            })
                            .collect()
                    }),
                    ..Delta::default()
                },
            ));
        }
        out.push(chunk(vec![ChunkChoice {
            index: c.index,
            delta: Delta::default(),
            finish_reason: c.finish_reason.clone(),
            logprobs: None,
            extra: c.extra.clone(),
        }]));
    }
    if include_usage {
        let mut last = chunk(Vec::new());
        last.usage.clone_from(&resp.usage);
        out.push(last);
    }
    out
}

fn delta_text(s: String) -> Delta {
    Delta {
        content: Some(s),
        ..Delta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream data must not size allocations or panic a replay (issue 12, item 6).
    #[test]
    fn hostile_indexes_and_tool_calls_are_bounded() {
        let chunk: ChatChunk = serde_json::from_value(serde_json::json!({
            "id": "c", "model": "m", "created": 1,
            "choices": [{"index": 4294967295u32, "delta": {"content": "x"}, "finish_reason": null}]
        }))
        .unwrap();
        let mut a = StreamAssembler::default();
        a.push(&chunk);
        assert!(a.choices.is_empty(), "no 4-billion-entry allocation");
        assert!(a.finish().is_none(), "such an answer is not kept");

        let resp: ChatResponse = serde_json::from_value(serde_json::json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": null,
                            "tool_calls": ["not an object", 7, {"id": "call_1", "type": "function"}]}}]
        }))
        .unwrap();
        let chunks = replay_chunks(&resp, "id", false);
        let calls = chunks
            .iter()
            .find_map(|c| c.choices[0].delta.tool_calls.clone())
            .unwrap();
        assert_eq!(calls[0], "not an object");
        assert_eq!(calls[2]["index"], 2);
    }

    #[test]
    fn replayed_chunks_reassemble_to_the_same_answer_with_every_unknown_field() {
        let mut resp: ChatResponse = serde_json::from_value(serde_json::json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "system_fingerprint": "fp_1", "service_tier": "default",
            "choices": [{
                "index": 0, "finish_reason": "stop", "native_finish_reason": "end_turn",
                "message": {"role": "assistant", "content": "One two  three\nfour five six seven.",
                            "reasoning_content": "Think, then answer.", "refusal": null}
            }],
            "usage": {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17,
                      "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 3}}
        }))
        .unwrap();
        let chunks = replay_chunks(&resp, "chatcmpl-new", true);
        assert!(chunks[0].choices[0].delta.role.is_some());
        assert!(chunks
            .iter()
            .all(|c| c.extra["system_fingerprint"] == "fp_1"));
        assert!(chunks.last().unwrap().choices.is_empty());
        let mut a = StreamAssembler::default();
        for c in &chunks {
            a.push(c);
        }
        let back = a.finish().unwrap();
        resp.id = "chatcmpl-new".into();
        resp.created = back.created;
        assert_eq!(back, resp);
    }

    #[test]
    fn streamed_text_fields_join_and_other_delta_fields_keep_the_latest() {
        let chunk = |delta: serde_json::Value, finish: Option<&str>| -> ChatChunk {
            serde_json::from_value(serde_json::json!({
                "id": "c", "model": "m", "created": 1, "provider": "p",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
            }))
            .unwrap()
        };
        let mut a = StreamAssembler::default();
        a.push(&chunk(
            serde_json::json!({"role": "assistant", "reasoning_content": "Let me"}),
            None,
        ));
        a.push(&chunk(
            serde_json::json!({"reasoning_content": " think.", "annotations": [1]}),
            None,
        ));
        a.push(&chunk(
            serde_json::json!({"content": "Yes.", "annotations": [2]}),
            Some("stop"),
        ));
        let r = a.finish().unwrap();
        let m = &r.choices[0].message;
        assert_eq!(m.extra["reasoning_content"], "Let me think.");
        assert_eq!(m.extra["annotations"], serde_json::json!([2]));
        assert_eq!(r.extra["provider"], "p");
        assert_eq!(m.text(), "Yes.");
    }
}
