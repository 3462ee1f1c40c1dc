//! Traffic mode: a workload replayed as a stream with recurrences, the way production traffic
//! repeats itself. Each of N requests picks a group by a Zipf law over the groups (ranked in a
//! seeded random order) and one of the group's lines uniformly; the real cache answers it, and
//! the simulated upstream answers misses consistently (the group's answer), so verification and
//! learning work as they would against a deterministic model.
//!
//! The ceiling of the hit rate is what a perfect cache could serve: every request but a group's
//! first appearance (1 - first appearances / requests), per window of 1,000 requests and overall.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::replay::Replayer;
use super::{Options, WorkloadLine};
use crate::cache::Embedder;

/// Requests per reported window.
pub const WINDOW: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Spec {
    pub requests: usize,
    pub zipf: f64,
    pub seed: u64,
    pub threshold: f32,
}

/// Hits and their correctness over some requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Tally {
    pub requests: u64,
    pub hits: u64,
    pub correct: u64,
    pub false_hits: u64,
    /// Requests whose group appeared before (what a perfect cache serves).
    pub servable: u64,
}

impl Tally {
    fn add(&mut self, hit: bool, correct: bool, servable: bool) {
        self.requests += 1;
        self.hits += u64::from(hit);
        self.correct += u64::from(hit && correct);
        self.false_hits += u64::from(hit && !correct);
        self.servable += u64::from(servable);
    }

    pub fn hit_rate(&self) -> f64 {
        ratio(self.hits, self.requests)
    }

    pub fn ceiling(&self) -> f64 {
        ratio(self.servable, self.requests)
    }

    /// correct / hits (1 without hits).
    pub fn precision(&self) -> f64 {
        if self.hits == 0 {
            1.0
        } else {
            ratio(self.correct, self.hits)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Traffic {
    pub requests: usize,
    pub zipf: f64,
    pub seed: u64,
    pub threshold: f32,
    pub groups: usize,
    pub overall: Tally,
    /// Per window of [`WINDOW`] requests.
    pub windows: Vec<Tally>,
    /// Requests for a line (a wording) the stream had not sent before: served, if at all, by a
    /// semantic decision.
    pub first_seen: Tally,
    /// Repeats of a wording already sent.
    pub repeated: Tally,
    /// Hits of verified gray-zone kinds (learned), and how many were wrong.
    pub learned_hits: u64,
    pub learned_false: u64,
}

/// The request stream: line indices.
fn stream(lines: &[WorkloadLine], spec: &Spec) -> Vec<usize> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
    // Groups in order of first appearance, then shuffled: the Zipf rank.
    let mut groups: Vec<&str> = Vec::new();
    let mut members: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (i, l) in lines.iter().enumerate() {
        let m = members.entry(l.group.as_str()).or_default();
        if m.is_empty() {
            groups.push(l.group.as_str());
        }
        m.push(i);
    }
    for i in (1..groups.len()).rev() {
        groups.swap(i, rng.random_range(0..=i));
    }
    let weights: Vec<f64> = (1..=groups.len())
        .map(|k| 1.0 / (k as f64).powf(spec.zipf))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cumulative.push(acc);
    }
    (0..spec.requests)
        .map(|_| {
            let r: f64 = rng.random();
            let g = cumulative.partition_point(|&c| c < r).min(groups.len() - 1);
            let m = &members[groups[g]];
            m[rng.random_range(0..m.len())]
        })
        .collect()
}

pub(super) async fn run(
    lines: &[WorkloadLine],
    spec: &Spec,
    opts: Options,
    embedder: &Embedder,
) -> Result<Traffic, String> {
    if spec.requests == 0 || spec.zipf < 0.0 {
        return Err("--traffic needs at least one request and --zipf >= 0".into());
    }
    let requests = stream(lines, spec);
    let mut r = Replayer::new(lines, spec.threshold, opts, embedder)?;
    let mut out = Traffic {
        requests: spec.requests,
        zipf: spec.zipf,
        seed: spec.seed,
        threshold: spec.threshold,
        groups: lines.iter().map(|l| &l.group).collect::<HashSet<_>>().len(),
        overall: Tally::default(),
        windows: Vec::new(),
        first_seen: Tally::default(),
        repeated: Tally::default(),
        learned_hits: 0,
        learned_false: 0,
    };
    let mut seen_groups: HashSet<&str> = HashSet::new();
    let mut seen_lines: HashSet<usize> = HashSet::new();
    for (n, &i) in requests.iter().enumerate() {
        if n % WINDOW == 0 {
            out.windows.push(Tally::default());
            tracing::info!(request = n, "traffic");
        }
        let d = r.request(n, i).await?;
        let group = lines[i].group.as_str();
        let servable = !seen_groups.insert(group);
        let correct = d.hit && d.matched_index.is_some_and(|j| lines[j].group == group);
        out.overall.add(d.hit, correct, servable);
        if let Some(w) = out.windows.last_mut() {
            w.add(d.hit, correct, servable);
        }
        if seen_lines.insert(i) {
            out.first_seen.add(d.hit, correct, servable);
        } else {
            out.repeated.add(d.hit, correct, servable);
        }
        if d.outcome == "learned" {
            out.learned_hits += 1;
            out.learned_false += u64::from(!correct);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_follows_zipf_and_is_seeded() {
        let lines: Vec<WorkloadLine> = (0..100)
            .map(|i| WorkloadLine {
                prompt: format!("p{i}"),
                group: format!("g{}", i / 2),
                system: None,
                route: None,
                kind: None,
            })
            .collect();
        let spec = Spec {
            requests: 5000,
            zipf: 1.0,
            seed: 3,
            threshold: 0.8,
        };
        let a = stream(&lines, &spec);
        assert_eq!(a, stream(&lines, &spec));
        let mut counts = std::collections::HashMap::new();
        for i in &a {
            *counts.entry(lines[*i].group.clone()).or_insert(0) += 1;
        }
        let mut c: Vec<i32> = counts.into_values().collect();
        c.sort_unstable_by(|a, b| b.cmp(a));
        // With 50 groups, the top one gets ~22% of a 1/k law, the 10th ~2%.
        assert!(c[0] > 800 && c[0] < 1400, "{c:?}");
        assert!(c[9] < 250, "{c:?}");
    }
}
