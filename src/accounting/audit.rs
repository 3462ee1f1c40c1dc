//! The audit record: one per request, append-only in the store's audit table, keyed by
//! `(time_ms, seq)` so keys never collide (the writer's `seq` only grows, across restarts too).
//!
//! Values are a format byte followed by the bincode (serde) encoding of [`AuditRecord`]. Bincode
//! is not self-describing: a field added to the record is a new format byte, and readers keep
//! decoding the old ones. Format 1 is the record alone; format 2 appends the optional
//! [`PromptLog`] (`[accounting] log_prompts`); format 3 appends [`UsageDetail`] (cache reads and
//! writes, reasoning tokens and the parts of the cost); format 4 appends [`RequestTags`] (the API
//! the client spoke, and whether its route was in observe mode); format 5 appends
//! [`RoutingDetail`] (how the route and tier were chosen). Records of formats 1 and 2 read back
//! with an empty detail: zero cache and reasoning tokens, no cost parts; records before format 4
//! as OpenAI-API requests in gateway mode; records before format 5 with an empty routing detail.
//!
//! Feedback (`POST /v1/feedback`) is kept beside its record, under the same key
//! ([`crate::store::AUDIT_FEEDBACK`]), and attached to it when records are read; the
//! [`crate::store::AUDIT_REQUESTS`] index finds a record by its request id.
//!
//! Reading while the gateway runs: redb lets one process open the file at a time unless every
//! process uses a multi-process [`ConcurrencyMode`]. With the store opened in `SingleWriter` mode,
//! [`open_reader`] opens the same file read-only in another process (`sluice report`) and each read
//! transaction sees the writer's latest commit; against a gateway holding the file in the
//! default `ExclusiveWriter` mode the open fails with a message saying so.

use std::ops::Range;
use std::path::Path;

use redb::{ConcurrencyMode, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableError};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::cost::CostParts;
use crate::chat::TokenUsage;
use crate::outcome::Attempt;
use crate::outcome::{CacheOutcome, RouteBy, TierReason};
pub use crate::store::AUDIT_RECORDS;
use crate::store::{AUDIT_FEEDBACK, AUDIT_REQUESTS};
use crate::wire::Dialect;

/// How processes share the database: the gateway writes, `sluice report` reads concurrently.
pub const CONCURRENCY_MODE: ConcurrencyMode = ConcurrencyMode::SingleWriter;

const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
const FORMAT_V3: u8 = 3;
const FORMAT_V4: u8 = 4;
const FORMAT_V5: u8 = 5;
/// Longest feedback label kept.
pub const MAX_LABEL_BYTES: usize = 256;
/// Longest prompt or context text a prompt log keeps (a long document is kept whole up to this).
const MAX_PROMPT_BYTES: usize = 256 * 1024;
/// Raw client input kept in a record is capped (a model name is not a document).
const MAX_CLIENT_STRING: usize = 256;

/// One request as the audit sees it. Field order is the encoding: append only, and bump the
/// format byte when changing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the request arrived, unix milliseconds.
    pub time_ms: u64,
    pub request_id: String,
    /// The client key the request came with (its name in `[server] api_keys`).
    pub caller: Option<String>,
    /// Route name, `passthrough`, or `none` when the request failed before routing.
    pub route: String,
    /// The `model` the client sent (capped to 256 bytes).
    pub requested_model: String,
    /// `provider/model` that answered; `None` for cache hits and failures.
    pub target: Option<String>,
    pub attempts: Vec<AuditAttempt>,
    pub cache: CacheOutcome,
    /// Similarity of a semantic hit.
    pub similarity: Option<f32>,
    pub stream: bool,
    /// Tokens served (for a cache hit: the cached answer's usage). Input includes cache reads
    /// and writes, output includes reasoning (`detail` has those parts).
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// The provider reported no usage; the counts are Sluice's estimate.
    pub usage_estimated: bool,
    /// `None`: the answering target has no price.
    pub cost_usd: Option<f64>,
    pub cost_avoided_usd: Option<f64>,
    pub total_ms: u64,
    pub upstream_ms: Option<u64>,
    pub ttft_ms: Option<u64>,
    /// HTTP status returned to the client (200 for a stream that started, even if it failed
    /// later: then `error` is set).
    pub status: u16,
    /// `ApiError::metric_label()` of a failure.
    pub error: Option<String>,
    /// The request's text, only with `[accounting] log_prompts = true` (stored after the record,
    /// see the module doc; JSON exports add it as `prompt`).
    #[serde(skip)]
    pub prompt: Option<PromptLog>,
    /// The usage details and the cost's parts (stored after the prompt log, see the module doc;
    /// JSON exports add its fields to the record's).
    #[serde(skip)]
    pub detail: UsageDetail,
    /// The API the client spoke and the route's mode (format 4, stored after the detail, see the
    /// module doc; JSON exports add its fields to the record's).
    #[serde(skip)]
    pub tags: RequestTags,
    /// How the route and tier were chosen (format 5, stored after the tags; JSON exports add its
    /// fields to the record's).
    #[serde(skip)]
    pub routing: RoutingDetail,
    /// The client's score of the answer, when it sent one (stored apart, attached on reading).
    #[serde(skip)]
    pub feedback: Option<Feedback>,
}

/// What format 4 adds to a record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestTags {
    /// The API the client spoke (`openai`, `anthropic`).
    pub api: Dialect,
    /// The route was in observe mode: passed through untouched, nothing cached. Such records
    /// are the baseline the gateway's savings are measured against.
    pub observe: bool,
}

/// What format 5 adds: how the router decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingDetail {
    /// `None` in records before format 4.
    pub route_by: Option<RouteBy>,
    /// The auto route the client named (`auto`), when the route was chosen from the prompt.
    pub auto_route: Option<String>,
    /// The classifier's confidence (auto routes).
    pub route_confidence: Option<f32>,
    /// The tier's name.
    pub tier: Option<String>,
    pub tier_by: Option<TierReason>,
    /// The prompt's difficulty score, 0..1.
    pub difficulty: Option<f32>,
    /// (fingerprint of the route's clustering, the prompt's cluster) on a learned route.
    pub cluster: Option<(u32, u16)>,
}

/// A client's score of an answer (`POST /v1/feedback`, `x-sluice-feedback`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// 0 (useless) .. 1 (right).
    pub score: f32,
    pub label: Option<String>,
    /// When it was given, unix ms.
    pub time_ms: u64,
}

/// What format 3 adds to a record: how the input and output split, and the parts of the cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageDetail {
    /// Of `input_tokens`, read from the provider's prompt cache.
    pub cache_read_tokens: u32,
    /// Of `input_tokens`, written to the provider's prompt cache.
    pub cache_write_tokens: u32,
    /// Of `cache_write_tokens`, written for one hour.
    pub cache_write_1h_tokens: u32,
    /// Of `output_tokens`, the model's hidden reasoning.
    pub reasoning_tokens: u32,
    /// The parts of `cost_usd`; `None` when it is unknown (and in records of formats 1 and 2).
    pub cost_parts: Option<CostParts>,
}

impl UsageDetail {
    pub fn new(usage: TokenUsage, cost_parts: Option<CostParts>) -> Self {
        UsageDetail {
            cache_read_tokens: usage.cache_read,
            cache_write_tokens: usage.cache_write,
            cache_write_1h_tokens: usage.cache_write_1h,
            reasoning_tokens: usage.reasoning,
            cost_parts,
        }
    }
}

/// What `[accounting] log_prompts` keeps of a request: enough to replay real traffic through
/// the cache at other settings (`sluice audit export --format workload`, then `sluice bench
/// cache`). Off by default: prompts can hold personal or confidential data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptLog {
    /// Everything before the last user turn (system prompt, earlier turns), one message per
    /// line as `role: text`; empty for a single-turn request without a system prompt.
    pub context: String,
    /// The last user turn's text.
    pub prompt: String,
    /// First 16 hex digits of the sha256 of the answer's text (first choice), when an answer
    /// with text was served in full: requests with the same answer share it.
    pub answer: Option<String>,
}

impl PromptLog {
    /// Digest of an answer's text, as kept in [`PromptLog::answer`] (None for an empty text).
    pub fn digest(text: &str) -> Option<String> {
        Self::digest_of(sha2::Sha256::new_with_prefix(text), !text.is_empty())
    }

    /// [`Self::digest`] of text fed piecewise into `hasher` (`seen_text`: any non-empty piece).
    pub fn digest_of(hasher: sha2::Sha256, seen_text: bool) -> Option<String> {
        seen_text.then(|| hex::encode(&hasher.finalize()[..8]))
    }

    fn capped(&self) -> PromptLog {
        PromptLog {
            context: truncate(&self.context, MAX_PROMPT_BYTES).to_owned(),
            prompt: truncate(&self.prompt, MAX_PROMPT_BYTES).to_owned(),
            answer: self.answer.clone(),
        }
    }
}

/// One attempt at one target. A copy of `error::Attempt`, so that the stored format does not
/// change when the error type does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditAttempt {
    pub target: String,
    pub status: Option<u16>,
    pub outcome: String,
    pub elapsed_ms: u64,
}

impl From<&Attempt> for AuditAttempt {
    fn from(a: &Attempt) -> Self {
        AuditAttempt {
            target: a.target.clone(),
            status: a.status,
            outcome: a.outcome.to_string(),
            elapsed_ms: a.elapsed_ms,
        }
    }
}

impl AuditRecord {
    pub fn is_error(&self) -> bool {
        self.status >= 400 || self.error.is_some()
    }

    /// Group name of the answering model in reports: the target, `(cache)` for hits, `(none)`
    /// when nothing answered.
    pub fn model_group(&self) -> &str {
        match &self.target {
            Some(t) => t,
            None if self.cache.is_hit() => "(cache)",
            None => "(none)",
        }
    }

    /// The record as one JSON object (`sluice audit export`): its fields, the detail's, and
    /// `prompt` when it was logged.
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing plain data into a `Value` cannot fail.
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            if let Ok(serde_json::Value::Object(d)) = serde_json::to_value(self.detail) {
                obj.extend(d);
            }
            if let Ok(serde_json::Value::Object(t)) = serde_json::to_value(self.tags) {
                obj.extend(t);
            }
            if let Ok(serde_json::Value::Object(d)) = serde_json::to_value(&self.routing) {
                obj.extend(d);
            }
            if let Some(p) = &self.prompt {
                obj.insert("prompt".into(), serde_json::to_value(p).unwrap_or_default());
            }
            if let Some(f) = &self.feedback {
                obj.insert(
                    "feedback".into(),
                    serde_json::to_value(f).unwrap_or_default(),
                );
            }
        }
        v
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_V5];
        if self.requested_model.len() > MAX_CLIENT_STRING {
            let mut capped = self.clone();
            capped.requested_model = truncate(&self.requested_model, MAX_CLIENT_STRING).to_owned();
            encode_into(&capped, &mut out);
        } else {
            encode_into(self, &mut out);
        }
        encode_into(&self.prompt.as_ref().map(PromptLog::capped), &mut out);
        encode_into(&self.detail, &mut out);
        encode_into(&self.tags, &mut out);
        encode_into(&self.routing, &mut out);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<AuditRecord, String> {
        let config = bincode::config::standard();
        let record = |body: &[u8]| -> Result<(AuditRecord, usize), String> {
            bincode::serde::decode_from_slice(body, config).map_err(|e| e.to_string())
        };
        match bytes.split_first() {
            Some((&FORMAT_V1, body)) => record(body).map(|(r, _)| r),
            Some((&v @ FORMAT_V2..=FORMAT_V5, body)) => {
                let (mut r, mut used) = record(body)?;
                let (prompt, more) = bincode::serde::decode_from_slice(&body[used..], config)
                    .map_err(|e| e.to_string())?;
                r.prompt = prompt;
                used += more;
                if v >= FORMAT_V3 {
                    let (detail, more) = bincode::serde::decode_from_slice(&body[used..], config)
                        .map_err(|e| e.to_string())?;
                    r.detail = detail;
                    used += more;
                }
                if v >= FORMAT_V4 {
                    let (tags, more) = bincode::serde::decode_from_slice(&body[used..], config)
                        .map_err(|e| e.to_string())?;
                    r.tags = tags;
                    used += more;
                }
                if v >= FORMAT_V5 {
                    let (routing, _) = bincode::serde::decode_from_slice(&body[used..], config)
                        .map_err(|e| e.to_string())?;
                    r.routing = routing;
                }
                Ok(r)
            }
            Some((v, _)) => Err(format!("unknown audit record format {v}")),
            None => Err("empty audit record".into()),
        }
    }
}

fn encode_into(value: &impl Serialize, out: &mut Vec<u8>) {
    // Encoding plain data into a Vec cannot fail.
    let _ = bincode::serde::encode_into_std_write(value, out, bincode::config::standard());
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("no audit store at {0} (has the gateway run with this data directory?)")]
    Missing(String),
    #[error(
        "{0} is held exclusively by a running gateway; it must open the store in redb's \
         SingleWriter mode for `sluice report` to read it meanwhile"
    )]
    Locked(String),
    #[error("audit store {path}: {detail}")]
    Db { path: String, detail: String },
    #[error("audit record {key:?} is unreadable: {detail}")]
    Record { key: (u64, u64), detail: String },
    #[error("the audit writer has stopped")]
    WriterGone,
    /// The store is out of service after a storage fault (it reopens by itself).
    #[error("the audit store is out of service: {0}")]
    Unavailable(String),
    #[error("the audit is disabled ([accounting] enabled = false): there is no record to rate")]
    Disabled,
}

/// Open the database file read-only, alongside a running gateway (see the module doc).
pub fn open_reader(path: &Path) -> Result<ReadOnlyDatabase, AuditError> {
    let shown = path.display().to_string();
    if !path.exists() {
        return Err(AuditError::Missing(shown));
    }
    redb::Builder::new()
        .set_concurrency_mode(CONCURRENCY_MODE)
        .set_cache_size(16 * 1024 * 1024)
        .open_read_only(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => AuditError::Locked(shown),
            other => AuditError::Db {
                path: shown,
                detail: other.to_string(),
            },
        })
}

/// Records with `time_ms` in `window`, oldest first, from one consistent snapshot. Works on the
/// gateway's own `Database` and on a [`ReadOnlyDatabase`] alike.
pub fn read(
    db: &impl ReadableDatabase,
    window: Range<u64>,
) -> Result<impl Iterator<Item = Result<AuditRecord, AuditError>>, AuditError> {
    let db_err = |e: &dyn std::fmt::Display| AuditError::Db {
        path: "(open)".into(),
        detail: e.to_string(),
    };
    let txn = db.begin_read().map_err(|e| db_err(&e))?;
    let table = match txn.open_table(AUDIT_RECORDS) {
        Ok(t) => Some(t),
        Err(TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(db_err(&e)),
    };
    let range = match &table {
        Some(t) if window.start < window.end => Some(
            t.range((window.start, 0)..(window.end, 0))
                .map_err(|e| db_err(&e))?,
        ),
        _ => None,
    };
    // Feedback has the same keys: walk both in step (a merge join, no lookup per record).
    let fb_table = match txn.open_table(AUDIT_FEEDBACK) {
        Ok(t) => Some(t),
        Err(TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(db_err(&e)),
    };
    let mut feedback = match &fb_table {
        Some(t) if window.start < window.end => Some(
            t.range((window.start, 0)..(window.end, 0))
                .map_err(|e| db_err(&e))?,
        ),
        _ => None,
    }
    .into_iter()
    .flatten()
    .filter_map(Result::ok)
    .map(|(k, v)| (k.value(), v.value().to_vec()))
    .peekable();
    Ok(range.into_iter().flatten().map(move |row| {
        let (k, v) = row.map_err(|e| db_err(&e))?;
        let key = k.value();
        let mut r =
            AuditRecord::decode(v.value()).map_err(|detail| AuditError::Record { key, detail })?;
        while feedback.peek().is_some_and(|(fk, _)| *fk < key) {
            feedback.next();
        }
        if feedback.peek().is_some_and(|(fk, _)| *fk == key) {
            if let Some((_, bytes)) = feedback.next() {
                r.feedback = crate::store::decode(&bytes).ok();
            }
        }
        Ok(r)
    }))
}

/// An audit record's key: (unix ms, seq).
pub type RecordKey = (u64, u64);

/// The record of `request_id` (its latest, if the id was reused), its key and its feedback.
pub fn find(
    db: &impl ReadableDatabase,
    request_id: &str,
) -> Result<Option<(RecordKey, AuditRecord)>, AuditError> {
    let db_err = |e: &dyn std::fmt::Display| AuditError::Db {
        path: "(open)".into(),
        detail: e.to_string(),
    };
    let txn = db.begin_read().map_err(|e| db_err(&e))?;
    let key = match txn.open_table(AUDIT_REQUESTS) {
        Ok(t) => t
            .get(request_id)
            .map_err(|e| db_err(&e))?
            .map(|v| v.value()),
        Err(TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(db_err(&e)),
    };
    let Some(key) = key else { return Ok(None) };
    let records = txn.open_table(AUDIT_RECORDS).map_err(|e| db_err(&e))?;
    let Some(bytes) = records.get(key).map_err(|e| db_err(&e))? else {
        return Ok(None); // pruned since
    };
    let mut r =
        AuditRecord::decode(bytes.value()).map_err(|detail| AuditError::Record { key, detail })?;
    r.feedback = match txn.open_table(AUDIT_FEEDBACK) {
        Ok(t) => t
            .get(key)
            .map_err(|e| db_err(&e))?
            .and_then(|v| crate::store::decode(v.value()).ok()),
        Err(TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(db_err(&e)),
    };
    Ok(Some((key, r)))
}

/// Every record that has feedback, with it, oldest first (teaching the learned policies again
/// at startup: the store is their source of truth).
pub fn rated(db: &impl ReadableDatabase) -> Result<Vec<AuditRecord>, AuditError> {
    let db_err = |e: &dyn std::fmt::Display| AuditError::Db {
        path: "(open)".into(),
        detail: e.to_string(),
    };
    let txn = db.begin_read().map_err(|e| db_err(&e))?;
    let fb = match txn.open_table(AUDIT_FEEDBACK) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(db_err(&e)),
    };
    let records = txn.open_table(AUDIT_RECORDS).map_err(|e| db_err(&e))?;
    let mut out = Vec::new();
    for row in fb.iter().map_err(|e| db_err(&e))? {
        let (k, v) = row.map_err(|e| db_err(&e))?;
        let key = k.value();
        let Some(bytes) = records.get(key).map_err(|e| db_err(&e))? else {
            continue;
        };
        let Ok(mut r) = AuditRecord::decode(bytes.value()) else {
            continue;
        };
        r.feedback = crate::store::decode(v.value()).ok();
        out.push(r);
    }
    Ok(out)
}

/// Up to `per_route` of the latest logged prompts that services sent to each route *by name*
/// (answered, not chosen by an auto route), newest first, reading at most `max_records`
/// records back: what auto routing learns from (`[routing] learn_from_prompt_log`). Records
/// before format 4 count as named when their requested model is the route.
pub fn named_prompts(
    db: &impl ReadableDatabase,
    per_route: usize,
    max_records: usize,
) -> Result<std::collections::BTreeMap<String, Vec<String>>, AuditError> {
    let db_err = |e: &dyn std::fmt::Display| AuditError::Db {
        path: "(open)".into(),
        detail: e.to_string(),
    };
    let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let txn = db.begin_read().map_err(|e| db_err(&e))?;
    let t = match txn.open_table(AUDIT_RECORDS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(out),
        Err(e) => return Err(db_err(&e)),
    };
    for row in t.iter().map_err(|e| db_err(&e))?.rev().take(max_records) {
        let (_, v) = row.map_err(|e| db_err(&e))?;
        let Ok(r) = AuditRecord::decode(v.value()) else {
            continue;
        };
        let named = match r.routing.route_by {
            Some(by) => matches!(by, RouteBy::Named | RouteBy::Header),
            None => r.requested_model == r.route,
        };
        if !named || r.is_error() {
            continue;
        }
        let Some(p) = r.prompt else { continue };
        if p.prompt.trim().is_empty() {
            continue;
        }
        let list = out.entry(r.route).or_default();
        if list.len() < per_route {
            list.push(p.prompt);
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(time_ms: u64) -> AuditRecord {
        AuditRecord {
            time_ms,
            request_id: format!("req_{time_ms}"),
            caller: None,
            route: "chat".into(),
            requested_model: "chat".into(),
            target: Some("openai/gpt-4o-mini".into()),
            attempts: vec![AuditAttempt {
                target: "openai/gpt-4o-mini".into(),
                status: Some(200),
                outcome: "ok".into(),
                elapsed_ms: 12,
            }],
            cache: CacheOutcome::Miss,
            similarity: None,
            stream: false,
            input_tokens: 100,
            output_tokens: 20,
            usage_estimated: false,
            cost_usd: Some(0.000027),
            cost_avoided_usd: Some(0.0),
            total_ms: 15,
            upstream_ms: Some(12),
            ttft_ms: None,
            status: 200,
            error: None,
            prompt: None,
            detail: UsageDetail::default(),
            tags: RequestTags::default(),
            routing: RoutingDetail::default(),
            feedback: None,
        }
    }

    #[test]
    fn format_1_and_2_records_still_decode_and_prompt_logs_round_trip() {
        let r = record(2);
        let mut v1 = vec![FORMAT_V1];
        encode_into(&r, &mut v1);
        assert_eq!(AuditRecord::decode(&v1).unwrap(), r);
        let mut r2 = record(4);
        r2.prompt = Some(PromptLog {
            context: String::new(),
            prompt: "hi".into(),
            answer: None,
        });
        let mut v2 = vec![FORMAT_V2];
        encode_into(&r2, &mut v2);
        encode_into(&r2.prompt, &mut v2);
        assert_eq!(AuditRecord::decode(&v2).unwrap(), r2);

        let mut r = record(3);
        r.prompt = Some(PromptLog {
            context: "system: Be brief.".into(),
            prompt: "x".repeat(MAX_PROMPT_BYTES + 10),
            answer: PromptLog::digest("Paris."),
        });
        let back = AuditRecord::decode(&r.encode()).unwrap();
        let log = back.prompt.expect("kept");
        assert_eq!(log.context, "system: Be brief.");
        assert_eq!(log.prompt.len(), MAX_PROMPT_BYTES);
        assert_eq!(log.answer.as_deref().map(str::len), Some(16));
        assert_eq!(PromptLog::digest("Paris."), PromptLog::digest("Paris."));
        assert_ne!(PromptLog::digest("Paris."), PromptLog::digest("Lyon."));
        assert_eq!(PromptLog::digest(""), None);
    }

    #[test]
    fn records_round_trip_and_cap_client_strings() {
        let mut r = record(1);
        r.similarity = Some(0.93);
        r.cache = CacheOutcome::HitSemantic;
        assert_eq!(AuditRecord::decode(&r.encode()).unwrap(), r);
        r.detail = UsageDetail {
            cache_read_tokens: 60,
            cache_write_tokens: 30,
            cache_write_1h_tokens: 10,
            reasoning_tokens: 5,
            cost_parts: Some(CostParts {
                input_usd: 1e-6,
                cache_read_usd: 2e-7,
                cache_write_usd: 3e-6,
                output_usd: 4e-6,
                provider_cache_saved_usd: -5e-7,
            }),
        };
        r.prompt = Some(PromptLog {
            context: "system: x".into(),
            prompt: "y".into(),
            answer: None,
        });
        assert_eq!(AuditRecord::decode(&r.encode()).unwrap(), r);
        let json = r.to_json();
        assert_eq!(json["cache_read_tokens"], 60);
        assert_eq!(json["cost_parts"]["provider_cache_saved_usd"], -5e-7);
        assert_eq!(json["prompt"]["prompt"], "y");
        r.prompt = None;
        r.requested_model = "é".repeat(300);
        let back = AuditRecord::decode(&r.encode()).unwrap();
        assert!(back.requested_model.len() <= MAX_CLIENT_STRING);
        assert!(AuditRecord::decode(&[9, 1, 2])
            .unwrap_err()
            .contains("format 9"));
        let json = serde_json::to_value(&back).unwrap();
        assert_eq!(json["cache"], "hit-semantic");

        // Format 3 (before the tags) still reads, as an OpenAI request in gateway mode.
        let mut v3 = vec![FORMAT_V3];
        encode_into(&back, &mut v3);
        encode_into(&back.prompt, &mut v3);
        encode_into(&back.detail, &mut v3);
        assert_eq!(AuditRecord::decode(&v3).unwrap(), back);
        r.tags = RequestTags {
            api: Dialect::Anthropic,
            observe: true,
        };
        let back = AuditRecord::decode(&r.encode()).unwrap();
        assert_eq!(back.tags, r.tags);
        assert_eq!(back.to_json()["api"], "anthropic");
        assert_eq!(back.to_json()["observe"], true);

        // Format 4 (tags, before the routing detail) reads with an empty routing detail.
        let mut v4 = vec![FORMAT_V4];
        encode_into(&back, &mut v4);
        encode_into(&back.prompt, &mut v4);
        encode_into(&back.detail, &mut v4);
        encode_into(&back.tags, &mut v4);
        assert_eq!(AuditRecord::decode(&v4).unwrap(), back);
        r.routing = RoutingDetail {
            route_by: Some(RouteBy::Auto),
            auto_route: Some("auto".into()),
            route_confidence: Some(0.8),
            tier: Some("cheap".into()),
            tier_by: Some(TierReason::Difficulty),
            difficulty: Some(0.25),
            cluster: Some((7, 3)),
        };
        let back = AuditRecord::decode(&r.encode()).unwrap();
        assert_eq!(back.routing, r.routing);
        assert_eq!(back.tags, r.tags);
        assert_eq!(back.to_json()["route_confidence"], 0.8f32 as f64);
    }

    #[test]
    fn attempts_are_copied_from_the_error_type() {
        let a = Attempt {
            target: "a/b".into(),
            status: Some(503),
            outcome: crate::outcome::Outcome::Failed {
                class: crate::outcome::FailureClass::Retryable,
                detail: "HTTP 503".into(),
            },
            elapsed_ms: 7,
        };
        let c = AuditAttempt::from(&a);
        assert_eq!(
            (
                c.target.as_str(),
                c.status,
                c.outcome.as_str(),
                c.elapsed_ms
            ),
            ("a/b", Some(503), "HTTP 503", 7)
        );
    }
}
