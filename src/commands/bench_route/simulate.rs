//! `sluice bench route --simulate`: the learned policy (`router::learned::Bandit`, the code the
//! gateway runs) against a simulated environment, measured over time against the oracle,
//! always-premium and the difficulty score alone (what the gateway does without learning).
//! The environment is described in the command's `--help`; every draw is seeded.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{level, output_tokens, tier_index, Bench, Line};
use crate::chat::{estimate_tokens_from_chars, TokenUsage};
use crate::cli::RouteBenchArgs;
use crate::config::{LearnedPolicy, RouteId};
use crate::router::clusters::Clusters;
use crate::router::learned::Bandit;
use crate::router::{Prompt, Signals};

/// Success probability of a tier that is enough for the cluster, and of one that is not.
const ADEQUATE: (f64, f64) = (0.85, 0.97);
const INADEQUATE: (f64, f64) = (0.40, 0.75);

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Window {
    pub from: usize,
    pub to: usize,
    /// Mean hidden success probability of the choices (0..1).
    pub learned_quality: f64,
    pub oracle_quality: f64,
    pub premium_quality: f64,
    pub difficulty_quality: f64,
    /// Mean USD per request.
    pub learned_cost: f64,
    pub oracle_cost: f64,
    pub premium_cost: f64,
    pub difficulty_cost: f64,
    /// Share of the learned policy's choices that explored.
    pub explored: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Simulation {
    pub requests: usize,
    pub seed: u64,
    pub feedback_rate: f64,
    pub policy: Vec<(String, f64, f64, f64, usize)>,
    /// Per route: clusters the workload's prompts fall in.
    pub clusters: BTreeMap<String, usize>,
    /// Consecutive windows (500, then 1,000 requests each).
    pub windows: Vec<Window>,
    /// Everything from the first request.
    pub cumulative: Window,
}

#[derive(Default)]
struct Acc {
    n: usize,
    q: [f64; 4],
    c: [f64; 4],
    explored: usize,
}

impl Acc {
    fn add(&mut self, q: [f64; 4], c: [f64; 4], explored: bool) {
        self.n += 1;
        for i in 0..4 {
            self.q[i] += q[i];
            self.c[i] += c[i];
        }
        self.explored += usize::from(explored);
    }

    fn window(&self, from: usize, to: usize) -> Window {
        let n = self.n.max(1) as f64;
        Window {
            from,
            to,
            learned_quality: self.q[0] / n,
            oracle_quality: self.q[1] / n,
            premium_quality: self.q[2] / n,
            difficulty_quality: self.q[3] / n,
            learned_cost: self.c[0] / n,
            oracle_cost: self.c[1] / n,
            premium_cost: self.c[2] / n,
            difficulty_cost: self.c[3] / n,
            explored: self.explored as f64 / n,
        }
    }
}

/// One route's environment and policy.
struct Arena {
    bandit: Bandit,
    /// [cluster][tier] hidden success probability.
    p: Vec<Vec<f64>>,
    min_quality: f64,
}

pub fn run(
    bench: &Bench,
    lines: &[Line],
    prompts: &[Prompt],
    vectors: &[Vec<f32>],
    args: &RouteBenchArgs,
) -> Result<Simulation, String> {
    if !(0.0..=1.0).contains(&args.feedback_rate) {
        return Err(format!(
            "--feedback-rate {} is outside 0..=1",
            args.feedback_rate
        ));
    }
    let cfg = &bench.config;
    let models = bench.router.models();
    let uc = models
        .usecase
        .as_ref()
        .ok_or("the config's routes have no examples to cluster")?;
    let dims = uc.dims();
    let mut env_rng = StdRng::seed_from_u64(args.seed ^ 0x5eed_e4f1);
    let gold: Vec<RouteId> = lines
        .iter()
        .map(|l| cfg.route(&l.route).ok_or("gold route vanished"))
        .collect::<Result<_, _>>()?;
    let mut arenas: Vec<Option<Arena>> = Vec::with_capacity(cfg.routes.len());
    let mut cluster_of = vec![0usize; lines.len()];
    let mut clusters_used = BTreeMap::new();
    let mut policies = Vec::new();
    for (r, route) in cfg.routes.iter().enumerate() {
        let mine: Vec<usize> = (0..lines.len()).filter(|&i| gold[i].0 == r).collect();
        if mine.is_empty() {
            arenas.push(None);
            continue;
        }
        let policy = LearnedPolicy {
            seed: Some(args.seed.wrapping_add(r as u64)),
            ..route.routing.learned.clone().unwrap_or_default()
        };
        let clusters = Clusters::fit(&uc.route_examples(RouteId(r)), dims, policy.clusters);
        // The level each cluster needs: the majority gold level of its prompts, ties up.
        let mut votes = vec![[0usize; 3]; clusters.len()];
        for &i in &mine {
            let c = clusters.assign(&vectors[i]);
            cluster_of[i] = c;
            let gold_level = lines[i]
                .tier
                .as_deref()
                .and_then(|t| tier_index(route, t))
                .map_or(1, |t| level(route, t));
            votes[c][gold_level] += 1;
        }
        clusters_used.insert(
            route.name.clone(),
            votes.iter().filter(|v| v.iter().sum::<usize>() > 0).count(),
        );
        let p: Vec<Vec<f64>> = votes
            .iter()
            .map(|v| {
                let need = if v.iter().sum::<usize>() == 0 {
                    env_rng.random_range(0..3)
                } else {
                    (0..3).rev().max_by_key(|&l| v[l]).unwrap_or(1)
                };
                let mut good: Vec<f64> = Vec::new();
                let mut bad: Vec<f64> = Vec::new();
                for t in 0..route.tiers.len() {
                    if level(route, t) >= need {
                        good.push(env_rng.random_range(ADEQUATE.0..ADEQUATE.1));
                    } else {
                        bad.push(env_rng.random_range(INADEQUATE.0..INADEQUATE.1));
                    }
                }
                good.sort_by(f64::total_cmp);
                bad.sort_by(f64::total_cmp);
                bad.into_iter().chain(good).collect()
            })
            .collect();
        policies.push((
            route.name.clone(),
            policy.min_quality,
            policy.explore_share,
            policy.explore_cost_cap,
            policy.clusters,
        ));
        let min_quality = policy.min_quality;
        arenas.push(Some(Arena {
            bandit: Bandit::new(policy, route.tiers.len(), clusters),
            p,
            min_quality,
        }));
    }
    // Each prompt's cost per tier of its gold route, and its difficulty tier.
    let costs: Vec<Vec<f64>> = lines
        .iter()
        .zip(&gold)
        .map(|(l, r)| {
            let route = &cfg.routes[r.0];
            let tokens = TokenUsage::new(
                estimate_tokens_from_chars(l.prompt.len()) + 8,
                output_tokens(&l.route),
            );
            (0..route.tiers.len())
                .map(|t| bench.tier_price(route, t).map_or(0.0, |p| p.cost(tokens)))
                .collect()
        })
        .collect();
    let prior: Vec<usize> = (0..lines.len())
        .map(|i| {
            bench.router.difficulty_tier(
                gold[i],
                Signals {
                    prompt: &prompts[i],
                    vector: Some(&vectors[i]),
                },
            )
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut windows = Vec::new();
    let mut all = Acc::default();
    let mut win = Acc::default();
    let mut from = 0;
    for k in 0..args.requests {
        let i = rng.random_range(0..lines.len());
        let Some(a) = &arenas[gold[i].0] else {
            continue;
        };
        let c = cluster_of[i];
        let p = &a.p[c];
        let cost = &costs[i];
        let choice = a.bandit.choose(c, prior[i], cost, &[]);
        let success = rng.random::<f64>() < p[choice.tier];
        if rng.random::<f64>() < args.feedback_rate {
            a.bandit
                .observe(c, choice.tier, if success { 1.0 } else { 0.0 }, None);
        }
        let oracle = (0..p.len())
            .filter(|&t| p[t] >= a.min_quality)
            .min_by(|&x, &y| cost[x].total_cmp(&cost[y]))
            .unwrap_or(p.len() - 1);
        let top = p.len() - 1;
        let d = prior[i].min(top);
        let q = [p[choice.tier], p[oracle], p[top], p[d]];
        let cs = [cost[choice.tier], cost[oracle], cost[top], cost[d]];
        all.add(q, cs, choice.explored);
        win.add(q, cs, choice.explored);
        let done = k + 1;
        if done == 500 || done % 1000 == 0 || done == args.requests {
            windows.push(win.window(from, done));
            win = Acc::default();
            from = done;
        }
    }
    Ok(Simulation {
        requests: args.requests,
        seed: args.seed,
        feedback_rate: args.feedback_rate,
        policy: policies,
        clusters: clusters_used,
        windows,
        cumulative: all.window(0, args.requests),
    })
}
