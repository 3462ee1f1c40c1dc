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

mod client;
pub mod scenarios;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use self::client::{grade, request, Valid};
use self::scenarios::Extra;
pub use self::scenarios::Scenario;
use crate::accounting::{audit, AuditRecord};
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

async fn run_one(sc: &Scenario) -> Result<Scored, String> {
    let h = Harness::start(sc).await?;
    let valid = Valid::fetch(&h).await?;
    let started = Instant::now();
    let o = request(&h, sc).await;
    let (mut grade, mut detail) = grade(sc, &o, &valid);
    if let Some(how) = resumed(&h).await? {
        detail.push_str(&format!(", continued at {how}"));
    }
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

/// Every audit record so far.
async fn records(h: &Harness) -> Result<Vec<AuditRecord>, String> {
    h.state.audit.flush().await.map_err(|e| e.to_string())?;
    let db = audit::open_reader(&h.data.path().join(crate::store::DB_FILE))
        .map_err(|e| e.to_string())?;
    let records = audit::read(&db, 0..u64::MAX).map_err(|e| e.to_string())?;
    records.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

/// Where and how the first request's stream was continued, per its audit record.
async fn resumed(h: &Harness) -> Result<Option<String>, String> {
    let records = records(h).await?;
    let attempts = records.first().map(|r| &r.attempts[..]).unwrap_or_default();
    let resumed = attempts.iter().find(|a| a.outcome.contains("resumed"));
    Ok(resumed.map(|a| {
        let how = a.outcome.rsplit('(').next().unwrap_or_default();
        format!("{} ({}", a.target, how)
    }))
}

/// The audit record of the one request lists every upstream request the mock received.
async fn accounted(h: &Harness) -> Result<(), String> {
    let records = records(h).await?;
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
