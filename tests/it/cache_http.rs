//! The semantic cache through the gateway's HTTP API, with the real embedding model and real
//! redb files in a temp dir.

use serde_json::{json, Value};

use crate::support::{ask, header, Gateway, Sse};

const ROUTES: &str = r#"
[providers.oa.models]
"gpt-4o-mini" = {}
broken = { upstream_model = "x+status-500" }
cut = { upstream_model = "x+cut-after-3" }
[providers.an.models]
"claude-3-haiku" = {}
[routes.support]
tiers.cheap = ["oa/gpt-4o-mini"]
[routes.other]
tiers.cheap = ["oa/gpt-4o-mini"]
[routes.summarize]
tiers.cheap = ["an/claude-3-haiku"]
[routes.fragile]
tiers.only = ["oa/broken"]
[routes.fragile_stream]
tiers.only = ["oa/cut"]
"#;

async fn gateway(dir: &tempfile::TempDir) -> Gateway {
    Gateway::start_cached(ROUTES, dir.path()).await
}

/// POST and return (x-sluice-cache, answer text, body).
async fn cached(g: &Gateway, body: &Value) -> (String, String, Value) {
    let (status, h, v) = g.chat(body).await;
    assert_eq!(status, 200, "{v}");
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    (header(&h, "x-sluice-cache").to_owned(), text, v)
}

/// Let queued write-backs land before the next lookup.
async fn settle(g: &Gateway) {
    g.state.cache.as_ref().unwrap().flush().await.unwrap();
}

#[tokio::test]
async fn exact_repeat_and_paraphrase_hit_near_misses_miss() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let (c, first, v1) = cached(&g, &ask("support", "How do I reset my password?")).await;
    assert_eq!(c, "miss");
    settle(&g).await;
    let (c, again, v2) = cached(&g, &ask("support", "How do I reset my password?")).await;
    assert_eq!(c, "hit-exact");
    assert_eq!(again, first);
    assert_ne!(v1["id"], v2["id"], "a hit gets a fresh id");
    assert_eq!(v2["object"], "chat.completion");

    let (status, h, v) = g
        .chat(&ask("support", "What are the steps to reset my password?"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-sluice-cache"), "hit-semantic");
    assert_eq!(
        v["choices"][0]["message"]["content"].as_str().unwrap(),
        first
    );
    let sim: f32 = header(&h, "x-sluice-similarity").parse().unwrap();
    assert!(sim > 0.5 && sim < 1.0, "{sim}");

    let (_, base, _) = cached(
        &g,
        &ask(
            "support",
            "What is the refund limit for orders over 50 dollars?",
        ),
    )
    .await;
    settle(&g).await;
    for near in [
        "What is the refund limit for orders over 500 dollars?",
        "What is the refund limit for orders under 50 dollars?",
        "What is the refund limit for orders over 50 euros?",
    ] {
        let (c, text, _) = cached(&g, &ask("support", near)).await;
        assert_eq!(c, "miss", "{near}");
        assert_ne!(text, base);
    }
    cached(&g, &ask("support", "Can I cancel my subscription online?")).await;
    cached(&g, &ask("support", "How do I ship a parcel to Paris?")).await;
    settle(&g).await;
    for near in [
        "Can I not cancel my subscription online?",
        "How do I ship a parcel to Berlin?",
    ] {
        let (c, _, _) = cached(&g, &ask("support", near)).await;
        assert_eq!(c, "miss", "{near}");
    }
}

#[tokio::test]
async fn everything_that_changes_the_answer_is_in_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let base = json!({"model": "support", "temperature": 0.2,
        "messages": [{"role": "system", "content": "You are a helpful agent."},
                     {"role": "user", "content": "Summarize our return policy."}]});
    assert_eq!(cached(&g, &base).await.0, "miss");
    settle(&g).await;
    assert_eq!(cached(&g, &base).await.0, "hit-exact");

    let mut sys = base.clone();
    sys["messages"][0]["content"] = json!("You are a pirate.");
    let mut temp = base.clone();
    temp["temperature"] = json!(0.9);
    let mut no_temp = base.clone();
    no_temp.as_object_mut().unwrap().remove("temperature");
    let mut tools = base.clone();
    tools["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    let mut route = base.clone();
    route["model"] = json!("other");
    let mut max = base.clone();
    max["max_tokens"] = json!(500);
    for (name, req) in [
        ("system", sys),
        ("temperature", temp),
        ("omitted temperature", no_temp),
        ("tools", tools),
        ("route", route),
        ("max_tokens", max),
    ] {
        assert_eq!(cached(&g, &req).await.0, "miss", "{name}");
    }
}

const ARTICLE_A: &str = "The city council of Riverton voted 7 to 2 on Tuesday to approve a $48 million \
plan to rebuild the Harbor Street bridge, which has been closed to trucks since March after \
inspectors found corrosion in its steel supports. Mayor Elena Ortiz said construction would begin \
in the spring and take about 30 months. During that time a temporary ferry will carry commuters \
across the Lune River every 15 minutes. Business owners on the east bank welcomed the vote but \
warned that two more years of detours would hurt sales. The state transportation department will \
cover 60 percent of the cost; the rest comes from a bond approved by voters in 2022. Council member \
James Whitaker, who voted against the plan, argued that a cheaper repair would have kept the bridge \
open sooner. Engineers rejected that option last year, saying a repair would last only a decade.";

const ARTICLE_B: &str = "Shares of Northwind Foods fell 12 percent on Friday after the company cut its \
annual profit forecast, blaming higher prices for cocoa and sugar and weaker demand for its snack \
bars in Europe. Chief executive Priya Raman told analysts that the company would close two factories \
in Belgium and move production to a plant in Poland, affecting about 900 workers. Northwind now \
expects earnings of $2.10 per share for the year, down from an earlier estimate of $2.65. The company \
also said it would pause its share buyback program until costs stabilize. Analysts at Marlow Capital \
said the forecast cut was larger than expected and lowered their price target for the stock.";

fn summarize(prefix: &str, article: &str) -> Value {
    ask("summarize", &format!("{prefix}\n\n{article}"))
}

#[tokio::test]
async fn summaries_hit_only_for_the_same_document() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let (c, original, _) = cached(&g, &summarize("Summarize this article:", ARTICLE_A)).await;
    assert_eq!(c, "miss");
    settle(&g).await;

    let reflowed = ARTICLE_A
        .replace(". ", ".\n\n  ")
        .replace(" the ", "  the ");
    let boilerplate = format!("{ARTICLE_A}\n\nSent from my iPhone");
    for (name, req) in [
        ("exact", summarize("Summarize this article:", ARTICLE_A)),
        (
            "whitespace",
            summarize("Summarize this article:", &reflowed),
        ),
        (
            "boilerplate",
            summarize("Summarize this article:", &boilerplate),
        ),
        (
            "equivalent instruction",
            summarize("Please summarize the following article:", ARTICLE_A),
        ),
    ] {
        let (c, text, _) = cached(&g, &req).await;
        assert!(c.starts_with("hit"), "{name}: {c}");
        assert_eq!(text, original, "{name}");
    }

    let one_number = ARTICLE_A.replace("$48 million", "$84 million");
    let one_name = ARTICLE_A.replace("Elena Ortiz", "Elena Ortega");
    let truncated = &ARTICLE_A[..ARTICLE_A.len() / 2];
    for (name, req) in [
        (
            "different article",
            summarize("Summarize this article:", ARTICLE_B),
        ),
        (
            "one number changed",
            summarize("Summarize this article:", &one_number),
        ),
        (
            "one name changed",
            summarize("Summarize this article:", &one_name),
        ),
        ("truncated", summarize("Summarize this article:", truncated)),
        (
            "different task",
            summarize("Translate this article into French:", ARTICLE_A),
        ),
    ] {
        let (c, text, _) = cached(&g, &req).await;
        assert_eq!(c, "miss", "{name}");
        assert_ne!(text, original, "{name}");
    }
}

#[tokio::test]
async fn streamed_miss_then_streamed_hit_replays_valid_sse() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let mut req = ask("support", "Explain how to export my invoices");
    req["stream"] = json!(true);
    req["stream_options"] = json!({"include_usage": true});
    let r = g.post(&req).await;
    assert_eq!(header(r.headers(), "x-sluice-cache"), "miss");
    let miss = Sse::read(r).await;
    assert!(miss.done());
    settle(&g).await;

    let r = g.post(&req).await;
    assert_eq!(header(r.headers(), "x-sluice-cache"), "hit-exact");
    assert_eq!(header(r.headers(), "content-type"), "text/event-stream");
    let hit = Sse::read(r).await;
    assert!(hit.done());
    assert_eq!(hit.content(), miss.content());
    let chunks = hit.json();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop"));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], miss.json().last().unwrap()["usage"]);
    let ids: std::collections::HashSet<&str> =
        chunks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "one id for the replayed stream");

    // A non-streaming request for the same prompt hits the entry the stream stored.
    let mut plain = req.clone();
    plain.as_object_mut().unwrap().remove("stream");
    let (c, text, _) = cached(&g, &plain).await;
    assert_eq!(c, "hit-exact");
    assert_eq!(text, miss.content());
}

#[tokio::test]
async fn entries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let (_, first, _) = cached(&g, &ask("support", "Where can I download my tax forms?")).await;
    g.shutdown().await; // drains: queued writes are committed
    let g = gateway(&dir).await;
    let (c, text, _) = cached(&g, &ask("support", "Where can I download my tax forms?")).await;
    assert_eq!(c, "hit-exact");
    assert_eq!(text, first);
}

#[tokio::test]
async fn per_request_controls() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let send = |value: &'static str, text: &'static str| {
        g.http
            .post(g.url("/v1/chat/completions"))
            .header("x-sluice-cache", value)
            .json(&ask("support", text))
            .send()
    };
    let r = send("only-if-cached", "Is there a student discount?")
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "cache_miss");

    let r = send("bypass", "Is there a student discount?")
        .await
        .unwrap();
    assert_eq!(header(r.headers(), "x-sluice-cache"), "bypass");
    settle(&g).await;
    let r = send("only-if-cached", "Is there a student discount?")
        .await
        .unwrap();
    assert_eq!(r.status(), 504, "bypass stores nothing");

    cached(&g, &ask("support", "Is there a student discount?")).await;
    settle(&g).await;
    let r = send("only-if-cached", "Is there a student discount?")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "x-sluice-cache"), "hit-exact");
    let r = send("bypass", "Is there a student discount?")
        .await
        .unwrap();
    assert_eq!(header(r.headers(), "x-sluice-cache"), "bypass");

    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .header("cache-control", "no-store")
        .json(&ask("support", "Do you ship to Canada?"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(r.headers(), "x-sluice-cache"), "miss");
    settle(&g).await;
    assert_eq!(
        send("only-if-cached", "Do you ship to Canada?")
            .await
            .unwrap()
            .status(),
        504
    );

    let r = send("sometimes", "x").await.unwrap();
    assert_eq!(r.status(), 400);

    let stats: Value = g.get_json("/admin/cache/stats").await;
    assert_eq!(stats["entries"], 1);
    let del: Value = g
        .http
        .delete(g.url("/admin/cache?route=support"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(del["deleted"], 1);
    assert_eq!(
        send("only-if-cached", "Is there a student discount?")
            .await
            .unwrap()
            .status(),
        504
    );
}

#[tokio::test]
async fn errors_and_cut_streams_are_never_cached() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(&dir).await;
    let (status, _, _) = g.chat(&ask("fragile", "Will this fail?")).await;
    assert_eq!(status, 502);
    let mut req = ask("fragile_stream", "Tell me a story about a cut");
    req["stream"] = json!(true);
    let sse = Sse::read(g.post(&req).await).await;
    assert!(!sse.done());
    settle(&g).await;
    for (route, text) in [
        ("fragile", "Will this fail?"),
        ("fragile_stream", "Tell me a story about a cut"),
    ] {
        let r = g
            .http
            .post(g.url("/v1/chat/completions"))
            .header("x-sluice-cache", "only-if-cached")
            .json(&ask(route, text))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 504, "{route}");
    }
    let stats: Value = g.get_json("/admin/cache/stats").await;
    assert_eq!(stats["entries"], 0);
}
