//! Semantic cache: answers a request from an earlier answer to the same (or an equivalent)
//! request.
//!
//! Stages, in lookup order:
//! 1. [`key`]: the request becomes a [`CacheKey`]: namespace (the owner's scope and everything
//!    but the last user turn), exact fingerprint, and search bucket (namespace + operand
//!    fingerprint: `crate::text::prompt`).
//! 2. Exact: an entry with the same fingerprint is served without embedding.
//! 3. Semantic: the instruction is embedded ([`embed`], a batching worker thread), the bucket is
//!    searched ([`index`]: exact scan or HNSW), and [`decide`] picks a hit, a gray-zone candidate
//!    to verify, or a miss, with the text rules of `crate::text` (guards, task frames).
//! 4. Verification: a gray-zone candidate is served as a miss; when the fresh answer is written
//!    back, the writer compares it with the candidate's answer and records the observation in
//!    the route's [`Learner`] (and a veto on the entry when they differ).
//!
//! Inserts are queued to a writer thread (`writer.rs`) that embeds, evicts and writes to the redb
//! store (`crate::store`) in batches, then updates the in-memory catalog (`catalog.rs`), which is
//! rebuilt from the store at open. The engine knows no English: what makes two prompts the same
//! question is `crate::text`'s business.

mod assets;
mod catalog;
pub mod decide;
pub mod embed;
mod error;
mod hot;
pub mod index;
pub mod key;
mod outcome;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub use decide::{Decision, Gray, HitBy, Learner, Thresholds};
pub use embed::{Embedder, EmbedderConfig};
pub use error::CacheError;
pub use key::{CacheKey, KeyScope};
pub use outcome::{
    CacheHit, CacheStats, HitKind, LookupOutcome, MissReason, PairReport, RouteStats, Verification,
};
pub use writer::answer_text;

pub(crate) use catalog::{doc_keys, document_matches};
use catalog::{Catalog, DocMatches};
use hot::Hot;
use outcome::Counters;
use writer::{Op, PendingHits, PendingInsert, Writer};

use crate::chat::{unix_now, ChatResponse};
use crate::config::CachePolicy;
use crate::store::{Store, StoredUsage};
use crate::text::Features;

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
    /// Verified gray-zone observations, per route (shared with the writer, which records them).
    learners: Arc<Learners>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The routes' learners, created on first use and saved by the writer.
#[derive(Default)]
pub(crate) struct Learners(RwLock<std::collections::HashMap<Arc<str>, Arc<Learner>>>);

impl Learners {
    pub(crate) fn get(&self, route: &str) -> Option<Arc<Learner>> {
        self.0.read().get(route).cloned()
    }

    pub(crate) fn get_or_create(&self, route: &str) -> Arc<Learner> {
        if let Some(l) = self.get(route) {
            return l;
        }
        self.0.write().entry(Arc::from(route)).or_default().clone()
    }
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
        let learners = Arc::new(Learners::default());
        for (route, packed) in store.cache_learned()? {
            learners.get_or_create(&route).restore(&packed);
        }
        let (writes, rx) = mpsc::sync_channel(settings.write_queue.max(16));
        let hits = Arc::new(PendingHits::default());
        let writer = Writer {
            store: store.clone(),
            embedder: embedder.clone(),
            catalog: catalog.clone(),
            next_id: store.next_cache_id()?,
            hits: hits.clone(),
            learners: learners.clone(),
            learned_dirty: Vec::new(),
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
                learners,
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
        self.inner.counters.record(&key.route, key.owner(), kind);
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
        let (exact, bucket_len, docs) = {
            let cat = self.inner.catalog.read();
            let len = cat.index.bucket(&key.bucket).map_or(0, |b| b.len());
            let exact = cat.exact(&key.fingerprint, now);
            // The same document re-spaced or otherwise wrapped, in other buckets: searched when
            // the query's own bucket has no hit (looked up only without an exact hit).
            let docs = match &key.doc {
                Some(d) if exact.is_none() => cat.same_document(d, &key.bucket, now),
                _ => DocMatches::default(),
            };
            (exact, len, docs)
        };
        let (exact, by) = match (exact, docs.bare) {
            (Some(id), _) => (Some(id), None),
            (None, Some(id)) => (Some(id), Some(HitBy::Document)),
            (None, None) => (None, None),
        };
        if let Some(id) = exact {
            if let Some(response) = self.response(id).await? {
                return Ok(LookupOutcome {
                    hit: Some(CacheHit {
                        response: ChatResponse::clone(&response),
                        similarity: 1.0,
                        kind: if by.is_some() {
                            HitKind::Semantic
                        } else {
                            HitKind::Exact
                        },
                        by,
                        entry_id: id,
                        embed_time: None,
                        search_time: None,
                    }),
                    ..LookupOutcome::default()
                });
            }
        }
        let instruction = &key.parsed.instruction;
        if (bucket_len == 0 && docs.buckets.is_empty())
            || instruction.is_empty()
            || policy.similarity_threshold >= 1.0
        {
            return Ok(LookupOutcome::miss(MissReason::Empty));
        }
        let start = Instant::now();
        // The router may have embedded the same text already (`CacheKey::set_vector`).
        let (vector, embed_time) = match key.vector.get() {
            Some(v) => (v.clone(), None),
            None => {
                let v = match self.inner.embedder.embed(instruction).await {
                    Ok(v) => v,
                    Err(CacheError::Overloaded) => {
                        return Ok(LookupOutcome::miss(MissReason::Overloaded))
                    }
                    Err(e) => return Err(e),
                };
                let _ = key.vector.set(v.clone());
                (v, Some(start.elapsed()))
            }
        };
        let inner = self.inner.clone();
        let query = Query {
            text: instruction.clone(),
            mentions: key.parsed.mentions.clone(),
            bucket: (bucket_len > 0).then_some(key.bucket),
            also: docs.buckets,
            operands: key.has_operands(),
            thresholds: Thresholds::new(
                policy.similarity_threshold,
                key.has_document(),
                policy.learned_max_error(),
            ),
            learner: self.inner.learners.get(&key.route),
        };
        let start = Instant::now();
        let found =
            tokio::task::spawn_blocking(move || search_bucket(&inner, &query, &vector, now))
                .await
                .map_err(|_| CacheError::WorkerStopped("lookup"))??;
        let search_time = start.elapsed();
        let mut outcome = LookupOutcome {
            embed_time,
            search_time: Some(search_time),
            ..LookupOutcome::default()
        };
        match found {
            Found::Hit(id, similarity, by, response) => {
                outcome.hit = Some(CacheHit {
                    response: ChatResponse::clone(&response),
                    similarity,
                    kind: HitKind::Semantic,
                    by: Some(by),
                    entry_id: id,
                    embed_time,
                    search_time: Some(search_time),
                });
            }
            Found::Miss(reason, verify) => {
                outcome.miss = Some(reason);
                outcome.verify = verify;
            }
        }
        Ok(outcome)
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
    /// response does not allow caching, or the write queue is full). `ttl` can only shorten the
    /// policy's TTL (e.g. from a request header).
    pub fn insert(
        &self,
        key: CacheKey,
        response: &ChatResponse,
        policy: &CachePolicy,
        ttl: Option<Duration>,
    ) -> bool {
        let ttl_secs = ttl.map_or(policy.ttl_secs, |d| d.as_secs().min(policy.ttl_secs));
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
            owner: key.owner,
            vector: key.vector.into_inner(),
            text: key.parsed.instruction,
            mentions: key.parsed.mentions,
            document: key.doc,
            response_json,
            usage: response.usage.as_ref().map(StoredUsage::from),
            model: response.model.clone(),
            ttl_secs,
            max_entries: policy.max_entries,
            max_bytes: policy.max_bytes,
        };
        self.send(Op::Insert(Box::new(pending)))
    }

    /// Queues the verification of the gray-zone candidate `v` that a lookup of `route` named:
    /// the writer compares its answer with the fresh `response` and records what it finds.
    pub fn verify(&self, route: &str, v: Verification, response: &ChatResponse) {
        self.send(Op::Verify {
            route: route.to_owned(),
            verification: v,
            answer: writer::answer_text(response),
        });
    }

    /// Records a verdict on a gray-zone candidate reached elsewhere (a judge): `agreed` says
    /// whether the cached answer was right for the new prompt.
    pub fn observe(&self, route: &str, v: Verification, agreed: bool) {
        self.send(Op::Observe {
            route: route.to_owned(),
            verification: v,
            agreed,
        });
    }

    /// Entry `id`'s instruction and answer (for a judge), read on the blocking pool.
    pub async fn entry(&self, id: u64) -> Result<Option<(String, Arc<ChatResponse>)>, CacheError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let Some(entry) = inner.store.cache_entry(id)? else {
                return Ok(None);
            };
            Ok(read_response(&inner, id)?.map(|r| (entry.text, r)))
        })
        .await
        .map_err(|_| CacheError::WorkerStopped("lookup"))?
    }

    /// (agreed, disagreed) verified observations of `route`'s gray zone of `kind` at
    /// `similarity` or above.
    pub fn learned(&self, route: &str, kind: Gray, similarity: f32) -> (u64, u64) {
        self.inner
            .learners
            .get(route)
            .map_or((0, 0), |l| l.counts_from(kind, similarity))
    }

    fn send(&self, op: Op) -> bool {
        match self.inner.writes.try_send(op) {
            Ok(()) => true,
            Err(_) => {
                self.inner.counters.dropped();
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

    /// Deletes the entries of `route` (all when None) that `visible` lets the caller see (by
    /// owner); returns how many.
    pub async fn purge(&self, route: Option<&str>, visible: Visibility) -> Result<u64, CacheError> {
        let (reply, rx) = oneshot::channel();
        self.send_waiting(Op::Purge {
            route: route.map(str::to_owned),
            visible,
            reply,
        })
        .await?;
        let deleted = rx.await.map_err(|_| CacheError::WorkerStopped("writer"))?;
        self.inner.hot.clear();
        deleted
    }

    /// Statistics of the entries and lookups `visible` lets the caller see.
    pub fn stats(&self, visible: &Visibility) -> CacheStats {
        let c = &self.inner.counters;
        let mut stats = CacheStats {
            dropped_writes: c.dropped_writes.load(Ordering::Relaxed),
            ..CacheStats::default()
        };
        {
            let cat = self.inner.catalog.read();
            stats.graphs = cat.index.graphs() as u64;
            for ((route, owner), usage) in cat.usage() {
                if !visible.sees(owner) {
                    continue;
                }
                let r = stats.routes.entry(route.to_owned()).or_default();
                r.entries += usage.entries;
                r.bytes += usage.bytes;
                stats.entries += usage.entries;
                stats.bytes += usage.bytes;
            }
        }
        for (route, owners) in c.routes.lock().iter() {
            for (owner, n) in owners {
                if !visible.sees((!owner.is_empty()).then_some(owner.as_str())) {
                    continue;
                }
                let r = stats.routes.entry(route.clone()).or_default();
                r.hits += n.exact + n.semantic;
                r.misses += n.misses;
                stats.exact_hits += n.exact;
                stats.semantic_hits += n.semantic;
                stats.misses += n.misses;
            }
        }
        stats.hits = stats.exact_hits + stats.semantic_hits;
        stats
    }

    /// The `n` most-hit entries `visible` lets the caller see (for the dashboard); with
    /// `prompts` (`[accounting] log_prompts`), the start of the text each was stored for, read
    /// from the store (blocking: call it off the async runtime).
    pub fn most_hit(&self, n: usize, visible: &Visibility, prompts: bool) -> Vec<TopEntry> {
        const PREVIEW_CHARS: usize = 160;
        let mut top: Vec<TopEntry> = {
            let cat = self.inner.catalog.read();
            cat.most_hit(n, &|owner| visible.sees(owner))
                .into_iter()
                .map(|(id, m)| TopEntry {
                    id,
                    route: m.route.to_string(),
                    hits: m.hits.load(Ordering::Relaxed),
                    created_unix: m.created_unix,
                    last_used_unix: m.last_used_unix.load(Ordering::Relaxed),
                    expires_unix: m.expires_unix,
                    size_bytes: m.size_bytes,
                    prompt: None,
                })
                .collect()
        };
        if prompts {
            for e in &mut top {
                e.prompt = self
                    .inner
                    .store
                    .cache_entry(e.id)
                    .ok()
                    .flatten()
                    .map(|c| c.text.chars().take(PREVIEW_CHARS).collect());
            }
        }
        top
    }

    /// Number of stored entries (all owners): for the entries gauge.
    pub fn len(&self) -> u64 {
        self.inner.catalog.read().len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

/// A cache entry as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopEntry {
    pub id: u64,
    pub route: String,
    pub hits: u64,
    pub created_unix: u64,
    pub last_used_unix: u64,
    pub expires_unix: u64,
    pub size_bytes: u64,
    /// The start of the text the entry was stored for (only with prompt logging on).
    pub prompt: Option<String>,
}

/// Which owners' entries a caller may see in statistics and purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every entry (no client keys, or an administrator).
    All,
    /// Shared entries and those of this owner (`caller:<name>`).
    Owner(String),
}

impl Visibility {
    pub fn sees(&self, owner: Option<&str>) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Owner(me) => owner.is_none_or(|o| o == me),
        }
    }
}

/// What a semantic search needs from the lookup (moved to the blocking pool).
struct Query {
    text: String,
    mentions: String,
    /// The query's own bucket, when it holds entries.
    bucket: Option<[u8; 32]>,
    /// Other buckets holding the same document re-spaced or otherwise wrapped.
    also: Vec<[u8; 32]>,
    operands: bool,
    thresholds: Thresholds,
    learner: Option<Arc<Learner>>,
}

/// Result of searching one bucket.
enum Found {
    /// (entry id, similarity, how, answer)
    Hit(u64, f32, HitBy, Arc<ChatResponse>),
    Miss(MissReason, Option<Verification>),
}

/// Searches the query's bucket (or the buckets holding its document) and decides
/// ([`decide::decide`]) on the blocking pool: index search, text rules, and the answer from the
/// hot tier or redb. The first bucket with a hit wins; otherwise the first gray candidate is
/// named for verification.
fn search_bucket(inner: &Inner, q: &Query, vector: &[f32], now: u64) -> Result<Found, CacheError> {
    let features = Features::extract_with(&q.text, &q.mentions);
    let cat = inner.catalog.read();
    let live = |id: u64| cat.get(id).is_some_and(|m| m.live(now));
    let decisions = q.bucket.iter().chain(&q.also).filter_map(|bucket| {
        let b = cat.index.bucket(bucket)?;
        let found = b.search(vector, decide::CANDIDATES, live);
        let candidates = found.iter().filter_map(|&(id, similarity)| {
            let meta = cat.get(id)?;
            Some(decide::Candidate {
                id,
                similarity,
                features: &meta.features,
                vetoed_at_or_below: meta.veto.get(),
            })
        });
        Some(decide::decide(
            &features,
            q.operands,
            candidates,
            q.thresholds,
            q.learner.as_deref(),
        ))
    });
    let decision = decide::first_of(decisions);
    drop(cat);
    let Some(decision) = decision else {
        return Ok(Found::Miss(MissReason::Empty, None));
    };
    Ok(match decision {
        Decision::Hit { id, similarity, by } => {
            let answer = match inner.hot.get(id) {
                Some(r) => Some(r),
                None => read_response(inner, id)?,
            };
            match answer {
                Some(r) => Found::Hit(id, similarity, by, r),
                None => Found::Miss(MissReason::Empty, None),
            }
        }
        Decision::Verify {
            id,
            similarity,
            gray,
            guard,
        } => Found::Miss(
            MissReason::Gray(gray, guard),
            Some(Verification {
                entry_id: id,
                similarity,
                gray,
            }),
        ),
        Decision::Miss { guard: Some(g), .. } => Found::Miss(MissReason::Guard(g), None),
        Decision::Miss { best, guard: None } => Found::Miss(MissReason::BelowThreshold(best), None),
    })
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
