//! Intelligent routing over HTTP, with the real embedding model: `auto` picks the use case from
//! the prompt (default config, its reference examples), falls back below the confidence
//! threshold, and says so in the headers and the audit; feedback (`POST /v1/feedback`, the
//! `x-sluice-feedback` header) is stored with the record, shown by `sluice report`, and moves a
//! seeded learned policy to another tier; rules still override.

use std::path::Path;

use serde_json::{json, Value};
use sluice::cli::{ReportArgs, ReportFormat, Selection};
use sluice::commands::report::run_report;

use crate::support::{ask, header, Gateway, BASE_CONFIG};

/// The shipped default config, its providers simulated by the mock whatever the environment
/// holds (no key variable that could be set).
fn default_config() -> String {
    sluice::config::DEFAULT_CONFIG
        .replace("\"OPENAI_API_KEY\"", "\"SLUICE_TEST_NO_OPENAI_KEY\"")
        .replace("\"ANTHROPIC_API_KEY\"", "\"SLUICE_TEST_NO_ANTHROPIC_KEY\"")
}

/// Two routes with a few examples each; `support` is learned (seeded, no exploration) and has
/// a rule that forces its premium tier. The deadline counts the prompt's embedding, which waits
/// behind the other tests' on the shared model: a generous one, as the default config has.
fn small_config(min_confidence: f64) -> String {
    format!(
        r#"{BASE_CONFIG}
[providers.oa.models]
"gpt-4o-mini" = {{ input_per_mtok = 0.15, output_per_mtok = 0.60 }}
"gpt-4o" = {{ input_per_mtok = 2.5, output_per_mtok = 10.0 }}

[routing]
auto_model = "auto"
default_route = "support"
min_confidence = {min_confidence}

[routes.support]
strategy = "learned"
default_tier = "cheap"
tiers.cheap = ["oa/gpt-4o-mini"]
tiers.premium = ["oa/gpt-4o"]
rules = [{{ keywords = ["escalate"], tier = "premium" }}]
policy = {{ total_timeout_ms = 300000 }}
learned = {{ seed = 11, explore_share = 0.0, min_quality = 0.8 }}
examples = [
  "How do I reset my password?",
  "My invoice shows a charge I do not recognise.",
  "The app crashes when I upload a photo, what can I do?",
  "Can I change the delivery address of my order?",
]

[routes.translate]
tiers.cheap = ["oa/gpt-4o-mini"]
policy = {{ total_timeout_ms = 300000 }}
examples = [
  "Translate into French: the meeting is moved to Tuesday.",
  "Translate this sentence to German: where is the station?",
  "How do you say 'thank you very much' in Japanese?",
  "Traduis en anglais : je voudrais un café.",
]
"#
    )
}

/// POST and return (headers, body), asserting success.
async fn ok(g: &Gateway, body: &Value) -> reqwest::header::HeaderMap {
    let (status, h, v) = g.chat(body).await;
    assert_eq!(status, 200, "{v}");
    h
}

fn record_of<'a>(records: &'a [Value], id: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["request_id"] == id)
        .unwrap_or_else(|| panic!("no audit record for {id}"))
}

#[tokio::test]
async fn auto_picks_the_use_case_of_clear_prompts_and_records_the_decision() {
    let g = Gateway::start_embedded(&default_config()).await;
    let cases = [
        (
            "simple_classification",
            "Is this review positive or negative? \"The food arrived cold and the waiter ignored us.\"",
        ),
        (
            "summarize",
            "Summarize this email in two sentences:\n\nHi team, the quarterly planning meeting \
             moves from Monday to Thursday at 10:00 because the finance review overran. Please \
             bring your updated roadmaps and headcount requests. The offsite in June is \
             confirmed; travel bookings open next week and must be made through the portal. \
             Thanks, Dana",
        ),
        (
            "complex",
            "Prove that there are infinitely many prime numbers, and then explain step by step \
             how the proof would change for primes of the form 4k+3.",
        ),
        (
            "chat",
            "Hi! Can you suggest a few fun names for my new golden retriever puppy?",
        ),
    ];
    let mut ids = Vec::new();
    for (want, prompt) in cases {
        let h = ok(&g, &ask("auto", prompt)).await;
        assert_eq!(header(&h, "x-sluice-route"), want, "{prompt}");
        assert_eq!(header(&h, "x-sluice-route-by"), "auto", "{prompt}");
        let c: f64 = header(&h, "x-sluice-route-confidence").parse().unwrap();
        assert!((0.5..=1.0).contains(&c), "confidence {c} for {prompt}");
        assert!(!header(&h, "x-sluice-tier").is_empty());
        ids.push((want, header(&h, "x-request-id").to_owned()));
    }
    let records = g.audit_records().await;
    for (want, id) in &ids {
        let r = record_of(&records, id);
        assert_eq!(r["route"], *want);
        assert_eq!(r["requested_model"], "auto");
        assert_eq!(r["route_by"], "auto");
        assert_eq!(r["auto_route"], "auto");
        assert!(r["route_confidence"].as_f64().unwrap() >= 0.5, "{r}");
        assert!(r["tier"].is_string(), "{r}");
    }
    g.shutdown().await;
}

#[tokio::test]
async fn below_the_confidence_threshold_auto_falls_back_to_the_default_route() {
    // Like neither route's examples.
    let g = Gateway::start_embedded(&small_config(0.99)).await;
    let h = ok(
        &g,
        &ask("auto", "Write a haiku about autumn leaves falling."),
    )
    .await;
    assert_eq!(header(&h, "x-sluice-route"), "support");
    assert_eq!(header(&h, "x-sluice-route-by"), "fallback");
    let c: f64 = header(&h, "x-sluice-route-confidence").parse().unwrap();
    assert!(c < 0.99, "{c}");
    let id = header(&h, "x-request-id").to_owned();
    let records = g.audit_records().await;
    let r = record_of(&records, &id);
    assert_eq!(r["route"], "support");
    assert_eq!(r["route_by"], "fallback");
    g.shutdown().await;

    // A clear prompt with an ordinary threshold: the classifier's own choice.
    let g = Gateway::start_embedded(&small_config(0.3)).await;
    let h = ok(
        &g,
        &ask("auto", "Translate into Spanish: good morning, friends."),
    )
    .await;
    assert_eq!(header(&h, "x-sluice-route"), "translate");
    assert_eq!(header(&h, "x-sluice-route-by"), "auto");
    g.shutdown().await;
}

fn report(dir: &Path) -> Value {
    let args = ReportArgs {
        selection: Selection {
            data_dir: Some(dir.to_owned()),
            config: None,
            since: None,
            until: None,
            last: None,
        },
        format: ReportFormat::Json,
    };
    serde_json::from_str(&run_report(&args).unwrap()).unwrap()
}

#[tokio::test]
async fn feedback_is_stored_and_moves_a_learned_policy_to_another_tier() {
    let g = Gateway::start_embedded(&small_config(0.3)).await;
    let prompt = "I was charged twice for my subscription this month, can you help?";
    let h = ok(&g, &ask("support", prompt)).await;
    assert_eq!(header(&h, "x-sluice-tier"), "cheap");
    assert_eq!(header(&h, "x-sluice-tier-by"), "learned");
    let first = header(&h, "x-request-id").to_owned();

    // The cheap tier's answer was useless.
    let r = g
        .http
        .post(g.url("/v1/feedback"))
        .json(&json!({"request_id": first, "score": 0.0, "label": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stored: Value = r.json().await.unwrap();
    assert_eq!(stored["route"], "support");
    assert_eq!(stored["tier"], "cheap");
    assert_eq!(stored["learned"], true, "{stored}");

    // The same kind of prompt now goes to the tier that has not failed.
    let h = ok(&g, &ask("support", prompt)).await;
    assert_eq!(header(&h, "x-sluice-tier"), "premium");
    assert_eq!(header(&h, "x-sluice-tier-by"), "learned");
    let second = header(&h, "x-request-id").to_owned();

    // A batch job rates the premium answer on its next request, by header.
    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .header(
            "x-sluice-feedback",
            format!("{second}=1;label=fine, req_unknown=1"),
        )
        .json(&ask("support", "Where can I download my invoices?"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "x-sluice-feedback-stored"), "1/2");

    let unknown = g
        .http
        .post(g.url("/v1/feedback"))
        .json(&json!({"request_id": "req_nope", "score": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let bad = g
        .http
        .post(g.url("/v1/feedback"))
        .json(&json!({"request_id": first, "score": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let records = g.audit_records().await;
    let r1 = record_of(&records, &first);
    assert_eq!(r1["feedback"]["score"], 0.0);
    assert_eq!(r1["feedback"]["label"], "wrong");
    assert_eq!(r1["tier"], "cheap");
    let r2 = record_of(&records, &second);
    assert_eq!(r2["feedback"]["score"], 1.0);
    assert_eq!(r2["tier"], "premium");

    // `sluice report`: quality per route, tier and target.
    let rep = report(&g.state.config.server.data_dir);
    let rows = rep["quality"].as_array().expect("quality rows");
    let row = |tier: &str| {
        rows.iter()
            .find(|r| r["route"] == "support" && r["tier"] == tier)
            .unwrap_or_else(|| panic!("no support/{tier} row in {rows:?}"))
    };
    assert_eq!(row("cheap")["target"], "oa/gpt-4o-mini");
    assert_eq!(row("cheap")["rated"], 1);
    assert_eq!(row("cheap")["mean_score"], 0.0);
    assert_eq!(row("premium")["target"], "oa/gpt-4o");
    assert_eq!(row("premium")["mean_score"], 1.0);
    g.shutdown().await;
}

#[tokio::test]
async fn rules_still_override_the_learned_policy_and_auto_routing() {
    let g = Gateway::start_embedded(&small_config(0.3)).await;
    let h = ok(
        &g,
        &ask(
            "support",
            "Please escalate: my password reset link never arrives.",
        ),
    )
    .await;
    assert_eq!(header(&h, "x-sluice-tier"), "premium");
    assert_eq!(header(&h, "x-sluice-tier-by"), "rule");
    // Chosen by auto, then the chosen route's rule picks the tier.
    let h = ok(
        &g,
        &ask(
            "auto",
            "Escalate this: I cannot log in since I reset my password.",
        ),
    )
    .await;
    assert_eq!(header(&h, "x-sluice-route"), "support");
    assert_eq!(header(&h, "x-sluice-tier"), "premium");
    assert_eq!(header(&h, "x-sluice-tier-by"), "rule");
    // x-sluice-route names the route whatever `model` says.
    let r = g
        .http
        .post(g.url("/v1/chat/completions"))
        .header("x-sluice-route", "translate")
        .json(&ask("auto", "How do I reset my password?"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "x-sluice-route"), "translate");
    assert_eq!(header(r.headers(), "x-sluice-route-by"), "header");
    g.shutdown().await;
}
