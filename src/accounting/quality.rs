//! Quality per route, tier and target: the clients' feedback scores (`POST /v1/feedback`,
//! `x-sluice-feedback`) over the audit records they rate, beside what those answers cost.
//!
//! Definitions (printed with the report):
//! - rated = answers with a score; rated share = rated / answered upstream (cache hits and
//!   failed requests are grouped under their route with tier and target `-`).
//! - mean score = mean of the scores (0..1); good share = scores >= 0.5 / rated.
//! - spend per answer = spend of the group's requests with a known cost / those requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::audit::AuditRecord;

pub const NOTE: &str = "quality: rated = answers the clients scored (POST /v1/feedback, x-sluice-feedback), rated_pct of the group's answers; mean_score in 0..1; good_pct = scores >= 0.5; usd_per_req over requests with a known cost; tier and target '-' for cache hits and failures";

/// One (route, tier, target) group.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QualityRow {
    pub route: String,
    pub tier: String,
    pub target: String,
    pub requests: u64,
    pub rated: u64,
    pub rated_share: Option<f64>,
    pub mean_score: Option<f64>,
    pub good_share: Option<f64>,
    pub usd_per_request: Option<f64>,
}

#[derive(Default)]
struct Acc {
    requests: u64,
    rated: u64,
    score_sum: f64,
    good: u64,
    spend: f64,
    priced: u64,
}

/// Accumulates records into quality rows.
#[derive(Default)]
pub struct Quality {
    groups: BTreeMap<(String, String, String), Acc>,
}

impl Quality {
    pub fn add(&mut self, r: &AuditRecord) {
        let upstream = r.target.is_some() && !r.cache.is_hit();
        let (tier, target) = if upstream {
            (
                r.routing.tier.clone().unwrap_or_else(|| "-".into()),
                r.target.clone().unwrap_or_default(),
            )
        } else {
            ("-".into(), "-".into())
        };
        let a = self
            .groups
            .entry((r.route.clone(), tier, target))
            .or_default();
        a.requests += 1;
        if let Some(c) = r.cost_usd {
            a.spend += c;
            a.priced += 1;
        }
        if let Some(f) = &r.feedback {
            a.rated += 1;
            a.score_sum += f64::from(f.score);
            a.good += u64::from(f.score >= 0.5);
        }
    }

    /// Rows by route, tier, target; empty when no record was rated at all.
    pub fn finish(self) -> Vec<QualityRow> {
        if self.groups.values().all(|a| a.rated == 0) {
            return Vec::new();
        }
        self.groups
            .into_iter()
            .map(|((route, tier, target), a)| {
                let ratio = |x: f64, n: u64| (n > 0).then(|| x / n as f64);
                QualityRow {
                    route,
                    tier,
                    target,
                    requests: a.requests,
                    rated: a.rated,
                    rated_share: ratio(a.rated as f64, a.requests),
                    mean_score: ratio(a.score_sum, a.rated),
                    good_share: ratio(a.good as f64, a.rated),
                    usd_per_request: ratio(a.spend, a.priced),
                }
            })
            .collect()
    }
}

/// The quality section of the table report (nothing when no answer was rated).
pub fn render_table(rows: &[QualityRow], out: &mut String) {
    if rows.is_empty() {
        return;
    }
    let w = |f: &dyn Fn(&QualityRow) -> usize, min: usize| {
        rows.iter().map(f).max().unwrap_or(min).max(min)
    };
    let (wr, wt, wg) = (
        w(&|r| r.route.len(), 7),
        w(&|r| r.tier.len(), 4),
        w(&|r| r.target.len(), 6),
    );
    let pct = |v: Option<f64>| v.map_or("-".into(), |x| format!("{:.1}%", x * 100.0));
    let _ = writeln!(
        out,
        "\n{:<wr$}  {:<wt$}  {:<wg$}  {:>8}  {:>6}  {:>9}  {:>10}  {:>8}  {:>11}",
        "quality",
        "tier",
        "target",
        "requests",
        "rated",
        "rated_pct",
        "mean_score",
        "good_pct",
        "usd_per_req"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<wr$}  {:<wt$}  {:<wg$}  {:>8}  {:>6}  {:>9}  {:>10}  {:>8}  {:>11}",
            r.route,
            r.tier,
            r.target,
            r.requests,
            r.rated,
            pct(r.rated_share),
            r.mean_score.map_or("-".into(), |x| format!("{x:.3}")),
            pct(r.good_share),
            r.usd_per_request.map_or("-".into(), |x| format!("{x:.6}")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::audit::tests::record;
    use crate::accounting::Feedback;

    #[test]
    fn groups_by_route_tier_target_and_averages_scores() {
        let mut q = Quality::default();
        for (i, score) in [Some(1.0), Some(0.0), None, Some(0.75)]
            .into_iter()
            .enumerate()
        {
            let mut r = record(i as u64);
            r.target = Some("openai/gpt-4o-mini".into());
            r.routing.tier = Some("cheap".into());
            r.cost_usd = Some(0.002);
            r.feedback = score.map(|s| Feedback {
                score: s,
                label: None,
                time_ms: 0,
            });
            q.add(&r);
        }
        let mut hit = record(9);
        hit.cache = crate::outcome::CacheOutcome::HitExact;
        q.add(&hit);
        let rows = q.finish();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let cheap = rows.iter().find(|r| r.tier == "cheap").unwrap();
        assert_eq!((cheap.requests, cheap.rated), (4, 3));
        assert!((cheap.mean_score.unwrap() - 1.75 / 3.0).abs() < 1e-9);
        assert!((cheap.good_share.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert!((cheap.usd_per_request.unwrap() - 0.002).abs() < 1e-12);
        let mut out = String::new();
        render_table(&rows, &mut out);
        assert!(out.contains("mean_score") && out.contains("0.583"), "{out}");
        assert!(Quality::default().finish().is_empty());
    }
}
