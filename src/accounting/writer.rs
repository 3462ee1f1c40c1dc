//! `AuditLog`: records go into a bounded queue and a background thread writes them to redb,
//! many per write transaction, so the response path never waits on a disk sync.
//!
//! - `record` never blocks: when the queue is full the record is dropped and counted
//!   (`dropped()`, exported as `sluice_audit_dropped_total`), because slowing every request to
//!   the disk's pace is worse than a gap that is visible in the metrics. Records whose write
//!   fails (a storage fault: the store is out of service until it reopens) are counted the same.
//! - Durability: at most [`QUEUE`] records wait in the queue and [`MAX_BATCH`] in the batch being
//!   written, and a record waits at most [`GROUP_COMMIT_LINGER`] for others to share its commit:
//!   a `kill -9` loses the records of the last 50 ms (plus the commit under way), never more
//!   than `QUEUE + MAX_BATCH`.
//! - `flush` waits until everything queued before it is committed (fsync'd): graceful shutdown
//!   awaits it after the last response, so a SIGTERM right after a request loses nothing.
//! - Keys are `(time_ms, seq)`; `seq` is persisted in `audit_meta` in the same transaction as
//!   the records, so it never repeats, even across restarts and clock steps.
//! - Retention: records older than `retention_days` are deleted at open and then hourly (checked
//!   after each batch, so an idle gateway prunes on its next request), with their feedback and
//!   their entries in the request-id index.
//! - Each record's request id is indexed in the same transaction (`audit_requests`), so that
//!   feedback can name it; feedback goes through the same queue and commits ([`AuditLog::rate`]).
//! - Rollups (`rollup`): each batch also adds its records to the per-minute, 10-minute, hourly
//!   and daily rollups the dashboard reads, in the same transaction; a store whose rollups do not
//!   count every record (written before they existed) has them rebuilt at open.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redb::{Database, ReadableTable};
use tokio::sync::{mpsc, oneshot};

use super::audit::{self, AuditError, AuditRecord, Feedback};
use super::rollup::{self, Pending, AUDIT_FAILOVERS, AUDIT_ROLLUPS};
use super::unix_ms_now;
use crate::config::AccountingSettings;
use crate::store::{AUDIT_FEEDBACK, AUDIT_META, AUDIT_RECORDS, AUDIT_REQUESTS};

const NEXT_SEQ: &str = "next_seq";
/// Records up to this sequence number are counted in the rollups.
const ROLLUP_SEQ: &str = "rollup_seq";

/// Records waiting for the writer; more are dropped (and counted).
pub const QUEUE: usize = 1000;
/// Records committed in one transaction.
pub const MAX_BATCH: usize = 1000;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const DAY_MS: u64 = 24 * 3600 * 1000;

/// Something that holds the database: `Arc<Database>`, or the store (which may be out of
/// service after a storage fault).
pub trait DbHandle: Send + Sync + 'static {
    /// The database for one operation; `Err` while it is out of service.
    fn db(&self) -> Result<Arc<Database>, String>;
    /// An operation failed with `e` (the store notes a storage fault); its text.
    fn failed(&self, e: redb::Error) -> String {
        e.to_string()
    }
}

impl DbHandle for Arc<Database> {
    fn db(&self) -> Result<Arc<Database>, String> {
        Ok(self.clone())
    }
}

impl DbHandle for crate::store::Store {
    fn db(&self) -> Result<Arc<Database>, String> {
        self.database().map_err(|e| e.to_string())
    }

    fn failed(&self, e: redb::Error) -> String {
        self.err(e).to_string()
    }
}

/// Why a batch was not written.
enum WriteFailure {
    /// The store is out of service (it said so once already).
    Unavailable(String),
    Failed(String),
}

impl WriteFailure {
    fn text(&self) -> &str {
        match self {
            WriteFailure::Unavailable(t) | WriteFailure::Failed(t) => t,
        }
    }
}

type Waiter = oneshot::Sender<Result<(), String>>;

enum Msg {
    Record(Box<AuditRecord>),
    /// Feedback on the record under `key`; the waiter hears when it is committed.
    Feedback((u64, u64), Box<Feedback>, Option<Waiter>),
    Flush(Waiter),
}

pub struct AuditLog {
    /// `None` when auditing is disabled.
    tx: Option<mpsc::Sender<Msg>>,
    /// The database: feedback looks its record up, the dashboard reads the rollups (`None` when
    /// auditing is disabled).
    reader: Option<Arc<dyn DbHandle>>,
    dropped: Arc<AtomicU64>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A feedback score stored with its record.
#[derive(Debug, Clone)]
pub struct Rated {
    /// The rated request's record (its `feedback` is the one this replaced, if any).
    pub record: AuditRecord,
}

impl AuditLog {
    /// Create the audit tables if needed, prune past the retention, and start the writer.
    /// With `settings.enabled == false`, a log that records nothing.
    pub fn open<H: DbHandle + Clone>(
        db: H,
        settings: &AccountingSettings,
    ) -> Result<AuditLog, AuditError> {
        if !settings.enabled {
            return Ok(AuditLog::disabled());
        }
        let dropped = Arc::new(AtomicU64::new(0));
        let reader: Arc<dyn DbHandle> = Arc::new(db.clone());
        let mut w = Writer {
            db,
            next_seq: 0,
            retention_ms: u64::from(settings.retention_days) * DAY_MS,
            last_prune: Instant::now(),
            dropped: dropped.clone(),
            seq_known: false,
        };
        w.next_seq = w.init().map_err(db_err)?;
        w.seq_known = true;
        w.prune().map_err(db_err)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("sluice-audit".into())
            .spawn(move || w.run(rx))
            .map_err(|e| db_err(e.to_string()))?;
        Ok(AuditLog {
            tx: Some(tx),
            reader: Some(reader),
            dropped,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn disabled() -> AuditLog {
        AuditLog {
            tx: None,
            reader: None,
            dropped: Arc::new(AtomicU64::new(0)),
            thread: Mutex::new(None),
        }
    }

    /// Stores `feedback` with the record of `request_id` and returns that record (with the
    /// feedback it replaces, if any); `Ok(None)` when no record has that id (a record still
    /// queued is flushed first) or `may_rate` refuses it (its caller's records only). `wait`: return once the feedback is committed, else once it is
    /// queued. Errors when auditing is disabled.
    pub async fn rate(
        &self,
        request_id: &str,
        feedback: Feedback,
        wait: bool,
        may_rate: impl FnOnce(&AuditRecord) -> bool,
    ) -> Result<Option<Rated>, AuditError> {
        let (Some(tx), Some(reader)) = (&self.tx, &self.reader) else {
            return Err(AuditError::Disabled);
        };
        let mut found = self.find(reader, request_id).await?;
        if found.is_none() {
            // Its record may still be in the queue (a request finished moments ago).
            self.flush().await?;
            found = self.find(reader, request_id).await?;
        }
        let Some((key, record)) = found.filter(|(_, r)| may_rate(r)) else {
            return Ok(None);
        };
        let (done, committed) = oneshot::channel();
        tx.send(Msg::Feedback(key, Box::new(feedback), wait.then_some(done)))
            .await
            .map_err(|_| AuditError::WriterGone)?;
        if wait {
            match committed.await {
                Ok(Ok(())) => {}
                Ok(Err(detail)) => return Err(db_err(detail)),
                Err(_) => return Err(AuditError::WriterGone),
            }
        }
        Ok(Some(Rated { record }))
    }

    async fn find(
        &self,
        reader: &Arc<dyn DbHandle>,
        request_id: &str,
    ) -> Result<Option<((u64, u64), AuditRecord)>, AuditError> {
        let (reader, id) = (reader.clone(), request_id.to_owned());
        tokio::task::spawn_blocking(move || {
            let db = reader.db().map_err(AuditError::Unavailable)?;
            audit::find(&*db, &id)
        })
        .await
        .map_err(|_| AuditError::WriterGone)?
    }

    /// Every record with feedback (see [`audit::rated`]); empty when auditing is disabled.
    pub fn rated(&self) -> Result<Vec<AuditRecord>, AuditError> {
        match &self.reader {
            Some(r) => audit::rated(&*r.db().map_err(AuditError::Unavailable)?),
            None => Ok(Vec::new()),
        }
    }

    /// Prompts that services sent to routes by name (see [`audit::named_prompts`]). Blocking.
    pub fn named_prompts(
        &self,
        per_route: usize,
        max_records: usize,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, AuditError> {
        match &self.reader {
            Some(r) => audit::named_prompts(
                &*r.db().map_err(AuditError::Unavailable)?,
                per_route,
                max_records,
            ),
            None => Ok(Default::default()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// The database the records and rollups are in, for reading (`None` when disabled, `Err`
    /// while the store is out of service after a storage fault). Reads block: call them off the
    /// async runtime.
    pub fn database(&self) -> Option<Result<Arc<Database>, String>> {
        self.reader.as_deref().map(DbHandle::db)
    }

    /// Queue a record for writing; never blocks.
    pub fn record(&self, rec: AuditRecord) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(Msg::Record(Box::new(rec))).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "audit queue full or writer stopped: records dropped"
                );
            }
        }
    }

    /// Wait until every record queued before this call is committed to disk.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let Some(tx) = &self.tx else { return Ok(()) };
        let (done, wait) = oneshot::channel();
        tx.send(Msg::Flush(done))
            .await
            .map_err(|_| AuditError::WriterGone)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(detail)) => Err(db_err(detail)),
            Err(_) => Err(AuditError::WriterGone),
        }
    }

    /// Records dropped so far (queue full, or writes that failed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stop accepting records, write what is queued and wait for the writer thread to exit
    /// (it holds the database until then). Blocking: call it outside the async runtime or in
    /// `spawn_blocking`; graceful shutdown only needs `flush`.
    pub fn close(self) {
        drop(self);
    }
}

/// Dropping the log closes the queue and waits for the writer to commit what it holds and let
/// go of the database (so the store can be reopened at once, e.g. after a restart).
impl Drop for AuditLog {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn db_err(e: impl ToString) -> AuditError {
    AuditError::Db {
        path: "(store)".into(),
        detail: e.to_string(),
    }
}

/// How long a record may wait for others to share its commit. A `kill -9` can lose at most
/// the records of this window (and the commit under way); SIGTERM and `flush` lose none.
pub const GROUP_COMMIT_LINGER: std::time::Duration = std::time::Duration::from_millis(50);

struct Writer<H> {
    db: H,
    next_seq: u64,
    retention_ms: u64,
    last_prune: Instant,
    /// Shared with the log: records dropped (queue full, or their write failed).
    dropped: Arc<AtomicU64>,
    /// False after a failed write until the sequence is read again from the (reopened) store:
    /// a failed commit may or may not have advanced it.
    seq_known: bool,
}

impl<H: DbHandle> Writer<H> {
    /// Create the tables; the next sequence number. Rollups that do not count every record
    /// are rebuilt from the ledger.
    fn init(&self) -> Result<u64, String> {
        let db = self.db.db()?;
        self.init_in(&db).map_err(|e| self.db.failed(e))
    }

    fn init_in(&self, db: &Database) -> Result<u64, redb::Error> {
        let w = db.begin_write()?;
        w.open_table(AUDIT_RECORDS)?;
        w.open_table(AUDIT_REQUESTS)?;
        w.open_table(AUDIT_FEEDBACK)?;
        w.open_table(AUDIT_ROLLUPS)?;
        w.open_table(AUDIT_FAILOVERS)?;
        let (seq, counted) = {
            let meta = w.open_table(AUDIT_META)?;
            let get = |k| meta.get(k).map(|v| v.map_or(0, |v| v.value()));
            (get(NEXT_SEQ)?, get(ROLLUP_SEQ)?)
        };
        w.commit()?;
        if counted != seq {
            self.rebuild_rollups(db, seq)?;
        }
        Ok(seq)
    }

    /// Rollups from every stored record, in one transaction (once, at open).
    fn rebuild_rollups(&self, db: &Database, next_seq: u64) -> Result<(), redb::Error> {
        let started = Instant::now();
        let w = db.begin_write()?;
        w.delete_table(AUDIT_ROLLUPS)?;
        w.delete_table(AUDIT_FAILOVERS)?;
        let mut pending = Pending::default();
        let (mut records, mut unreadable) = (0u64, 0u64);
        {
            let table = w.open_table(AUDIT_RECORDS)?;
            for row in table.iter()? {
                let (k, v) = row?;
                match AuditRecord::decode(v.value()) {
                    Ok(r) => {
                        pending.add(&r, k.value().1);
                        records += 1;
                    }
                    Err(_) => unreadable += 1,
                }
            }
        }
        pending.write(&w)?;
        rollup::prune(&w, unix_ms_now(), self.retention_ms)?;
        w.open_table(AUDIT_META)?.insert(ROLLUP_SEQ, next_seq)?;
        w.commit()?;
        tracing::info!(
            records,
            unreadable,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "audit rollups rebuilt from the ledger"
        );
        Ok(())
    }

    fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut batch: Vec<Box<AuditRecord>> = Vec::with_capacity(MAX_BATCH);
        let mut feedback: Vec<((u64, u64), Box<Feedback>)> = Vec::new();
        let mut waiters = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            let mut lingered = false;
            loop {
                while let Some(msg) = next {
                    match msg {
                        Msg::Record(r) => batch.push(r),
                        Msg::Feedback(key, f, w) => {
                            feedback.push((key, f));
                            waiters.extend(w);
                        }
                        Msg::Flush(w) => waiters.push(w),
                    }
                    next = if batch.len() < MAX_BATCH {
                        rx.try_recv().ok()
                    } else {
                        None
                    };
                }
                // Group commit: one durable commit costs an fsync, so a lone record waits a
                // moment for others to share it. A flush (shutdown, tests) never waits.
                if lingered || !waiters.is_empty() || batch.len() >= MAX_BATCH {
                    break;
                }
                lingered = true;
                std::thread::sleep(GROUP_COMMIT_LINGER);
                next = rx.try_recv().ok();
            }
            let result = if batch.is_empty() && feedback.is_empty() {
                Ok(())
            } else {
                self.write(&batch, &feedback).map_err(|e| {
                    // Unaudited, but counted (`sluice_audit_dropped_total`).
                    self.dropped
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    if let WriteFailure::Failed(text) = &e {
                        tracing::error!(error = %text, records = batch.len(), "audit write failed");
                    }
                    e.text().to_owned()
                })
            };
            batch.clear();
            feedback.clear();
            for w in waiters.drain(..) {
                let _ = w.send(result.clone());
            }
            if self.last_prune.elapsed() >= PRUNE_EVERY {
                if let Err(e) = self.prune() {
                    tracing::error!(error = %e, "audit retention pruning failed");
                }
            }
        }
    }

    fn write(
        &mut self,
        batch: &[Box<AuditRecord>],
        feedback: &[((u64, u64), Box<Feedback>)],
    ) -> Result<(), WriteFailure> {
        let db = self.db.db().map_err(WriteFailure::Unavailable)?;
        if !self.seq_known {
            self.next_seq = self
                .init_in(&db)
                .map_err(|e| WriteFailure::Failed(self.db.failed(e)))?;
            self.seq_known = true;
        }
        match self.write_in(&db, batch, feedback) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.seq_known = false;
                Err(WriteFailure::Failed(self.db.failed(e)))
            }
        }
    }

    fn write_in(
        &mut self,
        db: &Database,
        batch: &[Box<AuditRecord>],
        feedback: &[((u64, u64), Box<Feedback>)],
    ) -> Result<(), redb::Error> {
        let w = db.begin_write()?;
        let mut seq = self.next_seq;
        let mut pending = Pending::default();
        {
            let mut table = w.open_table(AUDIT_RECORDS)?;
            let mut index = w.open_table(AUDIT_REQUESTS)?;
            for r in batch {
                table.insert((r.time_ms, seq), r.encode().as_slice())?;
                index.insert(r.request_id.as_str(), (r.time_ms, seq))?;
                pending.add(r, seq);
                seq += 1;
            }
            pending.write(&w)?;
            let mut meta = w.open_table(AUDIT_META)?;
            meta.insert(NEXT_SEQ, seq)?;
            meta.insert(ROLLUP_SEQ, seq)?;
            let mut rated = w.open_table(AUDIT_FEEDBACK)?;
            for (key, f) in feedback {
                // A record pruned in the meantime takes no feedback.
                if table.get(*key)?.is_some() {
                    rated.insert(*key, crate::store::encode(f.as_ref()).as_slice())?;
                }
            }
        }
        w.commit()?;
        self.next_seq = seq;
        Ok(())
    }

    /// Delete records older than the retention (none when it is 0), and rollup rows older than
    /// their resolution keeps them: one transaction at open and then hourly.
    fn prune(&mut self) -> Result<(), String> {
        self.last_prune = Instant::now();
        let db = self.db.db()?;
        self.prune_in(&db).map_err(|e| self.db.failed(e))
    }

    fn prune_in(&self, db: &Database) -> Result<(), redb::Error> {
        let now = unix_ms_now();
        let w = db.begin_write()?;
        rollup::prune(&w, now, self.retention_ms)?;
        if self.retention_ms > 0 {
            let cutoff = now.saturating_sub(self.retention_ms);
            let mut records = w.open_table(AUDIT_RECORDS)?;
            let expired = records.first()?.is_some_and(|(k, _)| k.value().0 < cutoff);
            if expired {
                records.retain_in::<(u64, u64), _>(..(cutoff, 0), |_, _| false)?;
                w.open_table(AUDIT_FEEDBACK)?
                    .retain_in::<(u64, u64), _>(..(cutoff, 0), |_, _| false)?;
                // The index is keyed by request id: a scan, hourly at most and only when
                // records went.
                w.open_table(AUDIT_REQUESTS)?
                    .retain(|_, key| key.0 >= cutoff)?;
            }
        }
        w.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::audit::{self, tests::record};
    use redb::ReadableDatabase;

    fn db(dir: &std::path::Path) -> Arc<Database> {
        Arc::new(
            redb::Builder::new()
                .set_concurrency_mode(audit::CONCURRENCY_MODE)
                .create(dir.join("sluice.redb"))
                .unwrap(),
        )
    }

    fn all(db: &impl ReadableDatabase) -> Vec<AuditRecord> {
        audit::read(db, 0..u64::MAX)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[tokio::test]
    async fn flush_commits_everything_queued_and_records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let now = unix_ms_now();
        let log = AuditLog::open(db(dir.path()), &AccountingSettings::default()).unwrap();
        // Same millisecond for all: the sequence keeps keys apart. (In runs the queue holds.)
        for i in 0..2500 {
            let mut r = record(now);
            r.request_id = format!("req_{i}");
            log.record(r);
            if i % 500 == 499 {
                log.flush().await.unwrap();
            }
        }
        log.flush().await.unwrap();
        assert_eq!(log.dropped(), 0);
        tokio::task::spawn_blocking(move || log.close())
            .await
            .unwrap();

        let db = db(dir.path());
        let back = all(&*db);
        assert_eq!(back.len(), 2500);
        assert_eq!(back[0].request_id, "req_0");
        assert_eq!(back[2499].request_id, "req_2499");
        // The sequence continues after a restart: nothing is overwritten.
        let log = AuditLog::open(db.clone(), &AccountingSettings::default()).unwrap();
        log.record(record(now));
        log.flush().await.unwrap();
        assert_eq!(all(&*db).len(), 2501);
        // A window selects by time.
        log.record(record(now + 10));
        log.flush().await.unwrap();
        let later: Vec<_> = audit::read(&*db, now + 1..u64::MAX).unwrap().collect();
        assert_eq!(later.len(), 1);
    }

    /// The backlog in memory is bounded: with the writer stuck (a write transaction held
    /// elsewhere), at most `QUEUE + MAX_BATCH` records are accepted and the rest are dropped and
    /// counted; every accepted one is written once the writer can go on. This bound is what a
    /// `kill -9` can lose at most.
    #[tokio::test]
    async fn the_backlog_is_bounded_and_overflow_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let log = AuditLog::open(db.clone(), &AccountingSettings::default()).unwrap();
        let blocker = db.begin_write().unwrap();
        let now = unix_ms_now();
        let sent = 5 * (QUEUE + MAX_BATCH);
        for i in 0..sent {
            let mut r = record(now);
            r.request_id = format!("req_{i}");
            log.record(r);
            if i % 1000 == 0 {
                // Let the writer take what it can (it then waits for the transaction).
                tokio::time::sleep(GROUP_COMMIT_LINGER * 2).await;
            }
        }
        let dropped = log.dropped() as usize;
        let accepted = sent - dropped;
        assert!(accepted <= QUEUE + MAX_BATCH, "{accepted} held in memory");
        assert!(accepted >= QUEUE, "{accepted}");
        drop(blocker);
        log.flush().await.unwrap();
        assert_eq!(
            all(&*db).len(),
            accepted,
            "every accepted record is written"
        );
    }

    #[tokio::test]
    async fn another_process_handle_reads_while_the_writer_runs() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(db(dir.path()), &AccountingSettings::default()).unwrap();
        let reader = audit::open_reader(&dir.path().join("sluice.redb")).unwrap();
        assert_eq!(all(&reader).len(), 0);
        log.record(record(unix_ms_now()));
        log.flush().await.unwrap();
        // A read transaction begun after the commit sees it.
        assert_eq!(all(&reader).len(), 1);
        let Err(missing) = audit::open_reader(&dir.path().join("nope.redb")) else {
            panic!("opened a missing file")
        };
        assert!(missing.to_string().contains("no audit store"), "{missing}");
    }

    /// The child half of `a_reader_in_another_process_sees_commits`.
    #[test]
    #[ignore = "run in a child process by a_reader_in_another_process_sees_commits"]
    fn child_reads_the_audit_store() {
        let path = std::env::var("SLUICE_AUDIT_CHILD_DB").unwrap();
        let want: usize = std::env::var("SLUICE_AUDIT_CHILD_WANT")
            .unwrap()
            .parse()
            .unwrap();
        let db = audit::open_reader(std::path::Path::new(&path)).unwrap();
        assert_eq!(all(&db).len(), want);
    }

    /// `sluice report` beside a running gateway: another process opens the file read-only
    /// while this one holds it open for writing.
    #[tokio::test]
    async fn a_reader_in_another_process_sees_commits() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(db(dir.path()), &AccountingSettings::default()).unwrap();
        for _ in 0..3 {
            log.record(record(unix_ms_now()));
        }
        log.flush().await.unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "accounting::writer::tests::child_reads_the_audit_store",
            ])
            .args(["--ignored", "--test-threads=1"])
            .env("SLUICE_AUDIT_CHILD_DB", dir.path().join("sluice.redb"))
            .env("SLUICE_AUDIT_CHILD_WANT", "3")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[tokio::test]
    async fn retention_prunes_old_records_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let now = unix_ms_now();
        let keep_all = AccountingSettings {
            retention_days: 0,
            ..AccountingSettings::default()
        };
        let log = AuditLog::open(db.clone(), &keep_all).unwrap();
        log.record(record(now - 10 * DAY_MS));
        log.record(record(now - 2 * DAY_MS));
        log.record(record(now));
        log.flush().await.unwrap();
        drop(log);
        let week = AccountingSettings {
            retention_days: 7,
            ..AccountingSettings::default()
        };
        let _log = AuditLog::open(db.clone(), &week).unwrap();
        let left = all(&*db);
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|r| r.time_ms >= now - 7 * DAY_MS));
    }

    #[tokio::test]
    async fn disabled_log_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path());
        let off = AccountingSettings {
            enabled: false,
            ..AccountingSettings::default()
        };
        let log = AuditLog::open(db.clone(), &off).unwrap();
        assert!(!log.is_enabled());
        log.record(record(1));
        log.flush().await.unwrap();
        assert!(all(&*db).is_empty());
    }
}
