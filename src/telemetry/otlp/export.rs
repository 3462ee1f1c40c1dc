//! The exporter task: batches closed spans and POSTs them as the protobuf-JSON mapping of
//! `ExportTraceServiceRequest`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{AttrValue, FinishedSpan, Msg};

/// Spans per POST.
const BATCH: usize = 512;
const EXPORT_EVERY: Duration = Duration::from_secs(1);
/// Export problems are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

// OTLP `Span.SpanKind` and `Status.StatusCode`.
const KIND_INTERNAL: u8 = 1;
const KIND_SERVER: u8 = 2;
const KIND_CLIENT: u8 = 3;
const STATUS_UNSET: u8 = 0;
const STATUS_ERROR: u8 = 2;

/// The background half: batches queued spans and POSTs them.
pub(super) struct Exporter {
    client: reqwest::Client,
    url: String,
    resource: Value,
    dropped: Arc<AtomicU64>,
    warned_at: Option<Instant>,
    /// Spans lost to failed exports since the last warning.
    failed_spans: u64,
    /// `dropped` as of the last warning.
    reported_drops: u64,
}

impl Exporter {
    pub(super) fn new(
        client: reqwest::Client,
        url: String,
        service_name: &str,
        dropped: Arc<AtomicU64>,
    ) -> Self {
        Exporter {
            client,
            url,
            resource: resource(service_name),
            dropped,
            warned_at: None,
            failed_spans: 0,
            reported_drops: 0,
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut batch: Vec<FinishedSpan> = Vec::with_capacity(BATCH);
        let mut tick = tokio::time::interval(EXPORT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Span(s)) => {
                        batch.push(*s);
                        if batch.len() >= BATCH {
                            let _ = self.export(&mut batch).await;
                        }
                    }
                    Some(Msg::Flush(done)) => {
                        let _ = done.send(self.export(&mut batch).await);
                    }
                    None => {
                        let _ = self.export(&mut batch).await;
                        return;
                    }
                },
                _ = tick.tick() => {
                    let _ = self.export(&mut batch).await;
                    self.warn_drops();
                }
            }
        }
    }

    /// POST the batch (emptying it). A failed batch is not retried: it is counted and the
    /// failure logged at most once a minute.
    async fn export(&mut self, batch: &mut Vec<FinishedSpan>) -> Result<(), String> {
        if batch.is_empty() {
            return Ok(());
        }
        let body = export_request(&self.resource, batch);
        let n = batch.len() as u64;
        batch.clear();
        let sent = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        // The collector's URL without user info, query or fragment (they can hold a key).
        let shown = reqwest::Url::parse(&self.url).map_or_else(
            |_| "the collector".to_owned(),
            |u| {
                format!(
                    "{}://{}{}",
                    u.scheme(),
                    u.authority().rsplit('@').next().unwrap_or(""),
                    u.path()
                )
            },
        );
        let err = match sent {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("{shown} answered HTTP {}", r.status()),
            Err(e) => format!("{shown}: {}", e.without_url()),
        };
        self.failed_spans += n;
        if self.may_warn() {
            tracing::warn!(
                error = %err,
                spans_lost = self.failed_spans,
                "OTLP trace export failed (next report in a minute at the earliest)"
            );
            self.failed_spans = 0;
        }
        Err(err)
    }

    fn warn_drops(&mut self) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_drops && self.may_warn() {
            tracing::warn!(
                spans_dropped = dropped - self.reported_drops,
                "OTLP export queue full: spans dropped"
            );
            self.reported_drops = dropped;
        }
    }

    /// True at most once per `WARN_EVERY`.
    fn may_warn(&mut self) -> bool {
        let now = Instant::now();
        if self
            .warned_at
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
        {
            return false;
        }
        self.warned_at = Some(now);
        true
    }
}

fn resource(service_name: &str) -> Value {
    json!({
        "attributes": [
            kv("service.name", &AttrValue::Str(service_name.to_owned())),
            kv("service.version", &AttrValue::Str(env!("CARGO_PKG_VERSION").to_owned())),
            kv("telemetry.sdk.name", &AttrValue::Str("sluice".to_owned())),
            kv("telemetry.sdk.language", &AttrValue::Str("rust".to_owned())),
        ]
    })
}

/// The protobuf-JSON mapping of `ExportTraceServiceRequest`: ids in lowercase hex, 64-bit
/// integers (times, `intValue`) as decimal strings.
fn export_request(resource: &Value, spans: &[FinishedSpan]) -> Vec<u8> {
    let spans: Vec<Value> = spans.iter().map(span_json).collect();
    let body = json!({
        "resourceSpans": [{
            "resource": resource,
            "scopeSpans": [{
                "scope": { "name": "sluice", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans,
            }],
        }],
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn span_json(s: &FinishedSpan) -> Value {
    let st = &s.state;
    let mut attributes: Vec<Value> = st.attributes.iter().map(|(k, v)| kv(k, v)).collect();
    if st.events_dropped > 0 {
        let n = AttrValue::Int(i64::from(st.events_dropped));
        attributes.push(kv("sluice.events_dropped", &n));
    }
    let events: Vec<Value> = st
        .events
        .iter()
        .map(|e| {
            json!({
                "timeUnixNano": e.time_ns.to_string(),
                "name": e.name,
                "attributes": e.attributes.iter().map(|(k, v)| kv(k, v)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut span = json!({
        "traceId": format!("{:032x}", st.trace_id),
        "spanId": format!("{:016x}", st.span_id),
        "name": s.name,
        "kind": kind_of(s.name),
        "startTimeUnixNano": st.start_ns.to_string(),
        "endTimeUnixNano": s.end_ns.to_string(),
        "attributes": attributes,
        "events": events,
        "status": status_of(&st.attributes),
    });
    if let Some(p) = st.parent_span_id {
        span["parentSpanId"] = Value::String(format!("{p:016x}"));
    }
    span
}

/// The gateway's request span is the server side of a call; an upstream attempt the client
/// side; every other stage is internal.
fn kind_of(name: &str) -> u8 {
    match name {
        "request" => KIND_SERVER,
        "attempt" => KIND_CLIENT,
        _ => KIND_INTERNAL,
    }
}

/// A span that recorded an `error` field failed; its value is the status message.
fn status_of(attributes: &[(&'static str, AttrValue)]) -> Value {
    match attributes.iter().find(|(k, _)| *k == "error") {
        Some((_, AttrValue::Str(m))) => json!({ "code": STATUS_ERROR, "message": m }),
        Some((_, other)) => json!({ "code": STATUS_ERROR, "message": format!("{other:?}") }),
        None => json!({ "code": STATUS_UNSET }),
    }
}

fn kv(key: &str, v: &AttrValue) -> Value {
    let value = match v {
        AttrValue::Str(s) => json!({ "stringValue": s }),
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttrValue::Double(d) if d.is_finite() => json!({ "doubleValue": d }),
        AttrValue::Double(d) => json!({ "stringValue": d.to_string() }),
        AttrValue::Bool(b) => json!({ "boolValue": b }),
    };
    json!({ "key": key, "value": value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::otlp::SpanState;

    #[test]
    fn span_json_follows_the_protobuf_json_mapping() {
        let s = FinishedSpan {
            name: "attempt",
            state: SpanState {
                trace_id: 0xabc,
                span_id: 0x12,
                parent_span_id: Some(0x34),
                sampled: true,
                start_ns: 1_700_000_000_000_000_000,
                attributes: vec![
                    ("target", AttrValue::Str("oa/m".into())),
                    ("retry", AttrValue::Int(1)),
                    ("error", AttrValue::Str("HTTP 500".into())),
                ],
                events: Vec::new(),
                events_dropped: 0,
            },
            end_ns: 1_700_000_000_000_000_500,
        };
        let v = span_json(&s);
        assert_eq!(v["traceId"], "00000000000000000000000000000abc");
        assert_eq!(v["spanId"], "0000000000000012");
        assert_eq!(v["parentSpanId"], "0000000000000034");
        assert_eq!(v["kind"], KIND_CLIENT);
        assert_eq!(v["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(v["attributes"][1]["value"]["intValue"], "1");
        assert_eq!(v["status"]["code"], STATUS_ERROR);
        assert_eq!(v["status"]["message"], "HTTP 500");
    }
}
