//! The dashboard's figures over a window, read from the rollups (`rollup`), never the ledger:
//! the rows of the window's buckets at the finest resolution that gives at most
//! [`MAX_BUCKETS`] of them, plus the daily rows of observe-mode traffic for the baseline.
//!
//! Definitions, as `sluice report` has them: blended cost per 1M tokens = spend / tokens of the
//! requests with a known cost x 1e6 (a cache hit counts the tokens it served at $0); hit rate =
//! hits / (hits + misses); latency percentiles from the rollups' histograms (within 19%).
//! **Now vs baseline**: "now" is the blended cost of the window's gateway-mode traffic, the
//! baseline that of every observe-mode request still in the store (the traffic as it was before
//! Sluice routed and cached it).

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTable, TableError};
use serde::Serialize;

use super::audit::AuditError;
use super::rollup::{
    FailoverEvent, Resolution, Rollup, Series, AUDIT_FAILOVERS, AUDIT_ROLLUPS, DAYS, RESOLUTIONS,
};

/// A window is drawn with at most this many buckets: up to 6 h 40 min in minutes, 2.7 days in
/// 10 minutes, 16 days in hours, longer in days.
pub const MAX_BUCKETS: u64 = 400;

/// `[since, until)` in unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since_ms: u64,
    pub until_ms: u64,
}

impl Window {
    /// The last `span_ms` before `now_ms`.
    pub fn last(span_ms: u64, now_ms: u64) -> Window {
        Window {
            since_ms: now_ms.saturating_sub(span_ms),
            until_ms: now_ms,
        }
    }

    /// The finest resolution that draws the window in at most [`MAX_BUCKETS`] buckets and still
    /// keeps rows for its start.
    pub fn resolution(&self, now_ms: u64) -> Resolution {
        let span = self.until_ms.saturating_sub(self.since_ms).max(1);
        RESOLUTIONS
            .iter()
            .copied()
            .find(|r| {
                span.div_ceil(r.step_ms) <= MAX_BUCKETS
                    && r.keep_ms
                        .is_none_or(|k| self.since_ms >= now_ms.saturating_sub(k))
            })
            .unwrap_or(DAYS)
    }
}

/// The figures of a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: Option<f64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub spend_usd: f64,
    /// Requests without a price: left out of spend and blended cost.
    pub unpriced: u64,
    pub blended_usd_per_mtok: Option<f64>,
    pub cost_avoided_usd: f64,
    /// Of the cost avoided, by Sluice's cache hits; the rest by routing to cheaper tiers.
    pub cache_hit_saved_usd: f64,
    pub routing_saved_usd: f64,
    pub hits_exact: u64,
    pub hits_semantic: u64,
    pub lookups: u64,
    pub hit_rate: Option<f64>,
    pub provider_cache_saved_usd: f64,
    /// Requests that moved to another target after a failure.
    pub failovers: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

impl Figures {
    pub fn of(r: &Rollup) -> Figures {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        Figures {
            requests: r.requests,
            errors: r.errors,
            error_rate: ratio(r.errors, r.requests),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            spend_usd: r.spend_usd,
            unpriced: r.unpriced,
            blended_usd_per_mtok: blended(r),
            cost_avoided_usd: r.avoided_usd,
            cache_hit_saved_usd: r.hit_avoided_usd,
            routing_saved_usd: r.avoided_usd - r.hit_avoided_usd,
            hits_exact: r.hits_exact,
            hits_semantic: r.hits_semantic,
            lookups: r.lookups(),
            hit_rate: ratio(r.hits(), r.lookups()),
            provider_cache_saved_usd: r.provider_saved_usd,
            failovers: r.failovers,
            latency_p50_ms: r.latency.percentile(50.0),
            latency_p95_ms: r.latency.percentile(95.0),
            latency_p99_ms: r.latency.percentile(99.0),
        }
    }
}

fn blended(r: &Rollup) -> Option<f64> {
    (r.priced_tokens > 0).then(|| r.spend_usd / r.priced_tokens as f64 * 1e6)
}

/// One bucket of the window, all traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Point {
    /// Bucket start, unix ms.
    pub t: u64,
    pub requests: u64,
    pub errors: u64,
    pub spend_usd: f64,
    pub cost_avoided_usd: f64,
    pub hits_exact: u64,
    pub hits_semantic: u64,
    pub lookups: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

/// A route's cache lookups in one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct HitPoint {
    pub hits_exact: u64,
    pub hits_semantic: u64,
    pub lookups: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteView {
    pub route: String,
    #[serde(flatten)]
    pub figures: Figures,
    /// Requests by what answered them (a target, `(cache)`, `(none)`).
    pub answered_by: Vec<Share>,
    /// Cache lookups per bucket of the window.
    pub hits: Vec<HitPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub spend_usd: f64,
}

/// A target's attempts and answers in the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TargetView {
    pub target: String,
    /// Requests it answered.
    pub answered: u64,
    pub spend_usd: f64,
    pub attempts: u64,
    pub attempt_failures: u64,
    /// Requests that failed here and moved on to another target.
    pub failed_over_from: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

/// Blended cost now against the observe-mode baseline.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Blended {
    /// The window's gateway-mode traffic.
    pub now_usd_per_mtok: Option<f64>,
    pub now_requests: u64,
    /// Every observe-mode request in the store.
    pub baseline_usd_per_mtok: Option<f64>,
    pub baseline_requests: u64,
    /// `now / baseline - 1` (negative: cheaper than before).
    pub change: Option<f64>,
}

/// Everything the dashboard shows of a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    pub since_ms: u64,
    pub until_ms: u64,
    /// Bucket size and its name (`1m`, `10m`, `1h`, `1d`).
    pub step_ms: u64,
    pub resolution: &'static str,
    /// Rollup rows read to build the view.
    pub rows_read: u64,
    pub total: Figures,
    pub blended: Blended,
    pub points: Vec<Point>,
    pub routes: Vec<RouteView>,
    pub targets: Vec<TargetView>,
    /// Requests by the API the client spoke.
    pub apis: BTreeMap<String, u64>,
}

#[derive(Default)]
struct RouteAcc {
    all: Rollup,
    /// Counts only: shares need no latency.
    by: BTreeMap<String, (u64, u64, f64)>,
    hits: Vec<HitPoint>,
}

type Rows = redb::ReadOnlyTable<(u8, u64, &'static str), &'static [u8]>;

/// Reads the window's rows (and the baseline's) and builds the view.
pub fn view(db: &impl ReadableDatabase, w: Window, now_ms: u64) -> Result<View, AuditError> {
    let txn = db.begin_read().map_err(db_err)?;
    let table = match txn.open_table(AUDIT_ROLLUPS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(empty_view(w, now_ms)),
        Err(e) => return Err(db_err(e)),
    };
    let mut acc = Acc::new(w, now_ms);
    let range = (acc.res.id, acc.start, "")..(acc.res.id, w.until_ms.saturating_add(1), "");
    for row in table.range(range).map_err(db_err)? {
        let (k, v) = row.map_err(db_err)?;
        let (_, bucket, name) = k.value();
        if let Ok(roll) = Rollup::decode(v.value()) {
            acc.add(bucket, name, &roll);
        }
    }
    let baseline = observe_baseline(&table)?;
    Ok(acc.finish(baseline))
}

/// The view of a gateway that records nothing (`[accounting] enabled = false`).
pub fn empty_view(w: Window, now_ms: u64) -> View {
    Acc::new(w, now_ms).finish((Rollup::default(), 0))
}

/// The window's figures as its rows are read.
struct Acc {
    w: Window,
    res: Resolution,
    start: u64,
    /// The gateway-mode traffic (the total is the buckets' sum).
    gateway: Rollup,
    buckets: Vec<Rollup>,
    routes: BTreeMap<String, RouteAcc>,
    /// (as the answering target, its attempts)
    targets: BTreeMap<String, (Rollup, Rollup)>,
    apis: BTreeMap<String, u64>,
    rows_read: u64,
}

impl Acc {
    fn new(w: Window, now_ms: u64) -> Acc {
        let res = w.resolution(now_ms);
        let start = w.since_ms - w.since_ms % res.step_ms;
        let n = ((w.until_ms.max(start) - start) / res.step_ms + 1) as usize;
        Acc {
            w,
            res,
            start,
            gateway: Rollup::default(),
            buckets: vec![Rollup::default(); n],
            routes: BTreeMap::new(),
            targets: BTreeMap::new(),
            apis: BTreeMap::new(),
            rows_read: 0,
        }
    }

    fn add(&mut self, bucket: u64, name: &str, roll: &Rollup) {
        self.rows_read += 1;
        let i = (bucket.saturating_sub(self.start) / self.res.step_ms) as usize;
        match Series::parse(name) {
            Some(Series::Requests {
                route,
                answered_by,
                api,
                observe,
            }) => {
                if !observe {
                    self.gateway.merge(roll);
                }
                if let Some(b) = self.buckets.get_mut(i) {
                    b.merge(roll);
                }
                match self.apis.get_mut(api) {
                    Some(n) => *n += roll.requests,
                    None => {
                        self.apis.insert(api.to_owned(), roll.requests);
                    }
                }
                let n = self.buckets.len();
                let acc = match self.routes.get_mut(route) {
                    Some(acc) => acc,
                    None => self
                        .routes
                        .entry(route.to_owned())
                        .or_insert_with(|| RouteAcc {
                            hits: vec![HitPoint::default(); n],
                            ..RouteAcc::default()
                        }),
                };
                acc.all.merge(roll);
                let share = match acc.by.get_mut(answered_by) {
                    Some(s) => s,
                    None => acc.by.entry(answered_by.to_owned()).or_default(),
                };
                share.0 += roll.requests;
                share.1 += roll.errors;
                share.2 += roll.spend_usd;
                if let Some(h) = acc.hits.get_mut(i) {
                    h.hits_exact += roll.hits_exact;
                    h.hits_semantic += roll.hits_semantic;
                    h.lookups += roll.lookups();
                }
                if !matches!(answered_by, "(cache)" | "(none)") {
                    let t = match self.targets.get_mut(answered_by) {
                        Some(t) => t,
                        None => self.targets.entry(answered_by.to_owned()).or_default(),
                    };
                    t.0.merge(roll);
                }
            }
            Some(Series::Target(target)) => match self.targets.get_mut(target) {
                Some(t) => t.1.merge(roll),
                None => self
                    .targets
                    .entry(target.to_owned())
                    .or_default()
                    .1
                    .merge(roll),
            },
            None => {}
        }
    }

    fn finish(self, (baseline, baseline_rows): (Rollup, u64)) -> View {
        let (res, start) = (self.res, self.start);
        let mut total = Rollup::default();
        for b in &self.buckets {
            total.merge(b);
        }
        let now = blended(&self.gateway);
        let base = blended(&baseline);
        let points = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| Point {
                t: start + i as u64 * res.step_ms,
                requests: b.requests,
                errors: b.errors,
                spend_usd: b.spend_usd,
                cost_avoided_usd: b.avoided_usd,
                hits_exact: b.hits_exact,
                hits_semantic: b.hits_semantic,
                lookups: b.lookups(),
                latency_p50_ms: b.latency.percentile(50.0),
                latency_p95_ms: b.latency.percentile(95.0),
            })
            .collect();
        let mut routes: Vec<RouteView> = self
            .routes
            .into_iter()
            .map(|(route, acc)| RouteView {
                route,
                figures: Figures::of(&acc.all),
                answered_by: acc
                    .by
                    .into_iter()
                    .map(|(name, (requests, errors, spend_usd))| Share {
                        name,
                        requests,
                        errors,
                        spend_usd,
                    })
                    .collect(),
                hits: acc.hits,
            })
            .collect();
        routes.sort_by(|a, b| {
            b.figures
                .requests
                .cmp(&a.figures.requests)
                .then(a.route.cmp(&b.route))
        });
        View {
            since_ms: self.w.since_ms,
            until_ms: self.w.until_ms,
            step_ms: res.step_ms,
            resolution: res.name,
            rows_read: self.rows_read + baseline_rows,
            total: Figures::of(&total),
            blended: Blended {
                now_usd_per_mtok: now,
                now_requests: self.gateway.requests,
                baseline_usd_per_mtok: base,
                baseline_requests: baseline.requests,
                change: now
                    .zip(base)
                    .filter(|(_, b)| *b > 0.0)
                    .map(|(n, b)| n / b - 1.0),
            },
            points,
            routes,
            targets: self
                .targets
                .into_iter()
                .map(|(target, (answered, attempts))| TargetView {
                    target,
                    answered: answered.requests,
                    spend_usd: answered.spend_usd,
                    attempts: attempts.attempts,
                    attempt_failures: attempts.attempt_failures,
                    failed_over_from: attempts.failed_over_from,
                    latency_p50_ms: answered.latency.percentile(50.0),
                    latency_p95_ms: answered.latency.percentile(95.0),
                })
                .collect(),
            apis: self.apis,
        }
    }
}

/// Every observe-mode request in the store, from the daily rows; and the rows read.
fn observe_baseline(t: &Rows) -> Result<(Rollup, u64), AuditError> {
    let mut base = Rollup::default();
    let mut rows = 0;
    for row in t
        .range((DAYS.id, 0, "")..(DAYS.id, u64::MAX, ""))
        .map_err(db_err)?
    {
        let (k, v) = row.map_err(db_err)?;
        rows += 1;
        let (_, _, name) = k.value();
        if let Some(Series::Requests { observe: true, .. }) = Series::parse(name) {
            if let Ok(r) = Rollup::decode(v.value()) {
                base.merge(&r);
            }
        }
    }
    Ok((base, rows))
}

/// The latest failovers, newest first.
pub fn recent_failovers(
    db: &impl ReadableDatabase,
    limit: usize,
) -> Result<Vec<(u64, FailoverEvent)>, AuditError> {
    let txn = db.begin_read().map_err(db_err)?;
    let table = match txn.open_table(AUDIT_FAILOVERS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(db_err(e)),
    };
    let mut out = Vec::with_capacity(limit);
    for row in table.iter().map_err(db_err)?.rev().take(limit) {
        let (k, v) = row.map_err(db_err)?;
        if let Ok(e) = crate::store::decode::<FailoverEvent>(v.value()) {
            out.push((k.value().0, e));
        }
    }
    Ok(out)
}

fn db_err(e: impl std::fmt::Display) -> AuditError {
    AuditError::Db {
        path: "(store)".into(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_get_the_finest_resolution_that_fits() {
        let now = 100 * 86_400_000;
        let hour = 3_600_000;
        let name = |span| Window::last(span, now).resolution(now).name;
        assert_eq!(name(hour), "1m");
        assert_eq!(name(6 * hour), "1m");
        assert_eq!(name(7 * hour), "10m");
        assert_eq!(name(24 * hour), "10m");
        assert_eq!(name(7 * 24 * hour), "1h");
        assert_eq!(name(30 * 24 * hour), "1d");
        assert_eq!(name(90 * 24 * hour), "1d");
        // Minute rows are gone after two days: an old hour is read from 10-minute rows.
        let old = Window {
            since_ms: now - 3 * 24 * hour,
            until_ms: now - 3 * 24 * hour + hour,
        };
        assert_eq!(old.resolution(now).name, "10m");
    }
}
