//! Anthropic Messages adapter: `POST {base_url}/v1/messages`, with full translation between
//! OpenAI's chat format and Anthropic's (system prompt, roles, tool calls and results, images,
//! stop reasons, usage, and the streaming events `message_start` .. `message_stop`).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

use super::sse::{chunk_stream, Decode, SseEvent, Step};
use super::{sensitive, CallOptions, ChunkStream, ProviderError, Upstream};
use crate::chat::{
    self, ChatChunk, ChatRequest, ChatResponse, Choice, ChunkChoice, Content, Delta, Message, Role,
};
use crate::config::Secret;
use crate::wire::anthropic as wire;

/// Anthropic requires `max_tokens`; OpenAI does not. Used when the client sets none.
const DEFAULT_MAX_TOKENS: u32 = 4096;

pub struct Anthropic {
    up: Upstream,
    headers: HeaderMap,
    url: reqwest::Url,
}

impl Anthropic {
    pub(super) fn new(up: Upstream, key: Option<&Secret>, version: &str) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        if let Some(key) = key {
            headers.insert(HeaderName::from_static("x-api-key"), sensitive(key)?);
        }
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_str(version).map_err(|e| e.to_string())?,
        );
        Ok(Anthropic {
            url: up.endpoint("/v1/messages")?,
            up,
            headers,
        })
    }

    pub(super) async fn complete(
        &self,
        req: &ChatRequest,
        opts: CallOptions<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        let out = to_anthropic(req, opts.model, false);
        let sent = self.up.send(&self.url, &self.headers, &out, &opts).await?;
        let msg: wire::MessagesResponse = serde_json::from_slice(&sent.body().await?)
            .map_err(|e| ProviderError::Protocol(format!("message: {e}")))?;
        Ok(from_anthropic(msg))
    }

    pub(super) async fn stream(
        &self,
        req: &ChatRequest,
        opts: CallOptions<'_>,
    ) -> Result<ChunkStream, ProviderError> {
        let out = to_anthropic(req, opts.model, true);
        let sent = self.up.send(&self.url, &self.headers, &out, &opts).await?;
        Ok(chunk_stream(
            sent.resp,
            "message_stop",
            opts.framing.clone(),
            StreamState::default(),
        ))
    }
}

/// OpenAI request -> Anthropic request.
pub(crate) fn to_anthropic(req: &ChatRequest, model: &str, stream: bool) -> wire::MessagesRequest {
    let mut system = String::new();
    let mut messages: Vec<wire::InputMessage> = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        let (role, blocks) = match m.role {
            Role::System | Role::Developer => {
                if !system.is_empty() {
                    system.push_str("\n\n");
                }
                system.push_str(&m.text());
                continue;
            }
            Role::User => (wire::Role::User, content_blocks(m.content.as_ref())),
            Role::Assistant => {
                let mut blocks = content_blocks(m.content.as_ref());
                for call in m.tool_calls.iter().flatten() {
                    let f = &call["function"];
                    let args = f["arguments"].as_str().unwrap_or("{}");
                    let input = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
                    blocks.push(wire::ContentBlock::tool_use(
                        call["id"].as_str().unwrap_or_default(),
                        f["name"].as_str().unwrap_or_default(),
                        input,
                    ));
                }
                (wire::Role::Assistant, blocks)
            }
            Role::Tool | Role::Function => (
                wire::Role::User,
                vec![wire::ContentBlock::ToolResult {
                    tool_use_id: m
                        .tool_call_id
                        .clone()
                        .or_else(|| m.name.clone())
                        .unwrap_or_default(),
                    content: Some(wire::MessageContent::Text(m.text())),
                    is_error: None,
                    cache_control: None,
                }],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        // Anthropic wants alternating roles: merge consecutive turns of the same role.
        match messages.last_mut() {
            Some(last) if last.role == role => {
                if let wire::MessageContent::Blocks(b) = &mut last.content {
                    b.extend(blocks);
                }
            }
            _ => messages.push(wire::InputMessage {
                role,
                content: wire::MessageContent::Blocks(blocks),
            }),
        }
    }
    let tools = req.tools.as_ref().map(|tools| {
        tools
            .iter()
            .filter_map(|t| {
                let f = t.get("function")?;
                Some(wire::Tool {
                    name: f.get("name")?.as_str()?.to_owned(),
                    description: f
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    input_schema: f
                        .get("parameters")
                        .cloned()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                    cache_control: None,
                    extra: Map::new(),
                })
            })
            .collect()
    });
    let tool_choice = req.tool_choice.as_ref().and_then(|c| match c {
        Value::String(s) if s == "auto" => Some(wire::ToolChoice::Auto {
            disable_parallel_tool_use: None,
        }),
        Value::String(s) if s == "required" => Some(wire::ToolChoice::Any {
            disable_parallel_tool_use: None,
        }),
        Value::String(s) if s == "none" => Some(wire::ToolChoice::None),
        Value::Object(_) => c["function"]["name"]
            .as_str()
            .map(|n| wire::ToolChoice::Tool {
                name: n.to_owned(),
                disable_parallel_tool_use: None,
            }),
        _ => None,
    });
    wire::MessagesRequest {
        model: model.to_owned(),
        messages,
        max_tokens: req.max_output_tokens().unwrap_or(DEFAULT_MAX_TOKENS),
        system: (!system.is_empty()).then_some(wire::System::Text(system)),
        // OpenAI's range is 0..2, Anthropic's 0..1.
        temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: req.top_p,
        top_k: None,
        stop_sequences: req.stop.as_ref().map(chat::Stop::to_vec),
        stream,
        tools,
        tool_choice,
        metadata: req.user.as_ref().map(|u| wire::Metadata {
            user_id: Some(u.clone()),
        }),
        extra: Map::new(),
    }
}

fn content_blocks(content: Option<&Content>) -> Vec<wire::ContentBlock> {
    match content {
        None => Vec::new(),
        Some(Content::Text(s)) if s.is_empty() => Vec::new(),
        Some(Content::Text(s)) => vec![wire::ContentBlock::text(s.clone())],
        Some(Content::Parts(parts)) => parts.iter().filter_map(part_block).collect(),
    }
}

fn part_block(part: &Value) -> Option<wire::ContentBlock> {
    match part.get("type")?.as_str()? {
        "text" => Some(wire::ContentBlock::text(part.get("text")?.as_str()?)),
        "image_url" => {
            let url = part.get("image_url")?.get("url")?.as_str()?;
            let source = match url
                .strip_prefix("data:")
                .and_then(|r| r.split_once(";base64,"))
            {
                Some((media_type, data)) => wire::ImageSource::Base64 {
                    media_type: media_type.to_owned(),
                    data: data.to_owned(),
                },
                None => wire::ImageSource::Url {
                    url: url.to_owned(),
                },
            };
            Some(wire::ContentBlock::Image {
                source,
                cache_control: None,
            })
        }
        _ => None,
    }
}

/// Anthropic response -> OpenAI `chat.completion`.
pub(crate) fn from_anthropic(msg: wire::MessagesResponse) -> ChatResponse {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in &msg.content {
        match block {
            wire::ContentBlock::Text { text: t, .. } => text.push_str(t),
            wire::ContentBlock::ToolUse {
                id, name, input, ..
            } => tool_calls.push(json!({
                "id": id, "type": "function",
                "function": {"name": name, "arguments": input.to_string()}
            })),
            _ => {}
        }
    }
    let finish = msg.stop_reason.map(|r| r.to_finish_reason().to_owned());
    let mut message = Message::new(Role::Assistant, text);
    if !tool_calls.is_empty() {
        message.tool_calls = Some(tool_calls);
    }
    ChatResponse {
        id: msg.id,
        object: "chat.completion".to_owned(),
        created: chat::unix_now(),
        model: msg.model,
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: finish,
            logprobs: None,
            extra: Map::new(),
        }],
        // Prompt tokens include the cache reads and writes, as OpenAI's do.
        usage: Some(msg.usage.into_openai()),
        extra: Map::new(),
    }
}

/// Most tool calls one streamed message may carry.
const MAX_TOOL_BLOCKS: usize = 128;

/// Streaming translation state: ids and usage arrive in `message_start`, tool-call indices are
/// counted per `tool_use` block.
#[derive(Default)]
pub(crate) struct StreamState {
    id: String,
    model: String,
    created: u64,
    usage: wire::Usage,
    finish: Option<&'static str>,
    /// content block index -> OpenAI tool_calls index
    tool_blocks: Vec<(u32, usize)>,
}

impl Decode for StreamState {
    fn event(&mut self, ev: SseEvent) -> Step {
        match serde_json::from_str::<wire::StreamEvent>(&ev.data) {
            Ok(event) => self.translate(event),
            Err(e) => Step::Malformed(format!("bad event: {e}")),
        }
    }

    /// After `message_delta` the answer is whole: its stop reason and output tokens came with
    /// it, and the input tokens with `message_start`.
    fn complete(&mut self) -> Option<Option<ChatChunk>> {
        self.finish?;
        Some(Some(self.usage_chunk()))
    }
}

impl StreamState {
    /// The last chunk: no choices, the usage (in OpenAI's shape).
    fn usage_chunk(&mut self) -> ChatChunk {
        let mut last = self.chunk(Delta::default(), None);
        last.choices.clear();
        last.usage = Some(std::mem::take(&mut self.usage).into_openai());
        last
    }

    fn chunk(&self, delta: Delta, finish: Option<&str>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(str::to_owned),
                logprobs: None,
                extra: Map::new(),
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    fn translate(&mut self, ev: wire::StreamEvent) -> Step {
        use wire::StreamEvent as E;
        match ev {
            E::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.created = chat::unix_now();
                self.usage = message.usage;
                Step::Chunk(self.chunk(
                    Delta {
                        role: Some(Role::Assistant),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    None,
                ))
            }
            E::ContentBlockStart {
                index,
                content_block: wire::ContentBlock::ToolUse { id, name, .. },
            } => {
                let n = self.tool_blocks.len();
                // Upstream data: the block list is searched for every delta, so it is bounded.
                if n >= MAX_TOOL_BLOCKS {
                    return Step::Fail(ProviderError::Protocol(format!(
                        "more than {MAX_TOOL_BLOCKS} tool_use blocks in one message"
                    )));
                }
                self.tool_blocks.push((index, n));
                Step::Chunk(self.chunk(
                    Delta {
                        tool_calls: Some(vec![json!({
                            "index": n, "id": id, "type": "function",
                            "function": {"name": name, "arguments": ""}
                        })]),
                        ..Delta::default()
                    },
                    None,
                ))
            }
            E::ContentBlockDelta { index, delta } => match delta {
                wire::BlockDelta::TextDelta { text } => Step::Chunk(self.chunk(
                    Delta {
                        content: Some(text),
                        ..Delta::default()
                    },
                    None,
                )),
                wire::BlockDelta::InputJsonDelta { partial_json } => {
                    let n = self
                        .tool_blocks
                        .iter()
                        .find(|(b, _)| *b == index)
                        .map_or(0, |(_, n)| *n);
                    Step::Chunk(self.chunk(
                        Delta {
                            tool_calls: Some(vec![json!({
                                "index": n, "function": {"arguments": partial_json}
                            })]),
                            ..Delta::default()
                        },
                        None,
                    ))
                }
                _ => Step::Skip,
            },
            E::MessageDelta { delta, usage } => {
                self.usage.update(usage);
                let finish = delta.stop_reason.map_or("stop", |r| r.to_finish_reason());
                self.finish = Some(finish);
                Step::Chunk(self.chunk(Delta::default(), Some(finish)))
            }
            E::MessageStop => {
                if self.finish.is_none() {
                    return Step::Fail(ProviderError::Protocol(
                        "message_stop before message_delta".into(),
                    ));
                }
                Step::End(Some(self.usage_chunk()))
            }
            E::Error { error } => Step::Fail(ProviderError::Status {
                status: if error.kind == "overloaded_error" {
                    529
                } else {
                    502
                },
                retry_after: None,
                kind: error.kind,
                code: None,
                message: error.message,
            }),
            E::ContentBlockStart { .. } | E::ContentBlockStop { .. } | E::Ping | E::Unknown => {
                Step::Skip
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_system_tools_and_tool_results() {
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
        let a = to_anthropic(&req, "claude-3-haiku", false);
        assert_eq!(a.system, Some(wire::System::Text("Be brief.".into())));
        assert_eq!(a.max_tokens, 50);
        assert_eq!(a.temperature, Some(1.0));
        assert_eq!(a.stop_sequences, Some(vec!["END".to_owned()]));
        assert!(matches!(a.tool_choice, Some(wire::ToolChoice::Any { .. })));
        assert_eq!(a.messages.len(), 3, "tool result and next user turn merge");
        let wire::MessageContent::Blocks(b) = &a.messages[1].content else {
            panic!()
        };
        assert!(
            matches!(&b[0], wire::ContentBlock::ToolUse { input, .. } if input["city"] == "Oslo")
        );
        let wire::MessageContent::Blocks(b) = &a.messages[2].content else {
            panic!()
        };
        assert_eq!(b.len(), 3);
        assert!(matches!(
            &b[2],
            wire::ContentBlock::Image {
                source: wire::ImageSource::Base64 { .. },
                ..
            }
        ));
    }

    #[test]
    fn translates_response_stop_reasons_and_usage() {
        let msg: wire::MessagesResponse = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-haiku",
            "content": [{"type": "text", "text": "Hi"},
                        {"type": "tool_use", "id": "tu_1", "name": "wx", "input": {"a": 1}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2}
        }))
        .unwrap();
        let r = from_anthropic(msg);
        assert_eq!(r.choices[0].finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(r.choices[0].message.text(), "Hi");
        assert_eq!(
            r.choices[0].message.tool_calls.as_ref().unwrap()[0]["function"]["arguments"],
            "{\"a\":1}"
        );
        let u = r.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (12, 5));
        assert_eq!(u.tokens().cache_read, 2);
    }
}
