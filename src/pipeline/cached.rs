//! The pipeline's side of the cache: whose entries a request may see (its scope), the lookup in
//! its own span, and the write-back of a fresh answer (which also carries the verification of a
//! gray-zone candidate, and starts a judge when the route asks for one).

use std::sync::Arc;
use std::time::Duration;

use tracing::field::Empty;
use tracing::Instrument;

use super::{Meta, RequestCtx};
use crate::cache::{CacheKey, HitKind, KeyScope, SemanticCache, Verification};
use crate::chat::{ChatRequest, ChatResponse};
use crate::config::{CachePolicy, CacheScope, Mode, RouteId, Verify};
use crate::outcome::CacheOutcome;
use crate::router::Plan;
use crate::state::AppState;
use crate::text::Parsed;

pub(super) enum Lookup {
    Hit(ChatResponse),
    /// A miss, and how the fresh answer goes into the cache (if it may).
    Miss(Option<Box<WriteBack>>),
}

/// A fresh answer's way into the cache once it is known to be complete.
pub(super) struct WriteBack {
    s: Arc<AppState>,
    key: CacheKey,
    /// Whose cache policy applies (`None`: pass-through).
    route: Option<RouteId>,
    /// Only shortens the policy's TTL.
    ttl: Option<Duration>,
    /// Store the answer (false: only verify).
    store: bool,
    verify: Option<Verification>,
}

impl WriteBack {
    /// Queued, not awaited: the write happens off the response path (the span covers the
    /// policy checks, serialization and queueing, not the database write).
    pub(super) fn store(self, resp: &ChatResponse) {
        let span = tracing::debug_span!("cache.write_back", queued = Empty);
        let _in = span.enter();
        let WriteBack {
            s,
            key,
            route,
            ttl,
            store,
            verify,
        } = self;
        let Some(cache) = s.cache.as_ref() else {
            return;
        };
        let policy = policy_of(&s, route);
        if let Some(v) = verify {
            // Answers are compared by text when they are short; a long one goes to the judge
            // (when the route has one) instead.
            if policy.verify == Verify::Judge && crate::cache::answer_text(resp).is_none() {
                super::judge::spawn(&s, &key, policy, v);
            } else {
                cache.verify(key.route(), v, resp);
            }
        }
        if store {
            let queued = cache.insert(key, resp, policy, ttl);
            span.record("queued", queued);
        }
    }
}

/// Looks the request up (in its own span, setting `meta.cache` and `meta.similarity`); a failed
/// lookup counts as a miss.
pub(super) async fn lookup(
    s: &Arc<AppState>,
    plan: &Plan,
    req: &ChatRequest,
    ctx: &RequestCtx,
    meta: &mut Meta,
    parsed: Option<(Parsed, Option<Vec<f32>>)>,
) -> Lookup {
    let Some((cache, key, policy)) = cache_for(s, plan, req, ctx, parsed).await else {
        return Lookup::Miss(None);
    };
    // A request that skips the lookup (`refresh`, `no-cache`) writes only into its own scope:
    // on a shared route its answer is not stored, so nobody can plant an answer for others.
    let shared = policy.scope == CacheScope::Shared;
    let write = ctx.cache.write && (ctx.cache.read || !shared);
    let mut write_back = WriteBack {
        s: s.clone(),
        key,
        route: plan.route,
        ttl: ctx.cache.ttl,
        store: write,
        verify: None,
    };
    if !ctx.cache.read {
        meta.cache = CacheOutcome::Bypass;
        return Lookup::Miss(write.then(|| Box::new(write_back)));
    }
    meta.cache = CacheOutcome::Miss;
    let span = tracing::debug_span!(
        "cache.lookup",
        outcome = Empty,
        miss_reason = Empty,
        similarity = Empty
    );
    let result = cache
        .lookup_outcome(&write_back.key, policy)
        .instrument(span.clone())
        .await;
    let _in = span.enter();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            span.record("outcome", "error");
            tracing::warn!(error = %e, "cache lookup failed; treating as a miss");
            return Lookup::Miss(write.then(|| Box::new(write_back)));
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
        write_back.verify = outcome.verify.filter(|_| policy.verify != Verify::Off);
        let useful = write || write_back.verify.is_some();
        return Lookup::Miss(useful.then(|| Box::new(write_back)));
    };
    meta.cache = match hit.kind {
        HitKind::Exact => CacheOutcome::HitExact,
        HitKind::Semantic => CacheOutcome::HitSemantic,
    };
    meta.similarity = Some(hit.similarity);
    span.record("outcome", meta.cache.as_str());
    span.record("similarity", f64::from(hit.similarity));
    Lookup::Hit(hit.response)
}

/// Prompts with more text than this have their key built on the blocking pool: reading a prompt
/// is linear, but a few hundred KiB of it still take milliseconds an async worker owes others.
pub(super) const OFFLOAD_PROMPT_BYTES: usize = 64 * 1024;

/// The cache, key and policy for this request, when caching applies at all. A prompt over
/// `[server] max_cache_prompt_bytes` is served uncached (its text is never analysed).
async fn cache_for<'a>(
    s: &'a AppState,
    plan: &Plan,
    req: &ChatRequest,
    ctx: &RequestCtx,
    parsed: Option<(Parsed, Option<Vec<f32>>)>,
) -> Option<(&'a SemanticCache, CacheKey, &'a CachePolicy)> {
    let cache = s.cache.as_ref()?;
    // A store out of service after a storage fault: served uncached until it reopens.
    if !cache.store().is_healthy() {
        return None;
    }
    let policy = policy_of(s, plan.route);
    let mode = match plan.route {
        Some(r) => s.config.routes[r.0].accounting.mode,
        None => s.config.passthrough_accounting.mode,
    };
    if !policy.enabled || mode == Mode::Observe {
        return None;
    }
    let owner = owner(s, policy, req, ctx)?;
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
    // Which of the plan's providers the built-in simulator answers for: once a real key is set
    // for one of them, what the simulator answered is no longer served.
    let mut simulated: Vec<&str> = plan
        .targets
        .iter()
        .map(|t| s.config.provider(s.config.target(*t).provider))
        .filter(|p| p.simulated)
        .map(|p| p.name.as_str())
        .collect();
    simulated.sort_unstable();
    simulated.dedup();
    let size: usize = req.messages.iter().map(|m| m.text_len()).sum();
    if size > s.config.server.max_cache_prompt_bytes {
        tracing::debug!(
            bytes = size,
            "prompt over max_cache_prompt_bytes: served uncached"
        );
        return None;
    }
    let scope = KeyScope {
        owner: owner.as_deref(),
        route: &plan.route_name,
        target,
        simulated: &simulated,
    };
    // The router's parse and embedding of the same turn, when it made them: not done twice.
    if let Some((parsed, vector)) = parsed {
        let key = CacheKey::from_parsed(req, &scope, parsed)?;
        if let Some(v) = vector {
            key.set_vector(v);
        }
        return Some((cache, key, policy));
    }
    if size <= OFFLOAD_PROMPT_BYTES {
        return Some((cache, CacheKey::new(req, &scope)?, policy));
    }
    // Off the async workers: the copy is linear and small beside the analysis it moves.
    let (req, owner, route, target) = (
        req.clone(),
        owner,
        plan.route_name.to_string(),
        target.to_owned(),
    );
    let simulated: Vec<String> = simulated.into_iter().map(str::to_owned).collect();
    let key = tokio::task::spawn_blocking(move || {
        let simulated: Vec<&str> = simulated.iter().map(String::as_str).collect();
        CacheKey::new(
            &req,
            &KeyScope {
                owner: owner.as_deref(),
                route: &route,
                target: &target,
                simulated: &simulated,
            },
        )
    })
    .await
    .ok()??;
    Some((cache, key, policy))
}

/// The cache policy of a route, or of pass-through requests.
fn policy_of(s: &AppState, route: Option<RouteId>) -> &CachePolicy {
    match route {
        Some(r) => &s.config.routes[r.0].cache,
        None => &s.config.cache,
    }
}

/// The owner of the request's cache scope: `Some(None)` for a shared scope, `None` when the
/// request cannot be cached (a `user` scope and no user named).
fn owner(
    s: &AppState,
    policy: &CachePolicy,
    req: &ChatRequest,
    ctx: &RequestCtx,
) -> Option<Option<String>> {
    let caller = s
        .access
        .keys_on()
        .then_some(ctx.caller.as_deref())
        .flatten();
    match policy.scope {
        CacheScope::Shared => Some(None),
        CacheScope::Caller => Some(caller.map(|c| format!("caller:{c}"))),
        CacheScope::User => {
            let user = match &policy.user_key {
                None => req.user.clone(),
                Some(k) => req
                    .metadata
                    .as_ref()
                    .and_then(|m| m.get(k))
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
            }
            .filter(|u| !u.is_empty())?;
            Some(Some(match caller {
                Some(c) => format!("caller:{c}/user:{user}"),
                None => format!("user:{user}"),
            }))
        }
    }
}
