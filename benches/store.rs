//! The redb store (`sluice::store::Store`): cache entry puts, one durable commit per put versus
//! 100 puts per commit (what the cache writer does under load), and the read of a cached
//! response (what every hit does).
//!
//! ```text
//! cargo bench --bench store -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Databases live in a fresh temporary directory (`$TMPDIR`, else /tmp): put the benchmark on the
//! disk you care about, since a durable commit waits for fsync. An entry is what the cache writes
//! for a short prompt: the metadata record with its 384-d vector, and a ~200-word answer's JSON.
//! Puts keep adding entries (the database grows during the run); gets read random ids of a
//! database prefilled with [`PREFILL`] entries.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice::store::{CacheEntry, CacheWriteBatch, Store};

const DIM: usize = 384;
const BATCH: usize = 100;
const PREFILL: u64 = 10_000;
const SEED: u64 = 0x5eed_0003;
const ANSWER_WORDS: usize = 200;

fn entry(id: u64, rng: &mut StdRng) -> CacheEntry {
    CacheEntry {
        fingerprint: rng.random(),
        namespace: [7; 32],
        bucket: [9; 32],
        route: "support".into(),
        owner: None,
        model: "gpt-4o-mini-2024-07-18".into(),
        text: format!("How do I reset my password on device number {id}?"),
        vector: (0..DIM).map(|_| rng.random_range(-0.1..0.1)).collect(),
        usage: None,
        created_unix: 1_700_000_000,
        expires_unix: u64::MAX,
        size_bytes: 4096,
        mentions: String::new(),
        document: None,
    }
}

fn response_json() -> Vec<u8> {
    let text: String = (0..ANSWER_WORDS)
        .map(|i| ["the", "account", "settings", "page", "password"][i % 5])
        .collect::<Vec<_>>()
        .join(" ");
    serde_json::to_vec(&serde_json::json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000u64,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 24, "completion_tokens": 260, "total_tokens": 284}
    }))
    .expect("json")
}

fn batch(ids: std::ops::Range<u64>, rng: &mut StdRng, response: &[u8]) -> CacheWriteBatch {
    CacheWriteBatch {
        inserts: ids
            .map(|id| (id, entry(id, rng), response.to_vec()))
            .collect(),
        ..Default::default()
    }
}

fn bench_store(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = StdRng::seed_from_u64(SEED);
    let response = response_json();
    let mut group = c.benchmark_group("redb");

    let store = Store::open(&dir.path().join("puts")).expect("open");
    let mut next = 1u64;
    group.throughput(Throughput::Elements(1));
    group.bench_function("put_commit_each", |b| {
        b.iter_batched(
            || {
                next += 1;
                batch(next..next + 1, &mut rng, &response)
            },
            |w| store.cache_write(&w).expect("write"),
            criterion::BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("put_batch_100_per_commit", |b| {
        b.iter_batched(
            || {
                let from = next + 1;
                next += BATCH as u64;
                batch(from..next + 1, &mut rng, &response)
            },
            |w| store.cache_write(&w).expect("write"),
            criterion::BatchSize::SmallInput,
        )
    });
    drop(store);

    let store = Store::open(&dir.path().join("gets")).expect("open");
    for from in (1..=PREFILL).step_by(1_000) {
        store
            .cache_write(&batch(from..from + 1_000, &mut rng, &response))
            .expect("prefill");
    }
    group.throughput(Throughput::Elements(1));
    group.bench_function("get_response", |b| {
        b.iter(|| {
            let id = rng.random_range(1..=PREFILL);
            store.cache_response(id).expect("read").expect("present")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_store);
criterion_main!(benches);
