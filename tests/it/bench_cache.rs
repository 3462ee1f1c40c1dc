//! `sluice bench cache` through its library function: a tiny labelled workload (paraphrases,
//! hard negatives, a second system prompt, a long document with other instructions) replayed
//! through the real cache, and the sweep checked against separate real replays.

use std::collections::HashSet;

use serde_json::{json, Value};
use sluice::commands::bench_cache::{evaluate, write_decisions, Counts, Mode, Report, Run};

use super::support;

const ARTICLE: &str = "The city council voted on Tuesday to extend the riverside cycle path by \
four kilometres, linking the old harbour district with the university campus. The project, \
first proposed in 2019, will cost an estimated 12 million euros and is expected to take two \
years. Supporters say the route will cut car traffic on the main bridge and give students a \
safer way to reach lectures. Local shop owners along the harbour front were divided: some \
welcomed the extra footfall, while others worried that losing forty parking spaces would drive \
customers away. The council promised a consultation on the parking plan before construction \
starts next spring, and said that the existing path will stay open during the works.";

fn workload() -> Vec<Value> {
    let doc = |instruction: &str| format!("{instruction}\n\n{ARTICLE}");
    vec![
        json!({"prompt": "How do I reset my password?", "group": "pw", "kind": "original"}),
        json!({"prompt": "What is the capital of France?", "group": "fr", "kind": "original"}),
        json!({"prompt": "Convert 5 kg to pounds", "group": "kg5", "kind": "original"}),
        json!({"prompt": "How can I reset my password?", "group": "pw", "kind": "paraphrase"}),
        json!({"prompt": "How do I  reset my password?", "group": "pw", "kind": "exact"}),
        json!({"prompt": "How do I reset my username?", "group": "user", "kind": "negative"}),
        json!({"prompt": "What's the capital city of France?", "group": "fr", "kind": "paraphrase"}),
        json!({"prompt": "What is the capital of Germany?", "group": "de", "kind": "negative"}),
        json!({"prompt": "Convert 50 kg to pounds", "group": "kg50", "kind": "negative"}),
        json!({"prompt": "How many pounds is 5 kg?", "group": "kg5", "kind": "paraphrase"}),
        json!({"prompt": "What is the capital of France?", "group": "fr-pirate",
               "system": "Answer like a pirate.", "kind": "negative"}),
        json!({"prompt": "What is the capital of France?", "group": "fr", "route": "other",
               "kind": "exact"}),
        json!({"prompt": doc("Summarize the following article:"), "group": "sum", "route": "docs",
               "kind": "original"}),
        json!({"prompt": doc("Please give me a summary of this article:"), "group": "sum",
               "route": "docs", "kind": "paraphrase"}),
        json!({"prompt": doc("Translate the following article into German:"), "group": "tr",
               "route": "docs", "kind": "negative"}),
        json!({"prompt": doc("Summarize the following article:"), "group": "sum",
               "route": "docs", "kind": "exact"}),
    ]
}

fn write_workload(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("tiny.jsonl");
    let mut text = String::new();
    for line in workload() {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    text.push('\n'); // a trailing blank line is skipped
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_consistent(run: &Run, lines: &[Value]) {
    let c = &run.overall;
    assert_eq!(c.lookups as usize, lines.len());
    assert_eq!(c.hits, c.correct + c.false_hits, "{c:?}");
    assert_eq!(c.hits, c.exact_hits + c.semantic_hits, "{c:?}");
    let mut seen = HashSet::new();
    let repeats = lines
        .iter()
        .filter(|l| !seen.insert(l["group"].as_str().unwrap()))
        .count() as u64;
    assert_eq!(c.repeats, repeats);
    assert!(c.correct <= c.repeats);
    assert_eq!(c.recall, Some(c.correct as f64 / repeats as f64));
    assert_eq!(run.missed.values().sum::<u64>(), c.repeats - c.correct);
    let sum = run.by_kind.values().fold(Counts::default(), |mut acc, k| {
        acc.lookups += k.lookups;
        acc.hits += k.hits;
        acc.correct += k.correct;
        acc.false_hits += k.false_hits;
        acc.repeats += k.repeats;
        acc
    });
    assert_eq!(
        (
            sum.lookups,
            sum.hits,
            sum.correct,
            sum.false_hits,
            sum.repeats
        ),
        (c.lookups, c.hits, c.correct, c.false_hits, c.repeats)
    );
    assert_eq!(run.decisions.len(), lines.len());
    for (i, d) in run.decisions.iter().enumerate() {
        assert_eq!(d.index, i);
        // A hit names the line that stored its entry; a gray-zone miss names its candidate.
        assert_eq!(
            d.hit || d.outcome == "gray",
            d.matched_index.is_some(),
            "{d:?}"
        );
        assert!(d.matched_index.is_none_or(|j| j < i));
    }
}

fn only_run(r: &Report) -> &Run {
    assert_eq!(r.runs.len(), 1);
    &r.runs[0]
}

#[tokio::test]
async fn replay_counts_are_consistent_and_the_sweep_matches_separate_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_workload(dir.path());
    let lines = workload();
    let embedder = support::embedder();

    let low = evaluate(&path, &Mode::Threshold(0.70), Default::default(), &embedder)
        .await
        .unwrap();
    let high = evaluate(&path, &Mode::Threshold(0.90), Default::default(), &embedder)
        .await
        .unwrap();
    assert_eq!(low.lines, lines.len());
    for r in [&low, &high] {
        let run = only_run(r);
        assert_eq!(run.engine, "cache");
        assert_consistent(run, &lines);
        assert!(run.latency.as_ref().unwrap().lookups.is_some());
        let d = &run.decisions;
        // Whitespace-only change and the repeated summarisation request: exact hits.
        assert_eq!((d[4].outcome, d[4].matched_index), ("exact", Some(0)));
        assert_eq!((d[15].outcome, d[15].matched_index), ("exact", Some(12)));
        // Another system prompt or route is another namespace: never served from line 1.
        assert_ne!(d[10].matched_index, Some(1));
        assert_ne!(d[11].matched_index, Some(1));
        // A different task on the same document is refused.
        assert!(!d[14].hit, "{:?}", d[14]);
    }

    let sweep = evaluate(
        &path,
        &Mode::Sweep(vec![0.70, 0.80, 0.90]),
        Default::default(),
        &embedder,
    )
    .await
    .unwrap();
    assert_eq!(sweep.runs.len(), 3);
    let check = sweep.check.as_ref().expect("a sweep checks the real cache");
    assert_eq!(check.disagreements, 0, "{check:?}");
    for (sim, real) in [
        (&sweep.runs[0], only_run(&low)),
        (&sweep.runs[2], only_run(&high)),
    ] {
        assert_eq!(sim.engine, "simulated");
        assert_consistent(sim, &lines);
        assert_eq!(sim.threshold, real.threshold);
        assert_eq!(sim.overall, real.overall);
        assert_eq!(sim.by_kind, real.by_kind);
        assert_eq!(sim.largest_bucket, real.largest_bucket);
        for (a, b) in sim.decisions.iter().zip(&real.decisions) {
            assert_eq!(
                (a.hit, a.matched_index, a.outcome, a.guard),
                (b.hit, b.matched_index, b.outcome, b.guard)
            );
            match (a.similarity, b.similarity) {
                (Some(x), Some(y)) => assert!((x - y).abs() < 1e-6, "{a:?} {b:?}"),
                (x, y) => assert_eq!(x, y),
            }
        }
    }

    let out = dir.path().join("decisions.jsonl");
    write_decisions(&sweep, &out).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let parsed: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), 3 * lines.len());
    for v in &parsed {
        assert!(v["index"].is_u64() && v["hit"].is_boolean() && v["threshold"].is_f64());
        assert!(v["matched_index"].is_u64() || v["matched_index"].is_null());
        assert!(v["similarity"].is_f64() || v["similarity"].is_null());
        let gray = v["outcome"] == "gray";
        assert_eq!(
            v["hit"].as_bool().unwrap() || gray,
            v["matched_index"].is_u64()
        );
    }
}

#[test]
fn sweep_thresholds_parse_like_single_thresholds() {
    use sluice::commands::bench_cache::parse_sweep;
    assert_eq!(
        parse_sweep("0.70:0.95:0.05").unwrap(),
        vec![0.70, 0.75, 0.80, 0.85, 0.90, 0.95]
    );
    assert_eq!(parse_sweep("0.8:0.8:0.1").unwrap(), vec![0.8]);
    for bad in [
        "0.9:0.7:0.05",
        "0.7:0.9",
        "0.7:0.9:0",
        "a:b:c",
        "0.5:1.5:0.1",
    ] {
        assert!(parse_sweep(bad).is_err(), "{bad}");
    }
}
