//! `sluice bench failover` grades what a client gets: the quick scenarios (none waits for a
//! deadline share) all pass, and the grades follow the client-visible outcome.

use sluice::commands::bench_failover::{scorecard, Grade};

#[tokio::test]
async fn the_quick_failover_scenarios_all_pass() {
    const QUICK: [&str; 9] = [
        "stream-cut",
        "malformed-event",
        "malformed-tail",
        "no-done",
        "prefill-rejected",
        "503-persistent",
        "content-filter",
        "failed-attempts-accounted",
        "key-revoked",
    ];
    let rows = scorecard(|id| QUICK.contains(&id), false).await.unwrap();
    assert_eq!(rows.len(), QUICK.len());
    for (sc, s) in &rows {
        assert_eq!(s.grade, Grade::Pass, "{}: {}", sc.id, s.detail);
        assert!(s.upstream_requests >= 1, "{}", sc.id);
    }
}
