//! `strategy = "learned"`: per prompt cluster, the cheapest tier whose observed quality holds the
//! route's floor, learned from feedback by Thompson sampling with a bounded exploration budget.
//!
//! **Belief.** For each (cluster, tier) a Beta posterior over the tier's quality, the mean
//! feedback score of its answers: the prior, from the prompt's own difficulty tier `d`, is worth
//! `prior_strength` observations at a mean of `min_quality + 0.1` for tiers at or above `d` and
//! `min_quality - 0.3` below it; each feedback score `s` (0..1) adds `s` successes and `1 - s`
//! failures to its cluster and tier.
//!
//! **Objective** (one, documented in README): among the tiers whose quality `q_t` is at least
//! `min_quality`, the one with the lowest `cost_t * (1 + latency_weight * latency_t /
//! max latency)`, where `cost_t` is the prompt's expected price at the tier's first target and
//! `latency_t` that target's latency EWMA; when no tier qualifies, the tier of highest quality.
//! Quality is a constraint, cost (with latency) what is minimised.
//!
//! **Decision.** The objective is evaluated twice: on posterior means (the best-known choice)
//! and on one draw from each posterior (Thompson sampling). They differ when the posterior is
//! still uncertain; the draw's choice is then taken only within the exploration budget: at
//! most `explore_share` of the route's decisions, and never adding more than `explore_cost_cap`
//! of the route's expected cost so far. Otherwise the best-known choice. As evidence
//! accumulates the draws agree with the means and exploration fades by itself.

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::clusters::Clusters;
use crate::config::LearnedPolicy;

/// One route's learned tier policy.
pub struct Bandit {
    policy: LearnedPolicy,
    tiers: usize,
    clusters: Clusters,
    state: Mutex<State>,
}

struct State {
    /// `clusters x tiers`: (successes, failures) of feedback, fractional.
    obs: Vec<[f64; 2]>,
    rng: StdRng,
    decisions: u64,
    explored: u64,
    /// Expected cost of the best-known choices so far, and what exploring added to it.
    cost: f64,
    explore_extra: f64,
}

/// What the policy chose for one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierChoice {
    pub tier: usize,
    pub cluster: usize,
    /// The draw's choice, taken within the exploration budget.
    pub explored: bool,
}

/// Per cluster and tier, for `GET /admin/routing` and the simulation's report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ArmStats {
    pub cluster: usize,
    pub tier: usize,
    pub feedback: f64,
    pub mean_score: Option<f64>,
}

/// The exploration budget's use.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ExploreStats {
    pub decisions: u64,
    pub explored: u64,
    pub expected_cost: f64,
    pub exploration_cost: f64,
}

impl Bandit {
    pub fn new(policy: LearnedPolicy, tiers: usize, clusters: Clusters) -> Bandit {
        let rng = match policy.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_os_rng(),
        };
        Bandit {
            tiers: tiers.max(1),
            state: Mutex::new(State {
                obs: vec![[0.0; 2]; clusters.len().max(1) * tiers.max(1)],
                rng,
                decisions: 0,
                explored: 0,
                cost: 0.0,
                explore_extra: 0.0,
            }),
            policy,
            clusters,
        }
    }

    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    pub fn policy(&self) -> &LearnedPolicy {
        &self.policy
    }

    /// The tier for a prompt in `cluster` whose difficulty tier is `prior_tier`; `cost` and
    /// `latency_ms` per tier (latency 0 when unmeasured).
    pub fn choose(
        &self,
        cluster: usize,
        prior_tier: usize,
        cost: &[f64],
        latency_ms: &[f64],
    ) -> TierChoice {
        let k = self.tiers;
        let prior_tier = prior_tier.min(k - 1);
        let cluster = cluster.min(self.clusters.len().max(1) - 1);
        let max_lat = latency_ms.iter().copied().fold(0.0, f64::max);
        let objective = |t: usize| {
            let c = cost.get(t).copied().unwrap_or(t as f64 + 1.0);
            let l = latency_ms.get(t).copied().unwrap_or(0.0);
            let lat = if max_lat > 0.0 { l / max_lat } else { 0.0 };
            c * (1.0 + self.policy.latency_weight * lat)
        };
        let mut st = self.state.lock();
        let mut means = [0f64; MAX_TIERS];
        let mut draws = [0f64; MAX_TIERS];
        for t in 0..k.min(MAX_TIERS) {
            let (a, b) = self.posterior(&st.obs, cluster, t, prior_tier);
            means[t] = a / (a + b);
            draws[t] = beta(&mut st.rng, a, b);
        }
        let pick = |q: &[f64]| -> usize {
            let floor = self.policy.min_quality;
            let feasible = (0..k.min(MAX_TIERS)).filter(|&t| q[t] >= floor);
            match feasible.min_by(|&x, &y| objective(x).total_cmp(&objective(y))) {
                Some(t) => t,
                // Nothing holds the floor: the best quality (the higher tier on ties).
                None => (0..k.min(MAX_TIERS))
                    .max_by(|&x, &y| q[x].total_cmp(&q[y]).then(x.cmp(&y)))
                    .unwrap_or(k - 1),
            }
        };
        let greedy = pick(&means);
        let sampled = pick(&draws);
        let (cg, cs) = (objective(greedy), objective(sampled));
        st.decisions += 1;
        st.cost += cg;
        let explore = sampled != greedy
            && (st.explored + 1) as f64 <= self.policy.explore_share * st.decisions as f64
            && st.explore_extra + (cs - cg).max(0.0) <= self.policy.explore_cost_cap * st.cost;
        if explore {
            st.explored += 1;
            st.explore_extra += (cs - cg).max(0.0);
        }
        TierChoice {
            tier: if explore { sampled } else { greedy },
            cluster,
            explored: explore,
        }
    }

    /// Beta parameters of (cluster, tier) for a prompt whose difficulty tier is `prior_tier`.
    fn posterior(
        &self,
        obs: &[[f64; 2]],
        cluster: usize,
        tier: usize,
        prior_tier: usize,
    ) -> (f64, f64) {
        let p = &self.policy;
        let q = if tier >= prior_tier {
            (p.min_quality + 0.1).min(0.99)
        } else {
            (p.min_quality - 0.3).max(0.01)
        };
        let [s, f] = obs
            .get(cluster * self.tiers + tier)
            .copied()
            .unwrap_or([0.0; 2]);
        (p.prior_strength * q + s, p.prior_strength * (1.0 - q) + f)
    }

    /// A feedback score (0..1) for an answer of `tier` to a prompt of `cluster`; `replaced`:
    /// the score this one replaces (the same request rated again).
    pub fn observe(&self, cluster: usize, tier: usize, score: f64, replaced: Option<f64>) {
        if cluster >= self.clusters.len().max(1) || tier >= self.tiers {
            return;
        }
        let mut st = self.state.lock();
        let arm = &mut st.obs[cluster * self.tiers + tier];
        if let Some(old) = replaced {
            arm[0] = (arm[0] - old.clamp(0.0, 1.0)).max(0.0);
            arm[1] = (arm[1] - (1.0 - old.clamp(0.0, 1.0))).max(0.0);
        }
        arm[0] += score.clamp(0.0, 1.0);
        arm[1] += 1.0 - score.clamp(0.0, 1.0);
    }

    pub fn arms(&self) -> Vec<ArmStats> {
        let st = self.state.lock();
        st.obs
            .iter()
            .enumerate()
            .map(|(i, [s, f])| ArmStats {
                cluster: i / self.tiers,
                tier: i % self.tiers,
                feedback: s + f,
                mean_score: (s + f > 0.0).then(|| s / (s + f)),
            })
            .collect()
    }

    pub fn explore_stats(&self) -> ExploreStats {
        let st = self.state.lock();
        ExploreStats {
            decisions: st.decisions,
            explored: st.explored,
            expected_cost: st.cost,
            exploration_cost: st.explore_extra,
        }
    }
}

/// Most tiers a learned route may have (a stack array per decision).
pub const MAX_TIERS: usize = 16;

/// A Beta(a, b) draw from two Gamma draws.
fn beta(rng: &mut StdRng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    if x + y > 0.0 {
        x / (x + y)
    } else {
        0.5
    }
}

/// A Gamma(shape, 1) draw: Marsaglia and Tsang's method; shapes below 1 by boosting.
fn gamma(rng: &mut StdRng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bandit(explore_share: f64) -> Bandit {
        let clusters = Clusters::fit(&[1.0, 0.0, 0.0, 1.0], 2, 2);
        let policy = LearnedPolicy {
            explore_share,
            explore_cost_cap: 1.0,
            seed: Some(7),
            ..LearnedPolicy::default()
        };
        Bandit::new(policy, 3, clusters)
    }

    const COST: [f64; 3] = [1.0, 10.0, 40.0];

    #[test]
    fn beta_draws_have_the_right_mean() {
        let mut rng = StdRng::seed_from_u64(1);
        for (a, b) in [(0.5, 0.5), (2.0, 8.0), (30.0, 3.0)] {
            let n = 20_000;
            let mean = (0..n).map(|_| beta(&mut rng, a, b)).sum::<f64>() / n as f64;
            assert!((mean - a / (a + b)).abs() < 0.01, "{a} {b}: {mean}");
        }
    }

    #[test]
    fn starts_at_the_prior_and_learns_down_and_up() {
        let b = bandit(0.0);
        // Cold: the difficulty tier.
        assert_eq!(b.choose(0, 2, &COST, &[]).tier, 2);
        assert_eq!(b.choose(1, 1, &COST, &[]).tier, 1);
        // Cluster 0: the cheap tier answers well.
        for _ in 0..20 {
            b.observe(0, 0, 1.0, None);
        }
        assert_eq!(b.choose(0, 2, &COST, &[]).tier, 0);
        // Cluster 1: the standard tier does not.
        for _ in 0..20 {
            b.observe(1, 1, 0.3, None);
        }
        assert_eq!(b.choose(1, 1, &COST, &[]).tier, 2);
        // A replaced score is taken back.
        for _ in 0..20 {
            b.observe(1, 1, 1.0, Some(0.3));
        }
        assert_eq!(b.choose(1, 1, &COST, &[]).tier, 1);
        let arms = b.arms();
        assert_eq!(arms.len(), 6);
        assert_eq!(arms[4].mean_score, Some(1.0));
    }

    #[test]
    fn exploration_stays_within_its_share() {
        let b = bandit(0.05);
        let n = 2000;
        let explored = (0..n)
            .filter(|i| b.choose(i % 2, 1, &COST, &[]).explored)
            .count();
        assert!(explored > 0, "the uncertain cheap tier gets tried");
        assert!(explored as f64 <= 0.05 * n as f64 + 1.0, "{explored}");
        let s = b.explore_stats();
        assert_eq!((s.decisions, s.explored), (n as u64, explored as u64));
        // Without a budget, never.
        let none = bandit(0.0);
        assert!((0..500).all(|_| !none.choose(0, 1, &COST, &[]).explored));
    }

    #[test]
    fn latency_weighs_against_cost() {
        let b = Bandit::new(
            LearnedPolicy {
                latency_weight: 10.0,
                explore_share: 0.0,
                ..LearnedPolicy::default()
            },
            2,
            Clusters::fit(&[], 2, 1),
        );
        for t in 0..2 {
            for _ in 0..50 {
                b.observe(0, t, 1.0, None);
            }
        }
        // Both qualify; the cheaper one is ten times slower.
        assert_eq!(b.choose(0, 0, &[1.0, 2.0], &[1000.0, 100.0]).tier, 1);
        assert_eq!(b.choose(0, 0, &[1.0, 2.0], &[100.0, 100.0]).tier, 0);
    }
}
