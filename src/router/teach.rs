//! What the router learns after startup: feedback on answers (the learned policies), prompts
//! that services sent to named routes (the use-case classifier), and what it knows
//! (`GET /admin/routing`).

use serde::Serialize;

use super::learned::{ArmStats, ExploreStats};
use super::models::Summary;
use super::Router;
use crate::config::RouteId;

/// A feedback score as the audit recorded its request.
#[derive(Debug, Clone, Copy)]
pub struct Rated<'a> {
    pub route: &'a str,
    pub tier: &'a str,
    /// (clustering fingerprint, cluster) of the request, when its route was learned.
    pub cluster: Option<(u32, u16)>,
    pub score: f64,
    /// The score this one replaces (the request was rated before).
    pub replaced: Option<f64>,
}

/// What the router knows, per route.
#[derive(Debug, Clone, Serialize)]
pub struct RoutingStats {
    pub models: Summary,
    pub routes: Vec<RouteStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteStats {
    pub route: String,
    pub examples_config: usize,
    pub examples_trained: usize,
    pub examples_prompt_log: usize,
    /// The difficulty model covers the route.
    pub difficulty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learned: Option<LearnedStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LearnedStats {
    pub clusters: usize,
    pub clusters_id: u32,
    pub explore: ExploreStats,
    pub arms: Vec<ArmStats>,
}

impl Router {
    /// Teaches a learned route's policy one feedback score; false when it does not apply (not
    /// a learned route, a cache hit, a clustering that changed since).
    pub fn observe_feedback(&self, r: Rated) -> bool {
        let Some(id) = self.config.route(r.route) else {
            return false;
        };
        let Some(bandit) = &self.models.bandits[id.0] else {
            return false;
        };
        let route = &self.config.routes[id.0];
        let (Some(tier), Some((clusters_id, cluster))) =
            (route.tiers.iter().position(|t| t.name == r.tier), r.cluster)
        else {
            return false;
        };
        if clusters_id != bandit.clusters().id() {
            return false;
        }
        bandit.observe(usize::from(cluster), tier, r.score, r.replaced);
        true
    }

    /// Replaces the examples taken from the prompt log: per route, their embeddings (`dims`
    /// floats each, back to back) and opening words. Blocking (the lexical model is fitted
    /// again): call it off the async runtime.
    pub fn set_prompt_log_examples(&self, examples: Vec<(RouteId, Vec<f32>, Vec<String>)>) {
        if let Some(uc) = &self.models.usecase {
            uc.set_prompt_log(examples);
        }
    }

    pub fn routing_stats(&self) -> RoutingStats {
        let counts = self
            .models
            .usecase
            .as_ref()
            .map(|u| u.counts())
            .unwrap_or_default();
        let routes = self
            .config
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (c, t, p) = counts.get(i).copied().unwrap_or_default();
                RouteStats {
                    route: r.name.clone(),
                    examples_config: c,
                    examples_trained: t,
                    examples_prompt_log: p,
                    difficulty: self
                        .models
                        .difficulty
                        .as_ref()
                        .is_some_and(|d| d.covers(RouteId(i))),
                    learned: self.models.bandits[i].as_ref().map(|b| LearnedStats {
                        clusters: b.clusters().len(),
                        clusters_id: b.clusters().id(),
                        explore: b.explore_stats(),
                        arms: b.arms(),
                    }),
                }
            })
            .collect();
        RoutingStats {
            models: self.models.summary.clone(),
            routes,
        }
    }
}
