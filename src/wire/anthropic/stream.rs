//! Streams in both directions: [`ChunkDecoder`] turns an Anthropic upstream's events into
//! canonical chunks; [`EventEncoder`] turns the pipeline's chunks (of any upstream, or a cache
//! replay) into Anthropic's events for an Anthropic client:
//!
//! ```text
//! message_start, ping,
//! (content_block_start, content_block_delta*, content_block_stop)*   thinking, text, tool_use
//! message_delta (stop reason, usage), message_stop                   or one `error` event
//! ```

use serde_json::{json, Map, Value};

use super::request::{REASONING_CONTENT, THINKING_BLOCKS};
use super::response::{native_finish, stop_reason_of};
use super::{
    message_id, BlockDelta, ContentBlock, DeltaUsage, ErrorDetail, MessageDelta, MessagesResponse,
    Role, StopReason, StreamEvent, Usage,
};
use crate::chat::{self, ChatChunk, ChunkChoice, Delta};

// ---------------------------------------------------------------------------------------------
// Anthropic events -> canonical chunks (the Anthropic adapter)

/// What one upstream event becomes.
#[derive(Debug)]
pub enum Decoded {
    Chunk(ChatChunk),
    /// Nothing for the client (pings, block boundaries, events one may ignore).
    Skip,
    /// `message_stop`, with the last chunk (the usage).
    End(ChatChunk),
    /// An `error` event: Anthropic's error type and message.
    Error(ErrorDetail),
    /// Not the protocol.
    Malformed(String),
}

/// Most tool calls one streamed message may carry (upstream data: the block list is searched
/// for every delta, so it is bounded).
const MAX_TOOL_BLOCKS: usize = 128;

/// Streaming translation state: ids and usage arrive in `message_start`, tool-call indices are
/// counted per `tool_use` block.
#[derive(Default)]
pub struct ChunkDecoder {
    id: String,
    model: String,
    created: u64,
    usage: Usage,
    finish: Option<&'static str>,
    /// content block index -> OpenAI tool_calls index
    tool_blocks: Vec<(u32, usize)>,
}

impl ChunkDecoder {
    /// One event's JSON.
    pub fn event(&mut self, data: &str) -> Decoded {
        match serde_json::from_str::<StreamEvent>(data) {
            Ok(event) => self.translate(event),
            Err(e) => Decoded::Malformed(format!("bad event: {e}")),
        }
    }

    /// After `message_delta` the answer is whole (its stop reason and output tokens came with
    /// it, the input tokens with `message_start`): the last chunk, else `None`.
    pub fn finished(&mut self) -> Option<ChatChunk> {
        self.finish?;
        Some(self.usage_chunk())
    }

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

    fn delta_extra(&self, key: &str, value: Value) -> Decoded {
        let mut delta = Delta::default();
        delta.extra.insert(key.into(), value);
        Decoded::Chunk(self.chunk(delta, None))
    }

    fn translate(&mut self, ev: StreamEvent) -> Decoded {
        use StreamEvent as E;
        match ev {
            E::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.created = chat::unix_now();
                self.usage = message.usage;
                Decoded::Chunk(self.chunk(
                    Delta {
                        role: Some(chat::Role::Assistant),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    None,
                ))
            }
            E::ContentBlockStart {
                index,
                content_block: ContentBlock::ToolUse { id, name, .. },
            } => {
                let n = self.tool_blocks.len();
                if n >= MAX_TOOL_BLOCKS {
                    return Decoded::Malformed(format!(
                        "more than {MAX_TOOL_BLOCKS} tool_use blocks in one message"
                    ));
                }
                self.tool_blocks.push((index, n));
                Decoded::Chunk(self.chunk(
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
            E::ContentBlockStart {
                content_block: b @ ContentBlock::RedactedThinking { .. },
                ..
            } => self.delta_extra(
                THINKING_BLOCKS,
                json!([serde_json::to_value(b).unwrap_or_default()]),
            ),
            E::ContentBlockDelta { index, delta } => match delta {
                BlockDelta::TextDelta { text } => Decoded::Chunk(self.chunk(
                    Delta {
                        content: Some(text),
                        ..Delta::default()
                    },
                    None,
                )),
                BlockDelta::InputJsonDelta { partial_json } => {
                    let n = self
                        .tool_blocks
                        .iter()
                        .find(|(b, _)| *b == index)
                        .map_or(0, |(_, n)| *n);
                    Decoded::Chunk(self.chunk(
                        Delta {
                            tool_calls: Some(vec![json!({
                                "index": n, "function": {"arguments": partial_json}
                            })]),
                            ..Delta::default()
                        },
                        None,
                    ))
                }
                BlockDelta::ThinkingDelta { thinking } => {
                    self.delta_extra(REASONING_CONTENT, thinking.into())
                }
                // The signature closes a thinking block: its text came as reasoning deltas.
                BlockDelta::SignatureDelta { signature } => self.delta_extra(
                    THINKING_BLOCKS,
                    json!([{"type": "thinking", "thinking": "", "signature": signature}]),
                ),
                BlockDelta::CitationsDelta { .. } | BlockDelta::Unknown => Decoded::Skip,
            },
            E::MessageDelta { delta, usage } => {
                self.usage.update(usage);
                let finish = delta.stop_reason.map_or("stop", |r| r.to_finish_reason());
                self.finish = Some(finish);
                let mut c = self.chunk(Delta::default(), Some(finish));
                c.choices[0].extra = native_finish(delta.stop_reason, delta.stop_sequence);
                Decoded::Chunk(c)
            }
            E::MessageStop => {
                if self.finish.is_none() {
                    return Decoded::Malformed("message_stop before message_delta".into());
                }
                Decoded::End(self.usage_chunk())
            }
            E::Error { error } => Decoded::Error(error),
            E::ContentBlockStart { .. } | E::ContentBlockStop { .. } | E::Ping | E::Unknown => {
                Decoded::Skip
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// canonical chunks -> Anthropic events (the gateway's `/v1/messages`)

/// The content block being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by its OpenAI index.
    Tool(u64),
}

/// Turns the first choice's chunks into Anthropic's events, block by block. Feed it every chunk
/// ([`Self::chunk`]), then [`Self::finish`] at the end of a complete answer; or
/// [`Self::error`] when the stream fails.
#[derive(Debug)]
pub struct EventEncoder {
    started: bool,
    /// The prompt's estimated size, for `message_start` (the usage comes at the end).
    input_estimate: u32,
    open: Option<(Open, u32)>,
    next_block: u32,
    /// OpenAI tool-call index -> content block index.
    tools: Vec<(u64, u32)>,
    stop: Option<(StopReason, Option<String>)>,
    usage: Option<chat::Usage>,
    output_chars: usize,
}

impl EventEncoder {
    pub fn new(input_estimate: u32) -> Self {
        EventEncoder {
            started: false,
            input_estimate,
            open: None,
            next_block: 0,
            tools: Vec::new(),
            stop: None,
            usage: None,
            output_chars: 0,
        }
    }

    /// The events of one chunk, appended to `out` (its text moves into them).
    pub fn chunk(&mut self, mut c: ChatChunk, out: &mut Vec<StreamEvent>) {
        self.start(&c.id, &c.model, out);
        if let Some(u) = c.usage.take() {
            self.usage = Some(u);
        }
        let Some(at) = c.choices.iter().position(|ch| ch.index == 0) else {
            return;
        };
        let choice = c.choices.swap_remove(at);
        let mut d = choice.delta;
        if let Some(Value::String(t)) = d.extra.remove(REASONING_CONTENT) {
            if !t.is_empty() {
                self.output_chars += t.len();
                let index = self.block(Open::Thinking, out);
                out.push(StreamEvent::ContentBlockDelta {
                    index,
                    delta: BlockDelta::ThinkingDelta { thinking: t },
                });
            }
        }
        if let Some(Value::Array(blocks)) = d.extra.remove(THINKING_BLOCKS) {
            self.thinking_blocks(blocks, out);
        }
        if let Some(t) = d.content.take().filter(|t| !t.is_empty()) {
            self.output_chars += t.len();
            let index = self.block(Open::Text, out);
            out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::TextDelta { text: t },
            });
        }
        for call in d.tool_calls.take().into_iter().flatten() {
            self.tool_call(call, out);
        }
        if choice.finish_reason.is_some() {
            self.stop = stop_reason_of(choice.finish_reason.as_deref(), &choice.extra);
            self.close(out);
        }
    }

    /// The end of a complete answer: the open block closed, `message_delta` with the stop
    /// reason and the whole usage, `message_stop`.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        self.start("", "", out);
        self.close(out);
        let usage = match &self.usage {
            Some(u) => Usage::from_openai(u),
            // The upstream sent none: estimated, as the audit records it.
            None => Usage {
                input_tokens: self.input_estimate,
                output_tokens: chat::estimate_tokens_from_chars(self.output_chars),
                ..Usage::default()
            },
        };
        let (stop_reason, stop_sequence) = self.stop.take().unwrap_or((StopReason::EndTurn, None));
        out.push(StreamEvent::MessageDelta {
            delta: MessageDelta {
                stop_reason: Some(stop_reason),
                stop_sequence,
            },
            usage: DeltaUsage {
                output_tokens: usage.output_tokens,
                input_tokens: Some(usage.input_tokens),
                cache_creation_input_tokens: usage.cache_creation_input_tokens,
                cache_read_input_tokens: usage.cache_read_input_tokens,
                extra: usage.extra,
            },
        });
        out.push(StreamEvent::MessageStop);
    }

    /// The stream failed: one `error` event (Anthropic's SDKs raise it), no `message_stop`.
    pub fn error(kind: &str, message: String) -> StreamEvent {
        StreamEvent::Error {
            error: ErrorDetail {
                kind: kind.to_owned(),
                message,
            },
        }
    }

    fn start(&mut self, id: &str, model: &str, out: &mut Vec<StreamEvent>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = if id.is_empty() {
            chat::new_completion_id()
        } else {
            id.to_owned()
        };
        out.push(StreamEvent::MessageStart {
            message: MessagesResponse {
                id: message_id(&id),
                kind: "message".to_owned(),
                role: Role::Assistant,
                content: Vec::new(),
                model: model.to_owned(),
                stop_reason: None,
                stop_sequence: None,
                usage: Usage {
                    input_tokens: self.input_estimate,
                    output_tokens: 1,
                    ..Usage::default()
                },
            },
        });
        out.push(StreamEvent::Ping);
    }

    /// The index of the open block of `kind`, opening it (and closing another) when needed.
    fn block(&mut self, kind: Open, out: &mut Vec<StreamEvent>) -> u32 {
        if let Some((open, index)) = self.open {
            if open == kind {
                return index;
            }
        }
        let block = match kind {
            Open::Text => ContentBlock::text(""),
            Open::Thinking => ContentBlock::Thinking {
                thinking: String::new(),
                signature: String::new(),
            },
            // Tool blocks are opened by `tool_call`, which knows the id and name.
            Open::Tool(_) => ContentBlock::tool_use("", "", json!({})),
        };
        self.open_block(kind, block, out)
    }

    fn open_block(&mut self, kind: Open, block: ContentBlock, out: &mut Vec<StreamEvent>) -> u32 {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        out.push(StreamEvent::ContentBlockStart {
            index,
            content_block: block,
        });
        self.open = Some((kind, index));
        index
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((_, index)) = self.open.take() {
            out.push(StreamEvent::ContentBlockStop { index });
        }
    }

    /// A signature closes the open thinking block; a redacted block is a block of its own.
    fn thinking_blocks(&mut self, blocks: Vec<Value>, out: &mut Vec<StreamEvent>) {
        for b in blocks {
            match serde_json::from_value::<ContentBlock>(b) {
                Ok(ContentBlock::Thinking { signature, .. }) if !signature.is_empty() => {
                    let index = self.block(Open::Thinking, out);
                    out.push(StreamEvent::ContentBlockDelta {
                        index,
                        delta: BlockDelta::SignatureDelta { signature },
                    });
                }
                Ok(b @ ContentBlock::RedactedThinking { .. }) => {
                    self.open_block(Open::Thinking, b, out);
                    self.close(out);
                }
                _ => {}
            }
        }
    }

    /// One tool-call delta: a new call opens a `tool_use` block, argument pieces become
    /// `input_json_delta`s of the call's block.
    fn tool_call(&mut self, mut call: Value, out: &mut Vec<StreamEvent>) {
        let n = call["index"].as_u64().unwrap_or(0);
        let known = self.tools.iter().find(|(i, _)| *i == n).map(|(_, b)| *b);
        let index = match known {
            Some(b) => b,
            None => {
                let block = ContentBlock::tool_use(
                    call["id"].as_str().unwrap_or_default(),
                    call["function"]["name"].as_str().unwrap_or_default(),
                    json!({}),
                );
                let b = self.open_block(Open::Tool(n), block, out);
                self.tools.push((n, b));
                b
            }
        };
        // Upstream data: read without indexing that could insert (or panic on a non-object).
        let args = call
            .get_mut("function")
            .and_then(|f| f.get_mut("arguments"))
            .map(Value::take);
        if let Some(Value::String(args)) = args {
            if args.is_empty() {
                return;
            }
            self.output_chars += args.len();
            // A piece of a call whose block was closed (arguments interleaved across calls)
            // still names its own block: the SDKs accumulate by index.
            out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::InputJsonDelta { partial_json: args },
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatResponse;

    fn encode(chunks: &[ChatChunk]) -> Vec<StreamEvent> {
        let mut enc = EventEncoder::new(7);
        let mut out = Vec::new();
        for c in chunks {
            enc.chunk(c.clone(), &mut out);
        }
        enc.finish(&mut out);
        out
    }

    /// What an Anthropic SDK does with the events: the message they add up to.
    fn accumulate(events: &[StreamEvent]) -> MessagesResponse {
        let mut msg = None;
        let mut json_parts: Vec<String> = Vec::new();
        for ev in events {
            match ev.clone() {
                StreamEvent::MessageStart { message } => msg = Some(message),
                StreamEvent::ContentBlockStart {
                    index,
                    content_block,
                } => {
                    let m = msg.as_mut().unwrap();
                    assert_eq!(index as usize, m.content.len(), "blocks in order");
                    m.content.push(content_block);
                    json_parts.push(String::new());
                }
                StreamEvent::ContentBlockDelta { index, delta } => {
                    let m = msg.as_mut().unwrap();
                    match (&mut m.content[index as usize], delta) {
                        (ContentBlock::Text { text, .. }, BlockDelta::TextDelta { text: t }) => {
                            text.push_str(&t)
                        }
                        (
                            ContentBlock::Thinking { thinking, .. },
                            BlockDelta::ThinkingDelta { thinking: t },
                        ) => thinking.push_str(&t),
                        (
                            ContentBlock::Thinking { signature, .. },
                            BlockDelta::SignatureDelta { signature: s },
                        ) => *signature = s,
                        (
                            ContentBlock::ToolUse { .. },
                            BlockDelta::InputJsonDelta { partial_json },
                        ) => json_parts[index as usize].push_str(&partial_json),
                        (b, d) => panic!("{d:?} on {b:?}"),
                    }
                }
                StreamEvent::MessageDelta { delta, usage } => {
                    let m = msg.as_mut().unwrap();
                    m.stop_reason = delta.stop_reason;
                    m.stop_sequence = delta.stop_sequence;
                    m.usage.update(usage);
                }
                _ => {}
            }
        }
        let mut m = msg.unwrap();
        for (b, j) in m.content.iter_mut().zip(json_parts) {
            if let ContentBlock::ToolUse { input, .. } = b {
                *input = serde_json::from_str(&j).unwrap();
            }
        }
        m
    }

    fn answer(v: Value) -> ChatResponse {
        serde_json::from_value(v).unwrap()
    }

    /// A cache replay (OpenAI chunks) reads, through the events, as the same message as the
    /// non-streaming translation of the answer.
    #[test]
    fn replayed_chunks_encode_to_the_same_message() {
        let resp = answer(json!({
            "id": "chatcmpl-1", "model": "gpt-4o-mini", "created": 1,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Checking the weather now.",
                "reasoning_content": "Use the tool.",
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "wx", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "wx", "arguments": "{\"city\":\"Bergen\"}"}}
                ]}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39,
                      "prompt_tokens_details": {"cached_tokens": 10}}
        }));
        let chunks = chat::replay_chunks(&resp, &resp.id, true);
        let events = encode(&chunks);
        assert_eq!(events[0].event_name(), "message_start");
        assert_eq!(events[1], StreamEvent::Ping);
        assert_eq!(events.last().unwrap(), &StreamEvent::MessageStop);
        let streamed = accumulate(&events);
        let whole = MessagesResponse::from_chat(resp);
        assert_eq!(streamed, whole);
        assert_eq!(whole.usage.cache_read_input_tokens, Some(10));
        assert_eq!(whole.usage.input_tokens, 20);
    }

    /// An Anthropic upstream's events, decoded to chunks and encoded again, are what it sent.
    #[test]
    fn anthropic_events_survive_decoding_and_encoding() {
        let upstream = [
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                "role": "assistant", "content": [], "model": "claude-x", "stop_reason": null,
                "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 1,
                "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me see."}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello "}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "there"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "wx", "input": {}}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
                   "usage": {"output_tokens": 20}}),
            json!({"type": "message_stop"}),
        ];
        let mut dec = ChunkDecoder::default();
        let mut chunks = Vec::new();
        for ev in &upstream {
            match dec.event(&ev.to_string()) {
                Decoded::Chunk(c) | Decoded::End(c) => chunks.push(c),
                Decoded::Skip => {}
                other => panic!("{other:?}"),
            }
        }
        let events = encode(&chunks);
        let m = accumulate(&events);
        assert_eq!(m.id, "msg_1");
        assert_eq!(m.model, "claude-x");
        assert_eq!(
            m.content,
            vec![
                ContentBlock::Thinking {
                    thinking: "Let me see.".into(),
                    signature: "sig".into()
                },
                ContentBlock::text("Hello there"),
                ContentBlock::tool_use("toolu_1", "wx", json!({"a": 1})),
            ]
        );
        assert_eq!(m.stop_reason, Some(StopReason::StopSequence));
        assert_eq!(m.stop_sequence.as_deref(), Some("END"));
        assert_eq!((m.usage.input_tokens, m.usage.output_tokens), (12, 20));
    }

    #[test]
    fn a_stream_without_usage_reports_an_estimate() {
        let chunk: ChatChunk = serde_json::from_value(json!({
            "id": "c", "model": "m", "created": 1,
            "choices": [{"index": 0, "delta": {"content": "abcdefgh"}, "finish_reason": "length"}]
        }))
        .unwrap();
        let m = accumulate(&encode(&[chunk]));
        assert_eq!(m.stop_reason, Some(StopReason::MaxTokens));
        assert_eq!((m.usage.input_tokens, m.usage.output_tokens), (7, 2));
        let err = EventEncoder::error("api_error", "broke".into());
        assert!(err
            .to_sse()
            .starts_with("event: error\ndata: {\"type\":\"error\""));
    }
}
