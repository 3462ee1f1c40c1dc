//! The cache's write path, off the request path: one thread that takes every queued operation,
//! embeds inserts that arrived without a vector (in one batch), evicts over-limit routes,
//! writes everything in one redb transaction and only then updates the in-memory catalog.
//! When idle, at most every few seconds, it deletes expired entries and compacts indexes.
//!
//! Hit counts are bookkeeping (eviction order, stats), not answers: the catalog has them in
//! memory at once, and a lookup adds them to a shared [`PendingHits`] map instead of queueing an
//! operation (which would wake this thread on every hit). The writer saves them with the next
//! transaction, or within [`HIT_FLUSH`] when idle, or at shutdown. A kill -9 can lose the last
//! few seconds of hit counts, never an entry.
//!
//! Verification also happens here: a gray-zone candidate's answer (read from the store) is
//! compared with the fresh answer the request got ([`agree`]); the verdict goes into the route's
//! [`Learner`] (saved with the next transaction) and, when they differ, a veto on the entry.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::oneshot;

use super::catalog::Catalog;
use super::embed::Embedder;
use super::index::build_graph;
use super::{CacheError, Learners, Verification, Visibility};
use crate::chat::{unix_now, ChatResponse};
use crate::store::{encode, CacheEntry, CacheWriteBatch, Store, StoredDoc, StoredUsage};

/// Most operations folded into one transaction.
const MAX_OPS: usize = 512;
/// Expired entries are deleted and indexes compacted at most this often, when the writer idles.
const HOUSEKEEPING: Duration = Duration::from_secs(10);
/// Longest time a hit count stays unsaved while the writer is idle.
const HIT_FLUSH: Duration = Duration::from_secs(5);

/// Hits not yet saved: entry id -> (count, unix seconds of the latest).
#[derive(Default)]
pub(crate) struct PendingHits(parking_lot::Mutex<HashMap<u64, (u64, u64)>>);

impl PendingHits {
    pub fn add(&self, id: u64, at: u64) {
        let mut m = self.0.lock();
        let e = m.entry(id).or_default();
        e.0 += 1;
        e.1 = e.1.max(at);
    }

    fn take(&self) -> HashMap<u64, (u64, u64)> {
        std::mem::take(&mut *self.0.lock())
    }

    fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }
}

pub(crate) struct PendingInsert {
    pub fingerprint: [u8; 32],
    pub namespace: [u8; 32],
    pub bucket: [u8; 32],
    pub route: String,
    pub owner: Option<String>,
    pub text: String,
    pub mentions: String,
    pub document: Option<StoredDoc>,
    /// None: embed before writing (empty `text` is never embedded).
    pub vector: Option<Vec<f32>>,
    pub response_json: Vec<u8>,
    pub usage: Option<StoredUsage>,
    pub model: String,
    pub ttl_secs: u64,
    pub max_entries: u64,
    pub max_bytes: u64,
}

pub(crate) enum Op {
    Insert(Box<PendingInsert>),
    Flush(oneshot::Sender<Result<(), String>>),
    Purge {
        route: Option<String>,
        visible: Visibility,
        reply: oneshot::Sender<Result<u64, CacheError>>,
    },
    /// Compare a gray-zone candidate's answer with the fresh `answer` ([`answer_text`]).
    Verify {
        route: String,
        verification: Verification,
        answer: Option<String>,
    },
    /// A verdict reached elsewhere (a judge).
    Observe {
        route: String,
        verification: Verification,
        agreed: bool,
    },
    /// Commit what is queued before it, then stop.
    Shutdown,
}

pub(crate) struct Writer {
    pub store: Store,
    pub embedder: Embedder,
    pub catalog: Arc<RwLock<Catalog>>,
    pub next_id: u64,
    pub hits: Arc<PendingHits>,
    pub learners: Arc<Learners>,
    /// Routes whose learner changed since it was last saved.
    pub learned_dirty: Vec<String>,
}

impl Writer {
    pub fn run(mut self, rx: Receiver<Op>) {
        let mut housekept = Instant::now();
        loop {
            let first = match rx.recv_timeout(HIT_FLUSH) {
                Ok(op) => op,
                Err(RecvTimeoutError::Timeout) if !self.hits.is_empty() => {
                    if let Err(e) = self.commit(Vec::new()) {
                        tracing::error!(error = %e, "cache write failed");
                    }
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if housekept.elapsed() >= HOUSEKEEPING {
                        self.housekeeping();
                        housekept = Instant::now();
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut ops = vec![first];
            while ops.len() < MAX_OPS {
                match rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            if self.process(ops) {
                return;
            }
        }
    }

    /// Applies `ops` in order; true when one of them asked the writer to stop.
    fn process(&mut self, ops: Vec<Op>) -> bool {
        let mut stop = false;
        let mut inserts = Vec::new();
        let mut last_error: Option<String> = None;
        for op in ops {
            match op {
                Op::Insert(p) => inserts.push(*p),
                Op::Flush(reply) => {
                    if let Err(e) = self.commit(std::mem::take(&mut inserts)) {
                        last_error = Some(e.to_string());
                    }
                    let _ = reply.send(last_error.take().map_or(Ok(()), Err));
                }
                Op::Purge {
                    route,
                    visible,
                    reply,
                } => {
                    if let Err(e) = self.commit(std::mem::take(&mut inserts)) {
                        tracing::error!(error = %e, "cache write failed");
                    }
                    let _ = reply.send(self.purge(route.as_deref(), &visible));
                }
                Op::Verify {
                    route,
                    verification,
                    answer,
                } => {
                    if let Some(agreed) = self.verify(&verification, answer.as_deref()) {
                        self.observe(route, verification, agreed);
                    }
                }
                Op::Observe {
                    route,
                    verification,
                    agreed,
                } => self.observe(route, verification, agreed),
                Op::Shutdown => {
                    stop = true;
                    break;
                }
            }
        }
        if let Err(e) = self.commit(inserts) {
            tracing::error!(error = %e, "cache write failed");
        }
        stop
    }

    /// Whether the cached answer of the candidate agrees with the fresh one; `None` when that
    /// cannot be told (an answer too long to compare by text, or the entry is gone).
    fn verify(&self, v: &Verification, fresh: Option<&str>) -> Option<bool> {
        let fresh = fresh?;
        let json = self.store.cache_response(v.entry_id).ok()??;
        let cached: ChatResponse = serde_json::from_slice(&json).ok()?;
        let cached = answer_text(&cached)?;
        Some(cached == fresh)
    }

    fn observe(&mut self, route: String, v: Verification, agreed: bool) {
        self.learners
            .get_or_create(&route)
            .observe(v.gray, v.similarity, agreed);
        if !agreed {
            if let Some(m) = self.catalog.read().get(v.entry_id) {
                m.veto.raise(v.similarity);
            }
        }
        if !self.learned_dirty.contains(&route) {
            self.learned_dirty.push(route);
        }
    }

    /// Saves the learners that changed.
    fn save_learned(&mut self) -> Result<(), CacheError> {
        if self.learned_dirty.is_empty() {
            return Ok(());
        }
        let states: Vec<(String, Vec<u64>)> = self
            .learned_dirty
            .iter()
            .filter_map(|r| Some((r.clone(), self.learners.get(r)?.snapshot())))
            .collect();
        let refs: Vec<(&str, Vec<u64>)> = states
            .iter()
            .map(|(r, v)| (r.as_str(), v.clone()))
            .collect();
        self.store.set_cache_learned(&refs)?;
        self.learned_dirty.clear();
        Ok(())
    }

    /// Writes `inserts` and every unsaved hit in one transaction.
    fn commit(&mut self, inserts: Vec<PendingInsert>) -> Result<(), CacheError> {
        self.save_learned()?;
        let hits = self.hits.take();
        if inserts.is_empty() && hits.is_empty() {
            return Ok(());
        }
        let inserts = self.embed_missing(inserts);
        let now = unix_now();
        let mut batch = CacheWriteBatch {
            hits: hits.into_iter().map(|(id, (n, at))| (id, n, at)).collect(),
            ..CacheWriteBatch::default()
        };
        // Later inserts of the same fingerprint in this batch win.
        let mut by_fp: HashMap<[u8; 32], usize> = HashMap::new();
        let mut entries: Vec<(u64, CacheEntry, Vec<u8>, u64, u64)> = Vec::new();
        for p in inserts {
            let id = self.next_id;
            self.next_id += 1;
            let mut entry = CacheEntry {
                fingerprint: p.fingerprint,
                namespace: p.namespace,
                bucket: p.bucket,
                route: p.route,
                owner: p.owner,
                model: p.model,
                text: p.text,
                vector: p.vector.unwrap_or_default(),
                usage: p.usage,
                created_unix: now,
                expires_unix: now.saturating_add(p.ttl_secs),
                size_bytes: 0,
                mentions: p.mentions,
                document: p.document,
            };
            entry.size_bytes = (encode(&entry).len() + p.response_json.len()) as u64;
            let row = (id, entry, p.response_json, p.max_entries, p.max_bytes);
            match by_fp.get(&p.fingerprint) {
                Some(&i) => entries[i] = row,
                None => {
                    by_fp.insert(p.fingerprint, entries.len());
                    entries.push(row);
                }
            }
        }
        {
            let cat = self.catalog.read();
            let replaced: Vec<u64> = entries
                .iter()
                .filter_map(|(_, e, ..)| cat.holder_of(&e.fingerprint))
                .collect();
            batch.deletes.extend(&replaced);
            // Per route: incoming count and bytes, and the route's limits (latest policy wins).
            let mut per_route: HashMap<&str, (u64, u64, u64, u64)> = HashMap::new();
            for (_, e, _, max_entries, max_bytes) in &entries {
                let r = per_route.entry(e.route.as_str()).or_default();
                r.0 += 1;
                r.1 += e.size_bytes;
                r.2 = *max_entries;
                r.3 = *max_bytes;
            }
            for (route, (n, bytes, max_entries, max_bytes)) in per_route {
                let keep = |id: u64| replaced.contains(&id);
                // Replaced entries leave the route, so count them out first.
                let freed: (u64, u64) = replaced
                    .iter()
                    .filter_map(|id| cat.get(*id))
                    .filter(|m| &*m.route == route)
                    .fold((0, 0), |acc, m| (acc.0 + 1, acc.1 + m.size_bytes));
                let victims = cat.victims(
                    route,
                    n.saturating_sub(freed.0),
                    bytes.saturating_sub(freed.1),
                    max_entries,
                    max_bytes,
                    &keep,
                );
                batch.deletes.extend(victims);
            }
        }
        batch.inserts = entries
            .into_iter()
            .map(|(id, e, r, ..)| (id, e, r))
            .collect();
        self.store.cache_write(&batch)?;
        {
            let mut cat = self.catalog.write();
            for id in &batch.deletes {
                cat.remove(*id);
            }
            for (id, e, _) in &batch.inserts {
                cat.add(*id, e, 0, 0);
            }
        }
        self.rebuild_indexes();
        Ok(())
    }

    /// Embeds, in one batch, the inserts that came without a vector; drops those that fail.
    fn embed_missing(&self, mut inserts: Vec<PendingInsert>) -> Vec<PendingInsert> {
        let todo: Vec<usize> = inserts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.vector.is_none() && !p.text.is_empty())
            .map(|(i, _)| i)
            .collect();
        if todo.is_empty() {
            return inserts;
        }
        let texts = todo.iter().map(|&i| inserts[i].text.clone()).collect();
        match self.embedder.embed_batch_blocking(texts) {
            Ok(vectors) => {
                for (i, v) in todo.into_iter().zip(vectors) {
                    inserts[i].vector = Some(v);
                }
                inserts
            }
            Err(e) => {
                tracing::error!(error = %e, dropped = todo.len(), "cache insert: embedding failed");
                inserts
                    .into_iter()
                    .filter(|p| p.vector.is_some() || p.text.is_empty())
                    .collect()
            }
        }
    }

    /// Builds graphs for buckets that outgrew the exact scan or collected too many tombstones.
    /// The build runs without the catalog lock; only the swap takes it.
    fn rebuild_indexes(&self) {
        let pending = self.catalog.read().index.pending_builds();
        for bucket in pending {
            let Some(points) = self
                .catalog
                .read()
                .index
                .bucket(&bucket)
                .map(|b| b.snapshot())
            else {
                continue;
            };
            let graph = build_graph(&points);
            if let Some(b) = self.catalog.write().index.bucket_mut(&bucket) {
                b.install(graph, &points);
            }
        }
    }

    fn purge(&mut self, route: Option<&str>, visible: &Visibility) -> Result<u64, CacheError> {
        if route.is_none() && *visible == Visibility::All {
            let ids = self.store.cache_purge(None)?;
            *self.catalog.write() = Catalog::default();
            return Ok(ids.len() as u64);
        }
        let ids = self
            .catalog
            .read()
            .ids_where(route, &|owner| visible.sees(owner));
        self.store.cache_write(&CacheWriteBatch {
            deletes: ids.clone(),
            ..CacheWriteBatch::default()
        })?;
        let mut cat = self.catalog.write();
        for id in &ids {
            cat.remove(*id);
        }
        Ok(ids.len() as u64)
    }

    fn housekeeping(&mut self) {
        let expired = self.catalog.read().expired(unix_now());
        if expired.is_empty() {
            return;
        }
        let batch = CacheWriteBatch {
            deletes: expired,
            ..CacheWriteBatch::default()
        };
        match self.store.cache_write(&batch) {
            Ok(()) => {
                let mut cat = self.catalog.write();
                for id in &batch.deletes {
                    cat.remove(*id);
                }
                drop(cat);
                self.rebuild_indexes();
            }
            Err(e) => tracing::error!(error = %e, "cache expiry failed"),
        }
    }
}

/// Longest normalised answer compared by text: labels, numbers and short answers. Two long
/// free-text answers to the same question rarely match word for word, so their agreement says
/// nothing (a judge can verify those).
pub const MAX_COMPARED_ANSWER_CHARS: usize = 300;

/// An answer's text for agreement: the first choice's text (and tool calls), lower-cased, with
/// punctuation and whitespace runs made single spaces; `None` when it is empty or too long to
/// compare.
pub fn answer_text(r: &ChatResponse) -> Option<String> {
    let choice = r.choices.first()?;
    let mut text = choice.message.text();
    if let Some(calls) = &choice.message.tool_calls {
        text.push_str(&serde_json::to_string(calls).unwrap_or_default());
    }
    let mut out = String::with_capacity(text.len());
    for w in text
        .split(|c: char| !c.is_alphanumeric() && c != '.' && c != '-')
        .map(|w| w.trim_matches(['.', '-']))
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.chars().flat_map(char::to_lowercase));
        if out.len() > MAX_COMPARED_ANSWER_CHARS {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}
