//! The client's side of a scenario: one request over HTTP, what came back, and its grade.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::scenarios::{Expect, Scenario};
use super::{Grade, Harness, HANG_AFTER, PROMPT};

/// The answers a client may correctly get: word lists of the primary's and the backup's.
pub(super) struct Valid {
    primary: Vec<String>,
    backup: Vec<String>,
}

impl Valid {
    pub(super) async fn fetch(h: &Harness) -> Result<Valid, String> {
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
pub(super) struct Observed {
    pub status: u16,
    /// The answer's text, `finish_reason`, and for streams: `[DONE]` count, an in-band error.
    text: String,
    finish: Option<String>,
    dones: usize,
    ends_with_done: bool,
    in_band_error: bool,
    /// A clean JSON error body (non-2xx).
    error_code: Option<String>,
    hung: bool,
    pub target: String,
    pub elapsed: Duration,
}

pub(super) async fn request(h: &Harness, sc: &Scenario) -> Observed {
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
pub(super) fn grade(sc: &Scenario, o: &Observed, valid: &Valid) -> (Grade, String) {
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
