//! The simulated provider: a fake LLM upstream speaking OpenAI's and Anthropic's wire formats.
//! `sluice serve` answers with it when a provider has no API key (demo mode), `sluice mock` runs
//! it alone (the upstream of integration tests and the baseline of latency benchmarks), and the
//! tests start it in-process. It speaks `wire/` and `chat` and imports nothing of the pipeline.
//!
//! One request's path: parse the body (bad JSON is a 400 in the provider's shape) -> count it
//! under its full model string -> work out its faults (model-name tokens, `x-mock-fault` header;
//! see `faults`) -> `gate`: latency, stalls, resets and error statuses -> a deterministic
//! `answer` -> JSON, or an SSE stream played with pacing and mid-stream faults (`stream`).
//!
//! Endpoints: `POST /v1/chat/completions`, `POST /v1/messages`, `GET /v1/models`,
//! `GET /mock/counters` (`{"counts":{"<model>":n}, "streams_open": n}`) and `POST /mock/reset`.

mod answer;
mod anthropic;
mod conn;
mod faults;
mod openai;
mod stream;
mod usage;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::answer::Prompt;
use self::conn::{KillSwitch, KillableListener};
use self::faults::Faults;

pub use self::faults::FAULT_HEADER;

/// Large prompts are legitimate benchmark input; axum's 2 MB default is too small.
const BODY_LIMIT_BYTES: usize = 64 << 20;
/// The context window reported by `context-length` when no `window-<n>` is given.
const DEFAULT_WINDOW_TOKENS: u32 = 8192;
/// `flap-<ms>ms`: how many down periods before the model stays up.
const FLAP_DOWN_PERIODS: u128 = 3;
/// How long `MockHandle::shutdown` waits for in-flight responses before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The models `GET /v1/models` lists (any model string is accepted anyway).
const MODELS: [&str; 5] = [
    "gpt-4o-mini",
    "gpt-4o",
    "claude-3-5-haiku-latest",
    "claude-sonnet-4-5",
    "mock-small",
];

#[derive(Clone, Debug, Default)]
pub struct MockOptions {
    /// Wait before the response headers of every request (a `latency-<ms>ms` token overrides).
    pub latency_ms: u64,
    /// Wait between stream chunks of every stream (a `pace-<ms>ms` token overrides).
    pub token_pace_ms: u64,
}

/// A running mock server. Dropping it stops the server (in-flight streams finish in the
/// background; stalled requests are released).
pub struct MockHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl MockHandle {
    /// `http://127.0.0.1:PORT` (a loopback address even when bound to a wildcard).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Chat/messages requests received for this exact model string since start or `reset`.
    pub fn count(&self, model: &str) -> u64 {
        self.shared.counts.lock().get(model).map_or(0, |c| c.n)
    }

    /// All counters, keyed by model string.
    pub fn counts(&self) -> HashMap<String, u64> {
        self.shared.counts()
    }

    /// Streams being played now (a client that goes away ends its stream).
    pub fn streams_open(&self) -> usize {
        self.shared
            .streams_open
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Clears the counters (so `-once` faults fire again).
    pub fn reset(&self) {
        self.shared.counts.lock().clear();
    }

    /// Stops accepting, releases stalled requests and waits (a bounded time) for the rest.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, task).await;
        }
    }
}

impl Drop for MockHandle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

/// Binds `listen` (port 0 picks a free port) and serves in a background task.
pub async fn spawn(listen: SocketAddr, opts: MockOptions) -> std::io::Result<MockHandle> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        opts,
        counts: Mutex::new(HashMap::new()),
        shutdown: CancellationToken::new(),
        streams_open: Arc::default(),
    });
    let app = router(shared.clone()).into_make_service_with_connect_info::<KillSwitch>();
    let stop = shared.shutdown.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        // Serving a listener only fails on accept errors, which the listener handles itself.
        let _ = axum::serve(KillableListener(listener), app)
            .with_graceful_shutdown(stop)
            .await;
    });
    Ok(MockHandle {
        addr,
        shared,
        task: Some(task),
    })
}

/// State shared by all handlers.
struct Shared {
    opts: MockOptions,
    counts: Mutex<HashMap<String, Counter>>,
    shutdown: CancellationToken,
    /// Streams being played.
    streams_open: Arc<std::sync::atomic::AtomicUsize>,
}

/// Requests for one model string: how many, and when the first arrived (`flap-<ms>ms`).
struct Counter {
    n: u64,
    first: Instant,
}

impl Shared {
    /// Counts one request for `model`; returns its 1-based attempt number and the time since
    /// the first request for it.
    fn hit(&self, model: &str) -> (u64, Duration) {
        let mut counts = self.counts.lock();
        if let Some(c) = counts.get_mut(model) {
            c.n += 1;
            return (c.n, c.first.elapsed());
        }
        let first = Instant::now();
        counts.insert(model.to_owned(), Counter { n: 1, first });
        (1, Duration::ZERO)
    }

    fn counts(&self) -> HashMap<String, u64> {
        let counts = self.counts.lock();
        counts.iter().map(|(k, c)| (k.clone(), c.n)).collect()
    }
}

/// The model name without its fault tokens: what the answer depends on.
fn base_model(model: &str) -> &str {
    model.split('+').next().unwrap_or(model)
}

/// `flap-<ms>ms`: down in the even periods of `period` since the first request, for
/// [`FLAP_DOWN_PERIODS`] of them.
fn flapping_down(since_first: Duration, period_ms: u64) -> bool {
    let period = since_first.as_millis() / u128::from(period_ms.max(1));
    period % 2 == 0 && period / 2 < FLAP_DOWN_PERIODS
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/models", get(models))
        .route("/mock/counters", get(counters))
        .route("/mock/reset", post(reset))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(shared)
}

async fn models() -> Json<Value> {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "sluice-mock"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

async fn counters(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "counts": shared.counts(),
        "streams_open": shared.streams_open.load(std::sync::atomic::Ordering::Acquire),
    }))
}

async fn reset(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.counts.lock().clear();
    Json(json!({ "counts": {} }))
}

/// Why a request gets no answer; each endpoint renders it in its provider's error shape.
#[derive(Debug, Clone, PartialEq)]
enum Refusal {
    BadJson(String),
    /// A well-formed request the provider refuses (400 with this message).
    Invalid(String),
    Status {
        code: u16,
        retry_after_secs: Option<u64>,
    },
    ContextLength {
        tokens: u32,
        limit: u32,
    },
    ContentFilter,
    /// The account's quota or credit is used up (`quota`).
    Quota,
    /// The request ends with an assistant turn and the model takes no prefill (`no-prefill`).
    Prefill,
    /// The connection has been killed; whatever response follows is never sent.
    Reset,
}

/// Everything that happens before an answer: counting, the wait before headers, stalls, resets
/// and error statuses. `Ok` carries the faults that still apply to the answer.
async fn gate(
    shared: &Shared,
    conn: &KillSwitch,
    model: &str,
    headers: &HeaderMap,
    prompt: &Prompt,
) -> Result<Faults, Refusal> {
    let (attempt, since_first) = shared.hit(model);
    let header = headers.get(FAULT_HEADER).and_then(|v| v.to_str().ok());
    let faults = Faults::parse(model, header, attempt);
    let latency = faults.latency_ms.unwrap_or(shared.opts.latency_ms);
    pause(Duration::from_millis(latency), &shared.shutdown).await;
    if faults.stall_headers {
        shared.shutdown.cancelled().await;
    }
    if faults.reset || faults.stall_headers {
        conn.kill();
        return Err(Refusal::Reset);
    }
    let flapped = faults
        .flap_ms
        .is_some_and(|ms| flapping_down(since_first, ms))
        .then_some(503);
    if let Some(code) = faults.status.or(flapped) {
        let retry_after_secs = faults.retry_after_secs.filter(|_| code == 429);
        return Err(Refusal::Status {
            code,
            retry_after_secs,
        });
    }
    if faults.quota {
        return Err(Refusal::Quota);
    }
    let over_window = faults.window.is_some_and(|w| prompt.prompt_tokens > w);
    if faults.context_length || over_window {
        let limit = faults.window.unwrap_or(DEFAULT_WINDOW_TOKENS);
        return Err(Refusal::ContextLength {
            tokens: prompt.prompt_tokens,
            limit,
        });
    }
    if faults.no_prefill && prompt.prefill {
        return Err(Refusal::Prefill);
    }
    if faults.content_filter {
        return Err(Refusal::ContentFilter);
    }
    Ok(faults)
}

/// Sleeps for `d`, cut short by shutdown; no timer at all for zero.
async fn pause(d: Duration, shutdown: &CancellationToken) {
    if !d.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

/// A message for an error status, shared by both providers' bodies.
fn status_message(code: u16) -> &'static str {
    match code {
        400 => "Mock: bad request.",
        // Like OpenAI's: the key, partly masked, in the message (a gateway must not relay it).
        401 => {
            "Incorrect API key provided: sk-mock-************************abcd. You can find \
                your API key in your account settings."
        }
        403 => "Mock: permission denied.",
        404 => "Mock: the model does not exist.",
        408 => "Mock: request timed out.",
        413 => "Mock: request too large.",
        429 => "Mock: rate limit reached, please retry later.",
        500 => "Mock: the server had an error while processing your request.",
        502 => "Mock: bad gateway.",
        503 => "Mock: the service is temporarily unavailable.",
        504 => "Mock: gateway timeout.",
        529 => "Mock: overloaded.",
        c if c < 500 => "Mock: client error.",
        _ => "Mock: server error.",
    }
}

/// An error response: `body` as JSON, plus `Retry-After` when given.
fn error_response(code: u16, body: &Value, retry_after_secs: Option<u64>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, Json(body)).into_response();
    if let Some(secs) = retry_after_secs {
        res.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    res
}

/// A random id with a provider prefix (`msg_`, `toolu_`, `call_`), 24 hex digits.
fn new_id(prefix: &str) -> String {
    format!("{prefix}{:024x}", rand::random::<u128>() >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flapping_alternates_down_and_up_then_stays_up() {
        let at = |ms| flapping_down(Duration::from_millis(ms), 100);
        let periods: Vec<bool> = (0..8).map(|p| at(p * 100 + 50)).collect();
        assert_eq!(
            periods,
            [true, false, true, false, true, false, false, false]
        );
        assert!(!at(60_000));
    }
}
