//! What lookups return and what the cache reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use super::decide::{Gray, HitBy};
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
    /// How a semantic hit was decided (`None` for exact hits).
    pub by: Option<HitBy>,
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
    /// A gray-zone candidate, to be verified against the fresh answer (with the guard that
    /// objected, if one did).
    Gray(Gray, Option<GuardMismatch>),
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
            MissReason::Gray(..) => "gray",
            MissReason::Overloaded => "overloaded",
        }
    }
}

/// A gray-zone candidate named by a lookup, to verify against the fresh answer: pass it back to
/// [`super::SemanticCache::insert`] (or [`super::SemanticCache::observe`] for a judge's verdict).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verification {
    pub entry_id: u64,
    pub similarity: f32,
    pub gray: Gray,
}

/// A lookup's result with its timings (for metrics).
#[derive(Debug, Clone, Default)]
pub struct LookupOutcome {
    pub hit: Option<CacheHit>,
    pub miss: Option<MissReason>,
    /// A miss in the gray zone: the candidate to verify.
    pub verify: Option<Verification>,
    pub embed_time: Option<Duration>,
    pub search_time: Option<Duration>,
}

impl LookupOutcome {
    pub(super) fn miss(reason: MissReason) -> Self {
        LookupOutcome {
            miss: Some(reason),
            ..LookupOutcome::default()
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

/// Lookups of one route and owner since open.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Lookups {
    pub(super) exact: u64,
    pub(super) semantic: u64,
    pub(super) misses: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) dropped_writes: AtomicU64,
    /// route -> owner ("" for shared entries) -> lookups
    pub(super) routes: Mutex<BTreeMap<String, BTreeMap<String, Lookups>>>,
}

impl Counters {
    pub(super) fn record(&self, route: &str, owner: Option<&str>, hit: Option<HitKind>) {
        let mut routes = self.routes.lock();
        let owner = owner.unwrap_or("");
        // Looked up by reference first: the common case allocates nothing.
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), BTreeMap::new());
        }
        let owners = routes.get_mut(route).expect("inserted above");
        if !owners.contains_key(owner) {
            owners.insert(owner.to_owned(), Lookups::default());
        }
        let r = owners.get_mut(owner).expect("inserted above");
        match hit {
            Some(HitKind::Exact) => r.exact += 1,
            Some(HitKind::Semantic) => r.semantic += 1,
            None => r.misses += 1,
        }
    }

    pub(super) fn dropped(&self) {
        self.dropped_writes.fetch_add(1, Ordering::Relaxed);
    }
}
