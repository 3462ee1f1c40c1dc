//! OpenAI-compatible adapter: `POST {base_url}/chat/completions`.
//!
//! The canonical types already are OpenAI's format, so the request is serialised as it came
//! (unknown fields included) with the target's model id; only gateway-owned fields change.

use reqwest::header::{HeaderMap, AUTHORIZATION};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

use super::sse::{chunk_stream, Decode, SseEvent, Step};
use super::{sensitive, CallOptions, ChunkStream, ProviderError, Upstream};
use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::config::Secret;

pub struct OpenAi {
    up: Upstream,
    headers: HeaderMap,
    url: reqwest::Url,
    embeddings_url: reqwest::Url,
}

impl OpenAi {
    pub(super) fn new(up: Upstream, key: Option<&Secret>) -> Result<Self, String> {
        let mut headers = HeaderMap::new();
        if let Some(key) = key {
            headers.insert(
                AUTHORIZATION,
                sensitive(&Secret::new(format!("Bearer {}", key.expose())))?,
            );
        }
        Ok(OpenAi {
            url: up.endpoint("/chat/completions")?,
            embeddings_url: up.endpoint("/embeddings")?,
            up,
            headers,
        })
    }

    pub(super) async fn complete(
        &self,
        req: &ChatRequest,
        opts: CallOptions<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        let out = Outgoing {
            req,
            model: opts.model,
            stream: false,
        };
        let sent = self.up.send(&self.url, &self.headers, &out, &opts).await?;
        parse_completion(&sent.body().await?)
    }

    /// `POST /embeddings`: the client's body with the target's model id, the answer as is.
    pub(super) async fn embeddings(
        &self,
        body: &Map<String, Value>,
        opts: CallOptions<'_>,
    ) -> Result<Value, ProviderError> {
        let with_model = WithModel {
            body,
            model: opts.model,
        };
        let url = &self.embeddings_url;
        let sent = self.up.send(url, &self.headers, &with_model, &opts).await?;
        serde_json::from_slice(&sent.body().await?)
            .map_err(|e| ProviderError::Protocol(format!("embeddings: {e}")))
    }

    pub(super) async fn stream(
        &self,
        req: &ChatRequest,
        opts: CallOptions<'_>,
    ) -> Result<ChunkStream, ProviderError> {
        let out = Outgoing {
            req,
            model: opts.model,
            stream: true,
        };
        let sent = self.up.send(&self.url, &self.headers, &out, &opts).await?;
        // Some OpenAI-compatible servers answer a streaming request with one JSON completion:
        // relayed as the stream of its parts rather than failed over.
        if is_json(sent.resp.headers()) {
            let whole = parse_completion(&sent.body().await?)?;
            let chunks = crate::chat::replay_chunks(&whole, &whole.id, true);
            return Ok(Box::pin(futures::stream::iter(chunks.into_iter().map(Ok))));
        }
        let decoder = Decoder {
            need_usage: req.include_usage(),
            ..Decoder::default()
        };
        Ok(chunk_stream(
            sent.resp,
            "[DONE]",
            opts.framing.clone(),
            decoder,
        ))
    }
}

/// Choices tracked for completeness; more (from a broken upstream) make an answer incomplete.
const MAX_CHOICES: usize = 128;

/// Decodes `data:` payloads into chunks, and keeps what says the answer is complete: every
/// choice's finish reason, and the usage chunk when the client asked for it.
#[derive(Default)]
pub(crate) struct Decoder {
    need_usage: bool,
    usage_seen: bool,
    /// (choice index, finished)
    choices: Vec<(u32, bool)>,
    overflow: bool,
}

impl Decoder {
    fn track(&mut self, chunk: &ChatChunk) {
        self.usage_seen |= chunk.usage.is_some();
        for c in &chunk.choices {
            let at = match self.choices.iter().position(|(i, _)| *i == c.index) {
                Some(at) => at,
                None if self.choices.len() < MAX_CHOICES => {
                    self.choices.push((c.index, false));
                    self.choices.len() - 1
                }
                None => {
                    self.overflow = true;
                    continue;
                }
            };
            self.choices[at].1 |= c.finish_reason.is_some();
        }
    }
}

impl Decode for Decoder {
    fn event(&mut self, ev: SseEvent) -> Step {
        if ev.data == "[DONE]" {
            return Step::End(None);
        }
        match parse_chunk(&ev.data) {
            Ok(chunk) => {
                self.track(&chunk);
                Step::Chunk(chunk)
            }
            Err(ProviderError::Protocol(why)) => Step::Malformed(why),
            Err(e) => Step::Fail(e),
        }
    }

    fn complete(&mut self) -> Option<Option<ChatChunk>> {
        let finished = !self.choices.is_empty() && self.choices.iter().all(|c| c.1);
        (finished && !self.overflow && (self.usage_seen || !self.need_usage)).then_some(None)
    }
}

/// A whole `chat.completion` body.
fn parse_completion(bytes: &[u8]) -> Result<ChatResponse, ProviderError> {
    let parsed: ChatResponse = serde_json::from_slice(bytes)
        .map_err(|e| ProviderError::Protocol(format!("chat.completion: {e}")))?;
    if parsed.choices.is_empty() {
        return Err(ProviderError::Protocol(
            "chat.completion without choices".into(),
        ));
    }
    Ok(parsed)
}

fn is_json(h: &HeaderMap) -> bool {
    h.get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"))
}

/// One `data:` payload: a chunk, or an in-stream error object.
fn parse_chunk(data: &str) -> Result<ChatChunk, ProviderError> {
    match serde_json::from_str::<ChatChunk>(data) {
        Ok(c) => Ok(c),
        Err(e) => {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(data) {
                if v.get("error").is_some() {
                    let (kind, code, message) = super::error::parse_error_body(data.as_bytes());
                    return Err(ProviderError::Status {
                        status: 502,
                        retry_after: None,
                        kind: kind.unwrap_or_else(|| "api_error".into()),
                        code,
                        message: message.unwrap_or_else(|| "error event in stream".into()),
                    });
                }
            }
            Err(ProviderError::Protocol(format!("bad chunk: {e}")))
        }
    }
}

/// A JSON object with its `model` replaced.
struct WithModel<'a> {
    body: &'a Map<String, Value>,
    model: &'a str,
}

impl Serialize for WithModel<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.body.len()))?;
        m.serialize_entry("model", self.model)?;
        for (k, v) in self.body.iter().filter(|(k, _)| *k != "model") {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The request as sent upstream: the client's fields, with the target's model, our `stream`
/// flag, usage always asked for on streams (for accounting), and gateway-only fields removed.
struct Outgoing<'a> {
    req: &'a ChatRequest,
    model: &'a str,
    stream: bool,
}

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.req;
        // A request with Anthropic-only data (an Anthropic client's) goes without it.
        let cleaned = crate::wire::anthropic::for_openai(r);
        let (messages, tools) = match &cleaned {
            Some((messages, tools)) => (messages, tools),
            None => (&r.messages, &r.tools),
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("model", self.model)?;
        m.serialize_entry("messages", messages)?;
        if self.stream {
            m.serialize_entry("stream", &true)?;
            m.serialize_entry(
                "stream_options",
                &serde_json::json!({"include_usage": true}),
            )?;
        }
        macro_rules! opt {
            ($($f:ident),*) => {$(
                if let Some(v) = &r.$f { m.serialize_entry(stringify!($f), v)?; }
            )*};
        }
        if let Some(t) = tools {
            m.serialize_entry("tools", t)?;
        }
        opt!(
            temperature,
            top_p,
            max_tokens,
            max_completion_tokens,
            stop,
            seed,
            n,
            tool_choice,
            response_format,
            user
        );
        for (k, v) in r
            .extra
            .iter()
            .filter(|(k, _)| *k != crate::wire::anthropic::EXTENSION)
        {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_keeps_unknown_fields_and_drops_gateway_fields() {
        let req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "chat", "messages": [{"role": "user", "content": "hi"}],
            "stream": true, "metadata": {"team": "x"}, "logit_bias": {"50256": -100},
            "temperature": 0.2
        }))
        .unwrap();
        let v = serde_json::to_value(Outgoing {
            req: &req,
            model: "gpt-4o-mini",
            stream: false,
        })
        .unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(v["logit_bias"]["50256"], -100);
        assert_eq!(v["temperature"], 0.2);
        assert!(v.get("metadata").is_none());
        assert!(v.get("stream").is_none());
    }
}
