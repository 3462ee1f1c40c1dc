//! `sluice bench cache` reports as tables.

use std::fmt::Write as _;

use super::Report;
use crate::cache::index::EXACT_SCAN_MAX;

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
        "sweep: one embedding per line, the cache's decision function per threshold"
    } else if r.traffic.is_some() {
        "the real cache (model, index, redb store), a Zipf stream of requests"
    } else {
        "the real cache (model, index, redb store), replayed once"
    };
    let verify = match r.verifier {
        super::Verifier::Off => "off".to_owned(),
        super::Verifier::Agreement => "agreement (consistent simulated upstream)".to_owned(),
        super::Verifier::Judge { error, .. } => format!("simulated judge, wrong with p = {error}"),
    };
    let _ = writeln!(out, "engine: {engine}");
    let _ = writeln!(out, "verification: {verify}; max_error {}\n", r.max_error);
    if let Some(t) = &r.traffic {
        traffic(&mut out, t);
        return out;
    }
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
                c.frame_hits.to_string(),
                c.learned_hits.to_string(),
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
        "frame",
        "learned",
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
        "recall = correct / repeats (lookups whose group was seen before); semantic counts frame \
         (equal task frames) and learned (verified gray-zone kinds) hits; bucket = most entries in \
         one search bucket (above {EXACT_SCAN_MAX} the cache searches it with HNSW)"
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

fn traffic(out: &mut String, t: &super::traffic::Traffic) {
    let _ = writeln!(
        out,
        "traffic: {} requests, Zipf s = {} over {} groups (seed {}), threshold {:.2}",
        t.requests, t.zipf, t.groups, t.seed, t.threshold
    );
    let row = |name: String, x: &super::traffic::Tally| {
        vec![
            name,
            x.requests.to_string(),
            x.hits.to_string(),
            x.false_hits.to_string(),
            pct(Some(x.hit_rate())),
            pct(Some(x.ceiling())),
            format!("{:.1}", 100.0 * (x.ceiling() - x.hit_rate())),
            format!("{:.4}", x.precision()),
        ]
    };
    let mut rows: Vec<Vec<String>> = t
        .windows
        .iter()
        .enumerate()
        .map(|(k, w)| {
            let from = k * super::traffic::WINDOW;
            row(format!("{}..{}", from, from + w.requests as usize), w)
        })
        .collect();
    rows.push(row("all".into(), &t.overall));
    rows.push(row("first-seen wordings".into(), &t.first_seen));
    rows.push(row("repeated wordings".into(), &t.repeated));
    let header = [
        "requests",
        "n",
        "hits",
        "false",
        "hit rate",
        "ceiling",
        "gap (points)",
        "precision",
    ];
    table(out, &header, &rows);
    let _ = writeln!(
        out,
        "ceiling = requests whose group appeared before / requests; learned hits: {} ({} false)",
        t.learned_hits, t.learned_false
    );
}
