//! Storage faults over HTTP: a store whose filesystem fills (a disk quota on the file) is noticed,
//! reported (`/readyz` 503 with the reason, metrics), requests keep being answered uncached and
//! their records counted as dropped, and once space comes back the store reopens by itself:
//! cached and audited again, no restart.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice::store::{DiskQuota, DB_FILE};

use crate::support::{ask, header, Gateway};

const CONFIG: &str = r#"
[accounting]
log_prompts = true
[providers.oa.models]
"gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.6, context_window = 128000 }
[routes.chat]
tiers.cheap = ["oa/gpt-4o-mini"]
"#;

async fn wait_for(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_full_disk_is_reported_served_through_and_recovered_without_restart() {
    let data = tempfile::tempdir().unwrap();
    let quota = DiskQuota::new(u64::MAX);
    let g = Gateway::start_cached_with_quota(CONFIG, data.path(), quota.clone()).await;
    let (s, h, _) = g.chat(&ask("chat", "What is the capital of France?")).await;
    assert_eq!((s, header(&h, "x-sluice-cache")), (200, "miss"));
    let first_id = header(&h, "x-request-id").to_owned();
    g.state.audit.flush().await.unwrap();
    assert_eq!(g.get_json("/readyz").await["status"], "ready");

    // The filesystem fills: 64 KiB left past the file as it is.
    let len = std::fs::metadata(data.path().join(DB_FILE)).unwrap().len();
    quota.set_limit(len + 64 * 1024);
    let mut sent = 0;
    while g.state.store_fault().is_none() {
        assert!(sent < 60, "the store never noticed the full disk");
        let prompt = format!("Document {sent}: {}", "lorem ipsum dolor ".repeat(6000));
        let (s, ..) = g.chat(&ask("chat", &prompt)).await;
        assert_eq!(s, 200, "answers go on while the disk fills");
        let _ = g.state.audit.flush().await;
        sent += 1;
    }
    // Reported: /readyz 503 with the reason, metrics, and requests still answered, uncached.
    let r = g.http.get(g.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "degraded");
    assert!(
        v["store"].as_str().unwrap().contains("No space left"),
        "{v}"
    );
    assert_eq!(g.metric("sluice_store_healthy").await, 0.0);
    assert_eq!(g.metric("sluice_store_faults_total").await, 1.0);
    let dropped_before = g.metric("sluice_audit_dropped_total").await;
    for i in 0..3 {
        let (s, h, v) = g.chat(&ask("chat", "What is the capital of France?")).await;
        assert_eq!(s, 200, "{i}: {v}");
        assert_eq!(header(&h, "x-sluice-cache"), "off", "served uncached");
    }
    let _ = g.state.audit.flush().await;
    assert!(
        g.metric("sluice_audit_dropped_total").await >= dropped_before + 3.0,
        "unaudited requests are counted"
    );
    // The dashboard's figures (rollups in the store) are an error naming the fault, not zeros.
    let r = g
        .http
        .get(g.url("/admin/stats/summary?window=1h"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("storage fault"),
        "{v}"
    );

    // Space comes back: the store reopens by itself.
    quota.set_limit(u64::MAX);
    wait_for("the store to reopen", async || {
        g.http.get(g.url("/readyz")).send().await.unwrap().status() == 200
    })
    .await;
    assert_eq!(g.metric("sluice_store_healthy").await, 1.0);
    let r = g
        .http
        .get(g.url("/admin/stats/summary?window=1h"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the dashboard reads again");
    let question = "How many legs does a spider have?";
    let mut ids = Vec::new();
    let (_, h, _) = g.chat(&ask("chat", question)).await;
    assert_eq!(header(&h, "x-sluice-cache"), "miss");
    ids.push(header(&h, "x-request-id").to_owned());
    g.state.cache.as_ref().unwrap().flush().await.unwrap();
    let (_, h, _) = g.chat(&ask("chat", question)).await;
    assert_eq!(header(&h, "x-sluice-cache"), "hit-exact", "cached again");
    ids.push(header(&h, "x-request-id").to_owned());
    let records = g.audit_records().await;
    let has = |id: &str| records.iter().any(|r| r["request_id"] == id);
    assert!(ids.iter().all(|id| has(id)), "audited again");
    // What was committed before the fault is all still there.
    assert!(has(&first_id));
}

/// `sluice bench crash` in a few rounds (the benchmark runs 100): the gateway binary under a
/// write load, SIGKILLed and restarted, loses nothing acknowledged as durable.
#[test]
fn crash_rounds_lose_nothing_acknowledged() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "crash", "--rounds", "4", "--json", "--models-dir"])
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["rounds"], 4);
    assert_eq!(v["kills"], 4);
    assert_eq!(v["failures"].as_array().unwrap().len(), 0, "{v}");
    assert!(v["audit_records_checked"].as_u64().unwrap() > 0, "{v}");
    assert!(v["cache_entries_checked"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["index_checks"], 3);
}
