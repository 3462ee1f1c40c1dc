//! Usage details and exact cost over real HTTP: the mock reports cache reads, cache writes and
//! reasoning (both provider kinds, streaming and not); the client receives them as the upstream
//! sent them (an Anthropic answer in OpenAI's shape), the audit record's cost is the formula's,
//! a cache hit replays them; and a price map in LiteLLM's format changes the prices in effect
//! and what the report says.

use std::path::Path;

use serde_json::{json, Value};
use sluice::cli::{
    ExportArgs, ExportFormat, Place, PricesFormat, PricesImportArgs, PricesListArgs, ReportArgs,
    ReportFormat, Selection,
};
use sluice::commands::prices;
use sluice::commands::report::{run_export, run_report};

use crate::support::{header, Gateway, Sse};

/// USD per 1M tokens of both detailed targets: every part of the formula has its own price.
const INPUT: f64 = 2.0;
const CACHED: f64 = 0.5;
const WRITE: f64 = 2.5;
const WRITE_1H: f64 = 4.0;
const OUTPUT: f64 = 8.0;

/// Cache reads 40, 5-minute writes 16, 1-hour writes 8 (Anthropic only: OpenAI-compatible
/// servers do not split them), reasoning 8; unknown fields at every level.
const ROUTES: &str = r#"
[providers.oa.models]
detailed = { upstream_model = "gpt-4o+cached-40+cache-write-16+reasoning-8+extra-fields", input_per_mtok = 2.0, cached_input_per_mtok = 0.5, cache_write_per_mtok = 2.5, cache_write_1h_per_mtok = 4.0, output_per_mtok = 8.0 }
[providers.an.models]
detailed = { upstream_model = "claude-x+cached-40+cache-write-16+cache-write-1h-8+reasoning-8+extra-fields", input_per_mtok = 2.0, cached_input_per_mtok = 0.5, cache_write_per_mtok = 2.5, cache_write_1h_per_mtok = 4.0, output_per_mtok = 8.0 }
[routes.via_openai]
reference_model = "oa/detailed"
tiers.main = ["oa/detailed"]
[routes.via_anthropic]
reference_model = "an/detailed"
tiers.main = ["an/detailed"]
"#;

/// A prompt long enough (about 100 tokens by the mock's estimate) to hold the cached parts.
fn prompt(topic: &str) -> String {
    format!(
        "Summarize the following note about {topic} in one sentence. {}",
        "The quarterly figures were reviewed by the team and found consistent with the plan. "
            .repeat(4)
    )
}

fn request(route: &str, text: &str, stream: bool) -> Value {
    let mut body = json!({"model": route, "messages": [{"role": "user", "content": text}]});
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// What the client got: cache header, request id, usage, and the answer's JSON (a stream's
/// chunks).
struct Got {
    cache: String,
    id: String,
    usage: Value,
    chunks: Vec<Value>,
    body: Value,
}

async fn send(g: &Gateway, body: &Value) -> Got {
    let r = g.post(body).await;
    assert_eq!(r.status(), 200);
    let cache = header(r.headers(), "x-sluice-cache").to_owned();
    let id = header(r.headers(), "x-request-id").to_owned();
    let got = if body["stream"] == json!(true) {
        let sse = Sse::read(r).await;
        assert!(sse.done(), "{:?}", sse.data);
        let chunks = sse.json();
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]), "the usage chunk comes last");
        Got {
            cache,
            id,
            usage: last["usage"].clone(),
            body: Value::Null,
            chunks,
        }
    } else {
        let body: Value = r.json().await.unwrap();
        Got {
            cache,
            id,
            usage: body["usage"].clone(),
            chunks: Vec::new(),
            body,
        }
    };
    g.state.cache.as_ref().unwrap().flush().await.unwrap();
    got
}

/// The mock's own answer to the same messages (what the upstream sends the gateway).
async fn direct(g: &Gateway, path: &str, body: &Value) -> Value {
    g.http
        .post(format!("{}{path}", g.mock.base_url()))
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn selection(dir: &Path) -> Selection {
    Selection {
        data_dir: Some(dir.to_owned()),
        config: None,
        since: None,
        until: None,
        last: None,
    }
}

fn records(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    run_export(
        &ExportArgs {
            selection: selection(dir),
            format: ExportFormat::Jsonl,
        },
        &mut out,
    )
    .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn report(dir: &Path) -> Value {
    let args = ReportArgs {
        selection: selection(dir),
        format: ReportFormat::Json,
    };
    serde_json::from_str(&run_report(&args).unwrap()).unwrap()
}

fn record<'a>(recs: &'a [Value], id: &str) -> &'a Value {
    recs.iter()
        .find(|r| r["request_id"] == id)
        .unwrap_or_else(|| panic!("no record {id}"))
}

fn n(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12
}

/// The issue's formula, from the counts the client saw.
fn formula(prompt: f64, read: f64, write_5m: f64, write_1h: f64, completion: f64) -> f64 {
    let uncached = prompt - read - write_5m - write_1h;
    (uncached * INPUT
        + read * CACHED
        + write_5m * WRITE
        + write_1h * WRITE_1H
        + completion * OUTPUT)
        / 1e6
}

/// The audit record of a miss: its details, its cost (and each part) by the formula, nothing
/// avoided against itself as reference; returns the cost.
fn check_miss_record(rec: &Value, read: u64, write: u64, write_1h: u64, usage: &Value) -> f64 {
    let (prompt, completion) = (n(&usage["prompt_tokens"]), n(&usage["completion_tokens"]));
    assert_eq!(rec["cache"], "miss", "{rec}");
    assert_eq!(rec["usage_estimated"], false);
    assert_eq!(n(&rec["input_tokens"]), prompt);
    assert_eq!(n(&rec["output_tokens"]), completion);
    assert_eq!(rec["cache_read_tokens"], read, "{rec}");
    assert_eq!(rec["cache_write_tokens"], write + write_1h, "{rec}");
    assert_eq!(rec["cache_write_1h_tokens"], write_1h, "{rec}");
    let (read, write, write_1h) = (read as f64, write as f64, write_1h as f64);
    let want = formula(prompt, read, write, write_1h, completion);
    let cost = n(&rec["cost_usd"]);
    assert!(close(cost, want), "cost {cost} != formula {want}: {rec}");
    let parts = &rec["cost_parts"];
    assert!(close(
        n(&parts["input_usd"]),
        (prompt - read - write - write_1h) * INPUT / 1e6
    ));
    assert!(close(n(&parts["cache_read_usd"]), read * CACHED / 1e6));
    assert!(close(
        n(&parts["cache_write_usd"]),
        (write * WRITE + write_1h * WRITE_1H) / 1e6
    ));
    assert!(close(n(&parts["output_usd"]), completion * OUTPUT / 1e6));
    let saved = read * (INPUT - CACHED) / 1e6
        - (write * (WRITE - INPUT) + write_1h * (WRITE_1H - INPUT)) / 1e6;
    assert!(close(n(&parts["provider_cache_saved_usd"]), saved));
    assert!(close(n(&rec["cost_avoided_usd"]), 0.0), "{rec}");
    cost
}

/// A hit: free, and it avoided what the original answer cost (the route's reference is the
/// target itself).
fn check_hit_record(rec: &Value, miss_cost: f64) {
    assert_eq!(rec["cache"], "hit-exact", "{rec}");
    assert_eq!(n(&rec["cost_usd"]), 0.0);
    assert!(close(n(&rec["cost_avoided_usd"]), miss_cost), "{rec}");
}

#[tokio::test]
async fn openai_usage_details_are_relayed_priced_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start_cached(ROUTES, dir.path()).await;
    let upstream = "gpt-4o+cached-40+cache-write-16+reasoning-8+extra-fields";

    // Not streamed: the whole answer as the upstream sent it, unknown fields included.
    let text = prompt("invoices");
    let miss = send(&g, &request("via_openai", &text, false)).await;
    assert_eq!(miss.cache, "miss");
    let up = direct(&g, "/v1/chat/completions", &request(upstream, &text, false)).await;
    assert_eq!(miss.usage, up["usage"], "usage relayed unchanged");
    assert_eq!(miss.usage["prompt_tokens_details"]["cached_tokens"], 40);
    assert_eq!(
        miss.usage["prompt_tokens_details"]["cache_write_tokens"],
        16
    );
    assert_eq!(
        miss.usage["completion_tokens_details"]["reasoning_tokens"],
        8
    );
    assert_eq!(miss.usage["x_mock"], "usage");
    assert_eq!(miss.body["x_mock"], "response");
    assert_eq!(miss.body["system_fingerprint"], up["system_fingerprint"]);
    assert_eq!(miss.body["choices"][0]["x_mock"], "choice");
    // A hit replays them as stored.
    let hit = send(&g, &request("via_openai", &text, false)).await;
    assert_eq!(hit.cache, "hit-exact");
    assert_eq!(hit.usage, miss.usage);
    assert_eq!(hit.body["x_mock"], "response");
    assert_eq!(hit.body["choices"][0]["x_mock"], "choice");

    // Streamed: the usage chunk and the chunks' unknown fields, then the same from cache.
    let text = prompt("travel expenses");
    let smiss = send(&g, &request("via_openai", &text, true)).await;
    assert_eq!(smiss.cache, "miss");
    let up = direct(&g, "/v1/chat/completions", &request(upstream, &text, false)).await;
    assert_eq!(smiss.usage, up["usage"], "stream usage relayed unchanged");
    assert!(smiss.chunks.iter().all(|c| c["x_mock"] == "response"));
    assert!(smiss
        .chunks
        .iter()
        .any(|c| c["choices"][0]["x_mock"] == "choice"));
    let shit = send(&g, &request("via_openai", &text, true)).await;
    assert_eq!(shit.cache, "hit-exact");
    assert_eq!(shit.usage, smiss.usage);
    assert!(shit.chunks.iter().all(|c| c["x_mock"] == "response"));
    assert!(shit
        .chunks
        .iter()
        .any(|c| c["choices"][0]["x_mock"] == "choice"));
    // The stream's answer, assembled for the cache, also serves a plain request whole.
    let whole = send(&g, &request("via_openai", &text, false)).await;
    assert_eq!(whole.cache, "hit-exact");
    assert_eq!(whole.usage, smiss.usage);
    assert_eq!(whole.body["system_fingerprint"], up["system_fingerprint"]);

    g.state.audit.flush().await.unwrap();
    let recs = records(dir.path());
    let cost = check_miss_record(record(&recs, &miss.id), 40, 16, 0, &miss.usage);
    check_hit_record(record(&recs, &hit.id), cost);
    let scost = check_miss_record(record(&recs, &smiss.id), 40, 16, 0, &smiss.usage);
    check_hit_record(record(&recs, &shit.id), scost);
    assert_eq!(record(&recs, &smiss.id)["reasoning_tokens"], 8);

    // Prometheus counts the provider's cache reads and writes of the two misses only.
    let metrics = g
        .http
        .get(g.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (kind, want) in [("read", 80), ("write", 32)] {
        let line = format!(
            "sluice_provider_cache_tokens_total{{route=\"via_openai\",target=\"oa/detailed\",kind=\"{kind}\"}} {want}"
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn anthropic_usage_reaches_openai_clients_with_cached_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start_cached(ROUTES, dir.path()).await;
    let upstream = "claude-x+cached-40+cache-write-16+cache-write-1h-8+reasoning-8+extra-fields";
    for (stream, topic) in [(false, "the data center move"), (true, "the office move")] {
        let text = prompt(topic);
        let up = direct(
            &g,
            "/v1/messages",
            &json!({"model": upstream, "max_tokens": 4096,
                    "messages": [{"role": "user", "content": text}]}),
        )
        .await;
        let u = &up["usage"];
        assert_eq!(u["cache_read_input_tokens"], 40);
        assert_eq!(u["cache_creation_input_tokens"], 24);
        let (input, output) = (n(&u["input_tokens"]), n(&u["output_tokens"]));

        let miss = send(&g, &request("via_anthropic", &text, stream)).await;
        assert_eq!(miss.cache, "miss");
        let usage = &miss.usage;
        // OpenAI's shape: prompt tokens include the cache reads and writes.
        assert_eq!(n(&usage["prompt_tokens"]), input + 40.0 + 24.0, "{usage}");
        assert_eq!(n(&usage["completion_tokens"]), output);
        assert_eq!(
            n(&usage["total_tokens"]),
            n(&usage["prompt_tokens"]) + output
        );
        assert_eq!(
            usage["prompt_tokens_details"]["cached_tokens"], 40,
            "{usage}"
        );
        assert_eq!(usage["prompt_tokens_details"]["cache_creation_tokens"], 24);
        // Anthropic's own fields, for clients that read them (LiteLLM's names), untouched.
        assert_eq!(usage["cache_read_input_tokens"], 40);
        assert_eq!(usage["cache_creation_input_tokens"], 24);
        assert_eq!(usage["cache_creation"], u["cache_creation"]);
        assert_eq!(usage["service_tier"], "standard");
        assert_eq!(usage["x_mock"], "usage");

        let hit = send(&g, &request("via_anthropic", &text, stream)).await;
        assert_eq!(hit.cache, "hit-exact");
        assert_eq!(&hit.usage, usage, "replayed from cache as stored");

        g.state.audit.flush().await.unwrap();
        let recs = records(dir.path());
        let cost = check_miss_record(record(&recs, &miss.id), 40, 16, 8, usage);
        check_hit_record(record(&recs, &hit.id), cost);
    }
}

/// A small map in LiteLLM's format, written here.
const MAP: &str = r#"{
  "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
                  "litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
  "gpt-4o-mini": {"input_cost_per_token": 1e-06, "output_cost_per_token": 4e-06,
                  "cache_read_input_token_cost": 2.5e-07, "litellm_provider": "openai",
                  "mode": "chat", "max_input_tokens": 128000, "supports_vision": true},
  "dall-e-3": {"output_cost_per_image": 0.04, "litellm_provider": "openai",
               "mode": "image_generation"}
}"#;

/// Built-in gpt-4o-mini: input 0.15, cached 0.075, output 0.60 per 1M tokens.
const BUILT_IN: (f64, f64, f64) = (0.15, 0.075, 0.60);
const FROM_MAP: (f64, f64, f64) = (1.0, 0.25, 4.0);

fn cost_at(price: (f64, f64, f64), usage: &Value) -> f64 {
    let (prompt, completion) = (n(&usage["prompt_tokens"]), n(&usage["completion_tokens"]));
    let read = n(&usage["prompt_tokens_details"]["cached_tokens"]);
    ((prompt - read) * price.0 + read * price.1 + completion * price.2) / 1e6
}

/// Asks `route` once; the request id and the usage the client got.
async fn ask_once(g: &Gateway, route: &str, say: &str) -> (String, Value) {
    let (status, h, v) = g
        .chat(&json!({"model": route, "messages": [{"role": "user", "content": say}]}))
        .await;
    assert_eq!(status, 200, "{v}");
    (header(&h, "x-request-id").to_owned(), v["usage"].clone())
}

#[tokio::test]
async fn an_imported_price_map_changes_prices_and_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // No prices in the config: the built-in table, then the map, price the targets.
    let gateway_config = format!(
        r#"
[server]
data_dir = "{}"
[cache]
enabled = false
[providers.oa]
kind = "openai"
base_url = "{{MOCK}}/v1"
models."gpt-4o-mini" = {{ upstream_model = "gpt-4o-mini+cached-30" }}
models."my-finetune" = {{}}
[routes.summarize]
tiers.main = ["oa/gpt-4o-mini"]
[routes.custom]
tiers.main = ["oa/my-finetune"]
"#,
        data.display()
    );
    let config = dir.path().join("gw.toml");
    std::fs::write(
        &config,
        gateway_config.replace("{MOCK}", "http://127.0.0.1:9"),
    )
    .unwrap();
    let place = Place {
        config: Some(config.clone()),
        data_dir: None,
    };
    let list = |model: &str| {
        let out = prices::list(&PricesListArgs {
            model: Some(model.to_owned()),
            place: place.clone(),
            format: PricesFormat::Json,
        })
        .unwrap();
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let price_of = |v: &Value| {
        let t = &v["targets"][0];
        let p = &t["price"];
        (
            (
                n(&p["input_per_mtok"]),
                n(&p["cached_input_per_mtok"]),
                n(&p["output_per_mtok"]),
            ),
            t["source"].as_str().unwrap().to_owned(),
        )
    };
    let before = list("gpt-4o-mini");
    assert_eq!(price_of(&before), (BUILT_IN, "built-in".to_owned()));
    assert!(before["price_map"].is_null());
    let unpriced = list("my-finetune");
    assert_eq!(unpriced["targets"][0]["source"], "unknown");
    assert!(unpriced["targets"][0]["price"].is_null());

    // Traffic priced by the built-in table; the unpriced target's cost stays unknown.
    let g = Gateway::start_raw(&gateway_config).await;
    let (old_id, old_usage) = ask_once(&g, "summarize", &prompt("the third quarter")).await;
    let (unknown_id, _) = ask_once(&g, "custom", "Hello").await;
    g.state.audit.flush().await.unwrap();
    g.shutdown().await;
    let old_cost = cost_at(BUILT_IN, &old_usage);
    let recs = records(&data);
    assert!(close(n(&record(&recs, &old_id)["cost_usd"]), old_cost));
    assert!(
        record(&recs, &unknown_id)["cost_usd"].is_null(),
        "unknown, not 0"
    );
    let first = report(&data);
    assert!(close(n(&first["total"]["spend_usd"]), old_cost));
    assert_eq!(first["total"]["unknown_cost_requests"], 1);
    assert!(first.get("price_map").is_none());

    // Import the map: it says what it kept and when; the list shows its prices and origin.
    let map_file = dir.path().join("model_prices_and_context_window.json");
    std::fs::write(&map_file, MAP).unwrap();
    let said = prices::import(&PricesImportArgs {
        file: map_file.clone(),
        place: place.clone(),
    })
    .unwrap();
    assert!(said.starts_with("imported 1 models from "), "{said}");
    assert!(said.contains("skipped 1 entries"), "{said}");
    let after = list("gpt-4o-mini");
    assert_eq!(price_of(&after), (FROM_MAP, "map".to_owned()));
    assert_eq!(after["targets"][0]["origin"]["base"]["name"], "gpt-4o-mini");
    let origin = &after["price_map"];
    assert_eq!(origin["via"], "import");
    assert!(origin["source"]
        .as_str()
        .unwrap()
        .ends_with("model_prices_and_context_window.json"));
    let loaded = origin["loaded_at_ms"].as_u64().unwrap();
    assert!(loaded > 0 && loaded <= sluice::accounting::unix_ms_now());
    assert_eq!(list("my-finetune")["targets"][0]["source"], "unknown");

    // The next start prices with the map; the report adds up both periods and names the map.
    let g = Gateway::start_raw(&gateway_config).await;
    let models = g.get_json("/v1/models/gpt-4o-mini").await;
    assert_eq!(models["sluice"]["input_per_mtok"], 1.0);
    assert_eq!(models["sluice"]["price_source"], "map");
    let (new_id, new_usage) = ask_once(&g, "summarize", &prompt("the fourth quarter")).await;
    g.state.audit.flush().await.unwrap();
    g.shutdown().await;
    let new_cost = cost_at(FROM_MAP, &new_usage);
    let recs = records(&data);
    assert!(close(n(&record(&recs, &new_id)["cost_usd"]), new_cost));
    let second = report(&data);
    assert!(close(n(&second["total"]["spend_usd"]), old_cost + new_cost));
    assert!(n(&second["total"]["spend_usd"]) > n(&first["total"]["spend_usd"]) * 2.0);
    assert_eq!(second["price_map"]["loaded_at_ms"], loaded);
    assert_eq!(
        second["total"]["cache_read_tokens"], 60,
        "30 cached tokens per call"
    );
    let saved = 30.0 * (BUILT_IN.0 - BUILT_IN.1) / 1e6 + 30.0 * (FROM_MAP.0 - FROM_MAP.1) / 1e6;
    assert!(close(
        n(&second["total"]["provider_cache_saved_usd"]),
        saved
    ));
    let table = run_report(&ReportArgs {
        selection: selection(&data),
        format: ReportFormat::Table,
    })
    .unwrap();
    assert!(table.contains("Prices now in effect: price map"), "{table}");
}

#[tokio::test]
async fn a_configured_price_map_is_read_at_startup_and_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("prices.json");
    let config = format!(
        "[server]\ndata_dir = \"{}\"\n[accounting]\nprice_map = \"{}\"\n\
         [providers.oa.models]\n\"gpt-4o-mini\" = {{}}\n[routes.r]\ntiers.t = [\"oa/gpt-4o-mini\"]\n",
        dir.path().join("data").display(),
        map.display()
    );
    let text = format!("{}\n{config}", crate::support::BASE_CONFIG)
        .replace("{MOCK}", "http://127.0.0.1:9");
    let cfg = sluice::config::Config::parse(&text, "test").unwrap();
    let Err(e) = sluice::state::AppState::new(cfg).await else {
        panic!("started without its price map")
    };
    assert!(e.contains("prices.json"), "{e}");

    std::fs::write(&map, MAP).unwrap();
    let g = Gateway::start(&config).await;
    let m = g.get_json("/v1/models/gpt-4o-mini").await;
    assert_eq!(m["sluice"]["output_per_mtok"], 4.0);
    assert_eq!(m["sluice"]["price_source"], "map");
    assert_eq!(g.state.accountant.price_map().unwrap().via, "config");
}
