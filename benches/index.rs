//! HNSW search of one cache bucket (`sluice::cache::index::Bucket`) at 10k / 100k / 1M vectors,
//! with recall@10 against brute force.
//!
//! ```text
//! cargo bench --bench index -- --warm-up-time 1 --measurement-time 3
//! SLUICE_BENCH_1M=1 cargo bench --bench index -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! * The 1M size runs only with `SLUICE_BENCH_1M=1`: on 2 cores its `DistCosine` graph takes
//!   well over 5 minutes to build (about 1,000-1,500 inserts/s with both cores) and several GB of
//!   memory (vectors held by the bucket, by hnsw_rs, and the graph). Each graph is built once,
//!   outside the timed loops.
//! * Data: seeded 384-d unit vectors with two-level cluster structure, shaped like a cache of
//!   prompt embeddings: topics (unrelated, cosine ~0), paraphrase groups inside a topic (group
//!   centres at cosine ~0.5 to their topic), and members of a group (cosine ~0.8 to each other,
//!   like paraphrases). Queries are fresh points: 80% new members of an existing group (a
//!   paraphrase of something cached), 20% members of a new group in an existing topic (a new
//!   question on a known subject). Uniform random vectors would make every neighbour a tie.
//! * The graph has the parameters of `src/cache/index.rs` (`DistCosine`, M 16, ef_construction
//!   100, 16 layers; those constants are private, so they are repeated below and must be kept in
//!   step). It is built with hnsw_rs `parallel_insert_slice` (the cache's `build_graph` inserts
//!   serially; parallel insertion gives a slightly different, equally parameterised graph) and
//!   installed into a `Bucket`, so the timed call is the cache's own `Bucket::search`: hnsw_rs
//!   `search_filter` with the liveness filter, exact cosine re-rank, sort.
//! * What the cache runs, per size: `k10` (ef 64) and `k32`, the candidate count a cache lookup
//!   asks for (`CANDIDATES` in `src/cache/mod.rs`, ef 128). recall@10 is of the first 10 results.
//! * Comparisons, not what the cache runs, on a second graph with the same parameters driven
//!   directly through hnsw_rs with [`UnitDot`] (`1 - dot` in eight f32 lanes; anndists'
//!   `DistCosine` recomputes both norms in f64 in a serial fold, see the `distance` group; for
//!   L2-normalised vectors the two are the same distance): `k10_unit_dot` takes the steps of
//!   `Bucket::search` (liveness filter inside the search, exact re-rank, sort);
//!   `k10_unit_dot_unfiltered_ef{64,128,256}` searches without a filter and checks liveness on
//!   the results. hnsw_rs 0.3.5 never takes its early exit while a filter is set (`search_layer`
//!   keeps expanding candidates until none is closer), so a filtered search costs more, and finds
//!   more, than an unfiltered one at the same ef.
//! * Recall is also given for the true top-10 neighbours at or above the cache's default
//!   similarity threshold (0.8): those are the entries a lookup could serve.
//! * Recall and a per-query latency distribution (p50 / p99 / max over every query, a few passes)
//!   are printed once per size and variant; they are not criterion timings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hnsw_rs::prelude::{DistCosine, Distance, Hnsw};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice::cache::index::{Bucket, Graph};

const DIM: usize = 384;
const SIZES: &[usize] = &[10_000, 100_000];
const SIZE_1M: usize = 1_000_000;
/// Environment variable that adds [`SIZE_1M`].
const ENV_1M: &str = "SLUICE_BENCH_1M";
const SEED: u64 = 0x5eed_0005;
/// Query vectors per size; the timed loop cycles through them.
const QUERIES: usize = 1_000;
/// Passes over the queries for the printed latency distribution.
const LATENCY_PASSES: usize = 5;
const K: usize = 10;
/// `CANDIDATES` of `src/cache/mod.rs`: what one cache lookup asks the bucket for.
const CACHE_CANDIDATES: usize = 32;
/// Points per topic and the largest paraphrase group.
const TOPIC_SIZE: usize = 1_000;
const GROUP_MAX: usize = 16;
/// Share of queries that are paraphrases of an indexed group (the rest start a new group).
const PARAPHRASE_SHARE: f64 = 0.8;
/// Noise scales: group centre = topic + GROUP_SPREAD * random, member = group + MEMBER_SPREAD *
/// random (all random directions unit length, results normalised).
const GROUP_SPREAD: f32 = 1.7;
const MEMBER_SPREAD: f32 = 0.5;
/// `DEFAULT_SIMILARITY_THRESHOLD` of the cache policy: neighbours at least this similar could be
/// served, so missing one of them is what costs the cache a hit.
const SERVABLE_SIMILARITY: f32 = 0.8;
/// ef values tried on the [`UnitDot`] graph without a filter.
const UNFILTERED_EF: &[usize] = &[64, 128, 256];

// Same as src/cache/index.rs (private there).
const HNSW_M: usize = 16;
const HNSW_EF_CONSTRUCTION: usize = 100;
const HNSW_MAX_LAYER: usize = 16;
const HNSW_EF_SEARCH_MIN: usize = 64;

/// Cosine distance of unit vectors as `1 - dot`, vectorised (see the header).
#[derive(Clone, Copy, Default)]
struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

type DotGraph = Hnsw<'static, f32, UnitDot>;

fn gaussian_unit(rng: &mut StdRng) -> Vec<f32> {
    let mut v = Vec::with_capacity(DIM);
    while v.len() < DIM {
        // Box-Muller: two independent normals per draw.
        let u1: f32 = rng.random_range(f32::EPSILON..1.0);
        let u2: f32 = rng.random::<f32>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f32::consts::TAU * u2;
        v.push(r * t.cos());
        v.push(r * t.sin());
    }
    v.truncate(DIM);
    normalise(v)
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = dot(&v, &v).sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn around(centre: &[f32], spread: f32, rng: &mut StdRng) -> Vec<f32> {
    let noise = gaussian_unit(rng);
    normalise(
        centre
            .iter()
            .zip(&noise)
            .map(|(c, n)| c + spread * n)
            .collect(),
    )
}

/// Dot product in 8 independent lanes, so it vectorises (the vectors are unit length: this is
/// their cosine).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

struct Dataset {
    points: Vec<Arc<[f32]>>,
    queries: Vec<Vec<f32>>,
    /// Per query: a paraphrase of an indexed group (else a new question).
    paraphrase: Vec<bool>,
}

fn dataset(n: usize) -> Dataset {
    let mut rng = StdRng::seed_from_u64(SEED ^ n as u64);
    let topics: Vec<Vec<f32>> = (0..n.div_ceil(TOPIC_SIZE))
        .map(|_| gaussian_unit(&mut rng))
        .collect();
    let mut groups: Vec<Vec<f32>> = Vec::new();
    let mut group_topic: Vec<usize> = Vec::new();
    let mut points: Vec<Arc<[f32]>> = Vec::with_capacity(n);
    while points.len() < n {
        let t = (points.len() / TOPIC_SIZE).min(topics.len() - 1);
        let g = around(&topics[t], GROUP_SPREAD, &mut rng);
        let members = rng.random_range(1..=GROUP_MAX).min(n - points.len());
        for _ in 0..members {
            points.push(around(&g, MEMBER_SPREAD, &mut rng).into());
        }
        groups.push(g);
        group_topic.push(t);
    }
    let mut queries = Vec::with_capacity(QUERIES);
    let mut paraphrase = Vec::with_capacity(QUERIES);
    for _ in 0..QUERIES {
        let known = rng.random_bool(PARAPHRASE_SHARE);
        let g = if known {
            groups[rng.random_range(0..groups.len())].clone()
        } else {
            let t = group_topic[rng.random_range(0..groups.len())];
            around(&topics[t], GROUP_SPREAD, &mut rng)
        };
        queries.push(around(&g, MEMBER_SPREAD, &mut rng));
        paraphrase.push(known);
    }
    Dataset {
        points,
        queries,
        paraphrase,
    }
}

/// A graph over `points` (ids are point indexes) with the cache's parameters, built in parallel.
fn graph<D: Distance<f32> + Send + Sync>(points: &[Arc<[f32]>], dist: D) -> Hnsw<'static, f32, D> {
    let graph = Hnsw::new(
        HNSW_M,
        points.len().max(1024),
        HNSW_MAX_LAYER,
        HNSW_EF_CONSTRUCTION,
        dist,
    );
    let slices: Vec<(&[f32], usize)> = points.iter().map(|v| &v[..]).zip(0..).collect();
    graph.parallel_insert_slice(&slices);
    graph
}

/// The cache's bucket with its graph.
fn bucket(points: &[Arc<[f32]>]) -> Bucket {
    let mut bucket = Bucket::default();
    let built_from: Vec<(u64, Arc<[f32]>)> = (0..).zip(points.iter().cloned()).collect();
    for (id, v) in &built_from {
        bucket.insert(*id, v.clone());
    }
    let g: Graph = graph(points, DistCosine {});
    bucket.install(g, &built_from);
    assert!(
        bucket.has_graph(),
        "{} points must get a graph",
        points.len()
    );
    bucket
}

/// The [`UnitDot`] graph with what `Bucket::search` keeps beside it.
struct DotIndex {
    graph: DotGraph,
    live: HashMap<u64, Arc<[f32]>>,
}

impl DotIndex {
    fn new(points: &[Arc<[f32]>]) -> DotIndex {
        DotIndex {
            graph: graph(points, UnitDot),
            live: (0..).zip(points.iter().cloned()).collect(),
        }
    }

    /// The steps of `Bucket::search` (filter on liveness, exact re-rank, sort); with `ef` set,
    /// no filter during the search (liveness checked on the results) and that ef.
    fn search(&self, query: &[f32], k: usize, unfiltered_ef: Option<usize>) -> Vec<(u64, f32)> {
        let filter = |d: &usize| self.live.contains_key(&(*d as u64));
        let neighbours = match unfiltered_ef {
            None => {
                let ef = HNSW_EF_SEARCH_MIN.max(4 * k);
                self.graph.search_filter(query, k, ef, Some(&filter))
            }
            Some(ef) => self.graph.search(query, k, ef),
        };
        let mut found: Vec<(u64, f32)> = neighbours
            .into_iter()
            .filter_map(|n| {
                let id = n.d_id as u64;
                self.live.get(&id).map(|v| (id, dot(query, v)))
            })
            .collect();
        found.sort_by(|a, b| b.1.total_cmp(&a.1));
        found.truncate(k);
        found
    }
}

/// Exact top-`K` ids of every query, on all cores (points outer, queries inner: the points
/// stream through memory once per thread).
fn brute_force(points: &[Arc<[f32]>], queries: &[Vec<f32>]) -> Vec<Vec<(u64, f32)>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = queries.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(per)
            .map(|qs| {
                s.spawn(move || {
                    // Per query: its K best (similarity, id), worst first.
                    let mut best = vec![Vec::<(f32, u64)>::with_capacity(K + 1); qs.len()];
                    for (id, p) in points.iter().enumerate() {
                        for (q, top) in qs.iter().zip(best.iter_mut()) {
                            let sim = dot(q, p);
                            if top.len() < K || sim > top[0].0 {
                                let at = top.partition_point(|e| e.0 < sim);
                                top.insert(at, (sim, id as u64));
                                if top.len() > K {
                                    top.remove(0);
                                }
                            }
                        }
                    }
                    best.into_iter()
                        .map(|top| top.into_iter().rev().map(|(s, id)| (id, s)).collect())
                        .collect::<Vec<Vec<(u64, f32)>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("brute force thread"))
            .collect()
    })
}

struct Quality {
    /// recall@K over all queries, paraphrase queries, new-question queries.
    recall: [f64; 3],
    /// Share of the true top-K neighbours at or above the cache's default similarity threshold
    /// that were found: the neighbours a lookup can serve.
    recall_servable: f64,
    /// Every query's latency, several passes, sorted.
    times: Vec<Duration>,
}

/// recall@K of `search` (best first), and per-query latencies.
fn quality(
    search: impl Fn(&[f32]) -> Vec<(u64, f32)>,
    data: &Dataset,
    truth: &[Vec<(u64, f32)>],
) -> Quality {
    // (found, asked) for all, paraphrase, new.
    let mut tally = [(0usize, 0usize); 3];
    let mut servable = (0usize, 0usize);
    for ((q, want), &para) in data.queries.iter().zip(truth).zip(&data.paraphrase) {
        let got: Vec<u64> = search(q).iter().take(K).map(|(id, _)| *id).collect();
        let found = want.iter().filter(|(id, _)| got.contains(id)).count();
        for slot in [0, if para { 1 } else { 2 }] {
            tally[slot].0 += found;
            tally[slot].1 += K;
        }
        for (id, sim) in want {
            if *sim >= SERVABLE_SIMILARITY {
                servable.1 += 1;
                servable.0 += usize::from(got.contains(id));
            }
        }
    }
    let recall = tally.map(|(f, a)| f as f64 / a.max(1) as f64);
    let recall_servable = servable.0 as f64 / servable.1.max(1) as f64;
    let queries = &data.queries;
    let mut times = Vec::with_capacity(queries.len() * LATENCY_PASSES);
    for _ in 0..LATENCY_PASSES {
        for q in queries {
            let t = Instant::now();
            std::hint::black_box(search(q));
            times.push(t.elapsed());
        }
    }
    times.sort();
    Quality {
        recall,
        recall_servable,
        times,
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(variant: &str, n: usize, q: &Quality) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "hnsw_search/{variant}/{n}: recall@{K} {:.4} (paraphrase queries {:.4}, new questions \
         {:.4}; neighbours >= {SERVABLE_SIMILARITY} {:.4}); latency over {} searches: p50 {:.1} \
         us, p99 {:.1} us, max {:.1} us",
        q.recall[0],
        q.recall[1],
        q.recall[2],
        q.recall_servable,
        q.times.len(),
        us(pct(&q.times, 0.5)),
        us(pct(&q.times, 0.99)),
        us(q.times[q.times.len() - 1]),
    );
}

fn bench_distance(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let (a, b) = (gaussian_unit(&mut rng), gaussian_unit(&mut rng));
    let mut group = c.benchmark_group("distance");
    group.bench_function("dist_cosine_384", |bn| {
        bn.iter(|| DistCosine.eval(std::hint::black_box(&a), std::hint::black_box(&b)))
    });
    group.bench_function("unit_dot_384", |bn| {
        bn.iter(|| UnitDot.eval(std::hint::black_box(&a), std::hint::black_box(&b)))
    });
    group.finish();
}

fn bench_search(c: &mut Criterion) {
    let mut sizes = SIZES.to_vec();
    if std::env::var(ENV_1M).is_ok_and(|v| v == "1") {
        sizes.push(SIZE_1M);
    } else {
        println!("hnsw: {SIZE_1M} vectors skipped (set {ENV_1M}=1)");
    }
    let secs = |t: Instant| t.elapsed().as_secs_f64();
    let mut group = c.benchmark_group("hnsw_search");
    for &n in &sizes {
        let t = Instant::now();
        let data = dataset(n);
        println!("hnsw n={n}: data {:.1}s", secs(t));
        let t = Instant::now();
        let truth = brute_force(&data.points, &data.queries);
        println!(
            "hnsw n={n}: brute force {QUERIES} queries {:.1}s ({:.2} ms/query)",
            secs(t),
            secs(t) * 1e3 / QUERIES as f64
        );

        let t = Instant::now();
        let bucket = bucket(&data.points);
        println!(
            "hnsw n={n}: DistCosine graph build {:.1}s ({:.0} inserts/s)",
            secs(t),
            n as f64 / secs(t)
        );
        for (name, k) in [("k10", K), ("k32", CACHE_CANDIDATES)] {
            report(
                name,
                n,
                &quality(|q| bucket.search(q, k, |_| true), &data, &truth),
            );
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    i += 1;
                    bucket.search(&data.queries[i % QUERIES], k, |_| true)
                })
            });
        }
        drop(bucket);

        let t = Instant::now();
        let alt = DotIndex::new(&data.points);
        println!(
            "hnsw n={n}: UnitDot graph build {:.1}s ({:.0} inserts/s)",
            secs(t),
            n as f64 / secs(t)
        );
        let variants = std::iter::once(("k10_unit_dot".to_owned(), None)).chain(
            UNFILTERED_EF
                .iter()
                .map(|&ef| (format!("k10_unit_dot_unfiltered_ef{ef}"), Some(ef))),
        );
        for (name, ef) in variants {
            report(&name, n, &quality(|q| alt.search(q, K, ef), &data, &truth));
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    i += 1;
                    alt.search(&data.queries[i % QUERIES], K, ef)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_distance, bench_search);
criterion_main!(benches);
