//! One request's whole flow: lookup -> plan -> run -> write back -> record.
//!
//! Each stage runs in its own debug-level span inside the handler's `request` span
//! (`cache.lookup`, `attempt` in the router, `cache.write_back`, `audit.record`); see
//! `telemetry` for why debug.

mod cached;
pub mod feedback;
mod judge;
mod record;
mod relay;
mod routed;
mod stream;
pub mod teach;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;

use crate::accounting::audit::PromptLog;
use crate::chat::{self, ChatChunk, ChatRequest, ChatResponse, TokenUsage, Usage};
use crate::config::{RouteId, TargetId};
use crate::error::ApiError;
use crate::outcome::{Attempt, CacheOutcome};
use crate::provider::ProviderError;
use crate::router::{Decision, FailReason, Failure, RouteError, RunOptions};
use crate::state::AppState;
use crate::wire::Dialect;

use record::Ending;
pub use record::{record_refused, Refused, RequestInfo};

/// On a response whose request the pipeline recorded (the audit layer records the others).
#[derive(Debug, Clone, Copy)]
pub struct Recorded;

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
    /// `x-mock-fault`: passed to simulated providers only (demo and test gateways).
    pub sim_faults: Option<String>,
    /// `x-sluice-timeout-ms`: the client's own deadline, when shorter than the route's.
    pub timeout: Option<Duration>,
    /// The client key (with keys on): what routes, models and tiers it may use.
    pub key: Option<Arc<crate::access::Key>>,
    /// The API the client speaks (for the audit: the answer's shape is the handler's business).
    pub dialect: Dialect,
}

impl RequestCtx {
    /// What every upstream attempt of this request gets: its deadline (from its arrival: the
    /// route's `total`, or the client's own when shorter) and the fault header for simulated
    /// providers.
    fn run_options(&self, total: Duration) -> RunOptions<'_> {
        let budget = self.timeout.map_or(total, |t| t.min(total));
        RunOptions {
            deadline: tokio::time::Instant::from_std(self.started) + budget,
            sim_faults: self.sim_faults.as_deref(),
        }
    }
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

/// How the request was served: becomes response headers, metrics and the audit record.
#[derive(Default, Clone)]
pub struct Meta {
    pub route: Option<Arc<str>>,
    pub route_id: Option<RouteId>,
    /// The route's tier that served the request.
    pub tier: Option<usize>,
    /// How the route and tier were chosen.
    pub decision: Decision,
    pub target: Option<TargetId>,
    /// Every upstream attempt (shared with the error that lists them, if the request failed).
    pub attempts: Arc<[Attempt]>,
    pub cache: CacheOutcome,
    pub similarity: Option<f32>,
    /// Time spent in upstream calls (all attempts).
    pub upstream: Option<Duration>,
    /// Streams: from the request's arrival to the first token.
    pub ttft: Option<Duration>,
    /// A resumed stream: the targets whose part broke before `target` finished the answer,
    /// each with the (estimated) usage of its part, which the recorded usage includes.
    pub earlier: Vec<(TargetId, Usage)>,
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

/// What a reply stream tells its recorder: the client's items, and what they do not show.
enum Event {
    Out(StreamItem),
    /// The stream broke at `from` and `to` continues it: every attempt so far, and the usage
    /// billed for `from`'s part (estimated).
    Resumed {
        attempts: Arc<[Attempt]>,
        from: TargetId,
        billed: Usage,
        to: TargetId,
    },
}

type Events = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// What `serve` produced, before a stream is wrapped in its recorder.
enum Served {
    Complete(ChatResponse),
    Stream(Events),
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
        Ok(Served::Complete(resp)) => {
            if let (Some(log), Some(choice)) = (&mut info.prompt, resp.choices.first()) {
                log.answer = PromptLog::digest(&choice.message.text());
            }
            let usage = resp.usage.as_ref().map(Usage::tokens);
            record::finish(s, &mut info, &meta, Ending::answered(usage));
            Ok(Reply::Complete(resp))
        }
        Ok(Served::Stream(events)) => Ok(Reply::Stream(stream::recorded(
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
            record::finish(self.s, &mut info, &self.meta, Ending::CLIENT_CLOSED);
        }
    }
}

async fn serve(
    s: &Arc<AppState>,
    req: ChatRequest,
    ctx: &RequestCtx,
    meta: &mut Meta,
) -> Result<Served, ApiError> {
    // 0. Route -> tier, reading the prompt (one embedding) only when the plan needs it.
    let resolved = s
        .router
        .resolve(&req, ctx.route_hint.as_deref())
        .map_err(route_error)?;
    let read = routed::read(s, &req, &resolved, ctx.tier_hint.as_deref()).await;
    let plan = s
        .router
        .plan_with(
            &req,
            resolved,
            ctx.tier_hint.as_deref(),
            read.as_ref().map(routed::Read::signals),
        )
        .map_err(route_error)?;
    meta.route = Some(plan.route_name.clone());
    meta.route_id = plan.route;
    meta.tier = plan.tier;
    meta.decision = plan.decision;
    let tier_by = plan.tier.map(|_| plan.decision.tier_by);
    s.metrics
        .observe_routing(plan.route, plan.decision.route_by, tier_by);
    ctx.span.record("route", &*plan.route_name);
    allowed(s, ctx, plan.route.is_some(), &plan.route_name, &req.model)?;

    // 1. Cache lookup (with the prompt's parse and embedding, when routing made them).
    let parts = read.and_then(routed::Read::into_key_parts);
    let write_back = match cached::lookup(s, &plan, &req, ctx, meta, parts).await {
        cached::Lookup::Hit(hit) => return Ok(stream::replay(hit, &req)),
        cached::Lookup::Miss(write_back) => write_back,
    };
    if ctx.cache.only_if_cached {
        return Err(ApiError::CacheMiss);
    }

    // 2. Run the plan (failover loop), 3. write back.
    let ro = ctx.run_options(plan.policy.total_timeout);
    if !req.stream {
        let done = s
            .router
            .complete(&plan, &req, &s.providers, ro)
            .await
            .map_err(|f| meta.failed(s, f))?;
        meta.answered(done.target, done.attempts, done.upstream_ms);
        if let Some(wb) = write_back {
            wb.store(&done.value);
        }
        return Ok(Served::Complete(done.value));
    }
    let started = s
        .router
        .start_stream(&plan, &req, &s.providers, ro)
        .await
        .map_err(|f| meta.failed(s, f))?;
    meta.ttft = Some(ctx.started.elapsed());
    let origin = relay::Origin {
        attempts: started.attempts.clone(),
        deadline: ro.deadline,
        sim_faults: ctx.sim_faults.clone(),
        plan,
        req,
    };
    meta.answered(started.target, started.attempts, started.upstream_ms);
    let committed = relay::Committed {
        target: started.target,
        first_token_ms: started.upstream_ms,
        started: started.value,
    };
    Ok(Served::Stream(relay::relay(
        s.clone(),
        committed,
        origin,
        write_back,
    )))
}

/// May the request's key (or, without keys, anyone) use this route or model, and force its
/// tier? Checked after routing, before the cache or any upstream.
fn allowed(
    s: &AppState,
    ctx: &RequestCtx,
    routed: bool,
    route: &str,
    model: &str,
) -> Result<(), ApiError> {
    let forbidden = |message: String, code| Err(ApiError::Forbidden { message, code });
    let Some(key) = &ctx.key else {
        if ctx.tier_hint.is_some() && !s.config.server.tier_override {
            return forbidden(
                "x-sluice-tier is turned off ([server] tier_override = false)".into(),
                "tier_not_allowed",
            );
        }
        return Ok(());
    };
    let p = &key.policy;
    if routed && !p.may_use_route(route) {
        return forbidden(
            format!("Key \"{}\" may not use route `{route}`", key.name),
            "route_not_allowed",
        );
    }
    if !routed && !p.may_use_model(model) {
        return forbidden(
            format!("Key \"{}\" may not use model `{model}`", key.name),
            "model_not_allowed",
        );
    }
    if let Some(tier) = &ctx.tier_hint {
        if !p.may_force_tier(tier) {
            return forbidden(
                format!(
                    "Key \"{}\" may not force tier `{tier}` (x-sluice-tier): its `tiers` do not list it",
                    key.name
                ),
                "tier_not_allowed",
            );
        }
    }
    Ok(())
}

impl Meta {
    /// A target answered after `attempts` (the last one its own, which took `ok_ms`).
    fn answered(&mut self, target: TargetId, attempts: Vec<Attempt>, ok_ms: f64) {
        self.target = Some(target);
        self.upstream = Some(upstream_time(&attempts, ok_ms));
        self.attempts = attempts.into();
    }

    /// The plan failed: keeps its attempts and returns the client's error.
    fn failed(&mut self, s: &AppState, f: Failure) -> ApiError {
        self.upstream = Some(upstream_time(&f.attempts, 0.0));
        self.attempts = f.attempts.into();
        failure_error(s, f.reason, &self.attempts)
    }
}

/// A routing failure as the client's error.
fn route_error(e: RouteError) -> ApiError {
    let message = e.to_string();
    match e {
        RouteError::UnknownRoute(_) => ApiError::BadRequest {
            message,
            param: None,
            code: Some("route_not_found"),
        },
        RouteError::UnknownTier { .. } => ApiError::BadRequest {
            message,
            param: None,
            code: Some("tier_not_found"),
        },
        RouteError::ModelNotFound(model) => ApiError::ModelNotFound(model),
    }
}

/// The failover loop's verdict as the client's error: the one place where upstream outcomes
/// become statuses.
fn failure_error(s: &AppState, reason: FailReason, attempts: &Arc<[Attempt]>) -> ApiError {
    match reason {
        FailReason::Exhausted { deadline } => ApiError::AllTargetsFailed {
            attempts: attempts.clone(),
            deadline,
        },
        FailReason::Rejected { target, error } => match error {
            ProviderError::Status {
                status,
                kind,
                code,
                message,
                retry_after: _,
            } => ApiError::Upstream {
                status,
                message,
                kind,
                code,
                target: s.config.target(target).name.clone(),
            },
            // The loop rejects only on statuses; anything else is a bug worth a 500.
            e @ (ProviderError::Connect(_)
            | ProviderError::Timeout(_)
            | ProviderError::Protocol(_)
            | ProviderError::StreamCut(_)
            | ProviderError::Diverged) => ApiError::Internal(e.to_string()),
        },
    }
}

/// `POST /v1/messages/count_tokens`: the prompt's estimated size (the rule routing and usage
/// estimates use), once the request's model is known to name a route or a model. Nothing goes
/// upstream and nothing is recorded.
pub fn count_tokens(s: &AppState, req: &ChatRequest, ctx: &RequestCtx) -> Result<u32, ApiError> {
    let plan = s
        .router
        .plan(req, ctx.route_hint.as_deref(), ctx.tier_hint.as_deref())
        .map_err(route_error)?;
    allowed(s, ctx, plan.route.is_some(), &plan.route_name, &req.model)?;
    Ok(req.estimate_prompt_tokens())
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
    let result = async {
        let plan = s.router.plan_embeddings(model).map_err(route_error)?;
        meta.route = Some(plan.route_name.clone());
        ctx.span.record("route", &*plan.route_name);
        allowed(s, &ctx, false, &plan.route_name, model)?;
        let ro = ctx.run_options(plan.policy.total_timeout);
        let done = s
            .router
            .embeddings(&plan, &body, &s.providers, ro)
            .await
            .map_err(|f| meta.failed(s, f))?;
        meta.answered(done.target, done.attempts, done.upstream_ms);
        Ok::<_, ApiError>(done.value)
    }
    .await;
    match &result {
        Ok(v) => {
            let prompt = chat::count_of(&v["usage"]["prompt_tokens"]).unwrap_or(0);
            let usage = TokenUsage::new(prompt, 0);
            record::finish(s, &mut info, &meta, Ending::answered(Some(usage)));
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
        .filter(|a| !a.outcome.is_ok())
        .map(|a| a.elapsed_ms)
        .sum();
    Duration::from_secs_f64((failed as f64 + ok_ms) / 1000.0)
}

/// Usage to record when the provider reported none: estimated, and marked so.
fn estimate_usage(prompt_tokens: u32, output_chars: usize) -> TokenUsage {
    TokenUsage::new(
        prompt_tokens,
        chat::estimate_tokens_from_chars(output_chars),
    )
}
