//! Anthropic's Messages API (`POST /v1/messages`): its serde types (request, response, streaming
//! events, the error body), and the translation to and from the canonical (OpenAI-shaped) `chat`
//! types in both directions, shared by the Anthropic adapter (outbound) and the gateway's own
//! `/v1/messages` (inbound): `request` and `inbound`, `response`, `stream`.
//!
//! Tagged unions use `#[serde(tag = "type")]` exactly where Anthropic puts a `type` field.
//! Deserialising tolerates what it does not model: unknown fields are ignored (top-level request
//! fields are kept in `extra` so they can be passed on), and unknown content-block, delta and
//! event types become an `Unknown` variant instead of an error, because Anthropic adds new ones
//! without a version bump.

mod inbound;
mod request;
mod response;
mod stream;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::chat::{self, estimate_tokens_from_chars, saturating_count, saturating_count_opt};

pub use request::{for_openai, Invalid, BETAS, DEFAULT_MAX_TOKENS, EXTENSION};
pub use response::stop_reason_of;
pub use stream::{ChunkDecoder, Decoded, EventEncoder};

/// The `anthropic-version` header value this format corresponds to.
pub const API_VERSION: &str = "2023-06-01";

// ---------------------------------------------------------------------------------------------
// Request

/// A Messages API request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<InputMessage>,
    /// Required by Anthropic (unlike OpenAI's optional cap).
    pub max_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Every other field (`thinking`, `service_tier`, ...), passed through untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl MessagesRequest {
    /// The text of the last user message (its text blocks joined by newlines), if any.
    pub fn last_user_text(&self) -> Option<String> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.text())
    }

    /// Rough prompt size in tokens, by the same rule as `ChatRequest::estimate_prompt_tokens`
    /// (the system prompt counts as one message), so both endpoints report comparable usage.
    pub fn estimate_input_tokens(&self) -> u32 {
        estimate_input_tokens(self.system.as_ref(), &self.messages, self.tools.as_deref())
    }
}

/// The rule of [`MessagesRequest::estimate_input_tokens`], for any request with these parts
/// (`/v1/messages/count_tokens` has no `max_tokens`).
pub fn estimate_input_tokens(
    system: Option<&System>,
    messages: &[InputMessage],
    tools: Option<&[Tool]>,
) -> u32 {
    let system_len = system.map_or(0, System::text_len);
    let chars: usize = messages.iter().map(|m| m.content.text_len()).sum();
    let tools: usize = tools
        .into_iter()
        .flatten()
        .map(|t| serde_json::to_string(t).map_or(0, |s| s.len()))
        .sum();
    let n = messages.len() + usize::from(system.is_some());
    let per_message = u32::try_from(n).unwrap_or(u32::MAX).saturating_mul(4);
    estimate_tokens_from_chars(system_len.saturating_add(chars).saturating_add(tools))
        .saturating_add(per_message)
        .saturating_add(3)
}

/// `POST /v1/messages/count_tokens`: the parts of a request that make its prompt.
#[derive(Debug, Clone, Deserialize)]
pub struct CountTokensRequest {
    pub model: String,
    pub messages: Vec<InputMessage>,
    #[serde(default)]
    pub system: Option<System>,
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
    /// `tool_choice`, `thinking`, ...: they do not change the estimate.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputMessage {
    pub role: Role,
    pub content: MessageContent,
}

impl InputMessage {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        InputMessage {
            role,
            content: MessageContent::Text(text.into()),
        }
    }
}

/// Message content: a plain string (shorthand for one text block) or a list of blocks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl MessageContent {
    /// All text of this content, text blocks joined by newlines (other blocks have no text).
    pub fn text(&self) -> String {
        match self {
            MessageContent::Text(s) => s.clone(),
            MessageContent::Blocks(blocks) => join_text(blocks),
        }
    }

    fn text_len(&self) -> usize {
        match self {
            MessageContent::Text(s) => s.len(),
            MessageContent::Blocks(blocks) => blocks
                .iter()
                .filter_map(ContentBlock::as_text)
                .map(str::len)
                .sum(),
        }
    }
}

fn join_text(blocks: &[ContentBlock]) -> String {
    let mut out = String::new();
    for t in blocks.iter().filter_map(ContentBlock::as_text) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(t);
    }
    out
}

/// The system prompt: a string or a list of text blocks (blocks can carry `cache_control`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl System {
    pub fn text(&self) -> String {
        match self {
            System::Text(s) => s.clone(),
            System::Blocks(blocks) => join_text(blocks),
        }
    }

    fn text_len(&self) -> usize {
        match self {
            System::Text(s) => s.len(),
            System::Blocks(blocks) => blocks
                .iter()
                .filter_map(ContentBlock::as_text)
                .map(str::len)
                .sum(),
        }
    }
}

/// A content block, in requests (user and assistant turns) and in responses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Vec<Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    Image {
        source: ImageSource,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    Document {
        source: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolUse {
        id: String,
        name: String,
        /// The tool's arguments, a JSON object.
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<MessageContent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    /// A block type this crate does not model (its fields are dropped).
    #[serde(other)]
    Unknown,
}

impl ContentBlock {
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock::Text {
            text: text.into(),
            citations: None,
            cache_control: None,
        }
    }

    pub fn tool_use(id: impl Into<String>, name: impl Into<String>, input: Value) -> Self {
        ContentBlock::ToolUse {
            id: id.into(),
            name: name.into(),
            input,
            cache_control: None,
        }
    }

    /// The text of a text block; `None` for every other kind.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ContentBlock::Text { text, .. } => Some(text),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
    File { file_id: String },
}

/// Prompt-caching marker: `{"type":"ephemeral"}`, optionally with a `ttl` ("5m", "1h").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CacheControl {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// A tool the model may call. Server tools (`web_search`, ...) carry a `type` and no schema;
/// such fields land in `extra`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tool {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the tool's input object.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub input_schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call some tool.
    Any {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call the named tool.
    Tool {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Response

/// A complete (non-streaming) answer; also the `message` of a `message_start` event, where
/// `content` is empty and `stop_reason` null.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessagesResponse {
    pub id: String,
    /// Always `"message"`.
    #[serde(rename = "type", default = "message_type")]
    pub kind: String,
    pub role: Role,
    pub content: Vec<ContentBlock>,
    pub model: String,
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
    #[serde(default)]
    pub usage: Usage,
}

fn message_type() -> String {
    "message".to_owned()
}

impl MessagesResponse {
    /// All text of the answer, text blocks joined by newlines.
    pub fn text(&self) -> String {
        join_text(&self.content)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    PauseTurn,
    Refusal,
    /// A reason this crate does not know yet.
    #[serde(other)]
    Unknown,
}

impl StopReason {
    /// The equivalent OpenAI `finish_reason`.
    pub fn to_finish_reason(self) -> &'static str {
        match self {
            StopReason::EndTurn | StopReason::StopSequence | StopReason::PauseTurn => "stop",
            StopReason::MaxTokens => "length",
            StopReason::ToolUse => "tool_calls",
            StopReason::Refusal => "content_filter",
            StopReason::Unknown => "stop",
        }
    }
}

/// Anthropic's `usage`: `input_tokens` are the prompt tokens neither read from nor written to the
/// prompt cache. Counts saturate instead of failing the answer (see `chat::saturating_count`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Usage {
    #[serde(default, deserialize_with = "saturating_count")]
    pub input_tokens: u32,
    #[serde(default, deserialize_with = "saturating_count")]
    pub output_tokens: u32,
    #[serde(
        default,
        deserialize_with = "saturating_count_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_creation_input_tokens: Option<u32>,
    #[serde(
        default,
        deserialize_with = "saturating_count_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_read_input_tokens: Option<u32>,
    /// Every other field (`cache_creation` with its 5-minute / 1-hour split, `service_tier`,
    /// `server_tool_use`, ...), as Anthropic sent it.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Fields of OpenAI's usage shape that [`Usage::into_openai`] writes and [`Usage::from_openai`]
/// reads back: they are not Anthropic's and are not carried over.
const OPENAI_ONLY: [&str; 6] = [
    "prompt_tokens_details",
    "completion_tokens_details",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_cache_hit_tokens",
    "prompt_cache_miss_tokens",
];

impl Usage {
    /// OpenAI's shape, as LiteLLM maps it (clients written against OpenAI or LiteLLM read it):
    /// `prompt_tokens` = input + cache reads + cache writes (saturating);
    /// `prompt_tokens_details.cached_tokens` = cache reads and `.cache_creation_tokens` = cache
    /// writes; the two Anthropic counts also at the top as LiteLLM repeats them; every other
    /// field as Anthropic sent it.
    pub fn into_openai(self) -> chat::Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        let prompt = self.input_tokens.saturating_add(read).saturating_add(write);
        let mut u = chat::Usage::new(prompt, self.output_tokens);
        u.extra = self.extra;
        u.extra.insert(
            "prompt_tokens_details".into(),
            json!({"cached_tokens": read, "cache_creation_tokens": write}),
        );
        if let Some(n) = self.cache_read_input_tokens {
            u.extra.insert("cache_read_input_tokens".into(), n.into());
        }
        if let Some(n) = self.cache_creation_input_tokens {
            u.extra
                .insert("cache_creation_input_tokens".into(), n.into());
        }
        u
    }

    /// Anthropic's shape of an OpenAI usage (for Anthropic clients): the exact inverse of
    /// [`Self::into_openai`]; for an OpenAI upstream, `input_tokens` are its uncached prompt
    /// tokens and the cache counts its reads and writes (by the names `Usage::tokens` knows).
    pub fn from_openai(u: &chat::Usage) -> Usage {
        let t = u.tokens();
        Usage {
            input_tokens: t.uncached_input(),
            output_tokens: t.output,
            cache_creation_input_tokens: Some(t.cache_write),
            cache_read_input_tokens: Some(t.cache_read),
            extra: u
                .extra
                .iter()
                .filter(|(k, _)| !OPENAI_ONLY.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming

/// One server-sent event of a streamed answer. On the wire each is
/// `event: <event_name()>\ndata: <json>\n\n`; the JSON repeats the name in `type`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    MessageStart {
        message: MessagesResponse,
    },
    ContentBlockStart {
        index: u32,
        content_block: ContentBlock,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: MessageDelta,
        usage: DeltaUsage,
    },
    MessageStop,
    Error {
        error: ErrorDetail,
    },
    /// An event type this crate does not know yet (Anthropic says to ignore those).
    #[serde(other)]
    Unknown,
}

impl StreamEvent {
    /// The SSE `event:` name.
    pub fn event_name(&self) -> &'static str {
        match self {
            StreamEvent::MessageStart { .. } => "message_start",
            StreamEvent::ContentBlockStart { .. } => "content_block_start",
            StreamEvent::Ping => "ping",
            StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
            StreamEvent::ContentBlockStop { .. } => "content_block_stop",
            StreamEvent::MessageDelta { .. } => "message_delta",
            StreamEvent::MessageStop => "message_stop",
            StreamEvent::Error { .. } => "error",
            StreamEvent::Unknown => "unknown",
        }
    }

    /// The event as one SSE frame, `event: ...\ndata: ...\n\n`.
    pub fn to_sse(&self) -> String {
        // Serializing plain data into memory cannot fail.
        let data = serde_json::to_string(self).unwrap_or_default();
        format!("event: {}\ndata: {}\n\n", self.event_name(), data)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    TextDelta {
        text: String,
    },
    /// A piece of a tool_use block's `input`, as raw JSON text; the pieces concatenate to the
    /// whole object.
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    CitationsDelta {
        citation: Value,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MessageDelta {
    #[serde(default)]
    pub stop_reason: Option<StopReason>,
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// Usage in `message_delta`: cumulative `output_tokens`; newer API versions repeat the input
/// and cache counts (and may add other fields, kept in `extra`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct DeltaUsage {
    #[serde(default, deserialize_with = "saturating_count")]
    pub output_tokens: u32,
    #[serde(
        default,
        deserialize_with = "saturating_count_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub input_tokens: Option<u32>,
    #[serde(
        default,
        deserialize_with = "saturating_count_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_creation_input_tokens: Option<u32>,
    #[serde(
        default,
        deserialize_with = "saturating_count_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_read_input_tokens: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Usage {
    /// Folds a `message_delta`'s usage into the `message_start` one: the delta's counts replace
    /// the earlier ones (they are cumulative), its other fields are added.
    pub fn update(&mut self, d: DeltaUsage) {
        self.output_tokens = d.output_tokens;
        if let Some(n) = d.input_tokens {
            self.input_tokens = n;
        }
        if let Some(n) = d.cache_creation_input_tokens {
            self.cache_creation_input_tokens = Some(n);
        }
        if let Some(n) = d.cache_read_input_tokens {
            self.cache_read_input_tokens = Some(n);
        }
        self.extra.extend(d.extra);
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The body of every error response: `{"type":"error","error":{"type":"...","message":"..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    /// Always `"error"`.
    #[serde(rename = "type", default = "error_type")]
    pub kind: String,
    pub error: ErrorDetail,
}

fn error_type() -> String {
    "error".to_owned()
}

impl ErrorBody {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            kind: error_type(),
            error: ErrorDetail {
                kind: kind.into(),
                message: message.into(),
            },
        }
    }
}

/// `type` is one of invalid_request_error, authentication_error, permission_error,
/// not_found_error, request_too_large, rate_limit_error, api_error, overloaded_error (kept as a
/// string so new kinds still parse).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
}

/// Anthropic's error `type` for an HTTP status.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s < 500 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The error `type`s Anthropic defines (an upstream's own is kept when it is one of them).
pub const ERROR_TYPES: [&str; 10] = [
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
];

/// A message id in Anthropic's form (`msg_...`) for any answer id (`chatcmpl-...` of an OpenAI
/// upstream or a cache replay).
pub fn message_id(id: &str) -> String {
    if id.starts_with("msg_") {
        id.to_owned()
    } else {
        format!("msg_{}", id.strip_prefix("chatcmpl-").unwrap_or(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_parses_blocks_system_tools_and_unknowns() {
        let body = json!({
            "model": "claude-x",
            "max_tokens": 64,
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "t1", "name": "search", "input": {"q": 1}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
                    {"type": "brand_new_block", "foo": 1},
                    {"type": "text", "text": "thanks", "unknown_field": true}
                ]}
            ],
            "tools": [{"name": "search", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "search"},
            "metadata": {"user_id": "u"},
            "stop_sequences": ["END"],
            "top_k": 5,
            "thinking": {"type": "enabled", "budget_tokens": 1024}
        });
        let req: MessagesRequest = serde_json::from_value(body).unwrap();
        assert_eq!(req.last_user_text().as_deref(), Some("thanks"));
        assert_eq!(req.system.as_ref().unwrap().text(), "be brief");
        assert!(
            matches!(req.tool_choice, Some(ToolChoice::Tool { ref name, .. }) if name == "search")
        );
        assert!(req.extra.contains_key("thinking"));
        let MessageContent::Blocks(blocks) = &req.messages[2].content else {
            panic!()
        };
        assert_eq!(blocks[2], ContentBlock::Unknown);
        assert!(req.estimate_input_tokens() > 12);
    }

    #[test]
    fn events_and_errors_round_trip() {
        let ev = StreamEvent::ContentBlockDelta {
            index: 0,
            delta: BlockDelta::InputJsonDelta {
                partial_json: "{\"a\"".into(),
            },
        };
        let sse = ev.to_sse();
        assert!(
            sse.starts_with("event: content_block_delta\ndata: {\"type\":\"content_block_delta\"")
        );
        let data = sse.lines().nth(1).unwrap().strip_prefix("data: ").unwrap();
        assert_eq!(serde_json::from_str::<StreamEvent>(data).unwrap(), ev);

        let err: ErrorBody = serde_json::from_str(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
        .unwrap();
        assert_eq!(err, ErrorBody::new("overloaded_error", "Overloaded"));
        let unknown: StreamEvent =
            serde_json::from_str(r#"{"type":"future_event","x":1}"#).unwrap();
        assert_eq!(unknown, StreamEvent::Unknown);
    }

    #[test]
    fn usage_maps_to_openai_and_back_unchanged() {
        let wire = json!({
            "input_tokens": 21, "output_tokens": 393,
            "cache_creation_input_tokens": 188086, "cache_read_input_tokens": 1000,
            "cache_creation": {"ephemeral_5m_input_tokens": 188000, "ephemeral_1h_input_tokens": 86},
            "service_tier": "standard", "server_tool_use": {"web_search_requests": 0}
        });
        let u: Usage = serde_json::from_value(wire.clone()).unwrap();
        let openai = u.clone().into_openai();
        assert_eq!(openai.prompt_tokens, 21 + 188_086 + 1000);
        assert_eq!(openai.total_tokens, 21 + 188_086 + 1000 + 393);
        let v = serde_json::to_value(&openai).unwrap();
        assert_eq!(v["prompt_tokens_details"]["cached_tokens"], 1000);
        assert_eq!(v["prompt_tokens_details"]["cache_creation_tokens"], 188_086);
        assert_eq!(v["cache_read_input_tokens"], 1000);
        assert_eq!(v["service_tier"], "standard");
        let t = openai.tokens();
        assert_eq!(
            (
                t.input,
                t.cache_read,
                t.cache_write,
                t.cache_write_1h,
                t.uncached_input()
            ),
            (189_107, 1000, 188_086, 86, 21)
        );
        let back = Usage::from_openai(&openai);
        assert_eq!(serde_json::to_value(&back).unwrap(), wire);

        // Counts past u32 saturate rather than fail the answer.
        let big: Usage = serde_json::from_value(json!({"input_tokens": 5_000_000_000u64,
            "output_tokens": 1, "cache_read_input_tokens": 4_000_000_000u64}))
        .unwrap();
        assert_eq!(big.input_tokens, u32::MAX);
        assert_eq!(big.into_openai().prompt_tokens, u32::MAX);
    }
}
