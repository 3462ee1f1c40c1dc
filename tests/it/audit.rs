//! Audit store end to end through the public API: records written by `AuditLog` into the store,
//! read back by `sluice report` / `sluice audit export`. (Pipeline-level audit tests join these
//! once the pipeline writes records.)

use std::path::Path;

use sluice::accounting::audit::AuditAttempt;
use sluice::accounting::{unix_ms_now, AuditLog, AuditRecord};
use sluice::cli::{ExportArgs, ExportFormat, ReportArgs, ReportFormat, Selection};
use sluice::commands::report::{run_export, run_report};
use sluice::config::AccountingSettings;
use sluice::outcome::CacheOutcome;
use sluice::store::Store;

fn record(i: u64, now: u64) -> AuditRecord {
    let hit = i % 4 == 0;
    let failed = i % 7 == 3;
    AuditRecord {
        time_ms: now + i,
        request_id: format!("req_{i}"),
        caller: None,
        route: if i % 2 == 0 { "chat" } else { "summarize" }.into(),
        requested_model: "chat".into(),
        target: (!hit && !failed).then(|| "oa/gpt-4o-mini".into()),
        attempts: vec![AuditAttempt {
            target: "oa/gpt-4o-mini".into(),
            status: Some(if failed { 503 } else { 200 }),
            outcome: if failed { "HTTP 503" } else { "ok" }.into(),
            elapsed_ms: 20,
        }],
        cache: if hit {
            CacheOutcome::HitExact
        } else {
            CacheOutcome::Miss
        },
        similarity: None,
        stream: i % 3 == 0,
        input_tokens: if failed { 0 } else { 100 + i as u32 },
        output_tokens: if failed { 0 } else { 40 },
        usage_estimated: false,
        cost_usd: Some(if hit || failed {
            0.0
        } else {
            (100.0 + i as f64) * 0.15e-6 + 40.0 * 0.6e-6
        }),
        cost_avoided_usd: Some(if hit { 0.001 } else { 0.0 }),
        total_ms: 10 + i,
        upstream_ms: (!hit).then_some(8 + i),
        ttft_ms: None,
        status: if failed { 502 } else { 200 },
        error: failed.then(|| "all_targets_failed".into()),
        prompt: None,
        detail: Default::default(),
        tags: Default::default(),
        routing: Default::default(),
        feedback: None,
    }
}

fn selection(dir: &Path) -> Selection {
    Selection {
        data_dir: Some(dir.to_path_buf()),
        config: None,
        since: None,
        until: None,
        last: Some("1h".into()),
    }
}

fn report_json(dir: &Path) -> serde_json::Value {
    let args = ReportArgs {
        selection: selection(dir),
        format: ReportFormat::Json,
    };
    serde_json::from_str(&run_report(&args).unwrap()).unwrap()
}

#[tokio::test]
async fn report_and_export_match_the_records_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let log = AuditLog::open(store.clone(), &AccountingSettings::default()).unwrap();
    let now = unix_ms_now() - 1000;
    let records: Vec<AuditRecord> = (0..40).map(|i| record(i, now)).collect();
    for r in &records {
        log.record(r.clone());
    }
    log.flush().await.unwrap();
    tokio::task::spawn_blocking(move || log.close())
        .await
        .unwrap();
    drop(store);

    let rep = report_json(dir.path());
    let total = &rep["total"];
    let spend: f64 = records.iter().filter_map(|r| r.cost_usd).sum();
    let tokens: u64 = records
        .iter()
        .map(|r| u64::from(r.input_tokens) + u64::from(r.output_tokens))
        .sum();
    assert_eq!(total["requests"], 40);
    assert!((total["spend_usd"].as_f64().unwrap() - spend).abs() < 1e-12);
    let blended = total["blended_usd_per_mtok"].as_f64().unwrap();
    assert!((blended - spend / tokens as f64 * 1e6).abs() < 1e-9);
    let errors = records.iter().filter(|r| r.status >= 400).count();
    assert_eq!(total["errors"], errors as u64);
    let routes = rep["by_route"].as_array().unwrap();
    let by_route: u64 = routes.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(by_route, 40);

    let mut out = Vec::new();
    let args = ExportArgs {
        selection: selection(dir.path()),
        format: ExportFormat::Jsonl,
    };
    assert_eq!(run_export(&args, &mut out).unwrap(), 40);
    let lines: Vec<AuditRecord> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), records.len());
    for (mut back, want) in lines.into_iter().zip(&records) {
        // serde_json's default float parsing may differ in the last bit.
        let (a, b) = (back.cost_usd.unwrap(), want.cost_usd.unwrap());
        assert!((a - b).abs() <= 1e-15 * b.abs().max(1.0), "{a} vs {b}");
        back.cost_usd = want.cost_usd;
        assert_eq!(&back, want);
    }
}

/// `sluice report` while the gateway runs: the store must be opened in redb's SingleWriter mode
/// for another process to read it.
#[tokio::test]
async fn report_reads_the_store_while_the_gateway_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let log = AuditLog::open(store.clone(), &AccountingSettings::default()).unwrap();
    log.record(record(1, unix_ms_now() - 1000));
    log.flush().await.unwrap();
    assert_eq!(report_json(dir.path())["total"]["requests"], 1);
    log.record(record(2, unix_ms_now() - 1000));
    log.flush().await.unwrap();
    assert_eq!(report_json(dir.path())["total"]["requests"], 2);
}
