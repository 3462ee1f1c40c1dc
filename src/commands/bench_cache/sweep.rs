//! The sweep: every line embedded once, then for each threshold the cache's own decision
//! function ([`crate::cache::decide`]) over those vectors, with the same verification and
//! learning the real cache does (the exact scan the cache uses for buckets of up to
//! `EXACT_SCAN_MAX` entries).

use std::collections::HashMap;

use rand::SeedableRng;

use super::{answer, judge, Decision, Options, Verifier, WorkloadLine};
use crate::cache::decide::{self, Candidate, Decision as Decided, HitBy, Learner, Thresholds};
use crate::cache::embed::cosine;
use crate::cache::{answer_text, doc_keys, document_matches, Embedder};
use crate::store::StoredDoc;
use crate::text::Features;

/// What the decision function needs of one line, computed once.
pub(super) struct Prepared {
    fingerprint: [u8; 32],
    bucket: [u8; 32],
    document: bool,
    operands: bool,
    route: String,
    /// None for an empty instruction (stored for exact matching only).
    vector: Option<Vec<f32>>,
    features: Features,
    /// The simulated upstream's answer, as the cache compares answers.
    answer: Option<String>,
    /// The document's identity, as the cache keeps it.
    doc: Option<StoredDoc>,
}

/// Embeds each line's instruction on its own, as a lookup does (batching could change the last
/// bits of a vector, and a similarity right at a threshold with them).
pub(super) async fn prepare(
    lines: &[WorkloadLine],
    embedder: &Embedder,
) -> Result<Vec<Prepared>, String> {
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let key = line.key().map_err(|e| format!("line {i}: {e}"))?;
        let text = key.query_text();
        let vector = if text.is_empty() {
            None
        } else {
            Some(embedder.embed(text).await.map_err(|e| e.to_string())?)
        };
        out.push(Prepared {
            fingerprint: key.fingerprint,
            bucket: key.bucket,
            document: key.has_document(),
            operands: key.has_operands(),
            route: key.route().to_owned(),
            features: Features::extract_with(text, key.mentions()),
            vector,
            answer: answer_text(&answer(i, line)?),
            doc: key.doc.clone(),
        });
    }
    Ok(out)
}

/// Lookup, verification and insert-on-miss over the prepared lines at `threshold`. Returns the
/// decisions and the largest bucket.
pub(super) fn simulate(
    lines: &[WorkloadLine],
    prepared: &[Prepared],
    threshold: f32,
    opts: Options,
) -> (Vec<Decision>, usize) {
    let mut exact: HashMap<[u8; 32], usize> = HashMap::new();
    let mut buckets: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    let mut learners: HashMap<&str, Learner> = HashMap::new();
    let mut vetoes: HashMap<usize, f32> = HashMap::new();
    let mut docs: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(match opts.verifier {
        Verifier::Judge { seed, .. } => seed,
        Verifier::Off | Verifier::Agreement => 0,
    });
    let max_error = match opts.verifier {
        Verifier::Off => 0.0,
        Verifier::Agreement | Verifier::Judge { .. } => opts.max_error,
    };
    let mut decisions = Vec::with_capacity(prepared.len());
    for (i, p) in prepared.iter().enumerate() {
        let mut d = Decision {
            index: i,
            hit: false,
            matched_index: None,
            similarity: None,
            threshold,
            outcome: "empty",
            guard: None,
        };
        // The query's own bucket, then the buckets holding its document re-spaced or re-wrapped,
        // as `Catalog::same_document` finds them.
        let (search, bare) = match &p.doc {
            Some(doc) => same_document(doc, &p.bucket, &docs, prepared),
            None => (vec![p.bucket], None),
        };
        if let Some(&j) = exact.get(&p.fingerprint) {
            (d.hit, d.matched_index, d.similarity, d.outcome) = (true, Some(j), Some(1.0), "exact");
        } else if let Some(j) = bare {
            (d.hit, d.matched_index, d.similarity, d.outcome) =
                (true, Some(j), Some(1.0), "document");
        } else if let Some(v) = p.vector.as_deref() {
            if threshold < 1.0 {
                let th = Thresholds::new(threshold, p.document, max_error);
                let learner = learners.get(p.route.as_str());
                let decisions = search.iter().filter_map(|b| {
                    let stored = buckets.get(b).filter(|s| !s.is_empty())?;
                    let mut scored: Vec<(usize, f32)> = stored
                        .iter()
                        .map(|&j| (j, cosine(v, prepared[j].vector.as_deref().unwrap_or(&[]))))
                        .collect();
                    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
                    scored.truncate(decide::CANDIDATES);
                    let candidates = scored.iter().map(|&(j, similarity)| Candidate {
                        id: j as u64,
                        similarity,
                        features: &prepared[j].features,
                        vetoed_at_or_below: vetoes.get(&j).copied().unwrap_or(0.0),
                    });
                    Some(decide::decide(
                        &p.features,
                        p.operands,
                        candidates,
                        th,
                        learner,
                    ))
                });
                match decide::first_of(decisions) {
                    None => {}
                    Some(Decided::Hit { id, similarity, by }) => {
                        d.hit = true;
                        d.matched_index = Some(id as usize);
                        d.similarity = Some(similarity);
                        d.outcome = match by {
                            HitBy::Frame => "frame",
                            HitBy::Learned => "learned",
                            HitBy::Similarity => "semantic",
                            HitBy::Document => "document",
                        };
                    }
                    Some(Decided::Verify {
                        id,
                        similarity,
                        gray,
                        guard,
                    }) => {
                        (d.similarity, d.outcome) = (Some(similarity), "gray");
                        d.guard = guard.map(|g| g.metric_label());
                        let j = id as usize;
                        d.matched_index = Some(j);
                        let agreed = match opts.verifier {
                            Verifier::Off => None,
                            Verifier::Agreement => match (&p.answer, &prepared[j].answer) {
                                (Some(a), Some(b)) => Some(a == b),
                                _ => None,
                            },
                            Verifier::Judge { error, .. } => {
                                Some(judge(lines, i, j, error, &mut rng))
                            }
                        };
                        if let Some(agreed) = agreed {
                            learners
                                .entry(p.route.as_str())
                                .or_default()
                                .observe(gray, similarity, agreed);
                            if !agreed {
                                let v = vetoes.entry(j).or_insert(0.0);
                                *v = v.max(similarity);
                            }
                        }
                    }
                    Some(Decided::Miss { best, guard }) => {
                        d.similarity = guard.is_none().then_some(best);
                        d.outcome = if guard.is_some() {
                            "guard"
                        } else {
                            "below_threshold"
                        };
                        d.guard = guard.map(|g| g.metric_label());
                    }
                }
            }
        }
        if !d.hit {
            if let Some(old) = exact.insert(p.fingerprint, i) {
                forget_document(old, prepared, &mut docs);
            }
            if p.vector.is_some() {
                buckets.entry(p.bucket).or_default().push(i);
            }
            if let Some(doc) = &p.doc {
                for &k in doc_keys(doc) {
                    docs.entry(k).or_default().push(i);
                }
            }
        }
        decisions.push(d);
    }
    let largest = buckets.values().map(Vec::len).max().unwrap_or(0);
    (decisions, largest)
}

/// The query's own bucket, then those of stored lines holding the same document as `doc`, and
/// a stored line that is, like the query, the document alone: what `Catalog::same_document`
/// gives the cache, by the same function.
fn same_document(
    doc: &StoredDoc,
    own: &[u8; 32],
    docs: &HashMap<[u8; 32], Vec<usize>>,
    prepared: &[Prepared],
) -> (Vec<[u8; 32]>, Option<usize>) {
    let found = document_matches(
        doc,
        own,
        |k| docs.get(k).map(Vec::as_slice),
        |j| Some((prepared[j].doc.as_ref()?, &prepared[j].bucket)),
    );
    let mut buckets = Vec::with_capacity(found.buckets.len() + 1);
    buckets.push(*own);
    buckets.extend(found.buckets);
    (buckets, found.bare)
}

/// A line replaced by a later insert of the same fingerprint no longer holds its document.
fn forget_document(old: usize, prepared: &[Prepared], docs: &mut HashMap<[u8; 32], Vec<usize>>) {
    if let Some(doc) = &prepared[old].doc {
        for k in doc_keys(doc) {
            if let Some(v) = docs.get_mut(k) {
                v.retain(|&x| x != old);
            }
        }
    }
}
