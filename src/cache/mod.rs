//! Semantic cache: answers a request from an earlier answer to the same (or an equivalent)
//! request.
//!
//! Stages, in lookup order:
//! 1. [`key`]: the request becomes a [`CacheKey`]: namespace (everything but the last user turn),
//!    exact fingerprint, and search bucket; long prompts are split by [`prompt`].
//! 2. Exact: an entry with the same fingerprint is served without embedding.
//! 3. Semantic: the query text is embedded ([`embed`], a batching worker thread), the bucket is
//!    searched ([`index`]: exact scan or HNSW), and the best candidate above the policy's
//!    threshold that also passes every structural guard ([`guards`]) is served.
//!
//! Inserts are queued to a writer thread (`writer.rs`) that embeds, evicts and writes to the redb
//! store (`crate::store`) in batches, then updates the in-memory catalog (`catalog.rs`), which is
//! rebuilt from the store at open. Semantic matching safety rests on the guards and, for long
//! documents, on exact content fingerprints: see [`guards`] and [`prompt`].

mod assets;
mod catalog;
pub mod embed;
mod error;
pub mod guards;
mod hot;
pub mod index;
pub mod key;
mod lexicon;
mod outcome;
pub mod prompt;
mod tokens;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use embed::{Embedder, EmbedderConfig};
pub use error::CacheError;
pub use guards::{Features, GuardMismatch};
pub use key::{CacheKey, KeyScope};
pub use outcome::{
    CacheHit, CacheStats, HitKind, LookupOutcome, MissReason, PairReport, RouteStats,
};

use catalog::Catalog;
use hot::Hot;
use outcome::Counters;
use writer::{Op, PendingHits, PendingInsert, Writer};

use crate::chat::{unix_now, ChatResponse};
use crate::config::CachePolicy;
use crate::store::{Store, StoredUsage};

/// Candidates examined per semantic lookup (best first) before giving up. Generous, because
/// entries that differ only in a number ("product 17" / "product 71") are nearly identical
/// vectors: the one the guards accept can rank below several the guards refuse.
const CANDIDATES: usize = 32;
/// Similarity an instruction needs when the document it is about matched exactly. Equivalent
/// instructions are short and worded freely ("Summarize this:" vs "Please summarize the following
/// article:" is 0.62, "Give me a summary of this article:" 0.56), while the task is carried by
/// the guards (task words, numbers, negation, content words); different tasks measured 0.18-0.53
/// and were all refused by a guard. See `tests/it/cache.rs`.
const DOCUMENT_INSTRUCTION_THRESHOLD: f32 = 0.5;

/// Where the cache keeps its data and finds its model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Holds `sluice.redb`.
    pub data_dir: PathBuf,
    /// Holds the files of `models/manifest.toml` (see scripts/fetch-models.sh).
    pub models_dir: PathBuf,
    /// ONNX Runtime library to load instead of `<models_dir>/onnxruntime/...` (not hash-checked).
    pub ort_library: Option<PathBuf>,
    /// Most texts per model call.
    pub embed_batch_max: usize,
    /// ONNX Runtime threads (default: all cores).
    pub embed_threads: Option<usize>,
    /// Queued writes (inserts, hit counts) beyond which new ones are dropped.
    pub write_queue: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            data_dir: PathBuf::from("data"),
            models_dir: PathBuf::from("models"),
            ort_library: None,
            embed_batch_max: 64,
            embed_threads: None,
            write_queue: 4096,
        }
    }
}

impl CacheSettings {
    pub fn embedder_config(&self) -> EmbedderConfig {
        EmbedderConfig {
            models_dir: self.models_dir.clone(),
            ort_library: self.ort_library.clone(),
            batch_max: self.embed_batch_max,
            queue: 1024,
            threads: self.embed_threads,
        }
    }
}

struct Inner {
    store: Store,
    embedder: Embedder,
    catalog: Arc<RwLock<Catalog>>,
    /// Parsed answers of recently served entries.
    hot: Hot,
    /// Hit counts the writer has not saved yet.
    hits: Arc<PendingHits>,
    writes: mpsc::SyncSender<Op>,
    counters: Counters,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    /// Commits what is queued and waits for the writer, so the database file is closed when the
    /// last handle is gone (a reopen in the same process then succeeds). This blocks while the
    /// writer finishes: at shutdown, `flush().await` first so the wait here is short.
    fn drop(&mut self) {
        let _ = self.writes.send(Op::Shutdown);
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
    }
}

/// The semantic cache; cheap to clone.
#[derive(Clone)]
pub struct SemanticCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SemanticCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticCache")
            .field("store", &self.inner.store)
            .finish()
    }
}

impl SemanticCache {
    /// Opens the store in `settings.data_dir`, loads the model, and rebuilds the index.
    /// Blocks (model load, store scan): call at startup.
    pub fn open(settings: &CacheSettings) -> Result<Self, CacheError> {
        let store = Store::open(&settings.data_dir)?;
        let embedder = Embedder::load(&settings.embedder_config())?;
        Self::open_with(store, embedder, settings)
    }

    /// Like [`Self::open`] with a store and an embedder the caller already has (the gateway shares
    /// its store with the audit log; tests share one loaded model).
    pub fn open_with(
        store: Store,
        embedder: Embedder,
        settings: &CacheSettings,
    ) -> Result<Self, CacheError> {
        // Vectors of another model are not comparable: drop them rather than serve nonsense.
        match store.cache_embedder()? {
            Some(id) if id == embedder.model_id() => {}
            Some(id) => {
                let n = store.cache_purge(None)?.len();
                tracing::warn!(old = %id, new = %embedder.model_id(), dropped = n, "embedding model changed; cache cleared");
                store.set_cache_embedder(embedder.model_id())?;
            }
            None => store.set_cache_embedder(embedder.model_id())?,
        }
        let now = unix_now();
        let mut catalog = Catalog::default();
        let mut expired = Vec::new();
        for e in store.cache_entries()? {
            if e.entry.expires_unix <= now {
                expired.push(e.id);
            } else {
                catalog.add(e.id, &e.entry, e.hits, e.last_hit_unix);
            }
        }
        if !expired.is_empty() {
            store.cache_write(&crate::store::CacheWriteBatch {
                deletes: expired,
                ..Default::default()
            })?;
        }
        for bucket in catalog.index.pending_builds() {
            if let Some(b) = catalog.index.bucket_mut(&bucket) {
                let points = b.snapshot();
                b.install(index::build_graph(&points), &points);
            }
        }
        let catalog = Arc::new(RwLock::new(catalog));
        let (writes, rx) = mpsc::sync_channel(settings.write_queue.max(16));
        let hits = Arc::new(PendingHits::default());
        let writer = Writer {
            store: store.clone(),
            embedder: embedder.clone(),
            catalog: catalog.clone(),
            next_id: store.next_cache_id()?,
            hits: hits.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("sluice-cache-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|_| CacheError::WorkerStopped("writer"))?;
        Ok(SemanticCache {
            inner: Arc::new(Inner {
                store,
                embedder,
                catalog,
                hot: Hot::default(),
                hits,
                writes,
                counters: Counters::default(),
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn embedder(&self) -> &Embedder {
        &self.inner.embedder
    }

    /// The cached answer for `key`, if any.
    pub async fn lookup(
        &self,
        key: &CacheKey,
        policy: &CachePolicy,
    ) -> Result<Option<CacheHit>, CacheError> {
        Ok(self.lookup_outcome(key, policy).await?.hit)
    }

    /// [`Self::lookup`] with the reason for a miss and the time spent embedding and searching.
    pub async fn lookup_outcome(
        &self,
        key: &CacheKey,
        policy: &CachePolicy,
    ) -> Result<LookupOutcome, CacheError> {
        if !policy.enabled {
            return Ok(LookupOutcome::miss(MissReason::Disabled));
        }
        if !policy.allows_temperature(key.temperature)
            || (key.multi_turn && !policy.cache_multi_turn)
        {
            return Ok(LookupOutcome::miss(MissReason::Bypassed));
        }
        let outcome = self.find(key, policy).await?;
        let kind = outcome.hit.as_ref().map(|h| h.kind);
        self.inner.counters.record(&key.route, kind);
        if let Some(hit) = &outcome.hit {
            let now = unix_now();
            if let Some(m) = self.inner.catalog.read().get(hit.entry_id) {
                m.touch(now);
            }
            self.inner.hits.add(hit.entry_id, now);
        }
        Ok(outcome)
    }

    async fn find(
        &self,
        key: &CacheKey,
        policy: &CachePolicy,
    ) -> Result<LookupOutcome, CacheError> {
        let now = unix_now();
        let (exact, bucket_len) = {
            let cat = self.inner.catalog.read();
            let len = cat.index.bucket(&key.bucket).map_or(0, |b| b.len());
            (cat.exact(&key.fingerprint, now), len)
        };
        if let Some(id) = exact {
            if let Some(response) = self.response(id).await? {
                return Ok(LookupOutcome {
                    hit: Some(CacheHit {
                        response: ChatResponse::clone(&response),
                        similarity: 1.0,
                        kind: HitKind::Exact,
                        entry_id: id,
                        embed_time: None,
                        search_time: None,
                    }),
                    miss: None,
                    embed_time: None,
                    search_time: None,
                });
            }
        }
        if bucket_len == 0 || key.parts.instruction.is_empty() || policy.similarity_threshold >= 1.0
        {
            return Ok(LookupOutcome::miss(MissReason::Empty));
        }
        let start = Instant::now();
        let vector = match self.inner.embedder.embed(&key.parts.instruction).await {
            Ok(v) => v,
            Err(CacheError::Overloaded) => return Ok(LookupOutcome::miss(MissReason::Overloaded)),
            Err(e) => return Err(e),
        };
        let embed_time = start.elapsed();
        let _ = key.vector.set(vector.clone());
        let inner = self.inner.clone();
        let text = key.parts.instruction.clone();
        let bucket = key.bucket;
        let threshold = if key.has_document() {
            policy
                .similarity_threshold
                .min(DOCUMENT_INSTRUCTION_THRESHOLD)
        } else {
            policy.similarity_threshold
        };
        let start = Instant::now();
        let found = tokio::task::spawn_blocking(move || {
            search_bucket(&inner, &bucket, &vector, &text, threshold, now)
        })
        .await
        .map_err(|_| CacheError::WorkerStopped("lookup"))??;
        let search_time = start.elapsed();
        Ok(match found {
            Found::Hit(id, sim, response) => LookupOutcome {
                hit: Some(CacheHit {
                    response: ChatResponse::clone(&response),
                    similarity: sim,
                    kind: HitKind::Semantic,
                    entry_id: id,
                    embed_time: Some(embed_time),
                    search_time: Some(search_time),
                }),
                miss: None,
                embed_time: Some(embed_time),
                search_time: Some(search_time),
            },
            Found::Miss(reason) => LookupOutcome {
                hit: None,
                miss: Some(reason),
                embed_time: Some(embed_time),
                search_time: Some(search_time),
            },
        })
    }

    /// The answer of entry `id`: from the hot tier, else read from redb on the blocking pool.
    async fn response(&self, id: u64) -> Result<Option<Arc<ChatResponse>>, CacheError> {
        if let Some(r) = self.inner.hot.get(id) {
            return Ok(Some(r));
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || read_response(&inner, id))
            .await
            .map_err(|_| CacheError::WorkerStopped("lookup"))?
    }

    /// Queues `response` as the answer for `key` (returns at once; false when the policy or the
    /// response does not allow caching, or the write queue is full). `ttl_override` replaces the
    /// policy's TTL (e.g. from a request header).
    pub fn insert(
        &self,
        key: CacheKey,
        response: &ChatResponse,
        policy: &CachePolicy,
        ttl_override: Option<Duration>,
    ) -> bool {
        let ttl_secs = ttl_override.map_or(policy.ttl_secs, |d| d.as_secs());
        if !policy.enabled
            || ttl_secs == 0
            || !policy.allows_temperature(key.temperature)
            || (key.multi_turn && !policy.cache_multi_turn)
            || !policy.allows_response(response)
        {
            return false;
        }
        let Ok(response_json) = serde_json::to_vec(response) else {
            return false;
        };
        let pending = PendingInsert {
            fingerprint: key.fingerprint,
            namespace: key.namespace,
            bucket: key.bucket,
            route: key.route,
            vector: key.vector.into_inner(),
            text: key.parts.instruction,
            response_json,
            usage: response.usage.as_ref().map(StoredUsage::from),
            model: response.model.clone(),
            ttl_secs,
            max_entries: policy.max_entries,
            max_bytes: policy.max_bytes,
        };
        self.send(Op::Insert(Box::new(pending)))
    }

    fn send(&self, op: Op) -> bool {
        match self.inner.writes.try_send(op) {
            Ok(()) => true,
            Err(_) => {
                self.inner
                    .counters
                    .dropped_writes
                    .fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Sends `op` even when the queue is full (waiting on the blocking pool, not the runtime).
    async fn send_waiting(&self, op: Op) -> Result<(), CacheError> {
        let tx = self.inner.writes.clone();
        tokio::task::spawn_blocking(move || tx.send(op))
            .await
            .map_err(|_| CacheError::WorkerStopped("writer"))?
            .map_err(|_| CacheError::WorkerStopped("writer"))
    }

    /// Waits until every write queued before this call is committed (tests, shutdown).
    pub async fn flush(&self) -> Result<(), CacheError> {
        let (reply, rx) = oneshot::channel();
        self.send_waiting(Op::Flush(reply)).await?;
        rx.await
            .map_err(|_| CacheError::WorkerStopped("writer"))?
            .map_err(CacheError::Embed)
    }

    /// Deletes the entries of `route` (all when None); returns how many.
    pub async fn purge(&self, route: Option<&str>) -> Result<u64, CacheError> {
        let (reply, rx) = oneshot::channel();
        self.send_waiting(Op::Purge {
            route: route.map(str::to_owned),
            reply,
        })
        .await?;
        let deleted = rx.await.map_err(|_| CacheError::WorkerStopped("writer"))?;
        self.inner.hot.clear();
        deleted
    }

    pub fn stats(&self) -> CacheStats {
        let c = &self.inner.counters;
        let mut stats = CacheStats {
            exact_hits: c.exact_hits.load(Ordering::Relaxed),
            semantic_hits: c.semantic_hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            dropped_writes: c.dropped_writes.load(Ordering::Relaxed),
            ..CacheStats::default()
        };
        stats.hits = stats.exact_hits + stats.semantic_hits;
        {
            let cat = self.inner.catalog.read();
            stats.entries = cat.len() as u64;
            stats.graphs = cat.index.graphs() as u64;
            for (route, usage) in cat.routes() {
                let r = stats.routes.entry(route.to_owned()).or_default();
                r.entries = usage.entries;
                r.bytes = usage.bytes;
                stats.bytes += usage.bytes;
            }
        }
        for (route, (hits, misses)) in c.routes.lock().iter() {
            let r = stats.routes.entry(route.clone()).or_default();
            r.hits = *hits;
            r.misses = *misses;
        }
        stats
    }

    /// Similarity of two texts and the guards' verdict: why two prompts would (not) share an
    /// answer. For diagnostics and threshold tuning; not on the request path.
    pub async fn compare(&self, a: &str, b: &str) -> Result<PairReport, CacheError> {
        let v = self
            .inner
            .embedder
            .embed_batch(vec![a.to_owned(), b.to_owned()])
            .await?;
        let guards = Features::extract(a).agree(&Features::extract(b));
        Ok(PairReport {
            similarity: embed::cosine(&v[0], &v[1]),
            guards,
        })
    }
}

/// Result of searching one bucket.
enum Found {
    /// (entry id, similarity, answer)
    Hit(u64, f32, Arc<ChatResponse>),
    Miss(MissReason),
}

/// The best candidate of `bucket` at or above `threshold` that every guard accepts (runs on the
/// blocking pool: index search, guard checks, and the answer from the hot tier or redb).
fn search_bucket(
    inner: &Inner,
    bucket: &[u8; 32],
    vector: &[f32],
    text: &str,
    threshold: f32,
    now: u64,
) -> Result<Found, CacheError> {
    let features = Features::extract(text);
    let cat = inner.catalog.read();
    let Some(b) = cat.index.bucket(bucket) else {
        return Ok(Found::Miss(MissReason::Empty));
    };
    let live = |id: u64| cat.get(id).is_some_and(|m| m.live(now));
    let candidates = b.search(vector, CANDIDATES, live);
    let mut miss = MissReason::BelowThreshold(candidates.first().map_or(0.0, |c| c.1));
    for (id, sim) in candidates {
        if sim < threshold {
            break;
        }
        let Some(meta) = cat.get(id) else { continue };
        match features.agree(&meta.features) {
            Ok(()) => {
                drop(cat);
                let answer = match inner.hot.get(id) {
                    Some(r) => Some(r),
                    None => read_response(inner, id)?,
                };
                return Ok(match answer {
                    Some(r) => Found::Hit(id, sim, r),
                    None => Found::Miss(MissReason::Empty),
                });
            }
            // Report the best candidate's objection.
            Err(g) if !matches!(miss, MissReason::Guard(_)) => miss = MissReason::Guard(g),
            Err(_) => {}
        }
    }
    Ok(Found::Miss(miss))
}

/// The answer of entry `id` read from redb, then kept in the hot tier. Blocking.
fn read_response(inner: &Inner, id: u64) -> Result<Option<Arc<ChatResponse>>, CacheError> {
    let Some(json) = inner.store.cache_response(id)? else {
        return Ok(None);
    };
    let response = Arc::new(parse_response(id, &json)?);
    inner.hot.put(id, json.len(), response.clone());
    Ok(Some(response))
}

fn parse_response(id: u64, json: &[u8]) -> Result<ChatResponse, CacheError> {
    serde_json::from_slice(json).map_err(|e| CacheError::Response {
        id,
        detail: e.to_string(),
    })
}
