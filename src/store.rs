//! The one redb database of the gateway: `<data_dir>/sluice.redb`.
//!
//! Every table is a `const TableDefinition` in this file, so the whole on-disk layout is visible
//! in one place. Records are bincode 2 (serde) encodings of the structs below; cached responses are
//! kept as their JSON (the canonical chat types carry flattened `extra` maps, which bincode cannot
//! decode). `meta["format_version"]` is [`FORMAT_VERSION`]: a file written with another layout is
//! refused at open with [`StoreError::Incompatible`], a damaged one with [`StoreError::Corrupt`];
//! both name the file and the reset. Commits use redb's default durability (fsync before `commit`
//! returns), so a committed entry survives a restart and `kill -9`.
//!
//! Reset: stop sluice and delete the file (or the whole data directory). `sluice cache purge --data
//! DIR` drops the cache tables of a healthy file and keeps everything else.
//!
//! **Storage faults.** redb fails a database for good after one failed write or fsync
//! (`PreviousIo`: a full disk, a failing device). The store notices (any I/O error of any
//! operation), reports it once (an error log, [`Store::health`] for `/readyz`, a fault count for
//! `/metrics`), answers every operation with [`StoreError::Unavailable`] meanwhile (the gateway
//! serves uncached and counts the audit records it cannot write) and reopens the file from a
//! background thread every [`RECOVER_EVERY`] until a probe write commits again (space returned):
//! no restart needed. [`DiskQuota`] stands in for a small filesystem in tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use redb::{
    ConcurrencyMode, Database, DatabaseError, ReadOnlyDatabase, ReadTransaction, ReadableDatabase,
    ReadableTable, ReadableTableMetadata, StorageBackend, StorageError, TableDefinition,
    TableError,
};
use serde::{Deserialize, Serialize};

use crate::chat::Usage;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "sluice.redb";

/// The store file of `data_dir`, which must exist: a command that only reads or deletes never
/// creates an empty database where a mistyped path points.
pub fn existing(data_dir: &Path) -> Result<PathBuf, StoreError> {
    let path = data_dir.join(DB_FILE);
    if path.is_file() {
        Ok(path)
    } else {
        Err(StoreError::Db {
            path,
            detail: "no such file (has the gateway run with this data directory?)".into(),
        })
    }
}
/// Layout version of the whole file (tables and record encodings). Bump it on any change that an
/// older or newer sluice could misread. Version 1 files (cache entries without owner and operand
/// mentions) and version 2 files (cache entries without their document's identity) are upgraded
/// at open by dropping their cache tables: cached answers are disposable, audit records are kept
/// as they are.
pub const FORMAT_VERSION: u32 = 3;

/// `format_version` (u32, little endian) and other small facts about the file.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

// -- semantic cache (src/cache) --
/// id -> bincode [`CacheEntry`]: everything the index needs, loaded at startup.
pub const CACHE_ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("cache_entries");
/// id -> the cached `ChatResponse` as JSON, read only on a hit.
pub const CACHE_RESPONSES: TableDefinition<u64, &[u8]> = TableDefinition::new("cache_responses");
/// id -> (hit count, unix seconds of the last hit). Apart from the entry so that counting a hit
/// rewrites 16 bytes, not the vector and the response.
pub const CACHE_HITS: TableDefinition<u64, (u64, u64)> = TableDefinition::new("cache_hits");
/// route -> the route's verified gray-zone observations (`cache::Learner`, packed u64s, little
/// endian).
pub const CACHE_LEARNED: TableDefinition<&str, &[u8]> = TableDefinition::new("cache_learned");

// -- audit -- (src/accounting: `audit.rs` has the record and its encoding, `writer.rs` the writer)
/// (unix ms, seq) -> format byte + bincode `accounting::AuditRecord`. Append-only; `seq` never
/// repeats, so keys never collide.
pub const AUDIT_RECORDS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("audit_records");
/// `next_seq` -> the audit writer's next sequence number, updated with every batch;
/// `rollup_seq` -> the sequence number up to which the rollups below count the records (equal to
/// `next_seq` unless a writer without rollups wrote records: then they are rebuilt at open).
pub const AUDIT_META: TableDefinition<&str, u64> = TableDefinition::new("audit_meta");
/// (resolution, bucket start unix ms, series) -> bincode `accounting::rollup::Rollup`: the
/// records' figures per minute, 10 minutes, hour and day, written with the records (the
/// dashboard reads these, never the ledger).
pub const AUDIT_ROLLUPS: TableDefinition<(u8, u64, &str), &[u8]> =
    TableDefinition::new("audit_rollups");
/// (unix ms, seq) -> bincode `accounting::rollup::FailoverEvent`: the latest requests that
/// moved from one target to another (at most `rollup::MAX_FAILOVERS`).
pub const AUDIT_FAILOVERS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("audit_failovers");
/// request id -> the key of its (latest) audit record: feedback names requests by id.
pub const AUDIT_REQUESTS: TableDefinition<&str, (u64, u64)> =
    TableDefinition::new("audit_requests");
/// audit record key -> bincode `accounting::Feedback`: the client's score of the answer.
pub const AUDIT_FEEDBACK: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("audit_feedback");

// -- routing (src/router) --
/// name -> bincode: `trained` (the examples of `sluice route train`, embedded) and `difficulty`
/// (the fitted difficulty model and the fingerprint of what it was fitted on).
pub const ROUTER_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("router_state");

// -- client keys (src/access; `sluice keys`) --
/// key name -> bincode [`StoredKey`]: keys created with `sluice keys create` or `POST
/// /admin/keys` (config keys are not stored).
pub const API_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");

const FORMAT_KEY: &str = "format_version";
/// Written by the recovery probe: a write that commits means the store works again.
const PROBE_KEY: &str = "store.probe";
/// How often a failed store tries to reopen its file.
pub const RECOVER_EVERY: Duration = Duration::from_millis(500);
const EMBEDDER_KEY: &str = "cache.embedder";
/// One gateway process writes; `sluice report` and `sluice cache stats` may read beside it.
pub const CONCURRENCY_MODE: ConcurrencyMode = ConcurrencyMode::SingleWriter;
/// redb's page cache; the index keeps what lookups need in memory, so this mostly serves writes.
const PAGE_CACHE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {} is in use by another sluice process (stop it, or point --data elsewhere)", path.display())]
    Locked { path: PathBuf },
    #[error("database {} is corrupted ({detail}); to reset, stop sluice and delete this file (or the whole data directory)", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("database {} has format {found}, this sluice reads format {FORMAT_VERSION}; to reset, stop sluice and delete this file (or the whole data directory)", path.display())]
    Incompatible { path: PathBuf, found: String },
    #[error("cache record {id} in {} is unreadable ({detail}); run `sluice cache purge --data {}` to drop the cache, or delete the file", path.display(), path.parent().unwrap_or(Path::new(".")).display())]
    Record {
        path: PathBuf,
        id: u64,
        detail: String,
    },
    #[error("database {}: {detail}", path.display())]
    Db { path: PathBuf, detail: String },
    /// A storage fault put the store out of service until it reopens (see the module doc).
    #[error("database {} is unavailable after a storage fault ({reason}); it reopens by itself when writes succeed again", path.display())]
    Unavailable { path: PathBuf, reason: String },
}

/// A client key kept in the store (`sluice keys create`): its SHA-256 digest (never the key)
/// and policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredKey {
    pub digest: [u8; 32],
    pub policy: crate::config::KeyPolicy,
    pub created_unix: u64,
    /// Set by `sluice keys revoke`: the key no longer authenticates.
    pub revoked_unix: Option<u64>,
}

/// A cached answer's metadata and vector (the response itself is in [`CACHE_RESPONSES`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// Exact fingerprint: namespace + normalised last user turn.
    pub fingerprint: [u8; 32],
    /// Everything that changes the answer except the last user turn.
    pub namespace: [u8; 32],
    /// Semantic search scope: namespace + fingerprint of the long document, if any.
    pub bucket: [u8; 32],
    pub route: String,
    /// The cache scope's owner (`caller:<name>`, `user:<id>`); `None` for a shared route.
    pub owner: Option<String>,
    /// Model the answer came from (as the upstream reported it).
    pub model: String,
    /// The text that was embedded: the last user turn, or its instruction part.
    pub text: String,
    pub vector: Vec<f32>,
    pub usage: Option<StoredUsage>,
    pub created_unix: u64,
    pub expires_unix: u64,
    /// Bytes this entry occupies (record + response), for `max_bytes`.
    pub size_bytes: u64,
    /// Text of the prompt's short operands (quotes, data, code), for the focus guard.
    pub mentions: String,
    /// The identity of the prompt's document beyond its exact text (format 3).
    pub document: Option<StoredDoc>,
}

/// A cached prompt's document: keys (namespaced hashes) under which a re-spaced or differently
/// wrapped copy of it finds the entry, and its edge lines (`text::DocShape`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDoc {
    pub words: [u8; 32],
    pub core: Option<[u8; 32]>,
    pub core_words: u32,
    pub top: Vec<(u64, u32)>,
    pub bottom: Vec<(u64, u32)>,
    /// The prompt was the document alone, without an instruction.
    pub bare: bool,
}

/// The totals of a cached answer's usage. Its own type, not `chat::Usage`, because that one keeps
/// the upstream's unknown fields in a flattened map, which bincode cannot encode; the whole usage
/// is in the stored response. Three `u32`s in this order: the layout of format 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

impl From<&Usage> for StoredUsage {
    fn from(u: &Usage) -> Self {
        StoredUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
        }
    }
}

/// One entry as loaded, with its hit statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    pub id: u64,
    pub entry: CacheEntry,
    pub hits: u64,
    pub last_hit_unix: u64,
}

/// Changes applied in one write transaction.
#[derive(Debug, Default)]
pub struct CacheWriteBatch {
    /// (id, entry, response JSON)
    pub inserts: Vec<(u64, CacheEntry, Vec<u8>)>,
    pub deletes: Vec<u64>,
    /// (id, hits to add, unix seconds of the latest)
    pub hits: Vec<(u64, u64, u64)>,
}

impl CacheWriteBatch {
    pub fn is_empty(&self) -> bool {
        self.inserts.is_empty() && self.deletes.is_empty() && self.hits.is_empty()
    }
}

/// Per-route totals of the stored cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteSummary {
    pub entries: u64,
    pub bytes: u64,
    pub hits: u64,
    pub expired: u64,
}

/// Handle on the database; cheap to clone, shared by the cache, the audit writer and the keys.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    /// `None` while the store is out of service after a fault (being reopened).
    db: RwLock<Option<Arc<Database>>>,
    path: PathBuf,
    /// Why the store is out of service; `None` when healthy.
    fault: Mutex<Option<String>>,
    faulted: AtomicBool,
    /// Storage faults since start (each a transition out of service).
    faults: AtomicU64,
    recovering: AtomicBool,
    quota: Option<Arc<DiskQuota>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

/// A test hook standing in for a small filesystem: a write or resize that would take the file
/// past `limit` bytes fails with `StorageFull` (ENOSPC), as on a full disk. Raising the limit is
/// the disk space coming back.
#[derive(Debug)]
pub struct DiskQuota {
    limit: AtomicU64,
}

impl DiskQuota {
    pub fn new(limit_bytes: u64) -> Arc<DiskQuota> {
        Arc::new(DiskQuota {
            limit: AtomicU64::new(limit_bytes),
        })
    }

    pub fn set_limit(&self, bytes: u64) {
        self.limit.store(bytes, Ordering::SeqCst);
    }

    fn check(&self, end: u64) -> std::io::Result<()> {
        if end > self.limit.load(Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device (disk quota)",
            ));
        }
        Ok(())
    }
}

/// redb's file backend under a [`DiskQuota`].
#[derive(Debug)]
struct QuotaBackend {
    file: redb::backends::FileBackend,
    quota: Arc<DiskQuota>,
}

type Bound = std::ops::Bound<u64>;

impl StorageBackend for QuotaBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        if len > self.file.len()? {
            self.quota.check(len)?;
        }
        self.file.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.quota.check(offset.saturating_add(data.len() as u64))?;
        self.file.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.file.close()
    }
    fn try_lock_range(&self, s: Bound, e: Bound) -> Result<bool, redb::BackendError> {
        self.file.try_lock_range(s, e)
    }
    fn try_lock_shared_range(&self, s: Bound, e: Bound) -> Result<bool, redb::BackendError> {
        self.file.try_lock_shared_range(s, e)
    }
    fn lock_range(&self, s: Bound, e: Bound) -> Result<(), redb::BackendError> {
        self.file.lock_range(s, e)
    }
    fn lock_shared_range(&self, s: Bound, e: Bound) -> Result<(), redb::BackendError> {
        self.file.lock_shared_range(s, e)
    }
    fn unlock_range(&self, s: Bound, e: Bound) -> Result<(), redb::BackendError> {
        self.file.unlock_range(s, e)
    }
    fn query_lock_range(&self, s: Bound, e: Bound) -> Result<bool, redb::BackendError> {
        self.file.query_lock_range(s, e)
    }
}

/// An error that means the file cannot be written (or read) any more: redb needs a reopen.
fn is_storage_fault(e: &redb::Error) -> bool {
    matches!(
        e,
        redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
    )
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain structs into a Vec cannot fail.
    bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap_or_default()
}

pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| e.to_string())
}

impl Store {
    /// Opens (or creates) `<data_dir>/sluice.redb`, checking its integrity and format version.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Self::open_with_quota(data_dir, None)
    }

    /// [`Self::open`] with the file under a [`DiskQuota`] (tests of storage faults).
    pub fn open_with_quota(
        data_dir: &Path,
        quota: Option<Arc<DiskQuota>>,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let db = open_db(&path, quota.as_ref(), true)?;
        let store = Store {
            inner: Arc::new(StoreInner {
                db: RwLock::new(Some(Arc::new(db))),
                path,
                fault: Mutex::new(None),
                faulted: AtomicBool::new(false),
                faults: AtomicU64::new(0),
                recovering: AtomicBool::new(false),
                quota,
            }),
        };
        store.check_format()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The database, for modules that add their own tables here; `Unavailable` while the store
    /// is out of service after a fault. Hold it for one operation only (a reopen waits for
    /// every handle to be dropped).
    pub fn database(&self) -> Result<Arc<Database>, StoreError> {
        match &*self.inner.db.read() {
            Some(db) => Ok(db.clone()),
            None => Err(self.unavailable()),
        }
    }

    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.database()
    }

    fn unavailable(&self) -> StoreError {
        StoreError::Unavailable {
            path: self.inner.path.clone(),
            reason: self
                .inner
                .fault
                .lock()
                .clone()
                .unwrap_or_else(|| "reopening".into()),
        }
    }

    /// `None` when the store works; else why it is out of service.
    pub fn health(&self) -> Option<String> {
        if !self.inner.faulted.load(Ordering::Acquire) {
            return None;
        }
        self.inner.fault.lock().clone()
    }

    pub fn is_healthy(&self) -> bool {
        !self.inner.faulted.load(Ordering::Acquire)
    }

    /// Storage faults since start.
    pub fn faults(&self) -> u64 {
        self.inner.faults.load(Ordering::Relaxed)
    }

    /// An error of an operation: a storage fault takes the store out of service (once) and
    /// starts the reopening.
    pub fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        let e: redb::Error = e.into();
        if is_storage_fault(&e) {
            self.fault(&e.to_string());
        }
        StoreError::Db {
            path: self.inner.path.clone(),
            detail: e.to_string(),
        }
    }

    /// Takes the store out of service: one error log, the reason for `/readyz`, and a thread
    /// that reopens the file when writes succeed again.
    pub fn fault(&self, reason: &str) {
        if self.inner.faulted.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.inner.fault.lock() = Some(reason.to_owned());
        self.inner.faults.fetch_add(1, Ordering::Relaxed);
        // Out of service at once: later operations get `Unavailable`, not redb's `PreviousIo`.
        drop(self.inner.db.write().take());
        tracing::error!(
            file = %self.inner.path.display(),
            error = %reason,
            "storage fault: serving without cache and audit writes until the store reopens"
        );
        if self.inner.recovering.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("sluice-store-recover".into())
            .spawn(move || recover(inner));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the store's recovery thread");
        }
    }

    fn snapshot(&self) -> Result<Snapshot<'_>, StoreError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
        Ok(Snapshot {
            txn,
            path: &self.inner.path,
        })
    }

    /// A fresh file gets the current version; a version 1 or 2 file is upgraded (its cache
    /// dropped); any other file must already carry the current version.
    fn check_format(&self) -> Result<(), StoreError> {
        match self.snapshot()?.check_format() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(StoreError::Incompatible { found, .. }) if found == "1" || found == "2" => {
                let dropped = self.cache_purge(None)?.len();
                tracing::warn!(
                    file = %self.inner.path.display(),
                    dropped,
                    "store format {found} upgraded to {FORMAT_VERSION}: cached answers dropped (the audit is kept)"
                );
            }
            Err(e) => return Err(e),
        }
        self.meta_set(FORMAT_KEY, &FORMAT_VERSION.to_le_bytes())
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.snapshot()?.meta_get(key)
    }

    pub fn meta_set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let w = self.db()?.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = w.open_table(META).map_err(|e| self.err(e))?;
            t.insert(key, value).map_err(|e| self.err(e))?;
        }
        w.commit().map_err(|e| self.err(e))
    }

    /// A router record (see [`ROUTER_STATE`]).
    pub fn router_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let read = self.db()?.begin_read().map_err(|e| self.err(e))?;
        match read.open_table(ROUTER_STATE) {
            Ok(t) => Ok(t
                .get(key)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec())),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Writes (or with `None` deletes) router records in one durable transaction.
    pub fn router_put(&self, records: &[(&str, Option<&[u8]>)]) -> Result<(), StoreError> {
        let w = self.db()?.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = w.open_table(ROUTER_STATE).map_err(|e| self.err(e))?;
            for (key, value) in records {
                match value {
                    Some(v) => t.insert(*key, *v).map(drop),
                    None => t.remove(*key).map(drop),
                }
                .map_err(|e| self.err(e))?;
            }
        }
        w.commit().map_err(|e| self.err(e))
    }

    /// Identity of the embedding model whose vectors the cache holds.
    pub fn cache_embedder(&self) -> Result<Option<String>, StoreError> {
        self.snapshot()?.cache_embedder()
    }

    pub fn set_cache_embedder(&self, id: &str) -> Result<(), StoreError> {
        self.meta_set(EMBEDDER_KEY, id.as_bytes())
    }

    /// Every cache entry with its hit statistics, in id order.
    pub fn cache_entries(&self) -> Result<Vec<StoredEntry>, StoreError> {
        self.snapshot()?.cache_entries()
    }

    /// Entry `id`'s record.
    pub fn cache_entry(&self, id: u64) -> Result<Option<CacheEntry>, StoreError> {
        let read = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let t = match read.open_table(CACHE_ENTRIES) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let Some(bytes) = t.get(id).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        decode(bytes.value())
            .map(Some)
            .map_err(|detail| StoreError::Record {
                path: self.inner.path.clone(),
                id,
                detail,
            })
    }

    /// The stored response JSON of entry `id`.
    pub fn cache_response(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let read = self.db()?.begin_read().map_err(|e| self.err(e))?;
        match read.open_table(CACHE_RESPONSES) {
            Ok(t) => Ok(t
                .get(id)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec())),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The id after the largest one in use.
    pub fn next_cache_id(&self) -> Result<u64, StoreError> {
        let read = self.db()?.begin_read().map_err(|e| self.err(e))?;
        match read.open_table(CACHE_ENTRIES) {
            Ok(t) => Ok(t
                .last()
                .map_err(|e| self.err(e))?
                .map_or(1, |(k, _)| k.value() + 1)),
            Err(TableError::TableDoesNotExist(_)) => Ok(1),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Applies `batch` in one durable transaction.
    pub fn cache_write(&self, batch: &CacheWriteBatch) -> Result<(), StoreError> {
        let w = self.db()?.begin_write().map_err(|e| self.err(e))?;
        {
            let mut entries = w.open_table(CACHE_ENTRIES).map_err(|e| self.err(e))?;
            let mut responses = w.open_table(CACHE_RESPONSES).map_err(|e| self.err(e))?;
            let mut hits = w.open_table(CACHE_HITS).map_err(|e| self.err(e))?;
            for (id, entry, response) in &batch.inserts {
                entries
                    .insert(*id, encode(entry).as_slice())
                    .map_err(|e| self.err(e))?;
                responses
                    .insert(*id, response.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            for id in &batch.deletes {
                entries.remove(*id).map_err(|e| self.err(e))?;
                responses.remove(*id).map_err(|e| self.err(e))?;
                hits.remove(*id).map_err(|e| self.err(e))?;
            }
            for &(id, add, at) in &batch.hits {
                // A hit on an entry deleted in the meantime is dropped.
                if entries.get(id).map_err(|e| self.err(e))?.is_none() {
                    continue;
                }
                let (old, last) = hits
                    .get(id)
                    .map_err(|e| self.err(e))?
                    .map(|v| v.value())
                    .unwrap_or((0, 0));
                hits.insert(id, (old + add, last.max(at)))
                    .map_err(|e| self.err(e))?;
            }
        }
        w.commit().map_err(|e| self.err(e))
    }

    /// Deletes the cache entries of `route` (all when None); returns the ids deleted.
    /// Works without decoding entries when purging everything, so it also clears records an
    /// older or newer sluice wrote.
    pub fn cache_purge(&self, route: Option<&str>) -> Result<Vec<u64>, StoreError> {
        let ids: Vec<u64> = match route {
            None => self.all_cache_ids()?,
            Some(r) => self
                .cache_entries()?
                .into_iter()
                .filter(|e| e.entry.route == r)
                .map(|e| e.id)
                .collect(),
        };
        if route.is_none() {
            let w = self.db()?.begin_write().map_err(|e| self.err(e))?;
            // delete_table needs no decoding and reports a missing table as `false`.
            w.delete_table(CACHE_ENTRIES).map_err(|e| self.err(e))?;
            w.delete_table(CACHE_RESPONSES).map_err(|e| self.err(e))?;
            w.delete_table(CACHE_HITS).map_err(|e| self.err(e))?;
            w.delete_table(CACHE_LEARNED).map_err(|e| self.err(e))?;
            w.commit().map_err(|e| self.err(e))?;
        } else {
            self.cache_write(&CacheWriteBatch {
                deletes: ids.clone(),
                ..CacheWriteBatch::default()
            })?;
        }
        Ok(ids)
    }

    /// Every route's saved learner state (packed counts).
    pub fn cache_learned(&self) -> Result<Vec<(String, Vec<u64>)>, StoreError> {
        let read = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let t = match read.open_table(CACHE_LEARNED) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let packed = v
                .value()
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect();
            out.push((k.value().to_owned(), packed));
        }
        Ok(out)
    }

    /// Saves routes' learner states in one transaction.
    pub fn set_cache_learned(&self, states: &[(&str, Vec<u64>)]) -> Result<(), StoreError> {
        let w = self.db()?.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = w.open_table(CACHE_LEARNED).map_err(|e| self.err(e))?;
            for (route, packed) in states {
                let bytes: Vec<u8> = packed.iter().flat_map(|v| v.to_le_bytes()).collect();
                t.insert(*route, bytes.as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        w.commit().map_err(|e| self.err(e))
    }

    fn all_cache_ids(&self) -> Result<Vec<u64>, StoreError> {
        let read = self.db()?.begin_read().map_err(|e| self.err(e))?;
        let t = match read.open_table(CACHE_ENTRIES) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut ids = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            ids.push(row.map_err(|e| self.err(e))?.0.value());
        }
        Ok(ids)
    }

    /// Per-route totals of what is stored (entries past their expiry counted separately).
    pub fn cache_summary(
        &self,
        now_unix: u64,
    ) -> Result<BTreeMap<String, RouteSummary>, StoreError> {
        self.snapshot()?.cache_summary(now_unix)
    }

    /// Every stored client key (revoked ones included), by name.
    pub fn keys(&self) -> Result<Vec<(String, StoredKey)>, StoreError> {
        self.snapshot()?.keys()
    }

    /// Adds a key; `false` when the name is taken (a revoked name too: names stay unique in the
    /// audit).
    pub fn key_create(&self, name: &str, key: &StoredKey) -> Result<bool, StoreError> {
        let w = self.db()?.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = w.open_table(API_KEYS).map_err(|e| self.err(e))?;
            if t.get(name).map_err(|e| self.err(e))?.is_some() {
                return Ok(false);
            }
            t.insert(name, encode(key).as_slice())
                .map_err(|e| self.err(e))?;
        }
        w.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Marks `name` revoked; `false` when there is no such key (or it was revoked already).
    pub fn key_revoke(&self, name: &str, now_unix: u64) -> Result<bool, StoreError> {
        let w = self.db()?.begin_write().map_err(|e| self.err(e))?;
        {
            let mut t = w.open_table(API_KEYS).map_err(|e| self.err(e))?;
            let Some(bytes) = t
                .get(name)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec())
            else {
                return Ok(false);
            };
            let mut key: StoredKey = decode(&bytes).map_err(|detail| StoreError::Db {
                path: self.inner.path.clone(),
                detail: format!("key {name}: {detail}"),
            })?;
            if key.revoked_unix.is_some() {
                return Ok(false);
            }
            key.revoked_unix = Some(now_unix);
            t.insert(name, encode(&key).as_slice())
                .map_err(|e| self.err(e))?;
        }
        w.commit().map_err(|e| self.err(e))?;
        Ok(true)
    }
}

/// Read-only access beside a running gateway (redb's SingleWriter mode): what `sluice cache stats`
/// uses, so it works while the server runs.
pub struct StoreReader {
    db: ReadOnlyDatabase,
    path: PathBuf,
}

impl StoreReader {
    /// Opens an existing `<data_dir>/sluice.redb` read-only and checks its format version.
    pub fn open(data_dir: &Path) -> Result<StoreReader, StoreError> {
        let path = existing(data_dir)?;
        let db = redb::Builder::new()
            .set_concurrency_mode(CONCURRENCY_MODE)
            .set_cache_size(16 * 1024 * 1024)
            .open_read_only(&path)
            .map_err(|e| open_error(&path, e))?;
        let reader = StoreReader { db, path };
        reader.snapshot()?.check_format()?;
        Ok(reader)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn snapshot(&self) -> Result<Snapshot<'_>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| db_error(&self.path, e))?;
        Ok(Snapshot {
            txn,
            path: &self.path,
        })
    }

    pub fn cache_embedder(&self) -> Result<Option<String>, StoreError> {
        self.snapshot()?.cache_embedder()
    }

    pub fn cache_summary(
        &self,
        now_unix: u64,
    ) -> Result<BTreeMap<String, RouteSummary>, StoreError> {
        self.snapshot()?.cache_summary(now_unix)
    }

    pub fn keys(&self) -> Result<Vec<(String, StoredKey)>, StoreError> {
        self.snapshot()?.keys()
    }

    /// Every cache entry with its hit statistics, in id order.
    pub fn cache_entries(&self) -> Result<Vec<StoredEntry>, StoreError> {
        self.snapshot()?.cache_entries()
    }
}

/// One consistent read of the file, shared by [`Store`] and [`StoreReader`].
struct Snapshot<'a> {
    txn: ReadTransaction,
    path: &'a Path,
}

impl Snapshot<'_> {
    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        db_error(self.path, e)
    }

    /// Ok(true) when the file carries [`FORMAT_VERSION`], Ok(false) when it is new (no tables).
    fn check_format(&self) -> Result<bool, StoreError> {
        match self.meta_get(FORMAT_KEY)? {
            Some(bytes) if bytes == FORMAT_VERSION.to_le_bytes() => Ok(true),
            Some(bytes) => Err(StoreError::Incompatible {
                path: self.path.to_path_buf(),
                found: match <[u8; 4]>::try_from(bytes.as_slice()) {
                    Ok(b) => u32::from_le_bytes(b).to_string(),
                    Err(_) => format!("{bytes:02x?}"),
                },
            }),
            None => {
                let tables = self.txn.list_tables().map_err(|e| self.err(e))?.count();
                if tables > 0 {
                    return Err(StoreError::Incompatible {
                        path: self.path.to_path_buf(),
                        found: "none (no format_version)".into(),
                    });
                }
                Ok(false)
            }
        }
    }

    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.txn.open_table(META) {
            Ok(t) => Ok(t
                .get(key)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec())),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    fn cache_embedder(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta_get(EMBEDDER_KEY)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Every cache entry with its hit statistics, in id order.
    fn cache_entries(&self) -> Result<Vec<StoredEntry>, StoreError> {
        let entries = match self.txn.open_table(CACHE_ENTRIES) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let hits = match self.txn.open_table(CACHE_HITS) {
            Ok(t) => Some(t),
            Err(TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::with_capacity(entries.len().map_err(|e| self.err(e))? as usize);
        for row in entries.iter().map_err(|e| self.err(e))? {
            let (id, bytes) = row.map_err(|e| self.err(e))?;
            let id = id.value();
            let entry: CacheEntry = decode(bytes.value()).map_err(|detail| StoreError::Record {
                path: self.path.to_path_buf(),
                id,
                detail,
            })?;
            let (hits, last_hit_unix) = match &hits {
                Some(t) => t
                    .get(id)
                    .map_err(|e| self.err(e))?
                    .map(|v| v.value())
                    .unwrap_or((0, 0)),
                None => (0, 0),
            };
            out.push(StoredEntry {
                id,
                entry,
                hits,
                last_hit_unix,
            });
        }
        Ok(out)
    }

    fn keys(&self) -> Result<Vec<(String, StoredKey)>, StoreError> {
        let t = match self.txn.open_table(API_KEYS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let key = decode(v.value()).map_err(|detail| StoreError::Db {
                path: self.path.to_path_buf(),
                detail: format!("key {}: {detail}", k.value()),
            })?;
            out.push((k.value().to_owned(), key));
        }
        Ok(out)
    }

    /// Per-route totals of what is stored (entries past their expiry counted separately).
    fn cache_summary(&self, now_unix: u64) -> Result<BTreeMap<String, RouteSummary>, StoreError> {
        let mut out = BTreeMap::<String, RouteSummary>::new();
        for e in self.cache_entries()? {
            let s = out.entry(e.entry.route.clone()).or_default();
            s.entries += 1;
            s.bytes += e.entry.size_bytes;
            s.hits += e.hits;
            if e.entry.expires_unix <= now_unix {
                s.expired += 1;
            }
        }
        Ok(out)
    }
}

/// Opens the file (`create`: make it when missing), under a quota when one is given.
fn open_db(
    path: &Path,
    quota: Option<&Arc<DiskQuota>>,
    check_integrity: bool,
) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    builder
        .set_concurrency_mode(CONCURRENCY_MODE)
        .set_check_integrity_on_open(check_integrity)
        .set_cache_size(PAGE_CACHE_BYTES);
    let opened = match quota {
        None => builder.create(path),
        Some(q) => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(DatabaseError::from)
            .and_then(|f| {
                #[allow(deprecated)]
                let file = redb::backends::FileBackend::new(f)?;
                builder.create_with_backend(QuotaBackend {
                    file,
                    quota: q.clone(),
                })
            }),
    };
    opened.map_err(|e| open_error(path, e))
}

/// The recovery thread of a faulted store: drop the failed database, reopen the file (redb
/// repairs what the failed commit left) and write a probe; back in service once it commits.
/// Ends when the store recovers or the last handle on it is gone.
fn recover(inner: std::sync::Weak<StoreInner>) {
    loop {
        std::thread::sleep(RECOVER_EVERY);
        let Some(inner) = inner.upgrade() else { return };
        // Our handle goes now; the file closes when the last operation holding it ends.
        drop(inner.db.write().take());
        let reopened = open_db(&inner.path, inner.quota.as_ref(), false).and_then(|db| {
            let probe = || -> Result<(), redb::Error> {
                let w = db.begin_write()?;
                {
                    let mut t = w.open_table(META)?;
                    let now = crate::chat::unix_now().to_le_bytes();
                    t.insert(PROBE_KEY, now.as_slice())?;
                }
                w.commit()?;
                Ok(())
            };
            probe().map(|()| db).map_err(|e| db_error(&inner.path, e))
        });
        match reopened {
            Ok(db) => {
                *inner.db.write() = Some(Arc::new(db));
                *inner.fault.lock() = None;
                inner.recovering.store(false, Ordering::Release);
                inner.faulted.store(false, Ordering::Release);
                tracing::info!(file = %inner.path.display(), "store reopened: writes succeed again");
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "store still out of service");
            }
        }
    }
}

fn db_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Db {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    let path = path.to_path_buf();
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StoreError::Locked { path }
        }
        DatabaseError::UpgradeRequired(v) => StoreError::Incompatible {
            path,
            found: format!("redb file format {v}"),
        },
        DatabaseError::Storage(StorageError::Corrupted(detail)) => {
            StoreError::Corrupt { path, detail }
        }
        // "Not a redb database: magic number mismatch" and other unreadable headers.
        DatabaseError::Storage(StorageError::Io(e))
            if e.kind() == std::io::ErrorKind::InvalidData =>
        {
            StoreError::Corrupt {
                path,
                detail: e.to_string(),
            }
        }
        other => StoreError::Db {
            path,
            detail: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(route: &str) -> CacheEntry {
        CacheEntry {
            fingerprint: [1; 32],
            namespace: [2; 32],
            bucket: [3; 32],
            route: route.into(),
            owner: None,
            model: "m".into(),
            text: "hello".into(),
            vector: vec![0.5; 4],
            usage: Some(StoredUsage::from(&Usage::new(3, 4))),
            created_unix: 10,
            expires_unix: 20,
            size_bytes: 100,
            mentions: String::new(),
            document: None,
        }
    }

    #[test]
    fn entries_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.next_cache_id().unwrap(), 1);
        store
            .cache_write(&CacheWriteBatch {
                inserts: vec![
                    (1, entry("a"), b"{}".to_vec()),
                    (2, entry("b"), b"[]".to_vec()),
                ],
                hits: vec![(1, 2, 15)],
                ..Default::default()
            })
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let all = store.cache_entries().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].entry, entry("a"));
        assert_eq!((all[0].hits, all[0].last_hit_unix), (2, 15));
        assert_eq!(store.cache_response(2).unwrap().unwrap(), b"[]");
        assert_eq!(store.next_cache_id().unwrap(), 3);
        let reader = StoreReader::open(dir.path()).unwrap();
        assert_eq!(reader.cache_summary(0).unwrap()["a"].hits, 2);
        drop(reader);
        assert_eq!(store.cache_purge(Some("a")).unwrap(), vec![1]);
        assert_eq!(store.cache_summary(0).unwrap().len(), 1);
        assert_eq!(store.cache_purge(None).unwrap(), vec![2]);
        assert!(store.cache_entries().unwrap().is_empty());
    }

    #[test]
    fn a_format_2_file_is_upgraded_with_its_cache_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Bytes no format-3 reader decodes, as a format-2 entry would be.
        store
            .cache_write(&CacheWriteBatch {
                inserts: vec![(1, entry("a"), b"{}".to_vec())],
                ..Default::default()
            })
            .unwrap();
        {
            let w = store.db().unwrap().begin_write().unwrap();
            w.open_table(CACHE_ENTRIES)
                .unwrap()
                .insert(2, &[0xff_u8; 7][..])
                .unwrap();
            w.commit().unwrap();
        }
        store.meta_set(FORMAT_KEY, &2u32.to_le_bytes()).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.cache_entries().unwrap().is_empty());
        assert_eq!(
            store.meta_get(FORMAT_KEY).unwrap().unwrap(),
            FORMAT_VERSION.to_le_bytes()
        );
    }

    #[test]
    fn damaged_pages_are_a_clear_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let inserts = (1..200u64)
            .map(|id| (id, entry("r"), vec![b'x'; 500]))
            .collect();
        store
            .cache_write(&CacheWriteBatch {
                inserts,
                ..Default::default()
            })
            .unwrap();
        drop(store);
        let path = dir.path().join(DB_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() / 2;
        bytes[at..at + 4096].iter_mut().for_each(|b| *b ^= 0xff);
        std::fs::write(&path, &bytes).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn garbage_and_foreign_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![0x5a; 8192]).unwrap();
        let err = Store::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains(DB_FILE) && err.contains("delete"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.meta_set(FORMAT_KEY, &99u32.to_le_bytes()).unwrap();
        drop(store);
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Incompatible { .. }), "{err}");
        assert!(err.to_string().contains("format 99"), "{err}");
    }
}
