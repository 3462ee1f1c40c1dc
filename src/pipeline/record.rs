//! Recording a finished request: one audit record (queued to the audit writer, off the
//! response path) and the matching metrics observation.

use std::time::Instant;

use super::{estimate_usage, Meta, RequestCtx};
use crate::accounting::audit::PromptLog;
use crate::accounting::audit::RequestTags;
use crate::accounting::{
    unix_ms_now, AuditAttempt, AuditRecord, CostInput, CostParts, Costs, RoutingDetail, UsageDetail,
};
use crate::chat::{ChatRequest, Role, TokenUsage};
use crate::config::Mode;
use crate::config::TargetId;
use crate::error::ApiError;
use crate::outcome::{CacheOutcome, FailureClass, Outcome};
use crate::router::PASSTHROUGH;
use crate::state::AppState;
use crate::telemetry::metrics::{Observation, RouteSlot};
use crate::wire::Dialect;

/// What the record needs from the request, taken before the request moves on.
pub struct RequestInfo {
    time_ms: u64,
    started: Instant,
    request_id: std::sync::Arc<str>,
    caller: Option<std::sync::Arc<str>>,
    requested_model: String,
    stream: bool,
    pub(super) include_usage: bool,
    prompt_tokens_estimate: u32,
    /// The `request` span: streams are recorded after the handler returned.
    pub(super) span: tracing::Span,
    /// `[accounting] log_prompts`: the request's text; the answer digest is filled in when the
    /// answer is known.
    pub(super) prompt: Option<PromptLog>,
    dialect: Dialect,
}

impl RequestInfo {
    /// `log_prompts`: keep the request's text for the audit record (`[accounting] log_prompts`).
    pub fn new(req: &ChatRequest, ctx: &RequestCtx, log_prompts: bool) -> Self {
        RequestInfo {
            time_ms: unix_ms_now().saturating_sub(ctx.started.elapsed().as_millis() as u64),
            started: ctx.started,
            request_id: ctx.request_id.clone(),
            caller: ctx.caller.clone(),
            requested_model: req.model.clone(),
            stream: req.stream,
            include_usage: req.include_usage(),
            prompt_tokens_estimate: req.estimate_prompt_tokens(),
            span: ctx.span.clone(),
            prompt: log_prompts.then(|| prompt_log(req)),
            dialect: ctx.dialect,
        }
    }

    /// For calls that are not chat completions (embeddings).
    pub fn other(model: &str, ctx: &RequestCtx) -> Self {
        RequestInfo {
            time_ms: unix_ms_now().saturating_sub(ctx.started.elapsed().as_millis() as u64),
            started: ctx.started,
            request_id: ctx.request_id.clone(),
            caller: ctx.caller.clone(),
            requested_model: model.to_owned(),
            stream: false,
            include_usage: false,
            prompt_tokens_estimate: 0,
            span: ctx.span.clone(),
            prompt: None,
            dialect: ctx.dialect,
        }
    }
}

/// The last user turn, and every other message as `role: text` lines before it.
fn prompt_log(req: &ChatRequest) -> PromptLog {
    let last_user = req.messages.iter().rposition(|m| m.role == Role::User);
    let mut context = String::new();
    for (i, m) in req.messages.iter().enumerate() {
        if Some(i) == last_user {
            continue;
        }
        if !context.is_empty() {
            context.push('\n');
        }
        context.push_str(m.role.as_str());
        context.push_str(": ");
        context.push_str(&m.text());
    }
    PromptLog {
        context,
        prompt: last_user
            .map(|i| req.messages[i].text())
            .unwrap_or_default(),
        answer: None,
    }
}

/// How a request ended, for its record.
pub(super) struct Ending {
    /// The status the client got (200 for a stream that started, whatever happened later).
    pub status: u16,
    /// `ApiError::metric_label()` of a failure.
    pub error: Option<&'static str>,
    /// The provider's usage (or the cached answer's), read from its `usage`; `None`: estimated
    /// from the prompt and `output_chars`, and marked as estimated.
    pub usage: Option<TokenUsage>,
    pub output_chars: usize,
}

impl Ending {
    /// The client went away before the end (nginx's 499 "client closed request").
    pub const CLIENT_CLOSED: Ending = Ending {
        status: 499,
        error: Some("client_closed"),
        usage: None,
        output_chars: 0,
    };

    /// A complete non-streaming answer.
    pub fn answered(usage: Option<TokenUsage>) -> Ending {
        Ending {
            status: 200,
            error: None,
            usage,
            output_chars: 0,
        }
    }

    pub fn failed(e: &ApiError) -> Ending {
        Ending {
            status: e.status_code().as_u16(),
            error: Some(e.metric_label()),
            usage: None,
            output_chars: 0,
        }
    }
}

/// Record a request that ended in `e`.
pub(super) fn failed(s: &AppState, info: &mut RequestInfo, meta: &Meta, e: &ApiError) {
    finish(s, info, meta, Ending::failed(e));
}

/// Record a finished request. The prompt log moves into the record (a request is recorded
/// once).
pub(super) fn finish(s: &AppState, info: &mut RequestInfo, meta: &Meta, end: Ending) {
    let Ending {
        status,
        error,
        usage,
        output_chars,
    } = end;
    let total = info.started.elapsed();
    info.span.record("status", status);
    if status >= 500 {
        if let Some(e) = error {
            info.span.record("error", e);
        }
    }
    // Explicit parent: a stream's last record can run after the request span was left.
    let span = tracing::debug_span!(parent: &info.span, "audit.record");
    let _in = span.enter();
    let (usage, estimated) = match usage {
        Some(u) => (u, !meta.earlier.is_empty()),
        None if meta.target.is_some() => (
            estimate_usage(info.prompt_tokens_estimate, output_chars),
            true,
        ),
        // Nothing was generated (refused before or by every upstream).
        None => (TokenUsage::default(), false),
    };
    let mut costs = costs(s, meta, usage);
    // Non-streaming attempts abandoned on a timeout after the request was sent: the provider
    // may have generated (and billed) an answer nobody received. Their estimated cost (the
    // prompt, and an answer as long as the one served) is recorded, not silently lost.
    let abandoned = if info.stream {
        Vec::new()
    } else {
        abandoned_attempts(s, meta)
    };
    let estimated = estimated || !abandoned.is_empty();
    for target in abandoned {
        let part = TokenUsage::new(info.prompt_tokens_estimate, usage.output);
        let c = s.accountant.costs(&CostInput {
            route: meta.route_id,
            answered_by: Some(target),
            cache: CacheOutcome::Miss,
            usage: part,
        });
        costs = add_costs(
            costs,
            Costs {
                cost_avoided_usd: Some(0.0),
                ..c
            },
        );
    }
    // A hit's usage is the original answer's: its cache reads were that call's.
    let upstream_answered = meta.target.is_some() && !meta.cache.is_hit();
    let slot = match (meta.route_id, &meta.route) {
        (Some(r), _) => RouteSlot::Route(r),
        (None, Some(name)) if &**name == PASSTHROUGH => RouteSlot::Passthrough,
        _ => RouteSlot::Unrouted,
    };
    s.metrics.observe(&Observation {
        route: slot,
        target: meta.target,
        status,
        cache: meta.cache,
        input_tokens: usage.input,
        output_tokens: usage.output,
        cache_read_tokens: if upstream_answered {
            usage.cache_read
        } else {
            0
        },
        cache_write_tokens: if upstream_answered {
            usage.cache_write
        } else {
            0
        },
        cost_usd: costs.cost_usd,
        cost_avoided_usd: costs.cost_avoided_usd,
        total,
        upstream: meta.upstream,
        ttft: meta.ttft,
    });
    if let Some(caller) = &info.caller {
        s.access.charge(
            caller,
            info.time_ms,
            costs.cost_usd,
            u64::from(usage.input) + u64::from(usage.output),
        );
    }
    s.audit.record(AuditRecord {
        time_ms: info.time_ms,
        request_id: info.request_id.to_string(),
        caller: info.caller.as_deref().map(str::to_owned),
        route: meta.route.as_deref().unwrap_or("(none)").to_owned(),
        requested_model: info.requested_model.clone(),
        target: meta.target.map(|t| s.config.target(t).name.clone()),
        attempts: meta.attempts.iter().map(AuditAttempt::from).collect(),
        cache: meta.cache,
        similarity: meta.similarity,
        stream: info.stream,
        input_tokens: usage.input,
        output_tokens: usage.output,
        usage_estimated: estimated,
        cost_usd: costs.cost_usd,
        cost_avoided_usd: costs.cost_avoided_usd,
        total_ms: total.as_millis() as u64,
        upstream_ms: meta.upstream.map(|d| d.as_millis() as u64),
        ttft_ms: meta.ttft.map(|d| d.as_millis() as u64),
        status,
        error: error.map(str::to_owned),
        prompt: info.prompt.take(),
        detail: UsageDetail::new(usage, costs.parts),
        tags: RequestTags {
            api: info.dialect,
            observe: meta.route.is_some() && s.accountant.mode(meta.route_id) == Mode::Observe,
        },
        routing: routing_detail(s, meta),
        feedback: None,
    });
}

/// A request that never reached the pipeline (refused by a guard, or a handler before it).
pub struct Refused {
    pub started: Instant,
    pub request_id: std::sync::Arc<str>,
    pub caller: Option<std::sync::Arc<str>>,
    pub status: u16,
    pub error: Option<&'static str>,
    /// The API of the path it came to.
    pub dialect: crate::wire::Dialect,
}

/// Records a request refused before the pipeline: no route, no target, no tokens.
pub fn record_refused(s: &AppState, r: Refused) {
    let total = r.started.elapsed();
    s.metrics.observe(&Observation {
        route: RouteSlot::Unrouted,
        target: None,
        status: r.status,
        cache: crate::outcome::CacheOutcome::Off,
        input_tokens: 0,
        output_tokens: 0,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cost_usd: Some(0.0),
        cost_avoided_usd: Some(0.0),
        total,
        upstream: None,
        ttft: None,
    });
    s.audit.record(AuditRecord {
        time_ms: unix_ms_now().saturating_sub(total.as_millis() as u64),
        request_id: r.request_id.to_string(),
        caller: r.caller.as_deref().map(str::to_owned),
        route: "(none)".to_owned(),
        requested_model: String::new(),
        target: None,
        attempts: Vec::new(),
        cache: crate::outcome::CacheOutcome::Off,
        similarity: None,
        stream: false,
        input_tokens: 0,
        output_tokens: 0,
        usage_estimated: false,
        cost_usd: Some(0.0),
        cost_avoided_usd: Some(0.0),
        total_ms: total.as_millis() as u64,
        upstream_ms: None,
        ttft_ms: None,
        status: r.status,
        error: r.error.map(str::to_owned),
        prompt: None,
        detail: UsageDetail::default(),
        tags: RequestTags {
            api: r.dialect,
            observe: false,
        },
        routing: RoutingDetail::default(),
        feedback: None,
    });
}

/// Targets of the attempts that timed out waiting for a whole (non-streaming) answer: sent,
/// so possibly billed, and abandoned for the next attempt.
fn abandoned_attempts(s: &AppState, meta: &Meta) -> Vec<TargetId> {
    meta.attempts
        .iter()
        .filter(|a| {
            a.status.is_none()
                && matches!(
                    a.outcome,
                    Outcome::Failed {
                        class: FailureClass::Timeout | FailureClass::Deadline,
                        ..
                    }
                )
        })
        .filter_map(|a| {
            let i = s.config.targets.iter().position(|t| t.name == a.target)?;
            Some(TargetId(i))
        })
        .collect()
}

/// How the route and tier were chosen, for the record (nothing for requests never routed).
fn routing_detail(s: &AppState, meta: &Meta) -> RoutingDetail {
    if meta.route.is_none() {
        return RoutingDetail::default();
    }
    let d = &meta.decision;
    let tier = meta
        .route_id
        .zip(meta.tier)
        .and_then(|(r, t)| s.config.routes[r.0].tiers.get(t));
    RoutingDetail {
        route_by: Some(d.route_by),
        auto_route: d.auto.map(|a| s.config.auto(a).name.clone()),
        route_confidence: d.confidence,
        tier: tier.map(|t| t.name.clone()),
        tier_by: tier.map(|_| d.tier_by),
        difficulty: d.difficulty,
        cluster: d.cluster,
    }
}

/// Cost and cost avoided of `usage`: all at the answering target, or for a resumed stream each
/// earlier target's part at its price and the rest at the target that finished it (a cost is
/// unknown when any part's is).
fn costs(s: &AppState, meta: &Meta, usage: TokenUsage) -> Costs {
    let cost = |target: Option<TargetId>, u: TokenUsage| {
        s.accountant.costs(&CostInput {
            route: meta.route_id,
            answered_by: target,
            cache: meta.cache,
            usage: u,
        })
    };
    if meta.earlier.is_empty() {
        return cost(meta.target, usage);
    }
    let mut last = usage;
    let mut total = Costs {
        cost_usd: Some(0.0),
        parts: Some(CostParts::default()),
        cost_avoided_usd: Some(0.0),
        price_unknown: false,
    };
    for (target, part) in &meta.earlier {
        let part = part.tokens();
        last = TokenUsage {
            input: last.input.saturating_sub(part.input),
            output: last.output.saturating_sub(part.output),
            ..last
        }
        .clamped();
        total = add_costs(total, cost(Some(*target), part));
    }
    add_costs(total, cost(meta.target, last))
}

fn add_costs(a: Costs, b: Costs) -> Costs {
    let add = |x: Option<f64>, y: Option<f64>| x.zip(y).map(|(x, y)| x + y);
    Costs {
        cost_usd: add(a.cost_usd, b.cost_usd),
        parts: a.parts.zip(b.parts).map(|(x, y)| CostParts {
            input_usd: x.input_usd + y.input_usd,
            cache_read_usd: x.cache_read_usd + y.cache_read_usd,
            cache_write_usd: x.cache_write_usd + y.cache_write_usd,
            output_usd: x.output_usd + y.output_usd,
            provider_cache_saved_usd: x.provider_cache_saved_usd + y.provider_cache_saved_usd,
        }),
        cost_avoided_usd: add(a.cost_avoided_usd, b.cost_avoided_usd),
        price_unknown: a.price_unknown || b.price_unknown,
    }
}
