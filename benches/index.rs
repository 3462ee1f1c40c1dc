//! HNSW search of one cache bucket (`sluice::cache::index::Bucket`) at 10k / 100k / 1M vectors,
//! with recall@10 against brute force.
//!
//! ```text
//! cargo bench --bench index -- --warm-up-time 1 --measurement-time 3
//! SLUICE_BENCH_1M=1 cargo bench --bench index -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! * The 1M size runs only with `SLUICE_BENCH_1M=1`: on 2 cores its graph takes minutes to build
//!   and a few GB of memory (vectors held by the bucket and by hnsw_rs, and the graph). Each graph
//!   is built once, outside the timed loops.
//! * Data: seeded 384-d unit vectors with two-level cluster structure, shaped like a cache of
//!   prompt embeddings: topics (unrelated, cosine ~0), paraphrase groups inside a topic (group
//!   centres at cosine ~0.5 to their topic), and members of a group (cosine ~0.8 to each other,
//!   like paraphrases). Queries are fresh points: 80% new members of an existing group (a
//!   paraphrase of something cached), 20% members of a new group in an existing topic (a new
//!   question on a known subject). Uniform random vectors would make every neighbour a tie.
//! * `k10` and `k32` time the cache's own `Bucket::search` (its graph built by the cache's
//!   `build_graph`: `UnitDot`, M 16, ef_construction 200): an unfiltered hnsw_rs walk with a
//!   liveness check on the results, exact re-rank, sort. `k32` is what one cache lookup asks for
//!   (`CANDIDATES` in `src/cache/mod.rs`); recall@10 is of the first 10 results.
//! * Baselines in the same run: `exact_scan_k32`, the brute-force top 32 by one core (what a
//!   bucket without a graph does), and, up to 100k, `baseline_dist_cosine_filtered_k32`, the
//!   search the cache ran before (hnsw_rs `DistCosine`, which recomputes both norms in f64 in a
//!   serial fold, and `search_filter` with the liveness filter, which never takes hnsw_rs's early
//!   exit; ef 128), on a graph built as before (`DistCosine`, ef_construction 100).
//! * Recall is also given for the true top-10 neighbours at or above the cache's default
//!   similarity threshold (0.8): those are the entries a lookup could serve.
//! * Recall and a per-query latency distribution (p50 / p99 / max over every query, a few passes)
//!   are printed once per size and variant; they are not criterion timings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hnsw_rs::prelude::{DistCosine, Distance, Hnsw};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice::cache::embed::cosine;
use sluice::cache::index::{build_graph, Bucket, UnitDot, HNSW_M, HNSW_MAX_LAYER};

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
/// Search breadths tried beside the cache's own (recall and latency printed, not timed).
const SWEEP_EF: [usize; 3] = [64, 256, 512];
/// The old cache search is rebuilt as a baseline up to this size (its graph is slow to build).
const BASELINE_MAX: usize = 100_000;
/// The graph's construction breadth before (now 200).
const BASELINE_EF_CONSTRUCTION: usize = 100;
/// The search breadth the cache used before (`max(64, 4 * k)` for k = 32).
const BASELINE_EF: usize = 128;

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

fn dot(a: &[f32], b: &[f32]) -> f32 {
    cosine(a, b)
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

/// The cache's bucket with a graph built by the cache's own `build_graph`.
fn bucket(points: &[Arc<[f32]>]) -> Bucket {
    let mut bucket = Bucket::default();
    let built_from: Vec<(u64, Arc<[f32]>)> = (0..).zip(points.iter().cloned()).collect();
    for (id, v) in &built_from {
        bucket.insert(*id, v.clone());
    }
    bucket.install(build_graph(&built_from), &built_from);
    assert!(
        bucket.has_graph(),
        "{} points must get a graph",
        points.len()
    );
    bucket
}

/// The search the cache ran before: a `DistCosine` graph searched with the liveness filter
/// inside the walk, exact re-rank, sort.
struct Baseline {
    graph: Hnsw<'static, f32, DistCosine>,
    points: Vec<Arc<[f32]>>,
}

impl Baseline {
    fn new(points: &[Arc<[f32]>]) -> Baseline {
        let graph = Hnsw::new(
            HNSW_M,
            points.len().max(1024),
            HNSW_MAX_LAYER,
            BASELINE_EF_CONSTRUCTION,
            DistCosine,
        );
        let slices: Vec<(&[f32], usize)> = points.iter().map(|v| &v[..]).zip(0..).collect();
        graph.parallel_insert_slice(&slices);
        Baseline {
            graph,
            points: points.to_vec(),
        }
    }

    fn search(&self, query: &[f32], k: usize) -> Vec<(u64, f32)> {
        let filter = |d: &usize| *d < self.points.len();
        let mut found: Vec<(u64, f32)> = self
            .graph
            .search_filter(query, k, BASELINE_EF, Some(&filter))
            .into_iter()
            .map(|n| (n.d_id as u64, dot(query, &self.points[n.d_id])))
            .collect();
        found.sort_by(|a, b| b.1.total_cmp(&a.1));
        found.truncate(k);
        found
    }
}

/// Exact top `k` by one core: every point scored, the best kept in a small sorted buffer.
fn exact_scan(points: &[Arc<[f32]>], query: &[f32], k: usize) -> Vec<(u64, f32)> {
    // Worst first.
    let mut top: Vec<(f32, u64)> = Vec::with_capacity(k + 1);
    for (id, p) in points.iter().enumerate() {
        keep_best(&mut top, k, dot(query, p), id as u64);
    }
    top.into_iter().rev().map(|(s, id)| (id, s)).collect()
}

/// Puts `(sim, id)` into `top` (the best `k` so far, worst first) if it belongs there.
fn keep_best(top: &mut Vec<(f32, u64)>, k: usize, sim: f32, id: u64) {
    if top.len() < k || sim > top[0].0 {
        let at = top.partition_point(|e| e.0 < sim);
        top.insert(at, (sim, id));
        if top.len() > k {
            top.remove(0);
        }
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
                            keep_best(top, K, dot(q, p), id as u64);
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
            "hnsw n={n}: cache graph (UnitDot) build {:.1}s ({:.0} inserts/s)",
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
        // Recall against breadth: what a larger `ef` would buy.
        for ef in SWEEP_EF {
            let name = format!("k32_ef{ef}");
            report(
                &name,
                n,
                &quality(
                    |q| bucket.search_ef(q, CACHE_CANDIDATES, ef, |_| true),
                    &data,
                    &truth,
                ),
            );
        }
        drop(bucket);

        let mut i = 0usize;
        group.bench_function(BenchmarkId::new("exact_scan_k32", n), |b| {
            b.iter(|| {
                i += 1;
                exact_scan(&data.points, &data.queries[i % QUERIES], CACHE_CANDIDATES)
            })
        });

        if n <= BASELINE_MAX {
            let t = Instant::now();
            let old = Baseline::new(&data.points);
            println!(
                "hnsw n={n}: baseline graph (DistCosine) build {:.1}s ({:.0} inserts/s)",
                secs(t),
                n as f64 / secs(t)
            );
            let name = "baseline_dist_cosine_filtered_k32";
            report(
                name,
                n,
                &quality(|q| old.search(q, CACHE_CANDIDATES), &data, &truth),
            );
            let mut i = 0usize;
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    i += 1;
                    old.search(&data.queries[i % QUERIES], CACHE_CANDIDATES)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_distance, bench_search);
criterion_main!(benches);
