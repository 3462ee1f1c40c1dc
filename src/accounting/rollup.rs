//! Rollups of the audit records: their figures per minute, 10 minutes, hour and day, kept by the
//! audit writer in the same transaction as the records themselves, so the dashboard reads a few
//! thousand small rows per page, never the ledger (whatever its size).
//!
//! Rows are `(resolution, bucket start ms, series) -> Rollup` ([`AUDIT_ROLLUPS`]), buckets
//! aligned to UTC. A series is one of
//! - `r<US>route<US>answered by<US>api<US>mode`: requests by route, by what answered them (the
//!   target, `(cache)` or `(none)`), by the API the client spoke and by the route's mode
//!   (`gateway`, `observe`);
//! - `t<US>target`: the upstream attempts made at a target;
//!
//! (`<US>` the ASCII unit separator, which no route or target name holds.) Minute rows are kept
//! two days, 10-minute rows two weeks, hour and day rows as long as the records
//! (`retention_days`). The latest requests that moved from one target to another are kept apart
//! ([`AUDIT_FAILOVERS`], at most [`MAX_FAILOVERS`]).
//!
//! `rollup_seq` in the audit meta table says up to which record sequence number the rollups
//! count; when it differs from the records' own (a store written before rollups existed), the
//! writer rebuilds them from the ledger once, at open.

use std::collections::HashMap;

use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::audit::AuditRecord;
use crate::outcome::CacheOutcome;
pub use crate::store::{AUDIT_FAILOVERS, AUDIT_ROLLUPS};

/// Separates the parts of a series name.
pub const SEP: char = '\u{1f}';
/// Failover events kept; the table is trimmed to this many when it holds 2x as many.
pub const MAX_FAILOVERS: u64 = 500;

/// One bucket size, and how long its rows are kept (`None`: as long as the records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolution {
    pub id: u8,
    pub step_ms: u64,
    pub name: &'static str,
    pub keep_ms: Option<u64>,
}

const MINUTE: u64 = 60_000;
const DAY: u64 = 24 * 60 * MINUTE;

pub const RESOLUTIONS: [Resolution; 4] = [
    Resolution {
        id: 0,
        step_ms: MINUTE,
        name: "1m",
        keep_ms: Some(2 * DAY),
    },
    Resolution {
        id: 1,
        step_ms: 10 * MINUTE,
        name: "10m",
        keep_ms: Some(14 * DAY),
    },
    Resolution {
        id: 2,
        step_ms: 60 * MINUTE,
        name: "1h",
        keep_ms: None,
    },
    Resolution {
        id: 3,
        step_ms: DAY,
        name: "1d",
        keep_ms: None,
    },
];

/// The day rows, which the all-time baseline reads.
pub const DAYS: Resolution = RESOLUTIONS[3];

/// The figures of one series in one bucket. Field order is the encoding: append only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub requests: u64,
    /// Status >= 400, or an error after a stream started.
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Tokens of the requests whose cost is known (the blended cost's denominator).
    pub priced_tokens: u64,
    /// Requests whose cost is unknown (no price).
    pub unpriced: u64,
    pub spend_usd: f64,
    pub avoided_usd: f64,
    /// Of `avoided_usd`, what cache hits avoided.
    pub hit_avoided_usd: f64,
    pub hits_exact: u64,
    pub hits_semantic: u64,
    pub misses: u64,
    /// Input tokens the providers read from their prompt caches.
    pub cache_read_tokens: u64,
    pub provider_saved_usd: f64,
    /// Requests that moved to another target after a failed attempt.
    pub failovers: u64,
    /// Total latency of the requests.
    pub latency: Histogram,
    /// `t` series: attempts at the target, those that failed, and the requests that then
    /// moved on to another target.
    pub attempts: u64,
    pub attempt_failures: u64,
    pub failed_over_from: u64,
}

impl Rollup {
    fn add_request(&mut self, r: &AuditRecord, failover: bool) {
        let tokens = u64::from(r.input_tokens) + u64::from(r.output_tokens);
        self.requests += 1;
        self.errors += u64::from(r.is_error());
        self.input_tokens += u64::from(r.input_tokens);
        self.output_tokens += u64::from(r.output_tokens);
        match r.cost_usd {
            Some(c) => {
                self.spend_usd += c;
                self.priced_tokens += tokens;
            }
            None => self.unpriced += 1,
        }
        let avoided = r.cost_avoided_usd.unwrap_or(0.0);
        self.avoided_usd += avoided;
        match r.cache {
            CacheOutcome::HitExact => self.hits_exact += 1,
            CacheOutcome::HitSemantic => self.hits_semantic += 1,
            CacheOutcome::Miss => self.misses += 1,
            CacheOutcome::Bypass | CacheOutcome::Off => {}
        }
        if r.cache.is_hit() {
            self.hit_avoided_usd += avoided;
        } else if r.target.is_some() {
            self.cache_read_tokens += u64::from(r.detail.cache_read_tokens);
            self.provider_saved_usd += r
                .detail
                .cost_parts
                .map_or(0.0, |p| p.provider_cache_saved_usd);
        }
        self.failovers += u64::from(failover);
        self.latency.add(r.total_ms);
    }

    pub fn merge(&mut self, o: &Rollup) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.priced_tokens += o.priced_tokens;
        self.unpriced += o.unpriced;
        self.spend_usd += o.spend_usd;
        self.avoided_usd += o.avoided_usd;
        self.hit_avoided_usd += o.hit_avoided_usd;
        self.hits_exact += o.hits_exact;
        self.hits_semantic += o.hits_semantic;
        self.misses += o.misses;
        self.cache_read_tokens += o.cache_read_tokens;
        self.provider_saved_usd += o.provider_saved_usd;
        self.failovers += o.failovers;
        self.latency.merge(&o.latency);
        self.attempts += o.attempts;
        self.attempt_failures += o.attempt_failures;
        self.failed_over_from += o.failed_over_from;
    }

    pub fn hits(&self) -> u64 {
        self.hits_exact + self.hits_semantic
    }

    pub fn lookups(&self) -> u64 {
        self.hits() + self.misses
    }

    pub fn encode(&self) -> Vec<u8> {
        crate::store::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Rollup, String> {
        crate::store::decode(bytes)
    }
}

/// Latency histogram: four buckets per doubling (bucket `b >= 1` holds [2^((b-1)/4), 2^(b/4))
/// ms, bucket 0 holds 0 ms), stored sparse. A percentile is read to within a bucket's width
/// (19%), interpolated inside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram(Vec<(u8, u64)>);

impl Histogram {
    fn bucket(ms: u64) -> u8 {
        if ms == 0 {
            return 0;
        }
        let b = (4.0 * (ms as f64).log2()).floor() as u64 + 1;
        b.min(u64::from(u8::MAX)) as u8
    }

    pub fn add(&mut self, ms: u64) {
        self.add_n(Self::bucket(ms), 1);
    }

    fn add_n(&mut self, b: u8, n: u64) {
        match self.0.binary_search_by_key(&b, |(k, _)| *k) {
            Ok(i) => self.0[i].1 += n,
            Err(i) => self.0.insert(i, (b, n)),
        }
    }

    /// Adds `o`'s counts: one linear pass over both sorted lists.
    pub fn merge(&mut self, o: &Histogram) {
        if o.0
            .iter()
            .all(|(b, _)| self.0.binary_search_by_key(b, |(k, _)| *k).is_ok())
        {
            // The usual case (the same latencies again): counts added in place.
            let mut i = 0;
            for &(b, n) in &o.0 {
                while self.0[i].0 != b {
                    i += 1;
                }
                self.0[i].1 += n;
            }
            return;
        }
        let (x, y) = (&self.0, &o.0);
        let mut out = Vec::with_capacity(x.len() + y.len());
        let (mut i, mut j) = (0, 0);
        loop {
            match (x.get(i), y.get(j)) {
                (Some(&(k, n)), Some(&(l, m))) if k == l => {
                    out.push((k, n + m));
                    i += 1;
                    j += 1;
                }
                (Some(&p), Some(&q)) if p.0 < q.0 => {
                    out.push(p);
                    i += 1;
                }
                (_, Some(&q)) => {
                    out.push(q);
                    j += 1;
                }
                (Some(&p), None) => {
                    out.push(p);
                    i += 1;
                }
                (None, None) => break,
            }
        }
        self.0 = out;
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    /// The `p`-th percentile (0 < p <= 100) in ms, nearest rank, interpolated in its bucket.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((p / 100.0 * total as f64).ceil() as u64).clamp(1, total);
        let mut before = 0;
        for &(b, n) in &self.0 {
            if before + n >= rank {
                if b == 0 {
                    return Some(0.0);
                }
                let lower = 2f64.powf(f64::from(b - 1) / 4.0);
                let upper = 2f64.powf(f64::from(b) / 4.0);
                let at = (rank - before) as f64 - 0.5;
                return Some(lower * (upper / lower).powf(at / n as f64));
            }
            before += n;
        }
        None
    }
}

/// A request that moved from one target to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverEvent {
    pub request_id: String,
    pub route: String,
    /// Each target tried, in order, with the outcome of its last attempt there.
    pub tried: Vec<(String, String)>,
    /// The target that answered, if any.
    pub answered_by: Option<String>,
    pub status: u16,
}

/// A series name: `r`, route, answered by, API, mode.
pub fn request_series(r: &AuditRecord) -> String {
    let mode = if r.tags.observe { "observe" } else { "gateway" };
    format!(
        "r{SEP}{}{SEP}{}{SEP}{}{SEP}{mode}",
        r.route,
        r.model_group(),
        r.tags.api.as_str()
    )
}

fn target_series(target: &str) -> String {
    format!("t{SEP}{target}")
}

/// What a series name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series<'a> {
    Requests {
        route: &'a str,
        answered_by: &'a str,
        api: &'a str,
        observe: bool,
    },
    Target(&'a str),
}

impl<'a> Series<'a> {
    pub fn parse(name: &'a str) -> Option<Series<'a>> {
        let mut parts = name.split(SEP);
        match parts.next()? {
            "r" => {
                let route = parts.next()?;
                let answered_by = parts.next()?;
                let api = parts.next()?;
                let observe = parts.next()? == "observe";
                Some(Series::Requests {
                    route,
                    answered_by,
                    api,
                    observe,
                })
            }
            "t" => Some(Series::Target(parts.next()?)),
            _ => None,
        }
    }
}

/// Rollups of a batch of records, before they are added to the stored rows.
#[derive(Default)]
pub struct Pending {
    rows: HashMap<(u8, u64, String), Rollup>,
    failovers: Vec<((u64, u64), FailoverEvent)>,
}

impl Pending {
    /// Adds record `r`, stored under sequence number `seq`.
    pub fn add(&mut self, r: &AuditRecord, seq: u64) {
        // The targets tried, in order, each with its last attempt's outcome.
        let mut tried: Vec<(&str, &str)> = Vec::new();
        for a in &r.attempts {
            match tried.iter_mut().find(|(t, _)| *t == a.target) {
                Some(t) => t.1 = &a.outcome,
                None => tried.push((&a.target, &a.outcome)),
            }
        }
        let failover = tried.len() > 1;
        let series = request_series(r);
        // Per target tried: (series, attempts, failed attempts, left for another target).
        let per_target: Vec<(String, u64, u64, u64)> = tried
            .iter()
            .enumerate()
            .map(|(i, (t, _))| {
                let at = r.attempts.iter().filter(|a| a.target == *t);
                let failures = at.clone().filter(|a| !a.outcome.starts_with("ok")).count();
                let left = u64::from(i + 1 < tried.len());
                (target_series(t), at.count() as u64, failures as u64, left)
            })
            .collect();
        for res in &RESOLUTIONS {
            let bucket = r.time_ms - r.time_ms % res.step_ms;
            self.rows
                .entry((res.id, bucket, series.clone()))
                .or_default()
                .add_request(r, failover);
            for (name, attempts, failures, left) in &per_target {
                let row = self.rows.entry((res.id, bucket, name.clone())).or_default();
                row.attempts += attempts;
                row.attempt_failures += failures;
                row.failed_over_from += left;
            }
        }
        if failover {
            let event = FailoverEvent {
                request_id: r.request_id.clone(),
                route: r.route.clone(),
                tried: tried
                    .iter()
                    .map(|(t, o)| ((*t).to_owned(), (*o).to_owned()))
                    .collect(),
                answered_by: r.target.clone(),
                status: r.status,
            };
            self.failovers.push(((r.time_ms, seq), event));
            // A rebuild adds every record: keep only what the table keeps.
            if self.failovers.len() as u64 >= 4 * MAX_FAILOVERS {
                self.failovers.drain(..(2 * MAX_FAILOVERS) as usize);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.failovers.is_empty()
    }

    /// Adds the batch to the stored rows, in the caller's transaction.
    pub fn write(self, w: &WriteTransaction) -> Result<(), redb::Error> {
        let mut rows = w.open_table(AUDIT_ROLLUPS)?;
        for ((res, bucket, series), mut roll) in self.rows {
            let key = (res, bucket, series.as_str());
            if let Some(old) = rows.get(key)? {
                // A row that does not decode (it never should) is replaced, not kept failing.
                if let Ok(old) = Rollup::decode(old.value()) {
                    roll.merge(&old);
                }
            }
            rows.insert(key, roll.encode().as_slice())?;
        }
        if self.failovers.is_empty() {
            return Ok(());
        }
        let mut events = w.open_table(AUDIT_FAILOVERS)?;
        for (key, e) in &self.failovers {
            events.insert(key, crate::store::encode(e).as_slice())?;
        }
        if events.len()? >= 2 * MAX_FAILOVERS {
            let mut drop = events.len()? - MAX_FAILOVERS;
            events.retain(|_, _| {
                let keep = drop == 0;
                drop = drop.saturating_sub(1);
                keep
            })?;
        }
        Ok(())
    }
}

/// Deletes rows older than each resolution keeps them (`retention_ms` for the hour and day
/// rows; 0 keeps them).
pub fn prune(w: &WriteTransaction, now_ms: u64, retention_ms: u64) -> Result<(), redb::Error> {
    let mut rows = w.open_table(AUDIT_ROLLUPS)?;
    for res in &RESOLUTIONS {
        let keep = match res.keep_ms {
            Some(k) => k,
            None if retention_ms == 0 => continue,
            None => retention_ms,
        };
        let cutoff = now_ms.saturating_sub(keep);
        rows.retain_in::<(u8, u64, &str), _>((res.id, 0, "")..(res.id, cutoff, ""), |_, _| false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_are_within_a_bucket() {
        let mut h = Histogram::default();
        for ms in 1..=1000 {
            h.add(ms);
        }
        for (p, want) in [(50.0, 500.0), (95.0, 950.0), (99.0, 990.0)] {
            let got = h.percentile(p).unwrap();
            assert!((got / want - 1.0).abs() < 0.19, "p{p}: {got} vs {want}");
        }
        let mut other = Histogram::default();
        other.add(0);
        other.add(5000);
        other.merge(&h);
        assert_eq!(other.count(), 1002);
        assert!(
            other.0.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no duplicates"
        );
        let mut twice = h.clone();
        twice.merge(&h);
        assert_eq!(twice.count(), 2000);
        assert_eq!(twice.0.len(), h.0.len());
        assert_eq!(other.percentile(0.01), Some(0.0));
        assert_eq!(Histogram::default().percentile(50.0), None);
        assert_eq!(Histogram::bucket(u64::MAX), u8::MAX);
    }

    #[test]
    fn series_names_parse_back() {
        let mut r = crate::accounting::audit::tests::record(1);
        r.tags.observe = true;
        let name = request_series(&r);
        assert_eq!(
            Series::parse(&name),
            Some(Series::Requests {
                route: "chat",
                answered_by: "openai/gpt-4o-mini",
                api: "openai",
                observe: true
            })
        );
        assert_eq!(
            Series::parse(&target_series("an/b")),
            Some(Series::Target("an/b"))
        );
        assert_eq!(Series::parse("x"), None);
    }
}
