//! The canonical request, response and stream-event types the pipeline speaks.
//!
//! They follow OpenAI's chat-completions wire format, because that is what clients send and what
//! most upstreams accept. Every struct keeps the fields it does not model in `extra`, so unknown
//! request fields reach OpenAI-compatible upstreams untouched (a client using a newer parameter
//! must not be silently downgraded by the gateway).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
        estimate_tokens_from_chars(chars + tools) + 4 * self.messages.len() as u32 + 3
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
    (chars as u32).div_ceil(4)
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

    fn text_len(&self) -> usize {
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
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub total_tokens: u32,
}

impl Usage {
    /// Saturating: the counts often come from an upstream.
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }

    /// Two attempts' usage together (a resumed stream is billed for both).
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
            total_tokens: self.total_tokens.saturating_add(other.total_tokens),
        }
    }
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

/// Reassembles a streamed answer into a `ChatResponse` (for the cache and the audit): content
/// and finish reason per choice, the usage chunk, the answering model.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    id: String,
    model: String,
    created: u64,
    choices: Vec<(String, Option<String>)>,
    usage: Option<Usage>,
    /// Tool-call deltas are not reassembled: such answers are not cacheable from a stream.
    has_tool_calls: bool,
}

impl StreamAssembler {
    pub fn push(&mut self, c: &ChatChunk) {
        if self.id.is_empty() {
            self.id.clone_from(&c.id);
            self.model.clone_from(&c.model);
            self.created = c.created;
        }
        if c.usage.is_some() {
            self.usage = c.usage;
        }
        for ch in &c.choices {
            let i = ch.index as usize;
            if self.choices.len() <= i {
                self.choices.resize(i + 1, (String::new(), None));
            }
            if let Some(t) = &ch.delta.content {
                self.choices[i].0.push_str(t);
            }
            if ch.delta.tool_calls.is_some() {
                self.has_tool_calls = true;
            }
            if let Some(f) = &ch.finish_reason {
                self.choices[i].1 = Some(f.clone());
            }
        }
    }

    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The answer as one `chat.completion`; `None` when it cannot be represented faithfully
    /// (tool calls) or nothing arrived.
    pub fn finish(self) -> Option<ChatResponse> {
        if self.has_tool_calls || self.choices.is_empty() {
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
                .map(|(i, (text, finish))| Choice {
                    index: i as u32,
                    message: Message::new(Role::Assistant, text),
                    finish_reason: finish,
                    logprobs: None,
                })
                .collect(),
            usage: self.usage,
            extra: Map::new(),
        })
    }
}

/// A complete answer replayed as stream chunks: a role chunk, the content in word-group pieces,
/// a finish chunk per choice, and (when asked) a final usage chunk with no choices.
pub fn replay_chunks(resp: &ChatResponse, id: &str, include_usage: bool) -> Vec<ChatChunk> {
    const WORDS_PER_CHUNK: usize = 4;
    let created = unix_now();
    let chunk = |index: u32, delta: Delta, finish: Option<String>| ChatChunk {
        id: id.to_owned(),
        object: chunk_object(),
        created,
        model: resp.model.clone(),
        choices: vec![ChunkChoice {
            index,
            delta,
            finish_reason: finish,
            logprobs: None,
        }],
        usage: None,
        extra: Map::new(),
    };
    let mut out = Vec::new();
    for c in &resp.choices {
        out.push(chunk(
            c.index,
            Delta {
                role: Some(Role::Assistant),
                content: Some(String::new()),
                ..Delta::default()
            },
            None,
        ));
        let text = c.message.text();
        let mut piece = String::new();
        let mut words = 0;
        for (i, part) in text.split_inclusive(char::is_whitespace).enumerate() {
            piece.push_str(part);
            words += 1;
            if words == WORDS_PER_CHUNK || i == 0 {
                out.push(chunk(c.index, delta_text(std::mem::take(&mut piece)), None));
                words = 0;
            }
        }
        if !piece.is_empty() {
            out.push(chunk(c.index, delta_text(piece), None));
        }
        if c.message.tool_calls.is_some() {
            out.push(chunk(
                c.index,
                Delta {
                    tool_calls: c.message.tool_calls.as_ref().map(|calls| {
                        calls
                            .iter()
                            .enumerate()
                            .map(|(i, call)| {
                                let mut call = call.clone();
                                call["index"] = Value::from(i);
                                call
                            })
                            .collect()
                    }),
                    ..Delta::default()
                },
                None,
            ));
        }
        out.push(chunk(c.index, Delta::default(), c.finish_reason.clone()));
    }
    if include_usage {
        out.push(ChatChunk {
            id: id.to_owned(),
            object: chunk_object(),
            created,
            model: resp.model.clone(),
            choices: Vec::new(),
            usage: resp.usage,
            extra: Map::new(),
        });
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

    #[test]
    fn replayed_chunks_reassemble_to_the_same_answer() {
        let mut resp = ChatResponse {
            id: "x".into(),
            object: completion_object(),
            created: 1,
            model: "m".into(),
            choices: vec![Choice {
                index: 0,
                message: Message::new(Role::Assistant, "One two  three\nfour five six seven."),
                finish_reason: Some("stop".into()),
                logprobs: None,
            }],
            usage: Some(Usage::new(10, 7)),
            extra: Map::new(),
        };
        let chunks = replay_chunks(&resp, "chatcmpl-new", true);
        assert!(chunks[0].choices[0].delta.role.is_some());
        assert!(chunks.last().unwrap().choices.is_empty());
        let mut a = StreamAssembler::default();
        for c in &chunks {
            a.push(c);
        }
        let back = a.finish().unwrap();
        resp.id = "chatcmpl-new".into();
        assert_eq!(back.choices, resp.choices);
        assert_eq!(back.usage, resp.usage);
    }
}
