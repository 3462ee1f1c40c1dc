//! The use-case classifier of auto routes: k nearest neighbours per route over reference
//! examples, scored against the prompt's embedding.
//!
//! A route's score is the mean cosine similarity of the prompt to its `k` most similar examples
//! (fewer when it has fewer), so a route with many examples is not favoured for having many,
//! plus [`LEXICAL_WEIGHT`] times the log-probability the lexical model (`lexical.rs`: the
//! prompt's opening words, fitted on the same examples) gives the route among the candidates.
//! The confidence of the best route is its share of a softmax over the candidates' scores at
//! [`TEMPERATURE`]: about 1 when one route is clearly ahead, about 1/n when all are equal.
//!
//! Examples come from three sources, kept apart so each can be replaced: the config (`examples`),
//! training files (`sluice route train`, stored), and the prompt log (prompts that services
//! sent to named routes, refreshed in the background). Work per decision: one dot product per
//! example (384 floats), so a few thousand examples stay well under a tenth of a millisecond.

use parking_lot::RwLock;

use super::lexical::{FitOptions, Lexical};
use crate::config::RouteId;

/// Softmax temperature over route scores (cosine units). Chosen on the development set
/// (`benches/workloads/routing-dev.jsonl`) so that confidence tracks accuracy: see README.
pub const TEMPERATURE: f32 = 0.05;
/// Weight of the lexical model's log-probability in a route's score (cosine units), chosen on
/// the development set.
pub const LEXICAL_WEIGHT: f32 = 0.15;

/// Where a route's examples came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Trained,
    PromptLog,
}

/// Vectors of one route, by source; `dims` floats each, back to back.
#[derive(Debug, Default, Clone)]
pub struct RouteVectors {
    pub config: Vec<f32>,
    pub trained: Vec<f32>,
    pub prompt_log: Vec<f32>,
}

impl RouteVectors {
    fn all(&self) -> impl Iterator<Item = &[f32]> + '_ {
        [&self.config, &self.trained, &self.prompt_log]
            .into_iter()
            .map(Vec::as_slice)
    }
}

/// The classifier. Examples of the prompt log are swapped in under a lock (and the lexical
/// model fitted again); a decision holds the read side for its few microseconds.
pub struct UseCase {
    dims: usize,
    neighbors: usize,
    routes: RwLock<Vec<RouteVectors>>,
    /// The opening words of every example, by route and source, for fitting the lexical model.
    heads: RwLock<Vec<(RouteId, Source, String)>>,
    lexical: RwLock<Lexical>,
}

/// What the classifier chose among an auto route's candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub route: RouteId,
    /// 0..1, see the module doc.
    pub confidence: f32,
}

impl UseCase {
    /// `routes` indexed by `RouteId`; `neighbors` = k; `heads`: each example's opening words
    /// (`lexical::head`). Fits the lexical model (blocking: a fraction of a second).
    pub fn new(
        dims: usize,
        neighbors: usize,
        routes: Vec<RouteVectors>,
        heads: Vec<(RouteId, Source, String)>,
    ) -> UseCase {
        let lexical = fit(&heads, routes.len());
        UseCase {
            dims,
            neighbors: neighbors.max(1),
            routes: RwLock::new(routes),
            heads: RwLock::new(heads),
            lexical: RwLock::new(lexical),
        }
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Examples per route and source: (config, trained, prompt log).
    pub fn counts(&self) -> Vec<(usize, usize, usize)> {
        let d = self.dims.max(1);
        self.routes
            .read()
            .iter()
            .map(|r| {
                (
                    r.config.len() / d,
                    r.trained.len() / d,
                    r.prompt_log.len() / d,
                )
            })
            .collect()
    }

    /// The config's and trained examples of `route` (what its clusters are fitted on).
    pub fn route_examples(&self, route: RouteId) -> Vec<f32> {
        self.routes
            .read()
            .get(route.0)
            .map(|r| [r.config.as_slice(), r.trained.as_slice()].concat())
            .unwrap_or_default()
    }

    /// Replaces the prompt-log examples of every route in `examples` (vectors and opening
    /// words) and fits the lexical model again. Blocking (the fit).
    pub fn set_prompt_log(&self, examples: Vec<(RouteId, Vec<f32>, Vec<String>)>) {
        let heads = {
            let mut heads = self.heads.write();
            let replaced: Vec<RouteId> = examples.iter().map(|(r, _, _)| *r).collect();
            heads.retain(|(r, src, _)| *src != Source::PromptLog || !replaced.contains(r));
            for (r, _, h) in &examples {
                heads.extend(h.iter().map(|h| (*r, Source::PromptLog, h.clone())));
            }
            heads.clone()
        };
        let lexical = fit(&heads, self.routes.read().len());
        let mut routes = self.routes.write();
        for (r, vectors, _) in examples {
            if let Some(rv) = routes.get_mut(r.0) {
                rv.prompt_log = vectors;
            }
        }
        *self.lexical.write() = lexical;
    }

    /// The candidate closest to the prompt (`v` its embedding, `head` its opening words) and
    /// its confidence; `None` when no candidate has examples (or `v` has the wrong size).
    pub fn classify(&self, v: &[f32], head: &str, candidates: &[RouteId]) -> Option<Choice> {
        if v.len() != self.dims || candidates.is_empty() {
            return None;
        }
        let cands = &candidates[..candidates.len().min(64)];
        let mut classes = [0usize; 64];
        for (c, r) in classes.iter_mut().zip(cands) {
            *c = r.0;
        }
        let mut lex = [0f32; 64];
        self.lexical
            .read()
            .log_probs(head, &classes[..cands.len()], &mut lex[..cands.len()]);
        let routes = self.routes.read();
        let mut best: Option<(RouteId, f32)> = None;
        // Scores are at most 64 candidates; no allocation on this path.
        let mut scores = [f32::NEG_INFINITY; 64];
        let mut top = [f32::NEG_INFINITY; 64];
        for (i, &r) in candidates.iter().take(64).enumerate() {
            let Some(rv) = routes.get(r.0) else { continue };
            let k = self.neighbors.min(top.len());
            let mut n = 0usize;
            top[..k].fill(f32::NEG_INFINITY);
            for block in rv.all() {
                for e in block.chunks_exact(self.dims) {
                    let s = dot(v, e);
                    n += 1;
                    // Keep the k largest in `top[..k]`, smallest last.
                    if s > top[k - 1] {
                        let mut j = k - 1;
                        while j > 0 && top[j - 1] < s {
                            top[j] = top[j - 1];
                            j -= 1;
                        }
                        top[j] = s;
                    }
                }
            }
            if n == 0 {
                continue;
            }
            let used = k.min(n);
            let score = top[..used].iter().sum::<f32>() / used as f32 + LEXICAL_WEIGHT * lex[i];
            scores[i] = score;
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((r, score));
            }
        }
        let (route, score) = best?;
        let total: f32 = scores[..candidates.len().min(64)]
            .iter()
            .filter(|s| s.is_finite())
            .map(|s| ((s - score) / TEMPERATURE).exp())
            .sum();
        Some(Choice {
            route,
            confidence: (1.0 / total).clamp(0.0, 1.0),
        })
    }
}

/// The lexical model of `heads` (classes: route indices).
fn fit(heads: &[(RouteId, Source, String)], routes: usize) -> Lexical {
    let ex: Vec<(&str, usize)> = heads.iter().map(|(r, _, h)| (h.as_str(), r.0)).collect();
    Lexical::fit(&ex, routes, FitOptions::default())
}

/// Dot product of two equally long vectors, with independent lanes so that the compiler
/// vectorises it (the cosine of two L2-normalised embeddings).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn nearest_route_wins_and_confidence_tracks_the_margin() {
        let a = [unit(&[1.0, 0.0, 0.0]), unit(&[0.9, 0.1, 0.0])].concat();
        let b = [unit(&[0.0, 1.0, 0.0]), unit(&[0.1, 0.9, 0.0])].concat();
        let heads = vec![
            (RouteId(0), Source::Config, "translate this".to_owned()),
            (RouteId(1), Source::Config, "summarize this".to_owned()),
        ];
        let uc = UseCase::new(
            3,
            2,
            vec![
                RouteVectors {
                    config: a,
                    ..Default::default()
                },
                RouteVectors {
                    config: b,
                    ..Default::default()
                },
            ],
            heads,
        );
        let both = [RouteId(0), RouteId(1)];
        let c = uc.classify(&unit(&[1.0, 0.05, 0.0]), "", &both).unwrap();
        assert_eq!(c.route, RouteId(0));
        assert!(c.confidence > 0.99, "{c:?}");
        let halfway = unit(&[1.0, 1.0, 0.0]);
        let c = uc.classify(&halfway, "", &both).unwrap();
        assert!(c.confidence < 0.6, "halfway: unsure {c:?}");
        // Halfway, the opening words decide.
        let c = uc.classify(&halfway, "summarize it", &both).unwrap();
        assert_eq!(c.route, RouteId(1), "{c:?}");
        let c = uc.classify(&halfway, "translate it", &both).unwrap();
        assert_eq!(c.route, RouteId(0), "{c:?}");
        // Only the candidates count.
        let c = uc
            .classify(&unit(&[1.0, 0.0, 0.0]), "", &[RouteId(1)])
            .unwrap();
        assert_eq!(c.route, RouteId(1));
        assert!(uc.classify(&[1.0, 0.0], "", &both).is_none(), "wrong size");
        assert!(uc.classify(&unit(&[1.0, 0.0, 0.0]), "", &[]).is_none());

        // Prompt-log examples join the route's own.
        uc.set_prompt_log(vec![(
            RouteId(1),
            unit(&[0.0, 0.0, 1.0]),
            vec!["recap this".into()],
        )]);
        let c = uc.classify(&unit(&[0.0, 0.1, 1.0]), "", &both).unwrap();
        assert_eq!(c.route, RouteId(1));
        assert_eq!(uc.counts(), [(2, 0, 0), (2, 0, 1)]);
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..384).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..384).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}
