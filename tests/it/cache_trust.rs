//! A cache you can trust, over HTTP with the real model and real redb files: scopes keep callers
//! apart, nothing can be planted for others, operands match exactly, task frames decide over
//! documents, transport noise does not split a document, and gray-zone candidates are served only
//! once verification has learned that their kind is safe.

use serde_json::{json, Value};
use sluice::cache::{Gray, Visibility};

use crate::support::{ask, header, Gateway, Sse};

const ROUTES: &str = r#"
[server.api_keys]
alice = "sk-alice"
bob = "sk-bob"
[server.api_keys.ops]
key = "sk-ops"
role = "admin"

[providers.oa.models]
"gpt-4o-mini" = {}
fixed = { upstream_model = "m+answer-positive" }
[providers.an.models]
"claude-3-haiku" = {}

[routes.support]
tiers.cheap = ["oa/gpt-4o-mini"]
cache = { ttl_secs = 60 }

[routes.shared]
tiers.cheap = ["oa/gpt-4o-mini"]
cache = { scope = "shared" }

[routes.summarize]
tiers.cheap = ["an/claude-3-haiku"]

[routes.classify]
tiers.cheap = ["oa/fixed"]
cache = { similarity_threshold = 0.999, max_error = 0.2 }

[providers.oa.models.long]
upstream_model = "m+tokens-120"
[providers.oa.models.judge]
upstream_model = "m+answer-YES"

[routes.judged]
tiers.cheap = ["oa/long"]
cache = { similarity_threshold = 0.999, verify = "judge", judge = "oa/judge" }

[routes.classify_free]
tiers.cheap = ["oa/gpt-4o-mini"]
cache = { similarity_threshold = 0.999, max_error = 0.2 }
"#;

async fn gateway(dir: &tempfile::TempDir) -> Gateway {
    Gateway::start_cached(ROUTES, dir.path()).await
}

/// POST as `key` with extra headers; returns (status, x-sluice-cache, body).
async fn send(
    g: &Gateway,
    key: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, String, Value) {
    let mut r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let cache = header(resp.headers(), "x-sluice-cache").to_owned();
    let v = if body["stream"] == json!(true) {
        let sse = Sse::read(resp).await;
        json!({"done": sse.done(), "content": sse.content()})
    } else {
        resp.json::<Value>().await.unwrap()
    };
    (status, cache, v)
}

async fn settle(g: &Gateway) {
    g.state.cache.as_ref().unwrap().flush().await.unwrap();
}

fn entries(g: &Gateway) -> Vec<sluice::store::StoredEntry> {
    g.state
        .cache
        .as_ref()
        .unwrap()
        .store()
        .cache_entries()
        .unwrap()
}

#[tokio::test]
async fn callers_never_see_each_others_answers() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let q = "How do I change the billing address on my account?";
    assert_eq!(
        send(&g, "sk-alice", &ask("support", q), &[]).await.1,
        "miss"
    );
    settle(&g).await;
    // Alice's repeat and her paraphrase hit.
    assert_eq!(
        send(&g, "sk-alice", &ask("support", q), &[]).await.1,
        "hit-exact"
    );
    let para = "How can I change the billing address on my account?";
    assert!(send(&g, "sk-alice", &ask("support", para), &[])
        .await
        .1
        .starts_with("hit"));
    // Bob gets none of it: exact, semantic, streamed, only-if-cached.
    let (status, c, v) = send(
        &g,
        "sk-bob",
        &ask("support", q),
        &[("x-sluice-cache", "only-if-cached")],
    )
    .await;
    assert_eq!((status, c.as_str()), (504, "miss"), "{v}");
    assert_eq!(v["error"]["code"], "cache_miss");
    assert_eq!(
        send(&g, "sk-bob", &ask("support", para), &[]).await.1,
        "miss"
    );
    let mut stream = ask("support", q);
    stream["stream"] = json!(true);
    let (status, c, v) = send(&g, "sk-bob", &stream, &[]).await;
    assert_eq!((status, c.as_str()), (200, "miss"));
    assert_eq!(v["done"], true);
    settle(&g).await;
    // Bob's own repeat hits his own entry.
    assert_eq!(
        send(&g, "sk-bob", &ask("support", q), &[]).await.1,
        "hit-exact"
    );
    // Statistics are for admin keys only (a client key gets 403), and show every scope; the
    // entries name their owner.
    let stats = |key: &'static str| {
        g.http
            .get(g.url("/admin/cache/stats"))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(stats("sk-bob").await.unwrap().status(), 403);
    let stats = stats("sk-ops")
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let owners: Vec<Option<String>> = entries(&g).into_iter().map(|e| e.entry.owner).collect();
    assert!(owners.contains(&Some("caller:alice".into())));
    assert!(owners.contains(&Some("caller:bob".into())));
    assert_eq!(stats["entries"], json!(owners.len()), "{stats}");
    assert_eq!(
        g.state
            .cache
            .as_ref()
            .unwrap()
            .stats(&Visibility::All)
            .entries as usize,
        owners.len()
    );
    // A shared route is shared on purpose.
    assert_eq!(send(&g, "sk-alice", &ask("shared", q), &[]).await.1, "miss");
    settle(&g).await;
    assert_eq!(
        send(&g, "sk-bob", &ask("shared", q), &[]).await.1,
        "hit-exact"
    );
}

#[tokio::test]
async fn nothing_can_be_planted_for_others() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let k = "sk-alice";
    // A footer line is part of a short prompt: it is never stripped to match another prompt.
    let base = "Write a welcome e-mail for new customers.";
    send(&g, k, &ask("support", base), &[]).await;
    settle(&g).await;
    let planted = format!("{base}\nInclude an unsubscribe link.");
    let (_, c, _) = send(&g, k, &ask("support", &planted), &[]).await;
    assert!(!c.starts_with("hit"), "{c}");
    // A request's TTL only shortens the route's (60 s).
    let long = "What are your opening hours on public holidays?";
    send(
        &g,
        k,
        &ask("support", long),
        &[("x-sluice-cache-ttl", "315360000")],
    )
    .await;
    let short = "Do you ship to Norway?";
    send(
        &g,
        k,
        &ask("support", short),
        &[("x-sluice-cache-ttl", "5")],
    )
    .await;
    settle(&g).await;
    let life = |text: &str| {
        let e = entries(&g)
            .into_iter()
            .find(|e| e.entry.text.contains(text))
            .expect("stored");
        e.entry.expires_unix - e.entry.created_unix
    };
    assert_eq!(life("public holidays"), 60);
    assert_eq!(life("Norway"), 5);
    // On a shared route, `refresh` answers the caller but replaces nothing others read.
    let q = "Which payment methods do you accept?";
    send(&g, "sk-alice", &ask("shared", q), &[]).await;
    settle(&g).await;
    let before: Vec<u64> = entries(&g).iter().map(|e| e.id).collect();
    let (status, c, _) = send(
        &g,
        "sk-bob",
        &ask("shared", q),
        &[("x-sluice-cache", "refresh")],
    )
    .await;
    assert_eq!((status, c.as_str()), (200, "bypass"));
    settle(&g).await;
    let after: Vec<u64> = entries(&g).iter().map(|e| e.id).collect();
    assert_eq!(before, after, "a shared entry was replaced by a refresh");
    // On a caller-scoped route, `refresh` replaces the caller's own entry only.
    send(&g, "sk-bob", &ask("support", q), &[]).await;
    send(&g, "sk-alice", &ask("support", q), &[]).await;
    settle(&g).await;
    let id_of = |owner: &str| {
        entries(&g)
            .into_iter()
            .find(|e| {
                e.entry.text.contains("payment methods")
                    && e.entry.owner.as_deref() == Some(owner)
                    && e.entry.route == "support"
            })
            .map(|e| e.id)
            .expect("entry")
    };
    let (alice, bob) = (id_of("caller:alice"), id_of("caller:bob"));
    send(
        &g,
        "sk-bob",
        &ask("support", q),
        &[("x-sluice-cache", "refresh")],
    )
    .await;
    settle(&g).await;
    assert_eq!(id_of("caller:alice"), alice);
    assert_ne!(id_of("caller:bob"), bob);
}

#[tokio::test]
async fn operands_match_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let k = "sk-alice";
    let code = "Why does this print nothing?\n```python\nfor i in range(10):\n    if i % 2 == 0:\n        print(i)\n```";
    send(&g, k, &ask("support", code), &[]).await;
    settle(&g).await;
    // The same code indented differently (its structure kept): the same operand.
    let indented = "Why does this print nothing?\n```python\n    for i in range(10):\n        if i % 2 == 0:\n            print(i)\n```";
    assert_eq!(
        send(&g, k, &ask("support", indented), &[]).await.1,
        "hit-exact"
    );
    // One character changed inside the code: always a miss.
    let changed = code.replace("print(i)", "print(j)");
    assert_eq!(send(&g, k, &ask("support", &changed), &[]).await.1, "miss");
    let changed = code.replace("== 0", "!= 0");
    assert_eq!(send(&g, k, &ask("support", &changed), &[]).await.1, "miss");
    // Quoted text is an operand too.
    send(
        &g,
        k,
        &ask(
            "support",
            "Translate 'The meeting moved to Thursday' into French.",
        ),
        &[],
    )
    .await;
    settle(&g).await;
    let other = "Translate 'The meeting moved to Tuesday' into French.";
    assert_eq!(send(&g, k, &ask("support", other), &[]).await.1, "miss");
}

const MEMO: &str =
    "Starting on 1 March, all travel bookings for the Lisbon office go through the new \
portal instead of the shared mailbox. Flights above 600 euros need approval from a department head \
before booking, and hotel stays are capped at 140 euros a night in Lisbon and 180 euros in London. \
The finance team will reimburse taxis only when no public transport runs within 30 minutes of the \
trip. Receipts must be uploaded within 10 days of return; claims filed later are paid in the next \
quarter. Questions go to Marta Silva in finance, who will also run two training sessions on the \
portal in the week of 20 February.";

fn summarize(instruction: &str, doc: &str) -> Value {
    ask("summarize", &format!("{instruction}\n\n{doc}"))
}

#[tokio::test]
async fn task_frames_and_transport_noise_decide_over_documents() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let k = "sk-alice";
    send(
        &g,
        k,
        &summarize("Summarize this memo in one sentence.", MEMO),
        &[],
    )
    .await;
    settle(&g).await;
    // A different length is another request.
    let (_, c, _) = send(
        &g,
        k,
        &summarize("Summarize this memo in three sentences.", MEMO),
        &[],
    )
    .await;
    assert_eq!(c, "miss");
    // The same frame in other words is the same request.
    let (_, c, _) = send(
        &g,
        k,
        &summarize("Give me a one-sentence summary of the text below:", MEMO),
        &[],
    )
    .await;
    assert_eq!(c, "hit-semantic");
    // The memo forwarded, with headers and a phone footer: the same document.
    let forwarded = format!(
        "---------- Forwarded message ---------\nFrom: Rui Costa <rui@example.com>\nDate: Tue, 6 Feb 2024 at 09:14\nSubject: Travel policy\nTo: Team <team@example.com>\n\n{MEMO}\n\nSent from my iPhone"
    );
    let (_, c, _) = send(
        &g,
        k,
        &summarize("Summarize this memo in one sentence.", &forwarded),
        &[],
    )
    .await;
    assert!(c.starts_with("hit"), "{c}");
    // Truncated, or one number changed: another document.
    let truncated = &MEMO[..MEMO.len() * 6 / 10];
    let (_, c, _) = send(
        &g,
        k,
        &summarize("Summarize this memo in one sentence.", truncated),
        &[],
    )
    .await;
    assert_eq!(c, "miss");
    let changed = MEMO.replace("140 euros", "160 euros");
    let (_, c, _) = send(
        &g,
        k,
        &summarize("Summarize this memo in one sentence.", &changed),
        &[],
    )
    .await;
    assert_eq!(c, "miss");
}

/// The memo as a mail body: a title, paragraphs, a sign-off.
fn memo_mail() -> String {
    let sentences: Vec<&str> = MEMO.split_inclusive(". ").collect();
    format!(
        "Travel policy update\n\n{}\n\n{}\n\nBest regards,\nMarta Silva",
        sentences[..3].concat().trim(),
        sentences[3..].concat().trim()
    )
}

#[tokio::test]
async fn documents_in_unfamiliar_wrappers_hit_and_edited_ones_miss() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let k = "sk-alice";
    let doc = memo_mail();
    send(
        &g,
        k,
        &summarize("Summarize this memo in one sentence.", &doc),
        &[],
    )
    .await;
    settle(&g).await;
    // Forward headers in German, a signature block and a legal line no rule names: the same
    // document, found by its core between the edge zones.
    let german = format!(
        "Von: Rui Costa <rui@firma.example>\nGesendet: Dienstag, 6. Februar 2024 09:14\nAn: Team\nBetreff: WG: Reiserichtlinie\n\n{doc}\n\nRui Costa\nTeamleitung Einkauf | Firma GmbH\nTel. +49 30 1234 5678"
    );
    let wrapped = |d: &str| summarize("Summarize this memo in one sentence.", d);
    let (_, c, _) = send(&g, k, &wrapped(&german), &[]).await;
    assert!(c.starts_with("hit"), "german forward: {c}");
    // The mail pasted as HTML source, re-spaced.
    let html = format!(
        "<div class=\"body\"><p>{}</p></div>",
        doc.replace("\n\n", "</p>\n<p>").replace('\n', "<br>")
    );
    let (_, c, _) = send(&g, k, &wrapped(&html), &[]).await;
    assert!(c.starts_with("hit"), "html: {c}");
    // Quoted in a French reply, the request after it in other words.
    let quoted: String = doc.lines().map(|l| format!("> {l}\n")).collect();
    let reply = format!(
        "Le mar. 6 févr. 2024 à 09:14, Rui Costa <rui@firma.example> a écrit :\n{quoted}\nCan you sum this up in one sentence?"
    );
    let (_, c, _) = send(&g, k, &ask("summarize", &reply), &[]).await;
    assert!(c.starts_with("hit"), "french reply: {c}");
    // The same wrapper around an edited document: truncated, extended, a figure changed, or
    // another signer.
    let cut = doc.rfind("\n\nBest").unwrap();
    let truncated = german.replace(&doc, &doc[..cut * 6 / 10]);
    let extended = german.replace(
        &doc,
        &format!("{doc}\n\nThe old mailbox closes on 31 March and will no longer be read."),
    );
    let changed = german.replace(&doc, &doc.replace("140 euros", "160 euros"));
    let signer = format!("{}\n\nBest regards,\nMarta Sousa", &doc[..cut]);
    for (what, d) in [
        ("truncated", truncated),
        ("extended", extended),
        ("number", changed),
        ("signer", signer),
    ] {
        let (_, c, _) = send(&g, k, &wrapped(&d), &[]).await;
        assert_eq!(c, "miss", "{what}");
    }
    // Another caller never finds it, wrapped or not.
    let (_, c, _) = send(&g, "sk-bob", &wrapped(&german), &[]).await;
    assert_eq!(c, "miss");
    // The document's identity is stored with the entry: it still matches after a restart.
    settle(&g).await;
    g.shutdown().await;
    let g = gateway(&dir).await;
    let outlook = format!(
        "-----Ursprüngliche Nachricht-----\nVon: Ana Reis <ana@firma.example>\nBetreff: Reiserichtlinie\n\n{doc}"
    );
    let (_, c, _) = send(&g, k, &wrapped(&outlook), &[]).await;
    assert!(c.starts_with("hit"), "after restart: {c}");
}

/// Sends pairs of prompts whose instructions are close but below the route's threshold (gray
/// zone); returns what the cache said to each second prompt.
async fn gray_pairs(g: &Gateway, route: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        let review = format!("Order {i}: the blender arrived quickly and works great");
        let a = format!("What is the sentiment of \"{review}\"?");
        // ("What's the sentiment ..." reads as the same task frame: a hit, not a gray pair.)
        let b = format!("So what is the sentiment of \"{review}\"?");
        send(g, "sk-alice", &ask(route, &a), &[]).await;
        settle(g).await;
        let (status, c, v) = send(g, "sk-alice", &ask(route, &b), &[]).await;
        assert_eq!(status, 200, "{v}");
        settle(g).await;
        out.push(c);
    }
    out
}

#[tokio::test]
async fn gray_zone_hits_only_once_verified_agreement_bounds_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let cache = g.state.cache.as_ref().unwrap();
    // Answers that agree (a label): after enough verified agreement, the kind is served.
    let seen = gray_pairs(&g, "classify", 22).await;
    let first_hit = seen
        .iter()
        .position(|c| c.starts_with("hit"))
        .expect("learned");
    assert!(seen[..first_hit].iter().all(|c| c == "miss"), "{seen:?}");
    // Wilson's 95% bound on 0 errors in n is <= 0.2 from n = 16 on.
    assert!((16..=20).contains(&first_hit), "{first_hit}: {seen:?}");
    let (agreed, disagreed) = cache.learned("classify", Gray::Below, 0.5);
    assert_eq!(disagreed, 0);
    assert!(agreed >= 16);
    // Answers that differ (free text): verification says no, nothing is learned.
    let seen = gray_pairs(&g, "classify_free", 20).await;
    assert!(seen.iter().all(|c| c == "miss"), "{seen:?}");
    let (agreed, disagreed) = cache.learned("classify_free", Gray::Below, 0.5);
    assert_eq!(agreed, 0);
    assert_eq!(disagreed, 20);
}

#[tokio::test]
async fn simulated_answers_never_serve_once_a_real_key_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let routes = |key: &str| {
        format!(
            "[providers.sim]\nkind = \"openai\"\nbase_url = \"{{MOCK}}/v1\"\n{key}\n[providers.sim.models]\n\"gpt-4o-mini\" = {{}}\n[routes.chat]\ntiers.cheap = [\"sim/gpt-4o-mini\"]\n"
        )
    };
    let q = ask("chat", "What is the capital of Portugal?");
    let simulated = routes("simulate_without_key = true\napi_key_env = \"SLUICE_TEST_UNSET_KEY\"");
    let g = Gateway::start_cached(&simulated, dir.path()).await;
    assert!(g.state.config.providers.iter().any(|p| p.simulated));
    assert_eq!(g.chat(&q).await.1.get("x-sluice-cache").unwrap(), "miss");
    settle(&g).await;
    assert_eq!(
        g.chat(&q).await.1.get("x-sluice-cache").unwrap(),
        "hit-exact"
    );
    g.shutdown().await;
    // The same store, the provider now with a real key: the simulator's answer is not served.
    let real = Gateway::start_cached(&routes("api_key = \"sk-real\""), dir.path()).await;
    assert_eq!(real.chat(&q).await.1.get("x-sluice-cache").unwrap(), "miss");
    real.shutdown().await;
}

#[tokio::test]
async fn a_judge_verifies_long_answers_off_the_response_path_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let cache = g.state.cache.as_ref().unwrap();
    let seen = gray_pairs(&g, "judged", 3).await;
    assert!(seen.iter().all(|c| c == "miss"), "{seen:?}");
    // The judge runs in the background: wait for its three verdicts (a signal, not a sleep).
    let mut verdicts = (0, 0);
    for _ in 0..200 {
        settle(&g).await;
        verdicts = cache.learned("judged", Gray::Below, 0.5);
        if verdicts.0 + verdicts.1 >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(verdicts, (3, 0));
    let judged = g
        .audit_records()
        .await
        .into_iter()
        .filter(|r| r["route"] == "judge")
        .count();
    assert_eq!(judged, 3);
    assert_eq!(g.mock.count("m+answer-YES"), 3);
}
