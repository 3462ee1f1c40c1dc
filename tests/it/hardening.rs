//! Hostile input over HTTP: a 1 MiB adversarial prompt costs the gateway little CPU and never
//! blocks the async workers; upstream data cannot crash the gateway; provider redirects are not
//! followed (the key stays home) and URLs in errors are redacted.

use std::io::BufRead;
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use serde_json::{json, Value};

use crate::support::{ask, loopback_any_port, Gateway, Sse};

/// A prompt built to make any rescanning parser quadratic: unclosed tags, brackets and quotes,
/// digits and units, nested brackets, by the hundred thousand.
fn adversarial(bytes: usize) -> String {
    let pieces = [
        "<a>",
        "<div class=\"x\">",
        "[",
        "{",
        "(",
        "\"",
        "'",
        "`",
        "12.5kg ",
        "3,000 ",
        "</b>",
        "```",
        "[[",
        "]] ",
        "-42% ",
        "<!-- ",
        "x=\"y ",
        "1e9 ",
        "v1.2.3 ",
        "« ",
        // Line-shaped noise the document rules read: quoted replies, headers, menus, footers,
        // signatures, list items, blank lines.
        "\n",
        "\n\n",
        "> quoted reply\n",
        "From: a@b.example\n",
        "Home | About | Contact\n",
        "-- \n",
        "Sent from my iPhone\n",
        "Unsubscribe here\n",
        "1. ",
        "* item\n",
        "Please summarize the following:\n",
    ];
    let mut s = String::from("Summarize: ");
    let mut i = 0usize;
    while s.len() < bytes {
        s.push_str(pieces[i % pieces.len()]);
        i = i.wrapping_mul(31).wrapping_add(7) % 1_000_003;
    }
    s.truncate(bytes);
    while !s.is_char_boundary(s.len()) {
        s.pop();
    }
    s
}

/// User + system CPU time of a process, from /proc (clock ticks of 10 ms).
fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The gateway binary under test and its CPU bound for a 1 MiB prompt: `SLUICE_RELEASE_BIN`
/// (a release build, as `scripts/benchmarks.sh` runs it) is held to the issue's 100 ms; the
/// debug build `cargo test` makes (its own code unoptimized, about 5x slower at text) to 1 s,
/// and to linear scaling, which is what a quadratic pass fails.
fn gateway_binary() -> (std::path::PathBuf, Duration) {
    match std::env::var_os("SLUICE_RELEASE_BIN") {
        Some(p) => (p.into(), Duration::from_millis(100)),
        None => (
            env!("CARGO_BIN_EXE_sluice").into(),
            Duration::from_millis(1000),
        ),
    }
}

/// `sluice serve` as its own process (so its CPU time is the gateway's alone), with the cache
/// on and the route's upstream on the test's mock.
async fn gateway_process(mock_base: &str, data: &std::path::Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
data_dir = "{data}"
models_dir = "{root}/models"
[cache]
enabled = true
[providers.oa]
kind = "openai"
base_url = "{mock_base}/v1"
models."gpt-4o-mini" = {{ input_per_mtok = 0.15, output_per_mtok = 0.6 }}
[routes.summarize]
tiers.cheap = ["oa/gpt-4o-mini"]
"#,
        data = data.display(),
        root = env!("CARGO_MANIFEST_DIR"),
    );
    let path = data.join("gw.toml");
    std::fs::write(&path, config).unwrap();
    let child = std::process::Command::new(gateway_binary().0)
        .args(["serve", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            let mut err = String::new();
            for l in std::io::BufReader::new(child.0.stderr.take().unwrap()).lines() {
                err.push_str(&l.unwrap_or_default());
                err.push('\n');
            }
            panic!("gateway exited ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "gateway never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, base)
}

/// A 1 MiB prompt of tags, brackets, quotes and digits is answered within the CPU bound of
/// [`gateway_binary`] (counted for the gateway process alone), costs about 4x a 256 KiB one
/// (linear: a quadratic pass costs 16x), and `/healthz` answers meanwhile (the work is off the
/// async workers).
#[tokio::test]
async fn a_one_mib_adversarial_prompt_costs_little_cpu() {
    let mock = sluice::sim::spawn(loopback_any_port(), sluice::sim::MockOptions::default())
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let (child, base) = gateway_process(&mock.base_url(), data.path()).await;
    let http = reqwest::Client::new();
    let send = |prompt: &str| {
        let body = serde_json::to_vec(&ask("summarize", prompt)).unwrap();
        http.post(format!("{base}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Warm up (connection, first-use allocations) on a small request.
    assert_eq!(send("warm up").await.unwrap().status(), 200);
    let mut used = Vec::new();
    for bytes in [256 << 10, 1 << 20] {
        let prompt = adversarial(bytes);
        let before = cpu_of(child.0.id());
        let sent = tokio::spawn(send(&prompt));
        // The async workers stay free: health checks answer while the prompt is read.
        for _ in 0..3 {
            let t = Instant::now();
            let r = http.get(format!("{base}/healthz")).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        }
        let r = sent.await.unwrap().unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion");
        used.push(cpu_of(child.0.id()) - before);
    }
    let (_, bound) = gateway_binary();
    eprintln!(
        "gateway CPU: 256 KiB {:?}, 1 MiB {:?} (bound {bound:?})",
        used[0], used[1]
    );
    assert!(used[1] < bound, "{:?} of gateway CPU for 1 MiB", used[1]);
    // 4x the text: at most ~6x the CPU (10 ms ticks of slack), never the 16x of a quadratic pass.
    assert!(
        used[1] <= used[0] * 6 + Duration::from_millis(40),
        "not linear: {used:?}"
    );
}

/// Upstream data that used to crash or exhaust the gateway: a stream chunk with choice index
/// 4294967295, a usage with absurd counts. The client gets the stream; the gateway lives on.
#[tokio::test]
async fn hostile_upstream_streams_are_survived() {
    async fn upstream() -> axum::response::Response {
        let chunk = |c: Value| format!("data: {c}\n\n");
        let mut body = String::new();
        body += &chunk(
            json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 4294967295u32, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": null}]}),
        );
        body += &chunk(
            json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "there"}, "finish_reason": "stop"}]}),
        );
        body += &chunk(
            json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [], "usage": {"prompt_tokens": 4294967295u32, "completion_tokens": 4294967295u32, "total_tokens": 99999999999999u64}}),
        );
        body += "data: [DONE]\n\n";
        ([("content-type", "text/event-stream")], body).into_response()
    }
    let listener = tokio::net::TcpListener::bind(loopback_any_port())
        .await
        .unwrap();
    let up = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(upstream));
        axum::serve(listener, app).await.unwrap();
    });
    let data = tempfile::tempdir().unwrap();
    let g = Gateway::start_cached(
        &format!(
            "[providers.evil]\nkind = \"openai\"\nbase_url = \"{up}/v1\"\nmodels.m = {{}}\n[routes.r]\ntiers.t = [\"evil/m\"]\n"
        ),
        data.path(),
    )
    .await;
    for _ in 0..2 {
        let r = g
            .http
            .post(g.url("/v1/chat/completions"))
            .json(
                &json!({"model": "r", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "hello"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let sse = Sse::read(r).await;
        assert!(sse.done(), "{:?}", sse.data);
    }
    g.state.cache.as_ref().unwrap().flush().await.unwrap();
    assert_eq!(
        g.http.get(g.url("/healthz")).send().await.unwrap().status(),
        200
    );
    let records = g.audit_records().await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r["status"] == 200));
}

/// A provider that redirects: the gateway does not follow (the key would go to the other
/// host), the attempt fails as a provider fault, and no URL with its query reaches the client.
#[tokio::test]
async fn provider_redirects_are_not_followed() {
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let elsewhere = tokio::net::TcpListener::bind(loopback_any_port())
        .await
        .unwrap();
    let elsewhere_url = format!("http://{}", elsewhere.local_addr().unwrap());
    {
        let seen = seen.clone();
        tokio::spawn(async move {
            let app = axum::Router::new().fallback(move || {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { "stolen" }
            });
            axum::serve(elsewhere, app).await.unwrap();
        });
    }
    let redirector = tokio::net::TcpListener::bind(loopback_any_port())
        .await
        .unwrap();
    let redirector_url = format!("http://{}", redirector.local_addr().unwrap());
    tokio::spawn(async move {
        let to = format!("{elsewhere_url}/v1/messages?token=secret");
        let app = axum::Router::new().fallback(move || {
            let to = to.clone();
            async move { axum::response::Redirect::temporary(&to) }
        });
        axum::serve(redirector, app).await.unwrap();
    });
    let g = Gateway::start(&format!(
        "[providers.moved]\nkind = \"anthropic\"\nbase_url = \"{redirector_url}\"\napi_key = \"sk-ant-secret\"\nmodels.m = {{}}\n[routes.r]\ntiers.t = [\"moved/m\"]\n"
    ))
    .await;
    let (s, _, v) = g.chat(&ask("r", "hello")).await;
    assert_eq!(s, 502, "{v}");
    let text = v.to_string();
    assert!(!text.contains("secret"), "{text}");
    assert_eq!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

/// A non-streaming attempt abandoned on its first-byte timeout may still be billed by the
/// provider: its estimated cost goes into the record (and the key's budget), marked estimated,
/// instead of vanishing while the next target is billed again.
#[tokio::test]
async fn abandoned_slow_answers_are_billed_in_the_record() {
    let g = Gateway::start(
        r#"
[providers.oa.models]
"gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.6 }
"gpt-4-turbo+latency-2500ms" = { input_per_mtok = 10.0, output_per_mtok = 30.0 }
[routes.fast]
tiers.t = ["oa/gpt-4o-mini"]
[routes.slow_first]
tiers.t = ["oa/gpt-4-turbo+latency-2500ms", "oa/gpt-4o-mini"]
"#,
    )
    .await;
    let prompt = "Explain the difference between a process and a thread.";
    let (s, _, _) = g.chat(&ask("fast", prompt)).await;
    assert_eq!(s, 200);
    let (s, h, _) = g.chat(&ask("slow_first", prompt)).await;
    assert_eq!(s, 200);
    assert_eq!(crate::support::header(&h, "x-sluice-attempts"), "2");
    let records = g.audit_records().await;
    let (fast, slow) = (&records[0], &records[1]);
    assert_eq!(slow["attempts"][0]["status"], Value::Null);
    let (a, b) = (
        fast["cost_usd"].as_f64().unwrap(),
        slow["cost_usd"].as_f64().unwrap(),
    );
    // The abandoned attempt at 10/30 USD per 1M dwarfs the answer at 0.15/0.6.
    assert!(b > a * 20.0, "abandoned attempt not billed: {a} vs {b}");
    assert_eq!(slow["usage_estimated"], true);
    assert_eq!(fast["usage_estimated"], false);
    // Tokens stay those served.
    assert_eq!(slow["output_tokens"], fast["output_tokens"]);
}

/// Past `[server] max_cache_prompt_bytes` a prompt is served uncached: no lookup, nothing
/// stored, so its repeat goes upstream again; under the cap the same traffic is cached.
#[tokio::test]
async fn prompts_over_the_cache_size_cap_are_served_uncached() {
    let data = tempfile::tempdir().unwrap();
    let config = r#"
[providers.oa.models]
"gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.6, context_window = 128000 }
[routes.chat]
tiers.cheap = ["oa/gpt-4o-mini"]
"#;
    let g =
        Gateway::start_cached_server("max_cache_prompt_bytes = 4096", config, data.path()).await;
    let cache = g.state.cache.as_ref().unwrap();
    let small = "What is the capital of France?";
    let large = format!("Summarize: {}", "the quick brown fox jumps. ".repeat(200));
    assert!(large.len() > 4096);
    let mut seen = Vec::new();
    for prompt in [small, small, &large, &large] {
        let (s, h, v) = g.chat(&ask("chat", prompt)).await;
        assert_eq!(s, 200, "{v}");
        seen.push(crate::support::header(&h, "x-sluice-cache").to_owned());
        cache.flush().await.unwrap();
    }
    assert_eq!(seen[..2], ["miss", "hit-exact"], "{seen:?}");
    assert!(
        seen[2..]
            .iter()
            .all(|c| !c.starts_with("hit") && c != "miss"),
        "{seen:?}"
    );
    assert_eq!(
        g.mock.count("gpt-4o-mini"),
        3,
        "the large repeat went upstream"
    );
    assert_eq!(
        cache.stats(&sluice::cache::Visibility::All).entries,
        1,
        "only the small prompt was stored"
    );
}
