//! `sluice bench cache`: cache quality on a labelled workload.
//!
//! A workload is JSON lines `{"prompt", "group"}` (optional `system`, `route`, `kind`), replayed
//! in file order; lines of one group deserve the same answer. Each line is looked up in a real
//! [`SemanticCache`] (the real model, index and a redb store in a temporary directory, no
//! upstream); a miss stores a synthetic answer naming its line, so a later hit tells which line
//! (and so which group) it was served from.
//!
//! `--threshold T` is one such replay. `--sweep` embeds every line once and runs the cache's
//! decision procedure over those vectors for each threshold ([`simulate`]: exact fingerprint,
//! then the bucket's [`CANDIDATES`] most similar stored entries, best first, down to the
//! threshold, the first one every guard accepts), then replays the real cache at the recommended
//! threshold and counts the decisions that differ. Both agree exactly while buckets are scanned
//! exactly (at most [`EXACT_SCAN_MAX`] entries); a bigger bucket is searched with HNSW, which is
//! approximate, so the report shows the largest bucket and the real replay's disagreements.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cache::embed::cosine;
use crate::cache::index::EXACT_SCAN_MAX;
use crate::cache::{
    CacheKey, CacheSettings, Embedder, EmbedderConfig, HitKind, KeyScope, LookupOutcome,
    MissReason, SemanticCache,
};
use crate::chat::{ChatRequest, ChatResponse};
use crate::cli::CacheArgs;
use crate::config::CachePolicy;
use crate::store::Store;
use crate::text::{Features, GuardMismatch};

/// Route, model and target of lines that name no route.
const DEFAULT_ROUTE: &str = "bench";
/// The recommended threshold has the most hits with at most this share of false hits.
const MAX_FALSE_HIT_RATE: f64 = 0.01;
/// Mirrors the cache's private constants of the same names (`src/cache/mod.rs`); if they drift,
/// the sweep's check against the real cache reports disagreements.
const CANDIDATES: usize = 32;
const DOCUMENT_INSTRUCTION_THRESHOLD: f32 = 0.5;

#[derive(Debug, Clone, Deserialize)]
pub struct WorkloadLine {
    pub prompt: String,
    /// A string, or a number (cluster ids of labelled datasets), read as its text.
    #[serde(deserialize_with = "string_or_number")]
    pub group: String,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

impl WorkloadLine {
    fn route(&self) -> &str {
        self.route.as_deref().unwrap_or(DEFAULT_ROUTE)
    }

    fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("-")
    }

    fn key(&self) -> Result<CacheKey, String> {
        let mut messages = Vec::new();
        if let Some(s) = &self.system {
            messages.push(json!({"role": "system", "content": s}));
        }
        messages.push(json!({"role": "user", "content": self.prompt}));
        let req: ChatRequest =
            serde_json::from_value(json!({"model": self.route(), "messages": messages}))
                .map_err(|e| e.to_string())?;
        let scope = KeyScope {
            route: self.route(),
            target: DEFAULT_ROUTE,
        };
        CacheKey::new(&req, &scope).ok_or_else(|| "not cacheable".to_owned())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Threshold(f32),
    Sweep(Vec<f32>),
}

/// What one lookup did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub index: usize,
    pub hit: bool,
    pub matched_index: Option<usize>,
    pub similarity: Option<f32>,
    pub threshold: f32,
    /// `exact`, `semantic`, or the miss reason.
    pub outcome: &'static str,
    /// On a `guard` miss: the guard that refused the best candidate above the threshold.
    pub guard: Option<&'static str>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub lookups: u64,
    pub hits: u64,
    pub exact_hits: u64,
    pub semantic_hits: u64,
    pub correct: u64,
    pub false_hits: u64,
    /// Lookups whose group appeared earlier in the workload (recall's denominator).
    pub repeats: u64,
    pub hit_rate: f64,
    /// correct / hits; None without hits.
    pub precision: Option<f64>,
    /// correct / repeats; None without repeats.
    pub recall: Option<f64>,
    pub false_hit_rate: f64,
}

/// Percentiles in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Percentiles {
    pub n: usize,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// Lookup latency of a real replay (inserts are timed apart and excluded).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    pub lookups: Option<Percentiles>,
    pub exact_hits: Option<Percentiles>,
    pub semantic_hits: Option<Percentiles>,
    pub misses: Option<Percentiles>,
    /// Embedding of the prompt, part of each lookup that reached the semantic path.
    pub embedding: Option<Percentiles>,
    /// Insert after a miss plus the flush that commits it (not part of the lookups).
    pub insert_flush: Option<Percentiles>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub threshold: f32,
    /// `cache` (the real cache replayed) or `simulated` (sweep, over vectors computed once).
    pub engine: &'static str,
    pub overall: Counts,
    pub by_kind: BTreeMap<String, Counts>,
    /// Most entries one search bucket held; the real cache searches buckets above
    /// `EXACT_SCAN_MAX` (2,048) with an approximate HNSW graph.
    pub largest_bucket: usize,
    /// Repeats (lookups whose group was seen before) not served from their group, by why:
    /// `below_threshold`, `guard:<guard>`, `empty`, or `false_hit`.
    pub missed: BTreeMap<String, u64>,
    pub latency: Option<Latency>,
    #[serde(skip)]
    pub decisions: Vec<Decision>,
}

/// A sweep's simulated decisions at one threshold against the real cache replayed there.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub threshold: f32,
    pub disagreements: usize,
    pub first_disagreement: Option<usize>,
    pub real: Run,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cores: usize,
    pub model: String,
    pub workload: String,
    pub lines: usize,
    pub groups: usize,
    pub runs: Vec<Run>,
    /// Sweep: the threshold with the most hits at a false-hit rate of at most 1%.
    pub recommended: Option<f32>,
    pub check: Option<Check>,
}

pub async fn run(args: CacheArgs) -> Result<(), String> {
    let mode = match &args.sweep {
        Some(s) => Mode::Sweep(parse_sweep(s)?),
        None => Mode::Threshold(args.threshold),
    };
    let embedder = Embedder::load(&EmbedderConfig::new(&args.models_dir)).map_err(|e| {
        format!(
            "{}: {e} (run scripts/fetch-models.sh)",
            args.models_dir.display()
        )
    })?;
    let report = evaluate(&args.workload, &mode, &embedder).await?;
    if let Some(path) = &args.decisions {
        write_decisions(&report, path)?;
    }
    if args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// `FROM:TO:STEP` -> thresholds from FROM to TO inclusive (rounded to 4 decimals, so that 0.8
/// here is the same f32 as `--threshold 0.8`).
pub fn parse_sweep(s: &str) -> Result<Vec<f32>, String> {
    let bad = || format!("--sweep {s}: expected FROM:TO:STEP within 0..=1, e.g. 0.70:0.95:0.05");
    let parts: Vec<f64> = s
        .split(':')
        .map(|p| p.trim().parse::<f64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [from, to, step] = parts[..] else {
        return Err(bad());
    };
    if !(0.0..=1.0).contains(&from) || !(from..=1.0).contains(&to) || step <= 0.0 {
        return Err(bad());
    }
    let n = ((to - from) / step + 1e-9).floor() as usize + 1;
    if n > 1000 {
        return Err(format!("--sweep {s}: {n} thresholds; at most 1000"));
    }
    Ok((0..n)
        .map(|i| ((from + i as f64 * step) * 1e4).round() as f32 / 1e4)
        .collect())
}

/// A workload's `group`: a string, or a number read as its text.
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct Group;
    impl serde::de::Visitor<'_> for Group {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or a number")
        }
        fn visit_str<E>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_i64<E>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(Group)
}

/// Non-blank lines of a workload file.
pub fn read_workload(path: &Path) -> Result<Vec<WorkloadLine>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Editors and PowerShell on Windows start UTF-8 files with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: WorkloadLine =
            serde_json::from_str(raw).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        if line.prompt.trim().is_empty() {
            return Err(format!("{}:{}: empty prompt", path.display(), n + 1));
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return Err(format!("{}: no workload lines", path.display()));
    }
    Ok(lines)
}

/// Replays `workload` at each threshold of `mode` (see the module documentation).
pub async fn evaluate(workload: &Path, mode: &Mode, embedder: &Embedder) -> Result<Report, String> {
    let lines = read_workload(workload)?;
    let mut runs = Vec::new();
    let mut recommended = None;
    let mut check = None;
    match mode {
        Mode::Threshold(t) => {
            check_threshold(*t)?;
            runs.push(replay(&lines, *t, embedder).await?);
        }
        Mode::Sweep(thresholds) => {
            thresholds.iter().try_for_each(|t| check_threshold(*t))?;
            tracing::info!(lines = lines.len(), "embedding each line once");
            let prepared = prepare(&lines, embedder).await?;
            let mut verdicts = HashMap::new();
            for &t in thresholds {
                let (decisions, largest) = simulate(&prepared, t, &mut verdicts);
                runs.push(finish_run(&lines, t, "simulated", decisions, largest));
            }
            recommended = recommend(&runs);
            let at = recommended
                .or(thresholds.last().copied())
                .ok_or("empty sweep")?;
            tracing::info!(threshold = %format!("{at:.2}"), "checking against the real cache");
            let real = replay(&lines, at, embedder).await?;
            let sim = runs.iter().find(|r| r.threshold == at).ok_or("no run")?;
            let differ: Vec<usize> = (0..lines.len())
                .filter(|&i| !same_decision(&sim.decisions[i], &real.decisions[i]))
                .collect();
            check = Some(Check {
                threshold: at,
                disagreements: differ.len(),
                first_disagreement: differ.first().copied(),
                real,
            });
        }
    }
    Ok(Report {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        model: embedder.model_id().to_owned(),
        workload: workload.display().to_string(),
        lines: lines.len(),
        groups: lines.iter().map(|l| &l.group).collect::<HashSet<_>>().len(),
        runs,
        recommended,
        check,
    })
}

fn check_threshold(t: f32) -> Result<(), String> {
    if (0.0..=1.0).contains(&t) {
        Ok(())
    } else {
        Err(format!("threshold {t} is outside 0.0..=1.0"))
    }
}

/// Equal outcomes, and similarities equal up to float noise.
fn same_decision(a: &Decision, b: &Decision) -> bool {
    let sim = match (a.similarity, b.similarity) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-5,
        (x, y) => x == y,
    };
    (a.hit, a.matched_index, a.outcome, a.guard) == (b.hit, b.matched_index, b.outcome, b.guard)
        && sim
}

/// The policy under test: only the threshold varies; nothing expires or is evicted.
fn policy(threshold: f32) -> CachePolicy {
    CachePolicy {
        similarity_threshold: threshold,
        ttl_secs: 10 * 365 * 24 * 3600,
        max_entries: 1 << 40,
        max_bytes: 1 << 50,
        ..CachePolicy::default()
    }
}

/// The synthetic answer stored for line `i`: its content names the line.
fn answer(i: usize, line: &WorkloadLine) -> Result<ChatResponse, String> {
    serde_json::from_value(json!({
        "id": format!("chatcmpl-bench-{i}"),
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": format!("line:{i} group:{}", line.group)}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
    .map_err(|e| e.to_string())
}

fn answered_line(r: &ChatResponse) -> Option<usize> {
    let text = r.choices.first()?.message.text();
    text.strip_prefix("line:")?.split(' ').next()?.parse().ok()
}

/// One replay through a fresh real cache at `threshold`.
async fn replay(
    lines: &[WorkloadLine],
    threshold: f32,
    embedder: &Embedder,
) -> Result<Run, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let settings = CacheSettings {
        data_dir: dir.path().to_owned(),
        ..CacheSettings::default()
    };
    let store = Store::open(dir.path()).map_err(|e| e.to_string())?;
    let cache =
        SemanticCache::open_with(store, embedder.clone(), &settings).map_err(|e| e.to_string())?;
    let policy = policy(threshold);
    let mut decisions = Vec::with_capacity(lines.len());
    let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut buckets: HashMap<[u8; 32], usize> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        let key = line.key().map_err(|e| format!("line {i}: {e}"))?;
        let start = Instant::now();
        let outcome = cache.lookup_outcome(&key, &policy).await;
        let took = start.elapsed();
        let outcome = outcome.map_err(|e| e.to_string())?;
        let d = decision(i, threshold, &outcome)?;
        if let Some(t) = outcome.embed_time {
            times.entry("embedding").or_default().push(t);
        }
        let class = if d.hit { d.outcome } else { "misses" };
        times.entry(class).or_default().push(took);
        times.entry("lookups").or_default().push(took);
        if !d.hit {
            if !key.query_text().is_empty() {
                *buckets.entry(key.bucket).or_default() += 1;
            }
            let start = Instant::now();
            if !cache.insert(key, &answer(i, line)?, &policy, None) {
                return Err(format!("line {i}: the cache refused the insert"));
            }
            // Committed before the next lookup, as if the answer had come back in between.
            cache.flush().await.map_err(|e| e.to_string())?;
            times.entry("insert").or_default().push(start.elapsed());
        }
        decisions.push(d);
    }
    let mut pick = |k: &str| percentiles(times.remove(k).unwrap_or_default());
    let latency = Latency {
        lookups: pick("lookups"),
        exact_hits: pick("exact"),
        semantic_hits: pick("semantic"),
        misses: pick("misses"),
        embedding: pick("embedding"),
        insert_flush: pick("insert"),
    };
    let largest = buckets.values().copied().max().unwrap_or(0);
    let run = finish_run(lines, threshold, "cache", decisions, largest);
    Ok(Run {
        latency: Some(latency),
        ..run
    })
}

/// A real lookup's outcome as a decision (a hit's answer names the line that stored it).
fn decision(i: usize, threshold: f32, outcome: &LookupOutcome) -> Result<Decision, String> {
    let mut d = Decision {
        index: i,
        hit: outcome.hit.is_some(),
        matched_index: None,
        similarity: None,
        threshold,
        outcome: "",
        guard: None,
    };
    if let Some(hit) = &outcome.hit {
        let j = answered_line(&hit.response)
            .filter(|&j| j < i)
            .ok_or_else(|| format!("line {i}: hit on an entry this replay did not store"))?;
        d.matched_index = Some(j);
        d.similarity = Some(hit.similarity);
        d.outcome = match hit.kind {
            HitKind::Exact => "exact",
            HitKind::Semantic => "semantic",
        };
    } else {
        let reason = outcome.miss.unwrap_or(MissReason::Empty);
        match reason {
            MissReason::BelowThreshold(s) => d.similarity = Some(s),
            MissReason::Guard(g) => d.guard = Some(g.metric_label()),
            _ => {}
        }
        d.outcome = reason.metric_label();
    }
    Ok(d)
}

/// What the cache's decision procedure needs of one line, computed once.
struct Prepared {
    fingerprint: [u8; 32],
    bucket: [u8; 32],
    document: bool,
    /// None for an empty instruction (stored for exact matching only).
    vector: Option<Vec<f32>>,
    features: Features,
}

/// Embeds each line's query text on its own, as a lookup does (batching could change the last
/// bits of a vector, and a similarity right at a threshold with them).
async fn prepare(lines: &[WorkloadLine], embedder: &Embedder) -> Result<Vec<Prepared>, String> {
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let key = line.key().map_err(|e| format!("line {i}: {e}"))?;
        let text = key.query_text();
        let vector = if text.is_empty() {
            None
        } else {
            Some(embedder.embed(text).await.map_err(|e| e.to_string())?)
        };
        out.push(Prepared {
            fingerprint: key.fingerprint,
            bucket: key.bucket,
            document: key.has_document(),
            features: Features::extract(text),
            vector,
        });
    }
    Ok(out)
}

/// The cache's lookup-then-insert-on-miss over prepared lines at `threshold` (mirrors
/// `SemanticCache::find` and its exact-scan search); `verdicts` caches guard checks across
/// thresholds. Returns the decisions and the largest bucket.
fn simulate(
    lines: &[Prepared],
    threshold: f32,
    verdicts: &mut HashMap<(usize, usize), Result<(), GuardMismatch>>,
) -> (Vec<Decision>, usize) {
    let mut exact: HashMap<[u8; 32], usize> = HashMap::new();
    let mut buckets: HashMap<[u8; 32], Vec<usize>> = HashMap::new();
    let mut decisions = Vec::with_capacity(lines.len());
    for (i, p) in lines.iter().enumerate() {
        let mut d = Decision {
            index: i,
            hit: false,
            matched_index: None,
            similarity: None,
            threshold,
            outcome: "empty",
            guard: None,
        };
        let stored = buckets.get(&p.bucket).map_or(&[][..], Vec::as_slice);
        if let Some(&j) = exact.get(&p.fingerprint) {
            (d.hit, d.matched_index, d.similarity, d.outcome) = (true, Some(j), Some(1.0), "exact");
        } else if let Some(v) = p.vector.as_deref().filter(|_| !stored.is_empty()) {
            if threshold < 1.0 {
                let t = if p.document {
                    threshold.min(DOCUMENT_INSTRUCTION_THRESHOLD)
                } else {
                    threshold
                };
                let mut scored: Vec<(usize, f32)> = stored
                    .iter()
                    .map(|&j| (j, cosine(v, lines[j].vector.as_deref().unwrap_or(&[]))))
                    .collect();
                scored.sort_by(|a, b| b.1.total_cmp(&a.1));
                scored.truncate(CANDIDATES);
                (d.similarity, d.outcome) = (Some(scored[0].1), "below_threshold");
                for (j, sim) in scored.into_iter().take_while(|c| c.1 >= t) {
                    let verdict = *verdicts
                        .entry((i, j))
                        .or_insert_with(|| p.features.agree(&lines[j].features));
                    match verdict {
                        Ok(()) => {
                            (d.hit, d.matched_index, d.similarity) = (true, Some(j), Some(sim));
                            (d.outcome, d.guard) = ("semantic", None);
                            break;
                        }
                        // The best refused candidate's objection is the one reported.
                        Err(g) if d.guard.is_none() => {
                            (d.similarity, d.outcome) = (None, "guard");
                            d.guard = Some(g.metric_label());
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        if !d.hit {
            exact.insert(p.fingerprint, i);
            if p.vector.is_some() {
                buckets.entry(p.bucket).or_default().push(i);
            }
        }
        decisions.push(d);
    }
    let largest = buckets.values().map(Vec::len).max().unwrap_or(0);
    (decisions, largest)
}

fn finish_run(
    lines: &[WorkloadLine],
    threshold: f32,
    engine: &'static str,
    decisions: Vec<Decision>,
    largest_bucket: usize,
) -> Run {
    let mut overall = Counts::default();
    let mut by_kind: BTreeMap<String, Counts> = BTreeMap::new();
    let mut missed: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen = HashSet::new();
    for (line, d) in lines.iter().zip(&decisions) {
        let repeat = !seen.insert(line.group.as_str());
        let correct = d.matched_index.map(|j| lines[j].group == line.group);
        if repeat && correct != Some(true) {
            let why = match (d.hit, d.guard) {
                (true, _) => "false_hit".to_owned(),
                (false, Some(g)) => format!("guard:{g}"),
                (false, None) => d.outcome.to_owned(),
            };
            *missed.entry(why).or_default() += 1;
        }
        for c in [
            &mut overall,
            by_kind.entry(line.kind().to_owned()).or_default(),
        ] {
            c.lookups += 1;
            c.repeats += u64::from(repeat);
            c.hits += u64::from(d.hit);
            c.exact_hits += u64::from(d.outcome == "exact");
            c.semantic_hits += u64::from(d.outcome == "semantic");
            c.correct += u64::from(correct == Some(true));
            c.false_hits += u64::from(correct == Some(false));
        }
    }
    for c in std::iter::once(&mut overall).chain(by_kind.values_mut()) {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        c.hit_rate = ratio(c.hits, c.lookups).unwrap_or(0.0);
        c.precision = ratio(c.correct, c.hits);
        c.recall = ratio(c.correct, c.repeats);
        c.false_hit_rate = ratio(c.false_hits, c.lookups).unwrap_or(0.0);
    }
    Run {
        threshold,
        engine,
        overall,
        by_kind,
        largest_bucket,
        missed,
        latency: None,
        decisions,
    }
}

/// Most hits at a false-hit rate of at most 1%; ties go to fewer false hits, then the higher
/// threshold.
fn recommend(runs: &[Run]) -> Option<f32> {
    runs.iter()
        .filter(|r| r.overall.false_hit_rate <= MAX_FALSE_HIT_RATE)
        .max_by(|a, b| {
            (a.overall.hits.cmp(&b.overall.hits))
                .then(b.overall.false_hits.cmp(&a.overall.false_hits))
                .then(a.threshold.total_cmp(&b.threshold))
        })
        .map(|r| r.threshold)
}

/// Nearest-rank percentiles; None without samples.
fn percentiles(mut v: Vec<Duration>) -> Option<Percentiles> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let at = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some(Percentiles {
        n: v.len(),
        p50_us: at(0.50).as_secs_f64() * 1e6,
        p99_us: at(0.99).as_secs_f64() * 1e6,
    })
}

/// Writes every run's decisions, one JSON line per lookup.
pub fn write_decisions(report: &Report, path: &Path) -> Result<(), String> {
    let mut out = String::new();
    for d in report.runs.iter().flat_map(|r| &r.decisions) {
        out.push_str(&serde_json::to_string(d).map_err(|e| e.to_string())?);
        out.push('\n');
    }
    std::fs::write(path, out).map_err(|e| format!("{}: {e}", path.display()))
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), |x| format!("{:.1}%", 100.0 * x))
}

/// Columns sized to their widest cell; the first left-aligned, the others right-aligned.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let mut line = format!("{:<w$}", row[0], w = widths[0]);
        for (cell, w) in row.iter().zip(&widths).skip(1) {
            let _ = write!(line, "  {cell:>w$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The report as tables.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "sluice bench cache");
    let _ = writeln!(out, "machine: {} cores; model: {}", r.cores, r.model);
    let _ = writeln!(
        out,
        "workload: {} ({} lines, {} groups)",
        r.workload, r.lines, r.groups
    );
    let engine = if r.check.is_some() {
        "sweep: one embedding per line, the cache's decision procedure per threshold"
    } else {
        "the real cache (model, index, redb store), replayed once"
    };
    let _ = writeln!(out, "engine: {engine}\n");
    let rows: Vec<Vec<String>> = r
        .runs
        .iter()
        .map(|run| {
            let c = &run.overall;
            let mark = if r.recommended == Some(run.threshold) {
                "<"
            } else {
                ""
            };
            vec![
                format!("{:.2}", run.threshold),
                c.lookups.to_string(),
                c.hits.to_string(),
                c.exact_hits.to_string(),
                c.semantic_hits.to_string(),
                c.correct.to_string(),
                c.false_hits.to_string(),
                pct(Some(c.hit_rate)),
                pct(c.precision),
                pct(c.recall),
                pct(Some(c.false_hit_rate)),
                run.largest_bucket.to_string(),
                mark.to_owned(),
            ]
        })
        .collect();
    let header = [
        "threshold",
        "lookups",
        "hits",
        "exact",
        "semantic",
        "correct",
        "false",
        "hit rate",
        "precision",
        "recall",
        "false rate",
        "bucket",
        "",
    ];
    table(&mut out, &header, &rows);
    let _ = writeln!(
        out,
        "recall = correct / repeats (lookups whose group was seen before); bucket = most entries \
         in one search bucket (above {EXACT_SCAN_MAX} the cache searches it with HNSW)"
    );
    if r.check.is_some() {
        let _ = match r.recommended {
            Some(t) => writeln!(
                out,
                "recommended (<): {t:.2}, most hits at a false-hit rate <= 1%"
            ),
            None => writeln!(
                out,
                "recommended: none, every threshold has a false-hit rate > 1%"
            ),
        };
    }
    let detail = r.check.as_ref().map_or(r.runs.first(), |c| {
        r.runs.iter().find(|x| x.threshold == c.threshold)
    });
    if let Some(run) = detail {
        let _ = writeln!(out, "\nby kind at {:.2}:", run.threshold);
        let rows: Vec<Vec<String>> = run
            .by_kind
            .iter()
            .map(|(kind, c)| {
                let n = [c.lookups, c.repeats, c.hits, c.correct, c.false_hits];
                let mut row = vec![kind.clone()];
                row.extend(n.iter().map(u64::to_string));
                row.extend([pct(c.precision), pct(c.recall)]);
                row
            })
            .collect();
        let header = [
            "kind",
            "lines",
            "repeats",
            "hits",
            "correct",
            "false",
            "precision",
            "recall",
        ];
        table(&mut out, &header, &rows);
        let missed: Vec<String> = run.missed.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            out,
            "repeats not served from their group: {}",
            missed.join(", ")
        );
    }
    if let Some(c) = &r.check {
        let first = c
            .first_disagreement
            .map_or(String::new(), |i| format!(" (first: line {i})"));
        let _ = writeln!(
            out,
            "\ncheck: the real cache replayed at {:.2} differs from the sweep on {} of {} decisions{first}",
            c.threshold, c.disagreements, r.lines
        );
    }
    let real = r.check.as_ref().map(|c| &c.real).or(r.runs.first());
    if let Some((t, l)) = real.and_then(|run| Some((run.threshold, run.latency.as_ref()?))) {
        let _ = writeln!(
            out,
            "\nlookup latency, real cache at {t:.2} (microseconds; inserts excluded):"
        );
        let rows: Vec<Vec<String>> = [
            ("all lookups", &l.lookups),
            ("exact hits", &l.exact_hits),
            ("semantic hits", &l.semantic_hits),
            ("misses", &l.misses),
            ("embedding (within lookups)", &l.embedding),
            ("insert + flush (after a miss)", &l.insert_flush),
        ]
        .into_iter()
        .filter_map(|(name, p)| {
            let p = p.as_ref()?;
            Some(vec![
                name.to_owned(),
                p.n.to_string(),
                format!("{:.0}", p.p50_us),
                format!("{:.0}", p.p99_us),
            ])
        })
        .collect();
        table(&mut out, &["", "n", "p50", "p99"], &rows);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<WorkloadLine>, String> {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        read_workload(f.path())
    }

    #[test]
    fn workloads_from_other_tools_read() {
        // A byte order mark, CRLF line ends, blank lines, numeric groups, unknown fields.
        let lines = read(
            "\u{feff}{\"prompt\":\"a\",\"group\":7}\r\n\r\n{\"prompt\":\"b\",\"group\":\"7\",\"x\":1}\r\n{\"prompt\":\"c\",\"group\":2.5,\"kind\":\"k\"}\n",
        )
        .unwrap();
        let groups: Vec<&str> = lines.iter().map(|l| l.group.as_str()).collect();
        assert_eq!(groups, ["7", "7", "2.5"]);
        assert_eq!(lines[2].kind(), "k");

        let err = read("{\"prompt\":\"a\",\"group\":1}\n{\"prompt\":\"b\",\"group\":null}\n")
            .unwrap_err();
        assert!(
            err.contains(":2: invalid type: null, expected a string or a number"),
            "{err}"
        );
        assert!(read("").unwrap_err().contains("no workload lines"));
    }
}
