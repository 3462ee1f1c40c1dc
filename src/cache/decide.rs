//! The lookup decision: given a query and its bucket's nearest stored entries, hit, verify or
//! miss. The live cache ([`super::SemanticCache`]) and `sluice bench cache` both call
//! [`decide`]; nothing here is mirrored elsewhere.
//!
//! For each candidate, best first (at most [`CANDIDATES`]), the text rules compare the two
//! instructions ([`crate::text::compare`]):
//! * a **hard** mismatch (numbers, names, negation, direction, question structure, task, a
//!   different task frame ...) rules the candidate out, at any similarity;
//! * **equal task frames** over the same operands are the same request: a hit;
//! * every guard agreeing and a similarity at or above the route's threshold: a hit;
//! * otherwise, from [`GRAY_MARGIN`] below the threshold, or refused only by a soft guard
//!   (different content words), the candidate is in the **gray zone**: served as a miss, and
//!   named for verification (the fresh answer is compared with the cached one off the response
//!   path, see [`Learner`]). A gray candidate is served only once verified observations of its
//!   kind, at its similarity or above, bound the error below the route's `max_error`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::text::{self, Agreement, Features, GuardMismatch};

/// Candidates examined per semantic lookup (best first) before giving up. Generous, because
/// entries that differ only in a number ("product 17" / "product 71") are nearly identical
/// vectors: the one the guards accept can rank below several the guards refuse.
pub const CANDIDATES: usize = 32;
/// Similarity an instruction needs when the document it is about matched exactly and the task
/// frames cannot decide (one instruction has none). Equivalent instructions are short and worded
/// freely ("Summarize this:" vs "Please summarize the following article:" is 0.62); different
/// tasks are refused by the guards (task words, numbers, negation, content words).
pub const DOCUMENT_INSTRUCTION_THRESHOLD: f32 = 0.5;
/// The gray zone starts this far below the accept threshold.
pub const GRAY_MARGIN: f32 = 0.15;
/// Similarity bins of the learner: 0.50 .. 1.00 in steps of 0.01.
const BINS: usize = 50;
const BIN_FLOOR: f32 = 0.5;

/// How a candidate became a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitBy {
    /// Equal task frames over the same operands.
    Frame,
    /// All guards agree, similarity at or above the threshold.
    Similarity,
    /// A gray-zone candidate whose kind was verified often enough (see [`Learner`]).
    Learned,
    /// The same document re-spaced or otherwise wrapped, with no instruction on either side.
    Document,
}

/// Why a candidate is in the gray zone: the learner keeps separate statistics for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gray {
    /// Every guard agrees, the similarity is below the threshold.
    Below,
    /// Only the content-word guard objects.
    Content,
}

impl Gray {
    fn index(self) -> usize {
        match self {
            Gray::Below => 0,
            Gray::Content => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Gray::Below => "below",
            Gray::Content => "content",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Hit {
        id: u64,
        similarity: f32,
        by: HitBy,
    },
    /// A miss now; the candidate is worth verifying against the fresh answer.
    Verify {
        id: u64,
        similarity: f32,
        gray: Gray,
        /// The best candidate's objection, when a guard made it.
        guard: Option<GuardMismatch>,
    },
    Miss {
        /// The best candidate's similarity (0 without candidates).
        best: f32,
        /// The objection of the best candidate refused by a guard, if any.
        guard: Option<GuardMismatch>,
    },
}

/// One stored entry offered to [`decide`].
pub struct Candidate<'a> {
    pub id: u64,
    pub similarity: f32,
    pub features: &'a Features,
    /// Verified evidence against this entry: no learned hit at or below this similarity.
    pub vetoed_at_or_below: f32,
}

/// The thresholds of one lookup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub accept: f32,
    /// Allowed error of learned hits (the route's `max_error`); 0 turns learned hits off.
    pub max_error: f64,
}

impl Thresholds {
    /// The route's threshold, relaxed for instructions over a matched document.
    pub fn new(similarity_threshold: f32, document: bool, max_error: f64) -> Thresholds {
        let accept = if document {
            similarity_threshold.min(DOCUMENT_INSTRUCTION_THRESHOLD)
        } else {
            similarity_threshold
        };
        Thresholds { accept, max_error }
    }
}

/// Decides among `candidates` (best first) for `query`; `operands`: the bucket's prompts carry
/// operands (so task frames decide); `learner`: the route's verified observations.
pub fn decide<'a>(
    query: &Features,
    operands: bool,
    candidates: impl IntoIterator<Item = Candidate<'a>>,
    th: Thresholds,
    learner: Option<&Learner>,
) -> Decision {
    let gray_floor = (th.accept - GRAY_MARGIN).max(0.0);
    let mut best: Option<f32> = None;
    let mut guard: Option<GuardMismatch> = None;
    let mut gray: Option<(u64, f32, Gray)> = None;
    for c in candidates.into_iter().take(CANDIDATES) {
        best.get_or_insert(c.similarity);
        let agreement = text::compare(query, c.features, operands);
        let kind = match agreement {
            Agreement::SameFrame => {
                return Decision::Hit {
                    id: c.id,
                    similarity: c.similarity,
                    by: HitBy::Frame,
                }
            }
            Agreement::Hard(g) => {
                guard.get_or_insert(g);
                continue;
            }
            Agreement::Compatible if c.similarity >= th.accept => {
                return Decision::Hit {
                    id: c.id,
                    similarity: c.similarity,
                    by: HitBy::Similarity,
                }
            }
            Agreement::Compatible => Gray::Below,
            Agreement::Soft(g) => {
                guard.get_or_insert(g);
                Gray::Content
            }
        };
        if c.similarity < gray_floor {
            continue;
        }
        let learned = learner.is_some_and(|l| {
            c.similarity > c.vetoed_at_or_below && l.accepts(kind, c.similarity, th.max_error)
        });
        if learned {
            return Decision::Hit {
                id: c.id,
                similarity: c.similarity,
                by: HitBy::Learned,
            };
        }
        gray.get_or_insert((c.id, c.similarity, kind));
    }
    match gray {
        Some((id, similarity, gray)) => Decision::Verify {
            id,
            similarity,
            gray,
            guard,
        },
        None => Decision::Miss {
            best: best.unwrap_or(0.0),
            guard,
        },
    }
}

/// The decision over several buckets (the query's own, or those holding its document, see
/// `Catalog::same_document`), each decided by [`decide`] in turn: the first hit (later buckets
/// are not decided), else the first gray candidate, else the first miss.
pub fn first_of(decisions: impl IntoIterator<Item = Decision>) -> Option<Decision> {
    let mut out: Option<Decision> = None;
    for d in decisions {
        match (&out, &d) {
            (_, Decision::Hit { .. }) => return Some(d),
            (None, _) | (Some(Decision::Miss { .. }), Decision::Verify { .. }) => out = Some(d),
            _ => {}
        }
    }
    out
}

/// Verified observations of one route's gray-zone candidates: per kind ([`Gray`]) and similarity
/// bin, how often the cached answer turned out right (the fresh answer agreed, or the judge said
/// so) and how often wrong. A gray candidate at similarity `s` is served when the observations of
/// its kind at `s` or above bound the error rate below `max_error` with 95% confidence (the
/// Wilson upper bound): a learned, data-driven threshold in the spirit of verified semantic
/// caching (vCache, arXiv 2502.03771), pooled per route and kind rather than per entry, with
/// per-entry vetoes from observed disagreements.
#[derive(Debug)]
pub struct Learner {
    /// [kind][bin] -> (agreed, disagreed), packed as two u32 halves.
    bins: [[AtomicU64; BINS]; 2],
}

impl Default for Learner {
    fn default() -> Self {
        Learner {
            bins: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

fn bin(similarity: f32) -> Option<usize> {
    if similarity < BIN_FLOOR {
        return None;
    }
    Some((((similarity - BIN_FLOOR) * 100.0) as usize).min(BINS - 1))
}

impl Learner {
    /// Adds one verified observation.
    pub fn observe(&self, kind: Gray, similarity: f32, agreed: bool) {
        let Some(b) = bin(similarity) else { return };
        let add = if agreed { 1u64 << 32 } else { 1 };
        self.bins[kind.index()][b].fetch_add(add, Ordering::Relaxed);
    }

    /// (agreed, disagreed) of `kind` at `similarity` or above.
    pub fn counts_from(&self, kind: Gray, similarity: f32) -> (u64, u64) {
        let Some(from) = bin(similarity) else {
            return (0, 0);
        };
        self.bins[kind.index()][from..]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .fold((0, 0), |(a, d), v| (a + (v >> 32), d + (v & 0xffff_ffff)))
    }

    /// True when the observations of `kind` at `similarity` or above bound the error below
    /// `max_error` (95% Wilson upper bound).
    pub fn accepts(&self, kind: Gray, similarity: f32, max_error: f64) -> bool {
        if max_error <= 0.0 {
            return false;
        }
        let (agreed, disagreed) = self.counts_from(kind, similarity);
        wilson_upper(disagreed, agreed + disagreed) <= max_error
    }

    /// Every bin, for persistence: [kind][bin] packed counts.
    pub fn snapshot(&self) -> Vec<u64> {
        self.bins
            .iter()
            .flat_map(|k| k.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect()
    }

    pub fn restore(&self, packed: &[u64]) {
        for (i, v) in packed.iter().take(2 * BINS).enumerate() {
            self.bins[i / BINS][i % BINS].store(*v, Ordering::Relaxed);
        }
    }
}

/// Upper end of the 95% Wilson score interval of `errors` out of `n` (1 when `n` is 0).
pub fn wilson_upper(errors: u64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let z = 1.96_f64;
    let n = n as f64;
    let p = errors as f64 / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt();
    ((centre + spread) / (1.0 + z2 / n)).min(1.0)
}

/// Per-entry negative evidence: the highest similarity at which a candidate for this entry was
/// verified wrong (f32 bits; 0 = none).
#[derive(Debug, Default)]
pub struct Veto(AtomicU32);

impl Veto {
    pub fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub fn raise(&self, similarity: f32) {
        let mut cur = self.0.load(Ordering::Relaxed);
        while f32::from_bits(cur) < similarity {
            match self.0.compare_exchange_weak(
                cur,
                similarity.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(s: &str) -> Features {
        Features::extract(s)
    }

    #[test]
    fn hard_mismatches_never_hit_and_compatible_ones_need_the_threshold() {
        let q = features("How do I reset my password?");
        let same = features("How can I reset my password?");
        let other = features("How do I reset my password in 2019?");
        let th = Thresholds::new(0.8, false, 0.02);
        let d = decide(
            &q,
            false,
            [
                Candidate {
                    id: 1,
                    similarity: 0.99,
                    features: &other,
                    vetoed_at_or_below: 0.0,
                },
                Candidate {
                    id: 2,
                    similarity: 0.9,
                    features: &same,
                    vetoed_at_or_below: 0.0,
                },
            ],
            th,
            None,
        );
        assert_eq!(
            d,
            Decision::Hit {
                id: 2,
                similarity: 0.9,
                by: HitBy::Similarity
            }
        );
        let d = decide(
            &q,
            false,
            [Candidate {
                id: 2,
                similarity: 0.75,
                features: &same,
                vetoed_at_or_below: 0.0,
            }],
            th,
            None,
        );
        assert!(
            matches!(
                d,
                Decision::Verify {
                    id: 2,
                    gray: Gray::Below,
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn learned_hits_need_enough_verified_agreement() {
        let l = Learner::default();
        assert!(!l.accepts(Gray::Below, 0.75, 0.02));
        for _ in 0..150 {
            l.observe(Gray::Below, 0.76, true);
        }
        assert!(
            !l.accepts(Gray::Below, 0.75, 0.02),
            "n=150 bounds the error at 2.5%"
        );
        for _ in 0..100 {
            l.observe(Gray::Below, 0.78, true);
        }
        assert!(l.accepts(Gray::Below, 0.75, 0.02));
        assert!(!l.accepts(Gray::Content, 0.75, 0.02), "kinds are apart");
        for _ in 0..10 {
            l.observe(Gray::Below, 0.77, false);
        }
        assert!(
            !l.accepts(Gray::Below, 0.75, 0.02),
            "errors raise the bound"
        );
        assert!(wilson_upper(0, 190) < 0.02 && wilson_upper(0, 180) > 0.02);
        let v = Veto::default();
        v.raise(0.8);
        v.raise(0.7);
        assert_eq!(v.get(), 0.8);
    }
}
