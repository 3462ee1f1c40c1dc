//! Intelligent routing settings: `[routing]` (automatic use-case routing), each route's reference
//! `examples`, how its tier is picked (`tier_by`, `difficulty_thresholds`) and its learned policy
//! (`strategy = "learned"`, `[routes.NAME.learned]`).
//!
//! An **auto route** chooses a route from the prompt: the model name `[routing] auto_model`
//! ("auto" in the default config) over every route that has examples, or a route declared with
//! `auto = { candidates = [...] }` over its candidates.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Deserialize;

use super::raw::{RawConfig, RawRoute};
use super::{RouteConfig, RouteId};

/// Confidence below which an auto route falls back to its default route.
pub const DEFAULT_MIN_CONFIDENCE: f32 = 0.5;
/// Per route, the mean similarity of the query to this many of its most similar examples.
pub const DEFAULT_NEIGHBORS: usize = 3;
/// Prompts per route taken from the prompt log.
pub const DEFAULT_PROMPT_LOG_EXAMPLES: usize = 200;
pub const DEFAULT_PROMPT_LOG_REFRESH_SECS: u64 = 3600;
/// The learned policy's quality floor (mean feedback score).
pub const DEFAULT_MIN_QUALITY: f64 = 0.8;
pub const DEFAULT_EXPLORE_SHARE: f64 = 0.1;
pub const DEFAULT_EXPLORE_COST_CAP: f64 = 0.1;
pub const DEFAULT_CLUSTERS: usize = 8;
pub const DEFAULT_PRIOR_STRENGTH: f64 = 2.0;
/// Most examples one route may list (each is embedded at startup).
const MAX_EXAMPLES: usize = 2000;

/// `[routing]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRouting {
    /// The model name (and `x-sluice-route` value) that asks Sluice to choose the route, among
    /// every route that has examples; unset or "" turns it off.
    pub auto_model: Option<String>,
    /// Where `auto_model` requests go when the classifier is not confident enough.
    pub default_route: Option<String>,
    pub min_confidence: Option<f64>,
    /// A route's score is the mean similarity of the query to its `neighbors` closest examples.
    pub neighbors: Option<usize>,
    /// Also learn from the prompts that services sent to named routes (needs `[accounting]
    /// log_prompts = true`).
    pub learn_from_prompt_log: Option<bool>,
    /// Most prompts per route taken from the prompt log (the most recent).
    pub prompt_log_examples: Option<usize>,
    /// How often the prompt log is read again.
    pub prompt_log_refresh_secs: Option<u64>,
}

/// A reference example: a prompt, or a prompt and the cheapest adequate tier for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawExample {
    Text(String),
    Labelled {
        prompt: String,
        #[serde(default)]
        tier: Option<String>,
    },
}

/// `auto = { candidates = [...], default_route = "...", min_confidence = 0.5 }` on a route.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAuto {
    pub candidates: Vec<String>,
    pub default_route: Option<String>,
    pub min_confidence: Option<f64>,
}

/// `[routes.NAME.learned]`: the bandit of `strategy = "learned"`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLearned {
    pub min_quality: Option<f64>,
    pub explore_share: Option<f64>,
    pub explore_cost_cap: Option<f64>,
    pub latency_weight: Option<f64>,
    pub clusters: Option<usize>,
    pub prior_strength: Option<f64>,
    pub seed: Option<u64>,
}

/// `[routing]`, validated, with every auto route.
#[derive(Debug, Clone)]
pub struct RoutingConfig {
    pub autos: Vec<AutoRoute>,
    pub neighbors: usize,
    pub learn_from_prompt_log: bool,
    pub prompt_log_examples: usize,
    pub prompt_log_refresh: Duration,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            autos: Vec::new(),
            neighbors: DEFAULT_NEIGHBORS,
            learn_from_prompt_log: false,
            prompt_log_examples: DEFAULT_PROMPT_LOG_EXAMPLES,
            prompt_log_refresh: Duration::from_secs(DEFAULT_PROMPT_LOG_REFRESH_SECS),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AutoId(pub usize);

/// A name whose requests go to the route their prompt is most like.
#[derive(Debug, Clone)]
pub struct AutoRoute {
    pub name: String,
    /// Routes it may choose (each has examples).
    pub candidates: Vec<RouteId>,
    pub default_route: RouteId,
    pub min_confidence: f32,
}

/// A reference example of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    /// The cheapest adequate tier (index into the route's tiers), when labelled.
    pub tier: Option<usize>,
}

/// How a route's tier is chosen when no rule and no `x-sluice-tier` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierBy {
    /// The default tier.
    Rules,
    /// The difficulty score and the route's thresholds (when the model covers the route).
    Difficulty,
}

/// `strategy = "learned"`: the cheapest tier whose observed quality holds `min_quality`, per
/// prompt cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedPolicy {
    /// Floor of the mean feedback score (0..1).
    pub min_quality: f64,
    /// Share of decisions that may differ from the best-known choice (exploration), 0..1.
    pub explore_share: f64,
    /// Exploration may add at most this share to the route's expected cost.
    pub explore_cost_cap: f64,
    /// Weight of latency against cost in the objective (0: cost alone).
    pub latency_weight: f64,
    pub clusters: usize,
    /// Pseudo-observations of the prior (the difficulty score's tier).
    pub prior_strength: f64,
    /// Seeds the sampler (tests, simulations); unset: seeded from the OS.
    pub seed: Option<u64>,
}

impl Default for LearnedPolicy {
    fn default() -> Self {
        LearnedPolicy {
            min_quality: DEFAULT_MIN_QUALITY,
            explore_share: DEFAULT_EXPLORE_SHARE,
            explore_cost_cap: DEFAULT_EXPLORE_COST_CAP,
            latency_weight: 0.0,
            clusters: DEFAULT_CLUSTERS,
            prior_strength: DEFAULT_PRIOR_STRENGTH,
            seed: None,
        }
    }
}

/// What a route's section adds for intelligent routing.
#[derive(Debug, Clone, Default)]
pub struct RouteRouting {
    pub examples: Vec<Example>,
    /// `tier_by`; `None`: difficulty when the trained model covers the route, else rules.
    pub tier_by: Option<TierBy>,
    /// Per tier boundary, the probability of needing the higher tier at which it is chosen
    /// (default `router::difficulty::DEFAULT_THRESHOLD`).
    pub difficulty_thresholds: Option<Vec<f32>>,
    pub learned: Option<LearnedPolicy>,
}

/// True when `r` is an auto route (it has no tiers of its own).
pub(super) fn is_auto(r: &RawRoute) -> bool {
    r.auto.is_some()
}

/// A route's routing fields, checked against its tiers.
pub(super) fn route_routing(
    path: &str,
    r: &RawRoute,
    route: &RouteConfig,
    learned: bool,
    problems: &mut Vec<String>,
) -> RouteRouting {
    let tier_pos = |t: &str| route.tiers.iter().position(|x| x.name == t);
    let mut examples = Vec::with_capacity(r.examples.len());
    if r.examples.len() > MAX_EXAMPLES {
        problems.push(format!(
            "{path}.examples: at most {MAX_EXAMPLES} (each is embedded at startup)"
        ));
    }
    for (i, e) in r.examples.iter().enumerate() {
        let (text, tier) = match e {
            RawExample::Text(t) => (t, None),
            RawExample::Labelled { prompt, tier } => (prompt, tier.as_deref()),
        };
        if text.trim().is_empty() {
            problems.push(format!("{path}.examples[{i}]: empty prompt"));
            continue;
        }
        let tier = match tier {
            None => None,
            Some(t) => match tier_pos(t) {
                Some(p) => Some(p),
                None => {
                    problems.push(format!("{path}.examples[{i}].tier: unknown tier \"{t}\""));
                    continue;
                }
            },
        };
        examples.push(Example {
            text: text.clone(),
            tier,
        });
    }
    let tier_by = match r.tier_by.as_deref() {
        None => None,
        Some("rules") => Some(TierBy::Rules),
        Some("difficulty") => Some(TierBy::Difficulty),
        Some(other) => {
            problems.push(format!(
                "{path}.tier_by: unknown value \"{other}\" (expected rules or difficulty)"
            ));
            None
        }
    };
    let difficulty_thresholds = r.difficulty_thresholds.as_ref().map(|t| {
        let want = route.tiers.len().saturating_sub(1);
        if t.len() != want {
            problems.push(format!(
                "{path}.difficulty_thresholds: {} values for {} tiers (one per boundary: {want})",
                t.len(),
                route.tiers.len()
            ));
        }
        if t.iter().any(|x| !(0.0..=1.0).contains(x)) {
            problems.push(format!(
                "{path}.difficulty_thresholds: probabilities, between 0 and 1"
            ));
        }
        t.iter().map(|x| *x as f32).collect()
    });
    let learned = match (&r.learned, learned) {
        (Some(_), false) => {
            problems.push(format!(
                "{path}.learned: only with strategy = \"learned\" on the route"
            ));
            None
        }
        (raw, true) => Some(learned_policy(
            &format!("{path}.learned"),
            raw.as_ref(),
            route,
            problems,
        )),
        (None, false) => None,
    };
    RouteRouting {
        examples,
        tier_by,
        difficulty_thresholds,
        learned,
    }
}

fn learned_policy(
    path: &str,
    raw: Option<&RawLearned>,
    route: &RouteConfig,
    problems: &mut Vec<String>,
) -> LearnedPolicy {
    let d = LearnedPolicy::default();
    let Some(raw) = raw else {
        return d;
    };
    let share = |name: &str, v: Option<f64>, default: f64, problems: &mut Vec<String>| {
        let v = v.unwrap_or(default);
        if !(0.0..=1.0).contains(&v) {
            problems.push(format!("{path}.{name}: {v} must be between 0 and 1"));
        }
        v
    };
    let p = LearnedPolicy {
        min_quality: share("min_quality", raw.min_quality, d.min_quality, problems),
        explore_share: share(
            "explore_share",
            raw.explore_share,
            d.explore_share,
            problems,
        ),
        explore_cost_cap: share(
            "explore_cost_cap",
            raw.explore_cost_cap,
            d.explore_cost_cap,
            problems,
        ),
        latency_weight: raw.latency_weight.unwrap_or(d.latency_weight),
        clusters: raw.clusters.unwrap_or(d.clusters),
        prior_strength: raw.prior_strength.unwrap_or(d.prior_strength),
        seed: raw.seed,
    };
    if !(p.latency_weight >= 0.0 && p.latency_weight.is_finite()) {
        problems.push(format!("{path}.latency_weight: must be >= 0"));
    }
    if !(1..=256).contains(&p.clusters) {
        problems.push(format!("{path}.clusters: between 1 and 256"));
    }
    if !(p.prior_strength > 0.0 && p.prior_strength.is_finite()) {
        problems.push(format!("{path}.prior_strength: must be > 0"));
    }
    if route.tiers.len() < 2 {
        problems.push(format!(
            "{path}: strategy = \"learned\" chooses among tiers; the route has one"
        ));
    }
    p
}

/// `[routing]` and the auto routes, once the ordinary routes are known.
pub(super) fn routing(
    raw: &RawConfig,
    routes: &[RouteConfig],
    route_routing: &[RouteRouting],
    model_names: &dyn Fn(&str) -> bool,
    problems: &mut Vec<String>,
) -> RoutingConfig {
    let r = &raw.routing;
    let by_name: HashMap<&str, RouteId> = routes
        .iter()
        .enumerate()
        .map(|(i, x)| (x.name.as_str(), RouteId(i)))
        .collect();
    let with_examples: Vec<RouteId> = (0..routes.len())
        .filter(|&i| !route_routing[i].examples.is_empty())
        .map(RouteId)
        .collect();
    let confidence = |path: &str, v: Option<f64>, problems: &mut Vec<String>| {
        let v = v.unwrap_or(f64::from(DEFAULT_MIN_CONFIDENCE));
        if !(0.0..=1.0).contains(&v) {
            problems.push(format!("{path}: {v} must be between 0 and 1"));
        }
        v as f32
    };
    let lookup = |path: &str, name: &str, problems: &mut Vec<String>| {
        let id = by_name.get(name).copied();
        match id {
            Some(id) if route_routing[id.0].examples.is_empty() => {
                problems.push(format!(
                    "{path}: route \"{name}\" has no examples to be recognised by"
                ));
                None
            }
            Some(id) => Some(id),
            None => {
                problems.push(format!("{path}: unknown route \"{name}\""));
                None
            }
        }
    };
    let mut autos = Vec::new();
    let auto_model = r.auto_model.as_deref().map(str::trim).unwrap_or("");
    if !auto_model.is_empty() {
        if with_examples.len() < 2 {
            problems.push(format!(
                "routing.auto_model: \"{auto_model}\" needs at least two routes with examples"
            ));
        }
        let default_route = match r.default_route.as_deref() {
            Some(d) => by_name.get(d).copied().or_else(|| {
                problems.push(format!("routing.default_route: unknown route \"{d}\""));
                None
            }),
            None => {
                problems.push(
                    "routing.default_route: required with auto_model (where unsure prompts go)"
                        .to_owned(),
                );
                None
            }
        };
        autos.push(AutoRoute {
            name: auto_model.to_owned(),
            candidates: with_examples.clone(),
            default_route: default_route.unwrap_or(RouteId(0)),
            min_confidence: confidence("routing.min_confidence", r.min_confidence, problems),
        });
    }
    for (name, route) in &raw.routes {
        let Some(a) = &route.auto else { continue };
        let path = format!("routes.{name}.auto");
        if !route.tiers.is_empty() || !route.rules.is_empty() || !route.examples.is_empty() {
            problems.push(format!(
                "routes.{name}: an auto route has no tiers, rules or examples of its own (its candidates do)"
            ));
        }
        let candidates: Vec<RouteId> = if a.candidates.is_empty() {
            with_examples.clone()
        } else {
            a.candidates
                .iter()
                .enumerate()
                .filter_map(|(i, c)| lookup(&format!("{path}.candidates[{i}]"), c, problems))
                .collect()
        };
        if candidates.len() < 2 {
            problems.push(format!(
                "{path}.candidates: at least two routes with examples"
            ));
        }
        let default_route = match a.default_route.as_deref() {
            Some(d) => by_name.get(d).copied().unwrap_or_else(|| {
                problems.push(format!("{path}.default_route: unknown route \"{d}\""));
                RouteId(0)
            }),
            None => {
                problems.push(format!("{path}.default_route: required"));
                RouteId(0)
            }
        };
        autos.push(AutoRoute {
            name: name.clone(),
            candidates,
            default_route,
            min_confidence: confidence(
                &format!("{path}.min_confidence"),
                a.min_confidence,
                problems,
            ),
        });
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for a in &autos {
        if by_name.contains_key(a.name.as_str()) {
            problems.push(format!(
                "routing: \"{}\" is both an auto route and a route",
                a.name
            ));
        }
        if model_names(&a.name) {
            problems.push(format!(
                "routing: auto route \"{}\" is also the name of a provider's model",
                a.name
            ));
        }
        if !seen.insert(a.name.as_str()) {
            problems.push(format!(
                "routing: auto route \"{}\" is defined twice",
                a.name
            ));
        }
    }
    let neighbors = r.neighbors.unwrap_or(DEFAULT_NEIGHBORS);
    if !(1..=64).contains(&neighbors) {
        problems.push("routing.neighbors: between 1 and 64".to_owned());
    }
    let learn = r.learn_from_prompt_log.unwrap_or(false);
    if learn && !raw.accounting.log_prompts {
        problems.push(
            "routing.learn_from_prompt_log: needs [accounting] log_prompts = true (the prompts are read from the audit)"
                .to_owned(),
        );
    }
    let refresh = r
        .prompt_log_refresh_secs
        .unwrap_or(DEFAULT_PROMPT_LOG_REFRESH_SECS);
    if refresh == 0 {
        problems.push("routing.prompt_log_refresh_secs: must be greater than 0".to_owned());
    }
    RoutingConfig {
        autos,
        neighbors: neighbors.clamp(1, 64),
        learn_from_prompt_log: learn,
        prompt_log_examples: r
            .prompt_log_examples
            .unwrap_or(DEFAULT_PROMPT_LOG_EXAMPLES)
            .min(10_000),
        prompt_log_refresh: Duration::from_secs(refresh.max(1)),
    }
}
