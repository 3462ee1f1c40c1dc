//! Audit records -> per-route, per-model and per-caller totals: requests, tokens, spend, blended
//! cost per 1M tokens, cache hit rate, cost avoided, latency percentiles, error rate; the
//! providers' prompt caching and what it saved, apart from Sluice's own cache savings; and a
//! total line.
//!
//! Definitions (also printed with every report, see [`NOTES`]):
//! - blended cost per 1M tokens = spend / (input + output tokens) * 1e6, both over the requests
//!   whose cost is known. A cache hit counts the tokens it served at $0, which is how caching
//!   lowers the blended cost.
//! - cache hit rate = hits / (hits + misses): bypassed and uncached requests are no lookups.
//! - provider cache share = input tokens the providers read from their prompt caches / input
//!   tokens of the requests answered upstream; provider cache saved = those reads at the input
//!   price minus what they cost, minus the premium paid for cache writes (see `cost`).
//! - Sluice's cache saved = the cost avoided by cache hits; routing saved = the rest of the cost
//!   avoided (cheaper tiers than the route's reference model, negative for pricier failovers).
//! - error rate = requests with status >= 400 or an error (a stream that broke) / requests.
//! - latency percentiles: nearest rank over total latency.
//! - quality per route, tier and target: the clients' feedback scores (see `quality`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::audit::AuditRecord;
use super::prices::PRICES_AS_OF;
use super::quality::{self, Quality, QualityRow};
use crate::outcome::CacheOutcome;

pub const NOTES: &[&str] = &[
    "blended $/1M tokens = spend / (input + output tokens) * 1e6, over requests with a known cost; cache hits count the tokens they served at $0",
    "cache hit rate = hits / (hits + misses); bypassed and uncached requests are not lookups",
    "cost avoided is measured against each route's reference model; negative when traffic cost more than the reference",
    "savings: tok_in_up = input tokens of requests answered upstream, tok_cached = of those read from the providers' prompt caches (cached_pct), tok_written = written to them; prov_saved = cache reads at the input price minus their cached price, minus the premium paid for cache writes; hit_saved = cost avoided by Sluice's cache hits; route_saved = the rest of cost avoided",
    "costs were computed when each request was recorded, with the prices then in effect; records written before audit format 3 have no cache or reasoning details",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub since_ms: u64,
    pub until_ms: u64,
    /// Date of the built-in price table of this binary.
    pub prices_as_of: &'static str,
    /// The price map now in effect for this data directory (and `--config`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_map: Option<super::price_map::MapOrigin>,
    pub notes: Vec<String>,
    pub by_route: Vec<Row>,
    pub by_model: Vec<Row>,
    /// Per client key (`[server] api_keys`); absent when no request carried one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_caller: Vec<Row>,
    pub total: Row,
    /// Feedback scores per route, tier and target (see `quality`); absent when no answer in
    /// the window was rated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quality: Vec<QualityRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub name: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub spend_usd: f64,
    /// Requests whose cost is unknown (no price): left out of spend and blended cost.
    pub unknown_cost_requests: u64,
    pub blended_usd_per_mtok: Option<f64>,
    pub cache_hits: u64,
    pub cache_lookups: u64,
    pub cache_hit_rate: Option<f64>,
    pub cost_avoided_usd: f64,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub errors: u64,
    pub error_rate: Option<f64>,
    /// Input tokens of the requests answered upstream (not by Sluice's cache).
    pub upstream_input_tokens: u64,
    /// Of those, read from the providers' prompt caches.
    pub cache_read_tokens: u64,
    /// Of those, written to the providers' prompt caches.
    pub cache_write_tokens: u64,
    /// Output tokens the models spent reasoning (upstream answers).
    pub reasoning_tokens: u64,
    /// `cache_read_tokens / upstream_input_tokens`.
    pub provider_cache_share: Option<f64>,
    /// What the providers' prompt caches saved (reads minus the write premium).
    pub provider_cache_saved_usd: f64,
    /// The part of `cost_avoided_usd` that Sluice's cache hits avoided.
    pub cache_hit_saved_usd: f64,
    /// The rest of `cost_avoided_usd`: routing to cheaper tiers than the reference.
    pub routing_saved_usd: f64,
}

#[derive(Default)]
struct Acc {
    requests: u64,
    input_tokens: u64,
    output_tokens: u64,
    spend: f64,
    priced_tokens: u64,
    unknown: u64,
    hits: u64,
    lookups: u64,
    avoided: f64,
    hit_avoided: f64,
    errors: u64,
    latencies: Vec<u64>,
    upstream_input: u64,
    cache_read: u64,
    cache_write: u64,
    reasoning: u64,
    provider_saved: f64,
}

impl Acc {
    fn add(&mut self, r: &AuditRecord) {
        let tokens = u64::from(r.input_tokens) + u64::from(r.output_tokens);
        self.requests += 1;
        self.input_tokens += u64::from(r.input_tokens);
        self.output_tokens += u64::from(r.output_tokens);
        match r.cost_usd {
            Some(c) => {
                self.spend += c;
                self.priced_tokens += tokens;
            }
            None => self.unknown += 1,
        }
        let avoided = r.cost_avoided_usd.unwrap_or(0.0);
        match r.cache {
            CacheOutcome::HitExact | CacheOutcome::HitSemantic => {
                self.hits += 1;
                self.lookups += 1;
                self.hit_avoided += avoided;
            }
            CacheOutcome::Miss => self.lookups += 1,
            CacheOutcome::Bypass | CacheOutcome::Off => {}
        }
        if r.target.is_some() && !r.cache.is_hit() {
            let d = &r.detail;
            self.upstream_input += u64::from(r.input_tokens);
            self.cache_read += u64::from(d.cache_read_tokens);
            self.cache_write += u64::from(d.cache_write_tokens);
            self.reasoning += u64::from(d.reasoning_tokens);
            self.provider_saved += d.cost_parts.map_or(0.0, |p| p.provider_cache_saved_usd);
        }
        self.avoided += avoided;
        self.errors += u64::from(r.is_error());
        self.latencies.push(r.total_ms);
    }

    fn finish(mut self, name: String) -> Row {
        self.latencies.sort_unstable();
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        Row {
            name,
            requests: self.requests,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            spend_usd: self.spend,
            unknown_cost_requests: self.unknown,
            blended_usd_per_mtok: (self.priced_tokens > 0)
                .then(|| self.spend / self.priced_tokens as f64 * 1e6),
            cache_hits: self.hits,
            cache_lookups: self.lookups,
            cache_hit_rate: ratio(self.hits, self.lookups),
            cost_avoided_usd: self.avoided,
            latency_p50_ms: percentile(&self.latencies, 50),
            latency_p95_ms: percentile(&self.latencies, 95),
            errors: self.errors,
            error_rate: ratio(self.errors, self.requests),
            upstream_input_tokens: self.upstream_input,
            cache_read_tokens: self.cache_read,
            cache_write_tokens: self.cache_write,
            reasoning_tokens: self.reasoning,
            provider_cache_share: ratio(self.cache_read, self.upstream_input),
            provider_cache_saved_usd: self.provider_saved,
            cache_hit_saved_usd: self.hit_avoided,
            routing_saved_usd: self.avoided - self.hit_avoided,
        }
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

/// Aggregate records (already filtered to the window) into a report.
pub fn aggregate(
    records: impl IntoIterator<Item = AuditRecord>,
    since_ms: u64,
    until_ms: u64,
) -> Report {
    let mut routes: BTreeMap<String, Acc> = BTreeMap::new();
    let mut models: BTreeMap<String, Acc> = BTreeMap::new();
    let mut callers: BTreeMap<String, Acc> = BTreeMap::new();
    let mut total = Acc::default();
    let mut quality = Quality::default();
    for r in records {
        quality.add(&r);
        if let Some(c) = &r.caller {
            callers.entry(c.clone()).or_default().add(&r);
        }
        if let Some(a) = routes.get_mut(&r.route) {
            a.add(&r);
        } else {
            routes.entry(r.route.clone()).or_default().add(&r);
        }
        models
            .entry(r.model_group().to_owned())
            .or_default()
            .add(&r);
        total.add(&r);
    }
    let rows = |m: BTreeMap<String, Acc>| {
        let mut v: Vec<Row> = m.into_iter().map(|(k, a)| a.finish(k)).collect();
        v.sort_by(|a, b| {
            b.spend_usd
                .total_cmp(&a.spend_usd)
                .then(a.name.cmp(&b.name))
        });
        v
    };
    let total = total.finish("TOTAL".into());
    let quality = quality.finish();
    let mut notes: Vec<String> = NOTES.iter().map(|s| (*s).to_owned()).collect();
    if !quality.is_empty() {
        notes.push(quality::NOTE.to_owned());
    }
    if total.unknown_cost_requests > 0 {
        notes.push(format!(
            "{} request(s) have no price: their tokens are excluded from spend and blended cost",
            total.unknown_cost_requests
        ));
    }
    Report {
        since_ms,
        until_ms,
        prices_as_of: PRICES_AS_OF,
        price_map: None,
        notes,
        by_route: rows(routes),
        by_model: rows(models),
        by_caller: rows(callers),
        total,
        quality,
    }
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Csv => render_csv(report),
        Format::Table => render_table(report),
    }
}

const COLUMNS: [&str; 11] = [
    "requests",
    "tok_in",
    "tok_out",
    "spend_usd",
    "usd_per_1m",
    "hit_rate",
    "avoided_usd",
    "p50_ms",
    "p95_ms",
    "err_rate",
    "unpriced",
];

/// The savings section: the providers' prompt caches, then Sluice's.
const SAVINGS_COLUMNS: [&str; 9] = [
    "spend_usd",
    "tok_in_up",
    "tok_cached",
    "cached_pct",
    "tok_written",
    "prov_saved",
    "cache_hits",
    "hit_saved",
    "route_saved",
];

fn opt(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".into())
}

fn pct(v: Option<f64>) -> String {
    opt(v.map(|x| format!("{:.1}%", x * 100.0)))
}

fn cells(r: &Row) -> [String; 11] {
    [
        r.requests.to_string(),
        r.input_tokens.to_string(),
        r.output_tokens.to_string(),
        format!("{:.4}", r.spend_usd),
        opt(r.blended_usd_per_mtok.map(|x| format!("{x:.3}"))),
        pct(r.cache_hit_rate),
        format!("{:.4}", r.cost_avoided_usd),
        opt(r.latency_p50_ms.map(|x| x.to_string())),
        opt(r.latency_p95_ms.map(|x| x.to_string())),
        pct(r.error_rate),
        r.unknown_cost_requests.to_string(),
    ]
}

fn savings_cells(r: &Row) -> [String; 9] {
    [
        format!("{:.4}", r.spend_usd),
        r.upstream_input_tokens.to_string(),
        r.cache_read_tokens.to_string(),
        pct(r.provider_cache_share),
        r.cache_write_tokens.to_string(),
        format!("{:.4}", r.provider_cache_saved_usd),
        r.cache_hits.to_string(),
        format!("{:.4}", r.cache_hit_saved_usd),
        format!("{:.4}", r.routing_saved_usd),
    ]
}

fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Sluice audit report: {} .. {} ({} .. {}), built-in prices as of {}",
        report.since_ms,
        report.until_ms,
        super::format_utc_ms(report.since_ms),
        super::format_utc_ms(report.until_ms),
        report.prices_as_of
    );
    if let Some(m) = &report.price_map {
        let _ = writeln!(out, "Prices now in effect: {}", m.describe());
    }
    let sections = [
        ("route", &report.by_route),
        ("model", &report.by_model),
        ("caller", &report.by_caller),
    ];
    // The caller section only once client keys are in use.
    let sections = sections
        .into_iter()
        .filter(|(heading, rows)| *heading != "caller" || !rows.is_empty());
    let name_width = sections
        .clone()
        .flat_map(|(h, rows)| rows.iter().map(|r| r.name.len()).chain([h.len()]))
        .max()
        .unwrap_or(7)
        .max(7);
    let table = |out: &mut String,
                 heading: &str,
                 columns: &[&str],
                 rows: &[&Row],
                 cells: &dyn Fn(&Row) -> Vec<String>| {
        out.push('\n');
        let _ = write!(out, "{heading:<name_width$}");
        for c in columns {
            let _ = write!(out, "  {c:>11}");
        }
        out.push('\n');
        for r in rows {
            let _ = write!(out, "{:<name_width$}", r.name);
            for c in cells(r) {
                let _ = write!(out, "  {c:>11}");
            }
            out.push('\n');
        }
    };
    for (heading, rows) in sections {
        let rows: Vec<&Row> = rows.iter().chain([&report.total]).collect();
        table(&mut out, heading, &COLUMNS, &rows, &|r| cells(r).to_vec());
    }
    let rows: Vec<&Row> = report.by_route.iter().chain([&report.total]).collect();
    table(&mut out, "savings", &SAVINGS_COLUMNS, &rows, &|r| {
        savings_cells(r).to_vec()
    });
    quality::render_table(&report.quality, &mut out);
    out.push('\n');
    for n in &report.notes {
        let _ = writeln!(out, "* {n}");
    }
    out
}

fn render_csv(report: &Report) -> String {
    let mut out = String::from("section,name");
    for c in COLUMNS.iter().chain(&CSV_EXTRA) {
        out.push(',');
        out.push_str(c);
    }
    out.push('\n');
    let rows = report
        .by_route
        .iter()
        .map(|r| ("route", r))
        .chain(report.by_model.iter().map(|r| ("model", r)))
        .chain(report.by_caller.iter().map(|r| ("caller", r)))
        .chain([("total", &report.total)]);
    for (section, r) in rows {
        let _ = write!(out, "{section},{}", csv_field(&r.name));
        // CSV carries raw numbers: empty for "not applicable", fractions not percentages.
        let num = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        let int = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_default();
        let fields = [
            r.requests.to_string(),
            r.input_tokens.to_string(),
            r.output_tokens.to_string(),
            r.spend_usd.to_string(),
            num(r.blended_usd_per_mtok),
            num(r.cache_hit_rate),
            r.cost_avoided_usd.to_string(),
            int(r.latency_p50_ms),
            int(r.latency_p95_ms),
            num(r.error_rate),
            r.unknown_cost_requests.to_string(),
            r.upstream_input_tokens.to_string(),
            r.cache_read_tokens.to_string(),
            r.cache_write_tokens.to_string(),
            r.reasoning_tokens.to_string(),
            num(r.provider_cache_share),
            r.provider_cache_saved_usd.to_string(),
            r.cache_hit_saved_usd.to_string(),
            r.routing_saved_usd.to_string(),
        ];
        for f in fields {
            out.push(',');
            out.push_str(&f);
        }
        out.push('\n');
    }
    out
}

/// CSV columns after [`COLUMNS`]: the savings figures, raw.
const CSV_EXTRA: [&str; 8] = [
    "tok_in_upstream",
    "tok_cache_read",
    "tok_cache_write",
    "tok_reasoning",
    "cache_read_share",
    "provider_cache_saved_usd",
    "cache_hit_saved_usd",
    "routing_saved_usd",
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::audit::tests::record;

    fn mixed() -> Vec<AuditRecord> {
        let mut v = Vec::new();
        for i in 0..10u64 {
            let mut r = record(1000 + i);
            r.total_ms = 10 * (i + 1);
            r.cost_usd = Some(0.001 * (i + 1) as f64);
            r.input_tokens = 100 + i as u32;
            match i {
                0 | 1 => {
                    r.cache = CacheOutcome::HitExact;
                    r.target = None;
                    r.cost_usd = Some(0.0);
                    r.cost_avoided_usd = Some(0.01);
                }
                2 => {
                    r.route = "summarize".into();
                    r.target = Some("anthropic/claude-3-haiku-20240307".into());
                }
                3 => {
                    r.status = 502;
                    r.target = None;
                    r.error = Some("all_targets_failed".into());
                    r.input_tokens = 0;
                    r.output_tokens = 0;
                    r.cost_usd = Some(0.0);
                }
                4 => {
                    r.target = Some("openai/my-finetune".into());
                    r.cost_usd = None;
                }
                5 => r.cache = CacheOutcome::Bypass,
                _ => {}
            }
            v.push(r);
        }
        v
    }

    #[test]
    fn totals_equal_the_sum_of_records_and_of_groups() {
        let recs = mixed();
        let rep = aggregate(recs.clone(), 0, u64::MAX);
        let t = &rep.total;
        assert_eq!(t.requests, 10);
        let tin: u64 = recs.iter().map(|r| u64::from(r.input_tokens)).sum();
        let tout: u64 = recs.iter().map(|r| u64::from(r.output_tokens)).sum();
        let spend: f64 = recs.iter().filter_map(|r| r.cost_usd).sum();
        assert_eq!((t.input_tokens, t.output_tokens), (tin, tout));
        assert!((t.spend_usd - spend).abs() < 1e-12);
        assert!((t.cost_avoided_usd - 0.02).abs() < 1e-12);
        assert_eq!(t.unknown_cost_requests, 1);
        assert_eq!((t.cache_hits, t.cache_lookups), (2, 9));
        assert_eq!(t.errors, 1);
        for rows in [&rep.by_route, &rep.by_model] {
            assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), t.requests);
            assert!((rows.iter().map(|r| r.spend_usd).sum::<f64>() - t.spend_usd).abs() < 1e-12);
        }
        let models: Vec<&str> = rep.by_model.iter().map(|r| r.name.as_str()).collect();
        assert!(
            models.contains(&"(cache)") && models.contains(&"(none)"),
            "{models:?}"
        );
        assert!(rep.by_caller.is_empty(), "no client keys in use");
        assert!(rep
            .notes
            .iter()
            .any(|n| n.contains("1 request(s) have no price")));
    }

    #[test]
    fn blended_cost_is_spend_over_priced_tokens() {
        let recs = mixed();
        let rep = aggregate(recs.clone(), 0, u64::MAX);
        let priced: Vec<&AuditRecord> = recs.iter().filter(|r| r.cost_usd.is_some()).collect();
        let tokens: u64 = priced
            .iter()
            .map(|r| u64::from(r.input_tokens) + u64::from(r.output_tokens))
            .sum();
        let spend: f64 = priced.iter().filter_map(|r| r.cost_usd).sum();
        let want = spend / tokens as f64 * 1e6;
        assert!((rep.total.blended_usd_per_mtok.unwrap() - want).abs() < 1e-9);
        assert_eq!(aggregate(Vec::new(), 0, 1).total.blended_usd_per_mtok, None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
        let rep = aggregate(mixed(), 0, u64::MAX);
        assert_eq!(rep.total.latency_p50_ms, Some(50));
        assert_eq!(rep.total.latency_p95_ms, Some(100));
    }

    #[test]
    fn formats_render() {
        let rep = aggregate(mixed(), 0, u64::MAX);
        let json: serde_json::Value = serde_json::from_str(&render(&rep, Format::Json)).unwrap();
        assert_eq!(json["total"]["requests"], 10);
        let csv = render(&rep, Format::Csv);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + rep.by_route.len() + rep.by_model.len() + 1);
        assert!(lines.iter().all(|l| l.split(',').count() == 21), "{csv}");
        assert!(lines.last().unwrap().starts_with("total,TOTAL,10,"));
        let table = render(&rep, Format::Table);
        assert!(
            table.contains("TOTAL") && table.contains("usd_per_1m"),
            "{table}"
        );
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert!(!table.contains("caller") && json.get("by_caller").is_none());
    }

    #[test]
    fn spend_per_client_key() {
        let mut recs = mixed();
        for (i, r) in recs.iter_mut().enumerate() {
            r.caller = Some(if i < 3 { "billing" } else { "search" }.into());
        }
        recs[9].caller = None; // before keys were configured
        let rep = aggregate(recs.clone(), 0, u64::MAX);
        let by: Vec<(&str, u64)> = rep
            .by_caller
            .iter()
            .map(|r| (r.name.as_str(), r.requests))
            .collect();
        assert_eq!(
            by,
            [("search", 6), ("billing", 3)],
            "by spend, largest first"
        );
        let billing: f64 = recs[..3].iter().filter_map(|r| r.cost_usd).sum();
        assert!((rep.by_caller[1].spend_usd - billing).abs() < 1e-12);
        let table = render(&rep, Format::Table);
        assert!(
            table.contains("caller") && table.contains("billing"),
            "{table}"
        );
        let csv = render(&rep, Format::Csv);
        assert_eq!(csv.lines().filter(|l| l.starts_with("caller,")).count(), 2);
    }

    #[test]
    fn savings_keep_the_providers_caches_apart_from_sluices() {
        use crate::accounting::{CostParts, UsageDetail};
        let mut recs = mixed();
        // Record 6: answered upstream with 60 of its input tokens read from the provider's cache.
        recs[6].detail = UsageDetail {
            cache_read_tokens: 60,
            cache_write_tokens: 10,
            cost_parts: Some(CostParts {
                provider_cache_saved_usd: 0.0004,
                ..CostParts::default()
            }),
            ..UsageDetail::default()
        };
        recs[7].cost_avoided_usd = Some(0.003);
        // A hit replays the original's details: they are not the provider's work this time.
        recs[0].detail.cache_read_tokens = 99;
        let rep = aggregate(recs.clone(), 0, u64::MAX);
        let t = &rep.total;
        let upstream: u64 = recs
            .iter()
            .filter(|r| r.target.is_some() && !r.cache.is_hit())
            .map(|r| u64::from(r.input_tokens))
            .sum();
        assert_eq!(t.upstream_input_tokens, upstream);
        assert_eq!((t.cache_read_tokens, t.cache_write_tokens), (60, 10));
        assert!((t.provider_cache_share.unwrap() - 60.0 / upstream as f64).abs() < 1e-12);
        assert!((t.provider_cache_saved_usd - 0.0004).abs() < 1e-15);
        assert!((t.cache_hit_saved_usd - 0.02).abs() < 1e-12);
        assert!((t.routing_saved_usd - 0.003).abs() < 1e-12);
        assert!((t.cache_hit_saved_usd + t.routing_saved_usd - t.cost_avoided_usd).abs() < 1e-15);
        let table = render(&rep, Format::Table);
        assert!(
            table.contains("savings") && table.contains("prov_saved"),
            "{table}"
        );
    }
}
