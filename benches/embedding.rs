//! Sentence embedding through the cache's `Embedder` (all-MiniLM-L6-v2, int8, ONNX Runtime on
//! every core): one short prompt, one prompt of the model's full 256 tokens, a batch of 32 short
//! prompts; and the short prompt again with ONNX Runtime limited to one thread.
//!
//! ```text
//! cargo bench --bench embedding -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Needs the model in `models/` (scripts/fetch-models.sh); `.cargo/config.toml` points
//! `ORT_DYLIB_PATH` at its ONNX Runtime. Each call goes the way a lookup's does: over the
//! worker's channel, one model call, back over a oneshot (awaited on a current-thread runtime).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice::cache::{Embedder, EmbedderConfig};

const MODELS_DIR: &str = "models";
const BATCH: usize = 32;
/// Words of the long prompt: enough to pass the model's 256-token window (~1.3 tokens a word),
/// so it is truncated to exactly 256.
const LONG_WORDS: usize = 240;

const SHORT: &str = "How do I reset my password on the mobile app?";

/// Short prompts of a few domains, 6-14 words each.
const SHORT_PROMPTS: [&str; BATCH] = [
    "How do I reset my password on the mobile app?",
    "What is the capital of Australia?",
    "Write a haiku about autumn leaves.",
    "Explain the difference between TCP and UDP.",
    "Convert 72 degrees Fahrenheit to Celsius.",
    "What are the side effects of ibuprofen?",
    "Summarize the plot of Hamlet in two sentences.",
    "How can I cancel my subscription before renewal?",
    "Translate 'good morning' into Spanish.",
    "What is a closure in JavaScript?",
    "Give me three ideas for a birthday party.",
    "Why is the sky blue during the day?",
    "How long should I boil an egg for a soft yolk?",
    "List the planets of the solar system in order.",
    "What does HTTP status code 429 mean?",
    "How do I center a div with CSS grid?",
    "Recommend a beginner book on personal finance.",
    "What is the time complexity of quicksort?",
    "How do I export a table from Postgres to CSV?",
    "Explain photosynthesis to a ten year old.",
    "What is the refund policy for damaged items?",
    "Draft a polite reminder about an unpaid invoice.",
    "How many ounces are in a pound?",
    "What is the difference between a virus and bacteria?",
    "Suggest a name for a coffee shop near the beach.",
    "How do I undo the last git commit?",
    "Which vitamins are found in spinach?",
    "What is the population of Canada?",
    "Write a SQL query that counts orders per customer.",
    "How do I change the battery in a smoke detector?",
    "What causes inflation in an economy?",
    "Is it safe to run a marathon without training?",
];

/// Plain English prose, repeated to [`LONG_WORDS`] words.
fn long_prompt() -> String {
    const TEXT: &str = "The quarterly report shows that revenue from the northern region grew \
        steadily while operating costs in the logistics division rose faster than expected. \
        Management attributes the increase to higher fuel prices, a shortage of qualified \
        drivers, and delays at two regional warehouses that were being renovated during the \
        summer. Customer satisfaction scores improved after the support team introduced a new \
        ticketing system, although response times on weekends remain longer than the target. \
        The board has asked for a detailed plan to reduce delivery costs, including options to \
        consolidate routes, renegotiate contracts with carriers, and invest in electric vans.";
    TEXT.split_whitespace()
        .cycle()
        .take(LONG_WORDS)
        .collect::<Vec<_>>()
        .join(" ")
}

fn bench_embedding(c: &mut Criterion) {
    let embedder = Embedder::load(&EmbedderConfig::new(MODELS_DIR)).expect("load the model");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let long = long_prompt();
    let batch: Vec<String> = SHORT_PROMPTS.iter().map(|s| s.to_string()).collect();

    let mut group = c.benchmark_group("embedding");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single_short", |b| {
        b.iter(|| rt.block_on(embedder.embed(SHORT)).expect("embed"))
    });
    group.bench_function("single_256_tokens", |b| {
        b.iter(|| rt.block_on(embedder.embed(&long)).expect("embed"))
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("batch_32_short", |b| {
        b.iter(|| {
            rt.block_on(embedder.embed_batch(batch.clone()))
                .expect("embed")
        })
    });
    drop(embedder);

    // The same short prompt with ONNX Runtime on one thread (`cache.embed_threads = 1`): on a
    // busy machine a second intra-op thread can cost more than it brings.
    let single = Embedder::load(&EmbedderConfig {
        threads: Some(1),
        ..EmbedderConfig::new(MODELS_DIR)
    })
    .expect("load the model");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single_short_1_thread", |b| {
        b.iter(|| rt.block_on(single.embed(SHORT)).expect("embed"))
    });
    group.finish();
}

criterion_group!(benches, bench_embedding);
criterion_main!(benches);
