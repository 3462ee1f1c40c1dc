//! Helpers shared by the integration-test modules: start the mock provider and the gateway on
//! 127.0.0.1 ephemeral ports, and read SSE streams.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use serde_json::Value;
use sluice::cache::{Embedder, EmbedderConfig};
use sluice::config::Config;
use sluice::sim::{self as mock, MockHandle, MockOptions};
use sluice::state::AppState;
use tokio::sync::oneshot;

/// `127.0.0.1:0`: bind a free loopback port.
pub fn loopback_any_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Providers `oa` (OpenAI-compatible) and `an` (Anthropic) on the mock, with short time limits
/// so fault tests finish quickly. `{MOCK}` is replaced by the mock's base URL.
pub const BASE_CONFIG: &str = r#"
[defaults]
connect_timeout_ms = 1000
first_byte_timeout_ms = 1500
first_token_timeout_ms = 1000
idle_timeout_ms = 400
total_timeout_ms = 8000
max_retries = 2
backoff_base_ms = 5
backoff_max_ms = 20
max_retry_after_ms = 1500

[cache]
enabled = false

[breaker]
failure_threshold = 50
cooldown_ms = 60000

[providers.oa]
kind = "openai"
base_url = "{MOCK}/v1"

[providers.an]
kind = "anthropic"
base_url = "{MOCK}"
"#;

/// One embedding model for the whole test binary (loading it takes a while).
pub fn embedder() -> Embedder {
    static E: std::sync::OnceLock<Embedder> = std::sync::OnceLock::new();
    E.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        Embedder::load(&EmbedderConfig::new(dir))
            .expect("embedding model (run scripts/fetch-models.sh)")
    })
    .clone()
}

pub struct Gateway {
    pub base: String,
    pub http: reqwest::Client,
    pub mock: MockHandle,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _data: tempfile::TempDir,
}

impl Gateway {
    /// Start mock + gateway; `config` is appended to `BASE_CONFIG` (it may add provider models,
    /// routes, or override sections that `BASE_CONFIG` does not set).
    pub async fn start(config: &str) -> Gateway {
        Self::start_raw(&format!("{BASE_CONFIG}\n{config}")).await
    }

    /// Start with exactly this config text (`{MOCK}` replaced).
    pub async fn start_raw(config: &str) -> Gateway {
        let mock = mock::spawn(loopback_any_port(), MockOptions::default())
            .await
            .expect("mock starts");
        Self::start_with(config, mock, None).await
    }

    /// Start with the cache on, its database in `data_dir`, sharing one loaded model.
    pub async fn start_cached(config: &str, data_dir: &std::path::Path) -> Gateway {
        Self::start_cached_server("", config, data_dir).await
    }

    /// [`Self::start_cached`] with more `[server]` settings (`server`: lines of that table).
    pub async fn start_cached_server(
        server: &str,
        config: &str,
        data_dir: &std::path::Path,
    ) -> Gateway {
        let mock = mock::spawn(loopback_any_port(), MockOptions::default())
            .await
            .expect("mock starts");
        let text = format!(
            "[server]\ndata_dir = \"{}\"\nmodels_dir = \"{}/models\"\n{server}\n{}\n{config}",
            data_dir.display(),
            env!("CARGO_MANIFEST_DIR"),
            BASE_CONFIG.replace("[cache]\nenabled = false", "[cache]\nenabled = true"),
        );
        Self::start_with(&text, mock, Some(embedder())).await
    }

    /// [`Self::start_cached`] with the store under a disk quota (storage-fault tests).
    pub async fn start_cached_with_quota(
        config: &str,
        data_dir: &std::path::Path,
        quota: Arc<sluice::store::DiskQuota>,
    ) -> Gateway {
        let mock = mock::spawn(loopback_any_port(), MockOptions::default())
            .await
            .expect("mock starts");
        let text = format!(
            "[server]\ndata_dir = \"{}\"\nmodels_dir = \"{}/models\"\n{}\n{config}",
            data_dir.display(),
            env!("CARGO_MANIFEST_DIR"),
            BASE_CONFIG.replace("[cache]\nenabled = false", "[cache]\nenabled = true"),
        );
        let options = sluice::state::StateOptions {
            embedder: Some(embedder()),
            quota: Some(quota),
        };
        Self::start_opts(&text, mock, options).await
    }

    /// Start with exactly this config text (`{MOCK}` replaced, providers without their key
    /// simulated by the mock), sharing the test binary's embedding model (auto routing, the
    /// difficulty score and learned policies need it).
    pub async fn start_embedded(config: &str) -> Gateway {
        let mock = mock::spawn(loopback_any_port(), MockOptions::default())
            .await
            .expect("mock starts");
        Self::start_with(config, mock, Some(embedder())).await
    }

    async fn start_with(config: &str, mock: MockHandle, embedder: Option<Embedder>) -> Gateway {
        let options = sluice::state::StateOptions {
            embedder,
            ..Default::default()
        };
        Self::start_opts(config, mock, options).await
    }

    async fn start_opts(
        config: &str,
        mock: MockHandle,
        options: sluice::state::StateOptions,
    ) -> Gateway {
        let text = config.replace("{MOCK}", &mock.base_url());
        let mut cfg = Config::parse(&text, "test config").unwrap_or_else(|e| panic!("{e}"));
        // As `sluice serve` does: providers without their key are served by the simulator.
        for p in cfg.providers.iter_mut().filter(|p| p.simulated) {
            p.base_url = match p.kind {
                sluice::config::ProviderKind::OpenAi => format!("{}/v1", mock.base_url()),
                sluice::config::ProviderKind::Anthropic => mock.base_url(),
            };
        }
        // Every gateway gets its own database unless the test chose a directory.
        let data = tempfile::tempdir().unwrap();
        if cfg.server.data_dir == std::path::Path::new("./data") {
            cfg.server.data_dir = data.path().to_owned();
        }
        let state = AppState::with_options(cfg, options).await.expect("state");
        let listener = tokio::net::TcpListener::bind(loopback_any_port())
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let st = state.clone();
        let task = tokio::spawn(async move {
            sluice::commands::serve::serve(listener, st, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Gateway {
            base,
            http: reqwest::Client::new(),
            mock,
            state,
            stop: Some(tx),
            task: Some(task),
            _data: data,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/chat/completions"))
            .json(body)
            .send()
            .await
            .expect("gateway answers")
    }

    /// POST and return (status, headers, JSON body).
    pub async fn chat(&self, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self.post(body).await;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let v = r.json::<Value>().await.expect("JSON body");
        (status, headers, v)
    }

    /// GET `path` and return its JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        r.json::<Value>().await.expect("JSON body")
    }

    /// Every audit record so far (flushed first), oldest first, as `sluice audit export` writes
    /// them.
    pub async fn audit_records(&self) -> Vec<Value> {
        use sluice::accounting::audit;
        self.state.audit.flush().await.unwrap();
        let path = self
            .state
            .config
            .server
            .data_dir
            .join(sluice::store::DB_FILE);
        let db = audit::open_reader(&path).unwrap();
        audit::read(&db, 0..u64::MAX)
            .unwrap()
            .map(|r| r.unwrap().to_json())
            .collect()
    }

    /// The value of one `/metrics` series (`name{labels}` exactly as rendered), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// The mock's whole answer for `model` (fault tokens do not change it) to `prompt`, through
    /// its OpenAI-compatible endpoint or its Anthropic one, as words with their trailing
    /// spaces. Call it before counting requests: it counts under `model`.
    pub async fn mock_words(&self, model: &str, prompt: &str, openai: bool) -> Vec<String> {
        let (path, body) = if openai {
            (
                "/v1/chat/completions",
                serde_json::json!({"model": model,
                "messages": [{"role": "user", "content": prompt}]}),
            )
        } else {
            (
                "/v1/messages",
                serde_json::json!({"model": model, "max_tokens": 4096,
                "messages": [{"role": "user", "content": prompt}]}),
            )
        };
        let v: Value = self
            .http
            .post(format!("{}{path}", self.mock.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = if openai {
            &v["choices"][0]["message"]["content"]
        } else {
            &v["content"][0]["text"]
        };
        let words = text.as_str().unwrap().split_inclusive(' ');
        words.map(str::to_owned).collect()
    }

    /// Stop accepting and wait for in-flight requests to drain.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A user message request.
pub fn ask(model: &str, text: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// A whole SSE response read to its end: every `data:` payload in order, and whether the body
/// ended with an error (cut connection) rather than a clean close.
#[derive(Debug)]
pub struct Sse {
    pub data: Vec<String>,
    pub body_error: bool,
}

impl Sse {
    pub async fn read(resp: reqwest::Response) -> Sse {
        use futures::StreamExt;
        let mut body = resp.bytes_stream();
        let mut buf = Vec::new();
        let mut body_error = false;
        while let Some(part) = body.next().await {
            match part {
                Ok(b) => buf.extend_from_slice(&b),
                Err(_) => {
                    body_error = true;
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&buf).replace("\r\n", "\n");
        let data = text
            .split("\n\n")
            .filter_map(|ev| {
                let lines: Vec<&str> = ev
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
                    .collect();
                (!lines.is_empty()).then(|| lines.join("\n"))
            })
            .collect();
        Sse { data, body_error }
    }

    pub fn done(&self) -> bool {
        self.data.last().map(String::as_str) == Some("[DONE]")
    }

    /// Every JSON payload (not `[DONE]`).
    pub fn json(&self) -> Vec<Value> {
        self.data
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("bad SSE JSON {d}: {e}")))
            .collect()
    }

    pub fn content(&self) -> String {
        self.json()
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    pub fn error(&self) -> Option<Value> {
        self.json().into_iter().find(|c| c.get("error").is_some())
    }

    /// How many `[DONE]` events the stream had.
    pub fn dones(&self) -> usize {
        self.data.iter().filter(|d| *d == "[DONE]").count()
    }

    /// The final usage chunk's `usage`, when there was one.
    pub fn usage(&self) -> Option<Value> {
        let chunks = self.json();
        chunks
            .iter()
            .rev()
            .find(|c| c["usage"].is_object())
            .map(|c| c["usage"].clone())
    }
}

/// `words[..k]` of one answer followed by `words[k..]` of another: what a stream cut after `k`
/// chunks at one target and continued at another should read.
pub fn spliced(first: &[String], then: &[String], k: usize) -> String {
    first[..k].concat() + &then[k..].concat()
}

impl Gateway {
    /// POST an Anthropic Messages request to `/v1/messages` with the headers Anthropic's SDKs send.
    pub async fn post_messages(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/messages"))
            .header("anthropic-version", "2023-06-01")
            .header("x-api-key", "unused")
            .json(body)
            .send()
            .await
            .expect("gateway answers")
    }

    /// POST to `/v1/messages` and return (status, headers, JSON body).
    pub async fn messages(&self, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self.post_messages(body).await;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let v = r.json::<Value>().await.expect("JSON body");
        (status, headers, v)
    }
}

/// An Anthropic Messages request of one user turn.
pub fn ask_messages(model: &str, text: &str) -> Value {
    serde_json::json!({"model": model, "max_tokens": 1024,
        "messages": [{"role": "user", "content": text}]})
}

/// A whole Anthropic event stream: each event's name and data, in order.
#[derive(Debug)]
pub struct Events {
    pub events: Vec<(String, Value)>,
    pub body_error: bool,
}

impl Events {
    pub async fn read(resp: reqwest::Response) -> Events {
        use futures::StreamExt;
        let mut body = resp.bytes_stream();
        let mut buf = Vec::new();
        let mut body_error = false;
        while let Some(part) = body.next().await {
            match part {
                Ok(b) => buf.extend_from_slice(&b),
                Err(_) => {
                    body_error = true;
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&buf).replace("\r\n", "\n");
        let events = text
            .split("\n\n")
            .filter(|ev| !ev.trim().is_empty())
            .map(|ev| {
                let mut name = String::new();
                let mut data = String::new();
                for l in ev.lines() {
                    if let Some(n) = l.strip_prefix("event:") {
                        name = n.trim().to_owned();
                    } else if let Some(d) = l.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                let v = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("bad event data {data}: {e}"));
                (name, v)
            })
            .collect();
        Events { events, body_error }
    }

    pub fn names(&self) -> Vec<&str> {
        self.events.iter().map(|(n, _)| n.as_str()).collect()
    }

    pub fn error(&self) -> Option<&Value> {
        self.events
            .iter()
            .find(|(n, _)| n == "error")
            .map(|(_, v)| v)
    }

    /// The message the events add up to, built as Anthropic's SDKs build it: blocks by index,
    /// text and thinking appended, tool input JSON joined and parsed at the block's end, stop
    /// reason and usage from `message_delta` (its counts replace `message_start`'s).
    pub fn message(&self) -> Value {
        let mut msg = Value::Null;
        let mut json_parts: Vec<String> = Vec::new();
        for (name, v) in &self.events {
            assert_eq!(v["type"], name.as_str(), "data.type names the event");
            match name.as_str() {
                "message_start" => msg = v["message"].clone(),
                "content_block_start" => {
                    let i = v["index"].as_u64().unwrap() as usize;
                    let content = msg["content"].as_array_mut().unwrap();
                    assert_eq!(i, content.len(), "blocks arrive in order");
                    content.push(v["content_block"].clone());
                    json_parts.push(String::new());
                }
                "content_block_delta" => {
                    let i = v["index"].as_u64().unwrap() as usize;
                    let d = &v["delta"];
                    let block = &mut msg["content"][i];
                    match d["type"].as_str().unwrap() {
                        "text_delta" => {
                            let t = format!(
                                "{}{}",
                                block["text"].as_str().unwrap(),
                                d["text"].as_str().unwrap()
                            );
                            block["text"] = t.into();
                        }
                        "input_json_delta" => {
                            json_parts[i].push_str(d["partial_json"].as_str().unwrap())
                        }
                        other => panic!("unexpected delta {other}"),
                    }
                }
                "content_block_stop" => {
                    let i = v["index"].as_u64().unwrap() as usize;
                    if msg["content"][i]["type"] == "tool_use" && !json_parts[i].is_empty() {
                        msg["content"][i]["input"] = serde_json::from_str(&json_parts[i]).unwrap();
                    }
                }
                "message_delta" => {
                    msg["stop_reason"] = v["delta"]["stop_reason"].clone();
                    msg["stop_sequence"] = v["delta"]["stop_sequence"].clone();
                    for (k, n) in v["usage"].as_object().unwrap() {
                        msg["usage"][k] = n.clone();
                    }
                }
                _ => {}
            }
        }
        msg
    }

    /// All text of the message's text blocks.
    pub fn text(&self) -> String {
        let m = self.message();
        m["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["text"].as_str())
            .collect()
    }
}
