//! Client keys (virtual keys): `[server] api_keys` in the config, or created with `sluice keys
//! create` into the store. Each key has a name (the caller: audit, report, cache scope), a role,
//! what it may use, budgets and rate limits.
//!
//! ```toml
//! [server.api_keys]
//! search = "${SEARCH_KEY}"                 # a client key with no limits
//! [server.api_keys.ops]
//! key = "${OPS_KEY}"                       # or key_sha256 = "<hex digest of the key>"
//! role = "admin"                           # client (default) or admin
//! routes = ["chat", "summarize"]           # routes it may use (default: all)
//! models = ["gpt-4o-mini"]                 # models it may name directly (default: all)
//! tiers = ["premium"]                      # tiers it may force with x-sluice-tier (default: none)
//! budget_usd_per_day = 5.0
//! budget_usd_per_month = 100.0
//! requests_per_minute = 600
//! tokens_per_minute = 200000
//! max_concurrent = 16
//! ```

use serde::{Deserialize, Serialize};

/// What a key may do. Stored in the store for `sluice keys create` keys (bincode: append fields
/// only with a new store format).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyPolicy {
    pub role: KeyRole,
    /// Routes the key may use; `None`: all.
    pub routes: Option<Vec<String>>,
    /// Model names it may call directly (pass-through and embeddings); `None`: all.
    pub models: Option<Vec<String>>,
    /// Tiers it may force with `x-sluice-tier` (`"*"`: any); admin keys may force any.
    pub tiers: Vec<String>,
    pub budget_usd_per_day: Option<f64>,
    pub budget_usd_per_month: Option<f64>,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    /// Requests of this key in flight at once.
    pub max_concurrent: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    /// Calls the API.
    #[default]
    Client,
    /// Also `/admin/*` (every scope of the cache, keys) and `/metrics`.
    Admin,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Client => "client",
            KeyRole::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<KeyRole> {
        match s {
            "client" => Some(KeyRole::Client),
            "admin" => Some(KeyRole::Admin),
            _ => None,
        }
    }
}

impl KeyPolicy {
    pub fn is_admin(&self) -> bool {
        self.role == KeyRole::Admin
    }

    /// May this key force `tier` with `x-sluice-tier`?
    pub fn may_force_tier(&self, tier: &str) -> bool {
        self.is_admin() || self.tiers.iter().any(|t| t == "*" || t == tier)
    }

    pub fn may_use_route(&self, route: &str) -> bool {
        self.routes
            .as_ref()
            .is_none_or(|r| r.iter().any(|x| x == "*" || x == route))
    }

    pub fn may_use_model(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x == "*" || x == model))
    }

    /// Problems with the numbers, each naming its field under `path`.
    pub fn problems(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (name, v) in [
            ("budget_usd_per_day", self.budget_usd_per_day),
            ("budget_usd_per_month", self.budget_usd_per_month),
        ] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                out.push(format!("{path}.{name}: must be a number of USD >= 0"));
            }
        }
        for (name, v) in [
            ("requests_per_minute", self.requests_per_minute),
            ("tokens_per_minute", self.tokens_per_minute),
            ("max_concurrent", self.max_concurrent),
        ] {
            if v == Some(0) {
                out.push(format!(
                    "{path}.{name}: 0 would refuse every request (leave it out for no limit)"
                ));
            }
        }
        out
    }
}

/// A key entry as written: the key itself (a string), or a table with the key and its policy.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawKeyEntry {
    Key(String),
    Table(RawKeyTable),
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RawKeyTable {
    /// The key (`${VAR}` is replaced from the environment).
    pub key: Option<String>,
    /// Or its SHA-256 digest in hex, so the config never holds the key.
    pub key_sha256: Option<String>,
    pub role: Option<String>,
    pub routes: Option<Vec<String>>,
    pub models: Option<Vec<String>>,
    pub tiers: Vec<String>,
    pub budget_usd_per_day: Option<f64>,
    pub budget_usd_per_month: Option<f64>,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    pub max_concurrent: Option<u32>,
}

impl RawKeyTable {
    /// The policy part, or a problem naming the role.
    pub fn policy(&self, path: &str) -> Result<KeyPolicy, String> {
        let role = match self.role.as_deref() {
            None => KeyRole::Client,
            Some(r) => KeyRole::parse(r)
                .ok_or_else(|| format!("{path}.role: \"{r}\" is not a role (client or admin)"))?,
        };
        Ok(KeyPolicy {
            role,
            routes: self.routes.clone(),
            models: self.models.clone(),
            tiers: self.tiers.clone(),
            budget_usd_per_day: self.budget_usd_per_day,
            budget_usd_per_month: self.budget_usd_per_month,
            requests_per_minute: self.requests_per_minute,
            tokens_per_minute: self.tokens_per_minute,
            max_concurrent: self.max_concurrent,
        })
    }
}

/// The SHA-256 digest of a key, as kept in memory and in the store.
pub fn key_digest(key: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).into()
}

/// Parses a hex digest (64 hex digits).
pub fn parse_digest(hex_text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_text.trim()).ok()?;
    bytes.try_into().ok()
}
