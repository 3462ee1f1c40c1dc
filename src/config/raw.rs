//! The config file as written: serde structs with defaults and `deny_unknown_fields`.
//! `validate.rs` turns them into the runtime types of `mod.rs`.

use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    /// Timeouts and retries for every route, unless the route overrides them.
    pub defaults: RawPolicy,
    pub breaker: RawBreaker,
    pub providers: IndexMap<String, RawProvider>,
    pub routes: IndexMap<String, RawRoute>,
    /// The cache policy of every route (`CachePolicy` fields), unless a route overrides fields.
    pub cache: toml::Table,
    /// Audit settings (`AccountingSettings`).
    pub accounting: super::AccountingSettings,
    /// Trace export.
    pub telemetry: RawTelemetry,
    /// Automatic routing (`auto_model`, confidence, the prompt log as teacher).
    pub routing: super::routing::RawRouting,
}

/// `[telemetry]`: OpenTelemetry trace export over OTLP/HTTP (JSON). Off unless `otlp_endpoint`
/// is set.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTelemetry {
    /// The collector's OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`; spans are POSTed to
    /// `{otlp_endpoint}/v1/traces` (a URL already ending in `/v1/traces` is used as it is).
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute (default `sluice`).
    pub service_name: Option<String>,
    /// Share of requests traced, 0 to 1 (default 1): decided once per request, so a trace is
    /// exported whole or not at all.
    pub sample_ratio: Option<f64>,
    /// Extra headers on export requests (values may use `${VAR}`), e.g. a collector's API key.
    pub otlp_headers: IndexMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub data_dir: Option<String>,
    pub models_dir: Option<String>,
    /// Seconds to let in-flight requests and streams finish after SIGTERM.
    pub shutdown_grace_secs: Option<u64>,
    /// Keys clients must send (`Authorization: Bearer ...` or `x-api-key`); `${VAR}` is
    /// replaced by the variable's value.
    pub api_keys: Option<RawApiKeys>,
    /// Longer prompts (bytes of text) are served uncached.
    pub max_cache_prompt_bytes: Option<usize>,
    pub header_read_timeout_ms: Option<u64>,
    pub body_read_timeout_ms: Option<u64>,
    pub keep_alive_timeout_ms: Option<u64>,
    pub write_timeout_ms: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_concurrent_requests: Option<usize>,
    /// `/metrics` open without an admin key when keys are on.
    pub public_metrics: bool,
    /// Allow listening beyond loopback without client keys.
    pub allow_open_listen: bool,
    /// Without keys: may `x-sluice-tier` force a tier (default true).
    pub tier_override: Option<bool>,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
}

/// A list of keys, or keys by caller name (the name the audit records for the key's requests),
/// each a key or a table with its policy (`config::keys`).
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawApiKeys {
    List(Vec<String>),
    Named(IndexMap<String, super::keys::RawKeyEntry>),
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct RawPolicy {
    pub connect_timeout_ms: Option<u64>,
    /// Until the response headers arrive (non-streaming: until the whole answer arrives).
    pub first_byte_timeout_ms: Option<u64>,
    /// Streaming: until the first content token arrives.
    pub first_token_timeout_ms: Option<u64>,
    /// Streaming: the longest silence allowed between two chunks.
    pub idle_timeout_ms: Option<u64>,
    /// The deadline for the whole request, all attempts and waits included.
    pub total_timeout_ms: Option<u64>,
    /// Retries of the same target after a retryable failure (so attempts = 1 + max_retries).
    pub max_retries: Option<u32>,
    pub backoff_base_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
    /// A 429's `Retry-After` longer than this moves on to the next target instead of waiting.
    pub max_retry_after_ms: Option<u64>,
    /// A stream that breaks after output: `continue` it at another target, or end it with an
    /// `error`.
    pub stream_resume: Option<String>,
    /// This many malformed or unknown stream events in a row fail an attempt; fewer are skipped.
    pub max_malformed_events: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawBreaker {
    pub failure_threshold: Option<u32>,
    /// The first open period; each failed probe doubles it, up to `max_cooldown_ms`.
    pub cooldown_ms: Option<u64>,
    pub max_cooldown_ms: Option<u64>,
    /// Retries of a target may be at most this share of its requests over 10 s ...
    pub retry_budget: Option<f64>,
    /// ... or this many, whichever is more.
    pub retry_budget_floor: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub kind: String,
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the API key.
    pub api_key_env: Option<String>,
    /// The key itself; `${VAR}` is replaced by the variable's value.
    pub api_key: Option<String>,
    /// Extra headers sent on every upstream request (values may use `${VAR}`).
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Without its API key, serve this provider from the built-in simulated provider instead of
    /// failing (the embedded default config uses this so `sluice serve` works offline).
    #[serde(default)]
    pub simulate_without_key: bool,
    /// Anthropic only: the `anthropic-version` header.
    pub api_version: Option<String>,
    /// The provider continues an assistant message that ends the conversation (a prefill):
    /// Anthropic does (the default for `kind = "anthropic"`); OpenAI does not, some
    /// OpenAI-compatible servers do.
    pub prefill: Option<bool>,
    #[serde(default)]
    pub models: IndexMap<String, RawModel>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default, deny_unknown_fields)]
pub struct RawModel {
    /// The model id sent upstream, when it differs from the name used in Sluice's config.
    pub upstream_model: Option<String>,
    /// USD per 1M input tokens.
    pub input_per_mtok: Option<f64>,
    /// USD per 1M output tokens.
    pub output_per_mtok: Option<f64>,
    /// USD per 1M input tokens read from the provider's prompt cache.
    pub cached_input_per_mtok: Option<f64>,
    /// USD per 1M input tokens written to the provider's prompt cache (5-minute lifetime).
    pub cache_write_per_mtok: Option<f64>,
    /// USD per 1M input tokens written to the prompt cache for one hour.
    pub cache_write_1h_per_mtok: Option<f64>,
    /// USD per 1M reasoning tokens, when the model bills them apart from other output.
    pub reasoning_per_mtok: Option<f64>,
    /// Context window in tokens.
    pub context_window: Option<u32>,
    /// Targets (`provider/model`) that take over when a client names this model and it fails.
    pub fallbacks: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRoute {
    pub description: Option<String>,
    /// How targets within a tier are ordered, unless the tier says otherwise.
    pub strategy: Option<String>,
    /// The tier used when no rule matches (default: the first tier).
    pub default_tier: Option<String>,
    /// Tiers in the order written, cheapest first by convention.
    pub tiers: IndexMap<String, RawTier>,
    /// First matching rule picks the tier.
    pub rules: Vec<RawRule>,
    /// Overrides of `[defaults]` for this route.
    pub policy: Option<RawPolicy>,
    /// Overrides of `[cache]` fields for this route.
    pub cache: Option<toml::Table>,
    /// What this route's traffic would cost without Sluice (savings are measured against it).
    pub reference_model: Option<String>,
    /// `gateway` (default) or `observe` (pass through untouched, cache nothing, only record).
    pub mode: Option<String>,
    /// Reference prompts of this use case (strings, or `{ prompt, tier }` with the cheapest
    /// adequate tier): auto routing recognises the route by them, and labelled ones train the
    /// difficulty score.
    pub examples: Vec<super::routing::RawExample>,
    /// `rules` or `difficulty` (default: difficulty when the trained model covers the route).
    pub tier_by: Option<String>,
    /// Per tier boundary, the probability of needing the higher tier at which it is chosen.
    pub difficulty_thresholds: Option<Vec<f64>>,
    /// An auto route: `auto = { candidates = [...], default_route = "..." }` (no tiers).
    pub auto: Option<super::routing::RawAuto>,
    /// The learned policy of `strategy = "learned"`.
    pub learned: Option<super::routing::RawLearned>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTier {
    /// `cheap = ["anthropic/claude-3-haiku", "openai/gpt-4o-mini"]`
    List(Vec<RawTarget>),
    /// `[routes.x.tiers.cheap] targets = [...]  strategy = "cheapest"`
    Table {
        targets: Vec<RawTarget>,
        #[serde(default)]
        strategy: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawTarget {
    /// `"provider/model"`
    Short(String),
    Long {
        provider: String,
        model: String,
        #[serde(default)]
        weight: Option<u32>,
    },
}

/// Every condition that is set must hold (AND); a rule with none always matches.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRule {
    pub tier: String,
    pub min_prompt_tokens: Option<u32>,
    pub max_prompt_tokens: Option<u32>,
    pub has_tools: Option<bool>,
    /// Matched against the text of all messages.
    pub regex: Option<String>,
    /// Any of these words (case-insensitive) in the messages.
    pub keywords: Vec<String>,
    /// Request `metadata` entries that must equal these values.
    pub metadata: IndexMap<String, String>,
}
