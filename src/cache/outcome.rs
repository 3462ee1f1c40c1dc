//! What lookups return and what the cache reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use crate::chat::ChatResponse;
use crate::text::GuardMismatch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HitKind {
    Exact,
    Semantic,
}

#[derive(Debug, Clone)]
pub struct CacheHit {
    pub response: ChatResponse,
    /// 1.0 for exact hits.
    pub similarity: f32,
    pub kind: HitKind,
    pub entry_id: u64,
    /// Time spent embedding the query (semantic path only).
    pub embed_time: Option<Duration>,
    /// Time spent searching the index and checking guards (semantic path only).
    pub search_time: Option<Duration>,
}

/// Why a lookup did not hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MissReason {
    /// The policy has the cache off.
    Disabled,
    /// The policy excludes this request (temperature, multi-turn).
    Bypassed,
    /// Nothing stored in the request's bucket.
    Empty,
    /// Best candidate's similarity, under the threshold.
    BelowThreshold(f32),
    /// Candidates above the threshold, all refused by a guard (the best one's).
    Guard(GuardMismatch),
    /// The embedding queue is full.
    Overloaded,
}

impl MissReason {
    pub fn metric_label(&self) -> &'static str {
        match self {
            MissReason::Disabled => "disabled",
            MissReason::Bypassed => "bypassed",
            MissReason::Empty => "empty",
            MissReason::BelowThreshold(_) => "below_threshold",
            MissReason::Guard(_) => "guard",
            MissReason::Overloaded => "overloaded",
        }
    }
}

/// A lookup's result with its timings (for metrics).
#[derive(Debug, Clone)]
pub struct LookupOutcome {
    pub hit: Option<CacheHit>,
    pub miss: Option<MissReason>,
    pub embed_time: Option<Duration>,
    pub search_time: Option<Duration>,
}

impl LookupOutcome {
    pub(super) fn miss(reason: MissReason) -> Self {
        LookupOutcome {
            hit: None,
            miss: Some(reason),
            embed_time: None,
            search_time: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RouteStats {
    pub entries: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
}

/// Entries and bytes are what is stored now; hits and misses count lookups since open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    pub entries: u64,
    pub bytes: u64,
    pub hits: u64,
    pub exact_hits: u64,
    pub semantic_hits: u64,
    pub misses: u64,
    /// Writes refused because the write queue was full.
    pub dropped_writes: u64,
    /// Buckets large enough to have an HNSW graph.
    pub graphs: u64,
    pub routes: BTreeMap<String, RouteStats>,
}

/// How similar two texts are, and whether the guards let them share an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PairReport {
    pub similarity: f32,
    pub guards: Result<(), GuardMismatch>,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) exact_hits: AtomicU64,
    pub(super) semantic_hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) dropped_writes: AtomicU64,
    /// route -> (hits, misses)
    pub(super) routes: Mutex<BTreeMap<String, (u64, u64)>>,
}

impl Counters {
    pub(super) fn record(&self, route: &str, hit: Option<HitKind>) {
        match hit {
            Some(HitKind::Exact) => self.exact_hits.fetch_add(1, Ordering::Relaxed),
            Some(HitKind::Semantic) => self.semantic_hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        let mut routes = self.routes.lock();
        let r = routes.entry(route.to_owned()).or_default();
        if hit.is_some() {
            r.0 += 1;
        } else {
            r.1 += 1;
        }
    }
}
