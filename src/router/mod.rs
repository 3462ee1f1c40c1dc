//! Routing: pick the route and tier for a request (`decide.rs`: named, or chosen from the prompt
//! by an auto route's classifier, `usecase.rs`; the tier by rules, the difficulty score,
//! `difficulty.rs`, or the learned policy, `learned.rs`, all assembled in `models.rs`), order the
//! tier's targets, and run the failover loop over them (`failover.rs`, one `calls.rs` kind of call per attempt, each within
//! its `deadline.rs` window), continue a stream that broke after output at another target
//! (`resume.rs`), tracking each target's health (`breaker.rs`, `retry_budget.rs`, latency EWMA).

pub mod breaker;
mod calls;
pub mod clusters;
pub mod cues;
mod deadline;
mod decide;
pub mod difficulty;
mod failover;
pub mod learned;
pub mod lexical;
pub mod models;
pub mod prompt;
mod resume;
mod retry_budget;
mod teach;
pub mod usecase;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::Rng;

use crate::chat::{ChatRequest, Role};
use crate::config::{Config, Policy, RouteConfig, RouteId, Rule, Strategy, TargetId};
use crate::telemetry::counters::TargetCounters;
use crate::telemetry::metrics::Metrics;

pub use breaker::{Breaker, BreakerState};
pub use deadline::{window_end, RunOptions};
pub use decide::{Decision, Resolved};
pub use failover::{error_detail, Done, FailReason, Failure, Started};
pub use models::Models;
pub use prompt::{Prompt, Signals};
pub use resume::Continued;
pub use retry_budget::RetryBudget;
pub use teach::{Rated, RoutingStats};

/// Why no plan could be made for a request.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// `x-sluice-route` names no route.
    #[error("Unknown route `{0}` in x-sluice-route")]
    UnknownRoute(String),
    /// `x-sluice-tier` names no tier of the route.
    #[error("Route `{route}` has no tier `{tier}`")]
    UnknownTier { route: String, tier: String },
    /// The model is neither a route nor a model of a configured provider.
    #[error("no route or model `{0}`")]
    ModelNotFound(String),
}

/// Route label used for plain model names that are no route.
pub const PASSTHROUGH: &str = "passthrough";

pub struct Router {
    pub config: Arc<Config>,
    health: Vec<TargetHealth>,
    /// Use-case classifier, difficulty model, learned policies.
    models: Models,
}

/// Live health of one target: its breaker, retry budget, failover counters and an EWMA of its
/// latency.
pub struct TargetHealth {
    pub breaker: Breaker,
    pub retry_budget: RetryBudget,
    /// Shared with the metrics (and with the streams the target's adapter returns).
    pub counters: Arc<TargetCounters>,
    /// f64 milliseconds as bits; 0 = not measured yet.
    latency_ewma_ms: AtomicU64,
}

impl TargetHealth {
    pub fn latency_ms(&self) -> Option<f64> {
        let v = f64::from_bits(self.latency_ewma_ms.load(Ordering::Relaxed));
        (v > 0.0).then_some(v)
    }

    pub fn observe_latency(&self, ms: f64) {
        const ALPHA: f64 = 0.3;
        let ms = ms.max(0.001);
        // A lost update under contention only delays the average a little.
        let old = self.latency_ms();
        let new = old.map_or(ms, |o| o + ALPHA * (ms - o));
        self.latency_ewma_ms.store(new.to_bits(), Ordering::Relaxed);
    }
}

/// What the router decided for one request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub route: Option<RouteId>,
    /// The route's name, or `passthrough`.
    pub route_name: Arc<str>,
    pub tier: Option<usize>,
    /// Targets to try, in order.
    pub targets: Vec<TargetId>,
    pub policy: Policy,
    /// How the route and tier were chosen.
    pub decision: Decision,
}

impl Router {
    /// `metrics` holds the targets' failover counters, which the router counts into. No
    /// routing models: named routes, rules and default tiers only.
    pub fn new(config: Arc<Config>, metrics: &Metrics) -> Self {
        let models = Models::empty(&config);
        Self::with_models(config, metrics, models)
    }

    /// With the routing models built at startup ([`Models::build`]).
    pub fn with_models(config: Arc<Config>, metrics: &Metrics, models: Models) -> Self {
        let b = &config.breaker;
        let health = (0..config.targets.len())
            .map(|t| TargetHealth {
                breaker: Breaker::new(b.failure_threshold, b.cooldown, b.max_cooldown),
                retry_budget: RetryBudget::new(
                    b.retry_budget,
                    b.retry_budget_floor,
                    b.retry_window,
                ),
                counters: metrics.target(TargetId(t)).cloned().unwrap_or_default(),
                latency_ewma_ms: AtomicU64::new(0),
            })
            .collect();
        Router {
            config,
            health,
            models,
        }
    }

    pub fn models(&self) -> &Models {
        &self.models
    }

    pub fn health(&self, t: TargetId) -> &TargetHealth {
        &self.health[t.0]
    }

    /// Route -> tier -> ordered targets, without reading the prompt (`plan_with` can).
    /// `route_hint` is the `x-sluice-route` header, `tier_hint` the `x-sluice-tier` header.
    pub fn plan(
        &self,
        req: &ChatRequest,
        route_hint: Option<&str>,
        tier_hint: Option<&str>,
    ) -> Result<Plan, RouteError> {
        let resolved = self.resolve(req, route_hint)?;
        self.plan_with(req, resolved, tier_hint, None)
    }

    /// Plan for an embeddings call: the OpenAI-compatible targets serving `model`.
    pub fn plan_embeddings(&self, model: &str) -> Result<Plan, RouteError> {
        let cfg = &*self.config;
        let targets: Vec<TargetId> = cfg
            .targets_for_model(model)
            .filter(|t| {
                cfg.provider(cfg.target(*t).provider).kind == crate::config::ProviderKind::OpenAi
            })
            .collect();
        if targets.is_empty() {
            return Err(RouteError::ModelNotFound(model.to_owned()));
        }
        Ok(Plan {
            route: None,
            route_name: Arc::from(PASSTHROUGH),
            tier: None,
            targets,
            policy: cfg.defaults.clone(),
            decision: Decision::default(),
        })
    }

    /// The tier's targets in strategy order.
    fn order(&self, route: &RouteConfig, tier: usize) -> Vec<TargetId> {
        let tier = &route.tiers[tier];
        let mut targets: Vec<(TargetId, u32)> = tier.targets.clone();
        match tier.strategy {
            Strategy::Ordered => {}
            Strategy::Cheapest => {
                targets.sort_by(|a, b| self.price_key(a.0).total_cmp(&self.price_key(b.0)));
            }
            Strategy::LowestLatency => {
                // Unmeasured targets first (0.0), so each gets measured.
                targets.sort_by(|a, b| {
                    let l = |t: TargetId| self.health(t).latency_ms().unwrap_or(0.0);
                    l(a.0).total_cmp(&l(b.0))
                });
            }
            Strategy::Weighted => {
                // Weighted sampling without replacement: the first pick is proportional to the
                // weights, the rest stay available as fallbacks.
                let mut rng = rand::rng();
                let mut rest = targets;
                targets = Vec::with_capacity(rest.len());
                while !rest.is_empty() {
                    let total: u32 = rest.iter().map(|t| t.1).sum();
                    let mut pick = rng.random_range(0..total.max(1));
                    let i = rest
                        .iter()
                        .position(|t| {
                            if pick < t.1 {
                                true
                            } else {
                                pick -= t.1;
                                false
                            }
                        })
                        .unwrap_or(0);
                    targets.push(rest.remove(i));
                }
            }
        }
        targets.into_iter().map(|(t, _)| t).collect()
    }

    fn price_key(&self, t: TargetId) -> f64 {
        let p = self.config.target(t).price;
        match (p.input_per_mtok, p.output_per_mtok) {
            (Some(i), Some(o)) => i + o,
            // Unknown prices sort last.
            _ => f64::MAX,
        }
    }

    /// After a context-length error at `failed`: untried targets of the route (any tier) or of
    /// the pass-through plan whose window is larger (or unknown), smallest window first.
    pub(crate) fn larger_windows(
        &self,
        plan: &Plan,
        failed: TargetId,
        tried: &[TargetId],
    ) -> Vec<TargetId> {
        let cfg = &*self.config;
        let limit = cfg.target(failed).context_window.unwrap_or(0);
        let mut pool: Vec<TargetId> = plan.targets.clone();
        if let Some(r) = plan.route {
            for tier in &cfg.routes[r.0].tiers {
                pool.extend(tier.targets.iter().map(|t| t.0));
            }
        }
        let mut out: Vec<TargetId> = Vec::new();
        for t in pool {
            if tried.contains(&t) || out.contains(&t) {
                continue;
            }
            if cfg.target(t).context_window.is_none_or(|w| w > limit) {
                out.push(t);
            }
        }
        out.sort_by_key(|t| cfg.target(*t).context_window.unwrap_or(u32::MAX));
        out
    }
}

/// The tier of the first rule whose conditions all hold.
fn rule_tier(route: &RouteConfig, req: &ChatRequest) -> Option<usize> {
    let mut tokens = None;
    let mut text: Option<String> = None;
    route
        .rules
        .iter()
        .find(|rule| rule_matches(rule, req, &mut tokens, &mut text))
        .map(|rule| rule.tier)
}

fn rule_matches(
    rule: &Rule,
    req: &ChatRequest,
    tokens: &mut Option<u32>,
    text: &mut Option<String>,
) -> bool {
    if let Some(want) = rule.has_tools {
        let has = req.tools.as_ref().is_some_and(|t| !t.is_empty());
        if has != want {
            return false;
        }
    }
    for (k, v) in &rule.metadata {
        let got = req.metadata.as_ref().and_then(|m| m.get(k));
        let same = match got {
            Some(serde_json::Value::String(s)) => s == v,
            Some(serde_json::Value::Bool(b)) => v == if *b { "true" } else { "false" },
            Some(serde_json::Value::Number(n)) => n.to_string() == *v,
            Some(_) => false,
            None => false,
        };
        if !same {
            return false;
        }
    }
    if rule.min_prompt_tokens.is_some() || rule.max_prompt_tokens.is_some() {
        let n = *tokens.get_or_insert_with(|| req.estimate_prompt_tokens());
        if rule.min_prompt_tokens.is_some_and(|min| n < min)
            || rule.max_prompt_tokens.is_some_and(|max| n > max)
        {
            return false;
        }
    }
    if rule.regex.is_some() || !rule.keywords.is_empty() {
        let text = text.get_or_insert_with(|| {
            req.messages
                .iter()
                .filter(|m| m.role != Role::Assistant)
                .map(|m| m.text())
                .collect::<Vec<_>>()
                .join("\n")
        });
        if let Some(re) = &rule.regex {
            if !re.is_match(text) {
                return false;
            }
        }
        if !rule.keywords.is_empty() {
            let lower = text.to_lowercase();
            if !rule.keywords.iter().any(|k| contains_word(&lower, k)) {
                return false;
            }
        }
    }
    true
}

/// `needle` occurs in `hay` at word boundaries.
fn contains_word(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Full-jitter exponential backoff for retry number `n` (0-based).
pub(crate) fn backoff(policy: &Policy, n: u32) -> std::time::Duration {
    let exp = policy
        .backoff_base
        .saturating_mul(1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX))
        .min(policy.backoff_max);
    let half = exp / 2;
    half + exp.mul_f64(rand::rng().random::<f64>() * 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(extra: &str) -> Router {
        let text = format!(
            r#"
            [providers.a]
            kind = "openai"
            base_url = "http://127.0.0.1:1"
            models.small = {{ input_per_mtok = 1.0, output_per_mtok = 1.0, context_window = 1000 }}
            models.big = {{ input_per_mtok = 5.0, output_per_mtok = 5.0, context_window = 100000 }}
            [providers.b]
            kind = "anthropic"
            base_url = "http://127.0.0.1:1"
            models.mid = {{ input_per_mtok = 0.5, output_per_mtok = 2.0, context_window = 8000 }}
            {extra}
            "#
        );
        let config = Arc::new(Config::parse(&text, "test").unwrap());
        let metrics = Metrics::new(&config);
        Router::new(config, &metrics)
    }

    fn req(v: serde_json::Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    const ROUTE: &str = r#"
        [routes.r]
        tiers.cheap = ["a/small", "b/mid"]
        tiers.premium = { targets = ["a/big", "b/mid", "a/small"], strategy = "cheapest" }
        [[routes.r.rules]]
        tier = "premium"
        keywords = ["contract"]
        [[routes.r.rules]]
        tier = "premium"
        min_prompt_tokens = 500
        [[routes.r.rules]]
        tier = "premium"
        metadata = { priority = "high" }
    "#;

    #[test]
    fn rules_pick_tiers_and_strategies_order_targets() {
        let r = router(ROUTE);
        let names = |p: &Plan| -> Vec<String> {
            p.targets
                .iter()
                .map(|t| r.config.target(*t).name.clone())
                .collect()
        };
        let plain =
            req(serde_json::json!({"model": "r", "messages": [{"role": "user", "content": "hi"}]}));
        let p = r.plan(&plain, None, None).unwrap();
        assert_eq!(names(&p), ["a/small", "b/mid"]);

        let kw = req(
            serde_json::json!({"model": "r", "messages": [{"role": "user", "content": "Review this Contract."}]}),
        );
        let p = r.plan(&kw, None, None).unwrap();
        assert_eq!(p.tier, Some(1));
        assert_eq!(names(&p), ["a/small", "b/mid", "a/big"], "cheapest first");

        let not_word = req(
            serde_json::json!({"model": "r", "messages": [{"role": "user", "content": "contractor"}]}),
        );
        assert_eq!(r.plan(&not_word, None, None).unwrap().tier, Some(0));

        let long = req(
            serde_json::json!({"model": "r", "messages": [{"role": "user", "content": "x".repeat(4000)}]}),
        );
        assert_eq!(r.plan(&long, None, None).unwrap().tier, Some(1));

        let meta = req(
            serde_json::json!({"model": "r", "metadata": {"priority": "high"}, "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(r.plan(&meta, None, None).unwrap().tier, Some(1));

        let by_header = req(serde_json::json!({"model": "whatever", "messages": []}));
        assert_eq!(
            r.plan(&by_header, Some("r"), Some("premium")).unwrap().tier,
            Some(1)
        );
        assert!(r.plan(&by_header, Some("nope"), None).is_err());
    }

    #[test]
    fn passthrough_and_unknown_models() {
        let r = router(ROUTE);
        let p = r
            .plan(
                &req(serde_json::json!({"model": "mid", "messages": []})),
                None,
                None,
            )
            .unwrap();
        assert_eq!(&*p.route_name, PASSTHROUGH);
        assert_eq!(p.targets.len(), 1);
        let e = r
            .plan(
                &req(serde_json::json!({"model": "gpt-9", "messages": []})),
                None,
                None,
            )
            .unwrap_err();
        assert!(matches!(e, RouteError::ModelNotFound(_)));
    }

    #[test]
    fn larger_windows_come_from_any_tier() {
        let r = router(ROUTE);
        let plain = req(serde_json::json!({"model": "r", "messages": []}));
        let p = r.plan(&plain, None, None).unwrap();
        let small = p.targets[0];
        let next = r.larger_windows(&p, small, &[small]);
        let names: Vec<_> = next
            .iter()
            .map(|t| r.config.target(*t).name.as_str())
            .collect();
        assert_eq!(names, ["b/mid", "a/big"]);
    }

    #[test]
    fn weighted_strategy_follows_weights() {
        let r = router(
            r#"[routes.w]
            tiers.t = { strategy = "weighted", targets = [
                { provider = "a", model = "small", weight = 9 },
                { provider = "b", model = "mid", weight = 1 } ] }"#,
        );
        let q = req(serde_json::json!({"model": "w", "messages": []}));
        let firsts = (0..1000)
            .filter(|_| r.plan(&q, None, None).unwrap().targets[0] == TargetId(0))
            .count();
        assert!((800..980).contains(&firsts), "{firsts}");
    }
}
