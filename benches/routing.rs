//! The intelligent routing decision on a cache miss, against its baselines in the same run.
//!
//! ```text
//! cargo bench --bench routing -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Needs the embedding model (`scripts/fetch-models.sh`). The routers are built from the
//! default config (its reference examples embedded, the difficulty model fitted) exactly as
//! `sluice serve` and `sluice bench route` build them.
//!
//! * `route_decision/auto_given_embedding`: what `model = "auto"` adds once the prompt's
//!   embedding is computed (the cache computed it already on a miss): parse the prompt (cues,
//!   opening words), resolve, k-NN over the reference examples, the chosen route's rules, the
//!   difficulty score and the tier. One of [`PROMPTS`] per iteration, in turn.
//! * `route_decision/named_given_embedding`: the same for a client that names its route (the
//!   tier by difficulty).
//! * `route_decision/named_rules_only` (baseline): `Router::plan` for a named route without any
//!   routing model (rules and default tier, the gateway before intelligent routing).
//! * `route_decision/one_embedding` (baseline): embedding one prompt (the decision's cost when
//!   no embedding was computed: at most this one).

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use sluice::chat::ChatRequest;
use sluice::commands::bench_route::Bench;
use sluice::router::{Prompt, Router, Signals};
use sluice::telemetry::metrics::Metrics;

/// Prompts of each use case and length (from short labels to a long email).
const PROMPTS: &[&str] = &[
    "Is this review positive or negative? \"Arrived broken, and nobody answers the phone.\"",
    "Summarize this thread for the release notes:\n\nAlex: the migration script now retries \
     on lock timeouts. Sam: good, we also need the rollback doc updated before Friday. Alex: \
     done, and the dashboard shows replication lag per shard now. Priya: QA signed off on the \
     staging run, two flaky tests quarantined, tickets filed.",
    "Prove that the sum of the first n odd numbers is n^2, then generalise to arithmetic series.",
    "What should I cook tonight with rice, spinach and eggs?",
    "Why does this deadlock?\n```go\nmu.Lock()\ndefer mu.Unlock()\nch <- v\n```",
    "Traduis ce paragraphe en anglais et résume-le en une phrase : la réunion est reportée.",
    "Classify this ticket as billing, technical or sales: \"Can I pay by bank transfer?\"",
    "Design a rate limiter for a multi-tenant API gateway and explain the trade-offs.",
];

fn request(model: &str, text: &str) -> ChatRequest {
    serde_json::from_value(serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": text}],
    }))
    .expect("request")
}

fn routing(c: &mut Criterion) {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let bench = Bench::load(None, &models, None).expect("routing models (scripts/fetch-models.sh)");
    let router = &bench.router;
    // The pipeline awaits the embedder's worker thread; here a current-thread runtime does.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let embed = |text: &str| rt.block_on(bench.embedder.embed(text)).expect("embedding");
    let vectors: Vec<Vec<f32>> = PROMPTS
        .iter()
        .map(|p| embed(Prompt::from_text(p, false).embed_text()))
        .collect();
    let autos: Vec<ChatRequest> = PROMPTS.iter().map(|p| request("auto", p)).collect();
    let named: Vec<ChatRequest> = PROMPTS.iter().map(|p| request("chat", p)).collect();

    // The same config, no routing models: what `Router::plan` did before intelligent routing.
    let metrics = Metrics::new(&bench.config);
    let plain = Router::new(bench.config.clone(), &metrics);

    let decide = |router: &Router, req: &ChatRequest, text: &str, v: &[f32]| {
        let prompt = Prompt::from_text(text, false);
        let resolved = router.resolve(req, None).expect("resolve");
        let signals = Signals {
            prompt: &prompt,
            vector: Some(v),
        };
        router
            .plan_with(req, resolved, None, Some(signals))
            .expect("plan")
    };

    let mut group = c.benchmark_group("route_decision");
    let mut i = 0usize;
    group.bench_function("auto_given_embedding", |b| {
        b.iter(|| {
            i = (i + 1) % PROMPTS.len();
            decide(router, &autos[i], PROMPTS[i], &vectors[i])
        })
    });
    group.bench_function("named_given_embedding", |b| {
        b.iter(|| {
            i = (i + 1) % PROMPTS.len();
            decide(router, &named[i], PROMPTS[i], &vectors[i])
        })
    });
    group.bench_function("named_rules_only", |b| {
        b.iter(|| {
            i = (i + 1) % PROMPTS.len();
            plain.plan(&named[i], None, None).expect("plan")
        })
    });
    group.bench_function("one_embedding", |b| {
        b.iter(|| {
            i = (i + 1) % PROMPTS.len();
            embed(PROMPTS[i])
        })
    });
    group.finish();
}

criterion_group!(benches, routing);
criterion_main!(benches);
