//! `sluice cache stats|purge --data DIR`: the cache of a data directory. `stats` reads beside a
//! running gateway; `purge` writes, so it needs the gateway stopped (a running one purges through
//! its admin API).

use std::fmt::Write as _;
use std::path::Path;

use crate::cache::CacheError;
use crate::chat::unix_now;
use crate::store::{Store, StoreReader};

/// A table of what the cache in `data_dir` holds, per route.
pub fn stats(data_dir: &Path) -> Result<String, CacheError> {
    let store = StoreReader::open(data_dir)?;
    let routes = store.cache_summary(unix_now())?;
    let mut out = String::new();
    let _ = writeln!(out, "cache in {}", store.path().display());
    if let Some(model) = store.cache_embedder()? {
        let _ = writeln!(out, "embedding model: {model}");
    }
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>12} {:>10} {:>10}",
        "route", "entries", "bytes", "hits", "expired"
    );
    let mut total = crate::store::RouteSummary::default();
    for (route, s) in &routes {
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:>12} {:>10} {:>10}",
            route, s.entries, s.bytes, s.hits, s.expired
        );
        total.entries += s.entries;
        total.bytes += s.bytes;
        total.hits += s.hits;
        total.expired += s.expired;
    }
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>12} {:>10} {:>10}",
        "total", total.entries, total.bytes, total.hits, total.expired
    );
    Ok(out)
}

/// Deletes the cache entries of `route` (all when None); returns how many.
pub fn purge(data_dir: &Path, route: Option<&str>) -> Result<u64, CacheError> {
    crate::store::existing(data_dir)?;
    let store = Store::open(data_dir)?;
    Ok(store.cache_purge(route)?.len() as u64)
}
