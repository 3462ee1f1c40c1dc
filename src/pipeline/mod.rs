//! One request's whole flow: lookup -> plan -> run -> write back -> record.
//!
//! Each stage runs in its own debug-level span inside the handler's `request` span
//! (`cache.lookup`, `attempt` in the router, `cache.write_back`, `audit.record`); see
//! `telemetry` for why debug.

mod record;
mod stream;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use tracing::field::Empty;
use tracing::Instrument;

use crate::accounting::audit::PromptLog;
use crate::app::AppState;
use crate::cache::{CacheKey, CachePolicy, HitKind, KeyScope, SemanticCache};
use crate::chat::{self, ChatChunk, ChatRequest, ChatResponse, Usage};
use crate::config::{Mode, RouteId, TargetId};
use crate::error::{ApiError, Attempt};
use crate::router::Plan;

pub use record::RequestInfo;

/// What the client asked for besides the body.
pub struct RequestCtx {
    pub request_id: Arc<str>,
    /// The name of the client key the request came with (`[server] api_keys`).
    pub caller: Option<Arc<str>>,
    /// `x-sluice-route`
    pub route_hint: Option<String>,
    /// `x-sluice-tier`
    pub tier_hint: Option<String>,
    pub cache: CacheControl,
    pub started: Instant,
    /// The handler's `request` span: the pipeline records the route and final status on it.
    pub span: tracing::Span,
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
pub use crate::telemetry::metrics::CacheOutcome as CacheStatus;

/// How the request was served: becomes response headers, metrics and the audit record.
#[derive(Default, Clone)]
pub struct Meta {
    pub route: Option<Arc<str>>,
    pub route_id: Option<RouteId>,
    pub target: Option<TargetId>,
    pub attempts: Vec<Attempt>,
    pub cache: CacheStatus,
    pub similarity: Option<f32>,
    /// Time spent in upstream calls (all attempts).
    pub upstream: Option<Duration>,
    /// Streams: from the request's arrival to the first token.
    pub ttft: Option<Duration>,
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
    /// Queued, not awaited: the write happens off the response path (the span covers the
    /// policy checks, serialization and queueing, not the database write).
    fn store(self, resp: &ChatResponse) {
        let span = tracing::debug_span!("cache.write_back", queued = Empty);
        let _in = span.enter();
        let queued = self.cache.insert(self.key, resp, &self.policy, self.ttl);
        span.record("queued", queued);
    }
}

/// Serve one request and record it (audit + metrics): non-streaming replies now, streams when
/// they end (or their client goes away).
pub async fn chat(
    s: &Arc<AppState>,
    req: ChatRequest,
    ctx: RequestCtx,
) -> (Meta, Result<Reply, ApiError>) {
    let info = RequestInfo::new(&req, &ctx, s.config.accounting.log_prompts);
    let mut guard = Unfinished {
        s,
        info: Some(info),
        meta: Meta::default(),
    };
    let result = serve(s, req, &ctx, &mut guard.meta).await;
    let (mut info, meta) = guard.disarm();
    let result = match result {
        Ok(Reply::Complete(resp)) => {
            if let (Some(log), Some(choice)) = (&mut info.prompt, resp.choices.first()) {
                log.answer = PromptLog::digest(&choice.message.text());
            }
            record::finish(s, &mut info, &meta, 200, None, resp.usage, None);
            Ok(Reply::Complete(resp))
        }
        Ok(Reply::Stream(events)) => Ok(Reply::Stream(stream::recorded(
            s.clone(),
            info,
            &meta,
            events,
        ))),
        Err(e) => {
            record::failed(s, &mut info, &meta, &e);
            Err(e)
        }
    };
    (meta, result)
}

/// Records a request whose future was dropped before it finished (the client went away while
/// a non-streaming answer was on its way): upstream work may already have been paid for.
struct Unfinished<'a> {
    s: &'a AppState,
    info: Option<RequestInfo>,
    meta: Meta,
}

impl Unfinished<'_> {
    fn disarm(mut self) -> (RequestInfo, Meta) {
        let info = self.info.take().expect("disarmed once");
        (info, std::mem::take(&mut self.meta))
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if let Some(mut info) = self.info.take() {
            record::finish(
                self.s,
                &mut info,
                &self.meta,
                499,
                Some("client_closed"),
                None,
                None,
            );
        }
    }
}

async fn serve(
    s: &Arc<AppState>,
    req: ChatRequest,
    ctx: &RequestCtx,
    meta: &mut Meta,
) -> Result<Reply, ApiError> {
    let plan = s
        .router
        .plan(&req, ctx.route_hint.as_deref(), ctx.tier_hint.as_deref())?;
    meta.route = Some(plan.route_name.clone());
    meta.route_id = plan.route;
    ctx.span.record("route", &*plan.route_name);

    // 1. Cache lookup.
    let mut write_back = None;
    if let Some((cache, key, policy)) = cache_for(s, &plan, &req) {
        if !ctx.cache.read {
            meta.cache = CacheStatus::Bypass;
        } else {
            if let Some(hit) = lookup(s, cache, &key, policy, meta).await {
                return Ok(stream::replay(hit, &req));
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
        return Err(ApiError::CacheMiss);
    }

    // 2. Run the plan (failover loop), 3. write back.
    if !req.stream {
        return match s.router.complete(&plan, &req, &s.providers).await {
            Ok(done) => {
                meta.target = Some(done.target);
                meta.upstream = Some(upstream_time(&done.attempts, done.upstream_ms));
                meta.attempts = done.attempts;
                if let Some(wb) = write_back {
                    wb.store(&done.response);
                }
                Ok(Reply::Complete(done.response))
            }
            Err(f) => {
                meta.upstream = Some(upstream_time(&f.attempts, 0.0));
                meta.attempts = f.attempts;
                Err(f.error)
            }
        };
    }
    let deadline = tokio::time::Instant::from_std(ctx.started) + plan.policy.total_timeout;
    match s.router.start_stream(&plan, &req, &s.providers).await {
        Ok(mut started) => {
            meta.target = Some(started.target);
            meta.ttft = Some(ctx.started.elapsed());
            meta.upstream = Some(upstream_time(&started.attempts, started.first_token_ms));
            meta.attempts = std::mem::take(&mut started.attempts);
            let events = stream::relay(s.clone(), started, deadline, write_back);
            Ok(Reply::Stream(events))
        }
        Err(f) => {
            meta.upstream = Some(upstream_time(&f.attempts, 0.0));
            meta.attempts = f.attempts;
            Err(f.error)
        }
    }
}

/// Look the request up in its own span; sets `meta.cache` and `meta.similarity`. A failed
/// lookup counts as a miss.
async fn lookup(
    s: &AppState,
    cache: &SemanticCache,
    key: &CacheKey,
    policy: &CachePolicy,
    meta: &mut Meta,
) -> Option<ChatResponse> {
    meta.cache = CacheStatus::Miss;
    let span = tracing::debug_span!(
        "cache.lookup",
        outcome = Empty,
        miss_reason = Empty,
        similarity = Empty
    );
    let result = cache
        .lookup_outcome(key, policy)
        .instrument(span.clone())
        .await;
    let _in = span.enter();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            span.record("outcome", "error");
            tracing::warn!(error = %e, "cache lookup failed; treating as a miss");
            return None;
        }
    };
    if let Some(d) = outcome.embed_time {
        s.metrics.observe_embedding(d);
    }
    if let Some(d) = outcome.search_time {
        s.metrics.observe_index_lookup(d);
    }
    let Some(hit) = outcome.hit else {
        span.record("outcome", meta.cache.as_str());
        if let Some(m) = &outcome.miss {
            span.record("miss_reason", m.metric_label());
        }
        return None;
    };
    meta.cache = match hit.kind {
        HitKind::Exact => CacheStatus::HitExact,
        HitKind::Semantic => CacheStatus::HitSemantic,
    };
    meta.similarity = Some(hit.similarity);
    span.record("outcome", meta.cache.as_str());
    span.record("similarity", f64::from(hit.similarity));
    Some(hit.response)
}

/// `POST /v1/embeddings`: pass-through to the OpenAI-compatible providers serving the model,
/// through the same failover loop, recorded like any call.
pub async fn embeddings(
    s: &Arc<AppState>,
    body: serde_json::Map<String, serde_json::Value>,
    model: &str,
    ctx: RequestCtx,
) -> (Meta, Result<serde_json::Value, ApiError>) {
    let mut info = RequestInfo::other(model, &ctx);
    let mut meta = Meta::default();
    let result = match s.router.plan_embeddings(model) {
        Err(e) => Err(e),
        Ok(plan) => {
            meta.route = Some(plan.route_name.clone());
            ctx.span.record("route", &*plan.route_name);
            match s.router.embeddings(&plan, &body, &s.providers).await {
                Ok((target, value, attempts, ms)) => {
                    meta.target = Some(target);
                    meta.upstream = Some(upstream_time(&attempts, ms));
                    meta.attempts = attempts;
                    Ok(value)
                }
                Err(f) => {
                    meta.upstream = Some(upstream_time(&f.attempts, 0.0));
                    meta.attempts = f.attempts;
                    Err(f.error)
                }
            }
        }
    };
    match &result {
        Ok(v) => {
            let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap_or(0) as u32;
            record::finish(
                s,
                &mut info,
                &meta,
                200,
                None,
                Some(Usage::new(prompt, 0)),
                None,
            );
        }
        Err(e) => record::failed(s, &mut info, &meta, e),
    }
    (meta, result)
}

/// Failed attempts' time plus the successful one's (its precise duration, not the rounded
/// figure in the attempt list).
fn upstream_time(attempts: &[Attempt], ok_ms: f64) -> Duration {
    let failed: u64 = attempts
        .iter()
        .filter(|a| a.outcome != "ok")
        .map(|a| a.elapsed_ms)
        .sum();
    Duration::from_secs_f64((failed as f64 + ok_ms) / 1000.0)
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

/// Usage to record when the provider reported none: estimated, and marked so.
fn estimate_usage(prompt_tokens: u32, output_chars: usize) -> Usage {
    Usage::new(
        prompt_tokens,
        chat::estimate_tokens_from_chars(output_chars),
    )
}
