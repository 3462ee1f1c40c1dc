//! The route bench's report as text tables.

use std::fmt::Write as _;

use super::Report;

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{:.1}%", x * 100.0))
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Routing bench: {} ({} prompts) through auto route `{}` of {}; model {}",
        r.workload, r.prompts, r.auto_route, r.config, r.model
    );
    let e = &r.examples;
    let _ = writeln!(
        out,
        "examples: {} from the config, {} trained ({} labelled); difficulty model: {}",
        e.config_examples, e.trained_examples, e.labelled_examples, e.difficulty
    );
    let _ = writeln!(
        out,
        "\nuse case: {} of {} correct ({}); {} below the confidence threshold went to the default route",
        r.correct,
        r.prompts,
        pct(Some(r.accuracy)),
        r.fallbacks
    );
    let w = r
        .routes
        .iter()
        .map(|x| x.route.len())
        .max()
        .unwrap_or(5)
        .max(8);
    let _ = writeln!(
        out,
        "\n{:<w$}  {:>7}  {:>8}  {:>9}  {:>10}  {:>10}  {:>6}  {:>6}",
        "route", "prompts", "accuracy", "routed to", "precision", "tier exact", "under", "over"
    );
    for x in &r.routes {
        let _ = writeln!(
            out,
            "{:<w$}  {:>7}  {:>8}  {:>9}  {:>10}  {:>10}  {:>6}  {:>6}",
            x.route,
            x.prompts,
            pct(x.accuracy),
            x.routed_here,
            pct(x.precision),
            x.tier_exact,
            x.under_served,
            x.over_served
        );
    }
    let _ = writeln!(out, "\nconfusion (rows: gold route, columns: chosen)");
    let _ = write!(out, "{:<w$}", "");
    for x in &r.routes {
        let _ = write!(out, "  {:>w$}", x.route);
    }
    out.push('\n');
    for (x, row) in r.routes.iter().zip(&r.confusion) {
        let _ = write!(out, "{:<w$}", x.route);
        for n in row {
            let _ = write!(out, "  {n:>w$}");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\ntiers (of {} prompts with a gold tier): exact {} ({}), under-served {} ({}), over-served {} ({})",
        r.tiered,
        r.tier_exact,
        pct(r.tier_accuracy),
        r.under_served,
        pct(r.under_served_share),
        r.over_served,
        pct(r.over_served_share)
    );
    let c = &r.cost;
    let _ = writeln!(
        out,
        "cost: routed ${:.4}, oracle ${:.4}, always-premium ${:.4}; routed/oracle {}, routed/premium {}{}",
        c.routed_usd,
        c.oracle_usd,
        c.premium_usd,
        c.vs_oracle.map_or("-".into(), |x| format!("{x:.3}")),
        c.vs_premium.map_or("-".into(), |x| format!("{x:.3}")),
        if c.unpriced > 0 {
            format!(" ({} choices without a price left out)", c.unpriced)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "routed - oracle ${:+.4}: over-served ${:+.4}, under-served ${:+.4}, other route ${:+.4}",
        c.routed_usd - c.oracle_usd,
        c.over_served_usd,
        c.under_served_usd,
        c.misrouted_usd
    );
    let _ = writeln!(out, "\nconfidence calibration (auto decisions)");
    for b in &r.calibration {
        let _ = writeln!(
            out,
            "  {:.1}-{:.1}: {:>4} prompts, accuracy {}",
            b.from,
            b.to,
            b.prompts,
            pct(b.accuracy)
        );
    }
    let _ = writeln!(
        out,
        "\ndecision given the embedding: p50 {:.1} µs, p99 {:.1} µs; one embedding: p50 {:.0} µs",
        r.decision_p50_us, r.decision_p99_us, r.embedding_p50_us
    );
    if let Some(s) = &r.simulation {
        let _ = writeln!(
            out,
            "\nsimulation of the learned policy: {} requests, seed {}, feedback on {}",
            s.requests,
            s.seed,
            pct(Some(s.feedback_rate))
        );
        for (route, q, share, cap, k) in &s.policy {
            let used = s.clusters.get(route).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "  {route}: min_quality {q}, explore_share {share}, explore_cost_cap {cap}, {k} clusters ({used} with traffic)"
            );
        }
        let _ = writeln!(
            out,
            "\n{:>13}  {:>8} {:>8} {:>8} {:>8}  {:>10} {:>10} {:>10} {:>10}  {:>8}",
            "requests",
            "q learn",
            "q oracle",
            "q prem",
            "q diff",
            "$ learn",
            "$ oracle",
            "$ prem",
            "$ diff",
            "explored"
        );
        for w in s.windows.iter().chain([&s.cumulative]) {
            let _ = writeln!(
                out,
                "{:>13}  {:>8.3} {:>8.3} {:>8.3} {:>8.3}  {:>10.6} {:>10.6} {:>10.6} {:>10.6}  {:>8}",
                format!("{}-{}", w.from + 1, w.to),
                w.learned_quality,
                w.oracle_quality,
                w.premium_quality,
                w.difficulty_quality,
                w.learned_cost,
                w.oracle_cost,
                w.premium_cost,
                w.difficulty_cost,
                pct(Some(w.explored))
            );
        }
        let _ = writeln!(
            out,
            "(q: mean hidden success probability of the choices; $: mean USD per request; diff: the difficulty score alone, no learning; the last row is cumulative)"
        );
    }
    out
}
