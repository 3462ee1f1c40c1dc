//! Route -> tier, with the prompt read when the plan needs it.
//!
//! 1. [`Router::resolve`]: the route the request names (`x-sluice-route`, else its `model`), an
//!    auto route, or a plain model (pass-through). A named route's rules are evaluated here: a
//!    rule that holds decides the tier and nothing else needs the prompt.
//! 2. [`Router::wants_embedding`]: whether the rest needs the prompt's embedding (an auto route;
//!    a tier by difficulty or by the learned policy that no rule decided). The pipeline then
//!    computes it (one embedding, shared with the cache).
//! 3. [`Router::plan_with`]: an auto route classifies the prompt among its candidates (below
//!    `min_confidence`, or without an embedding: its default route); then the tier: the
//!    `x-sluice-tier` header, else the first rule that holds, else the learned policy
//!    (`strategy = "learned"`), else the difficulty score against the route's thresholds, else
//!    the default tier.

use std::sync::Arc;

use super::learned::MAX_TIERS;
use super::prompt::Signals;
use super::{Plan, RouteError, Router, PASSTHROUGH};
use crate::chat::ChatRequest;
use crate::config::{AutoId, Mode, RouteConfig, RouteId, TierBy};
use crate::outcome::{RouteBy, TierReason};

/// Output tokens assumed for a request without `max_tokens` when the learned policy compares
/// tiers' costs (only their ratio matters).
const OUTPUT_TOKENS_ESTIMATE: u32 = 256;

/// Where a request goes before its prompt is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// A route named by the request, and the tier a rule chose, if one held.
    Route {
        id: RouteId,
        by: RouteBy,
        rule: Option<usize>,
    },
    /// An auto route: the prompt decides.
    Auto(AutoId),
    /// A plain model name.
    Passthrough,
}

/// How the plan was decided: response headers, the audit record, metrics. `Copy`: no
/// allocation per request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Decision {
    pub route_by: RouteBy,
    /// The auto route the client named.
    pub auto: Option<AutoId>,
    /// The classifier's confidence in its best route (auto routes).
    pub confidence: Option<f32>,
    pub tier_by: TierReason,
    /// The prompt's difficulty (0..1), when it was scored.
    pub difficulty: Option<f32>,
    /// (the clustering's fingerprint, the prompt's cluster) on a learned route.
    pub cluster: Option<(u32, u16)>,
}

impl Router {
    /// Step 1 (see the module doc).
    pub fn resolve(
        &self,
        req: &ChatRequest,
        route_hint: Option<&str>,
    ) -> Result<Resolved, RouteError> {
        let cfg = &*self.config;
        let (name, by) = match route_hint {
            Some(h) => (h, RouteBy::Header),
            None => (req.model.as_str(), RouteBy::Named),
        };
        if let Some(id) = cfg.route(name) {
            let route = &cfg.routes[id.0];
            let rule = (route.accounting.mode != Mode::Observe)
                .then(|| super::rule_tier(route, req))
                .flatten();
            return Ok(Resolved::Route { id, by, rule });
        }
        if let Some(a) = cfg.auto_route(name) {
            return Ok(Resolved::Auto(a));
        }
        match route_hint {
            Some(h) => Err(RouteError::UnknownRoute(h.to_owned())),
            None => Ok(Resolved::Passthrough),
        }
    }

    /// Step 2: the plan needs the prompt's embedding.
    pub fn wants_embedding(&self, resolved: &Resolved, tier_hint: Option<&str>) -> bool {
        match *resolved {
            Resolved::Passthrough => false,
            Resolved::Auto(_) => self.models.usecase.is_some(),
            Resolved::Route { id, rule, .. } => {
                let route = &self.config.routes[id.0];
                if route.accounting.mode == Mode::Observe || rule.is_some() {
                    return false;
                }
                // A learned route records the prompt's cluster even under a forced tier, so
                // that feedback on it still teaches the policy.
                self.models.bandits[id.0].is_some()
                    || (tier_hint.is_none() && self.difficulty_applies(id))
            }
        }
    }

    fn difficulty_applies(&self, id: RouteId) -> bool {
        let route = &self.config.routes[id.0];
        let wanted = route.routing.tier_by != Some(TierBy::Rules);
        let covered = self
            .models
            .difficulty
            .as_ref()
            .is_some_and(|d| d.covers(id));
        wanted && covered && route.tiers.len() > 1
    }

    /// Step 3: the plan.
    pub fn plan_with(
        &self,
        req: &ChatRequest,
        resolved: Resolved,
        tier_hint: Option<&str>,
        signals: Option<Signals>,
    ) -> Result<Plan, RouteError> {
        let cfg = &*self.config;
        let vector = signals.and_then(|s| s.vector);
        match resolved {
            Resolved::Passthrough => {
                let targets = cfg.passthrough_targets(&req.model);
                if targets.is_empty() {
                    return Err(RouteError::ModelNotFound(req.model.clone()));
                }
                Ok(Plan {
                    route: None,
                    route_name: Arc::from(PASSTHROUGH),
                    tier: None,
                    targets,
                    policy: cfg.defaults.clone(),
                    decision: Decision {
                        route_by: RouteBy::Passthrough,
                        ..Decision::default()
                    },
                })
            }
            Resolved::Route { id, by, rule } => {
                let d = Decision {
                    route_by: by,
                    ..Decision::default()
                };
                self.plan_route(req, id, d, rule, tier_hint, signals)
            }
            Resolved::Auto(a) => {
                let auto = cfg.auto(a);
                let choice = match (&self.models.usecase, signals, vector) {
                    (Some(uc), Some(s), Some(v)) => {
                        uc.classify(v, &s.prompt.head, &auto.candidates)
                    }
                    _ => None,
                };
                let (id, by, confidence) = match choice {
                    Some(c) if c.confidence >= auto.min_confidence => {
                        (c.route, RouteBy::Auto, Some(c.confidence))
                    }
                    Some(c) => (auto.default_route, RouteBy::Fallback, Some(c.confidence)),
                    None => (auto.default_route, RouteBy::Fallback, None),
                };
                let route = &cfg.routes[id.0];
                let rule = (route.accounting.mode != Mode::Observe)
                    .then(|| super::rule_tier(route, req))
                    .flatten();
                let d = Decision {
                    route_by: by,
                    auto: Some(a),
                    confidence,
                    ..Decision::default()
                };
                self.plan_route(req, id, d, rule, tier_hint, signals)
            }
        }
    }

    /// The tier and targets of a route, once it is known.
    fn plan_route(
        &self,
        req: &ChatRequest,
        id: RouteId,
        mut d: Decision,
        rule: Option<usize>,
        tier_hint: Option<&str>,
        signals: Option<Signals>,
    ) -> Result<Plan, RouteError> {
        let cfg = &*self.config;
        let route = &cfg.routes[id.0];
        let route_name: Arc<str> = Arc::from(route.name.as_str());
        if route.accounting.mode == Mode::Observe {
            // Observe mode: the requested model, untouched (the route only labels the call);
            // a request naming the route itself goes to the default tier.
            let direct: Vec<_> = cfg.targets_for_model(&req.model).collect();
            let targets = if direct.is_empty() {
                self.order(route, route.default_tier)
            } else {
                direct
            };
            return Ok(Plan {
                route: Some(id),
                route_name,
                tier: None,
                targets,
                policy: route.policy.clone(),
                decision: d,
            });
        }
        let forced = match tier_hint {
            Some(t) => Some(
                route
                    .tiers
                    .iter()
                    .position(|x| x.name == t)
                    .ok_or_else(|| RouteError::UnknownTier {
                        route: route.name.clone(),
                        tier: t.to_owned(),
                    })?,
            ),
            None => None,
        };
        let vector = signals.and_then(|s| s.vector);
        // The difficulty score, whenever the prompt was embedded and a model covers the route.
        let scored = match (&self.models.difficulty, vector, signals) {
            (Some(m), Some(v), Some(s)) => m
                .score(id, v, &s.prompt.cues.vector(), &s.prompt.head)
                .map(|sc| {
                    d.difficulty = Some(sc.difficulty());
                    sc.tier(route.routing.difficulty_thresholds.as_deref())
                        .min(route.tiers.len() - 1)
                }),
            _ => None,
        };
        let by_difficulty = scored.filter(|_| route.routing.tier_by != Some(TierBy::Rules));
        let tier = if let Some(t) = forced {
            d.tier_by = TierReason::Header;
            if let (Some(b), Some(v)) = (&self.models.bandits[id.0], vector) {
                d.cluster = Some((b.clusters().id(), b.clusters().assign(v) as u16));
            }
            t
        } else if let Some(t) = rule {
            d.tier_by = TierReason::Rule;
            t
        } else if let (Some(b), Some(v)) = (&self.models.bandits[id.0], vector) {
            let cluster = b.clusters().assign(v);
            let prior = by_difficulty.unwrap_or(route.default_tier);
            let (cost, latency) = self.tier_costs(route, req);
            let n = route.tiers.len().min(MAX_TIERS);
            let c = b.choose(cluster, prior, &cost[..n], &latency[..n]);
            d.cluster = Some((b.clusters().id(), c.cluster as u16));
            d.tier_by = if c.explored {
                TierReason::Explore
            } else {
                TierReason::Learned
            };
            c.tier
        } else if let Some(t) = by_difficulty {
            d.tier_by = TierReason::Difficulty;
            t
        } else {
            d.tier_by = TierReason::Default;
            route.default_tier
        };
        Ok(Plan {
            route: Some(id),
            route_name,
            tier: Some(tier),
            targets: self.order(route, tier),
            policy: route.policy.clone(),
            decision: d,
        })
    }

    /// The tier the difficulty score gives `route` for a prompt (its default tier when the
    /// model does not cover it): the learned policy's prior, and the simulation's baseline.
    pub fn difficulty_tier(&self, id: RouteId, signals: Signals) -> usize {
        let route = &self.config.routes[id.0];
        let (Some(m), Some(v)) = (&self.models.difficulty, signals.vector) else {
            return route.default_tier;
        };
        m.score(id, v, &signals.prompt.cues.vector(), &signals.prompt.head)
            .map_or(route.default_tier, |sc| {
                sc.tier(route.routing.difficulty_thresholds.as_deref())
                    .min(route.tiers.len() - 1)
            })
    }

    /// Per tier: the request's expected cost at the tier's first target (estimated tokens at
    /// its price; the tier's position when it has none) and that target's latency EWMA.
    fn tier_costs(
        &self,
        route: &RouteConfig,
        req: &ChatRequest,
    ) -> ([f64; MAX_TIERS], [f64; MAX_TIERS]) {
        let mut cost = [0f64; MAX_TIERS];
        let mut latency = [0f64; MAX_TIERS];
        let input = f64::from(req.estimate_prompt_tokens());
        let output = f64::from(req.max_output_tokens().unwrap_or(OUTPUT_TOKENS_ESTIMATE));
        let mut priced = true;
        for (i, tier) in route.tiers.iter().take(MAX_TIERS).enumerate() {
            let Some(&(first, _)) = tier.targets.first() else {
                continue;
            };
            match self.models.prices.get(first.0).copied().flatten() {
                Some((pi, po)) => cost[i] = input * pi + output * po,
                None => priced = false,
            }
            latency[i] = self.health(first).latency_ms().unwrap_or(0.0);
        }
        if !priced {
            // A tier without a price: compare the tiers by their position (cheapest first, by
            // the config's convention) rather than mix prices with guesses.
            for (i, c) in cost.iter_mut().enumerate() {
                *c = (i + 1) as f64;
            }
        }
        (cost, latency)
    }
}
