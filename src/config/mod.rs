//! Configuration: `raw` (the TOML as written) -> `validate` -> the runtime types below.
//!
//! Precedence: the embedded default (`default.toml`) when no file is given, else the file;
//! `${VAR}` in secrets, base URLs and headers is replaced from the environment; CLI flags
//! (`--listen`, `--data-dir`) override last.

mod accounting;
pub mod cache;
pub mod keys;
mod raw;
pub mod routing;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use raw::RawConfig;

pub use accounting::{AccountingSettings, Mode, RouteAccounting, DEFAULT_RETENTION_DAYS};
pub use cache::{CachePolicy, CacheScope, Verify, DEFAULT_SIMILARITY_THRESHOLD};
pub use keys::{key_digest, KeyPolicy, KeyRole};
pub use routing::{AutoId, AutoRoute, Example, LearnedPolicy, RouteRouting, RoutingConfig, TierBy};

/// The embedded default config: OpenAI and Anthropic when their keys are set, otherwise the
/// built-in simulated providers, so `sluice serve` works offline out of the box.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: invalid config:\n  {}", .problems.join("\n  "))]
    Invalid {
        origin: String,
        problems: Vec<String>,
    },
}

#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub defaults: Policy,
    pub breaker: BreakerConfig,
    pub providers: Vec<ProviderConfig>,
    /// Every provider/model pair the config names; `TargetId` indexes this.
    pub targets: Vec<TargetConfig>,
    pub routes: Vec<RouteConfig>,
    /// Cache policy of pass-through requests (and the base of every route's).
    pub cache: CachePolicy,
    pub accounting: AccountingSettings,
    /// Accounting of pass-through requests.
    pub passthrough_accounting: RouteAccounting,
    pub telemetry: TelemetryConfig,
    /// Auto routes and how they learn.
    pub routing: RoutingConfig,
}

impl Config {
    /// Route accounting settings, indexed like `routes`.
    pub fn route_accounting(&self) -> Vec<RouteAccounting> {
        self.routes.iter().map(|r| r.accounting.clone()).collect()
    }

    /// Load `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Self::parse(DEFAULT_CONFIG, "embedded default config"),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                Self::parse(&text, &p.display().to_string())
            }
        }
    }

    /// Parse and validate config text; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        validate::validate(raw, &|k| std::env::var(k).ok()).map_err(|problems| {
            ConfigError::Invalid {
                origin: origin.to_owned(),
                problems,
            }
        })
    }

    pub fn route(&self, name: &str) -> Option<RouteId> {
        self.routes.iter().position(|r| r.name == name).map(RouteId)
    }

    /// The auto route of that name (`[routing] auto_model`, or a route with `auto = {...}`).
    pub fn auto_route(&self, name: &str) -> Option<AutoId> {
        self.routing
            .autos
            .iter()
            .position(|a| a.name == name)
            .map(AutoId)
    }

    pub fn auto(&self, id: AutoId) -> &AutoRoute {
        &self.routing.autos[id.0]
    }

    /// Targets serving a plain model name (pass-through), in config order.
    pub fn targets_for_model<'a>(&'a self, model: &'a str) -> impl Iterator<Item = TargetId> + 'a {
        self.targets
            .iter()
            .enumerate()
            .filter(move |(_, t)| t.model == model || t.name == model)
            .map(|(i, _)| TargetId(i))
    }

    /// A pass-through plan's targets: those serving the model, then their fallbacks (each
    /// target once).
    pub fn passthrough_targets(&self, model: &str) -> Vec<TargetId> {
        let mut out: Vec<TargetId> = self.targets_for_model(model).collect();
        for i in 0..out.len() {
            for f in &self.targets[out[i].0].fallbacks {
                if !out.contains(f) {
                    out.push(*f);
                }
            }
        }
        out
    }

    pub fn target(&self, id: TargetId) -> &TargetConfig {
        &self.targets[id.0]
    }

    pub fn provider(&self, id: ProviderId) -> &ProviderConfig {
        &self.providers[id.0]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(pub usize);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId(pub usize);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(pub usize);

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub data_dir: PathBuf,
    pub models_dir: PathBuf,
    pub shutdown_grace: Duration,
    /// Keys clients must present; empty: no authentication (unless keys were created in the
    /// store with `sluice keys create`).
    pub api_keys: ApiKeys,
    /// Prompts with more text than this are served uncached: their text is never analysed.
    pub max_cache_prompt_bytes: usize,
    pub limits: ServerLimits,
    /// `/metrics` without an admin key even when keys are on.
    pub public_metrics: bool,
    /// Listen beyond loopback without any client key (refused otherwise).
    pub allow_open_listen: bool,
    /// Without keys, `x-sluice-tier` may force a tier (with keys, each key's `tiers` say).
    pub tier_override: bool,
    /// Host names (besides loopback ones) a loopback listener answers to.
    pub allowed_hosts: Vec<String>,
    /// Origins (`https://app.example.com`) whose browser requests are let through.
    pub allowed_origins: Vec<String>,
}

/// Time and count limits of the HTTP server (`[server]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerLimits {
    /// A request's headers must arrive within this (slow-loris connections are closed).
    pub header_read_timeout: Duration,
    /// A request's body must arrive within this (else 408).
    pub body_read_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub keep_alive_timeout: Duration,
    /// A client that takes no bytes of its response for this long (a stream it stopped reading)
    /// is disconnected, which releases the upstream call.
    pub write_timeout: Duration,
    /// Open connections; more are answered 503 and closed.
    pub max_connections: usize,
    /// Requests in flight; more get 503 with `Retry-After`.
    pub max_concurrent_requests: usize,
}

/// One configured client key: its digest (never the key), caller name and policy.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySpec {
    pub digest: [u8; 32],
    pub name: std::sync::Arc<str>,
    pub policy: std::sync::Arc<KeyPolicy>,
}

/// The gateway's client keys from the config, kept only as SHA-256 digests (a presented key is
/// hashed and the digests compared), each with the caller name the audit records for its
/// requests and its policy. Cheap to clone.
#[derive(Clone, Default, PartialEq)]
pub struct ApiKeys(std::sync::Arc<[KeySpec]>);

impl ApiKeys {
    /// `(name, key)` pairs of client keys without limits; a key without a name is named `key-`
    /// and the first 8 hex digits of its digest (stable, and says nothing usable about the key).
    pub fn new<'a>(keys: impl IntoIterator<Item = (Option<&'a str>, &'a str)>) -> ApiKeys {
        Self::from_specs(
            keys.into_iter()
                .map(|(name, key)| KeySpec::new(name, key_digest(key), KeyPolicy::default()))
                .collect(),
        )
    }

    pub fn from_specs(specs: Vec<KeySpec>) -> ApiKeys {
        ApiKeys(specs.into())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn specs(&self) -> &[KeySpec] {
        &self.0
    }

    /// The caller name of `key`, when it is one of the keys.
    pub fn caller(&self, key: &str) -> Option<&std::sync::Arc<str>> {
        let d = key_digest(key);
        self.0.iter().find(|k| k.digest == d).map(|k| &k.name)
    }
}

impl KeySpec {
    /// A key named `name`, or `key-<8 hex digits of its digest>`.
    pub fn new(name: Option<&str>, digest: [u8; 32], policy: KeyPolicy) -> KeySpec {
        let name = match name {
            Some(n) => n.to_owned(),
            None => format!("key-{}", hex::encode(&digest[..4])),
        };
        KeySpec {
            digest,
            name: name.into(),
            policy: std::sync::Arc::new(policy),
        }
    }
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.0.len())
    }
}

/// Timeouts and retry budget of a route.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub first_token_timeout: Duration,
    pub idle_timeout: Duration,
    pub total_timeout: Duration,
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub max_retry_after: Duration,
    pub stream_resume: StreamResume,
    /// A run of this many malformed stream events fails an attempt (at least 1).
    pub max_malformed_events: u32,
}

/// What a stream that breaks after output does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamResume {
    /// Continue the answer at another target and splice it into the same stream.
    Continue,
    /// End the stream with an in-band error (no `[DONE]`).
    Error,
}

/// `[telemetry]`.
#[derive(Debug, Clone, Default)]
pub struct TelemetryConfig {
    /// Trace export; `None` when `otlp_endpoint` is unset.
    pub otlp: Option<OtlpConfig>,
}

/// Where and how spans are exported (OTLP/HTTP with JSON bodies).
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The full traces URL: `{otlp_endpoint}/v1/traces`.
    pub traces_url: String,
    pub service_name: String,
    /// 0..=1; 1 traces every request.
    pub sample_ratio: f64,
    pub headers: Vec<(String, Secret)>,
}

#[derive(Debug, Clone)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    /// The first open period; it doubles with each failed probe, up to `max_cooldown`.
    pub cooldown: Duration,
    pub max_cooldown: Duration,
    /// Retries at most this share of a target's requests over `retry_window` ...
    pub retry_budget: f64,
    /// ... or this many.
    pub retry_budget_floor: u32,
    pub retry_window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Any OpenAI-compatible `/chat/completions` API.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

/// A request header that steers the built-in simulated provider (`x-mock-fault`, see the mock's
/// fault tokens): the gateway forwards it to simulated providers and to no other, so a client
/// of a demo or test gateway can make it fail on purpose.
pub const SIM_FAULT_HEADER: &str = "x-mock-fault";

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Base URL including the version prefix for OpenAI (`https://api.openai.com/v1`);
    /// for Anthropic without it (`https://api.anthropic.com`).
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub headers: Vec<(String, Secret)>,
    pub api_version: String,
    /// Served by the built-in simulated provider (no key was set); `base_url` is filled in
    /// when the in-process mock starts.
    pub simulated: bool,
    /// It continues a trailing assistant message (a prefill).
    pub prefill: bool,
}

/// A price as one source gives it, USD per 1M tokens; a field it does not give is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Price {
    pub input_per_mtok: Option<f64>,
    pub output_per_mtok: Option<f64>,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_input_per_mtok: Option<f64>,
    /// Prompt tokens written to the provider's prompt cache (Anthropic: 5-minute lifetime).
    pub cache_write_per_mtok: Option<f64>,
    /// Prompt tokens written to the prompt cache for one hour (Anthropic).
    pub cache_write_1h_per_mtok: Option<f64>,
    /// Reasoning tokens, for models that bill them apart from other output.
    pub reasoning_per_mtok: Option<f64>,
}

impl Price {
    /// Field names as written in the config, in the order of [`Price::fields`].
    pub const FIELDS: [&'static str; 6] = [
        "input_per_mtok",
        "output_per_mtok",
        "cached_input_per_mtok",
        "cache_write_per_mtok",
        "cache_write_1h_per_mtok",
        "reasoning_per_mtok",
    ];

    pub fn fields(&self) -> [Option<f64>; 6] {
        [
            self.input_per_mtok,
            self.output_per_mtok,
            self.cached_input_per_mtok,
            self.cache_write_per_mtok,
            self.cache_write_1h_per_mtok,
            self.reasoning_per_mtok,
        ]
    }

    /// Each field of `self`, else of `base`.
    pub fn or(self, base: Price) -> Price {
        Price {
            input_per_mtok: self.input_per_mtok.or(base.input_per_mtok),
            output_per_mtok: self.output_per_mtok.or(base.output_per_mtok),
            cached_input_per_mtok: self.cached_input_per_mtok.or(base.cached_input_per_mtok),
            cache_write_per_mtok: self.cache_write_per_mtok.or(base.cache_write_per_mtok),
            cache_write_1h_per_mtok: self
                .cache_write_1h_per_mtok
                .or(base.cache_write_1h_per_mtok),
            reasoning_per_mtok: self.reasoning_per_mtok.or(base.reasoning_per_mtok),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub provider: ProviderId,
    /// `provider/model`, the name used in headers, logs and metrics.
    pub name: String,
    /// The model name used in Sluice's config and by clients.
    pub model: String,
    /// The model id sent upstream.
    pub upstream_model: String,
    pub price: Price,
    pub context_window: Option<u32>,
    /// Tried after this target when a client names its model (pass-through), in order.
    pub fallbacks: Vec<TargetId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// As written in the config.
    Ordered,
    /// Lowest price (input + output per 1M) first.
    Cheapest,
    /// Lowest observed latency (EWMA) first; unmeasured targets first, to measure them.
    LowestLatency,
    /// Random, proportional to each target's weight.
    Weighted,
}

/// What `strategy = "learned"` on a route means for its tiers: the tier is learned (the
/// route's `learned` policy), and each tier's targets keep their own order.
pub const LEARNED_STRATEGY: &str = "learned";

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    pub description: Option<String>,
    pub tiers: Vec<TierConfig>,
    pub default_tier: usize,
    pub rules: Vec<Rule>,
    pub policy: Policy,
    pub cache: CachePolicy,
    pub accounting: RouteAccounting,
    /// Examples, tier choice by difficulty, learned policy.
    pub routing: RouteRouting,
}

#[derive(Debug, Clone)]
pub struct TierConfig {
    pub name: String,
    pub strategy: Strategy,
    /// Targets with their weights (1 unless set).
    pub targets: Vec<(TargetId, u32)>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub tier: usize,
    pub min_prompt_tokens: Option<u32>,
    pub max_prompt_tokens: Option<u32>,
    pub has_tools: Option<bool>,
    pub regex: Option<regex::Regex>,
    /// Lower-cased.
    pub keywords: Vec<String>,
    pub metadata: Vec<(String, String)>,
}

/// A secret from config or the environment; prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
