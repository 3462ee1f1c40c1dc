//! `sluice bench failover`: every failover scenario against the mock, graded as a client sees
//! it, into a scorecard.
//!
//! Each scenario gets a fresh mock and a fresh in-process gateway (so no breaker state carries
//! over) with the built-in default timeouts, retries and breaker, and a 30 s total deadline:
//! the defaults are what is measured. The client is plain HTTP over loopback. Grades:
//! **pass** = the correct, complete answer (for a client error: that error, relayed cleanly);
//! **partial** = correct, but later than the scenario's goal (or, flapping, traffic did not
//! return to the primary in time; accounting, the audit missed attempts); **safe** = a clean
//! error (an HTTP error, or a stream ending in an in-band error without `[DONE]`); **fail** = a
//! truncated or wrong answer presented as a success, or no answer at all (a hang).
//!
//! A correct answer is the primary's full answer, the backup's, or the primary's first words
//! followed by the backup's continuation of them (the mock continues after as many words as it
//! was given); both are read from the mock directly before the scenario runs.

pub mod scenarios;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use self::scenarios::Scenario;
use self::scenarios::{Expect, Extra};
use crate::accounting::audit;
use crate::cli::FailoverArgs;
use crate::config::Config;
use crate::sim::{self, MockHandle, MockOptions};
use crate::state::AppState;

/// The request deadline the scenarios run under.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// A client gives up this long after the deadline: anything slower is a hang.
const HANG_AFTER: Duration = Duration::from_secs(45);
const PROMPT: &str = "Tell me about the lighthouse keeper and the storm";
/// The flapping scenario sends a request this often.
const FLAP_INTERVAL: Duration = Duration::from_millis(200);
/// ... until this long after the primary recovered.
const FLAP_WATCH: Duration = Duration::from_secs(15);
/// `flap-1000ms`: three down periods and two up periods before it stays up.
const FLAP_RECOVERED_AFTER: Duration = Duration::from_millis(5_000);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grade {
    Fail,
    Safe,
    Partial,
    Pass,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Pass => "pass",
            Grade::Partial => "partial",
            Grade::Safe => "safe",
            Grade::Fail => "fail",
        }
    }
}

/// One scenario's outcome.
pub struct Scored {
    pub grade: Grade,
    pub status: u16,
    pub elapsed: Duration,
    /// Requests the mock received (every attempt at every target).
    pub upstream_requests: u64,
    pub detail: String,
}

pub async fn run(args: FailoverArgs) -> Result<(), String> {
    let only = |id: &str| args.only.as_deref().is_none_or(|o| id.contains(o));
    let rows = scorecard(only, !args.json).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report(&rows)).unwrap_or_default()
        );
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

/// The scenarios whose id `only` accepts, run one after another (progress on stderr).
pub async fn scorecard(
    only: impl Fn(&str) -> bool,
    progress: bool,
) -> Result<Vec<(Scenario, Scored)>, String> {
    let mut rows = Vec::new();
    for sc in scenarios::all().into_iter().filter(|sc| only(sc.id)) {
        if progress {
            eprintln!("== {}", sc.id);
        }
        let scored = run_one(&sc).await?;
        rows.push((sc, scored));
    }
    Ok(rows)
}

fn report(rows: &[(Scenario, Scored)]) -> Value {
    let list: Vec<Value> = rows
        .iter()
        .map(|(sc, s)| {
            json!({
                "id": sc.id, "title": sc.title, "grade": s.grade.as_str(), "status": s.status,
                "elapsed_ms": s.elapsed.as_millis() as u64,
                "upstream_requests": s.upstream_requests, "detail": s.detail,
            })
        })
        .collect();
    json!({
        "total_timeout_ms": TOTAL_TIMEOUT.as_millis() as u64,
        "summary": summary(rows),
        "scenarios": list,
    })
}

fn summary(rows: &[(Scenario, Scored)]) -> Value {
    let n = |g: Grade| rows.iter().filter(|(_, s)| s.grade == g).count();
    json!({
        "scenarios": rows.len(), "pass": n(Grade::Pass), "partial": n(Grade::Partial),
        "safe": n(Grade::Safe), "fail": n(Grade::Fail),
    })
}

fn table(rows: &[(Scenario, Scored)]) -> String {
    let mut out = format!(
        "{:<58} {:<8} {:>8} {:>9}  {}\n",
        "scenario", "grade", "time s", "upstream", "detail"
    );
    for (sc, s) in rows {
        out.push_str(&format!(
            "{:<58} {:<8} {:>8.1} {:>9}  {}\n",
            format!("{} ({})", sc.title, sc.id),
            s.grade.as_str(),
            s.elapsed.as_secs_f64(),
            s.upstream_requests,
            s.detail
        ));
    }
    let sum = summary(rows);
    out.push_str(&format!(
        "\n{} scenarios: {} pass, {} partial, {} safe, {} fail\n",
        sum["scenarios"], sum["pass"], sum["partial"], sum["safe"], sum["fail"]
    ));
    out
}

/// A mock and a gateway in this process, for one scenario.
struct Harness {
    mock: MockHandle,
    state: Arc<AppState>,
    base: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    data: tempfile::TempDir,
}

impl Harness {
    async fn start(sc: &Scenario) -> Result<Harness, String> {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let mock = sim::spawn(loopback, MockOptions::default())
            .await
            .map_err(|e| format!("mock: {e}"))?;
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        let text = config(sc, &mock.base_url(), data.path());
        let cfg = Config::parse(&text, "bench failover").map_err(|e| e.to_string())?;
        let state = AppState::new(cfg).await?;
        let listener = tokio::net::TcpListener::bind(loopback)
            .await
            .map_err(|e| e.to_string())?;
        let base = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        tokio::spawn(async move {
            let _ = super::serve::serve(listener, st, async {
                let _ = rx.await;
            })
            .await;
        });
        let http = reqwest::Client::builder()
            .timeout(HANG_AFTER)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Harness {
            mock,
            state,
            base,
            http,
            stop: Some(tx),
            data,
        })
    }

    fn upstream_requests(&self) -> u64 {
        self.mock.counts().values().sum()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// Built-in defaults but for the 30 s deadline; a primary at the OpenAI-compatible endpoint,
/// a backup with a larger context window at the Anthropic one.
fn config(sc: &Scenario, mock: &str, data: &std::path::Path) -> String {
    let tokens = |t: &str| {
        if t.is_empty() {
            String::new()
        } else {
            format!("+{t}")
        }
    };
    format!(
        r#"
[server]
data_dir = "{data}"
[cache]
enabled = false
[defaults]
total_timeout_ms = {total}
[providers.oa]
kind = "openai"
base_url = "{mock}/v1"
models.primary = {{ upstream_model = "model-p{p}", context_window = 1000, input_per_mtok = 1.0, output_per_mtok = 2.0 }}
[providers.an]
kind = "anthropic"
base_url = "{mock}"
models.backup = {{ upstream_model = "model-b{b}", context_window = 200000, input_per_mtok = 1.0, output_per_mtok = 2.0 }}
[routes.r]
tiers.main = ["oa/primary", "an/backup"]
"#,
        data = data.display(),
        total = TOTAL_TIMEOUT.as_millis(),
        p = tokens(sc.primary),
        b = tokens(sc.backup),
    )
}

/// The answers a client may correctly get: word lists of the primary's and the backup's.
struct Valid {
    primary: Vec<String>,
    backup: Vec<String>,
}

impl Valid {
    async fn fetch(h: &Harness) -> Result<Valid, String> {
        let url = h.mock.base_url();
        let oa = json!({"model": "model-p", "messages": [{"role": "user", "content": PROMPT}]});
        let an = json!({"model": "model-b", "max_tokens": 4096,
                        "messages": [{"role": "user", "content": PROMPT}]});
        let get = |path: &'static str, body: Value| {
            let req = h.http.post(format!("{url}{path}")).json(&body);
            async move {
                let resp = req.send().await.map_err(|e| e.to_string())?;
                resp.json::<Value>().await.map_err(|e| e.to_string())
            }
        };
        let p = get("/v1/chat/completions", oa).await?;
        let b = get("/v1/messages", an).await?;
        h.mock.reset();
        let words = |t: Option<&str>| -> Vec<String> {
            t.unwrap_or_default()
                .split_inclusive(' ')
                .map(str::to_owned)
                .collect()
        };
        Ok(Valid {
            primary: words(p["choices"][0]["message"]["content"].as_str()),
            backup: words(b["content"][0]["text"].as_str()),
        })
    }

    /// The primary's answer, the backup's, or the primary's first k words and the backup's
    /// rest.
    fn accepts(&self, text: &str) -> bool {
        let got: Vec<&str> = text.split_inclusive(' ').collect();
        let (p, b) = (&self.primary, &self.backup);
        got == p.iter().map(String::as_str).collect::<Vec<_>>()
            || (got.len() == b.len()
                && (0..=b.len()).any(|k| {
                    k <= p.len()
                        && got[..k].iter().zip(&p[..k]).all(|(g, w)| g == w)
                        && got[k..].iter().zip(&b[k..]).all(|(g, w)| g == w)
                }))
    }
}

/// What the client got.
struct Observed {
    status: u16,
    /// The answer's text, `finish_reason`, and for streams: `[DONE]` count, an in-band error.
    text: String,
    finish: Option<String>,
    dones: usize,
    ends_with_done: bool,
    in_band_error: bool,
    /// A clean JSON error body (non-2xx).
    error_code: Option<String>,
    hung: bool,
    target: String,
    elapsed: Duration,
}

async fn request(h: &Harness, sc: &Scenario) -> Observed {
    let mut body = json!({"model": "r", "messages": [{"role": "user", "content": PROMPT}]});
    if sc.stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    let started = Instant::now();
    let mut o = Observed {
        status: 0,
        text: String::new(),
        finish: None,
        dones: 0,
        ends_with_done: false,
        in_band_error: false,
        error_code: None,
        hung: false,
        target: String::new(),
        elapsed: Duration::ZERO,
    };
    let url = format!("{}/v1/chat/completions", h.base);
    let result = async {
        let r = h.http.post(url).json(&body).send().await?;
        o.status = r.status().as_u16();
        o.target = header(&r, "x-sluice-target");
        let bytes = r.bytes().await?;
        Ok::<_, reqwest::Error>(bytes)
    }
    .await;
    o.elapsed = started.elapsed();
    match result {
        Err(_) => o.hung = true,
        Ok(bytes) if o.status != 200 => {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            o.error_code = v["error"]["code"].as_str().map(str::to_owned);
        }
        Ok(bytes) if sc.stream => read_sse(&bytes, &mut o),
        Ok(bytes) => {
            let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let choice = &v["choices"][0];
            o.text = choice["message"]["content"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            o.finish = choice["finish_reason"].as_str().map(str::to_owned);
        }
    }
    o
}

fn header(r: &reqwest::Response, name: &str) -> String {
    let v = r.headers().get(name).and_then(|v| v.to_str().ok());
    v.unwrap_or_default().to_owned()
}

/// Every `data:` payload of a whole SSE body.
fn read_sse(bytes: &[u8], o: &mut Observed) {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    let mut last = "";
    for data in text
        .split("\n\n")
        .filter_map(|ev| ev.strip_prefix("data: "))
    {
        last = data;
        if data == "[DONE]" {
            o.dones += 1;
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap_or_default();
        if v.get("error").is_some() {
            o.in_band_error = true;
        }
        for c in v["choices"].as_array().into_iter().flatten() {
            o.text
                .push_str(c["delta"]["content"].as_str().unwrap_or(""));
            if let Some(f) = c["finish_reason"].as_str() {
                o.finish = Some(f.to_owned());
            }
        }
    }
    o.ends_with_done = last == "[DONE]";
}

/// The grade of one response, and why.
fn grade(sc: &Scenario, o: &Observed, valid: &Valid) -> (Grade, String) {
    if o.hung {
        return (
            Grade::Fail,
            format!("no complete response within {HANG_AFTER:?}"),
        );
    }
    let answered = o.status == 200 && !o.in_band_error;
    let correct = answered && o.finish.as_deref() == Some("stop") && valid.accepts(&o.text);
    let well_ended = !sc.stream || (o.dones == 1 && o.ends_with_done);
    match sc.expect {
        Expect::ClientError(status, code) => match (o.status, o.error_code.as_deref()) {
            (s, Some(c)) if s == status && c == code => (Grade::Pass, format!("{s} {c}")),
            _ if correct => (
                Grade::Partial,
                "answered instead of relaying the error".into(),
            ),
            (s, Some(c)) => (Grade::Safe, format!("{s} {c}")),
            (s, None) => (Grade::Fail, format!("HTTP {s} without an error body")),
        },
        Expect::Answer if correct && well_ended => match sc.goal {
            Some(goal) if o.elapsed > goal => (
                Grade::Partial,
                format!(
                    "correct, after {:.1} s (goal {} s)",
                    o.elapsed.as_secs_f64(),
                    goal.as_secs()
                ),
            ),
            _ => (Grade::Pass, format!("correct answer from {}", o.target)),
        },
        Expect::Answer if correct => (
            Grade::Partial,
            format!("correct text, but {} [DONE]", o.dones),
        ),
        Expect::Answer if o.status >= 400 => match &o.error_code {
            Some(c) => (Grade::Safe, format!("HTTP {} {c}", o.status)),
            None => (
                Grade::Fail,
                format!("HTTP {} without an error body", o.status),
            ),
        },
        Expect::Answer if o.in_band_error && o.dones == 0 => {
            (Grade::Safe, "in-band error, no [DONE]".into())
        }
        Expect::Answer => (
            Grade::Fail,
            format!(
                "{} characters presented as an answer (finish {:?}, {} [DONE])",
                o.text.len(),
                o.finish,
                o.dones
            ),
        ),
    }
}

async fn run_one(sc: &Scenario) -> Result<Scored, String> {
    let h = Harness::start(sc).await?;
    let valid = Valid::fetch(&h).await?;
    let started = Instant::now();
    let o = request(&h, sc).await;
    let (mut grade, mut detail) = grade(sc, &o, &valid);
    match sc.extra {
        Extra::None => {}
        Extra::Accounting if grade == Grade::Pass => {
            if let Err(why) = accounted(&h).await {
                (grade, detail) = (Grade::Partial, why);
            }
        }
        Extra::Accounting => {}
        Extra::Recovery(within) if grade == Grade::Pass => {
            (grade, detail) = recovery(&h, sc, &valid, started, within).await;
        }
        Extra::Recovery(_) => {}
    }
    Ok(Scored {
        grade,
        status: o.status,
        elapsed: o.elapsed,
        upstream_requests: h.upstream_requests(),
        detail,
    })
}

/// The audit record of the one request lists every upstream request the mock received.
async fn accounted(h: &Harness) -> Result<(), String> {
    h.state.audit.flush().await.map_err(|e| e.to_string())?;
    let db = audit::open_reader(&h.data.path().join(crate::store::DB_FILE))
        .map_err(|e| e.to_string())?;
    let records: Vec<_> = audit::read(&db, 0..u64::MAX)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let [rec] = &records[..] else {
        return Err(format!("{} audit records for one request", records.len()));
    };
    let upstream = h.upstream_requests();
    if rec.attempts.len() as u64 != upstream {
        return Err(format!(
            "audit lists {} attempts, the upstream saw {upstream} requests",
            rec.attempts.len()
        ));
    }
    if rec.output_tokens == 0 || rec.cost_usd.is_none_or(|c| c <= 0.0) {
        return Err("the answer's tokens or cost are missing from the audit".into());
    }
    Ok(())
}

/// Keeps asking while the primary flaps: every answer must be correct, and after the primary
/// recovered, traffic must go back to it within `within`. `first`: when the first request was
/// sent, so no later than the primary's first upstream request (its recovery is measured from
/// that one): the time back is never understated.
async fn recovery(
    h: &Harness,
    sc: &Scenario,
    valid: &Valid,
    first: Instant,
    within: Duration,
) -> (Grade, String) {
    let recovered = first + FLAP_RECOVERED_AFTER;
    while first.elapsed() < FLAP_RECOVERED_AFTER + FLAP_WATCH {
        tokio::time::sleep(FLAP_INTERVAL).await;
        let o = request(h, sc).await;
        let (g, why) = grade(sc, &o, valid);
        if g != Grade::Pass {
            return (g, format!("while flapping: {why}"));
        }
        let now = Instant::now();
        if o.target == "oa/primary" && now > recovered {
            let back = now.saturating_duration_since(recovered);
            let g = if back <= within {
                Grade::Pass
            } else {
                Grade::Partial
            };
            return (
                g,
                format!(
                    "back on the primary {:.1} s after it recovered",
                    back.as_secs_f64()
                ),
            );
        }
    }
    (
        Grade::Partial,
        format!(
            "still on the backup {} s after the primary recovered",
            FLAP_WATCH.as_secs()
        ),
    )
}
