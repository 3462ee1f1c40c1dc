//! Raw config -> runtime config. Every problem is collected (not just the first) and names its
//! path in the file, e.g. `routes.summarize.tiers.cheap[1]: unknown provider "opnai"`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::{
    RawApiKeys, RawConfig, RawModel, RawPolicy, RawProvider, RawRoute, RawRule, RawTarget,
    RawTelemetry, RawTier,
};
use super::routing;
use super::*;

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";
const DEFAULT_SERVICE_NAME: &str = "sluice";
const OTLP_TRACES_PATH: &str = "/v1/traces";

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(super) fn validate(raw: RawConfig, env: Env) -> Result<Config, Vec<String>> {
    let mut v = Validator {
        problems: Vec::new(),
        env,
    };
    let server = v.server(&raw.server);
    let defaults = v.policy("defaults", &raw.defaults, &builtin_policy());
    let breaker = v.breaker(&raw.breaker);

    let mut providers = Vec::new();
    let mut targets = Vec::new();
    let mut target_index: HashMap<(usize, String), TargetId> = HashMap::new();
    for (name, p) in &raw.providers {
        let id = ProviderId(providers.len());
        let Some(provider) = v.provider(name, p) else {
            continue;
        };
        providers.push(provider);
        for (model, m) in &p.models {
            target_index.insert((id.0, model.clone()), TargetId(targets.len()));
            targets.push(TargetConfig {
                provider: id,
                name: format!("{name}/{model}"),
                model: model.clone(),
                upstream_model: m.upstream_model.clone().unwrap_or_else(|| model.clone()),
                price: price(m),
                context_window: m.context_window,
                fallbacks: Vec::new(),
            });
        }
    }
    v.fallbacks(&raw.providers, &providers, &target_index, &mut targets);

    let telemetry = v.telemetry(&raw.telemetry);
    let cache = v.cache_policy("cache", &raw.cache, None);
    let mut routes = Vec::new();
    for (name, r) in &raw.routes {
        if routing::is_auto(r) {
            continue; // an auto route has no tiers: see `routing::routing`
        }
        if let Some(mut route) = v.route(name, r, &defaults, &providers, &target_index) {
            route.cache = v.cache_policy(
                &format!("routes.{name}.cache"),
                &raw.cache,
                r.cache.as_ref(),
            );
            route.accounting = RouteAccounting {
                reference_model: r.reference_model.clone(),
                mode: v.mode(
                    &format!("routes.{name}.mode"),
                    r.mode.as_deref(),
                    raw.accounting.mode,
                ),
            };
            let learned = r.strategy.as_deref() == Some(LEARNED_STRATEGY);
            route.routing = routing::route_routing(
                &format!("routes.{name}"),
                r,
                &route,
                learned,
                &mut v.problems,
            );
            routes.push(route);
        }
    }
    let per_route: Vec<RouteRouting> = routes.iter().map(|r| r.routing.clone()).collect();
    let routing = routing::routing(
        &raw,
        &routes,
        &per_route,
        &|name| targets.iter().any(|t| t.model == name || t.name == name),
        &mut v.problems,
    );
    // A judge must be a configured target.
    let policies = std::iter::once(("cache".to_owned(), &cache)).chain(
        routes
            .iter()
            .map(|r| (format!("routes.{}.cache", r.name), &r.cache)),
    );
    for (path, p) in policies {
        if let Some(j) = &p.judge {
            if !targets.iter().any(|t| t.name == *j) {
                v.problem(format!(
                    "{path}.judge: \"{j}\" is not a configured target (\"provider/model\")"
                ));
            }
        }
    }
    if v.problems.is_empty() {
        Ok(Config {
            server,
            defaults,
            breaker,
            providers,
            targets,
            routes,
            cache,
            passthrough_accounting: RouteAccounting {
                reference_model: None,
                mode: raw.accounting.mode,
            },
            accounting: raw.accounting,
            telemetry,
            routing,
        })
    } else {
        Err(v.problems)
    }
}

fn price(m: &RawModel) -> Price {
    Price {
        input_per_mtok: m.input_per_mtok,
        output_per_mtok: m.output_per_mtok,
        cached_input_per_mtok: m.cached_input_per_mtok,
        cache_write_per_mtok: m.cache_write_per_mtok,
        cache_write_1h_per_mtok: m.cache_write_1h_per_mtok,
        reasoning_per_mtok: m.reasoning_per_mtok,
    }
}

fn builtin_policy() -> Policy {
    Policy {
        connect_timeout: Duration::from_millis(5_000),
        first_byte_timeout: Duration::from_millis(60_000),
        first_token_timeout: Duration::from_millis(30_000),
        idle_timeout: Duration::from_millis(30_000),
        total_timeout: Duration::from_millis(300_000),
        max_retries: 2,
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(2_000),
        max_retry_after: Duration::from_millis(10_000),
        stream_resume: StreamResume::Continue,
        max_malformed_events: 3,
    }
}

/// Retry budgets count over this window.
const RETRY_WINDOW: Duration = Duration::from_secs(10);

struct Validator<'a> {
    problems: Vec<String>,
    env: Env<'a>,
}

impl Validator<'_> {
    fn problem(&mut self, p: String) {
        self.problems.push(p);
    }

    fn server(&mut self, s: &super::raw::RawServer) -> ServerConfig {
        let listen_text = s.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            self.problem(format!(
                "server.listen: \"{listen_text}\" is not an address like 127.0.0.1:8080"
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let keys = self.api_keys(s.api_keys.as_ref());
        let ms = |v: Option<u64>, d: u64| Duration::from_millis(v.unwrap_or(d).max(1));
        let limits = ServerLimits {
            header_read_timeout: ms(s.header_read_timeout_ms, 10_000),
            body_read_timeout: ms(s.body_read_timeout_ms, 30_000),
            keep_alive_timeout: ms(s.keep_alive_timeout_ms, 60_000),
            write_timeout: ms(s.write_timeout_ms, 30_000),
            max_connections: s.max_connections.unwrap_or(1024),
            max_concurrent_requests: s.max_concurrent_requests.unwrap_or(512),
        };
        for (name, v) in [
            ("max_connections", limits.max_connections),
            ("max_concurrent_requests", limits.max_concurrent_requests),
        ] {
            if v == 0 {
                self.problem(format!("server.{name}: 0 would refuse every request"));
            }
        }
        ServerConfig {
            listen,
            max_body_bytes: s.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            data_dir: PathBuf::from(s.data_dir.as_deref().unwrap_or("./data")),
            models_dir: PathBuf::from(s.models_dir.as_deref().unwrap_or("./models")),
            shutdown_grace: Duration::from_secs(s.shutdown_grace_secs.unwrap_or(30)),
            api_keys: keys,
            max_cache_prompt_bytes: s.max_cache_prompt_bytes.unwrap_or(4 * 1024 * 1024),
            limits,
            public_metrics: s.public_metrics,
            allow_open_listen: s.allow_open_listen,
            tier_override: s.tier_override.unwrap_or(true),
            allowed_hosts: s
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            allowed_origins: s
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// `[server] api_keys`: a list of keys, or keys by name (each a key, or a table with the
    /// key or its digest and a policy).
    fn api_keys(&mut self, raw: Option<&RawApiKeys>) -> ApiKeys {
        use super::keys::{parse_digest, RawKeyEntry, RawKeyTable};
        let mut specs: Vec<KeySpec> = Vec::new();
        let entries: Vec<(String, Option<&String>, RawKeyTable)> = match raw {
            None => Vec::new(),
            Some(RawApiKeys::List(list)) => list
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let t = RawKeyTable {
                        key: Some(k.clone()),
                        ..RawKeyTable::default()
                    };
                    (format!("server.api_keys[{i}]"), None, t)
                })
                .collect(),
            Some(RawApiKeys::Named(named)) => named
                .iter()
                .map(|(n, e)| {
                    let t = match e {
                        RawKeyEntry::Key(k) => RawKeyTable {
                            key: Some(k.clone()),
                            ..RawKeyTable::default()
                        },
                        RawKeyEntry::Table(t) => t.clone(),
                    };
                    (format!("server.api_keys.{n}"), Some(n), t)
                })
                .collect(),
        };
        for (path, name, t) in entries {
            let policy = match t.policy(&path) {
                Ok(p) => p,
                Err(problem) => {
                    self.problem(problem);
                    continue;
                }
            };
            for p in policy.problems(&path) {
                self.problem(p);
            }
            let digest = match (&t.key, &t.key_sha256) {
                (Some(_), Some(_)) => {
                    self.problem(format!("{path}: give `key` or `key_sha256`, not both"));
                    continue;
                }
                (None, None) => {
                    self.problem(format!("{path}: no `key` (or `key_sha256`)"));
                    continue;
                }
                (None, Some(hex)) => match parse_digest(hex) {
                    Some(d) => d,
                    None => {
                        self.problem(format!(
                            "{path}.key_sha256: not a SHA-256 digest (64 hex digits)"
                        ));
                        continue;
                    }
                },
                (Some(k), None) => match self.interpolate(&path, k) {
                    Some(k) if !k.trim().is_empty() => key_digest(k.trim()),
                    Some(_) => {
                        self.problem(format!("{path}: empty key"));
                        continue;
                    }
                    // An unreadable key must not leave the gateway open.
                    None => {
                        self.problem(format!(
                            "{path}: names an environment variable that is not set"
                        ));
                        continue;
                    }
                },
            };
            if specs.iter().any(|s| s.digest == digest) {
                self.problem(format!("{path}: the same key is listed twice"));
                continue;
            }
            specs.push(KeySpec::new(name.map(String::as_str), digest, policy));
        }
        ApiKeys::from_specs(specs)
    }

    fn breaker(&mut self, b: &super::raw::RawBreaker) -> BreakerConfig {
        let ms = |v: Option<u64>, d: u64| Duration::from_millis(v.unwrap_or(d));
        let cooldown = ms(b.cooldown_ms, 2_000);
        let max_cooldown = ms(b.max_cooldown_ms, 30_000).max(cooldown);
        let retry_budget = b.retry_budget.unwrap_or(0.2);
        if !(0.0..=10.0).contains(&retry_budget) {
            self.problem(format!(
                "breaker.retry_budget: {retry_budget} must be between 0 and 10 (a share of requests)"
            ));
        }
        BreakerConfig {
            failure_threshold: b.failure_threshold.unwrap_or(5).max(1),
            cooldown,
            max_cooldown,
            retry_budget,
            retry_budget_floor: b.retry_budget_floor.unwrap_or(10),
            retry_window: RETRY_WINDOW,
        }
    }

    /// Resolves each model's `fallbacks` (a second pass: they may name any target).
    fn fallbacks(
        &mut self,
        raw: &indexmap::IndexMap<String, RawProvider>,
        providers: &[ProviderConfig],
        index: &HashMap<(usize, String), TargetId>,
        targets: &mut [TargetConfig],
    ) {
        for (pname, p) in raw {
            let Some(pid) = providers.iter().position(|x| x.name == *pname) else {
                continue;
            };
            for (model, m) in &p.models {
                let Some(&me) = index.get(&(pid, model.clone())) else {
                    continue;
                };
                for (i, f) in m.fallbacks.iter().enumerate() {
                    let path = format!("providers.{pname}.models.{model}.fallbacks[{i}]");
                    match self.target_ref(&path, f, providers, index) {
                        Some(t) if t == me => {
                            self.problem(format!("{path}: a model cannot be its own fallback"))
                        }
                        Some(t) => targets[me.0].fallbacks.push(t),
                        None => {}
                    }
                }
            }
        }
    }

    /// A `provider/model` reference to a configured target.
    fn target_ref(
        &mut self,
        path: &str,
        s: &str,
        providers: &[ProviderConfig],
        index: &HashMap<(usize, String), TargetId>,
    ) -> Option<TargetId> {
        let Some((prov, model)) = s.split_once('/') else {
            self.problem(format!(
                "{path}: \"{s}\" must be written \"provider/model\""
            ));
            return None;
        };
        let Some(pid) = providers.iter().position(|p| p.name == prov) else {
            self.problem(format!("{path}: unknown provider \"{prov}\""));
            return None;
        };
        let t = index.get(&(pid, model.to_owned())).copied();
        if t.is_none() {
            self.problem(format!(
                "{path}: provider \"{prov}\" lists no model \"{model}\" (add it under providers.{prov}.models)"
            ));
        }
        t
    }

    fn policy(&mut self, path: &str, p: &RawPolicy, base: &Policy) -> Policy {
        let ms = |v: Option<u64>, d: Duration| v.map(Duration::from_millis).unwrap_or(d);
        let stream_resume = match p.stream_resume.as_deref() {
            None => base.stream_resume,
            Some("continue") => StreamResume::Continue,
            Some("error") => StreamResume::Error,
            Some(other) => {
                self.problem(format!(
                    "{path}.stream_resume: unknown value \"{other}\" (expected continue or error)"
                ));
                base.stream_resume
            }
        };
        let out = Policy {
            connect_timeout: ms(p.connect_timeout_ms, base.connect_timeout),
            first_byte_timeout: ms(p.first_byte_timeout_ms, base.first_byte_timeout),
            first_token_timeout: ms(p.first_token_timeout_ms, base.first_token_timeout),
            idle_timeout: ms(p.idle_timeout_ms, base.idle_timeout),
            total_timeout: ms(p.total_timeout_ms, base.total_timeout),
            max_retries: p.max_retries.unwrap_or(base.max_retries),
            backoff_base: ms(p.backoff_base_ms, base.backoff_base),
            backoff_max: ms(p.backoff_max_ms, base.backoff_max),
            max_retry_after: ms(p.max_retry_after_ms, base.max_retry_after),
            stream_resume,
            max_malformed_events: p.max_malformed_events.unwrap_or(base.max_malformed_events),
        };
        if out.max_malformed_events == 0 {
            self.problem(format!("{path}.max_malformed_events: must be at least 1"));
        }
        for (name, d) in [
            ("connect_timeout_ms", out.connect_timeout),
            ("first_byte_timeout_ms", out.first_byte_timeout),
            ("first_token_timeout_ms", out.first_token_timeout),
            ("idle_timeout_ms", out.idle_timeout),
            ("total_timeout_ms", out.total_timeout),
        ] {
            if d.is_zero() {
                self.problem(format!("{path}.{name}: must be greater than 0"));
            }
        }
        if out.max_retries > 10 {
            self.problem(format!("{path}.max_retries: at most 10"));
        }
        out
    }

    fn interpolate(&mut self, path: &str, s: &str) -> Option<String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find('}') else {
                self.problem(format!("{path}: unclosed \"${{\""));
                return None;
            };
            let var = &rest[start + 2..start + end];
            match (self.env)(var) {
                Some(val) => out.push_str(&val),
                None => return None,
            }
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    fn provider(&mut self, name: &str, p: &RawProvider) -> Option<ProviderConfig> {
        let path = format!("providers.{name}");
        if name.contains('/') {
            self.problem(format!("{path}: provider names must not contain '/'"));
        }
        let kind = match p.kind.as_str() {
            "openai" => ProviderKind::OpenAi,
            "anthropic" => ProviderKind::Anthropic,
            other => {
                self.problem(format!(
                    "{path}.kind: unknown kind \"{other}\" (expected \"openai\" or \"anthropic\")"
                ));
                return None;
            }
        };
        let api_key = match (&p.api_key_env, &p.api_key) {
            (Some(_), Some(_)) => {
                self.problem(format!("{path}: set api_key_env or api_key, not both"));
                None
            }
            (Some(var), None) => (self.env)(var).filter(|k| !k.is_empty()),
            (None, Some(k)) => self.interpolate(&format!("{path}.api_key"), k),
            (None, None) => None,
        };
        let wants_key = p.api_key_env.is_some() || p.api_key.is_some();
        let simulated = wants_key && api_key.is_none() && p.simulate_without_key;
        if wants_key && api_key.is_none() && !simulated {
            let var = p
                .api_key_env
                .as_deref()
                .unwrap_or("the variable in api_key");
            self.problem(format!(
                "{path}: API key not set ({var} is empty or unset); set it, or set simulate_without_key = true"
            ));
        }
        let default_url = match kind {
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
        };
        let base_url = match &p.base_url {
            Some(u) => self
                .interpolate(&format!("{path}.base_url"), u)
                .unwrap_or_default(),
            None => default_url.to_owned(),
        };
        if !(simulated || base_url.starts_with("http://") || base_url.starts_with("https://")) {
            self.problem(format!(
                "{path}.base_url: \"{base_url}\" must start with http:// or https://"
            ));
        }
        let mut headers = Vec::new();
        for (h, val) in &p.headers {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                self.problem(format!("{path}.headers: \"{h}\" is not a header name"));
                continue;
            }
            if let Some(val) = self.interpolate(&format!("{path}.headers.{h}"), val) {
                headers.push((h.clone(), Secret::new(val)));
            }
        }
        for (model, m) in &p.models {
            for (field, v) in Price::FIELDS.into_iter().zip(price(m).fields()) {
                if v.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                    self.problem(format!(
                        "{path}.models.{model}.{field}: must be a price >= 0"
                    ));
                }
            }
        }
        Some(ProviderConfig {
            name: name.to_owned(),
            kind,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: api_key.map(Secret::new),
            headers,
            api_version: p
                .api_version
                .clone()
                .unwrap_or_else(|| DEFAULT_ANTHROPIC_VERSION.to_owned()),
            simulated,
            prefill: p.prefill.unwrap_or(kind == ProviderKind::Anthropic),
        })
    }

    /// `[telemetry]`: every field is checked even when export is off, so a typo in a disabled
    /// section does not wait until someone turns it on.
    fn telemetry(&mut self, t: &RawTelemetry) -> TelemetryConfig {
        let sample_ratio = t.sample_ratio.unwrap_or(1.0);
        // `contains` is false for NaN too.
        if !(0.0..=1.0).contains(&sample_ratio) {
            self.problem(format!(
                "telemetry.sample_ratio: {sample_ratio} must be between 0 and 1"
            ));
        }
        let service_name = t
            .service_name
            .as_deref()
            .unwrap_or(DEFAULT_SERVICE_NAME)
            .trim()
            .to_owned();
        if service_name.is_empty() {
            self.problem("telemetry.service_name: must not be empty".to_owned());
        }
        let mut headers = Vec::new();
        for (h, val) in &t.otlp_headers {
            let path = format!("telemetry.otlp_headers.{h}");
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                self.problem(format!(
                    "telemetry.otlp_headers: \"{h}\" is not a header name"
                ));
                continue;
            }
            let known = self.problems.len();
            match self.interpolate(&path, val) {
                Some(v) if http::HeaderValue::from_str(&v).is_ok() => {
                    headers.push((h.clone(), Secret::new(v)));
                }
                Some(_) => self.problem(format!("{path}: not a valid header value")),
                // `interpolate` reported a malformed value itself; an unset variable it leaves
                // to the caller.
                None if self.problems.len() > known => {}
                None => self.problem(format!("{path}: a variable it names is not set")),
            }
        }
        let Some(endpoint) = t.otlp_endpoint.as_deref() else {
            return TelemetryConfig { otlp: None };
        };
        let endpoint = endpoint.trim().trim_end_matches('/');
        let is_http_url = reqwest::Url::parse(endpoint).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
        if !is_http_url {
            self.problem(format!(
                "telemetry.otlp_endpoint: \"{endpoint}\" must be an http:// or https:// URL like http://127.0.0.1:4318 (remove the key to turn export off)"
            ));
        }
        let traces_url = if endpoint.ends_with(OTLP_TRACES_PATH) {
            endpoint.to_owned()
        } else {
            format!("{endpoint}{OTLP_TRACES_PATH}")
        };
        TelemetryConfig {
            otlp: Some(OtlpConfig {
                traces_url,
                service_name,
                sample_ratio,
                headers,
            }),
        }
    }

    /// `[cache]` with a route's overrides merged field by field, then checked.
    fn cache_policy(
        &mut self,
        path: &str,
        base: &toml::Table,
        over: Option<&toml::Table>,
    ) -> CachePolicy {
        let mut merged = base.clone();
        for (k, val) in over.into_iter().flatten() {
            merged.insert(k.clone(), val.clone());
        }
        match toml::Value::Table(merged).try_into::<CachePolicy>() {
            Ok(p) => {
                if let Err(e) = p.validate(path) {
                    self.problem(e);
                }
                p
            }
            Err(e) => {
                self.problem(format!("{path}: {}", e.message()));
                CachePolicy::default()
            }
        }
    }

    fn mode(&mut self, path: &str, s: Option<&str>, default: Mode) -> Mode {
        match s {
            None => default,
            Some("gateway") => Mode::Gateway,
            Some("observe") => Mode::Observe,
            Some(other) => {
                self.problem(format!(
                    "{path}: unknown mode \"{other}\" (expected gateway or observe)"
                ));
                default
            }
        }
    }

    fn strategy(&mut self, path: &str, s: Option<&str>, default: Strategy) -> Strategy {
        match s {
            None => default,
            Some("ordered") => Strategy::Ordered,
            Some("cheapest") => Strategy::Cheapest,
            Some("lowest-latency") => Strategy::LowestLatency,
            Some("weighted") => Strategy::Weighted,
            Some(LEARNED_STRATEGY) => {
                self.problem(format!(
                    "{path}: \"learned\" picks a route's tier: set it on the route, not on a tier"
                ));
                default
            }
            Some(other) => {
                self.problem(format!(
                    "{path}: unknown strategy \"{other}\" (expected ordered, cheapest, lowest-latency, weighted, or learned on a route)"
                ));
                default
            }
        }
    }

    fn route(
        &mut self,
        name: &str,
        r: &RawRoute,
        defaults: &Policy,
        providers: &[ProviderConfig],
        target_index: &HashMap<(usize, String), TargetId>,
    ) -> Option<RouteConfig> {
        let path = format!("routes.{name}");
        // `learned` picks the tier; each tier's targets then keep their own order.
        let route_strategy = match r.strategy.as_deref() {
            Some(LEARNED_STRATEGY) => Strategy::Ordered,
            s => self.strategy(&format!("{path}.strategy"), s, Strategy::Ordered),
        };
        if r.tiers.is_empty() {
            self.problem(format!("{path}.tiers: a route needs at least one tier"));
            return None;
        }
        let mut tiers = Vec::new();
        for (tier_name, tier) in &r.tiers {
            let tpath = format!("{path}.tiers.{tier_name}");
            let (list, strategy) = match tier {
                RawTier::List(l) => (l, None),
                RawTier::Table { targets, strategy } => (targets, strategy.as_deref()),
            };
            let strategy = self.strategy(&format!("{tpath}.strategy"), strategy, route_strategy);
            if list.is_empty() {
                self.problem(format!("{tpath}: a tier needs at least one target"));
            }
            let mut targets = Vec::new();
            for (i, t) in list.iter().enumerate() {
                let tp = format!("{tpath}[{i}]");
                let (tid, weight) = match t {
                    RawTarget::Short(s) => (self.target_ref(&tp, s, providers, target_index), None),
                    RawTarget::Long {
                        provider,
                        model,
                        weight,
                    } => {
                        let s = format!("{provider}/{model}");
                        (self.target_ref(&tp, &s, providers, target_index), *weight)
                    }
                };
                let Some(tid) = tid else {
                    continue;
                };
                if weight == Some(0) && strategy == Strategy::Weighted {
                    self.problem(format!("{tp}: weight must be at least 1"));
                }
                targets.push((tid, weight.unwrap_or(1).max(1)));
            }
            tiers.push(TierConfig {
                name: tier_name.clone(),
                strategy,
                targets,
            });
        }
        let tier_pos = |t: &str| tiers.iter().position(|x| x.name == t);
        let default_tier = match &r.default_tier {
            None => 0,
            Some(t) => tier_pos(t).unwrap_or_else(|| {
                self.problem(format!("{path}.default_tier: unknown tier \"{t}\""));
                0
            }),
        };
        let mut rules = Vec::new();
        for (i, rule) in r.rules.iter().enumerate() {
            if let Some(rule) = self.rule(&format!("{path}.rules[{i}]"), rule, &tier_pos) {
                rules.push(rule);
            }
        }
        let policy = match &r.policy {
            None => defaults.clone(),
            Some(p) => {
                if p.connect_timeout_ms.is_some() {
                    self.problem(format!(
                        "{path}.policy.connect_timeout_ms: set it in [defaults] (one connection pool per provider)"
                    ));
                }
                self.policy(&format!("{path}.policy"), p, defaults)
            }
        };
        Some(RouteConfig {
            name: name.to_owned(),
            description: r.description.clone(),
            tiers,
            default_tier,
            rules,
            policy,
            cache: CachePolicy::default(),
            accounting: RouteAccounting::default(),
            routing: RouteRouting::default(),
        })
    }

    fn rule(
        &mut self,
        path: &str,
        r: &RawRule,
        tier_pos: &dyn Fn(&str) -> Option<usize>,
    ) -> Option<Rule> {
        let Some(tier) = tier_pos(&r.tier) else {
            self.problem(format!("{path}.tier: unknown tier \"{}\"", r.tier));
            return None;
        };
        let regex = match r.regex.as_deref().map(regex::Regex::new) {
            None => None,
            Some(Ok(re)) => Some(re),
            Some(Err(e)) => {
                self.problem(format!("{path}.regex: {e}"));
                return None;
            }
        };
        Some(Rule {
            tier,
            min_prompt_tokens: r.min_prompt_tokens,
            max_prompt_tokens: r.max_prompt_tokens,
            has_tools: r.has_tools,
            regex,
            keywords: r.keywords.iter().map(|k| k.to_lowercase()).collect(),
            metadata: r
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, Vec<String>> {
        let raw: RawConfig = toml::from_str(text).expect("toml");
        validate(raw, &|k| (k == "SET_KEY").then(|| "sk-test".to_owned()))
    }

    #[test]
    fn key_tables_roles_limits_and_digests() {
        let digest = hex::encode(key_digest("sk-hashed"));
        let text = format!(
            "[server.api_keys]\nplain = \"${{SET_KEY}}\"\n[server.api_keys.ops]\nkey_sha256 = \"{digest}\"\nrole = \"admin\"\n[server.api_keys.team]\nkey = \"sk-team\"\nroutes = [\"chat\"]\ntiers = [\"premium\"]\nbudget_usd_per_day = 2.5\nrequests_per_minute = 60\n{PROVIDERS}"
        );
        let keys = check(&text).unwrap().server.api_keys;
        assert_eq!(keys.len(), 3);
        assert_eq!(keys.caller("sk-hashed").map(|n| &**n), Some("ops"));
        let ops = &keys.specs()[1];
        assert!(ops.policy.is_admin());
        let team = &keys.specs()[2].policy;
        assert!(team.may_use_route("chat") && !team.may_use_route("summarize"));
        assert!(team.may_force_tier("premium") && !team.may_force_tier("cheap"));
        assert!(team.may_use_model("anything"), "models default to all");
        assert!(
            !keys.specs()[0].policy.may_force_tier("premium"),
            "no tiers by default"
        );
        let bad = format!(
            "[server.api_keys.a]\nkey = \"k1\"\nkey_sha256 = \"{digest}\"\n[server.api_keys.b]\nkey = \"k2\"\nrole = \"root\"\n[server.api_keys.c]\nkey_sha256 = \"xyz\"\n[server.api_keys.d]\nkey = \"k4\"\nrequests_per_minute = 0\nbudget_usd_per_month = -1\n[server.api_keys.e]\nkey = \"k4\"\n[server]\nmax_connections = 0\n{PROVIDERS}"
        );
        let problems = check(&bad).unwrap_err();
        for want in [
            "server.api_keys.a: give `key` or `key_sha256`, not both",
            "server.api_keys.b.role: \"root\" is not a role (client or admin)",
            "server.api_keys.c.key_sha256: not a SHA-256 digest (64 hex digits)",
            "server.api_keys.d.requests_per_minute: 0 would refuse every request (leave it out for no limit)",
            "server.api_keys.d.budget_usd_per_month: must be a number of USD >= 0",
            "server.api_keys.e: the same key is listed twice",
            "server.max_connections: 0 would refuse every request",
        ] {
            assert!(problems.iter().any(|p| p == want), "{want} not in {problems:#?}");
        }
    }

    const PROVIDERS: &str = r#"
        [providers.openai]
        kind = "openai"
        api_key_env = "SET_KEY"
        models."gpt-4o-mini" = { input_per_mtok = 0.15, output_per_mtok = 0.6 }
        [providers.anthropic]
        kind = "anthropic"
        api_key_env = "MISSING_KEY"
        simulate_without_key = true
        models."claude-3-haiku" = {}
    "#;

    #[test]
    fn errors_name_the_config_path() {
        let text = format!(
            "{PROVIDERS}\n[routes.summarize.tiers]\ncheap = [\"openai/gpt-4o-mini\", \"opnai/gpt-4o-mini\"]\n"
        );
        let problems = check(&text).unwrap_err();
        assert_eq!(
            problems,
            vec![r#"routes.summarize.tiers.cheap[1]: unknown provider "opnai""#.to_owned()]
        );
    }

    #[test]
    fn keys_come_from_env_and_missing_keys_simulate_or_fail() {
        let cfg = check(PROVIDERS).unwrap();
        assert_eq!(
            cfg.providers[0].api_key.as_ref().unwrap().expose(),
            "sk-test"
        );
        assert_eq!(format!("{:?}", cfg.providers[0].api_key), "Some(***)");
        assert!(cfg.providers[1].simulated);
        let strict = PROVIDERS.replace("simulate_without_key = true", "");
        let problems = check(&strict).unwrap_err();
        assert!(
            problems[0].starts_with("providers.anthropic: API key not set"),
            "{problems:?}"
        );
    }

    #[test]
    fn client_keys_come_from_env_and_an_unset_one_is_an_error() {
        let text = format!("[server]\napi_keys = [\"${{SET_KEY}}\", \" literal \"]\n{PROVIDERS}");
        let keys = check(&text).unwrap().server.api_keys;
        assert_eq!(keys.len(), 2);
        let name = |k: &str| keys.caller(k).map(|n| n.to_string());
        assert_eq!(
            name("literal"),
            Some("key-829f8d84".into()),
            "named by its digest (sha256sum)"
        );
        assert!(name("sk-test").is_some() && name("sk-test") != name("literal"));
        assert_eq!(name("sk-tes"), None);
        assert_eq!(name(""), None);
        assert_eq!(format!("{keys:?}"), "ApiKeys(2 keys)", "never printed");
        let text = format!("[server.api_keys]\nbilling = \"${{SET_KEY}}\"\n{PROVIDERS}");
        let keys = check(&text).unwrap().server.api_keys;
        assert_eq!(keys.caller("sk-test").map(|n| &**n), Some("billing"));
        assert!(check(PROVIDERS).unwrap().server.api_keys.is_empty());

        let text = format!("[server]\napi_keys = [\"${{MISSING_KEY}}\", \"\"]\n{PROVIDERS}");
        assert_eq!(
            check(&text).unwrap_err(),
            [
                "server.api_keys[0]: names an environment variable that is not set",
                "server.api_keys[1]: empty key"
            ]
        );
        let text = format!("[server.api_keys]\nops = \"${{MISSING_KEY}}\"\n{PROVIDERS}");
        assert_eq!(
            check(&text).unwrap_err(),
            ["server.api_keys.ops: names an environment variable that is not set"]
        );
    }

    #[test]
    fn rules_and_strategies_validate() {
        let text = format!(
            r#"{PROVIDERS}
            [routes.chat]
            strategy = "fastest"
            tiers.cheap = ["anthropic/claude-3-haiku"]
            tiers.premium = {{ targets = ["openai/gpt-4o-mini", "openai/gpt-5"], strategy = "cheapest" }}
            [[routes.chat.rules]]
            tier = "premium"
            regex = "(unclosed"
            [[routes.chat.rules]]
            tier = "gold"
            "#
        );
        let problems = check(&text).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("routes.chat.strategy: unknown strategy \"fastest\""));
        assert!(problems[1].starts_with(
            "routes.chat.tiers.premium[1]: provider \"openai\" lists no model \"gpt-5\""
        ));
        assert!(problems[2].starts_with("routes.chat.rules[0].regex:"));
        assert_eq!(
            problems[3],
            "routes.chat.rules[1].tier: unknown tier \"gold\""
        );
    }

    #[test]
    fn telemetry_is_off_by_default_and_checked_when_set() {
        let cfg = check(PROVIDERS).unwrap();
        assert!(cfg.telemetry.otlp.is_none());

        let on = format!(
            "{PROVIDERS}\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318/\"\nsample_ratio = 0.25\notlp_headers = {{ x-api-key = \"${{SET_KEY}}\" }}\n"
        );
        let otlp = check(&on).unwrap().telemetry.otlp.expect("export on");
        assert_eq!(otlp.traces_url, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(otlp.service_name, "sluice");
        assert_eq!(otlp.sample_ratio, 0.25);
        assert_eq!(otlp.headers[0].1.expose(), "sk-test");

        let bad = format!(
            "{PROVIDERS}\n[telemetry]\notlp_endpoint = \"grpc://collector:4317\"\nsample_ratio = 1.5\nservice_name = \" \"\n"
        );
        let problems = check(&bad).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("telemetry.sample_ratio: 1.5 must be between 0 and 1"));
        assert_eq!(problems[1], "telemetry.service_name: must not be empty");
        assert!(problems[2]
            .starts_with("telemetry.otlp_endpoint: \"grpc://collector:4317\" must be an http://"));

        let typo = format!("{PROVIDERS}\n[telemetry]\notlp_endpont = \"http://x:4318\"\n");
        let raw = toml::from_str::<RawConfig>(&typo).unwrap_err().to_string();
        assert!(raw.contains("otlp_endpont"), "{raw}");
    }

    #[test]
    fn model_fallbacks_resolve_and_routes_may_be_named_like_models() {
        let text = format!(
            r#"{PROVIDERS}
            [providers.openai.models."gpt-4o"]
            fallbacks = ["anthropic/claude-3-haiku", "openai/gpt-4o-mini"]
            [routes."gpt-4o-mini"]
            tiers.main = ["openai/gpt-4o-mini", "anthropic/claude-3-haiku"]
            "#
        );
        let cfg = check(&text).unwrap();
        let names = |ts: &[TargetId]| -> Vec<String> {
            ts.iter().map(|t| cfg.target(*t).name.clone()).collect()
        };
        assert_eq!(
            names(&cfg.passthrough_targets("gpt-4o")),
            [
                "openai/gpt-4o",
                "anthropic/claude-3-haiku",
                "openai/gpt-4o-mini"
            ]
        );
        assert_eq!(cfg.routes[0].name, "gpt-4o-mini");

        let bad = format!(
            r#"{PROVIDERS}
            [providers.openai.models."gpt-4o"]
            fallbacks = ["anthropic/claude-9", "gpt-4o-mini", "openai/gpt-4o"]
            "#
        );
        assert_eq!(
            check(&bad).unwrap_err(),
            [
                r#"providers.openai.models.gpt-4o.fallbacks[0]: provider "anthropic" lists no model "claude-9" (add it under providers.anthropic.models)"#,
                r#"providers.openai.models.gpt-4o.fallbacks[1]: "gpt-4o-mini" must be written "provider/model""#,
                "providers.openai.models.gpt-4o.fallbacks[2]: a model cannot be its own fallback",
            ]
        );
    }

    #[test]
    fn failover_settings_have_defaults_and_are_checked() {
        let cfg = check(PROVIDERS).unwrap();
        assert_eq!(cfg.breaker.cooldown, Duration::from_secs(2));
        assert_eq!(cfg.breaker.max_cooldown, Duration::from_secs(30));
        assert_eq!(cfg.breaker.retry_budget, 0.2);
        assert_eq!(cfg.defaults.stream_resume, StreamResume::Continue);
        assert_eq!(cfg.defaults.max_malformed_events, 3);
        assert!(cfg.providers[1].prefill && !cfg.providers[0].prefill);

        let text = format!(
            r#"[defaults]
            stream_resume = "error"
            [breaker]
            cooldown_ms = 60000
            {PROVIDERS}
            [routes.r]
            tiers.t = ["openai/gpt-4o-mini"]
            policy = {{ stream_resume = "continue", max_malformed_events = 1 }}
            "#
        );
        let cfg = check(&text).unwrap();
        assert_eq!(cfg.defaults.stream_resume, StreamResume::Error);
        assert_eq!(cfg.routes[0].policy.stream_resume, StreamResume::Continue);
        assert_eq!(cfg.routes[0].policy.max_malformed_events, 1);
        assert_eq!(
            cfg.breaker.max_cooldown,
            Duration::from_secs(60),
            "never below the first"
        );

        let bad = format!(
            "[defaults]\nstream_resume = \"retry\"\nmax_malformed_events = 0\n[breaker]\nretry_budget = -1.0\n{PROVIDERS}"
        );
        let problems = check(&bad).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("defaults.stream_resume: unknown value \"retry\""));
        assert_eq!(
            problems[1],
            "defaults.max_malformed_events: must be at least 1"
        );
        assert!(problems[2].starts_with("breaker.retry_budget: -1"));
    }

    #[test]
    fn embedded_default_config_is_valid() {
        let raw: RawConfig = toml::from_str(DEFAULT_CONFIG).expect("toml");
        let cfg = validate(raw, &|_| None).expect("valid");
        assert!(cfg.providers.iter().all(|p| p.simulated));
        assert!(!cfg.routes.is_empty());
    }
}
