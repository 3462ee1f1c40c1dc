//! The difficulty score: how strong a model a prompt needs, from its embedding and its cues, and
//! per route the thresholds that turn it into a tier.
//!
//! One linear score `s = w . [embedding, cues] + b` is shared by every route (difficulty means
//! the same thing whatever the use case, and labelled examples are few); each route has its own
//! ascending thresholds `t_1 < t_2 < ...`, one per boundary between consecutive tiers, and the
//! tier is the number of thresholds at or below `s`. It is an ordinal logistic model fitted on
//! labelled examples (a prompt, its route and its cheapest adequate tier): for each boundary `j`
//! of the example's route, `P(tier > j) = sigmoid(s - t_j)`, with the log loss summed over
//! boundaries and an L2 penalty on `w`, by full-batch Adam from zero (deterministic).
//!
//! A boundary with examples on one side only is not fitted: the tier below it is never chosen
//! (all examples above) or the tier above it never is (all below). A route without labelled
//! examples is not covered (its tier comes from rules or its default). `margin` lowers every
//! fitted threshold, leaning towards the higher tier: under-serving a prompt costs quality,
//! over-serving costs money, and the first is worse.
//!
//! The reported difficulty is `sigmoid(s)`, in 0..1; thresholds in the config
//! (`difficulty_thresholds`) are in the same units.

use serde::{Deserialize, Serialize};

use super::cues::N_CUES;
use super::usecase::dot;
use crate::config::RouteId;

/// A labelled example, embedded.
#[derive(Debug, Clone, Copy)]
pub struct Labelled<'a> {
    pub vector: &'a [f32],
    pub cues: [f32; N_CUES],
    pub route: RouteId,
    /// Index into the route's tiers.
    pub tier: usize,
}

/// How to fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty on the weights, per example.
    pub l2: f32,
    /// Subtracted from every fitted threshold (score units).
    pub margin: f32,
}

impl Default for TrainOptions {
    /// Chosen on the development set (`benches/workloads/routing-dev.jsonl`, see README).
    fn default() -> Self {
        TrainOptions {
            epochs: 400,
            learning_rate: 0.05,
            l2: 0.002,
            margin: 0.75,
        }
    }
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Difficulty {
    /// Embedding dimensions (the weights hold these, then the cues).
    pub dims: usize,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Per route (by `RouteId`): ascending thresholds, one per tier boundary (`+inf`: never
    /// above that boundary, `-inf`: always above); `None` when the route is not covered.
    pub thresholds: Vec<Option<Vec<f32>>>,
}

impl Difficulty {
    /// The raw score (see the module doc); `sigmoid` of it is the reported difficulty.
    pub fn score(&self, v: &[f32], cues: &[f32; N_CUES]) -> f32 {
        if v.len() != self.dims {
            return 0.0;
        }
        dot(&self.weights[..self.dims], v) + dot(&self.weights[self.dims..], cues) + self.bias
    }

    pub fn covers(&self, route: RouteId) -> bool {
        self.thresholds.get(route.0).is_some_and(Option::is_some)
    }

    /// The tier index for `score` on `route` (`overrides`: the config's thresholds, 0..1).
    pub fn tier(&self, route: RouteId, score: f32, overrides: Option<&[f32]>) -> Option<usize> {
        if let Some(o) = overrides {
            let d = sigmoid(score);
            return Some(o.iter().filter(|t| **t <= d).count());
        }
        let t = self.thresholds.get(route.0)?.as_ref()?;
        Some(t.iter().filter(|t| **t <= score).count())
    }

    /// Fits the model (see the module doc). `tiers[r]` is the number of tiers of route `r`.
    /// `None` without any route that has two labelled tiers.
    pub fn train(
        examples: &[Labelled],
        dims: usize,
        tiers: &[usize],
        opts: TrainOptions,
    ) -> Option<Difficulty> {
        // Which boundaries of which route can be fitted, and the fixed ones.
        let mut lo = vec![usize::MAX; tiers.len()];
        let mut hi = vec![0usize; tiers.len()];
        for e in examples.iter().filter(|e| e.vector.len() == dims) {
            if let (Some(l), Some(h)) = (lo.get_mut(e.route.0), hi.get_mut(e.route.0)) {
                *l = (*l).min(e.tier);
                *h = (*h).max(e.tier);
            }
        }
        if !(0..tiers.len()).any(|r| lo[r] != usize::MAX && hi[r] > lo[r]) {
            return None;
        }
        // Boundary j (between tier j and j+1) is fitted when lo <= j < hi.
        let fitted = |r: usize, j: usize| lo[r] != usize::MAX && lo[r] <= j && j < hi[r];
        let n = dims + N_CUES;
        let mut w = vec![0f32; n];
        let mut b = 0f32;
        let mut th: Vec<Vec<f32>> = tiers
            .iter()
            .map(|&t| (0..t.saturating_sub(1)).map(|j| j as f32).collect())
            .collect();
        let mut adam = Adam::new(n + 1 + th.iter().map(Vec::len).sum::<usize>());
        let data: Vec<&Labelled> = examples
            .iter()
            .filter(|e| e.vector.len() == dims && e.route.0 < tiers.len())
            .collect();
        let count = data.len().max(1) as f32;
        let mut grad = vec![0f32; adam.m.len()];
        let offsets: Vec<usize> = th
            .iter()
            .scan(n + 1, |o, t| {
                let here = *o;
                *o += t.len();
                Some(here)
            })
            .collect();
        for _ in 0..opts.epochs {
            grad.fill(0.0);
            for e in &data {
                let s = dot(&w[..dims], e.vector) + dot(&w[dims..], &e.cues) + b;
                let r = e.route.0;
                let mut ds = 0f32;
                for (j, t) in th[r].iter().enumerate() {
                    if !fitted(r, j) {
                        continue;
                    }
                    let z = if e.tier > j { 1.0 } else { 0.0 };
                    let g = sigmoid(s - t) - z;
                    ds += g;
                    grad[offsets[r] + j] -= g / count;
                }
                if ds != 0.0 {
                    for (gi, x) in grad[..dims].iter_mut().zip(e.vector) {
                        *gi += ds * x / count;
                    }
                    for (gi, x) in grad[dims..n].iter_mut().zip(&e.cues) {
                        *gi += ds * x / count;
                    }
                    grad[n] += ds / count;
                }
            }
            for (gi, wi) in grad[..n].iter_mut().zip(&w) {
                *gi += opts.l2 * wi;
            }
            let mut params: Vec<&mut f32> = w.iter_mut().collect();
            params.push(&mut b);
            for t in th.iter_mut() {
                params.extend(t.iter_mut());
            }
            adam.step(&mut params, &grad, opts.learning_rate);
        }
        // The bias and thresholds are only defined up to a shift: fold the bias in.
        let thresholds = (0..tiers.len())
            .map(|r| {
                if lo[r] == usize::MAX {
                    return None;
                }
                let mut out: Vec<f32> = th[r]
                    .iter()
                    .enumerate()
                    .map(|(j, t)| {
                        if j < lo[r] {
                            f32::NEG_INFINITY
                        } else if j >= hi[r] {
                            f32::INFINITY
                        } else {
                            t - b - opts.margin
                        }
                    })
                    .collect();
                // Ascending, whatever the fit did.
                for j in 1..out.len() {
                    out[j] = out[j].max(out[j - 1]);
                }
                Some(out)
            })
            .collect();
        Some(Difficulty {
            dims,
            weights: w,
            bias: 0.0,
            thresholds,
        })
    }
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Adam (Kingma & Ba) over a flat parameter list.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    fn new(n: usize) -> Adam {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    fn step(&mut self, params: &mut [&mut f32], grad: &[f32], lr: f32) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        self.t += 1;
        let (c1, c2) = (1.0 - B1.powi(self.t), 1.0 - B2.powi(self.t));
        for (i, p) in params.iter_mut().enumerate() {
            let g = grad[i];
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * g;
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * g * g;
            **p -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two routes; the tier follows the first embedding coordinate (and, for route 1, only the
    /// upper two of three tiers occur).
    #[test]
    fn fits_ordinal_tiers_with_per_route_thresholds() {
        let vecs: Vec<[f32; 2]> = (0..60).map(|i| [i as f32 / 60.0, 1.0]).collect();
        let mut ex = Vec::new();
        for (i, v) in vecs.iter().enumerate() {
            ex.push(Labelled {
                vector: v,
                cues: [0.0; N_CUES],
                route: RouteId(0),
                tier: usize::from(i >= 30),
            });
            ex.push(Labelled {
                vector: v,
                cues: [0.0; N_CUES],
                route: RouteId(1),
                tier: 1 + usize::from(i >= 40),
            });
        }
        let opts = TrainOptions {
            margin: 0.0,
            epochs: 800,
            ..TrainOptions::default()
        };
        let m = Difficulty::train(&ex, 2, &[2, 3, 2], opts).expect("fitted");
        assert!(m.covers(RouteId(0)) && m.covers(RouteId(1)) && !m.covers(RouteId(2)));
        let tier = |r: usize, x: f32| {
            let s = m.score(&[x, 1.0], &[0.0; N_CUES]);
            m.tier(RouteId(r), s, None).unwrap()
        };
        assert_eq!((tier(0, 0.1), tier(0, 0.9)), (0, 1));
        assert_eq!((tier(1, 0.1), tier(1, 0.5), tier(1, 0.9)), (1, 1, 2));
        assert_eq!(m.thresholds[1].as_ref().unwrap()[0], f32::NEG_INFINITY);
        // Config thresholds (difficulty units) win.
        let s = m.score(&[0.9, 1.0], &[0.0; N_CUES]);
        assert_eq!(m.tier(RouteId(0), s, Some(&[0.999_999])), Some(0));
        // A margin leans up.
        let leaning = Difficulty::train(
            &ex,
            2,
            &[2, 3, 2],
            TrainOptions {
                margin: 5.0,
                ..opts
            },
        )
        .unwrap();
        let s = leaning.score(&[0.4, 1.0], &[0.0; N_CUES]);
        assert_eq!(leaning.tier(RouteId(0), s, None), Some(1));
        // Nothing to fit: no route with two tiers.
        let one: Vec<Labelled> = ex.iter().copied().filter(|e| e.tier == 1).collect();
        assert!(Difficulty::train(&one[..10], 2, &[2, 3, 2], opts).is_none());
    }
}
