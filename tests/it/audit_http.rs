//! Every request recorded: a mixed run through the gateway, then the audit store, the report,
//! and /metrics checked against each other; and no record lost to a SIGTERM.

use std::path::Path;

use serde_json::{json, Value};
use sluice::cli::{ExportArgs, ExportFormat, ReportArgs, ReportFormat, Selection};
use sluice::commands::bench_cache::{evaluate, Mode};
use sluice::commands::report::{run_export, run_report};

use crate::support::{ask, header, Gateway, Sse};

const ROUTES: &str = r#"
[providers.oa.models]
"gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.60 }
"gpt-4-turbo" = { input_per_mtok = 10.0, output_per_mtok = 30.0 }
flaky = { upstream_model = "f+status-503", input_per_mtok = 1.0, output_per_mtok = 2.0 }
broken = { upstream_model = "b+status-400", input_per_mtok = 1.0, output_per_mtok = 2.0 }
cut = { upstream_model = "c+cut-after-3", input_per_mtok = 1.0, output_per_mtok = 2.0 }
[providers.an.models]
"claude-3-haiku" = { input_per_mtok = 0.25, output_per_mtok = 1.25 }
[routes.support]
reference_model = "oa/gpt-4-turbo"
tiers.cheap = ["oa/gpt-4o-mini"]
[routes.resilient]
reference_model = "oa/gpt-4-turbo"
tiers.main = ["oa/flaky", "an/claude-3-haiku"]
[routes.strict]
tiers.main = ["oa/broken"]
[routes.story]
tiers.main = ["oa/cut", "an/claude-3-haiku"]
policy = { stream_resume = "error" }
"#;

fn selection(dir: &Path) -> Selection {
    Selection {
        data_dir: Some(dir.to_owned()),
        config: None,
        since: None,
        until: None,
        last: None,
    }
}

fn export(dir: &Path) -> Vec<Value> {
    export_as(dir, ExportFormat::Jsonl)
}

fn export_as(dir: &Path, format: ExportFormat) -> Vec<Value> {
    let mut out = Vec::new();
    run_export(
        &ExportArgs {
            selection: selection(dir),
            format,
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

/// Sends `body`, reads the whole answer (a stream to its end), lets the cache commit; returns
/// the request id.
async fn send(g: &Gateway, body: &Value) -> String {
    let r = g.post(body).await;
    let id = header(r.headers(), "x-request-id").to_owned();
    if body["stream"] == json!(true) {
        assert!(Sse::read(r).await.done());
    } else {
        let _ = r.bytes().await;
    }
    g.state.cache.as_ref().unwrap().flush().await.unwrap();
    id
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[tokio::test]
async fn mixed_run_is_recorded_once_per_request_and_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start_cached(ROUTES, dir.path()).await;
    let mut ids = Vec::new();
    let mut go = async |body: Value| ids.push(send(&g, &body).await);
    go(ask("support", "How do I reset my password?")).await; // miss
    go(ask("support", "How do I reset my password?")).await; // exact hit
    go(ask("support", "What are the steps to reset my password?")).await; // semantic hit
    go(ask("resilient", "Is the service up?")).await; // failover to the backup
    go(ask("strict", "This will be refused")).await; // upstream 400
    let mut s = ask("support", "Explain my invoice");
    s["stream"] = json!(true);
    go(s).await; // streamed miss
    g.state.audit.flush().await.unwrap();

    let recs = export(dir.path());
    assert_eq!(recs.len(), 6, "{recs:#?}");
    let by_id = |id: &str| {
        recs.iter()
            .find(|r| r["request_id"] == id)
            .unwrap_or_else(|| panic!("no record {id}"))
    };
    let (miss, exact, semantic, failover, refused, streamed) = (
        by_id(&ids[0]),
        by_id(&ids[1]),
        by_id(&ids[2]),
        by_id(&ids[3]),
        by_id(&ids[4]),
        by_id(&ids[5]),
    );

    assert_eq!(miss["cache"], "miss");
    assert_eq!(miss["target"], "oa/gpt-4o-mini");
    assert_eq!(miss["route"], "support");
    assert_eq!(miss["requested_model"], "support");
    assert_eq!(miss["status"], 200);
    assert_eq!(miss["usage_estimated"], false);
    let (i, o) = (
        miss["input_tokens"].as_f64().unwrap(),
        miss["output_tokens"].as_f64().unwrap(),
    );
    assert!(i > 0.0 && o > 0.0);
    assert!(close(
        miss["cost_usd"].as_f64().unwrap(),
        (i * 0.15 + o * 0.60) / 1e6
    ));
    // A cheaper tier saves the difference to the reference model.
    let reference = (i * 10.0 + o * 30.0) / 1e6;
    assert!(close(
        miss["cost_avoided_usd"].as_f64().unwrap(),
        reference - (i * 0.15 + o * 0.60) / 1e6
    ));

    for hit in [exact, semantic] {
        assert!(hit["cache"].as_str().unwrap().starts_with("hit"), "{hit}");
        assert_eq!(hit["cost_usd"].as_f64().unwrap_or(0.0), 0.0);
        // Cost avoided: the reference model's price for the original answer's usage.
        assert_eq!(hit["input_tokens"], miss["input_tokens"]);
        assert!(
            close(hit["cost_avoided_usd"].as_f64().unwrap(), reference),
            "{hit}"
        );
    }
    assert_eq!(exact["cache"], "hit-exact");
    assert_eq!(semantic["cache"], "hit-semantic");
    assert!(semantic["similarity"].as_f64().unwrap() < 1.0);

    assert_eq!(failover["target"], "an/claude-3-haiku");
    let attempts = failover["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        4,
        "3 tries at the flaky target, then the backup"
    );
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts[3]["outcome"], "ok");

    assert_eq!(refused["status"], 400);
    assert_eq!(refused["error"], "upstream_rejected");
    assert!(refused["target"].is_null());

    assert_eq!(streamed["stream"], true);
    assert_eq!(streamed["status"], 200);
    assert_eq!(streamed["usage_estimated"], false);
    assert!(streamed["ttft_ms"].is_u64());
    assert!(streamed["output_tokens"].as_u64().unwrap() > 0);

    // The report's totals are the sums of the records.
    let report = report(dir.path());
    let total = &report["total"];
    let sum = |f: &str| {
        recs.iter()
            .map(|r| r[f].as_f64().unwrap_or(0.0))
            .sum::<f64>()
    };
    assert_eq!(total["requests"], 6);
    assert_eq!(total["input_tokens"].as_f64().unwrap(), sum("input_tokens"));
    assert_eq!(
        total["output_tokens"].as_f64().unwrap(),
        sum("output_tokens")
    );
    assert!(close(total["spend_usd"].as_f64().unwrap(), sum("cost_usd")));
    assert!(close(
        total["cost_avoided_usd"].as_f64().unwrap(),
        sum("cost_avoided_usd")
    ));
    let priced_tokens: f64 = recs
        .iter()
        .filter(|r| r["cost_usd"].is_number())
        .map(|r| r["input_tokens"].as_f64().unwrap() + r["output_tokens"].as_f64().unwrap())
        .sum();
    assert!(close(
        total["blended_usd_per_mtok"].as_f64().unwrap(),
        sum("cost_usd") / priced_tokens * 1e6
    ));

    // /metrics parses as Prometheus text and its counters match the records.
    let text = g
        .http
        .get(g.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut requests = 0.0;
    let mut tokens = 0.0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name_labels, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let name = name_labels.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        if name_labels.contains('{') {
            assert!(name_labels.ends_with('}'), "{line}");
        }
        match name {
            "sluice_requests_total" => requests += value,
            "sluice_tokens_total" => tokens += value,
            _ => {}
        }
    }
    assert_eq!(requests, 6.0, "{text}");
    assert_eq!(tokens, sum("input_tokens") + sum("output_tokens"));
}

#[tokio::test]
async fn sigterm_right_after_a_response_loses_no_record() {
    let mock = sluice::sim::spawn(crate::support::loopback_any_port(), Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gw.toml");
    std::fs::write(
        &cfg,
        format!(
            "[cache]\nenabled = false\n[providers.oa]\nkind = \"openai\"\nbase_url = \"{}/v1\"\nmodels.m = {{}}\n[routes.r]\ntiers.t = [\"oa/m\"]\n",
            mock.base_url()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path().join("data"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if http.get(format!("{base}/readyz")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(ready, "gateway did not start");
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&ask("r", "hello"))
        .send()
        .await
        .unwrap();
    let id = header(r.headers(), "x-request-id").to_owned();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    let recs = export(&dir.path().join("data"));
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["request_id"], id.as_str());
}

#[tokio::test]
async fn a_client_that_leaves_mid_request_is_still_recorded() {
    let g = Gateway::start(
        r#"
        [accounting]
        enabled = true
        [providers.oa.models]
        slow = { upstream_model = "s+latency-3000ms" }
        [routes.r]
        tiers.t = ["oa/slow"]
        "#,
    )
    .await;
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let r = impatient
        .post(g.url("/v1/chat/completions"))
        .header("x-request-id", "gone-early")
        .json(&ask("r", "hello"))
        .send()
        .await;
    assert!(r.is_err(), "the client gave up");
    // Wait for the gateway to notice the closed connection and record it.
    let data = g.state.config.server.data_dir.clone();
    let mut recs = Vec::new();
    for _ in 0..100 {
        g.state.audit.flush().await.unwrap();
        recs = export(&data);
        if !recs.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["request_id"], "gone-early");
    assert_eq!(recs[0]["status"], 499);
    assert_eq!(recs[0]["route"], "r");
}

/// With `[accounting] log_prompts`, the audit store exports as a workload that `sluice bench
/// cache` replays: one line per successful request, grouped by the answer served.
#[tokio::test]
async fn logged_prompts_export_as_a_replayable_workload() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("{ROUTES}\n[accounting]\nlog_prompts = true\n");
    let g = Gateway::start_cached(&config, dir.path()).await;
    let go = async |body: Value| {
        send(&g, &body).await;
    };
    go(ask("support", "How do I reset my password?")).await; // miss
    go(ask("support", "How do I reset my password?")).await; // exact hit
    go(ask("support", "What are the steps to reset my password?")).await; // semantic hit
    let mut streamed = ask("support", "Explain my invoice");
    streamed["stream"] = json!(true);
    go(streamed).await; // streamed miss
    go(ask("strict", "This will be refused")).await; // upstream 400: not in the workload
    go(json!({"model": "support", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is my parcel?"},
    ]}))
    .await;
    g.state.audit.flush().await.unwrap();

    let raw = export(dir.path());
    assert_eq!(raw.len(), 6);
    assert_eq!(raw[0]["prompt"]["prompt"], "How do I reset my password?");

    let lines = export_as(dir.path(), ExportFormat::Workload);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["miss", "hit-exact", "hit-semantic", "miss", "miss"],
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| l["route"] == "support"));
    assert_eq!(
        lines[2]["prompt"],
        "What are the steps to reset my password?"
    );
    // The hits served the first answer: same group. Other answers: other groups.
    let group = |i: usize| lines[i]["group"].as_str().unwrap().to_owned();
    assert!(group(0).starts_with("answer-"));
    assert_eq!(group(1), group(0));
    assert_eq!(group(2), group(0));
    assert_ne!(group(3), group(0));
    assert_ne!(group(4), group(3));
    assert_eq!(lines[4]["system"], "system: Be brief.");
    assert!(lines[0].get("system").is_none());

    // `sluice bench cache` takes it as it is.
    let path = dir.path().join("traffic.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    let report = evaluate(
        &path,
        &Mode::Threshold(0.80),
        Default::default(),
        &crate::support::embedder(),
    )
    .await
    .unwrap();
    assert_eq!(report.lines, 5);
    let run = &report.runs[0];
    assert_eq!(run.decisions[1].matched_index, Some(0));
    assert_eq!(run.overall.false_hits, 0);
}

#[tokio::test]
async fn a_stream_cut_after_output_is_recorded_as_failed_with_its_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start_cached(ROUTES, dir.path()).await;
    let mut body = ask("story", "Tell me a long story");
    body["stream"] = json!(true);
    let r = g.post(&body).await;
    let id = header(r.headers(), "x-request-id").to_owned();
    let sse = Sse::read(r).await;
    assert!(!sse.done() && sse.error().is_some());
    g.state.audit.flush().await.unwrap();

    let recs = export(dir.path());
    let rec = recs.iter().find(|r| r["request_id"] == id).unwrap();
    assert_eq!(rec["status"], 502, "{rec}");
    assert_eq!(rec["error"], "stream_interrupted", "{rec}");
    assert_eq!(rec["target"], "oa/cut");
    let attempts = rec["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{rec}");
    assert!(
        attempts[0]["outcome"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{rec}"
    );
}

#[tokio::test]
async fn requests_are_recorded_with_their_client_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[server.api_keys]\nsearch = \"sk-a\"\nbilling = \"sk-b\"\n{ROUTES}");
    let g = Gateway::start_cached(&config, dir.path()).await;
    let mut ids = Vec::new();
    for (key, text) in [("sk-a", "first"), ("sk-b", "second"), ("sk-b", "third")] {
        let r = g
            .http
            .post(g.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&ask("support", text))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        ids.push(header(r.headers(), "x-request-id").to_owned());
        let _ = r.bytes().await;
    }
    g.state.audit.flush().await.unwrap();
    let recs = export(dir.path());
    let caller = |id: &str| {
        let r = recs.iter().find(|r| r["request_id"] == id).unwrap();
        r["caller"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        ids.iter().map(|id| caller(id)).collect::<Vec<_>>(),
        ["search", "billing", "billing"]
    );
    let report = report(dir.path());
    let by: Vec<(&str, u64)> = report["by_caller"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["requests"].as_u64().unwrap()))
        .collect();
    assert!(
        by.contains(&("billing", 2)) && by.contains(&("search", 1)),
        "{by:?}"
    );
}
