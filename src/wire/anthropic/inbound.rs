//! Anthropic request (an Anthropic client's, `/v1/messages`) -> canonical request
//! ([`MessagesRequest::into_chat`]): the inverse of `request.rs`, so an Anthropic client's request
//! reaches an Anthropic upstream as it was sent (see `request.rs` for where Anthropic-only
//! content travels in the canonical form).

use serde_json::{json, Map, Value};

use super::request::{Invalid, CACHE_CONTROL, EXTENSION, IS_ERROR, SERVER_TOOLS, THINKING_BLOCKS};
use super::{
    CacheControl, ContentBlock, ImageSource, MessageContent, MessagesRequest, Role, System, Tool,
    ToolChoice,
};
use crate::chat::{self, part_text, ChatRequest, Content, Message, Stop, StreamOptions};

impl MessagesRequest {
    /// Anthropic request (an Anthropic client's) -> canonical request. Streams always ask for
    /// the usage chunk: Anthropic's `message_delta` carries the usage.
    pub fn into_chat(self) -> Result<ChatRequest, Invalid> {
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        if let Some(system) = self.system {
            messages.push(system_message(system)?);
        }
        for (i, m) in self.messages.into_iter().enumerate() {
            match m.role {
                Role::User => user_turn(i, m.content, &mut messages)?,
                Role::Assistant => messages.push(assistant_turn(i, m.content)?),
            }
        }
        // Every field without an OpenAI equivalent goes into the extension.
        let mut ext = self.extra;
        if let Some(k) = self.top_k {
            ext.insert("top_k".into(), k.into());
        }
        let mut tools = Vec::new();
        for (i, t) in self.tools.into_iter().flatten().enumerate() {
            let kind = t.extra.get("type").and_then(Value::as_str);
            if kind.is_some_and(|k| k != "custom") {
                let server = ext.entry(SERVER_TOOLS).or_insert_with(|| json!([]));
                if let Value::Array(list) = server {
                    list.push(serde_json::to_value(t).unwrap_or_default());
                }
                continue;
            }
            if !t.input_schema.is_object() {
                return Err(Invalid::at(
                    format!("tools.{i}.input_schema"),
                    "Field required (a JSON Schema object)",
                ));
            }
            tools.push(openai_tool(t));
        }
        let mut extra = Map::new();
        let tool_choice = self.tool_choice.map(|c| {
            let (choice, no_parallel) = openai_tool_choice(c);
            if no_parallel {
                extra.insert("parallel_tool_calls".into(), false.into());
            }
            choice
        });
        if !ext.is_empty() {
            extra.insert(EXTENSION.into(), Value::Object(ext));
        }
        Ok(ChatRequest {
            model: self.model,
            messages,
            stream: self.stream,
            stream_options: self.stream.then(|| StreamOptions {
                include_usage: true,
                extra: Map::new(),
            }),
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: Some(self.max_tokens),
            max_completion_tokens: None,
            stop: self
                .stop_sequences
                .filter(|s| !s.is_empty())
                .map(Stop::Many),
            seed: None,
            n: None,
            tools: (!tools.is_empty()).then_some(tools),
            tool_choice,
            response_format: None,
            user: self.metadata.and_then(|m| m.user_id),
            metadata: None,
            extra,
            from_anthropic: true,
        })
    }
}

fn system_message(system: System) -> Result<Message, Invalid> {
    Ok(match system {
        System::Text(s) => Message::new(chat::Role::System, s),
        System::Blocks(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.into_iter().enumerate() {
                match b {
                    ContentBlock::Text {
                        text,
                        cache_control,
                        ..
                    } => parts.push(text_part(text, cache_control)),
                    _ => {
                        return Err(Invalid::at(
                            format!("system.{j}"),
                            "system blocks must be text blocks",
                        ))
                    }
                }
            }
            message(chat::Role::System, parts)
        }
    })
}

fn text_part(text: String, cc: Option<CacheControl>) -> Value {
    let mut part = json!({"type": "text", "text": text});
    if let Some(cc) = cc {
        part[CACHE_CONTROL] = serde_json::to_value(cc).unwrap_or_default();
    }
    part
}

/// A message of content parts: plain text when it is one unmarked text part (as OpenAI clients
/// send it, so both APIs share cache entries).
fn message(role: chat::Role, mut parts: Vec<Value>) -> Message {
    let plain =
        parts.len() == 1 && parts[0].get(CACHE_CONTROL).is_none() && part_text(&parts[0]).is_some();
    let content = if plain {
        match parts.pop().map(|mut p| p["text"].take()) {
            Some(Value::String(s)) => Content::Text(s),
            _ => Content::Text(String::new()),
        }
    } else {
        Content::Parts(parts)
    };
    Message {
        role,
        content: Some(content),
        name: None,
        tool_calls: None,
        tool_call_id: None,
        extra: Map::new(),
    }
}

/// A user turn: its tool results become tool messages (OpenAI's form, which must follow the
/// assistant's tool calls), the rest one user message after them.
fn user_turn(i: usize, content: MessageContent, out: &mut Vec<Message>) -> Result<(), Invalid> {
    let blocks = match content {
        MessageContent::Text(s) => {
            out.push(Message::new(chat::Role::User, s));
            return Ok(());
        }
        MessageContent::Blocks(b) => b,
    };
    let mut parts = Vec::new();
    for (j, b) in blocks.into_iter().enumerate() {
        let at = || format!("messages.{i}.content.{j}");
        match b {
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
                cache_control,
            } => {
                let mut text = String::new();
                match content {
                    None => {}
                    Some(MessageContent::Text(s)) => text = s,
                    Some(MessageContent::Blocks(inner)) => {
                        for (k, b) in inner.into_iter().enumerate() {
                            match b {
                                ContentBlock::Text { text: t, .. } => {
                                    if !text.is_empty() {
                                        text.push('\n');
                                    }
                                    text.push_str(&t);
                                }
                                // A tool message holds text only: images follow in the user
                                // message after the results.
                                other => parts
                                    .push(block_part(other, || format!("{}.content.{k}", at()))?),
                            }
                        }
                    }
                }
                let mut m = Message::new(chat::Role::Tool, text);
                m.tool_call_id = Some(tool_use_id);
                if is_error == Some(true) {
                    m.extra.insert(IS_ERROR.into(), true.into());
                }
                if let Some(cc) = cache_control {
                    m.extra.insert(
                        CACHE_CONTROL.into(),
                        serde_json::to_value(cc).unwrap_or_default(),
                    );
                }
                out.push(m);
            }
            other => parts.push(block_part(other, at)?),
        }
    }
    if !parts.is_empty() {
        out.push(message(chat::Role::User, parts));
    }
    Ok(())
}

/// A user content block as an OpenAI content part.
fn block_part(b: ContentBlock, at: impl Fn() -> String) -> Result<Value, Invalid> {
    let with_cc = |mut part: Value, cc: Option<CacheControl>| {
        if let Some(cc) = cc {
            part[CACHE_CONTROL] = serde_json::to_value(cc).unwrap_or_default();
        }
        part
    };
    match b {
        ContentBlock::Text {
            text,
            cache_control,
            ..
        } => Ok(text_part(text, cache_control)),
        ContentBlock::Image {
            source,
            cache_control,
        } => {
            let url = match source {
                ImageSource::Base64 { media_type, data } => {
                    format!("data:{media_type};base64,{data}")
                }
                ImageSource::Url { url } => url,
                ImageSource::File { .. } => {
                    return Err(Invalid::at(
                        at() + ".source",
                        "image source type `file` (the Files API) is not supported by this \
                         gateway: send the image as `base64` or `url`",
                    ))
                }
            };
            Ok(with_cc(
                json!({"type": "image_url", "image_url": {"url": url}}),
                cache_control,
            ))
        }
        ContentBlock::Document {
            source,
            title,
            cache_control,
        } => {
            let kind = source.get("type").and_then(Value::as_str);
            let part = match kind {
                Some("base64") => {
                    let media_type = source["media_type"].as_str().unwrap_or("application/pdf");
                    let data = source["data"].as_str().unwrap_or_default();
                    json!({"type": "file", "file": {
                        "file_data": format!("data:{media_type};base64,{data}"),
                        "filename": title.as_deref().unwrap_or("document.pdf"),
                    }})
                }
                Some("text") => json!({"type": "text",
                    "text": source["data"].as_str().unwrap_or_default()}),
                _ => {
                    return Err(Invalid::at(
                        at() + ".source",
                        format!(
                            "document source type `{}` is not supported by this gateway: send \
                             the document as `base64` or `text`",
                            kind.unwrap_or("?")
                        ),
                    ))
                }
            };
            Ok(with_cc(part, cache_control))
        }
        ContentBlock::ToolUse { .. } | ContentBlock::Thinking { .. } => Err(Invalid::at(
            at(),
            "this block type is only allowed in assistant messages",
        )),
        ContentBlock::ToolResult { .. } => Err(Invalid::at(at(), "nested tool_result")),
        ContentBlock::RedactedThinking { .. } | ContentBlock::Unknown => Err(Invalid::at(
            at(),
            "this content block type is not supported by this gateway",
        )),
    }
}

/// An assistant turn: its text, its tool uses as tool calls, its thinking blocks kept.
fn assistant_turn(i: usize, content: MessageContent) -> Result<Message, Invalid> {
    let blocks = match content {
        MessageContent::Text(s) => return Ok(Message::new(chat::Role::Assistant, s)),
        MessageContent::Blocks(b) => b,
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    let mut thinking = Vec::new();
    for (j, b) in blocks.into_iter().enumerate() {
        match b {
            ContentBlock::Text {
                text,
                cache_control,
                ..
            } => parts.push(text_part(text, cache_control)),
            ContentBlock::ToolUse {
                id, name, input, ..
            } => calls.push(json!({
                "id": id, "type": "function",
                "function": {"name": name, "arguments": input.to_string()}
            })),
            b @ (ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. }) => {
                thinking.push(serde_json::to_value(b).unwrap_or_default())
            }
            _ => {
                return Err(Invalid::at(
                    format!("messages.{i}.content.{j}"),
                    "assistant messages hold text, tool_use and thinking blocks only",
                ))
            }
        }
    }
    let mut m = if parts.is_empty() {
        let mut m = Message::new(chat::Role::Assistant, "");
        m.content = None;
        m
    } else {
        message(chat::Role::Assistant, parts)
    };
    if !calls.is_empty() {
        m.tool_calls = Some(calls);
    }
    if !thinking.is_empty() {
        m.extra
            .insert(THINKING_BLOCKS.into(), Value::Array(thinking));
    }
    Ok(m)
}

fn openai_tool(t: Tool) -> Value {
    let mut f = Map::new();
    f.insert("name".into(), t.name.into());
    if let Some(d) = t.description {
        f.insert("description".into(), d.into());
    }
    f.insert("parameters".into(), t.input_schema);
    let mut tool = json!({"type": "function", "function": f});
    if let Some(cc) = t.cache_control {
        tool[CACHE_CONTROL] = serde_json::to_value(cc).unwrap_or_default();
    }
    tool
}

/// Anthropic's tool choice in OpenAI's form, and whether parallel tool use is off.
fn openai_tool_choice(c: ToolChoice) -> (Value, bool) {
    match c {
        ToolChoice::Auto {
            disable_parallel_tool_use,
        } => (json!("auto"), disable_parallel_tool_use == Some(true)),
        ToolChoice::Any {
            disable_parallel_tool_use,
        } => (json!("required"), disable_parallel_tool_use == Some(true)),
        ToolChoice::Tool {
            name,
            disable_parallel_tool_use,
        } => (
            json!({"type": "function", "function": {"name": name}}),
            disable_parallel_tool_use == Some(true),
        ),
        ToolChoice::None => (json!("none"), false),
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
    fn anthropic_request_round_trips_through_the_canonical_form() {
        let original = json!({
            "model": "claude-x", "max_tokens": 300, "stream": true,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "What is the weather in Oslo?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Need the tool.", "signature": "sig1"},
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "wx", "input": {"city": "Oslo"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "timeout", "is_error": true},
                    {"type": "text", "text": "Try again?", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
                ]}
            ],
            "tools": [
                {"name": "wx", "description": "weather", "input_schema": {"type": "object"},
                 "cache_control": {"type": "ephemeral"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
            ],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "stop_sequences": ["END"], "temperature": 0.3, "top_k": 5,
            "metadata": {"user_id": "u1"},
            "thinking": {"type": "enabled", "budget_tokens": 1024}
        });
        let chat = inbound(original.clone());
        assert_eq!(chat.messages[0].role, chat::Role::System);
        assert_eq!(chat.messages[3].role, chat::Role::Tool);
        assert_eq!(chat.messages[3].tool_call_id.as_deref(), Some("toolu_1"));
        assert_eq!(chat.user.as_deref(), Some("u1"));
        assert_eq!(chat.extra["parallel_tool_calls"], false);
        assert_eq!(chat.tool_choice, Some(json!("auto")));
        assert!(chat.include_usage());
        assert_eq!(chat.tools.as_ref().unwrap().len(), 1);
        assert_eq!(chat.extra[EXTENSION]["top_k"], 5);
        assert_eq!(chat.extra[EXTENSION]["thinking"]["budget_tokens"], 1024);
        // And back: the Anthropic upstream gets what the client sent (tools in the same order
        // up to the server tool, which goes last).
        let back = MessagesRequest::from_chat(&chat, "claude-x", true);
        let mut want: MessagesRequest = serde_json::from_value(original).unwrap();
        // A string is shorthand for one text block.
        want.messages[0].content =
            MessageContent::Blocks(vec![ContentBlock::text("What is the weather in Oslo?")]);
        want.tool_choice = Some(ToolChoice::Auto {
            disable_parallel_tool_use: Some(true),
        });
        assert_eq!(back, want);
    }

    #[test]
    fn unsupported_blocks_name_their_place() {
        let req: MessagesRequest = serde_json::from_value(json!({
            "model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "source": {"type": "file", "file_id": "f1"}}
            ]}]
        }))
        .unwrap();
        let e = req.into_chat().unwrap_err();
        assert_eq!(e.param, "messages.0.content.1.source");
        let req: MessagesRequest = serde_json::from_value(json!({
            "model": "m", "max_tokens": 5,
            "messages": [{"role": "user", "content": [{"type": "search_result_v9", "x": 1}]}]
        }))
        .unwrap();
        assert_eq!(req.into_chat().unwrap_err().param, "messages.0.content.0");
    }

    #[test]
    fn a_plain_text_block_is_plain_content_and_documents_become_files() {
        let chat = inbound(json!({
            "model": "m", "max_tokens": 5,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hello"}]},
                {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": [
                    {"type": "document", "title": "a.pdf",
                     "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
                    {"type": "text", "text": "Summarize."}
                ]}
            ]
        }));
        assert_eq!(
            chat.messages[0].content,
            Some(Content::Text("hello".into()))
        );
        let Some(Content::Parts(parts)) = &chat.messages[2].content else {
            panic!()
        };
        assert_eq!(
            parts[0]["file"]["file_data"],
            "data:application/pdf;base64,JVBE"
        );
        let back = MessagesRequest::from_chat(&chat, "m", false);
        let MessageContent::Blocks(b) = &back.messages[2].content else {
            panic!()
        };
        assert!(
            matches!(&b[0], ContentBlock::Document { source, title: Some(t), .. }
            if source["data"] == "JVBE" && t == "a.pdf")
        );
    }
}
