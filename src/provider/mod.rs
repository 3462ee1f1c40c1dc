//! Upstream providers: a closed enum over the adapters, so every match stays exhaustive.
//!
//! An adapter turns a canonical `ChatRequest` into its provider's wire format, sends it with
//! the provider's pooled `reqwest::Client`, and turns the answer (or the stream of events)
//! back into canonical types. Errors are classified here (`ProviderError::class`) so the
//! failover loop in `router/` can decide: retry, wait, move on, or give up.

mod anthropic;
mod error;
mod openai;
pub mod sse;

use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::config::{ProviderConfig, ProviderKind, Secret, SIM_FAULT_HEADER};

pub use error::{redact_url, redacted, ErrorClass, ProviderError, TimeoutStage};
pub use sse::Framing;

/// Canonical chunks; the stream ends (`None`) only after the upstream's own end marker
/// (`[DONE]`, `message_stop`). Any other ending yields an `Err` first.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ProviderError>> + Send>>;

/// What one attempt needs besides the request: the upstream model id, the time limits and the
/// stream framing.
#[derive(Clone, Copy)]
pub struct CallOptions<'a> {
    pub model: &'a str,
    pub first_byte_timeout: Duration,
    pub first_token_timeout: Duration,
    pub idle_timeout: Duration,
    pub framing: &'a Framing,
    /// The client's `x-mock-fault` header: sent to a simulated provider, never to another.
    pub sim_faults: Option<&'a str>,
}

pub enum Provider {
    OpenAi(openai::OpenAi),
    Anthropic(anthropic::Anthropic),
}

impl Provider {
    pub fn new(cfg: &ProviderConfig, connect_timeout: Duration) -> Result<Provider, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            // Never follow a redirect: it would carry the provider key (Anthropic's
            // `x-api-key`, custom headers) to another host.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("provider {}: {e}", cfg.name))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &cfg.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let value = sensitive(value)?;
            headers.insert(name, value);
        }
        let base = Upstream {
            http,
            base_url: cfg.base_url.clone(),
            headers,
            simulated: cfg.simulated,
        };
        Ok(match cfg.kind {
            ProviderKind::OpenAi => {
                Provider::OpenAi(openai::OpenAi::new(base, cfg.api_key.as_ref())?)
            }
            ProviderKind::Anthropic => Provider::Anthropic(anthropic::Anthropic::new(
                base,
                cfg.api_key.as_ref(),
                &cfg.api_version,
            )?),
        })
    }

    pub async fn complete(
        &self,
        req: &ChatRequest,
        opts: CallOptions<'_>,
    ) -> Result<ChatResponse, ProviderError> {
        match self {
            Provider::OpenAi(p) => p.complete(req, opts).await,
            Provider::Anthropic(p) => p.complete(req, opts).await,
        }
    }

    /// `POST /embeddings` (OpenAI-compatible providers only).
    pub async fn embeddings(
        &self,
        body: &serde_json::Map<String, serde_json::Value>,
        opts: CallOptions<'_>,
    ) -> Result<serde_json::Value, ProviderError> {
        match self {
            Provider::OpenAi(p) => p.embeddings(body, opts).await,
            Provider::Anthropic(_) => Err(ProviderError::Status {
                status: 400,
                retry_after: None,
                kind: "invalid_request_error".into(),
                code: None,
                message: "Anthropic has no embeddings API".into(),
            }),
        }
    }

    pub fn is_openai(&self) -> bool {
        matches!(self, Provider::OpenAi(_))
    }

    /// Start a stream: `Ok` once the upstream accepted the request (status 2xx); the chunks
    /// arrive through the returned stream, with the first-token and idle limits applied.
    pub async fn stream(
        &self,
        req: &ChatRequest,
        opts: CallOptions<'_>,
    ) -> Result<ChunkStream, ProviderError> {
        let inner = match self {
            Provider::OpenAi(p) => p.stream(req, opts).await?,
            Provider::Anthropic(p) => p.stream(req, opts).await?,
        };
        Ok(with_stream_timeouts(
            inner,
            opts.first_token_timeout,
            opts.idle_timeout,
        ))
    }
}

/// What every adapter shares: the pooled client, base URL, and static headers.
pub(crate) struct Upstream {
    pub http: reqwest::Client,
    pub base_url: String,
    pub headers: HeaderMap,
    /// The built-in simulated provider: it may be sent the client's fault header.
    pub simulated: bool,
}

impl Upstream {
    /// The URL of an endpoint under the base URL, parsed once at startup (not per request).
    pub fn endpoint(&self, path: &str) -> Result<reqwest::Url, String> {
        let text = format!("{}{}", self.base_url, path);
        reqwest::Url::parse(&text).map_err(|e| format!("{}{path}: {e}", self.base_url))
    }

    /// The request preamble of every call: serialize `body`, POST it to `url` and wait for the
    /// response headers (within the first-byte limit). Non-2xx answers come back as classified
    /// `ProviderError::Status`.
    pub async fn send(
        &self,
        url: &reqwest::Url,
        headers: &HeaderMap,
        body: &impl serde::Serialize,
        opts: &CallOptions<'_>,
    ) -> Result<Sent, ProviderError> {
        let deadline = tokio::time::Instant::now() + opts.first_byte_timeout;
        let body = serde_json::to_vec(body).map_err(|e| ProviderError::Protocol(e.to_string()))?;
        let mut post = self
            .http
            .post(url.clone())
            .headers(self.headers.clone())
            .headers(headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let (true, Some(faults)) = (self.simulated, opts.sim_faults) {
            post = post.header(SIM_FAULT_HEADER, faults);
        }
        let send = post.body(body).send();
        let resp = match tokio::time::timeout_at(deadline, send).await {
            Err(_) => return Err(ProviderError::Timeout(TimeoutStage::FirstByte)),
            Ok(Err(e)) => return Err(ProviderError::from_reqwest(&e)),
            Ok(Ok(r)) => r,
        };
        if resp.status().is_success() {
            return Ok(Sent { resp, deadline });
        }
        Err(error::from_error_response(resp).await)
    }
}

/// An upstream's 2xx answer, its body not read yet.
pub(crate) struct Sent {
    pub resp: reqwest::Response,
    /// The first-byte limit, which also bounds reading a non-streaming body.
    deadline: tokio::time::Instant,
}

impl Sent {
    /// The whole (non-streaming) body, within what is left of the first-byte limit.
    pub async fn body(self) -> Result<bytes::Bytes, ProviderError> {
        match tokio::time::timeout_at(self.deadline, self.resp.bytes()).await {
            Err(_) => Err(ProviderError::Timeout(TimeoutStage::FirstByte)),
            Ok(Err(e)) => Err(ProviderError::StreamCut(format!(
                "reading body: {}",
                redacted(&e)
            ))),
            Ok(Ok(b)) => Ok(b),
        }
    }
}

pub(crate) fn sensitive(value: &Secret) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(value.expose())
        .map_err(|_| "a header value holds characters HTTP does not allow".to_owned())?;
    v.set_sensitive(true);
    Ok(v)
}

/// Until the first chunk with content (or a finish reason), the wait is bounded by
/// `first_token`; after that, each gap between chunks by `idle`.
fn with_stream_timeouts(
    mut inner: ChunkStream,
    first_token: Duration,
    idle: Duration,
) -> ChunkStream {
    use futures::StreamExt;
    Box::pin(async_stream::stream! {
        let first_deadline = tokio::time::Instant::now() + first_token;
        let mut started = false;
        loop {
            let next = if started {
                tokio::time::timeout(idle, inner.next()).await
            } else {
                tokio::time::timeout_at(first_deadline, inner.next()).await
            };
            match next {
                Err(_) => {
                    let stage = if started { TimeoutStage::Idle } else { TimeoutStage::FirstToken };
                    yield Err(ProviderError::Timeout(stage));
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    yield Err(e);
                    break;
                }
                Ok(Some(Ok(chunk))) => {
                    if !started && chunk_has_output(&chunk) {
                        started = true;
                    }
                    yield Ok(chunk);
                }
            }
        }
    })
}

/// The adapters' pure translations, as entry points for the property tests (`tests/it/fuzz.rs`):
/// canonical request -> Anthropic request, Anthropic answer -> canonical answer, and upstream
/// stream bytes (in any split) -> canonical chunks through the shared SSE parser.
pub mod props {
    use super::sse::{Decode, SseParser, Step};
    use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
    use crate::wire::anthropic as wire;

    pub fn to_anthropic(req: &ChatRequest, model: &str, stream: bool) -> wire::MessagesRequest {
        wire::MessagesRequest::from_chat(req, model, stream)
    }

    pub fn from_anthropic(msg: wire::MessagesResponse) -> ChatResponse {
        msg.into_chat()
    }

    /// What the stream loop makes of `pieces` (read one after another): each chunk, or the
    /// text of the error that ends it; `Ok(None)` marks the end marker.
    pub fn decode_stream(
        anthropic: bool,
        pieces: &[&[u8]],
    ) -> Vec<Result<Option<ChatChunk>, String>> {
        let mut decode: Box<dyn Decode> = if anthropic {
            Box::new(super::anthropic::StreamState::default())
        } else {
            Box::new(super::openai::Decoder::default())
        };
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for p in pieces {
            parser.push(p);
            loop {
                match parser.next_event() {
                    Err(e) => {
                        out.push(Err(e.to_string()));
                        return out;
                    }
                    Ok(None) => break,
                    Ok(Some(ev)) => match decode.event(ev) {
                        Step::Chunk(c) => out.push(Ok(Some(c))),
                        Step::Skip => {}
                        Step::Malformed(why) => out.push(Err(why)),
                        Step::End(last) => {
                            out.extend(last.map(|c| Ok(Some(c))));
                            out.push(Ok(None));
                            return out;
                        }
                        Step::Fail(e) => {
                            out.push(Err(e.to_string()));
                            return out;
                        }
                    },
                }
            }
        }
        if let Some(Some(c)) = decode.complete() {
            out.push(Ok(Some(c)));
        }
        out
    }
}

/// True when a chunk carries something the client sees as output.
pub fn chunk_has_output(chunk: &ChatChunk) -> bool {
    chunk.choices.iter().any(|c| {
        c.delta.content.as_deref().is_some_and(|s| !s.is_empty())
            || c.delta.tool_calls.is_some()
            || c.finish_reason.is_some()
            || c.delta.extra.values().any(|v| !v.is_null())
    })
}
