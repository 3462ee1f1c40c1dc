//! Prometheus metrics for `GET /metrics` (text exposition format 0.0.4).
//!
//! Every label value comes from a fixed set decided at startup: route and target names from the
//! config, and closed enums (status class, cache outcome, breaker state). A requested model name
//! or any other client input never becomes a label, so a client cannot grow the series count.
//!
//! Why a hand-rolled registry rather than the `prometheus` crate: every label combination is
//! known at startup, so the whole registry is a flat array of atomics indexed by
//! `(route, target)`. Recording a request is a handful of relaxed `fetch_add`s with no hashing,
//! no locking and no allocation; the crate's `with_label_values` hashes the label strings on
//! every call (or needs a cached handle per combination, which is this file again). Rendering
//! the text format is ~150 lines; we need no pushgateway, protobuf or process collector.
//!
//! Latency metrics are in seconds (Prometheus convention), recorded in microseconds.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::counters::{self, Resumes, TargetCounters};
use super::routing::RoutingCounters;
use crate::config::{Config, RouteId, TargetId};
use crate::outcome::{CacheOutcome, Resume, RouteBy, TierReason};

pub const REQUESTS: &str = "sluice_requests_total";
pub const TOKENS: &str = "sluice_tokens_total";
pub const PROVIDER_CACHE_TOKENS: &str = "sluice_provider_cache_tokens_total";
pub const COST: &str = "sluice_cost_usd_total";
pub const COST_AVOIDED: &str = "sluice_cost_avoided_usd_total";
pub const COST_EXTRA: &str = "sluice_cost_over_reference_usd_total";
pub const COST_UNKNOWN: &str = "sluice_cost_unknown_total";
pub const REQUEST_DURATION: &str = "sluice_request_duration_seconds";
pub const OVERHEAD: &str = "sluice_gateway_overhead_seconds";
pub const UPSTREAM_DURATION: &str = "sluice_upstream_duration_seconds";
pub const TTFT: &str = "sluice_time_to_first_token_seconds";
pub const EMBEDDING: &str = "sluice_embedding_duration_seconds";
pub const INDEX_LOOKUP: &str = "sluice_index_lookup_duration_seconds";
pub const BREAKER: &str = "sluice_breaker_state";
pub const CACHE_ENTRIES: &str = "sluice_cache_entries";
pub const AUDIT_DROPPED: &str = "sluice_audit_dropped_total";
pub const STORE_HEALTHY: &str = "sluice_store_healthy";
pub const STORE_FAULTS: &str = "sluice_store_faults_total";
pub const IN_FLIGHT: &str = "sluice_requests_in_flight";

/// Route label of pass-through requests (a plain model name; same as `router::PASSTHROUGH`).
pub const PASSTHROUGH_LABEL: &str = "passthrough";
/// Route label of requests that failed before a route was chosen; target label of requests no
/// target answered (cache hits, failures).
pub const NONE_LABEL: &str = "none";
/// The states `Gauges::breaker_states` may name (`BreakerState::as_str`).
pub const BREAKER_STATES: [&str; 3] = ["closed", "half_open", "open"];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Request latency buckets, in microseconds: 1 ms .. 2 min.
const LATENCY_BUCKETS_US: &[u64] = &[
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
];
/// In-process work (gateway overhead, embedding, index search): 25 µs .. 1 s.
const FAST_BUCKETS_US: &[u64] = &[
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// Which route label a request counts under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSlot {
    Route(RouteId),
    Passthrough,
    /// Failed before a route was chosen (unknown model, bad request).
    Unrouted,
}

/// One finished request, as metrics see it (built by the pipeline next to the audit record).
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    pub route: RouteSlot,
    /// The target that answered; `None` for cache hits and failures.
    pub target: Option<TargetId>,
    pub status: u16,
    pub cache: CacheOutcome,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Of `input_tokens`, read from / written to the provider's prompt cache (0 for requests
    /// no upstream answered).
    pub cache_read_tokens: u32,
    pub cache_write_tokens: u32,
    pub cost_usd: Option<f64>,
    pub cost_avoided_usd: Option<f64>,
    pub total: Duration,
    /// Time spent waiting on upstreams (all attempts); gateway overhead is `total - upstream`.
    pub upstream: Option<Duration>,
    pub ttft: Option<Duration>,
}

/// Values owned elsewhere, read at scrape time.
#[derive(Debug, Default)]
pub struct Gauges<'a> {
    /// Indexed by `TargetId`: `BreakerState::as_str()` of each target.
    pub breaker_states: &'a [&'static str],
    pub cache_entries: Option<u64>,
    /// `AuditLog::dropped()`.
    pub audit_dropped: u64,
    /// The store, when there is one: (healthy, storage faults since start).
    pub store: Option<(bool, u64)>,
    /// Requests in flight.
    pub in_flight: u64,
}

pub struct Metrics {
    /// Escaped route labels: config routes, then passthrough, then none.
    routes: Vec<String>,
    /// Escaped target labels: config targets, then none.
    targets: Vec<String>,
    /// `routes.len() * targets.len()`, row-major by route.
    cells: Vec<Cell>,
    /// By route slot.
    total: Vec<Histogram>,
    overhead: Vec<Histogram>,
    /// By target (config targets only).
    upstream: Vec<Histogram>,
    ttft: Vec<Histogram>,
    embedding: Histogram,
    index_lookup: Histogram,
    /// By target (config targets only): failover counters.
    target_counters: Vec<Arc<TargetCounters>>,
    /// By route slot.
    resumes: Resumes,
    /// By route slot: route and tier decisions, feedback.
    routing: RoutingCounters,
}

/// Reads one float counter of a cell.
type CellValue = fn(&Cell) -> f64;

#[derive(Default)]
struct Cell {
    /// [status class][cache outcome]
    requests: [[AtomicU64; 5]; 5],
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    cache_read: AtomicU64,
    cache_write: AtomicU64,
    cost: AtomicF64,
    avoided: AtomicF64,
    over_reference: AtomicF64,
    cost_unknown: AtomicU64,
}

impl Cell {
    fn count(&self) -> u64 {
        self.requests
            .iter()
            .flatten()
            .map(|c| c.load(Relaxed))
            .sum()
    }
}

impl Metrics {
    pub fn new(config: &Config) -> Metrics {
        let mut routes: Vec<String> = config.routes.iter().map(|r| escape(&r.name)).collect();
        routes.push(PASSTHROUGH_LABEL.to_owned());
        routes.push(NONE_LABEL.to_owned());
        let mut targets: Vec<String> = config.targets.iter().map(|t| escape(&t.name)).collect();
        targets.push(NONE_LABEL.to_owned());
        let n_targets = config.targets.len();
        Metrics {
            cells: (0..routes.len() * targets.len())
                .map(|_| Cell::default())
                .collect(),
            total: (0..routes.len())
                .map(|_| Histogram::new(LATENCY_BUCKETS_US))
                .collect(),
            overhead: (0..routes.len())
                .map(|_| Histogram::new(FAST_BUCKETS_US))
                .collect(),
            upstream: (0..n_targets)
                .map(|_| Histogram::new(LATENCY_BUCKETS_US))
                .collect(),
            ttft: (0..n_targets)
                .map(|_| Histogram::new(LATENCY_BUCKETS_US))
                .collect(),
            embedding: Histogram::new(FAST_BUCKETS_US),
            index_lookup: Histogram::new(FAST_BUCKETS_US),
            target_counters: (0..n_targets).map(|_| Arc::default()).collect(),
            resumes: Resumes::new(routes.len()),
            routing: RoutingCounters::new(routes.len()),
            routes,
            targets,
        }
    }

    /// A config target's failover counters (`None` for an out-of-range id, a bug elsewhere).
    pub fn target(&self, t: TargetId) -> Option<&Arc<TargetCounters>> {
        self.target_counters.get(t.0)
    }

    /// A stream that broke after output was continued `how` (`None`: it could not be).
    pub fn count_resume(&self, route: RouteSlot, how: Option<Resume>) {
        self.resumes.count(self.route_index(route), how);
    }

    fn route_index(&self, r: RouteSlot) -> usize {
        let n = self.routes.len() - 2;
        match r {
            RouteSlot::Route(id) if id.0 < n => id.0,
            RouteSlot::Route(_) | RouteSlot::Unrouted => n + 1,
            RouteSlot::Passthrough => n,
        }
    }

    /// A config target's index, or the `none` slot.
    fn target_index(&self, t: Option<TargetId>) -> usize {
        let none = self.targets.len() - 1;
        t.map_or(none, |t| t.0.min(none))
    }

    /// Record one finished request. Allocation-free.
    pub fn observe(&self, o: &Observation) {
        let r = self.route_index(o.route);
        let t = self.target_index(o.target);
        let cell = &self.cells[r * self.targets.len() + t];
        let class = usize::from(o.status / 100).clamp(1, 5) - 1;
        cell.requests[class][o.cache.index()].fetch_add(1, Relaxed);
        cell.tokens_in.fetch_add(u64::from(o.input_tokens), Relaxed);
        cell.tokens_out
            .fetch_add(u64::from(o.output_tokens), Relaxed);
        cell.cache_read
            .fetch_add(u64::from(o.cache_read_tokens), Relaxed);
        cell.cache_write
            .fetch_add(u64::from(o.cache_write_tokens), Relaxed);
        match o.cost_usd {
            Some(c) => cell.cost.add(c),
            None => {
                cell.cost_unknown.fetch_add(1, Relaxed);
            }
        }
        // Counters never go down: savings and overruns against the reference are kept apart.
        match o.cost_avoided_usd {
            Some(a) if a >= 0.0 => cell.avoided.add(a),
            Some(a) => cell.over_reference.add(-a),
            None => {}
        }
        self.total[r].observe(o.total);
        if let Some(up) = o.upstream {
            self.overhead[r].observe(o.total.saturating_sub(up));
            if let Some(h) = self.upstream.get(t) {
                h.observe(up);
            }
        }
        if let (Some(ttft), Some(h)) = (o.ttft, self.ttft.get(t)) {
            h.observe(ttft);
        }
    }

    /// How a request's route (`None`: pass-through) and tier were chosen.
    pub fn observe_routing(
        &self,
        route: Option<RouteId>,
        by: RouteBy,
        tier_by: Option<TierReason>,
    ) {
        let slot = route.map_or(RouteSlot::Passthrough, RouteSlot::Route);
        self.routing.decision(self.route_index(slot), by, tier_by);
    }

    /// A feedback score on a request of `route` (`None`: pass-through).
    pub fn observe_feedback(&self, route: Option<RouteId>, score: f64) {
        let slot = route.map_or(RouteSlot::Passthrough, RouteSlot::Route);
        self.routing.feedback(self.route_index(slot), score);
    }

    /// Time to embed one query (the cache and the router call this).
    pub fn observe_embedding(&self, d: Duration) {
        self.embedding.observe(d);
    }

    /// Time of one vector index search (the cache calls this).
    pub fn observe_index_lookup(&self, d: Duration) {
        self.index_lookup.observe(d);
    }

    /// The exposition text. Series of label combinations that never happened are left out.
    pub fn render(&self, g: &Gauges<'_>) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.render_counters(&mut out);
        self.render_histograms(&mut out);
        counters::render(
            &mut out,
            &self.targets,
            &self.target_counters,
            &self.routes,
            &self.resumes,
        );
        self.routing.render(&mut out, &self.routes);
        header(
            &mut out,
            BREAKER,
            "gauge",
            "Circuit breaker state per target (1 = current state).",
        );
        for (t, label) in self.targets.iter().take(self.targets.len() - 1).enumerate() {
            let current = g.breaker_states.get(t).copied().unwrap_or("closed");
            for s in BREAKER_STATES {
                let v = u8::from(s == current);
                let _ = writeln!(out, "{BREAKER}{{target=\"{label}\",state=\"{s}\"}} {v}");
            }
        }
        if let Some(n) = g.cache_entries {
            header(
                &mut out,
                CACHE_ENTRIES,
                "gauge",
                "Entries in the semantic cache.",
            );
            let _ = writeln!(out, "{CACHE_ENTRIES} {n}");
        }
        header(
            &mut out,
            AUDIT_DROPPED,
            "counter",
            "Audit records dropped because the writer's queue was full or closed.",
        );
        let _ = writeln!(out, "{AUDIT_DROPPED} {}", g.audit_dropped);
        if let Some((healthy, faults)) = g.store {
            header(
                &mut out,
                STORE_HEALTHY,
                "gauge",
                "1 while the store (cache and audit) works; 0 while it is out of service after a storage fault.",
            );
            let _ = writeln!(out, "{STORE_HEALTHY} {}", u8::from(healthy));
            header(
                &mut out,
                STORE_FAULTS,
                "counter",
                "Storage faults (a failed write or fsync) that took the store out of service.",
            );
            let _ = writeln!(out, "{STORE_FAULTS} {faults}");
        }
        header(&mut out, IN_FLIGHT, "gauge", "Requests in flight.");
        let _ = writeln!(out, "{IN_FLIGHT} {}", g.in_flight);
        out
    }

    fn cells(&self) -> impl Iterator<Item = (&str, &str, &Cell)> {
        let nt = self.targets.len();
        self.cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.count() > 0)
            .map(move |(i, c)| {
                (
                    self.routes[i / nt].as_str(),
                    self.targets[i % nt].as_str(),
                    c,
                )
            })
    }

    fn render_counters(&self, out: &mut String) {
        header(
            out,
            REQUESTS,
            "counter",
            "Requests by route, answering target, status class and cache outcome.",
        );
        for (r, t, c) in self.cells() {
            for (class, row) in c.requests.iter().enumerate() {
                for (k, n) in row.iter().enumerate() {
                    let n = n.load(Relaxed);
                    if n > 0 {
                        let (s, cache) = (STATUS_CLASSES[class], CacheOutcome::ALL[k].as_str());
                        let _ = writeln!(
                            out,
                            "{REQUESTS}{{route=\"{r}\",target=\"{t}\",status=\"{s}\",cache=\"{cache}\"}} {n}"
                        );
                    }
                }
            }
        }
        header(
            out,
            TOKENS,
            "counter",
            "Tokens by route and target (cache hits count the tokens they served).",
        );
        for (r, t, c) in self.cells() {
            let (i, o) = (c.tokens_in.load(Relaxed), c.tokens_out.load(Relaxed));
            let _ = writeln!(
                out,
                "{TOKENS}{{route=\"{r}\",target=\"{t}\",kind=\"input\"}} {i}"
            );
            let _ = writeln!(
                out,
                "{TOKENS}{{route=\"{r}\",target=\"{t}\",kind=\"output\"}} {o}"
            );
        }
        header(
            out,
            PROVIDER_CACHE_TOKENS,
            "counter",
            "Input tokens the answering provider read from (kind=read) or wrote to (kind=write) its prompt cache.",
        );
        for (r, t, c) in self.cells() {
            let (read, write) = (c.cache_read.load(Relaxed), c.cache_write.load(Relaxed));
            if read + write > 0 {
                let _ = writeln!(
                    out,
                    "{PROVIDER_CACHE_TOKENS}{{route=\"{r}\",target=\"{t}\",kind=\"read\"}} {read}"
                );
                let _ = writeln!(
                    out,
                    "{PROVIDER_CACHE_TOKENS}{{route=\"{r}\",target=\"{t}\",kind=\"write\"}} {write}"
                );
            }
        }
        let floats: [(&str, &str, CellValue); 3] = [
            (COST, "Spend in USD (requests with a known price).", |c| {
                c.cost.get()
            }),
            (
                COST_AVOIDED,
                "USD saved against the route's reference model (cache hits, cheaper tiers).",
                |c| c.avoided.get(),
            ),
            (
                COST_EXTRA,
                "USD spent above the reference model (e.g. failover to a pricier target).",
                |c| c.over_reference.get(),
            ),
        ];
        for (name, help, get) in floats {
            header(out, name, "counter", help);
            for (r, t, c) in self.cells() {
                let _ = writeln!(out, "{name}{{route=\"{r}\",target=\"{t}\"}} {}", get(c));
            }
        }
        header(
            out,
            COST_UNKNOWN,
            "counter",
            "Requests whose cost is unknown: the answering target has no price.",
        );
        for (r, t, c) in self.cells() {
            let n = c.cost_unknown.load(Relaxed);
            if n > 0 {
                let _ = writeln!(out, "{COST_UNKNOWN}{{route=\"{r}\",target=\"{t}\"}} {n}");
            }
        }
    }

    fn render_histograms(&self, out: &mut String) {
        let by_route = [
            (
                REQUEST_DURATION,
                "Total request latency as the client saw it.",
                &self.total,
            ),
            (
                OVERHEAD,
                "Latency added by the gateway: total minus time waiting on upstreams.",
                &self.overhead,
            ),
        ];
        for (name, help, hs) in by_route {
            header(out, name, "histogram", help);
            for (h, r) in hs.iter().zip(&self.routes) {
                h.render(out, name, &format!("route=\"{r}\""));
            }
        }
        let by_target = [
            (
                UPSTREAM_DURATION,
                "Time waiting on upstream providers per request.",
                &self.upstream,
            ),
            (TTFT, "Time to the first streamed token.", &self.ttft),
        ];
        for (name, help, hs) in by_target {
            header(out, name, "histogram", help);
            for (h, t) in hs.iter().zip(&self.targets) {
                h.render(out, name, &format!("target=\"{t}\""));
            }
        }
        header(
            out,
            EMBEDDING,
            "histogram",
            "Time to embed one cache query.",
        );
        self.embedding.render(out, EMBEDDING, "");
        header(
            out,
            INDEX_LOOKUP,
            "histogram",
            "Time of one vector index search.",
        );
        self.index_lookup.render(out, INDEX_LOOKUP, "");
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label value escaping of the text format: backslash, double quote, newline.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// An f64 counter in an `AtomicU64` (compare-and-swap add).
#[derive(Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn add(&self, v: f64) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |b| {
            Some((f64::from_bits(b) + v).to_bits())
        });
    }

    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }
}

struct Histogram {
    bounds_us: &'static [u64],
    /// One per bound plus `+Inf`; not cumulative (summed at render).
    counts: Box<[AtomicU64]>,
    sum_us: AtomicU64,
}

impl Histogram {
    fn new(bounds_us: &'static [u64]) -> Self {
        Histogram {
            bounds_us,
            counts: (0..=bounds_us.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = self.bounds_us.partition_point(|&b| b < us);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Nothing for a histogram that never observed anything.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return;
        }
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, n) in counts.iter().enumerate() {
            cumulative += n;
            let le = match self.bounds_us.get(i) {
                Some(b) => (*b as f64 / 1e6).to_string(),
                None => "+Inf".to_owned(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {total}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    const CONFIG: &str = r#"
        [providers.a]
        kind = "openai"
        base_url = "http://127.0.0.1:1"
        models.small = {}
        models.big = {}
        [routes.chat]
        tiers.cheap = ["a/small", "a/big"]
    "#;

    /// A minimal parser of the text format: every sample line is `name{labels} value` or
    /// `name value`, every sample's family has a `# TYPE`. Returns samples keyed by the line's
    /// name and labels.
    pub(crate) fn parse(text: &str) -> BTreeMap<String, f64> {
        let mut typed = HashSet::new();
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split(' ');
                let name = it.next().unwrap();
                let kind = it.next().unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                typed.insert(name.to_owned());
                continue;
            }
            if line.starts_with("# HELP ") {
                continue;
            }
            assert!(
                !line.is_empty() && !line.starts_with('#'),
                "stray line {line:?}"
            );
            let (series, value) = line.rsplit_once(' ').expect(line);
            let v: f64 = if value == "+Inf" {
                f64::INFINITY
            } else {
                value.parse().expect(line)
            };
            let name = match series.find('{') {
                Some(i) => {
                    assert!(series.ends_with('}'), "{line}");
                    let labels = &series[i + 1..series.len() - 1];
                    for pair in split_labels(labels) {
                        let (k, val) = pair.split_once('=').expect(line);
                        assert!(
                            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                            "{line}"
                        );
                        assert!(
                            val.starts_with('"') && val.ends_with('"') && val.len() >= 2,
                            "{line}"
                        );
                    }
                    &series[..i]
                }
                None => series,
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "{line}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                .unwrap_or(name);
            assert!(typed.contains(family), "no TYPE for {name}");
            assert!(
                samples.insert(series.to_owned(), v).is_none(),
                "duplicate {series}"
            );
        }
        samples
    }

    /// Split `a="x",b="y,z"` at commas outside quotes.
    fn split_labels(s: &str) -> Vec<&str> {
        let (mut out, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
        for (i, ch) in s.char_indices() {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = !quoted,
                ',' if !quoted => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&s[start..]);
        out
    }

    fn obs(
        route: RouteSlot,
        target: Option<TargetId>,
        status: u16,
        cache: CacheOutcome,
    ) -> Observation {
        Observation {
            route,
            target,
            status,
            cache,
            input_tokens: 10,
            output_tokens: 5,
            cache_read_tokens: 4,
            cache_write_tokens: 1,
            cost_usd: Some(0.25),
            cost_avoided_usd: Some(0.5),
            total: Duration::from_millis(120),
            upstream: Some(Duration::from_millis(100)),
            ttft: None,
        }
    }

    #[test]
    fn text_parses_and_counters_match_observations() {
        let cfg = Config::parse(CONFIG, "test").unwrap();
        let m = Metrics::new(&cfg);
        let chat = RouteSlot::Route(RouteId(0));
        m.observe(&obs(chat, Some(TargetId(0)), 200, CacheOutcome::Miss));
        m.observe(&obs(chat, Some(TargetId(0)), 200, CacheOutcome::Miss));
        m.observe(&Observation {
            cost_usd: Some(0.0),
            upstream: None,
            ..obs(chat, None, 200, CacheOutcome::HitSemantic)
        });
        m.observe(&Observation {
            cost_usd: None,
            cost_avoided_usd: Some(-0.125),
            ttft: Some(Duration::from_millis(40)),
            ..obs(
                RouteSlot::Passthrough,
                Some(TargetId(1)),
                200,
                CacheOutcome::Off,
            )
        });
        m.observe(&Observation {
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: Some(0.0),
            cost_avoided_usd: Some(0.0),
            upstream: None,
            ..obs(RouteSlot::Unrouted, None, 404, CacheOutcome::Off)
        });
        m.observe_embedding(Duration::from_micros(700));
        m.count_resume(chat, Some(Resume::Prefill));
        m.count_resume(chat, None);
        m.count_resume(RouteSlot::Passthrough, Some(Resume::UserTurn));
        let small = m.target(TargetId(0)).unwrap();
        small.provider_fault(crate::outcome::ProviderFault::Billing);
        small.events_skipped.fetch_add(2, Relaxed);
        assert!(m.target(TargetId(9)).is_none());

        let text = m.render(&Gauges {
            breaker_states: &["closed", "open"],
            cache_entries: Some(7),
            audit_dropped: 0,
            store: Some((false, 1)),
            in_flight: 3,
        });
        let s = parse(&text);
        let get = |k: &str| *s.get(k).unwrap_or_else(|| panic!("missing {k} in\n{text}"));
        assert_eq!(
            get(
                r#"sluice_requests_total{route="chat",target="a/small",status="2xx",cache="miss"}"#
            ),
            2.0
        );
        assert_eq!(
            get(
                r#"sluice_requests_total{route="chat",target="none",status="2xx",cache="hit-semantic"}"#
            ),
            1.0
        );
        assert_eq!(
            get(r#"sluice_requests_total{route="none",target="none",status="4xx",cache="off"}"#),
            1.0
        );
        let requests: f64 = s
            .iter()
            .filter(|(k, _)| k.starts_with(REQUESTS))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(requests, 5.0);
        assert_eq!(
            get(r#"sluice_tokens_total{route="chat",target="a/small",kind="input"}"#),
            20.0
        );
        assert_eq!(
            get(r#"sluice_provider_cache_tokens_total{route="chat",target="a/small",kind="read"}"#),
            8.0
        );
        assert_eq!(
            get(
                r#"sluice_provider_cache_tokens_total{route="chat",target="a/small",kind="write"}"#
            ),
            2.0
        );
        assert_eq!(
            get(r#"sluice_cost_usd_total{route="chat",target="a/small"}"#),
            0.5
        );
        assert_eq!(
            get(r#"sluice_cost_avoided_usd_total{route="chat",target="none"}"#),
            0.5
        );
        assert_eq!(
            get(r#"sluice_cost_over_reference_usd_total{route="passthrough",target="a/big"}"#),
            0.125
        );
        assert_eq!(
            get(r#"sluice_cost_unknown_total{route="passthrough",target="a/big"}"#),
            1.0
        );
        assert_eq!(
            get(r#"sluice_request_duration_seconds_count{route="chat"}"#),
            3.0
        );
        assert_eq!(
            get(r#"sluice_request_duration_seconds_bucket{route="chat",le="0.1"}"#),
            0.0
        );
        assert_eq!(
            get(r#"sluice_request_duration_seconds_bucket{route="chat",le="0.25"}"#),
            3.0
        );
        assert_eq!(
            get(r#"sluice_request_duration_seconds_bucket{route="chat",le="+Inf"}"#),
            3.0
        );
        assert!((get(r#"sluice_request_duration_seconds_sum{route="chat"}"#) - 0.36).abs() < 1e-9);
        // Overhead = 120 ms - 100 ms, only where the upstream time is known.
        assert_eq!(
            get(r#"sluice_gateway_overhead_seconds_count{route="chat"}"#),
            2.0
        );
        assert!((get(r#"sluice_gateway_overhead_seconds_sum{route="chat"}"#) - 0.04).abs() < 1e-9);
        assert_eq!(
            get(r#"sluice_time_to_first_token_seconds_count{target="a/big"}"#),
            1.0
        );
        assert_eq!(get("sluice_embedding_duration_seconds_count"), 1.0);
        assert_eq!(
            get(r#"sluice_breaker_state{target="a/big",state="open"}"#),
            1.0
        );
        assert_eq!(
            get(r#"sluice_breaker_state{target="a/big",state="closed"}"#),
            0.0
        );
        assert_eq!(get("sluice_cache_entries"), 7.0);
        assert_eq!(get("sluice_store_healthy"), 0.0);
        assert_eq!(get("sluice_store_faults_total"), 1.0);
        assert_eq!(get("sluice_requests_in_flight"), 3.0);
        assert_eq!(
            get(r#"sluice_stream_resumes_total{route="chat",outcome="prefill"}"#),
            1.0
        );
        assert_eq!(
            get(r#"sluice_stream_resumes_total{route="chat",outcome="failed"}"#),
            1.0
        );
        assert_eq!(
            get(r#"sluice_stream_resumes_total{route="passthrough",outcome="user_turn"}"#),
            1.0
        );
        assert_eq!(
            get(r#"sluice_provider_faults_total{target="a/small",fault="billing"}"#),
            1.0
        );
        assert_eq!(
            get(r#"sluice_stream_events_skipped_total{target="a/small"}"#),
            2.0
        );
    }

    #[test]
    fn labels_come_only_from_config_and_are_escaped() {
        let cfg = Config::parse(CONFIG, "test").unwrap();
        let m = Metrics::new(&cfg);
        // An out-of-range id (a bug elsewhere) lands in `none`, never panics.
        m.observe(&obs(
            RouteSlot::Route(RouteId(99)),
            Some(TargetId(99)),
            599,
            CacheOutcome::Bypass,
        ));
        let text = m.render(&Gauges::default());
        parse(&text);
        assert!(
            text.contains(r#"route="none",target="none",status="5xx",cache="bypass""#),
            "{text}"
        );
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let labels = split_labels(r#"a="x,y",b="q\"r""#);
        assert_eq!(labels, vec![r#"a="x,y""#, r#"b="q\"r""#]);
    }
}
