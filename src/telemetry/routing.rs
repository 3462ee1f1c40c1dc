//! Routing counters: how routes and tiers were chosen, and the feedback received, per route
//! slot. Labels come from the config (route) and closed enums (`RouteBy`, `TierReason`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::outcome::{RouteBy, TierReason};

pub const ROUTE_DECISIONS: &str = "sluice_route_decisions_total";
pub const TIER_DECISIONS: &str = "sluice_tier_decisions_total";
pub const FEEDBACK: &str = "sluice_feedback_total";
pub const FEEDBACK_SCORE: &str = "sluice_feedback_score_sum";

/// By route slot.
#[derive(Debug)]
pub struct RoutingCounters {
    routes: Vec<[AtomicU64; 5]>,
    tiers: Vec<[AtomicU64; 6]>,
    feedback: Vec<(AtomicU64, AtomicU64)>,
}

/// Feedback scores are summed in millionths (an integer counter, no float races).
const SCORE_UNIT: f64 = 1e6;

impl RoutingCounters {
    pub fn new(slots: usize) -> RoutingCounters {
        RoutingCounters {
            routes: (0..slots).map(|_| Default::default()).collect(),
            tiers: (0..slots).map(|_| Default::default()).collect(),
            feedback: (0..slots).map(|_| Default::default()).collect(),
        }
    }

    pub fn decision(&self, slot: usize, by: RouteBy, tier_by: Option<TierReason>) {
        if let Some(row) = self.routes.get(slot) {
            row[by.index()].fetch_add(1, Relaxed);
        }
        if let (Some(row), Some(t)) = (self.tiers.get(slot), tier_by) {
            row[t.index()].fetch_add(1, Relaxed);
        }
    }

    pub fn feedback(&self, slot: usize, score: f64) {
        if let Some((n, sum)) = self.feedback.get(slot) {
            n.fetch_add(1, Relaxed);
            sum.fetch_add((score.clamp(0.0, 1.0) * SCORE_UNIT) as u64, Relaxed);
        }
    }

    /// Appends the exposition; `routes` are the escaped route labels by slot.
    pub fn render(&self, out: &mut String, routes: &[String]) {
        let _ = writeln!(
            out,
            "# HELP {ROUTE_DECISIONS} How each request's route was chosen: named, header, auto (by the prompt), fallback (an auto route's default), passthrough.\n# TYPE {ROUTE_DECISIONS} counter"
        );
        for (row, r) in self.routes.iter().zip(routes) {
            for (by, n) in RouteBy::ALL.iter().zip(row) {
                let n = n.load(Relaxed);
                if n > 0 {
                    let b = by.as_str();
                    let _ = writeln!(out, "{ROUTE_DECISIONS}{{route=\"{r}\",by=\"{b}\"}} {n}");
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP {TIER_DECISIONS} What chose each request's tier: default, rule, header, difficulty, learned, explore.\n# TYPE {TIER_DECISIONS} counter"
        );
        for (row, r) in self.tiers.iter().zip(routes) {
            for (by, n) in TierReason::ALL.iter().zip(row) {
                let n = n.load(Relaxed);
                if n > 0 {
                    let b = by.as_str();
                    let _ = writeln!(out, "{TIER_DECISIONS}{{route=\"{r}\",by=\"{b}\"}} {n}");
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP {FEEDBACK} Feedback scores received, by the route of the rated request.\n# TYPE {FEEDBACK} counter\n# HELP {FEEDBACK_SCORE} Sum of the feedback scores (0..1 each).\n# TYPE {FEEDBACK_SCORE} counter"
        );
        for ((n, sum), r) in self.feedback.iter().zip(routes) {
            let n = n.load(Relaxed);
            if n > 0 {
                let s = sum.load(Relaxed) as f64 / SCORE_UNIT;
                let _ = writeln!(out, "{FEEDBACK}{{route=\"{r}\"}} {n}");
                let _ = writeln!(out, "{FEEDBACK_SCORE}{{route=\"{r}\"}} {s}");
            }
        }
    }
}
