//! Anthropic Messages adapter: `POST {base_url}/v1/messages`. The translation between the
//! canonical (OpenAI-shaped) types and Anthropic's (system prompt, roles, tool calls and
//! results, images, stop reasons, usage, the streaming events `message_start` ..
//! `message_stop`) is `wire::anthropic`'s, which the gateway's own `/v1/messages` shares.

use std::borrow::Cow;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::sse::{chunk_stream, Decode, SseEvent, Step};
use super::{sensitive, CallOptions, ChunkStream, ProviderError, Upstream};
use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::config::Secret;
use crate::wire::anthropic as wire;

const BETA_HEADER: HeaderName = HeaderName::from_static("anthropic-beta");

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
        let out = wire::MessagesRequest::from_chat(req, opts.model, false);
        let headers = self.headers_for(req);
        let sent = self.up.send(&self.url, &headers, &out, &opts).await?;
        let msg: wire::MessagesResponse = serde_json::from_slice(&sent.body().await?)
            .map_err(|e| ProviderError::Protocol(format!("message: {e}")))?;
        Ok(msg.into_chat())
    }

    /// The adapter's headers, plus the client's `anthropic-beta` features when it named any
    /// (an Anthropic client's header, kept in the request's extension).
    fn headers_for(&self, req: &ChatRequest) -> Cow<'_, HeaderMap> {
        let betas = req
            .extra
            .get(wire::EXTENSION)
            .and_then(|e| e.get(wire::BETAS))
            .and_then(Value::as_array);
        let Some(betas) = betas.filter(|b| !b.is_empty()) else {
            return Cow::Borrowed(&self.headers);
        };
        let mut headers = self.headers.clone();
        for b in betas.iter().filter_map(Value::as_str) {
            if let Ok(v) = HeaderValue::from_str(b) {
                headers.append(BETA_HEADER, v);
            }
        }
        Cow::Owned(headers)
    }

    pub(super) async fn stream(
        &self,
        req: &ChatRequest,
        opts: CallOptions<'_>,
    ) -> Result<ChunkStream, ProviderError> {
        let out = wire::MessagesRequest::from_chat(req, opts.model, true);
        let headers = self.headers_for(req);
        let sent = self.up.send(&self.url, &headers, &out, &opts).await?;
        Ok(chunk_stream(
            sent.resp,
            "message_stop",
            opts.framing.clone(),
            StreamState::default(),
        ))
    }
}

/// The adapter's stream decoder: the shared translation (`wire::ChunkDecoder`) in the event
/// loop's terms.
#[derive(Default)]
pub(crate) struct StreamState(wire::ChunkDecoder);

impl Decode for StreamState {
    fn event(&mut self, ev: SseEvent) -> Step {
        match self.0.event(&ev.data) {
            wire::Decoded::Chunk(c) => Step::Chunk(c),
            wire::Decoded::Skip => Step::Skip,
            wire::Decoded::End(last) => Step::End(Some(last)),
            wire::Decoded::Malformed(why) => Step::Malformed(why),
            wire::Decoded::Error(error) => Step::Fail(ProviderError::Status {
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
        }
    }

    /// After `message_delta` the answer is whole.
    fn complete(&mut self) -> Option<Option<ChatChunk>> {
        self.0.finished().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anthropic_clients_betas_go_on_as_its_header() {
        let up = Upstream {
            http: reqwest::Client::new(),
            base_url: "http://127.0.0.1:9".into(),
            headers: HeaderMap::new(),
            simulated: false,
        };
        let a = Anthropic::new(up, None, "2023-06-01").unwrap();
        let mut req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}]
        }))
        .unwrap();
        assert!(a.headers_for(&req).get(BETA_HEADER).is_none());
        assert!(
            matches!(a.headers_for(&req), Cow::Borrowed(_)),
            "no copy without betas"
        );
        req.extra.insert(
            wire::EXTENSION.into(),
            serde_json::json!({wire::BETAS: ["prompt-caching-2024-07-31", "context-1m"]}),
        );
        let h = a.headers_for(&req);
        let betas: Vec<&str> = h
            .get_all(BETA_HEADER)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(betas, ["prompt-caching-2024-07-31", "context-1m"]);
        assert_eq!(h.get("anthropic-version").unwrap(), "2023-06-01");
    }
}
