//! Semantic cache through its public API: the real model (run scripts/fetch-models.sh first) and
//! real redb files in temporary directories. One model is loaded and shared by every test
//! (`support::embedder`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use sluice::cache::{
    CacheError, CacheKey, CacheSettings, HitKind, KeyScope, MissReason, SemanticCache,
};
use sluice::chat::{ChatRequest, ChatResponse};
use sluice::config::CachePolicy;
use sluice::store::{Store, DB_FILE};

use super::support;

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn open(dir: &std::path::Path) -> SemanticCache {
    let settings = CacheSettings {
        data_dir: dir.to_path_buf(),
        models_dir: models_dir(),
        ..CacheSettings::default()
    };
    SemanticCache::open_with(Store::open(dir).unwrap(), support::embedder(), &settings).unwrap()
}

const SCOPE: KeyScope = KeyScope {
    owner: None,
    simulated: &[],
    route: "support",
    target: "tier:cheap",
};

fn request(user: &str) -> ChatRequest {
    request_with(user, json!({}))
}

/// A request with a system prompt, `user` as the last turn and `fields` merged in.
fn request_with(user: &str, fields: serde_json::Value) -> ChatRequest {
    let mut v = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": user}
        ]
    });
    for (k, val) in fields.as_object().unwrap() {
        v[k] = val.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn key(user: &str) -> CacheKey {
    CacheKey::new(&request(user), &SCOPE).unwrap()
}

fn response(text: &str) -> ChatResponse {
    response_with(text, "stop")
}

fn response_with(text: &str, finish: &str) -> ChatResponse {
    serde_json::from_value(json!({
        "id": "chatcmpl-1",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
    .unwrap()
}

fn answer(hit: &sluice::cache::CacheHit) -> String {
    hit.response.choices[0].message.text()
}

async fn seed(cache: &SemanticCache, pairs: &[(&str, &str)]) {
    let policy = CachePolicy::default();
    for (q, a) in pairs {
        assert!(cache.insert(key(q), &response(a), &policy, None));
    }
    cache.flush().await.unwrap();
}

#[tokio::test]
async fn exact_paraphrase_and_near_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let policy = CachePolicy::default();
    seed(
        &cache,
        &[
            ("How do I reset my password?", "A:password"),
            ("What is the capital of France?", "A:paris"),
            ("How many days are in 2 weeks?", "A:14"),
            ("How do I increase my credit score?", "A:credit-up"),
            ("Is Python a compiled language?", "A:python"),
            ("What is the boiling point of water at sea level?", "A:boil"),
        ],
    )
    .await;

    let hit = cache
        .lookup(&key("How do I reset my password?"), &policy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (hit.kind, answer(&hit).as_str()),
        (HitKind::Exact, "A:password")
    );
    assert!(hit.embed_time.is_none(), "exact hits do not embed");

    let paraphrases = [
        ("What are the steps to reset my password?", "A:password"),
        ("how do i reset my password", "A:password"),
        ("Tell me the capital of France.", "A:paris"),
        ("What can I do to increase my credit score?", "A:credit-up"),
        (
            "At sea level, what is the boiling point of water?",
            "A:boil",
        ),
    ];
    for (q, expected) in paraphrases {
        let out = cache.lookup_outcome(&key(q), &policy).await.unwrap();
        let hit = out.hit.unwrap_or_else(|| panic!("{q}: {:?}", out.miss));
        assert_eq!(hit.kind, HitKind::Semantic, "{q}");
        assert_eq!(answer(&hit), expected, "{q}");
        assert!(hit.similarity >= policy.similarity_threshold);
        assert!(hit.embed_time.is_some() && hit.search_time.is_some());
    }

    let near_misses = [
        "How many days are in 3 weeks?",
        "How many days are in 2 months?",
        "What is the capital of Germany?",
        "what is the capital of spain",
        "Is Python not a compiled language?",
        "Isn't Python a compiled language?",
        "How do I decrease my credit score?",
        "How do I check my credit score?",
        "What is the freezing point of water at sea level?",
        "How do I reset my router password?",
    ];
    for q in near_misses {
        let out = cache.lookup_outcome(&key(q), &policy).await.unwrap();
        assert!(
            out.hit.is_none(),
            "{q} was served {:?}",
            out.hit.map(|h| answer(&h))
        );
    }
    let stats = cache.stats(&sluice::cache::Visibility::All);
    assert_eq!(stats.entries, 6);
    assert_eq!(stats.exact_hits, 1);
    assert_eq!(stats.semantic_hits, paraphrases.len() as u64);
    assert_eq!(stats.misses, near_misses.len() as u64);
    assert_eq!(stats.routes["support"].hits, 1 + paraphrases.len() as u64);
}

#[tokio::test]
async fn output_changing_fields_and_scope_separate_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let policy = CachePolicy::default();
    let q = "How do I reset my password?";
    assert!(cache.insert(key(q), &response("base"), &policy, None));
    cache.flush().await.unwrap();

    let mut system = request(q);
    system.messages[0] =
        serde_json::from_value(json!({"role": "system", "content": "Answer in French."})).unwrap();
    let variants: Vec<(&str, ChatRequest)> = vec![
        ("system prompt", system),
        (
            "temperature 0",
            request_with(q, json!({"temperature": 0.0})),
        ),
        (
            "tools",
            request_with(
                q,
                json!({"tools": [{"type": "function", "function": {"name": "lookup_user"}}]}),
            ),
        ),
        (
            "response_format",
            request_with(q, json!({"response_format": {"type": "json_object"}})),
        ),
        ("max_tokens", request_with(q, json!({"max_tokens": 5}))),
        (
            "presence_penalty",
            request_with(q, json!({"presence_penalty": 1.0})),
        ),
    ];
    for (what, req) in variants {
        let k = CacheKey::new(&req, &SCOPE).unwrap();
        assert!(
            cache.lookup(&k, &policy).await.unwrap().is_none(),
            "{what} must miss"
        );
    }
    for (what, scope) in [
        (
            "route",
            KeyScope {
                owner: None,
                simulated: &[],
                route: "sales",
                ..SCOPE
            },
        ),
        (
            "target",
            KeyScope {
                target: "tier:smart",
                ..SCOPE
            },
        ),
    ] {
        let k = CacheKey::new(&request(q), &scope).unwrap();
        assert!(
            cache.lookup(&k, &policy).await.unwrap().is_none(),
            "{what} must miss"
        );
    }
    // Transport fields do not matter.
    let streamed = request_with(
        q,
        json!({"stream": true, "user": "u-42", "metadata": {"team": "x"}}),
    );
    let k = CacheKey::new(&streamed, &SCOPE).unwrap();
    assert!(cache.lookup(&k, &policy).await.unwrap().is_some());
}

const ARTICLE: &str = "The city council of Northbridge met on Tuesday evening to debate next year's budget.
Officials proposed spending 4.2 million dollars on road repairs over the next two years, with most of
the work planned for the northern districts where residents have complained about potholes since 2019.

Several residents spoke in favour of more protected bike lanes, while others asked for better street
lighting near the train station. The mayor, Anna Berg, said a final vote would take place in March
after a six-week public consultation.

Critics argued that the plan ignored older residents who rely on buses, and asked the council to publish
a detailed breakdown of the costs before the vote. The council agreed to release the figures within two
weeks and to hold an additional hearing at the public library on the 14th.";

const OTHER_ARTICLE: &str = "A regional hospital in Eastvale opened a new cardiology wing on Monday,
adding 40 beds and two operating theatres. The project, which cost 18 million dollars, was funded partly
by a donation from a local software company and partly by the regional health authority.

Doctors said waiting times for heart surgery, currently around five months, should fall to under eight
weeks by the end of next year. The hospital is recruiting 60 nurses and 12 cardiologists, and plans a
training programme with the nearby university.

Patient groups welcomed the expansion but warned that staffing shortages in other departments, such as
emergency care and paediatrics, remain severe and need attention from the health ministry.";

#[tokio::test]
async fn long_documents_match_on_content_and_instruction() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let policy = CachePolicy::default();
    let summarize = format!("Summarize this:\n\n{ARTICLE}");
    assert!(key(&summarize).has_document());
    assert!(cache.insert(key(&summarize), &response("SUMMARY"), &policy, None));
    cache.flush().await.unwrap();

    // Same article: re-wrapped lines, extra spaces, a mail footer.
    let rewrapped = ARTICLE.replace('\n', " ").replace(". ", ".\n\n");
    let footer = format!("Summarize this:\n{rewrapped}\n\n--\nSent from my iPhone\n© 2024 Northbridge Gazette. All rights reserved.\n");
    let hit = cache
        .lookup(&key(&footer), &policy)
        .await
        .unwrap()
        .expect("same article, new whitespace + boilerplate");
    assert_eq!(
        (hit.kind, answer(&hit).as_str()),
        (HitKind::Exact, "SUMMARY")
    );

    // Same article, equivalent instruction.
    for instruction in [
        "Please summarize the following article:",
        "Give me a summary of this article:",
    ] {
        let q = format!("{instruction}\n\n{rewrapped}");
        let out = cache.lookup_outcome(&key(&q), &policy).await.unwrap();
        let hit = out
            .hit
            .unwrap_or_else(|| panic!("{instruction}: {:?}", out.miss));
        assert_eq!(
            (hit.kind, answer(&hit).as_str()),
            (HitKind::Semantic, "SUMMARY")
        );
    }

    let misses = [
        (
            "different article",
            format!("Summarize this:\n\n{OTHER_ARTICLE}"),
        ),
        (
            "one number changed",
            format!(
                "Summarize this:\n\n{}",
                ARTICLE.replace("4.2 million", "4.8 million")
            ),
        ),
        (
            "one name changed",
            format!(
                "Summarize this:\n\n{}",
                ARTICLE.replace("Anna Berg", "Anna Borg")
            ),
        ),
        (
            "truncated",
            format!("Summarize this:\n\n{}", &ARTICLE[..ARTICLE.len() * 2 / 3]),
        ),
        (
            "translate",
            format!("Translate this into French:\n\n{ARTICLE}"),
        ),
        (
            "key points",
            format!("List the key points of this article:\n\n{ARTICLE}"),
        ),
        (
            "title",
            format!("Write a title for this article:\n\n{ARTICLE}"),
        ),
        (
            "instruction after",
            format!("{ARTICLE}\n\nTranslate the above into German."),
        ),
    ];
    for (what, q) in misses {
        let out = cache.lookup_outcome(&key(&q), &policy).await.unwrap();
        assert!(out.hit.is_none(), "{what} was served from cache");
    }
}

#[tokio::test]
async fn entries_survive_restart_and_purge_by_route() {
    let dir = tempfile::tempdir().unwrap();
    let policy = CachePolicy::default();
    let sales = KeyScope {
        owner: None,
        simulated: &[],
        route: "sales",
        ..SCOPE
    };
    {
        let cache = open(dir.path());
        seed(&cache, &[("How do I reset my password?", "A:password")]).await;
        let k = CacheKey::new(
            &request("What discounts do you offer for students?"),
            &sales,
        )
        .unwrap();
        assert!(cache.insert(k, &response("A:discounts"), &policy, None));
        cache.flush().await.unwrap();
    }
    let cache = open(dir.path());
    assert_eq!(cache.stats(&sluice::cache::Visibility::All).entries, 2);
    let hit = cache
        .lookup(&key("What are the steps to reset my password?"), &policy)
        .await
        .unwrap();
    assert_eq!(
        hit.map(|h| answer(&h)).as_deref(),
        Some("A:password"),
        "index rebuilt from the store"
    );

    assert_eq!(
        cache
            .purge(Some("support"), sluice::cache::Visibility::All)
            .await
            .unwrap(),
        1
    );
    assert!(cache
        .lookup(&key("How do I reset my password?"), &policy)
        .await
        .unwrap()
        .is_none());
    let k = CacheKey::new(
        &request("What discounts do you offer for students?"),
        &sales,
    )
    .unwrap();
    assert!(cache.lookup(&k, &policy).await.unwrap().is_some());
    drop(cache);

    // Offline commands on the same directory.
    let report = sluice::commands::cache::stats(dir.path()).unwrap();
    assert!(
        report.contains("sales") && !report.contains("support"),
        "{report}"
    );
    assert_eq!(sluice::commands::cache::purge(dir.path(), None).unwrap(), 1);
    assert_eq!(
        open(dir.path())
            .stats(&sluice::cache::Visibility::All)
            .entries,
        0
    );
    // A mistyped directory is an error, not a new empty database.
    let typo = dir.path().join("typo");
    assert!(sluice::commands::cache::purge(&typo, None).is_err());
    assert!(sluice::commands::cache::stats(&typo).is_err());
    assert!(!typo.exists());
}

#[tokio::test]
async fn ttl_expiry_eviction_and_storage_policy() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let policy = CachePolicy::default();

    // Expiry: a 1 s TTL; wait for the clock (not for a background task) to pass it.
    let q = "How do I reset my password?";
    assert!(cache.insert(
        key(q),
        &response("short-lived"),
        &policy,
        Some(Duration::from_secs(1))
    ));
    cache.flush().await.unwrap();
    assert!(cache.lookup(&key(q), &policy).await.unwrap().is_some());
    let deadline = sluice::chat::unix_now() + 1;
    while sluice::chat::unix_now() <= deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cache.lookup(&key(q), &policy).await.unwrap().is_none(),
        "expired"
    );

    // Eviction: a route keeps at most max_entries, least recently used go first.
    let small = CachePolicy {
        max_entries: 2,
        ..CachePolicy::default()
    };
    for q in [
        "What is the capital of France?",
        "What is the capital of Italy?",
        "What is the capital of Spain?",
    ] {
        assert!(cache.insert(key(q), &response(q), &small, None));
        cache.flush().await.unwrap();
    }
    assert_eq!(
        cache.stats(&sluice::cache::Visibility::All).routes["support"].entries,
        2
    );
    assert!(cache
        .lookup(&key("What is the capital of France?"), &small)
        .await
        .unwrap()
        .is_none());
    assert!(cache
        .lookup(&key("What is the capital of Spain?"), &small)
        .await
        .unwrap()
        .is_some());

    // Only complete answers are stored, unless length cut-offs are allowed.
    let cut = response_with("partial", "length");
    assert!(!cache.insert(key("Explain TCP"), &cut, &policy, None));
    let lenient = CachePolicy {
        cache_length_cutoffs: true,
        ..CachePolicy::default()
    };
    assert!(cache.insert(key("Explain TCP"), &cut, &lenient, None));
    // Policy gates.
    let hot = CacheKey::new(
        &request_with("Explain UDP", json!({"temperature": 1.5})),
        &SCOPE,
    )
    .unwrap();
    assert!(!cache.insert(hot, &response("x"), &policy, None));
    let off = CachePolicy {
        enabled: false,
        ..CachePolicy::default()
    };
    assert_eq!(
        cache
            .lookup_outcome(&key("Explain TCP"), &off)
            .await
            .unwrap()
            .miss,
        Some(MissReason::Disabled)
    );
    let convo: ChatRequest = serde_json::from_value(json!({"model": "m", "messages": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Explain TCP"}]}))
    .unwrap();
    let single_turn = CachePolicy {
        cache_multi_turn: false,
        ..CachePolicy::default()
    };
    let k = CacheKey::new(&convo, &SCOPE).unwrap();
    assert_eq!(
        cache.lookup_outcome(&k, &single_turn).await.unwrap().miss,
        Some(MissReason::Bypassed)
    );
}

#[tokio::test]
async fn broken_files_are_clear_errors() {
    // Corrupted database.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0xA5; 64 * 1024]).unwrap();
    let settings = CacheSettings {
        data_dir: dir.path().to_path_buf(),
        models_dir: models_dir(),
        ..CacheSettings::default()
    };
    let err = SemanticCache::open(&settings).unwrap_err().to_string();
    assert!(err.contains(DB_FILE) && err.contains("delete"), "{err}");

    // Missing model files.
    let empty = tempfile::tempdir().unwrap();
    let settings = CacheSettings {
        data_dir: empty.path().join("data"),
        models_dir: empty.path().to_path_buf(),
        ..CacheSettings::default()
    };
    let err = SemanticCache::open(&settings).unwrap_err();
    assert!(matches!(err, CacheError::ModelAsset { .. }), "{err}");
    assert!(err.to_string().contains("fetch-models.sh"), "{err}");

    // A file that is not an ONNX Runtime library.
    let lib = empty.path().join("libonnxruntime.so");
    std::fs::write(&lib, b"\x7fELF but not really").unwrap();
    let settings = CacheSettings {
        data_dir: empty.path().join("data2"),
        models_dir: models_dir(),
        ort_library: Some(lib),
        ..CacheSettings::default()
    };
    let err = SemanticCache::open(&settings).unwrap_err();
    assert!(matches!(err, CacheError::Runtime { .. }), "{err}");
}

#[tokio::test]
async fn concurrent_embeds_are_batched_and_consistent() {
    let e = support::embedder();
    let texts: Vec<String> = (0..64)
        .map(|i| format!("How do I configure service number {i}?"))
        .collect();
    let single = e.embed(&texts[5]).await.unwrap();
    let start = std::time::Instant::now();
    for t in &texts[..16] {
        e.embed(t).await.unwrap();
    }
    let sequential = start.elapsed() / 16;
    let start = std::time::Instant::now();
    let all = futures::future::join_all(texts.iter().map(|t| e.embed(t))).await;
    let concurrent = start.elapsed();
    let batch = e.embed_batch(texts.clone()).await.unwrap();
    let all: Vec<Vec<f32>> = all.into_iter().map(Result::unwrap).collect();
    for (a, b) in all.iter().zip(&batch) {
        assert!(sluice::cache::embed::cosine(a, b) > 0.9999);
    }
    assert!(sluice::cache::embed::cosine(&single, &batch[5]) > 0.9999);
    println!(
        "embed: {:.1} ms per sequential call, 64 concurrent calls in {:.1} ms ({:.0}/s)",
        sequential.as_secs_f64() * 1e3,
        concurrent.as_secs_f64() * 1e3,
        64.0 / concurrent.as_secs_f64()
    );
}

/// Child half of `committed_entries_survive_kill_9`: inserts, waits for the commit, signals,
/// then idles until it is killed. Does nothing when run on its own.
#[tokio::test]
#[ignore = "run by committed_entries_survive_kill_9 in a child process"]
async fn kill9_child() {
    let Ok(dir) = std::env::var("SLUICE_KILL9_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let cache = open(&dir);
    seed(&cache, &[("How do I reset my password?", "A:durable")]).await;
    std::fs::write(dir.join("committed"), b"1").unwrap();
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
}

#[tokio::test]
async fn committed_entries_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cache::kill9_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env("SLUICE_KILL9_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marker = dir.path().join("committed");
    let started = std::time::Instant::now();
    while !marker.exists() {
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "child never committed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL: no destructors, no flush
    child.wait().unwrap();
    let cache = open(dir.path());
    let hit = cache
        .lookup(&key("How do I reset my password?"), &CachePolicy::default())
        .await
        .unwrap();
    assert_eq!(hit.map(|h| answer(&h)).as_deref(), Some("A:durable"));
}

/// A bucket past the exact-scan limit gets an HNSW graph, and lookups still find the one entry
/// the guards accept among hundreds of near-identical ones.
#[tokio::test]
async fn large_bucket_uses_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let policy = CachePolicy::default();
    let n = sluice::cache::index::EXACT_SCAN_MAX + 88;
    for i in 0..n {
        let q = format!("What is the price of product {i}?");
        assert!(cache.insert(key(&q), &response(&format!("price-{i}")), &policy, None));
    }
    cache.flush().await.unwrap();
    let stats = cache.stats(&sluice::cache::Visibility::All);
    assert_eq!((stats.entries, stats.graphs), (n as u64, 1));
    for i in [3, 317, n - 1] {
        let q = format!("Tell me the price of product {i}.");
        let out = cache.lookup_outcome(&key(&q), &policy).await.unwrap();
        let hit = out.hit.unwrap_or_else(|| panic!("{q}: {:?}", out.miss));
        assert_eq!(answer(&hit), format!("price-{i}"));
    }
    let q = format!("Tell me the price of product {}.", n + 5);
    assert!(cache.lookup(&key(&q), &policy).await.unwrap().is_none());
}

/// Labelled pairs across domains: (a, b, same answer?). Negatives change one number, name,
/// negation, direction, unit or object; positives rephrase.
const PAIRS: &[(&str, &str, bool)] = &[
    (
        "How do I reset my password?",
        "What are the steps to reset my password?",
        true,
    ),
    (
        "What is the capital of Australia?",
        "Which city is the capital of Australia?",
        true,
    ),
    (
        "How many calories are in a banana?",
        "How many calories does a banana have?",
        true,
    ),
    (
        "What is the boiling point of water at sea level?",
        "At sea level, what temperature does water boil at?",
        true,
    ),
    (
        "How do I reverse a list in Python?",
        "What's the way to reverse a Python list?",
        true,
    ),
    (
        "Who wrote Pride and Prejudice?",
        "Who is the author of Pride and Prejudice?",
        true,
    ),
    (
        "What are the symptoms of the flu?",
        "What symptoms does the flu cause?",
        true,
    ),
    (
        "How long should I boil an egg for a soft yolk?",
        "For a soft yolk, how long do I boil an egg?",
        true,
    ),
    (
        "Convert 100 Fahrenheit to Celsius",
        "What is 100 Fahrenheit in Celsius?",
        true,
    ),
    (
        "How do I center a div in CSS?",
        "How can I center a div using CSS?",
        true,
    ),
    (
        "What is the difference between TCP and UDP?",
        "How do TCP and UDP differ?",
        true,
    ),
    (
        "Can you explain what a mortgage is?",
        "What is a mortgage?",
        true,
    ),
    (
        "What is the tallest mountain in the world?",
        "Which mountain is the tallest in the world?",
        true,
    ),
    (
        "How do I delete a branch in git?",
        "How can I delete a git branch?",
        true,
    ),
    (
        "What's the population of Canada?",
        "How many people live in Canada?",
        true,
    ),
    (
        "How do I make my laptop battery last longer?",
        "Tips to make my laptop battery last longer?",
        true,
    ),
    ("Why is the sky blue?", "What makes the sky blue?", true),
    (
        "What time zone is Tokyo in?",
        "Which time zone does Tokyo use?",
        true,
    ),
    (
        "Translate 'thank you' into Spanish",
        "How do you say 'thank you' in Spanish?",
        true,
    ),
    ("What is photosynthesis?", "Explain photosynthesis.", true),
    (
        "How do I install Docker on Ubuntu?",
        "What are the steps to install Docker on Ubuntu?",
        true,
    ),
    (
        "Summarize the plot of Hamlet",
        "Give me a summary of the plot of Hamlet",
        true,
    ),
    (
        "What foods are high in iron?",
        "Which foods contain a lot of iron?",
        true,
    ),
    (
        "How many ounces are in a cup?",
        "How many ounces does a cup hold?",
        true,
    ),
    (
        "What is the speed of light?",
        "How fast does light travel?",
        true,
    ),
    (
        "When did World War II end?",
        "In what year did World War II end?",
        true,
    ),
    (
        "How can I improve my credit score?",
        "What can I do to improve my credit score?",
        true,
    ),
    (
        "What does HTTP 404 mean?",
        "What is the meaning of HTTP 404?",
        true,
    ),
    (
        "Recommend a good book on machine learning",
        "Can you suggest a good machine learning book?",
        true,
    ),
    (
        "Is coffee bad for your health?",
        "Is drinking coffee bad for your health?",
        true,
    ),
    (
        "How do I sort a dictionary by value in Python?",
        "Sort a Python dictionary by value - how?",
        true,
    ),
    (
        "What is the chemical formula of table salt?",
        "What's table salt's chemical formula?",
        true,
    ),
    (
        "How do I cancel my subscription?",
        "I want to cancel my subscription, how do I do that?",
        true,
    ),
    (
        "Where is the Eiffel Tower located?",
        "Where can I find the Eiffel Tower?",
        true,
    ),
    (
        "What is the square root of 144?",
        "Square root of 144?",
        true,
    ),
    (
        "How do I change the oil in my car?",
        "What's the process for changing my car's oil?",
        true,
    ),
    (
        "What are the benefits of meditation?",
        "What benefits does meditation have?",
        true,
    ),
    (
        "How do I convert a string to an integer in Java?",
        "In Java, how do I convert a string into an integer?",
        true,
    ),
    (
        "What is the best time to visit Japan?",
        "When is the best time to visit Japan?",
        true,
    ),
    (
        "How much water should I drink per day?",
        "How much water should I drink each day?",
        true,
    ),
    ("Explain how vaccines work", "How do vaccines work?", true),
    (
        "What is inflation?",
        "Can you explain inflation to me?",
        true,
    ),
    (
        "How do I reset my password?",
        "How do I reset my router password?",
        false,
    ),
    (
        "What is the capital of Australia?",
        "What is the capital of Austria?",
        false,
    ),
    (
        "How many calories are in a banana?",
        "How many calories are in two bananas?",
        false,
    ),
    (
        "What is the boiling point of water at sea level?",
        "What is the freezing point of water at sea level?",
        false,
    ),
    (
        "How do I reverse a list in Python?",
        "How do I reverse a list in JavaScript?",
        false,
    ),
    (
        "Who wrote Pride and Prejudice?",
        "Who wrote Sense and Sensibility?",
        false,
    ),
    (
        "What are the symptoms of the flu?",
        "What are the symptoms of the common cold?",
        false,
    ),
    (
        "How long should I boil an egg for a soft yolk?",
        "How long should I boil an egg for a hard yolk?",
        false,
    ),
    (
        "Convert 100 Fahrenheit to Celsius",
        "Convert 100 Celsius to Fahrenheit",
        false,
    ),
    (
        "How do I center a div in CSS?",
        "How do I hide a div in CSS?",
        false,
    ),
    (
        "What is the difference between TCP and UDP?",
        "What is the difference between HTTP and HTTPS?",
        false,
    ),
    (
        "Why does my code compile?",
        "Why doesn't my code compile?",
        false,
    ),
    (
        "What is the tallest mountain in the world?",
        "What is the tallest building in the world?",
        false,
    ),
    (
        "How do I delete a branch in git?",
        "How do I create a branch in git?",
        false,
    ),
    (
        "What's the population of Canada?",
        "What's the population of Mexico?",
        false,
    ),
    (
        "How do I increase my laptop's screen brightness?",
        "How do I decrease my laptop's screen brightness?",
        false,
    ),
    (
        "What was the population of Canada in 1990?",
        "What was the population of Canada in 2000?",
        false,
    ),
    (
        "What time zone is Tokyo in?",
        "What time zone is Seoul in?",
        false,
    ),
    (
        "Translate 'thank you' into Spanish",
        "Translate 'thank you' into French",
        false,
    ),
    (
        "Flights from London to New York",
        "Flights from New York to London",
        false,
    ),
    (
        "How do I install Docker on Ubuntu?",
        "How do I uninstall Docker on Ubuntu?",
        false,
    ),
    (
        "Summarize the plot of Hamlet",
        "Summarize the plot of Macbeth",
        false,
    ),
    (
        "What foods are high in iron?",
        "What foods are low in iron?",
        false,
    ),
    (
        "How many ounces are in a cup?",
        "How many ounces are in a pint?",
        false,
    ),
    (
        "Should I take the job if the salary is above $80,000?",
        "Should I take the job if the salary is below $80,000?",
        false,
    ),
    (
        "What happened before the French Revolution?",
        "What happened after the French Revolution?",
        false,
    ),
    (
        "How can I improve my credit score?",
        "How can I check my credit score?",
        false,
    ),
    (
        "What does HTTP 404 mean?",
        "What does HTTP 500 mean?",
        false,
    ),
    (
        "Is coffee bad for your health?",
        "Is coffee good for your health?",
        false,
    ),
    (
        "How do I sort a dictionary by value in Python?",
        "How do I sort a dictionary by key in Python?",
        false,
    ),
    (
        "What is the chemical formula of table salt?",
        "What is the chemical formula of baking soda?",
        false,
    ),
    (
        "How do I cancel my subscription?",
        "How do I renew my subscription?",
        false,
    ),
    (
        "What is the square root of 144?",
        "What is the square root of 169?",
        false,
    ),
    (
        "How do I change the oil in my car?",
        "How do I change the tires on my car?",
        false,
    ),
    (
        "What are the benefits of meditation?",
        "What are the risks of meditation?",
        false,
    ),
    (
        "How do I convert a string to an integer in Java?",
        "How do I convert an integer to a string in Java?",
        false,
    ),
    (
        "What is the best time to visit Japan?",
        "What is the worst time to visit Japan?",
        false,
    ),
    (
        "How much water should I drink per day?",
        "How much coffee should I drink per day?",
        false,
    ),
    (
        "Explain how vaccines work",
        "Explain how antibiotics work",
        false,
    ),
    (
        "What is the maximum dose of paracetamol for adults?",
        "What is the maximum dose of paracetamol for children?",
        false,
    ),
    ("Is 17 a prime number?", "Is 21 a prime number?", false),
    (
        "How do I encrypt a file with GPG?",
        "How do I decrypt a file with GPG?",
        false,
    ),
    (
        "What is the exchange rate from USD to EUR?",
        "What is the exchange rate from EUR to USD?",
        false,
    ),
    ("Can dogs eat grapes?", "Can cats eat grapes?", false),
    (
        "How do I upload files to S3?",
        "How do I download files from S3?",
        false,
    ),
    (
        "Write a haiku about winter",
        "Write a haiku about summer",
        false,
    ),
    ("What's 15% of 200?", "What's 20% of 200?", false),
    (
        "Who was the first president of the United States?",
        "Who was the second president of the United States?",
        false,
    ),
    (
        "I'm allergic to nuts, what can I eat?",
        "I'm not allergic to nuts, what can I eat?",
        false,
    ),
    (
        "How do I turn on dark mode in Windows 11?",
        "How do I turn off dark mode in Windows 11?",
        false,
    ),
    (
        "What is the distance from Paris to Berlin in km?",
        "What is the distance from Paris to Berlin in miles?",
        false,
    ),
    (
        "Recipe for chocolate cake without eggs",
        "Recipe for chocolate cake with eggs",
        false,
    ),
    (
        "How do I get from the airport to downtown by train?",
        "How do I get from downtown to the airport by train?",
        false,
    ),
    (
        "Is it safe to fly while pregnant?",
        "Is it safe to drive while pregnant?",
        false,
    ),
];

/// Written after the guards were developed against `PAIRS`, and not used to change them: the
/// honest estimate.
const HELD_OUT: &[(&str, &str, bool)] = &[
    (
        "How do I block a number on my iPhone?",
        "What's the way to block a number on an iPhone?",
        true,
    ),
    (
        "What is the main ingredient in guacamole?",
        "Guacamole's main ingredient is what?",
        true,
    ),
    (
        "How many legs does a spider have?",
        "How many legs do spiders have?",
        true,
    ),
    (
        "What's the fastest way to learn to type?",
        "How can I learn to type fast?",
        true,
    ),
    (
        "How do I clear my browser cache in Chrome?",
        "How can I clear the browser cache in Chrome?",
        true,
    ),
    (
        "Who painted the Mona Lisa?",
        "Who was the painter of the Mona Lisa?",
        true,
    ),
    (
        "What is the freezing point of water in Fahrenheit?",
        "In Fahrenheit, what is the freezing point of water?",
        true,
    ),
    (
        "How do I merge two dictionaries in Python?",
        "What's the best way to merge two dictionaries in Python?",
        true,
    ),
    (
        "What is the capital of Canada?",
        "Tell me what the capital of Canada is.",
        true,
    ),
    (
        "How long does it take to boil pasta?",
        "How long should pasta boil?",
        true,
    ),
    (
        "What are the side effects of aspirin?",
        "What side effects does aspirin have?",
        true,
    ),
    (
        "How do I undo the last commit in git?",
        "How can I undo my last git commit?",
        true,
    ),
    (
        "What year did the Berlin Wall fall?",
        "When did the Berlin Wall fall?",
        true,
    ),
    (
        "Is it safe to eat raw cookie dough?",
        "Can I safely eat raw cookie dough?",
        true,
    ),
    (
        "How do I list all files in a directory in Linux?",
        "How can I list every file in a Linux directory?",
        true,
    ),
    ("What does DNS stand for?", "What is DNS short for?", true),
    (
        "How do I remove a stain from a white shirt?",
        "What's the best way to remove a stain from a white shirt?",
        true,
    ),
    (
        "What is the largest ocean on Earth?",
        "Which ocean is the largest on Earth?",
        true,
    ),
    (
        "How do I connect my AirPods to a Mac?",
        "How can I connect AirPods to my Mac?",
        true,
    ),
    (
        "Explain the theory of relativity in simple terms",
        "Can you explain the theory of relativity simply?",
        true,
    ),
    (
        "What's a good name for a golden retriever?",
        "Suggest a good name for a golden retriever",
        true,
    ),
    (
        "How to check disk space on Ubuntu?",
        "How do I check the disk space in Ubuntu?",
        true,
    ),
    (
        "What causes inflation?",
        "What are the causes of inflation?",
        true,
    ),
    (
        "How do you make cold brew coffee?",
        "How do I make cold brew coffee at home?",
        true,
    ),
    (
        "How many players are on a soccer team?",
        "How many players does a soccer team have?",
        true,
    ),
    (
        "How do I block a number on my iPhone?",
        "How do I unblock a number on my iPhone?",
        false,
    ),
    (
        "What is the main ingredient in guacamole?",
        "What is the main ingredient in hummus?",
        false,
    ),
    (
        "How many legs does a spider have?",
        "How many legs does an insect have?",
        false,
    ),
    (
        "How do I clear my browser cache in Chrome?",
        "How do I clear my browser cache in Firefox?",
        false,
    ),
    (
        "Who painted the Mona Lisa?",
        "Who painted the Starry Night?",
        false,
    ),
    (
        "What is the freezing point of water in Fahrenheit?",
        "What is the freezing point of water in Kelvin?",
        false,
    ),
    (
        "How do I merge two dictionaries in Python?",
        "How do I merge two lists in Python?",
        false,
    ),
    (
        "What is the capital of Canada?",
        "What is the largest city of Canada?",
        false,
    ),
    (
        "How long does it take to boil pasta?",
        "How long does it take to boil rice?",
        false,
    ),
    (
        "What are the side effects of aspirin?",
        "What are the side effects of ibuprofen?",
        false,
    ),
    (
        "How do I undo the last commit in git?",
        "How do I undo the last two commits in git?",
        false,
    ),
    (
        "What year did the Berlin Wall fall?",
        "What year was the Berlin Wall built?",
        false,
    ),
    (
        "Is it safe to eat raw cookie dough?",
        "Is it safe to eat raw eggs?",
        false,
    ),
    (
        "How do I list all files in a directory in Linux?",
        "How do I delete all files in a directory in Linux?",
        false,
    ),
    (
        "What does DNS stand for?",
        "What does DHCP stand for?",
        false,
    ),
    (
        "How do I remove a stain from a white shirt?",
        "How do I remove a stain from a black shirt?",
        false,
    ),
    (
        "What is the largest ocean on Earth?",
        "What is the smallest ocean on Earth?",
        false,
    ),
    (
        "How do I connect my AirPods to a Mac?",
        "How do I disconnect my AirPods from a Mac?",
        false,
    ),
    ("Set an alarm for 7 am", "Set an alarm for 7 pm", false),
    (
        "How do I convert a PDF to Word?",
        "How do I convert a Word document to PDF?",
        false,
    ),
    (
        "What's a good name for a golden retriever?",
        "What's a good name for a black cat?",
        false,
    ),
    (
        "Should I sell my stocks when the market drops?",
        "Should I buy stocks when the market drops?",
        false,
    ),
    ("What causes inflation?", "What causes deflation?", false),
    ("Is a tomato a fruit?", "Is a tomato not a fruit?", false),
    (
        "How many players are on a soccer team?",
        "How many players are on a basketball team?",
        false,
    ),
    (
        "What's the weather like in Paris in May?",
        "What's the weather like in Paris in December?",
        false,
    ),
    (
        "Book a table for 4 people at 8pm",
        "Book a table for 6 people at 8pm",
        false,
    ),
    (
        "How do I make my website load faster?",
        "Why does my website load slowly?",
        false,
    ),
    (
        "Tell me a joke about cats",
        "Tell me a joke about dogs",
        false,
    ),
    (
        "Show me Python code to read a CSV file",
        "Show me Python code to write a CSV file",
        false,
    ),
];

type Scored = (
    f32,
    Result<(), sluice::text::GuardMismatch>,
    bool,
    &'static str,
    &'static str,
);

/// Prints precision / recall of "serve b's answer for a" per threshold, with the vector alone
/// and with the guards; returns (precision, recall) with the guards at `default`.
async fn evaluate(
    cache: &SemanticCache,
    name: &str,
    pairs: &[(&'static str, &'static str, bool)],
    default: f32,
) -> (f64, f64) {
    let mut scored: Vec<Scored> = Vec::new();
    for (a, b, same) in pairs {
        let r = cache.compare(a, b).await.unwrap();
        scored.push((r.similarity, r.guards, *same, a, b));
    }
    let positives = pairs.iter().filter(|p| p.2).count();
    let median = |same: bool| {
        let mut v: Vec<f32> = scored.iter().filter(|s| s.2 == same).map(|s| s.0).collect();
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{name}: {} pairs ({positives} paraphrases, {} near-misses); median cosine: paraphrases {:.3}, near-misses {:.3}",
        pairs.len(),
        pairs.len() - positives,
        median(true),
        median(false)
    );
    println!("threshold | vector only: precision recall | vector + guards: precision recall");
    let mut at_default = (0.0, 0.0);
    for t in [0.70f32, 0.75, 0.80, 0.85, 0.90, 0.95] {
        let pr = |guarded: bool| {
            let predicted = |s: &Scored| s.0 >= t && (!guarded || s.1.is_ok());
            let tp = scored.iter().filter(|s| predicted(s) && s.2).count() as f64;
            let fp = scored.iter().filter(|s| predicted(s) && !s.2).count() as f64;
            let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 1.0 };
            (precision, tp / positives as f64)
        };
        let (vp, vr) = pr(false);
        let (gp, gr) = pr(true);
        println!(
            "     {t:.2} |                {vp:.3}  {vr:.3} |                   {gp:.3}  {gr:.3}"
        );
        if (t - default).abs() < 1e-6 {
            at_default = (gp, gr);
        }
    }
    for (sim, why, same, a, b) in &scored {
        if why.is_ok() != *same || (*same && *sim < default) {
            println!(
                "  {} {sim:.3} {why:?}: {a} | {b}",
                if *same { "missed" } else { "WRONG " }
            );
        }
    }
    at_default
}

/// Threshold evidence (run with --nocapture to see the tables). The default threshold must keep
/// precision on both sets.
#[tokio::test]
async fn threshold_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let default = CachePolicy::default().similarity_threshold;
    let dev = evaluate(&cache, "development set", PAIRS, default).await;
    let held_out = evaluate(&cache, "held-out set", HELD_OUT, default).await;
    assert!(
        dev.0 >= 0.97 && dev.1 >= 0.5,
        "development set at {default}: {dev:?}"
    );
    assert!(held_out.0 >= 0.9, "held-out set at {default}: {held_out:?}");
}
