//! The in-memory view of the stored entries: exact-fingerprint map, per-entry metadata with
//! precomputed guard features, the vector index and per-route totals. Only the writer thread
//! changes it (after its redb transaction committed); lookups read it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::decide::Veto;
use super::index::Index;
use crate::store::{CacheEntry, StoredDoc};
use crate::text::{Edges, Features};

pub struct Meta {
    pub fingerprint: [u8; 32],
    pub bucket: [u8; 32],
    pub route: Arc<str>,
    /// The cache scope's owner (`caller:<name>`, `user:<id>`), `None` for shared entries.
    pub owner: Option<Arc<str>>,
    pub features: Features,
    /// Verified evidence that this entry's answer is wrong for close prompts.
    pub veto: Veto,
    pub created_unix: u64,
    pub expires_unix: u64,
    pub size_bytes: u64,
    /// Updated by lookups (under the read lock), persisted by the writer.
    pub hits: AtomicU64,
    pub last_used_unix: AtomicU64,
    /// The prompt's document identity (namespaced keys), when it had one.
    pub doc: Option<Box<StoredDoc>>,
}

impl Meta {
    pub fn live(&self, now_unix: u64) -> bool {
        self.expires_unix > now_unix
    }

    pub fn touch(&self, now_unix: u64) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.last_used_unix.fetch_max(now_unix, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteUsage {
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Default)]
pub struct Catalog {
    exact: HashMap<[u8; 32], u64>,
    entries: HashMap<u64, Meta>,
    pub index: Index,
    routes: HashMap<Arc<str>, RouteUsage>,
    /// Per route and owner: what each scope holds (statistics are shown per scope).
    owners: HashMap<(Arc<str>, Option<Arc<str>>), RouteUsage>,
    /// Document keys (namespaced words and core hashes) -> the entries holding that document.
    docs: HashMap<[u8; 32], Vec<u64>>,
}

/// Entries looked at per document key: more copies of one document are not searched.
const MAX_DOC_ENTRIES: usize = 64;
/// Buckets searched for one document.
pub const MAX_DOC_BUCKETS: usize = 16;

/// What a document key found: the buckets holding the same document, and a stored entry that,
/// like the query, is the document alone without an instruction.
#[derive(Debug, Default)]
pub struct DocMatches<Id = u64> {
    pub buckets: Vec<[u8; 32]>,
    pub bare: Option<Id>,
}

/// The stored documents under `doc`'s keys (`ids_under`: a key's holders; `holder`: a holder's
/// document and bucket, `None` when it is gone or expired) that hold the same document: their
/// buckets other than `own` (at most [`MAX_DOC_BUCKETS`], [`MAX_DOC_ENTRIES`] looked at per
/// key), and the first that is, like the query, the document alone. The cache and `bench cache`
/// both call it.
pub(crate) fn document_matches<'a, Id: Copy + 'a>(
    doc: &StoredDoc,
    own: &[u8; 32],
    ids_under: impl Fn(&[u8; 32]) -> Option<&'a [Id]>,
    holder: impl Fn(Id) -> Option<(&'a StoredDoc, &'a [u8; 32])>,
) -> DocMatches<Id> {
    let mut out = DocMatches {
        buckets: Vec::new(),
        bare: None,
    };
    let ids = doc_keys(doc)
        .filter_map(ids_under)
        .flat_map(|ids| ids.iter().take(MAX_DOC_ENTRIES));
    for &id in ids {
        let Some((d, bucket)) = holder(id).filter(|(d, _)| same_stored_document(doc, d)) else {
            continue;
        };
        if doc.bare && d.bare && out.bare.is_none() {
            out.bare = Some(id);
        }
        if bucket != own && !out.buckets.contains(bucket) && out.buckets.len() < MAX_DOC_BUCKETS {
            out.buckets.push(*bucket);
        }
    }
    out
}

fn edges(d: &StoredDoc) -> Edges<'_> {
    Edges {
        words: &d.words,
        core: d.core.as_ref(),
        core_words: d.core_words,
        top: &d.top,
        bottom: &d.bottom,
    }
}

/// `text::same_document` of two stored documents (namespaced keys: another scope's never match).
fn same_stored_document(a: &StoredDoc, b: &StoredDoc) -> bool {
    crate::text::same_document(edges(a), edges(b))
}

/// The keys a document is found under: its words, and its core when it has one.
pub(crate) fn doc_keys(d: &StoredDoc) -> impl Iterator<Item = &[u8; 32]> {
    std::iter::once(&d.words).chain(d.core.as_ref())
}

impl Catalog {
    pub fn add(&mut self, id: u64, e: &CacheEntry, hits: u64, last_hit_unix: u64) {
        let route: Arc<str> = match self.routes.get_key_value(e.route.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(e.route.as_str()),
        };
        let owner: Option<Arc<str>> = e.owner.as_deref().map(Arc::from);
        let usage = self.routes.entry(route.clone()).or_default();
        usage.entries += 1;
        usage.bytes += e.size_bytes;
        let scoped = self
            .owners
            .entry((route.clone(), owner.clone()))
            .or_default();
        scoped.entries += 1;
        scoped.bytes += e.size_bytes;
        // The vector is empty for long documents without an instruction: exact match only.
        if !e.vector.is_empty() {
            self.index
                .insert(e.bucket, id, Arc::from(e.vector.as_slice()));
        }
        self.exact.insert(e.fingerprint, id);
        if let Some(d) = &e.document {
            for &k in doc_keys(d) {
                self.docs.entry(k).or_default().push(id);
            }
        }
        self.entries.insert(
            id,
            Meta {
                fingerprint: e.fingerprint,
                bucket: e.bucket,
                route,
                owner,
                features: Features::extract_with(&e.text, &e.mentions),
                veto: Veto::default(),
                created_unix: e.created_unix,
                expires_unix: e.expires_unix,
                size_bytes: e.size_bytes,
                hits: AtomicU64::new(hits),
                last_used_unix: AtomicU64::new(last_hit_unix.max(e.created_unix)),
                doc: e.document.clone().map(Box::new),
            },
        );
    }

    pub fn remove(&mut self, id: u64) -> Option<Meta> {
        let meta = self.entries.remove(&id)?;
        if self.exact.get(&meta.fingerprint) == Some(&id) {
            self.exact.remove(&meta.fingerprint);
        }
        self.index.remove(&meta.bucket, id);
        if let Some(d) = &meta.doc {
            for k in doc_keys(d) {
                if let Some(ids) = self.docs.get_mut(k) {
                    ids.retain(|&x| x != id);
                    if ids.is_empty() {
                        self.docs.remove(k);
                    }
                }
            }
        }
        if let Some(u) = self.routes.get_mut(&meta.route) {
            u.entries = u.entries.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(meta.size_bytes);
            if u.entries == 0 {
                self.routes.remove(&meta.route);
            }
        }
        let scope = (meta.route.clone(), meta.owner.clone());
        if let Some(u) = self.owners.get_mut(&scope) {
            u.entries = u.entries.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(meta.size_bytes);
            if u.entries == 0 {
                self.owners.remove(&scope);
            }
        }
        Some(meta)
    }

    pub fn get(&self, id: u64) -> Option<&Meta> {
        self.entries.get(&id)
    }

    /// The live entry with this exact fingerprint.
    pub fn exact(&self, fingerprint: &[u8; 32], now_unix: u64) -> Option<u64> {
        let id = *self.exact.get(fingerprint)?;
        self.entries
            .get(&id)
            .filter(|m| m.live(now_unix))
            .map(|_| id)
    }

    /// Live entries holding the same document as `doc` (re-spaced, or wrapped in other
    /// transport noise: `text::same_document`), by their buckets other than `own`: at most
    /// [`MAX_DOC_BUCKETS`].
    pub fn same_document(&self, doc: &StoredDoc, own: &[u8; 32], now_unix: u64) -> DocMatches {
        document_matches(
            doc,
            own,
            |k| self.docs.get(k).map(Vec::as_slice),
            |id| {
                let m = self.entries.get(&id).filter(|m| m.live(now_unix))?;
                Some((m.doc.as_deref()?, &m.bucket))
            },
        )
    }

    /// The entry currently holding `fingerprint` (live or not), to be replaced by a new insert.
    pub fn holder_of(&self, fingerprint: &[u8; 32]) -> Option<u64> {
        self.exact.get(fingerprint).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// What each route and owner holds.
    pub fn usage(&self) -> impl Iterator<Item = ((&str, Option<&str>), RouteUsage)> {
        self.owners
            .iter()
            .map(|((r, o), v)| ((r.as_ref(), o.as_deref()), *v))
    }

    pub fn route_usage(&self, route: &str) -> RouteUsage {
        self.routes.get(route).copied().unwrap_or_default()
    }

    pub fn expired(&self, now_unix: u64) -> Vec<u64> {
        self.entries
            .iter()
            .filter(|(_, m)| !m.live(now_unix))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The `n` entries with the most hits (at least one; ties: the most recently used) whose
    /// owner `sees` admits.
    pub fn most_hit(&self, n: usize, sees: &dyn Fn(Option<&str>) -> bool) -> Vec<(u64, &Meta)> {
        let key = |(id, m): &(u64, &Meta)| {
            std::cmp::Reverse((
                m.hits.load(Ordering::Relaxed),
                m.last_used_unix.load(Ordering::Relaxed),
                *id,
            ))
        };
        let mut v: Vec<(u64, &Meta)> = self
            .entries
            .iter()
            .filter(|(_, m)| m.hits.load(Ordering::Relaxed) > 0 && sees(m.owner.as_deref()))
            .map(|(id, m)| (*id, m))
            .collect();
        if v.len() > n && n > 0 {
            v.select_nth_unstable_by_key(n - 1, key);
        }
        v.truncate(n);
        v.sort_unstable_by_key(key);
        v
    }

    /// Entries of `route` (any when `None`) that `keep` selects by owner.
    pub fn ids_where(&self, route: Option<&str>, owner: &dyn Fn(Option<&str>) -> bool) -> Vec<u64> {
        self.entries
            .iter()
            .filter(|(_, m)| route.is_none_or(|r| &*m.route == r) && owner(m.owner.as_deref()))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Entries of `route` to evict so that it holds at most `max_entries` entries and
    /// `max_bytes` bytes after `incoming` more entries of `incoming_bytes`: least recently used
    /// first (a hit counts as a use), ties broken by fewer hits, then age. `keep` is never
    /// chosen (entries the same batch replaces).
    pub fn victims(
        &self,
        route: &str,
        incoming: u64,
        incoming_bytes: u64,
        max_entries: u64,
        max_bytes: u64,
        keep: &dyn Fn(u64) -> bool,
    ) -> Vec<u64> {
        let usage = self.route_usage(route);
        let (mut entries, mut bytes) = (usage.entries + incoming, usage.bytes + incoming_bytes);
        if entries <= max_entries && bytes <= max_bytes {
            return Vec::new();
        }
        let mut candidates: Vec<(u64, u64, u64, u64, u64)> = self
            .entries
            .iter()
            .filter(|(id, m)| &*m.route == route && !keep(**id))
            .map(|(id, m)| {
                let used = m.last_used_unix.load(Ordering::Relaxed);
                (
                    used,
                    m.hits.load(Ordering::Relaxed),
                    m.created_unix,
                    *id,
                    m.size_bytes,
                )
            })
            .collect();
        candidates.sort_unstable();
        let mut out = Vec::new();
        for (_, _, _, id, size) in candidates {
            if entries <= max_entries && bytes <= max_bytes {
                break;
            }
            out.push(id);
            entries -= 1;
            bytes = bytes.saturating_sub(size);
        }
        out
    }
}
