//! One request's whole flow: lookup -> plan -> run -> write back.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};

use crate::app::AppState;
use crate::cache::{CacheKey, CachePolicy, HitKind, KeyScope, SemanticCache};
use crate::chat::{self, ChatChunk, ChatRequest, ChatResponse, StreamAssembler};
use crate::config::{Mode, TargetId};
use crate::error::{ApiError, Attempt};
use crate::provider::{ProviderError, TimeoutStage};
use crate::router::{Plan, StreamStarted};

/// What the client asked for besides the body.
pub struct RequestCtx {
    pub request_id: Arc<str>,
    /// `x-sluice-route`
    pub route_hint: Option<String>,
    /// `x-sluice-tier`
    pub tier_hint: Option<String>,
    pub cache: CacheControl,
    pub started: Instant,
}

/// Per-request cache controls, from `x-sluice-cache`, `Cache-Control` and `x-sluice-cache-ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheControl {
    /// Look the answer up (`bypass`, `refresh` and `no-cache` turn it off).
    pub read: bool,
    /// Store a fresh answer (`bypass` and `no-store` turn it off).
    pub write: bool,
    /// `only-if-cached`: a miss is an error, nothing goes upstream.
    pub only_if_cached: bool,
    pub ttl: Option<Duration>,
}

impl Default for CacheControl {
    fn default() -> Self {
        CacheControl {
            read: true,
            write: true,
            only_if_cached: false,
            ttl: None,
        }
    }
}

/// What the cache did for a request (`x-sluice-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheStatus {
    /// No cache for this request (disabled, observe mode, uncacheable request).
    #[default]
    Off,
    Bypass,
    Miss,
    HitExact,
    HitSemantic,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Off => "off",
            CacheStatus::Bypass => "bypass",
            CacheStatus::Miss => "miss",
            CacheStatus::HitExact => "hit-exact",
            CacheStatus::HitSemantic => "hit-semantic",
        }
    }
}

/// How the request was served: becomes response headers and the audit record.
#[derive(Default)]
pub struct Meta {
    pub route: Option<Arc<str>>,
    pub target: Option<TargetId>,
    pub attempts: Vec<Attempt>,
    pub cache: CacheStatus,
    pub similarity: Option<f32>,
}

pub enum Reply {
    Complete(ChatResponse),
    Stream(EventStream),
}

/// What a streamed reply sends: chunks, then either `Done` or one `Error` (never both).
pub enum StreamItem {
    Chunk(ChatChunk),
    Done,
    Error(ApiError),
}

pub type EventStream = Pin<Box<dyn Stream<Item = StreamItem> + Send>>;

/// A fresh answer's way into the cache once it is known to be complete.
struct WriteBack {
    cache: SemanticCache,
    key: CacheKey,
    policy: CachePolicy,
    ttl: Option<Duration>,
}

impl WriteBack {
    /// Queued, not awaited: the write happens off the response path.
    fn store(self, resp: &ChatResponse) {
        self.cache.insert(self.key, resp, &self.policy, self.ttl);
    }
}

pub async fn chat(
    s: &Arc<AppState>,
    req: ChatRequest,
    ctx: RequestCtx,
) -> (Meta, Result<Reply, ApiError>) {
    let mut meta = Meta::default();
    let plan = match s
        .router
        .plan(&req, ctx.route_hint.as_deref(), ctx.tier_hint.as_deref())
    {
        Ok(p) => p,
        Err(e) => return (meta, Err(e)),
    };
    meta.route = Some(plan.route_name.clone());

    // 1. Cache lookup.
    let mut write_back = None;
    if let Some((cache, key, policy)) = cache_for(s, &plan, &req) {
        if !ctx.cache.read {
            meta.cache = CacheStatus::Bypass;
        } else {
            meta.cache = CacheStatus::Miss;
            match cache.lookup_outcome(&key, policy).await {
                Ok(outcome) => {
                    if let Some(hit) = outcome.hit {
                        meta.cache = match hit.kind {
                            HitKind::Exact => CacheStatus::HitExact,
                            HitKind::Semantic => CacheStatus::HitSemantic,
                        };
                        meta.similarity = Some(hit.similarity);
                        return (meta, Ok(replay(hit.response, &req)));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cache lookup failed; treating as a miss"),
            }
        }
        if ctx.cache.write {
            write_back = Some(WriteBack {
                cache: cache.clone(),
                key,
                policy: policy.clone(),
                ttl: ctx.cache.ttl,
            });
        }
    }
    if ctx.cache.only_if_cached {
        return (meta, Err(ApiError::CacheMiss));
    }

    // 2. Run the plan (failover loop), 3. write back.
    if !req.stream {
        return match s.router.complete(&plan, &req, &s.providers).await {
            Ok(done) => {
                meta.target = Some(done.target);
                meta.attempts = done.attempts;
                if let Some(wb) = write_back {
                    wb.store(&done.response);
                }
                (meta, Ok(Reply::Complete(done.response)))
            }
            Err(f) => {
                meta.attempts = f.attempts;
                (meta, Err(f.error))
            }
        };
    }
    let deadline = tokio::time::Instant::from_std(ctx.started) + plan.policy.total_timeout;
    match s.router.start_stream(&plan, &req, &s.providers).await {
        Ok(mut started) => {
            meta.target = Some(started.target);
            meta.attempts = std::mem::take(&mut started.attempts);
            let stream = relay(
                s.clone(),
                started,
                req.include_usage(),
                deadline,
                write_back,
            );
            (meta, Ok(Reply::Stream(stream)))
        }
        Err(f) => {
            meta.attempts = f.attempts;
            (meta, Err(f.error))
        }
    }
}

/// The cache, key and policy for this request, when caching applies at all.
fn cache_for<'a>(
    s: &'a AppState,
    plan: &Plan,
    req: &ChatRequest,
) -> Option<(&'a SemanticCache, CacheKey, &'a CachePolicy)> {
    let cache = s.cache.as_ref()?;
    let (policy, mode) = match plan.route {
        Some(r) => {
            let r = &s.config.routes[r.0];
            (&r.cache, r.accounting.mode)
        }
        None => (&s.config.cache, s.config.passthrough_accounting.mode),
    };
    if !policy.enabled || mode == Mode::Observe {
        return None;
    }
    // The namespace includes what serves the request: the tier of a route (its targets may
    // fail over among themselves, all answering for that tier), or the requested model.
    let tier_scope;
    let target = match (plan.route, plan.tier) {
        (Some(r), Some(t)) => {
            tier_scope = format!("tier:{}", s.config.routes[r.0].tiers[t].name);
            tier_scope.as_str()
        }
        _ => req.model.as_str(),
    };
    let key = CacheKey::new(
        req,
        &KeyScope {
            tenant: None,
            route: &plan.route_name,
            target,
        },
    )?;
    Some((cache, key, policy))
}

/// A cached answer, as a fresh completion (new id, now) or as a replayed SSE stream.
fn replay(mut resp: ChatResponse, req: &ChatRequest) -> Reply {
    resp.id = chat::new_completion_id();
    resp.created = chat::unix_now();
    if !req.stream {
        return Reply::Complete(resp);
    }
    let chunks = chat::replay_chunks(&resp, &resp.id, req.include_usage());
    let items = chunks
        .into_iter()
        .map(StreamItem::Chunk)
        .chain(std::iter::once(StreamItem::Done));
    Reply::Stream(Box::pin(futures::stream::iter(items)))
}

/// Relay a committed stream to the client. A failure after output was sent can no longer fail
/// over invisibly: it ends the stream with an in-band error and no `[DONE]`, so no client
/// mistakes a truncated answer for a complete one. Only a stream that completed is cached.
fn relay(
    s: Arc<AppState>,
    started: StreamStarted,
    include_usage: bool,
    deadline: tokio::time::Instant,
    write_back: Option<WriteBack>,
) -> EventStream {
    let StreamStarted {
        target,
        first,
        mut rest,
        ..
    } = started;
    Box::pin(async_stream::stream! {
        let mut assembled = write_back.as_ref().map(|_| StreamAssembler::default());
        for c in first {
            if let Some(a) = assembled.as_mut() {
                a.push(&c);
            }
            if let Some(c) = for_client(c, include_usage) {
                yield StreamItem::Chunk(c);
            }
        }
        loop {
            let next = tokio::time::timeout_at(deadline, rest.next()).await;
            let err = match next {
                Ok(Some(Ok(c))) => {
                    if let Some(a) = assembled.as_mut() {
                        a.push(&c);
                    }
                    if let Some(c) = for_client(c, include_usage) {
                        yield StreamItem::Chunk(c);
                    }
                    continue;
                }
                Ok(None) => {
                    if let (Some(wb), Some(a)) = (write_back, assembled) {
                        if let Some(resp) = a.finish() {
                            wb.store(&resp);
                        }
                    }
                    yield StreamItem::Done;
                    return;
                }
                Ok(Some(Err(e))) => e,
                Err(_) => ProviderError::Timeout(TimeoutStage::Total),
            };
            s.router.health(target).breaker.on_failure();
            let name = &s.config.target(target).name;
            tracing::warn!(target = %name, error = %err, "stream failed after output was sent");
            yield StreamItem::Error(ApiError::AllTargetsFailed {
                attempts: vec![Attempt {
                    target: name.clone(),
                    status: err.status(),
                    outcome: format!("stream interrupted after output was sent: {err}"),
                    elapsed_ms: 0,
                }],
                deadline: matches!(err, ProviderError::Timeout(TimeoutStage::Total)),
            });
            return;
        }
    })
}

/// Usage-only chunks (we always ask upstreams for usage) reach the client only when it asked
/// for them with `stream_options.include_usage`.
fn for_client(mut c: ChatChunk, include_usage: bool) -> Option<ChatChunk> {
    if !include_usage {
        if c.choices.is_empty() {
            return None;
        }
        c.usage = None;
    }
    Some(c)
}
