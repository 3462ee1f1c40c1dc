//! The difficulty score: how strong a model a prompt needs, from its embedding and its cues, and
//! per route the thresholds that turn it into a tier.
//!
//! Per route, one logistic model per boundary between consecutive tiers `j` and `j + 1`:
//! `P(needs more than tier j) = sigmoid(w_j . [embedding, cues, opening] + b_j)`, where
//! `opening` is the prompt's first line as hashed character n-grams ([`LEX_SLOTS`] slots, as
//! `lexical.rs` reads it: "in exactly three sentences", "as JSON", "for the board"), fitted on the route's
//! labelled examples (a prompt and its cheapest adequate tier) with an L2 penalty, by full-batch
//! Adam from zero (deterministic). What makes a prompt hard differs by use case (a subtle label,
//! a clinical source, an open design question, a sensitive letter), hence a model per route.
//!
//! The prompt's tier is the number of boundaries whose probability reaches the route's
//! threshold for it ([`DEFAULT_THRESHOLD`] unless `difficulty_thresholds` says otherwise): a
//! threshold below one half leans towards the higher tier, because under-serving a prompt costs
//! quality and over-serving costs money, and the first is worse. The reported difficulty is the
//! mean of the route's boundary probabilities, in 0..1.
//!
//! A boundary with examples on one side only is not fitted: the tier below it is never chosen
//! (all examples above) or the tier above it never is (all below). A route without labelled
//! examples on two tiers is not covered (its tier comes from rules or its default).

use serde::{Deserialize, Serialize};

use super::cues::N_CUES;
use super::lexical;
use super::usecase::dot;
use crate::config::RouteId;

/// Probability a boundary must reach for the higher tier, unless the route sets its own.
/// Chosen on the development set (`benches/workloads/routing-dev.jsonl`, see README).
pub const DEFAULT_THRESHOLD: f32 = 0.2;
/// Hashed slots of the opening's n-grams.
pub const LEX_SLOTS: usize = 1 << 12;
/// Most tiers a route's model handles.
pub const MAX_BOUNDARIES: usize = 15;

/// A labelled example, embedded.
#[derive(Debug, Clone, Copy)]
pub struct Labelled<'a> {
    pub vector: &'a [f32],
    pub cues: [f32; N_CUES],
    /// Its opening words (`lexical::head`).
    pub head: &'a str,
    pub route: RouteId,
    /// Index into the route's tiers.
    pub tier: usize,
}

/// How to fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty on the weights.
    pub l2: f32,
}

impl Default for TrainOptions {
    /// Chosen on the development set (`benches/workloads/routing-dev.jsonl`, see README).
    fn default() -> Self {
        TrainOptions {
            epochs: 400,
            learning_rate: 0.05,
            l2: 0.001,
        }
    }
}

/// One boundary between consecutive tiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Boundary {
    /// Every example was above it: the lower tier is never chosen.
    Above,
    /// Every example was at or below it: the higher tier is never chosen.
    Below,
    Fitted {
        weights: Vec<f32>,
        bias: f32,
    },
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difficulty {
    /// Embedding dimensions (each model's weights hold these, then the cues).
    pub dims: usize,
    /// By `RouteId`: its boundaries, or `None` when the route is not covered.
    pub routes: Vec<Option<Vec<Boundary>>>,
}

/// A prompt's probabilities of needing more than each tier of a route.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    p: [f32; MAX_BOUNDARIES],
    n: usize,
}

impl Scored {
    /// The reported difficulty: the mean boundary probability.
    pub fn difficulty(&self) -> f32 {
        if self.n == 0 {
            return 0.0;
        }
        self.p[..self.n].iter().sum::<f32>() / self.n as f32
    }

    /// The tier: boundaries whose probability reaches its threshold (`thresholds[j]`, else the
    /// default).
    pub fn tier(&self, thresholds: Option<&[f32]>) -> usize {
        (0..self.n)
            .filter(|&j| {
                let t = thresholds
                    .and_then(|t| t.get(j).copied())
                    .unwrap_or(DEFAULT_THRESHOLD);
                self.p[j] >= t
            })
            .count()
    }
}

impl Difficulty {
    pub fn covers(&self, route: RouteId) -> bool {
        self.routes.get(route.0).is_some_and(Option::is_some)
    }

    /// The prompt's boundary probabilities on `route` (`head`: its opening words); `None` when
    /// the route is not covered.
    pub fn score(
        &self,
        route: RouteId,
        v: &[f32],
        cues: &[f32; N_CUES],
        head: &str,
    ) -> Option<Scored> {
        let bounds = self.routes.get(route.0)?.as_ref()?;
        if v.len() != self.dims {
            return None;
        }
        let mut s = Scored {
            p: [0.0; MAX_BOUNDARIES],
            n: bounds.len().min(MAX_BOUNDARIES),
        };
        let n = self.dims + N_CUES;
        for (p, b) in s.p.iter_mut().zip(bounds) {
            *p = match b {
                Boundary::Above => 1.0,
                Boundary::Below => 0.0,
                Boundary::Fitted { weights, bias } if weights.len() == n + LEX_SLOTS => {
                    let mut lex = 0f32;
                    let count = lexical::ngrams(head, LEX_SLOTS, |slot| lex += weights[n + slot]);
                    lex /= (count.max(1) as f32).sqrt();
                    sigmoid(
                        dot(&weights[..self.dims], v)
                            + dot(&weights[self.dims..n], cues)
                            + lex
                            + bias,
                    )
                }
                Boundary::Fitted { .. } => 0.0,
            };
        }
        Some(s)
    }

    /// Fits the models (see the module doc). `tiers[r]` is the number of tiers of route `r`.
    /// `None` without any route that has labelled examples on two tiers.
    pub fn train(
        examples: &[Labelled],
        dims: usize,
        tiers: &[usize],
        opts: TrainOptions,
    ) -> Option<Difficulty> {
        let routes: Vec<Option<Vec<Boundary>>> = (0..tiers.len())
            .map(|r| {
                let mine: Vec<&Labelled> = examples
                    .iter()
                    .filter(|e| e.route.0 == r && e.vector.len() == dims && e.tier < tiers[r])
                    .collect();
                let lo = mine.iter().map(|e| e.tier).min()?;
                let hi = mine.iter().map(|e| e.tier).max()?;
                if lo == hi {
                    return None;
                }
                let n = tiers[r].saturating_sub(1).min(MAX_BOUNDARIES);
                Some(
                    (0..n)
                        .map(|j| {
                            if j < lo {
                                Boundary::Above
                            } else if j >= hi {
                                Boundary::Below
                            } else {
                                fit(&mine, dims, j, opts)
                            }
                        })
                        .collect(),
                )
            })
            .collect();
        routes
            .iter()
            .any(Option::is_some)
            .then_some(Difficulty { dims, routes })
    }
}

/// Logistic regression of "tier > j" on the route's examples.
fn fit(examples: &[&Labelled], dims: usize, j: usize, opts: TrainOptions) -> Boundary {
    let n = dims + N_CUES;
    let total = n + LEX_SLOTS;
    // Each example's opening as sparse (slot, value) pairs, duplicates merged.
    let lex: Vec<Vec<(usize, f32)>> = examples
        .iter()
        .map(|e| {
            let mut slots = Vec::new();
            let count = lexical::ngrams(e.head, LEX_SLOTS, |s| slots.push(s));
            slots.sort_unstable();
            let x = 1.0 / (count.max(1) as f32).sqrt();
            let mut row: Vec<(usize, f32)> = Vec::with_capacity(slots.len());
            for s in slots {
                match row.last_mut() {
                    Some((last, v)) if *last == s => *v += x,
                    _ => row.push((s, x)),
                }
            }
            row
        })
        .collect();
    let mut w = vec![0f32; total + 1]; // the bias last
    let (mut m, mut v) = (vec![0f32; total + 1], vec![0f32; total + 1]);
    let mut grad = vec![0f32; total + 1];
    let count = examples.len().max(1) as f32;
    for t in 1..=opts.epochs {
        grad.fill(0.0);
        for (e, row) in examples.iter().zip(&lex) {
            let s = dot(&w[..dims], e.vector)
                + dot(&w[dims..n], &e.cues)
                + row.iter().map(|(s, x)| w[n + s] * x).sum::<f32>()
                + w[total];
            let z = if e.tier > j { 1.0 } else { 0.0 };
            let g = (sigmoid(s) - z) / count;
            for (gi, x) in grad[..dims].iter_mut().zip(e.vector) {
                *gi += g * x;
            }
            for (gi, x) in grad[dims..n].iter_mut().zip(&e.cues) {
                *gi += g * x;
            }
            for (s, x) in row {
                grad[n + s] += g * x;
            }
            grad[total] += g;
        }
        let (c1, c2) = (1.0 - 0.9f32.powi(t as i32), 1.0 - 0.999f32.powi(t as i32));
        for i in 0..=total {
            let g = grad[i] + if i < total { opts.l2 * w[i] } else { 0.0 };
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.999 * v[i] + 0.001 * g * g;
            w[i] -= opts.learning_rate * (m[i] / c1) / ((v[i] / c2).sqrt() + 1e-8);
        }
    }
    let bias = w.pop().unwrap_or(0.0);
    Boundary::Fitted { weights: w, bias }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two routes; the tier follows the first embedding coordinate (and, for route 1, only the
    /// upper two of three tiers occur).
    #[test]
    fn fits_tiers_per_route_with_thresholds() {
        let vecs: Vec<[f32; 2]> = (0..60).map(|i| [i as f32 / 60.0, 1.0]).collect();
        let mut ex = Vec::new();
        for (i, v) in vecs.iter().enumerate() {
            ex.push(Labelled {
                vector: v,
                cues: [0.0; N_CUES],
                head: "",
                route: RouteId(0),
                tier: usize::from(i >= 30),
            });
            ex.push(Labelled {
                vector: v,
                cues: [0.0; N_CUES],
                head: "",
                route: RouteId(1),
                // The opposite direction: difficulty is the route's own.
                tier: 1 + usize::from(i < 20),
            });
        }
        let opts = TrainOptions {
            epochs: 1500,
            learning_rate: 0.1,
            ..TrainOptions::default()
        };
        let m = Difficulty::train(&ex, 2, &[2, 3, 2], opts).expect("fitted");
        assert!(m.covers(RouteId(0)) && m.covers(RouteId(1)) && !m.covers(RouteId(2)));
        let tier = |r: usize, x: f32, t: Option<&[f32]>| {
            m.score(RouteId(r), &[x, 1.0], &[0.0; N_CUES], "")
                .unwrap()
                .tier(t)
        };
        assert_eq!((tier(0, 0.05, None), tier(0, 0.95, None)), (0, 1));
        assert_eq!((tier(1, 0.9, None), tier(1, 0.05, None)), (1, 2));
        assert_eq!(
            m.routes[1].as_ref().unwrap()[0],
            Boundary::Above,
            "never cheap"
        );
        // The route's thresholds: a high one keeps the lower tier, a low one leans up.
        assert_eq!(tier(0, 0.95, Some(&[0.999_99])), 0);
        assert_eq!(tier(0, 0.45, Some(&[0.0001])), 1);
        let d = m
            .score(RouteId(0), &[0.95, 1.0], &[0.0; N_CUES], "")
            .unwrap();
        assert!(d.difficulty() > 0.5);
        assert!(
            m.score(RouteId(0), &[1.0], &[0.0; N_CUES], "").is_none(),
            "wrong size"
        );
        // Nothing to fit: no route with two tiers.
        let one: Vec<Labelled> = ex.iter().copied().filter(|e| e.tier == 1).collect();
        assert!(Difficulty::train(&one[..10], 2, &[2, 3, 2], opts).is_none());
    }
}
