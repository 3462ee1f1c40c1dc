//! Vector search, one index per bucket (namespace + document fingerprint).
//!
//! Why per bucket and not one global HNSW with a namespace filter: a namespace is every
//! output-changing field of the request (route, model, system prompt, earlier turns,
//! sampling parameters...), so real traffic has many small namespaces and a few big ones
//! (one system prompt serving thousands of questions). A filtered global graph degrades badly
//! when the filter keeps a tiny fraction of the points (the walk has to visit most of the graph
//! to find a few admissible neighbours); per-bucket indexes keep every search inside its scope
//! by construction. Small buckets (up to [`EXACT_SCAN_MAX`] live vectors) use an exact scan, which
//! is faster than a graph at that size and has perfect recall; a bucket that grows past it gets an
//! HNSW graph (hnsw_rs), which carries the large ones.
//!
//! The graph's distance is [`UnitDot`], `1 - dot` with the vectorised dot product of
//! [`cosine`]: every stored vector is L2 normalised, so this is the cosine distance. (hnsw_rs' `DistCosine`
//! recomputes both norms in f64 in a serial fold, several times slower per evaluation; see
//! `benches/index.rs`, which keeps it as the baseline.)
//!
//! hnsw_rs cannot delete. Deleted or expired entries become tombstones: they stay in the graph
//! and searches skip them. A search first walks the graph without a filter (hnsw_rs stops early
//! only when no filter is set) asking for a margin of extra neighbours, and drops the dead or
//! refused ones; only when that leaves fewer than asked for does it walk again with the filter
//! inside the search. When tombstones exceed [`MAX_TOMBSTONE_SHARE`] of the graph the bucket is
//! compacted (the graph is rebuilt from the live vectors, outside the catalog lock). The store is
//! the source of truth: at startup every bucket is rebuilt from redb.

use std::collections::HashMap;
use std::sync::Arc;

use hnsw_rs::prelude::{Distance, Hnsw};

use super::embed::cosine;

/// Buckets with at most this many live vectors are scanned exactly. Measured with the
/// vectorised distance: a scan of 2,048 takes ~80 µs, about a quarter of an hnsw_rs search of
/// the same bucket (hnsw_rs costs more per visited node than per distance), with exact recall.
pub const EXACT_SCAN_MAX: usize = 2048;
/// Compact when tombstones exceed this share of the points in the graph.
pub const MAX_TOMBSTONE_SHARE: f64 = 0.3;
/// Graph parameters (public for `benches/index.rs`).
pub const HNSW_M: usize = 16;
/// 200, not 100: on clustered prompt-like vectors at 100k it lifted recall@10 at search ef 128
/// from 0.946 to 0.996 for the same search time (twice the build time); a larger M did not.
pub const HNSW_EF_CONSTRUCTION: usize = 200;
pub const HNSW_MAX_LAYER: usize = 16;
/// Smallest search breadth; a search for `k` neighbours uses at least `2 * k`.
pub const HNSW_EF_SEARCH_MIN: usize = 128;

/// Cosine distance of L2-normalised vectors, `1 - dot` (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - cosine(a, b)).max(0.0)
    }
}

pub type Graph = Hnsw<'static, f32, UnitDot>;

#[derive(Default)]
pub struct Bucket {
    live: HashMap<u64, Arc<[f32]>>,
    graph: Option<Graph>,
    /// Points in `graph` that are no longer live.
    tombstones: usize,
}

impl Bucket {
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn has_graph(&self) -> bool {
        self.graph.is_some()
    }

    pub fn insert(&mut self, id: u64, vector: Arc<[f32]>) {
        if let Some(g) = &self.graph {
            g.insert_slice((&vector, id as usize));
        }
        self.live.insert(id, vector);
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let removed = self.live.remove(&id).is_some();
        if removed && self.graph.is_some() {
            self.tombstones += 1;
        }
        removed
    }

    /// True when the bucket should get a graph, or a fresh one.
    pub fn needs_build(&self) -> bool {
        match &self.graph {
            None => self.live.len() > EXACT_SCAN_MAX,
            Some(g) => {
                let points = g.get_nb_point().max(1);
                self.tombstones as f64 > MAX_TOMBSTONE_SHARE * points as f64
            }
        }
    }

    /// The live vectors, to build a graph from without holding the catalog lock.
    pub fn snapshot(&self) -> Vec<(u64, Arc<[f32]>)> {
        self.live.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Installs a graph built from [`Self::snapshot`]; points added since are inserted too. A
    /// bucket that shrank back under the scan limit drops its graph instead.
    pub fn install(&mut self, graph: Graph, built_from: &[(u64, Arc<[f32]>)]) {
        if self.live.len() <= EXACT_SCAN_MAX {
            self.graph = None;
            self.tombstones = 0;
            return;
        }
        let known: std::collections::HashSet<u64> = built_from.iter().map(|(id, _)| *id).collect();
        for (id, v) in &self.live {
            if !known.contains(id) {
                graph.insert_slice((v, *id as usize));
            }
        }
        self.tombstones = known
            .iter()
            .filter(|id| !self.live.contains_key(id))
            .count();
        self.graph = Some(graph);
    }

    /// Up to `k` live entries most similar to `query` that `accept` admits, best first, with
    /// their exact cosine similarity.
    pub fn search(&self, query: &[f32], k: usize, accept: impl Fn(u64) -> bool) -> Vec<(u64, f32)> {
        self.search_ef(query, k, HNSW_EF_SEARCH_MIN, accept)
    }

    /// [`Self::search`] with the graph walk's breadth `ef` (at least twice what it asks for).
    pub fn search_ef(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: impl Fn(u64) -> bool,
    ) -> Vec<(u64, f32)> {
        let mut found: Vec<(u64, f32)> = match &self.graph {
            None => self
                .live
                .iter()
                .filter(|(id, _)| accept(**id))
                .map(|(id, v)| (*id, cosine(query, v)))
                .collect(),
            Some(g) => {
                let admit = |id: u64| -> Option<(u64, f32)> {
                    let v = self.live.get(&id)?;
                    accept(id).then(|| (id, cosine(query, v)))
                };
                // Room for the tombstones the walk may meet, then the cheap unfiltered walk.
                let ask = k + (k / 2).min(self.tombstones) + 2;
                let ef = ef.max(2 * ask);
                let found: Vec<(u64, f32)> = g
                    .search(query, ask, ef)
                    .into_iter()
                    .filter_map(|n| admit(n.d_id as u64))
                    .collect();
                if found.len() >= k.min(self.live.len()) {
                    found
                } else {
                    // Too many dead or refused neighbours: filter inside the walk.
                    let filter = |d: &usize| admit(*d as u64).is_some();
                    g.search_filter(query, k, ef, Some(&filter))
                        .into_iter()
                        .filter_map(|n| admit(n.d_id as u64))
                        .collect()
                }
            }
        };
        // Best first. A scan scored every live vector: select the top k before sorting them.
        let best_first = |a: &(u64, f32), b: &(u64, f32)| b.1.total_cmp(&a.1);
        if k > 0 && found.len() > k {
            found.select_nth_unstable_by(k - 1, best_first);
        }
        found.truncate(k);
        found.sort_unstable_by(best_first);
        found
    }
}

/// Builds a graph over `points` on every core (runs without any lock held, off the runtime).
pub fn build_graph(points: &[(u64, Arc<[f32]>)]) -> Graph {
    let g = Graph::new(
        HNSW_M,
        points.len().max(1024),
        HNSW_MAX_LAYER,
        HNSW_EF_CONSTRUCTION,
        UnitDot,
    );
    let slices: Vec<(&[f32], usize)> = points
        .iter()
        .map(|(id, v)| (&v[..], *id as usize))
        .collect();
    g.parallel_insert_slice(&slices);
    g
}

/// All buckets.
#[derive(Default)]
pub struct Index {
    buckets: HashMap<[u8; 32], Bucket>,
}

impl Index {
    pub fn bucket(&self, key: &[u8; 32]) -> Option<&Bucket> {
        self.buckets.get(key)
    }

    pub fn bucket_mut(&mut self, key: &[u8; 32]) -> Option<&mut Bucket> {
        self.buckets.get_mut(key)
    }

    pub fn insert(&mut self, bucket: [u8; 32], id: u64, vector: Arc<[f32]>) {
        self.buckets.entry(bucket).or_default().insert(id, vector);
    }

    pub fn remove(&mut self, bucket: &[u8; 32], id: u64) {
        if let Some(b) = self.buckets.get_mut(bucket) {
            b.remove(id);
            if b.is_empty() {
                self.buckets.remove(bucket);
            }
        }
    }

    /// Buckets that want a graph built or rebuilt.
    pub fn pending_builds(&self) -> Vec<[u8; 32]> {
        self.buckets
            .iter()
            .filter(|(_, b)| b.needs_build())
            .map(|(k, _)| *k)
            .collect()
    }

    pub fn graphs(&self) -> usize {
        self.buckets.values().filter(|b| b.has_graph()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dims: usize) -> Arc<[f32]> {
        // Deterministic pseudo-random unit vector.
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut v: Vec<f32> = (0..dims)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        v.into()
    }

    #[test]
    fn unit_dot_is_cosine_distance() {
        let (a, b) = (unit(1, 384), unit(2, 385));
        let naive: f32 = a.iter().zip(b.iter()).map(|(x, y)| x * y).sum();
        assert!((cosine(&a, &b[..384]) - naive).abs() < 1e-5);
        assert!(UnitDot.eval(&a, &a).abs() < 1e-5);
        let odd = unit(3, 13);
        assert!(
            (cosine(&odd, &odd) - 1.0).abs() < 1e-5,
            "tail lanes are summed"
        );
    }

    #[test]
    fn graph_and_scan_agree_and_tombstones_are_skipped() {
        let mut b = Bucket::default();
        for id in 1..=(EXACT_SCAN_MAX as u64 + 200) {
            b.insert(id, unit(id, 32));
        }
        assert!(b.needs_build());
        let snap = b.snapshot();
        let g = build_graph(&snap);
        b.install(g, &snap);
        assert!(b.has_graph());
        let q = unit(77, 32);
        let top = b.search(&q, 1, |_| true);
        assert_eq!(top[0].0, 77);
        assert!((top[0].1 - 1.0).abs() < 1e-5);
        b.remove(77);
        assert!(b.search(&q, 5, |_| true).iter().all(|(id, _)| *id != 77));
        assert!(b
            .search(&q, 5, |id| id != 78)
            .iter()
            .all(|(id, _)| *id != 78));
        // Most neighbours refused: the search falls back to filtering inside the walk.
        let few = b.search(&q, 5, |id| id % 50 == 0);
        assert_eq!(few.len(), 5);
        assert!(few.iter().all(|(id, _)| id % 50 == 0));
        for id in 1..=800 {
            b.remove(id);
        }
        assert!(b.needs_build(), "tombstones trigger compaction");
        let snap = b.snapshot();
        b.install(build_graph(&snap), &snap);
        assert!(!b.has_graph(), "shrunk under the scan limit");
        assert_eq!(b.search(&unit(900, 32), 1, |_| true)[0].0, 900);
    }
}
