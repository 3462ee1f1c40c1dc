//! Who may call the gateway, and how much: client keys (from the config and from the store),
//! their roles and policies, and the meters that enforce a key's budgets, rate limits and
//! concurrency, plus the gateway-wide cap on requests in flight.
//!
//! - Keys are kept as SHA-256 digests; a presented key is hashed once and looked up.
//! - Budgets (USD per UTC day and per UTC month) are enforced from the audit ledger: the spend
//!   of the current month is read from the audit at startup ([`Access::load_spend`]) and every
//!   recorded request adds its cost ([`Access::charge`]), so the meter and the report agree.
//!   A key at or over a budget is refused before any upstream call.
//! - Rate limits are token buckets per key: `requests_per_minute` (one token per request, at
//!   admission) and `tokens_per_minute` (the request's tokens, charged when it is recorded; a
//!   key in debt is refused until the bucket refills). Refusals carry the wait (`Retry-After`).
//! - Concurrency: a key's `max_concurrent` and the gateway's `max_concurrent_requests`; a permit
//!   is held until the response body ends (streams included). Excess is refused at once, never
//!   queued.

mod meter;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::config::{key_digest, ApiKeys, KeyPolicy};
use crate::store::{Store, StoreError, StoredKey};

pub use meter::{utc_day, utc_month, Meter, Refusal};

/// An authenticated key: its caller name, policy and meters.
#[derive(Debug)]
pub struct Key {
    pub name: Arc<str>,
    pub policy: Arc<KeyPolicy>,
    pub meter: Arc<Meter>,
}

/// Where a key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    Config,
    Store,
}

/// A key as `sluice keys list` and `GET /admin/keys` show it (never the key itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub name: String,
    pub source: KeySource,
    /// First 8 hex digits of the key's SHA-256 digest.
    pub digest_prefix: String,
    #[serde(flatten)]
    pub policy: KeyPolicy,
    pub created_unix: Option<u64>,
    pub revoked_unix: Option<u64>,
    /// Spend recorded today and this month (UTC), USD.
    pub spent_today_usd: f64,
    pub spent_this_month_usd: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("a key named \"{0}\" exists already (names stay unique, revoked ones too)")]
    NameTaken(String),
    #[error("no key named \"{0}\" to revoke")]
    NoSuchKey(String),
    #[error("key \"{0}\" is defined in the config: remove it there")]
    ConfigKey(String),
    #[error("key names are 1 to 64 letters, digits, '-', '_' or '.': \"{0}\"")]
    BadName(String),
    #[error("{0}")]
    Policy(String),
    #[error("keys cannot be created without a store (turn on [accounting] or the cache)")]
    NoStore,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Access {
    /// digest -> key, for every key that authenticates (config keys, unrevoked stored keys).
    keys: RwLock<HashMap<[u8; 32], Arc<Key>>>,
    /// caller name -> meter: spend and limits follow the name (the audit's caller).
    meters: RwLock<HashMap<Arc<str>, Arc<Meter>>>,
    config_keys: ApiKeys,
    store: Option<Store>,
    /// True once any key exists (a revoked one included): revoking the last key must not open
    /// the gateway.
    keys_on: std::sync::atomic::AtomicBool,
    /// Requests in flight, gateway-wide, and their cap.
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
}

/// Letters, digits, `-`, `_`, `.`; 1 to 64 bytes (the name appears in the audit and reports).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Access {
    /// The config's keys and the store's unrevoked ones.
    pub fn new(
        config_keys: &ApiKeys,
        store: Option<Store>,
        max_in_flight: usize,
    ) -> Result<Access, StoreError> {
        let stored = match &store {
            Some(st) => st.keys()?,
            None => Vec::new(),
        };
        let access = Access {
            keys: RwLock::new(HashMap::new()),
            meters: RwLock::new(HashMap::new()),
            config_keys: config_keys.clone(),
            store,
            keys_on: (!config_keys.is_empty() || !stored.is_empty()).into(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: max_in_flight.max(1),
        };
        for spec in config_keys.specs() {
            access.insert(spec.digest, spec.name.clone(), spec.policy.clone());
        }
        for (name, k) in stored {
            if k.revoked_unix.is_none() && !access.keys.read().contains_key(&k.digest) {
                access.insert(k.digest, name.into(), Arc::new(k.policy));
            }
        }
        Ok(access)
    }

    fn insert(&self, digest: [u8; 32], name: Arc<str>, policy: Arc<KeyPolicy>) {
        let meter = self
            .meters
            .write()
            .entry(name.clone())
            .or_insert_with(|| Arc::new(Meter::default()))
            .clone();
        self.keys.write().insert(
            digest,
            Arc::new(Key {
                name,
                policy,
                meter,
            }),
        );
    }

    /// True when requests must carry a key.
    pub fn keys_on(&self) -> bool {
        self.keys_on.load(Ordering::Relaxed)
    }

    /// The key `presented` is, if it is one.
    pub fn authenticate(&self, presented: &str) -> Option<Arc<Key>> {
        self.keys.read().get(&key_digest(presented)).cloned()
    }

    /// Admits one request of `key` now: budgets, request rate, token debt, concurrency.
    pub fn admit(&self, key: &Key) -> Result<meter::KeyPermit, Refusal> {
        key.meter.admit(&key.policy, crate::chat::unix_now())
    }

    /// Takes a gateway-wide slot; `None` when `max_concurrent_requests` are in flight.
    pub fn admit_global(&self) -> Option<GlobalPermit> {
        let prev = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let permit = GlobalPermit(self.in_flight.clone());
        (prev < self.max_in_flight).then_some(permit)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Adds a recorded request's cost and tokens to its caller's meter.
    pub fn charge(&self, caller: &str, time_ms: u64, cost_usd: Option<f64>, tokens: u64) {
        if let Some(m) = self.meters.read().get(caller) {
            m.charge(time_ms / 1000, cost_usd.unwrap_or(0.0), tokens);
        }
    }

    /// The spend already in the audit ledger: `(caller, time_ms, cost)` of this month's records.
    pub fn load_spend(&self, records: impl IntoIterator<Item = (String, u64, f64)>) {
        let meters = self.meters.read();
        for (caller, time_ms, cost) in records {
            if let Some(m) = meters.get(caller.as_str()) {
                m.charge(time_ms / 1000, cost, 0);
            }
        }
    }

    /// Creates a key in the store; returns the key (shown once, never stored).
    pub fn create(&self, name: &str, policy: KeyPolicy) -> Result<String, AccessError> {
        let store = self.store.as_ref().ok_or(AccessError::NoStore)?;
        check_new_key(name, &policy, &self.config_keys)?;
        let key = new_key();
        let stored = StoredKey {
            digest: key_digest(&key),
            policy: policy.clone(),
            created_unix: crate::chat::unix_now(),
            revoked_unix: None,
        };
        if !store.key_create(name, &stored)? {
            return Err(AccessError::NameTaken(name.to_owned()));
        }
        self.insert(stored.digest, name.into(), Arc::new(policy));
        self.keys_on.store(true, Ordering::Relaxed);
        Ok(key)
    }

    /// Revokes a stored key: it stops authenticating at once.
    pub fn revoke(&self, name: &str) -> Result<(), AccessError> {
        if self.config_keys.specs().iter().any(|k| &*k.name == name) {
            return Err(AccessError::ConfigKey(name.to_owned()));
        }
        let store = self.store.as_ref().ok_or(AccessError::NoStore)?;
        if !store.key_revoke(name, crate::chat::unix_now())? {
            return Err(AccessError::NoSuchKey(name.to_owned()));
        }
        self.keys.write().retain(|_, k| &*k.name != name);
        Ok(())
    }

    /// Every key, config ones first, with this period's spend.
    pub fn list(&self) -> Result<Vec<KeyInfo>, AccessError> {
        let now = crate::chat::unix_now();
        let spent = |name: &str| {
            self.meters
                .read()
                .get(name)
                .map_or((0.0, 0.0), |m| m.spent(now))
        };
        let mut out = Vec::new();
        for k in self.config_keys.specs() {
            let (day, month) = spent(&k.name);
            out.push(KeyInfo {
                name: k.name.to_string(),
                source: KeySource::Config,
                digest_prefix: hex::encode(&k.digest[..4]),
                policy: (*k.policy).clone(),
                created_unix: None,
                revoked_unix: None,
                spent_today_usd: day,
                spent_this_month_usd: month,
            });
        }
        if let Some(store) = &self.store {
            for (name, k) in store.keys()? {
                let (day, month) = spent(&name);
                out.push(info(name, k, day, month));
            }
        }
        Ok(out)
    }
}

/// A stored key as listed.
pub fn info(name: String, k: StoredKey, spent_today: f64, spent_month: f64) -> KeyInfo {
    KeyInfo {
        name,
        source: KeySource::Store,
        digest_prefix: hex::encode(&k.digest[..4]),
        policy: k.policy,
        created_unix: Some(k.created_unix),
        revoked_unix: k.revoked_unix,
        spent_today_usd: spent_today,
        spent_this_month_usd: spent_month,
    }
}

/// A new key's name and policy must be valid and not a config key's name.
pub fn check_new_key(name: &str, policy: &KeyPolicy, config: &ApiKeys) -> Result<(), AccessError> {
    if !valid_name(name) {
        return Err(AccessError::BadName(name.to_owned()));
    }
    if config.specs().iter().any(|k| &*k.name == name) {
        return Err(AccessError::NameTaken(name.to_owned()));
    }
    if let Some(p) = policy.problems("key").into_iter().next() {
        return Err(AccessError::Policy(p));
    }
    Ok(())
}

/// `sk-sluice-` and 32 random hex digits (128 bits).
pub fn new_key() -> String {
    format!("sk-sluice-{:032x}", rand::random::<u128>())
}

/// Creates a key directly in a store (the gateway stopped; `sluice keys create`).
pub fn create_in_store(
    store: &Store,
    name: &str,
    policy: KeyPolicy,
) -> Result<String, AccessError> {
    check_new_key(name, &policy, &ApiKeys::default())?;
    let key = new_key();
    let stored = StoredKey {
        digest: key_digest(&key),
        policy,
        created_unix: crate::chat::unix_now(),
        revoked_unix: None,
    };
    if !store.key_create(name, &stored)? {
        return Err(AccessError::NameTaken(name.to_owned()));
    }
    Ok(key)
}

/// A gateway-wide request slot, released on drop.
pub struct GlobalPermit(Arc<AtomicUsize>);

impl Drop for GlobalPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long a client should wait after a refusal, rounded up to whole seconds (at least 1).
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0).max(u64::from(d.is_zero()))
}
