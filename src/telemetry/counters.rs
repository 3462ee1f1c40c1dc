//! Failover counters: what happens to upstream attempts and streams, counted where it happens
//! (the failover loop, the stream relay, the adapters' SSE loop) and rendered with the other
//! metrics. Labels come from the config (route, target) and closed enums (fault, outcome).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::outcome::{ProviderFault, Resume};

pub const EVENTS_SKIPPED: &str = "sluice_stream_events_skipped_total";
pub const PROVIDER_FAULTS: &str = "sluice_provider_faults_total";
pub const RETRIES_DENIED: &str = "sluice_retries_denied_total";
pub const RESUMES: &str = "sluice_stream_resumes_total";

/// One target's counters. Shared (`Arc`) with the streams an adapter returns, which outlive the
/// attempt that started them.
#[derive(Debug, Default)]
pub struct TargetCounters {
    /// Malformed or unknown stream events skipped (a run of them fails the attempt instead).
    pub events_skipped: AtomicU64,
    /// By [`ProviderFault::index`].
    provider_faults: [AtomicU64; 3],
    /// Retries the target's retry budget refused.
    pub retries_denied: AtomicU64,
}

impl TargetCounters {
    pub fn provider_fault(&self, f: ProviderFault) {
        self.provider_faults[f.index()].fetch_add(1, Relaxed);
    }
}

/// Streams that broke after output, by route slot and outcome: each [`Resume`] strategy that
/// continued one, then `failed`.
#[derive(Debug)]
pub struct Resumes(Vec<[AtomicU64; 4]>);

/// The outcome labels, by column.
const RESUME_OUTCOMES: [&str; 4] = ["prefill", "regenerate", "user_turn", "failed"];

impl Resumes {
    pub fn new(slots: usize) -> Resumes {
        Resumes((0..slots).map(|_| Default::default()).collect())
    }

    /// `None`: nothing could continue the stream.
    pub fn count(&self, slot: usize, how: Option<Resume>) {
        let col = how.map_or(RESUME_OUTCOMES.len() - 1, Resume::index);
        if let Some(row) = self.0.get(slot) {
            row[col].fetch_add(1, Relaxed);
        }
    }
}

/// Appends the counters' exposition: `targets` and `routes` are the escaped label values in
/// index order. Series that never counted are left out (except that every family is declared).
pub fn render(
    out: &mut String,
    targets: &[String],
    per_target: &[Arc<TargetCounters>],
    routes: &[String],
    resumes: &Resumes,
) {
    header(
        out,
        EVENTS_SKIPPED,
        "Malformed or unknown upstream stream events skipped, by target.",
    );
    for (t, c) in targets.iter().zip(per_target) {
        let n = c.events_skipped.load(Relaxed);
        if n > 0 {
            let _ = writeln!(out, "{EVENTS_SKIPPED}{{target=\"{t}\"}} {n}");
        }
    }
    header(
        out,
        PROVIDER_FAULTS,
        "Provider-side faults (the gateway's key, billing or model) that opened a target's breaker.",
    );
    for (t, c) in targets.iter().zip(per_target) {
        for f in ProviderFault::ALL {
            let n = c.provider_faults[f.index()].load(Relaxed);
            if n > 0 {
                let fault = f.as_str();
                let _ = writeln!(
                    out,
                    "{PROVIDER_FAULTS}{{target=\"{t}\",fault=\"{fault}\"}} {n}"
                );
            }
        }
    }
    header(
        out,
        RETRIES_DENIED,
        "Retries a target's retry budget refused (the request moved on instead).",
    );
    for (t, c) in targets.iter().zip(per_target) {
        let n = c.retries_denied.load(Relaxed);
        if n > 0 {
            let _ = writeln!(out, "{RETRIES_DENIED}{{target=\"{t}\"}} {n}");
        }
    }
    header(
        out,
        RESUMES,
        "Streams that broke after output, by route and how they ended (a strategy that continued them, or failed).",
    );
    for (r, row) in routes.iter().zip(&resumes.0) {
        for (o, n) in RESUME_OUTCOMES.iter().zip(row) {
            let n = n.load(Relaxed);
            if n > 0 {
                let _ = writeln!(out, "{RESUMES}{{route=\"{r}\",outcome=\"{o}\"}} {n}");
            }
        }
    }
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_outcome_labels_follow_the_strategies() {
        for how in Resume::ALL {
            assert_eq!(RESUME_OUTCOMES[how.index()], how.as_str());
        }
    }
}
