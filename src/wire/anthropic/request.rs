//! Canonical request -> Anthropic request ([`MessagesRequest::from_chat`], what the Anthropic
//! adapter sends); its inverse, for Anthropic clients, is `inbound.rs`.
//!
//! What only Anthropic's API has travels in the canonical request without reaching an
//! OpenAI-compatible upstream (see [`crate::wire::anthropic::for_openai`]):
//! - top-level fields with no OpenAI equivalent (`top_k`, `thinking`, server tools, and any field
//!   this crate does not model) in the gateway-owned field [`EXTENSION`] (`"anthropic": {...}`),
//!   which OpenAI clients may send too, to reach those features on Anthropic targets;
//! - `cache_control` markers on content parts, system parts, tools and tool results, where
//!   OpenRouter and LiteLLM put them in OpenAI's format;
//! - an assistant turn's thinking blocks in its `thinking_blocks` (LiteLLM's name), a tool
//!   result's `is_error` on its tool message.

use serde_json::{json, Map, Value};

use super::{
    CacheControl, ContentBlock, ImageSource, InputMessage, MessageContent, MessagesRequest,
    Metadata, Role, System, Tool, ToolChoice,
};
use crate::chat::{self, part_text, ChatRequest, Content, Message, Stop};

/// Anthropic requires `max_tokens`; OpenAI does not. Used when the client sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The canonical request's gateway-owned field for Anthropic-only request fields.
pub const EXTENSION: &str = "anthropic";
/// Of [`EXTENSION`]: Anthropic's server tools (`web_search_...`), which have no OpenAI form.
pub(super) const SERVER_TOOLS: &str = "server_tools";
/// Of [`EXTENSION`]: the client's `anthropic-beta` header, sent on by the adapter.
pub const BETAS: &str = "betas";
/// A canonical assistant message's thinking blocks, as Anthropic sent them.
pub const THINKING_BLOCKS: &str = "thinking_blocks";
/// A canonical assistant message's reasoning text (DeepSeek's and LiteLLM's name).
pub const REASONING_CONTENT: &str = "reasoning_content";
pub(super) const IS_ERROR: &str = "is_error";
pub(super) const CACHE_CONTROL: &str = "cache_control";

/// An Anthropic request the gateway cannot take: the field (Anthropic's path form,
/// `messages.1.content.0`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub param: String,
    pub message: String,
}

impl Invalid {
    pub(super) fn at(param: String, message: impl Into<String>) -> Self {
        Invalid {
            param,
            message: message.into(),
        }
    }
}

impl MessagesRequest {
    /// Canonical request -> Anthropic request, for `model`.
    pub fn from_chat(req: &ChatRequest, model: &str, stream: bool) -> MessagesRequest {
        let mut messages: Vec<InputMessage> = Vec::with_capacity(req.messages.len());
        for m in &req.messages {
            let (role, blocks) = match m.role {
                chat::Role::System | chat::Role::Developer => continue,
                chat::Role::User => (Role::User, content_blocks(m.content.as_ref())),
                chat::Role::Assistant => (Role::Assistant, assistant_blocks(m)),
                chat::Role::Tool | chat::Role::Function => (Role::User, vec![tool_result(m)]),
            };
            if blocks.is_empty() {
                continue;
            }
            // Anthropic wants alternating roles: merge consecutive turns of the same role.
            match messages.last_mut() {
                Some(InputMessage {
                    role: last,
                    content: MessageContent::Blocks(b),
                }) if *last == role => b.extend(blocks),
                _ => messages.push(InputMessage {
                    role,
                    content: MessageContent::Blocks(blocks),
                }),
            }
        }
        let ext = req.extra.get(EXTENSION).and_then(Value::as_object);
        let mut tools: Option<Vec<Tool>> = req
            .tools
            .as_ref()
            .map(|tools| tools.iter().filter_map(function_tool).collect());
        let server_tools = ext
            .and_then(|e| e.get(SERVER_TOOLS))
            .and_then(Value::as_array);
        for t in server_tools.into_iter().flatten() {
            if let Ok(t) = serde_json::from_value::<Tool>(t.clone()) {
                tools.get_or_insert_with(Vec::new).push(t);
            }
        }
        let mut extra = Map::new();
        let mut top_k = None;
        for (k, v) in ext.into_iter().flatten() {
            match k.as_str() {
                "top_k" => top_k = v.as_u64().map(|k| k.min(u64::from(u32::MAX)) as u32),
                SERVER_TOOLS | BETAS => {}
                _ => {
                    extra.insert(k.clone(), v.clone());
                }
            }
        }
        MessagesRequest {
            model: model.to_owned(),
            messages,
            max_tokens: req.max_output_tokens().unwrap_or(DEFAULT_MAX_TOKENS),
            system: system_of(&req.messages),
            // OpenAI's range is 0..2, Anthropic's 0..1.
            temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
            top_p: req.top_p,
            top_k,
            stop_sequences: req.stop.as_ref().map(Stop::to_vec),
            stream,
            tool_choice: tool_choice_of(req),
            tools,
            metadata: req.user.as_ref().map(|u| Metadata {
                user_id: Some(u.clone()),
            }),
            extra,
        }
    }
}

/// What an OpenAI-compatible upstream gets of a request that may carry Anthropic-only data (an
/// Anthropic client's, or one with the [`EXTENSION`]): its messages and tools without the
/// Anthropic-only fields, which OpenAI's API refuses. `None` for any other request: it goes as
/// the client sent it. (The extension itself is a gateway field the adapter never sends.)
pub fn for_openai(req: &ChatRequest) -> Option<(Vec<Message>, Option<Vec<Value>>)> {
    if !req.from_anthropic && !req.extra.contains_key(EXTENSION) {
        return None;
    }
    // Most requests carry none: then nothing is copied.
    let marked_part = |p: &Value| p.get(CACHE_CONTROL).is_some();
    let marked = req.messages.iter().any(|m| {
        [THINKING_BLOCKS, IS_ERROR, CACHE_CONTROL]
            .iter()
            .any(|k| m.extra.contains_key(*k))
            || matches!(&m.content, Some(Content::Parts(parts)) if parts.iter().any(marked_part))
    }) || req.tools.iter().flatten().any(marked_part);
    if !marked {
        return None;
    }
    let mut messages = req.messages.clone();
    for m in &mut messages {
        for k in [THINKING_BLOCKS, IS_ERROR, CACHE_CONTROL] {
            m.extra.remove(k);
        }
        if let Some(Content::Parts(parts)) = &mut m.content {
            for p in parts.iter_mut().filter_map(Value::as_object_mut) {
                p.remove(CACHE_CONTROL);
            }
        }
    }
    let mut tools = req.tools.clone();
    for t in tools.iter_mut().flatten().filter_map(Value::as_object_mut) {
        t.remove(CACHE_CONTROL);
    }
    Some((messages, tools))
}

// -- canonical -> Anthropic ------------------------------------------------------------------

/// System and developer messages as Anthropic's `system`: text joined by blank lines, or blocks
/// when a part carries a `cache_control` marker (which only a block can hold).
fn system_of(messages: &[Message]) -> Option<System> {
    let system = || {
        messages
            .iter()
            .filter(|m| matches!(m.role, chat::Role::System | chat::Role::Developer))
    };
    let marked = system().any(|m| match &m.content {
        Some(Content::Parts(parts)) => parts.iter().any(|p| p.get(CACHE_CONTROL).is_some()),
        _ => false,
    });
    if marked {
        let mut blocks = Vec::new();
        for m in system() {
            match &m.content {
                Some(Content::Text(s)) if !s.is_empty() => blocks.push(ContentBlock::text(s)),
                Some(Content::Parts(parts)) => blocks.extend(parts.iter().filter_map(|p| {
                    Some(ContentBlock::Text {
                        text: part_text(p)?.to_owned(),
                        citations: None,
                        cache_control: cache_control(p),
                    })
                })),
                _ => {}
            }
        }
        return (!blocks.is_empty()).then_some(System::Blocks(blocks));
    }
    let mut text = String::new();
    for m in system() {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&m.text());
    }
    (!text.is_empty()).then_some(System::Text(text))
}

fn cache_control(v: &Value) -> Option<CacheControl> {
    serde_json::from_value(v.get(CACHE_CONTROL)?.clone()).ok()
}

fn content_blocks(content: Option<&Content>) -> Vec<ContentBlock> {
    match content {
        None => Vec::new(),
        Some(Content::Text(s)) if s.is_empty() => Vec::new(),
        Some(Content::Text(s)) => vec![ContentBlock::text(s.clone())],
        Some(Content::Parts(parts)) => parts.iter().filter_map(part_block).collect(),
    }
}

/// An assistant turn: its thinking blocks (as they came from Anthropic), text, tool calls.
fn assistant_blocks(m: &Message) -> Vec<ContentBlock> {
    let mut blocks: Vec<ContentBlock> = m
        .extra
        .get(THINKING_BLOCKS)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| serde_json::from_value::<ContentBlock>(b.clone()).ok())
        .filter(|b| {
            matches!(
                b,
                ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. }
            )
        })
        .collect();
    blocks.extend(content_blocks(m.content.as_ref()));
    for call in m.tool_calls.iter().flatten() {
        let f = &call["function"];
        let args = f["arguments"].as_str().unwrap_or("{}");
        let input = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
        blocks.push(ContentBlock::tool_use(
            call["id"].as_str().unwrap_or_default(),
            f["name"].as_str().unwrap_or_default(),
            input,
        ));
    }
    blocks
}

fn tool_result(m: &Message) -> ContentBlock {
    ContentBlock::ToolResult {
        tool_use_id: m
            .tool_call_id
            .clone()
            .or_else(|| m.name.clone())
            .unwrap_or_default(),
        content: Some(MessageContent::Text(m.text())),
        is_error: m
            .extra
            .get(IS_ERROR)
            .and_then(Value::as_bool)
            .filter(|e| *e),
        cache_control: m
            .extra
            .get(CACHE_CONTROL)
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
    }
}

fn part_block(part: &Value) -> Option<ContentBlock> {
    let cc = cache_control(part);
    match part.get("type")?.as_str()? {
        "text" => Some(ContentBlock::Text {
            text: part.get("text")?.as_str()?.to_owned(),
            citations: None,
            cache_control: cc,
        }),
        "image_url" => {
            let url = part.get("image_url")?.get("url")?.as_str()?;
            let source = match data_url(url) {
                Some((media_type, data)) => ImageSource::Base64 {
                    media_type: media_type.to_owned(),
                    data: data.to_owned(),
                },
                None => ImageSource::Url {
                    url: url.to_owned(),
                },
            };
            Some(ContentBlock::Image {
                source,
                cache_control: cc,
            })
        }
        "file" => {
            let file = part.get("file")?;
            let source = match (file.get("file_data"), file.get("file_id")) {
                (Some(Value::String(d)), _) => {
                    let (media_type, data) = data_url(d)?;
                    json!({"type": "base64", "media_type": media_type, "data": data})
                }
                (_, Some(Value::String(id))) => json!({"type": "file", "file_id": id}),
                _ => return None,
            };
            Some(ContentBlock::Document {
                source,
                title: file
                    .get("filename")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                cache_control: cc,
            })
        }
        _ => None,
    }
}

/// `data:<media type>;base64,<data>`
fn data_url(url: &str) -> Option<(&str, &str)> {
    url.strip_prefix("data:")?.split_once(";base64,")
}

/// An OpenAI function tool as an Anthropic tool (other kinds have no Anthropic form).
fn function_tool(t: &Value) -> Option<Tool> {
    let f = t.get("function")?;
    Some(Tool {
        name: f.get("name")?.as_str()?.to_owned(),
        description: f
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        input_schema: f
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        cache_control: cache_control(t),
        extra: Map::new(),
    })
}

fn tool_choice_of(req: &ChatRequest) -> Option<ToolChoice> {
    let no_parallel =
        (req.extra.get("parallel_tool_calls") == Some(&Value::Bool(false))).then_some(true);
    let choice = req.tool_choice.as_ref().and_then(|c| match c {
        Value::String(s) if s == "auto" => Some(ToolChoice::Auto {
            disable_parallel_tool_use: no_parallel,
        }),
        Value::String(s) if s == "required" => Some(ToolChoice::Any {
            disable_parallel_tool_use: no_parallel,
        }),
        Value::String(s) if s == "none" => Some(ToolChoice::None),
        Value::Object(_) => c["function"]["name"].as_str().map(|n| ToolChoice::Tool {
            name: n.to_owned(),
            disable_parallel_tool_use: no_parallel,
        }),
        _ => None,
    });
    match (choice, no_parallel, &req.tools) {
        (None, Some(_), Some(_)) => Some(ToolChoice::Auto {
            disable_parallel_tool_use: no_parallel,
        }),
        (choice, ..) => choice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(v: Value) -> ChatRequest {
        serde_json::from_value::<MessagesRequest>(v)
            .unwrap()
            .into_chat()
            .unwrap()
    }

    #[test]
    fn openai_request_translates_system_tools_and_tool_results() {
        let req: ChatRequest = serde_json::from_value(json!({
            "model": "x",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "wx", "arguments": "{\"city\":\"Oslo\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "rain"},
                {"role": "user", "content": [{"type": "text", "text": "thanks"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}
            ],
            "tools": [{"type": "function", "function": {"name": "wx", "parameters": {"type": "object"}}}],
            "tool_choice": "required", "temperature": 1.5, "stop": "END", "max_tokens": 50
        }))
        .unwrap();
        let a = MessagesRequest::from_chat(&req, "claude-3-haiku", false);
        assert_eq!(a.system, Some(System::Text("Be brief.".into())));
        assert_eq!(a.max_tokens, 50);
        assert_eq!(a.temperature, Some(1.0));
        assert_eq!(a.stop_sequences, Some(vec!["END".to_owned()]));
        assert!(matches!(a.tool_choice, Some(ToolChoice::Any { .. })));
        assert_eq!(a.messages.len(), 3, "tool result and next user turn merge");
        let MessageContent::Blocks(b) = &a.messages[1].content else {
            panic!()
        };
        assert!(matches!(&b[0], ContentBlock::ToolUse { input, .. } if input["city"] == "Oslo"));
        let MessageContent::Blocks(b) = &a.messages[2].content else {
            panic!()
        };
        assert_eq!(b.len(), 3);
        assert!(matches!(
            &b[2],
            ContentBlock::Image {
                source: ImageSource::Base64 { .. },
                ..
            }
        ));
    }

    /// What an Anthropic client sends survives the trip through the canonical form back to an
    /// Anthropic upstream: blocks, markers, thinking, tool errors, Anthropic-only fields.
    #[test]
    fn openai_upstreams_get_no_anthropic_only_fields() {
        let chat = inbound(json!({
            "model": "m", "max_tokens": 5,
            "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                    "content": "x", "is_error": true, "cache_control": {"type": "ephemeral"}}]}
            ],
            "tools": [{"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}]
        }));
        let (messages, tools) = for_openai(&chat).unwrap();
        let text = serde_json::to_string(&(messages, tools)).unwrap();
        for gone in [CACHE_CONTROL, THINKING_BLOCKS, IS_ERROR] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
        let mut plain = chat.clone();
        plain.from_anthropic = false;
        assert!(for_openai(&plain).is_none());
        let unmarked = inbound(json!({"model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": "q"}]}));
        assert!(
            for_openai(&unmarked).is_none(),
            "nothing to strip, nothing copied"
        );
    }
}
