//! Requests through a fresh real cache (model, index, redb store in a temporary directory): a
//! lookup, and on a miss the simulated upstream's answer written back with the verification the
//! lookup named, committed before the next request as if the answer had come back in between.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rand::SeedableRng;

use super::{
    answer, answered_line, finish_run, judge, percentiles, policy, Decision, Latency, Options, Run,
    Verifier, WorkloadLine,
};
use crate::cache::{
    CacheSettings, Embedder, HitBy, HitKind, LookupOutcome, MissReason, SemanticCache,
};
use crate::config::CachePolicy;
use crate::store::Store;

/// A real cache and what the bench keeps while sending it requests.
pub(super) struct Replayer<'a> {
    lines: &'a [WorkloadLine],
    cache: SemanticCache,
    policy: CachePolicy,
    opts: Options,
    threshold: f32,
    rng: rand::rngs::StdRng,
    pub times: BTreeMap<&'static str, Vec<Duration>>,
    /// Entries per search bucket.
    pub buckets: HashMap<[u8; 32], usize>,
    _dir: tempfile::TempDir,
}

impl<'a> Replayer<'a> {
    pub fn new(
        lines: &'a [WorkloadLine],
        threshold: f32,
        opts: Options,
        embedder: &Embedder,
    ) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let settings = CacheSettings {
            data_dir: dir.path().to_owned(),
            ..CacheSettings::default()
        };
        let store = Store::open(dir.path()).map_err(|e| e.to_string())?;
        let cache = SemanticCache::open_with(store, embedder.clone(), &settings)
            .map_err(|e| e.to_string())?;
        let seed = match opts.verifier {
            Verifier::Judge { seed, .. } => seed,
            Verifier::Off | Verifier::Agreement => 0,
        };
        Ok(Replayer {
            lines,
            cache,
            policy: policy(threshold, opts),
            opts,
            threshold,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            times: BTreeMap::new(),
            buckets: HashMap::new(),
            _dir: dir,
        })
    }

    /// Sends line `i` as request number `n`: a lookup, then on a miss the upstream's answer.
    pub async fn request(&mut self, n: usize, i: usize) -> Result<Decision, String> {
        let line = &self.lines[i];
        let key = line.key().map_err(|e| format!("line {i}: {e}"))?;
        let start = Instant::now();
        let outcome = self.cache.lookup_outcome(&key, &self.policy).await;
        let took = start.elapsed();
        let outcome = outcome.map_err(|e| e.to_string())?;
        let mut d = decision(n, self.threshold, &outcome)?;
        if let Some(v) = outcome.verify {
            // The gray-zone candidate, for the decisions file (not a hit).
            d.matched_index = Some(self.entry_line(v.entry_id).await?);
        }
        if let Some(t) = outcome.embed_time {
            self.times.entry("embedding").or_default().push(t);
        }
        let class = if d.hit { d.outcome } else { "misses" };
        self.times.entry(class).or_default().push(took);
        self.times.entry("lookups").or_default().push(took);
        if d.hit {
            return Ok(d);
        }
        if !key.query_text().is_empty() {
            *self.buckets.entry(key.bucket).or_default() += 1;
        }
        let route = key.route().to_owned();
        let mut verify = outcome
            .verify
            .filter(|_| self.opts.verifier != Verifier::Off);
        if let (Some(v), Verifier::Judge { error, .. }) = (verify, self.opts.verifier) {
            let j = self.entry_line(v.entry_id).await?;
            let verdict = judge(self.lines, i, j, error, &mut self.rng);
            self.cache.observe(&route, v, verdict);
            verify = None;
        }
        let start = Instant::now();
        let fresh = answer(i, line)?;
        if let Some(v) = verify {
            self.cache.verify(&route, v, &fresh);
        }
        if !self.cache.insert(key, &fresh, &self.policy, None) {
            return Err(format!("line {i}: the cache refused the insert"));
        }
        // Committed before the next lookup, as if the answer had come back in between.
        self.cache.flush().await.map_err(|e| e.to_string())?;
        self.times
            .entry("insert")
            .or_default()
            .push(start.elapsed());
        Ok(d)
    }

    /// The line whose answer entry `id` holds.
    async fn entry_line(&self, id: u64) -> Result<usize, String> {
        let (_, r) = self
            .cache
            .entry(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("a verified entry is gone")?;
        answered_line(&r).ok_or_else(|| "an entry this bench did not store".to_owned())
    }

    pub fn latency(&mut self) -> Latency {
        let mut pick = |k: &str| percentiles(self.times.remove(k).unwrap_or_default());
        Latency {
            lookups: pick("lookups"),
            exact_hits: pick("exact"),
            semantic_hits: pick("semantic"),
            misses: pick("misses"),
            embedding: pick("embedding"),
            insert_flush: pick("insert"),
        }
    }
}

/// One replay of the file, in order, through a fresh real cache at `threshold`.
pub(super) async fn replay(
    lines: &[WorkloadLine],
    threshold: f32,
    opts: Options,
    embedder: &Embedder,
) -> Result<Run, String> {
    let mut r = Replayer::new(lines, threshold, opts, embedder)?;
    let mut decisions = Vec::with_capacity(lines.len());
    for i in 0..lines.len() {
        decisions.push(r.request(i, i).await?);
    }
    let largest = r.buckets.values().copied().max().unwrap_or(0);
    let latency = r.latency();
    let run = finish_run(lines, threshold, "cache", decisions, largest);
    Ok(Run {
        latency: Some(latency),
        ..run
    })
}

/// A real lookup's outcome as a decision (a hit's answer names the line that stored it).
fn decision(n: usize, threshold: f32, outcome: &LookupOutcome) -> Result<Decision, String> {
    let mut d = Decision {
        index: n,
        hit: outcome.hit.is_some(),
        matched_index: None,
        similarity: None,
        threshold,
        outcome: "",
        guard: None,
    };
    if let Some(hit) = &outcome.hit {
        let j = answered_line(&hit.response)
            .ok_or_else(|| format!("request {n}: hit on an entry this replay did not store"))?;
        d.matched_index = Some(j);
        d.similarity = Some(hit.similarity);
        d.outcome = match (hit.kind, hit.by) {
            (HitKind::Exact, _) => "exact",
            (HitKind::Semantic, Some(HitBy::Frame)) => "frame",
            (HitKind::Semantic, Some(HitBy::Learned)) => "learned",
            (HitKind::Semantic, Some(HitBy::Document)) => "document",
            (HitKind::Semantic, _) => "semantic",
        };
    } else {
        let reason = outcome.miss.unwrap_or(MissReason::Empty);
        match reason {
            MissReason::BelowThreshold(s) => d.similarity = Some(s),
            MissReason::Guard(g) => d.guard = Some(g.metric_label()),
            MissReason::Gray(_, g) => {
                d.guard = g.map(|g| g.metric_label());
                d.similarity = outcome.verify.map(|v| v.similarity);
            }
            _ => {}
        }
        d.outcome = reason.metric_label();
    }
    Ok(d)
}
