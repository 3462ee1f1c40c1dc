//! CPU work on every request that does not wait on a model: the cache key, the structural guards,
//! the routing decision, and the SSE encoding of a cached answer replayed as a stream.
//!
//! ```text
//! cargo bench --bench hot_path -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! * `cache_key`: `CacheKey::new` (canonical JSON of the namespace, sha256s, prompt split) for a
//!   short chat turn under a system prompt, and for a summarization request carrying a
//!   [`ARTICLE_WORDS`]-word article (split into instruction + document fingerprint).
//!   `adversarial_1mib`: a 1 MiB last turn of tags, brackets, quotes, code symbols and digits
//!   (every pass over prompt text is linear; this is the worst shape for the operand scanner).
//!   `tiny_lines_1mib` / `header_lines_1mib`: a request over 1 MiB of rule and one-letter lines
//!   (the most lines a megabyte holds: the worst shape for the transport and edge rules) and of
//!   forwarded mail headers.
//! * `guards`: `Features::extract` of a short query (once per semantic lookup) and
//!   `Features::agree` (once per candidate above the threshold).
//! * `router_plan`: `Router::plan` on a route shaped like `examples/routing-and-failover.toml`
//!   (rules on metadata, tools, keywords, min_prompt_tokens, regex; cheapest / lowest-latency /
//!   weighted tiers), one variant per rule that decides (and one where none does, so every rule
//!   is evaluated).
//! * `sse`: `chat::replay_chunks` of a [`ANSWER_WORDS`]-word answer framed by the gateway's own
//!   `api::sse::chunk` (`data: {json}\n\n` per chunk, then `data: [DONE]\n\n`).

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice::api::sse;
use sluice::cache::{CacheKey, KeyScope};
use sluice::chat::{self, ChatRequest, ChatResponse};
use sluice::config::Config;
use sluice::router::Router;
use sluice::text::Features;

const SEED: u64 = 0x5eed_0006;
const ARTICLE_WORDS: usize = 1_500;
/// Size of the adversarial prompt.
const ADVERSARIAL_BYTES: usize = 1 << 20;
const ANSWER_WORDS: usize = 200;
/// Characters of the prompt that the min_prompt_tokens rule (4000 tokens ~ 16000 chars) takes.
const LONG_PROMPT_CHARS: usize = 20_000;

const SYSTEM: &str = "You are a helpful support assistant for Acme Cloud. Answer briefly and \
    accurately. If you do not know, say so and suggest contacting support.";

const WORDS: &[&str] = &[
    "the",
    "council",
    "approved",
    "a",
    "new",
    "budget",
    "for",
    "public",
    "transport",
    "after",
    "months",
    "of",
    "debate",
    "between",
    "residents",
    "and",
    "local",
    "businesses",
    "who",
    "argued",
    "that",
    "rising",
    "costs",
    "would",
    "hurt",
    "small",
    "shops",
    "in",
    "the",
    "city",
    "centre",
    "officials",
    "said",
    "funding",
    "will",
    "cover",
    "bus",
    "routes",
    "cycle",
    "lanes",
    "and",
    "repairs",
    "to",
    "three",
    "bridges",
    "while",
    "critics",
    "warned",
    "taxes",
    "may",
    "increase",
    "next",
    "year",
    "mayor",
    "spokesperson",
    "announced",
    "on",
    "tuesday",
];

/// Seeded prose of `words` words in sentences of 8-20 words.
fn prose(words: usize, rng: &mut StdRng) -> String {
    let mut out = String::new();
    let mut left_in_sentence = 0;
    for i in 0..words {
        let w = WORDS[rng.random_range(0..WORDS.len())];
        if left_in_sentence == 0 {
            if i > 0 {
                out.push_str(". ");
            }
            let mut c = w.chars();
            out.extend(c.next().map(|f| f.to_ascii_uppercase()));
            out.push_str(c.as_str());
            left_in_sentence = rng.random_range(8..=20);
        } else {
            out.push(' ');
            out.push_str(w);
        }
        left_in_sentence -= 1;
    }
    out.push('.');
    out
}

fn request(v: serde_json::Value) -> ChatRequest {
    serde_json::from_value(v).expect("request")
}

fn bench_cache_key(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let short = request(serde_json::json!({
        "model": "support",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "How do I reset my password on the mobile app?"}
        ]
    }));
    let article = prose(ARTICLE_WORDS, &mut rng);
    let long = request(serde_json::json!({
        "model": "summarize",
        "temperature": 0,
        "max_tokens": 300,
        "messages": [
            {"role": "system", "content": "You summarise news articles for busy readers."},
            {"role": "user", "content": format!("Summarize the following article in three bullet points:\n\n{article}")}
        ]
    }));
    let scope = KeyScope {
        owner: None,
        simulated: &[],
        route: "support",
        target: "tier:cheap",
    };
    let long_key = CacheKey::new(&long, &scope).expect("cacheable");
    assert!(long_key.has_document(), "the article is split off");

    let mut hostile = String::with_capacity(ADVERSARIAL_BYTES + 64);
    let pieces = [
        "<a>", "</b>", "[", "{", "\"", "'", "`", "```", "x == y", "12.5", "\n", "} ", "] ",
        "<doc>", "\"\"\"", "|", ":", ",",
    ];
    while hostile.len() < ADVERSARIAL_BYTES {
        hostile.push_str(pieces[rng.random_range(0..pieces.len())]);
    }
    let adversarial = request(serde_json::json!({
        "model": "support",
        "messages": [{"role": "user", "content": hostile}]
    }));

    // The same megabyte as 350,000 tiny lines after a request (rules and one-letter lines: the
    // most lines a document can have, each read by the transport and edge rules), and as mail
    // header lines under a forward.
    let lines = |head: &str, piece: &str| {
        let mut text = String::from(head);
        while text.len() < ADVERSARIAL_BYTES {
            text.push_str(piece);
        }
        request(serde_json::json!({
            "model": "support",
            "messages": [{"role": "user", "content": text}]
        }))
    };
    let tiny_lines = lines("Summarize this:\n", "---\nx\n");
    let header_lines = lines(
        "Summarize:\n",
        "From: a@b.example\nSent: Monday\n> quoted\n",
    );

    let mut group = c.benchmark_group("cache_key");
    group.bench_function("short_chat", |b| {
        b.iter(|| CacheKey::new(&short, &scope).expect("cacheable"))
    });
    group.bench_function("long_summarization", |b| {
        b.iter(|| CacheKey::new(&long, &scope).expect("cacheable"))
    });
    group.sample_size(10);
    group.bench_function("adversarial_1mib", |b| {
        b.iter(|| CacheKey::new(&adversarial, &scope))
    });
    group.bench_function("tiny_lines_1mib", |b| {
        b.iter(|| CacheKey::new(&tiny_lines, &scope))
    });
    group.bench_function("header_lines_1mib", |b| {
        b.iter(|| CacheKey::new(&header_lines, &scope))
    });
    group.finish();
}

const ROUTER_CONFIG: &str = r#"
[providers.openai]
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
models."gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.60, context_window = 128000 }
models."gpt-4o" = { input_per_mtok = 2.50, output_per_mtok = 10.00, context_window = 128000 }

[providers.anthropic]
kind = "anthropic"
base_url = "http://127.0.0.1:1"
models."claude-3-haiku-20240307" = { input_per_mtok = 0.25, output_per_mtok = 1.25, context_window = 200000 }
models."claude-3-5-sonnet-20241022" = { input_per_mtok = 3.00, output_per_mtok = 15.00, context_window = 200000 }

[routes.support]
default_tier = "cheap"
tiers.cheap = { targets = ["openai/gpt-4o-mini", "anthropic/claude-3-haiku-20240307"], strategy = "cheapest" }
tiers.standard = { targets = ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022"], strategy = "lowest-latency" }
tiers.canary = { strategy = "weighted", targets = [
  { provider = "openai", model = "gpt-4o", weight = 9 },
  { provider = "anthropic", model = "claude-3-5-sonnet-20241022", weight = 1 },
] }

[[routes.support.rules]]
tier = "standard"
metadata = { plan = "enterprise" }
[[routes.support.rules]]
tier = "standard"
has_tools = true
[[routes.support.rules]]
tier = "standard"
keywords = ["refund", "chargeback", "lawyer"]
[[routes.support.rules]]
tier = "standard"
min_prompt_tokens = 4000
[[routes.support.rules]]
tier = "canary"
# The example has `(?i)^/canary`; `^` is the start of the system prompt when there is one (rules
# match all non-assistant turns joined), hence the `m` flag here.
regex = "(?im)^/canary"
"#;

/// The structural guards of a semantic lookup: the query's features (once per lookup) and their
/// comparison with a candidate's (once per candidate above the threshold).
fn bench_guards(c: &mut Criterion) {
    const QUERY: &str = "What can I do to increase my credit score?";
    const CANDIDATE: &str = "How do I increase my credit score?";
    let (q, cand) = (Features::extract(QUERY), Features::extract(CANDIDATE));
    assert!(q.agree(&cand).is_ok());
    let mut group = c.benchmark_group("guards");
    group.bench_function("extract_short", |b| b.iter(|| Features::extract(QUERY)));
    group.bench_function("agree", |b| b.iter(|| q.agree(&cand)));
    group.finish();
}

fn bench_router(c: &mut Criterion) {
    let config = Config::parse(ROUTER_CONFIG, "bench").expect("config");
    let metrics = sluice::telemetry::metrics::Metrics::new(&config);
    let router = Router::new(Arc::new(config), &metrics);
    let mut rng = StdRng::seed_from_u64(SEED);
    let turn = |text: &str, metadata: serde_json::Value| {
        request(serde_json::json!({
            "model": "support",
            "metadata": metadata,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": text}
            ]
        }))
    };
    let plain = serde_json::json!({"plan": "free"});
    let long_text: String = prose(LONG_PROMPT_CHARS / 5, &mut rng)
        .chars()
        .take(LONG_PROMPT_CHARS)
        .collect();
    // (variant, request, tier the route must pick)
    let cases = [
        (
            "no_rule_matches",
            turn(
                "How do I reset my password on the mobile app?",
                plain.clone(),
            ),
            0,
        ),
        (
            "metadata_rule",
            turn(
                "How do I reset my password on the mobile app?",
                serde_json::json!({"plan": "enterprise"}),
            ),
            1,
        ),
        (
            "keyword_rule",
            turn("I want a refund for my last invoice.", plain.clone()),
            1,
        ),
        (
            "min_prompt_tokens_rule_20k_chars",
            turn(&long_text, plain.clone()),
            1,
        ),
        (
            "regex_rule_weighted_tier",
            turn("/canary please answer this", plain),
            2,
        ),
    ];
    let mut group = c.benchmark_group("router_plan");
    for (name, req, tier) in &cases {
        let plan = router.plan(req, None, None).expect("plan");
        assert_eq!(plan.tier, Some(*tier), "{name}");
        group.bench_function(*name, |b| {
            b.iter(|| router.plan(req, None, None).expect("plan"))
        });
    }
    group.finish();
}

fn replay(resp: &ChatResponse) -> Vec<Bytes> {
    let mut out: Vec<Bytes> = chat::replay_chunks(resp, &resp.id, true)
        .iter()
        .map(sse::chunk)
        .collect();
    out.push(Bytes::from_static(sse::DONE));
    out
}

fn bench_sse(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let answer = prose(ANSWER_WORDS, &mut rng);
    let resp: ChatResponse = serde_json::from_value(serde_json::json!({
        "id": "chatcmpl-9xYzAbCdEfGhIjKlMnOp",
        "object": "chat.completion",
        "created": 1_700_000_000u64,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 24, "completion_tokens": 260, "total_tokens": 284}
    }))
    .expect("response");
    let frames = replay(&resp);
    println!(
        "sse/replay_200_words: {} events, {} bytes",
        frames.len(),
        frames.iter().map(Bytes::len).sum::<usize>()
    );
    let mut group = c.benchmark_group("sse");
    group.bench_function("replay_200_words", |b| b.iter(|| replay(&resp)));
    group.finish();
}

criterion_group!(
    benches,
    bench_cache_key,
    bench_guards,
    bench_router,
    bench_sse
);
criterion_main!(benches);
