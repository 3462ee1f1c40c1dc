//! What the cache may do for one route: the `cache` section of a route's configuration.

use serde::{Deserialize, Serialize};

use crate::chat::ChatResponse;

/// Allowed error rate of learned hits (gray-zone candidates served because verified
/// observations of their kind bound the error below it).
pub const DEFAULT_MAX_ERROR: f64 = 0.01;
/// Judge calls per minute per route, at most.
pub const DEFAULT_JUDGE_PER_MINUTE: u32 = 30;

/// Whose entries a request may be served from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheScope {
    /// The client key's caller (`[server] api_keys`); without client keys every request is the
    /// same anonymous caller.
    #[default]
    Caller,
    /// The request's end user: its `user` field, or `metadata.<user_key>`. A request that names
    /// no user is not cached.
    User,
    /// Every caller of the route shares entries (explicit opt-in).
    Shared,
}

/// How gray-zone candidates (close, but not close enough, or refused only for different content
/// words) are verified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verify {
    /// Not at all: gray-zone candidates are plain misses.
    Off,
    /// The fresh answer is compared with the cached one (short answers: labels, numbers).
    #[default]
    Agreement,
    /// Agreement, and for longer answers a configured judge target is asked, off the
    /// response path.
    Judge,
}

/// Default cosine similarity a semantic hit needs, on top of the structural guards.
///
/// Measured on the labelled pairs of `tests/it/cache.rs` (`threshold_evidence`; 96 development
/// pairs and 55 held-out pairs across domains): the vector alone never gets above precision 0.70
/// (development) / 0.86 (held-out) at any threshold, because near-misses score as high as
/// paraphrases. With the guards, precision is 1.0 on both sets from 0.70 to 0.95, and recall is
/// flat from 0.70 to 0.80 (0.67 / 0.76), then falls (0.64 / 0.76 at 0.85, 0.45 / 0.64 at 0.95).
/// 0.80 is the highest threshold that keeps all of that recall; the margin above 0.70 protects
/// short texts where the guards have little to compare (few or no content words).
pub const DEFAULT_SIMILARITY_THRESHOLD: f32 = 0.80;
/// One week, as Helicone's and Portkey's caches default to.
pub const DEFAULT_TTL_SECS: u64 = 7 * 24 * 3600;
/// Requests sampled hotter than this are not cached (an omitted temperature counts as 1.0,
/// OpenAI's default).
pub const DEFAULT_MAX_TEMPERATURE: f64 = 1.0;
pub const DEFAULT_MAX_ENTRIES: u64 = 20_000;
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Temperature assumed when a request omits it (OpenAI's documented default).
const PROVIDER_DEFAULT_TEMPERATURE: f64 = 1.0;

/// Cache policy of one route. Limits apply per route: the route's oldest, least recently used
/// entries are evicted when it holds more than `max_entries` entries or `max_bytes` bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CachePolicy {
    pub enabled: bool,
    /// Minimum cosine similarity of a semantic hit (exact repeats need none). 1.0 turns the
    /// semantic path off and leaves exact (normalised) matching.
    pub similarity_threshold: f32,
    pub ttl_secs: u64,
    pub max_temperature: f64,
    /// Cache requests with earlier turns. Their whole history is part of the namespace, so only the
    /// last user turn is ever matched loosely.
    pub cache_multi_turn: bool,
    pub max_entries: u64,
    pub max_bytes: u64,
    /// Also store answers cut off by `max_tokens` (`finish_reason: "length"`).
    pub cache_length_cutoffs: bool,
    /// Whose entries serve a request (see [`CacheScope`]).
    pub scope: CacheScope,
    /// With `scope = "user"`: the `metadata` key naming the user (default: the `user` field).
    pub user_key: Option<String>,
    pub verify: Verify,
    /// Allowed error rate of learned hits; 0 never serves an unverified gray-zone candidate.
    pub max_error: f64,
    /// With `verify = "judge"`: the `provider/model` target asked whether a cached answer
    /// serves a new prompt.
    pub judge: Option<String>,
    pub judge_per_minute: u32,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            enabled: true,
            similarity_threshold: DEFAULT_SIMILARITY_THRESHOLD,
            ttl_secs: DEFAULT_TTL_SECS,
            max_temperature: DEFAULT_MAX_TEMPERATURE,
            cache_multi_turn: true,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
            cache_length_cutoffs: false,
            scope: CacheScope::default(),
            user_key: None,
            verify: Verify::default(),
            max_error: DEFAULT_MAX_ERROR,
            judge: None,
            judge_per_minute: DEFAULT_JUDGE_PER_MINUTE,
        }
    }
}

impl CachePolicy {
    /// Problems with this policy, each naming its field (`prefix` is the config path).
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.similarity_threshold) {
            return Err(format!(
                "{prefix}.similarity_threshold: {} is outside 0.0..=1.0",
                self.similarity_threshold
            ));
        }
        if !(0.0..=2.0).contains(&self.max_temperature) {
            return Err(format!(
                "{prefix}.max_temperature: {} is outside 0.0..=2.0",
                self.max_temperature
            ));
        }
        if self.max_entries == 0 || self.max_bytes == 0 {
            return Err(format!(
                "{prefix}: max_entries and max_bytes must be positive"
            ));
        }
        if !(0.0..=0.5).contains(&self.max_error) {
            return Err(format!(
                "{prefix}.max_error: {} is outside 0.0..=0.5",
                self.max_error
            ));
        }
        if self.verify == Verify::Judge && self.judge.is_none() {
            return Err(format!(
                "{prefix}.judge: verify = \"judge\" needs a judge target (\"provider/model\")"
            ));
        }
        if self.user_key.is_some() && self.scope != CacheScope::User {
            return Err(format!(
                "{prefix}.user_key: only used with scope = \"user\""
            ));
        }
        Ok(())
    }

    /// The error bound of learned hits: 0 when verification is off.
    pub fn learned_max_error(&self) -> f64 {
        match self.verify {
            Verify::Off => 0.0,
            Verify::Agreement | Verify::Judge => self.max_error,
        }
    }

    /// Whether a request sampled at `temperature` (None = provider default) may use the cache.
    pub fn allows_temperature(&self, temperature: Option<f64>) -> bool {
        temperature.unwrap_or(PROVIDER_DEFAULT_TEMPERATURE) <= self.max_temperature
    }

    /// Whether `response` is complete enough to store.
    pub fn allows_response(&self, response: &ChatResponse) -> bool {
        if response.is_complete() {
            return true;
        }
        self.cache_length_cutoffs
            && !response.choices.is_empty()
            && response.choices.iter().all(|c| {
                matches!(
                    c.finish_reason.as_deref(),
                    Some("stop") | Some("tool_calls") | Some("length")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_missing_fields_and_unknown_fields_are_refused() {
        let p: CachePolicy = toml::from_str("ttl_secs = 60").unwrap();
        assert_eq!(p.ttl_secs, 60);
        assert_eq!(p.similarity_threshold, DEFAULT_SIMILARITY_THRESHOLD);
        assert!(toml::from_str::<CachePolicy>("ttl = 60").is_err());
        assert!(p.validate("routes.x.cache").is_ok());
        let bad = CachePolicy {
            similarity_threshold: 1.5,
            ..CachePolicy::default()
        };
        assert!(bad
            .validate("routes.x.cache")
            .unwrap_err()
            .contains("routes.x.cache.similarity_threshold"));
    }

    #[test]
    fn omitted_temperature_counts_as_provider_default() {
        let p = CachePolicy {
            max_temperature: 0.5,
            ..CachePolicy::default()
        };
        assert!(p.allows_temperature(Some(0.0)));
        assert!(!p.allows_temperature(None));
        assert!(CachePolicy::default().allows_temperature(None));
    }
}
