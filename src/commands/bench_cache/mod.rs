//! `sluice bench cache`: cache quality on a labelled workload.
//!
//! A workload is JSON lines `{"prompt", "group"}` (optional `system`, `route`, `kind`); lines of
//! one group deserve the same answer. Each line is looked up in a real [`SemanticCache`] (the
//! real model, index and a redb store in a temporary directory); a simulated upstream answers a
//! miss with its group's answer (a consistent model; the answer's id names the line, so a later
//! hit tells which line it was served from), and the cache verifies gray-zone candidates
//! against those answers as it would against a real upstream's (`--verify`).
//!
//! * `--threshold T` replays the file in order (`replay`).
//! * `--sweep` embeds every line once and runs the cache's own decision function
//!   (`crate::cache::decide`) over those vectors for each threshold (`sweep`), then replays
//!   the real cache at the recommended threshold and counts the decisions that differ. Both agree
//!   exactly while buckets are scanned exactly (at most `cache::index::EXACT_SCAN_MAX` entries); a bigger
//!   bucket is searched with HNSW, which is approximate.
//! * `--traffic N` draws N requests from the workload (`traffic`).

mod render;
mod replay;
mod sweep;
mod traffic;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cache::{CacheKey, Embedder, EmbedderConfig, KeyScope};
use crate::chat::{ChatRequest, ChatResponse};
use crate::cli::{BenchVerify, CacheArgs};
use crate::config::CachePolicy;

pub use render::render;

/// Route, model and target of lines that name no route.
const DEFAULT_ROUTE: &str = "bench";
/// The recommended threshold has the most hits with at most this share of false hits.
const MAX_FALSE_HIT_RATE: f64 = 0.01;

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
            owner: None,
            route: self.route(),
            target: DEFAULT_ROUTE,
            simulated: &[],
        };
        CacheKey::new(&req, &scope).ok_or_else(|| "not cacheable".to_owned())
    }
}

/// How the bench verifies gray-zone candidates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Verifier {
    /// Gray-zone candidates are plain misses.
    Off,
    /// The cache compares the fresh (simulated, consistent) answer with the cached one.
    Agreement,
    /// A simulated judge, wrong with probability `error` (seeded).
    Judge { error: f64, seed: u64 },
}

impl Verifier {
    fn from_args(a: &CacheArgs) -> Result<Verifier, String> {
        match (a.judge_error, a.verify) {
            (Some(p), _) if !(0.0..=1.0).contains(&p) => {
                Err(format!("--judge-error {p} is outside 0..=1"))
            }
            (Some(error), _) => Ok(Verifier::Judge {
                error,
                seed: a.seed,
            }),
            (None, BenchVerify::Off) => Ok(Verifier::Off),
            (None, BenchVerify::Agreement) => Ok(Verifier::Agreement),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Threshold(f32),
    Sweep(Vec<f32>),
    Traffic {
        requests: usize,
        zipf: f64,
        seed: u64,
        threshold: f32,
    },
}

/// What the bench runs with besides the mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    pub verifier: Verifier,
    pub max_error: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            verifier: Verifier::Agreement,
            max_error: crate::config::cache::DEFAULT_MAX_ERROR,
        }
    }
}

/// One lookup's outcome, as `--decisions` writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub index: usize,
    pub hit: bool,
    /// The line whose entry served a hit, or the gray-zone candidate of a `gray` miss.
    pub matched_index: Option<usize>,
    pub similarity: Option<f32>,
    pub threshold: f32,
    /// `exact`, `semantic`, `frame`, `learned`, or the miss reason.
    pub outcome: &'static str,
    /// On a `guard` or `gray` miss: the guard that refused the best candidate.
    pub guard: Option<&'static str>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub lookups: u64,
    pub hits: u64,
    pub exact_hits: u64,
    /// Semantic hits of every kind: similarity, frame and learned.
    pub semantic_hits: u64,
    /// Semantic hits by equal task frames.
    pub frame_hits: u64,
    /// Semantic hits of verified gray-zone kinds.
    pub learned_hits: u64,
    /// Learned hits served for another group.
    pub learned_false: u64,
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
    pub verifier: Verifier,
    pub max_error: f64,
    pub traffic: Option<traffic::Traffic>,
}

pub async fn run(args: CacheArgs) -> Result<(), String> {
    let mode = match (&args.sweep, args.traffic) {
        (Some(s), _) => Mode::Sweep(parse_sweep(s)?),
        (None, Some(requests)) => Mode::Traffic {
            requests,
            zipf: args.zipf,
            seed: args.seed,
            threshold: args.threshold,
        },
        (None, None) => Mode::Threshold(args.threshold),
    };
    let opts = Options {
        verifier: Verifier::from_args(&args)?,
        max_error: args.max_error,
    };
    let embedder = Embedder::load(&EmbedderConfig::new(&args.models_dir)).map_err(|e| {
        format!(
            "{}: {e} (run scripts/fetch-models.sh)",
            args.models_dir.display()
        )
    })?;
    let report = evaluate(&args.workload, &mode, opts, &embedder).await?;
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
/// Replays `workload` in `mode` (see the module documentation).
pub async fn evaluate(
    workload: &Path,
    mode: &Mode,
    opts: Options,
    embedder: &Embedder,
) -> Result<Report, String> {
    let lines = read_workload(workload)?;
    if !(0.0..=0.5).contains(&opts.max_error) {
        return Err(format!("--max-error {} is outside 0..=0.5", opts.max_error));
    }
    let mut runs = Vec::new();
    let mut recommended = None;
    let mut check = None;
    let mut traffic = None;
    match mode {
        Mode::Threshold(t) => {
            check_threshold(*t)?;
            runs.push(replay::replay(&lines, *t, opts, embedder).await?);
        }
        Mode::Sweep(thresholds) => {
            thresholds.iter().try_for_each(|t| check_threshold(*t))?;
            tracing::info!(lines = lines.len(), "embedding each line once");
            let prepared = sweep::prepare(&lines, embedder).await?;
            for &t in thresholds {
                let (decisions, largest) = sweep::simulate(&lines, &prepared, t, opts);
                runs.push(finish_run(&lines, t, "simulated", decisions, largest));
            }
            recommended = recommend(&runs);
            let at = recommended
                .or(thresholds.last().copied())
                .ok_or("empty sweep")?;
            tracing::info!(threshold = %format!("{at:.2}"), "checking against the real cache");
            let real = replay::replay(&lines, at, opts, embedder).await?;
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
        Mode::Traffic {
            requests,
            zipf,
            seed,
            threshold,
        } => {
            check_threshold(*threshold)?;
            let spec = traffic::Spec {
                requests: *requests,
                zipf: *zipf,
                seed: *seed,
                threshold: *threshold,
            };
            traffic = Some(traffic::run(&lines, &spec, opts, embedder).await?);
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
        verifier: opts.verifier,
        max_error: opts.max_error,
        traffic,
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

/// The policy under test: the threshold and the verification vary; nothing expires or is
/// evicted.
fn policy(threshold: f32, opts: Options) -> CachePolicy {
    CachePolicy {
        similarity_threshold: threshold,
        ttl_secs: 10 * 365 * 24 * 3600,
        max_entries: 1 << 40,
        max_bytes: 1 << 50,
        verify: match opts.verifier {
            Verifier::Off => crate::config::Verify::Off,
            // The bench plays the judge itself and reports its verdicts to the cache.
            Verifier::Agreement | Verifier::Judge { .. } => crate::config::Verify::Agreement,
        },
        max_error: opts.max_error,
        ..CachePolicy::default()
    }
}

/// The simulated upstream's answer to line `i`: the same text for every line of a group (a
/// consistent model); the id names the line, so a hit tells which line stored it.
fn answer(i: usize, line: &WorkloadLine) -> Result<ChatResponse, String> {
    serde_json::from_value(json!({
        "id": format!("chatcmpl-bench-{i}"),
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": format!("answer of group {}", line.group)}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
    .map_err(|e| e.to_string())
}

/// The line a cached answer was stored for.
fn answered_line(r: &ChatResponse) -> Option<usize> {
    r.id.strip_prefix("chatcmpl-bench-")?.parse().ok()
}

/// Whether the simulated judge accepts the answer of line `j` for line `i`: the truth (the same
/// group), flipped with probability `error`.
fn judge(lines: &[WorkloadLine], i: usize, j: usize, error: f64, rng: &mut impl rand::Rng) -> bool {
    let truth = lines[i].group == lines[j].group;
    truth != rng.random_bool(error)
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
        let correct = d
            .matched_index
            .filter(|_| d.hit)
            .map(|j| lines[j].group == line.group);
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
            c.semantic_hits += u64::from(matches!(d.outcome, "semantic" | "frame" | "learned"));
            c.frame_hits += u64::from(d.outcome == "frame");
            c.learned_hits += u64::from(d.outcome == "learned");
            c.learned_false += u64::from(d.outcome == "learned" && correct == Some(false));
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
