//! Usage -> cost, and the cost a request avoided.
//!
//! Prices are resolved once at startup ([`Accountant::new`]), per target and per field: the
//! config's `price` fields win, then the price map's entry for the model (`price_map`), else the
//! built-in table's; a field none of them gives is derived ([`resolve`]). A target with no input
//! or output price at all has an unknown cost (`None`, never 0), which the caller counts in a
//! metric. Where each target's price came from is kept ([`PriceOrigin`], `sluice prices list`).
//!
//! Cost of a call answered upstream, in parts ([`CostParts`]):
//! uncached input x input price + cache reads x cached-input price + cache writes x cache-write
//! price (1-hour writes at their own price) + output x output price (reasoning included, at the
//! reasoning price when the model has one, else the output price).
//! The provider's prompt cache saved: reads x (input price - cached-input price) - writes x
//! (cache-write price - input price): negative when written prefixes were not read back enough.
//!
//! Cost avoided, per request:
//! - mode `observe`: 0 (nothing was routed or cached).
//! - cache hit (exact or semantic): the cost of the answer's usage (its cache reads and writes
//!   included) on the route's reference model; without one, on the target that produced the
//!   answer (`answered_by`), else on the first target of the route's default tier. The hit
//!   itself costs 0.
//! - answered upstream: reference cost minus actual cost (negative when a failover landed on a
//!   pricier model than the reference); 0 when the route has no reference model.
//! - nothing answered: 0.

use serde::{Deserialize, Serialize};

use super::price_map::{MapOrigin, PriceMap};
use super::prices::{self, ModelPrice};
use crate::config::{
    AccountingSettings, Config, Mode, Price, ProviderKind, RouteAccounting, RouteId, TargetId,
};
use crate::outcome::CacheOutcome;

pub use crate::chat::TokenUsage;

/// Anthropic's cache-write prices as multiples of the input price (5 minutes, 1 hour), for an
/// Anthropic target whose sources give none.
const ANTHROPIC_CACHE_WRITE: (f64, f64) = (1.25, 2.0);

/// The parts of a call's cost, USD (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CostParts {
    /// Prompt tokens neither read from nor written to the provider's cache, at the input price.
    pub input_usd: f64,
    pub cache_read_usd: f64,
    pub cache_write_usd: f64,
    /// Output tokens, reasoning included.
    pub output_usd: f64,
    /// What the provider's prompt cache saved on this call (not part of the cost).
    pub provider_cache_saved_usd: f64,
}

impl CostParts {
    pub fn total(&self) -> f64 {
        self.input_usd + self.cache_read_usd + self.cache_write_usd + self.output_usd
    }
}

impl ModelPrice {
    /// The cost of `usage` at this price, in parts.
    pub fn parts(&self, usage: TokenUsage) -> CostParts {
        let u = usage.clamped();
        let usd = |tokens: u32, per_mtok: f64| f64::from(tokens) * per_mtok / 1e6;
        let cache_read_usd = usd(u.cache_read, self.cached_input_per_mtok);
        let cache_write_usd = usd(u.cache_write - u.cache_write_1h, self.cache_write_per_mtok)
            + usd(u.cache_write_1h, self.cache_write_1h_per_mtok);
        let at_input = |tokens| usd(tokens, self.input_per_mtok);
        CostParts {
            input_usd: at_input(u.uncached_input()),
            cache_read_usd,
            cache_write_usd,
            output_usd: usd(u.output - u.reasoning, self.output_per_mtok)
                + usd(u.reasoning, self.reasoning_per_mtok),
            provider_cache_saved_usd: (at_input(u.cache_read) - cache_read_usd)
                - (cache_write_usd - at_input(u.cache_write)),
        }
    }

    /// USD for `usage` at this price.
    pub fn cost(&self, usage: TokenUsage) -> f64 {
        self.parts(usage).total()
    }
}

/// `config` over `base` (a map entry or the built-in table's), then what neither gives: cached
/// input at the input price (no discount known: the conservative choice), cache writes at the
/// input price (an Anthropic target: Anthropic's 1.25x, and 2x for one hour), 1-hour writes at the
/// 5-minute price, reasoning at the output price. `None` without an input or output price; also
/// the names of the fields that were derived.
pub fn resolve(
    config: Price,
    base: Price,
    anthropic: bool,
) -> (Option<ModelPrice>, Vec<&'static str>) {
    let p = config.or(base);
    let mut derived = Vec::new();
    let (Some(input), Some(output)) = (p.input_per_mtok, p.output_per_mtok) else {
        return (None, derived);
    };
    let mut field = |v: Option<f64>, name: &'static str, rule: f64| {
        v.unwrap_or_else(|| {
            derived.push(name);
            rule
        })
    };
    let (write_x, write_1h_x) = if anthropic {
        ANTHROPIC_CACHE_WRITE
    } else {
        (1.0, 1.0)
    };
    let cached = field(p.cached_input_per_mtok, "cached_input", input);
    let write = field(p.cache_write_per_mtok, "cache_write", input * write_x);
    let write_1h_rule = if anthropic { input * write_1h_x } else { write };
    let write_1h = field(p.cache_write_1h_per_mtok, "cache_write_1h", write_1h_rule);
    let reasoning = field(p.reasoning_per_mtok, "reasoning", output);
    (
        Some(ModelPrice {
            input_per_mtok: input,
            output_per_mtok: output,
            cached_input_per_mtok: cached,
            cache_write_per_mtok: write,
            cache_write_1h_per_mtok: write_1h,
            reasoning_per_mtok: reasoning,
        }),
        derived,
    )
}

/// Where a price came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceOrigin {
    /// The price map's entry (its key) or the built-in table's row the price is based on.
    pub base: Option<PriceBase>,
    /// Fields the config sets (they win over the base).
    pub config: Vec<&'static str>,
    /// Fields no source gives, filled by the rules of [`resolve`].
    pub derived: Vec<&'static str>,
    /// No input or output price: the cost is unknown.
    pub unknown: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum PriceBase {
    Map(String),
    BuiltIn(&'static str),
}

impl PriceOrigin {
    /// `config`, `map`, `built-in`, `map+config`, `built-in+config`, or `unknown`.
    pub fn source(&self) -> &'static str {
        let configured = !self.config.is_empty();
        match (&self.base, configured, self.unknown) {
            (_, _, true) => "unknown",
            (None, _, false) => "config",
            (Some(PriceBase::Map(_)), false, false) => "map",
            (Some(PriceBase::Map(_)), true, false) => "map+config",
            (Some(PriceBase::BuiltIn(_)), false, false) => "built-in",
            (Some(PriceBase::BuiltIn(_)), true, false) => "built-in+config",
        }
    }

    /// `map gpt-4o-mini; config: input; derived: cache_write, cache_write_1h`.
    pub fn detail(&self) -> String {
        let mut parts = Vec::new();
        match &self.base {
            Some(PriceBase::Map(k)) => parts.push(format!("map {k}")),
            Some(PriceBase::BuiltIn(n)) => parts.push(format!("built-in {n}")),
            None => {}
        }
        if !self.config.is_empty() {
            parts.push(format!("config: {}", self.config.join(", ")));
        }
        if !self.derived.is_empty() {
            parts.push(format!("derived: {}", self.derived.join(", ")));
        }
        parts.join("; ")
    }
}

/// The price of a model id from the map (with the provider's name for third-party keys), else
/// the built-in table, with what it was found under.
fn base_price(
    map: Option<&PriceMap>,
    provider: Option<&str>,
    model: &str,
) -> Option<(PriceBase, Price)> {
    map.and_then(|m| m.lookup(provider, model))
        .map(|(k, p)| (PriceBase::Map(k.to_owned()), p))
        .or_else(|| prices::lookup(model).map(|(n, p)| (PriceBase::BuiltIn(n), p)))
}

/// The effective price of a model id that no target names (`sluice prices list MODEL`): the map's
/// or the built-in table's, with derived fields filled.
pub fn model_price(map: Option<&PriceMap>, model: &str) -> (Option<ModelPrice>, PriceOrigin) {
    let (base, price) = match base_price(map, None, model) {
        Some((b, p)) => (Some(b), p),
        None => (None, Price::default()),
    };
    let (price, derived) = resolve(Price::default(), price, false);
    let origin = PriceOrigin {
        base,
        config: Vec::new(),
        derived,
        unknown: price.is_none(),
    };
    (price, origin)
}

/// A target's price and its origin.
fn price_target(
    config: &Config,
    t: &crate::config::TargetConfig,
    map: Option<&PriceMap>,
) -> (Option<ModelPrice>, PriceOrigin) {
    let provider = config.provider(t.provider);
    let base = base_price(map, Some(&provider.name), &t.upstream_model)
        .or_else(|| base_price(map, Some(&provider.name), &t.model));
    let (base, base_price) = match base {
        Some((b, p)) => (Some(b), p),
        None => (None, Price::default()),
    };
    let anthropic = provider.kind == ProviderKind::Anthropic;
    let (price, derived) = resolve(t.price, base_price, anthropic);
    let config_fields = Price::FIELDS
        .iter()
        .zip(t.price.fields())
        .filter(|(_, v)| v.is_some())
        .map(|(name, _)| name.trim_end_matches("_per_mtok"))
        .collect();
    let origin = PriceOrigin {
        base,
        config: config_fields,
        derived,
        unknown: price.is_none(),
    };
    (price, origin)
}

/// What the accountant needs to know about one finished request.
#[derive(Debug, Clone, Copy)]
pub struct CostInput {
    /// `None` for pass-through requests.
    pub route: Option<RouteId>,
    /// The target that answered; for a cache hit, the target whose answer was cached, if known.
    pub answered_by: Option<TargetId>,
    pub cache: CacheOutcome,
    /// The usage of the answer (for a hit: the original answer's usage).
    pub usage: TokenUsage,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    pub cost_usd: Option<f64>,
    /// The parts of `cost_usd` (all 0 for a cache hit or a request nothing answered).
    pub parts: Option<CostParts>,
    pub cost_avoided_usd: Option<f64>,
    /// The answering target has no price: count it (`Metrics` does, from the observation).
    pub price_unknown: bool,
}

/// Resolved prices of every target and the accounting settings of every route.
#[derive(Debug, Clone)]
pub struct Accountant {
    /// Indexed by `TargetId`.
    targets: Vec<Option<ModelPrice>>,
    /// Indexed by `TargetId`.
    origins: Vec<PriceOrigin>,
    /// Indexed by `RouteId`.
    routes: Vec<RouteBook>,
    passthrough: RouteBook,
    map: Option<MapOrigin>,
}

#[derive(Debug, Clone)]
struct RouteBook {
    mode: Mode,
    reference: Option<(String, ModelPrice)>,
    /// First target of the default tier: the fallback reference of cache hits.
    default_price: Option<ModelPrice>,
}

impl Accountant {
    /// `routes` is indexed like `config.routes`; `map` is the price map in use, if any. Errors
    /// name the config path of every reference model that cannot be priced.
    pub fn new(
        config: &Config,
        settings: &AccountingSettings,
        routes: &[RouteAccounting],
        map: Option<&PriceMap>,
    ) -> Result<Accountant, Vec<String>> {
        let (targets, origins): (Vec<_>, Vec<_>) = config
            .targets
            .iter()
            .map(|t| price_target(config, t, map))
            .unzip();
        let mut problems = Vec::new();
        if routes.len() != config.routes.len() {
            problems.push(format!(
                "accounting: {} route settings for {} routes",
                routes.len(),
                config.routes.len()
            ));
        }
        let global_mode = settings.mode;
        let mut books = Vec::with_capacity(config.routes.len());
        for (i, r) in config.routes.iter().enumerate() {
            let acc = routes.get(i).cloned().unwrap_or_default();
            let reference = match acc.reference_model.as_deref() {
                None => None,
                Some(name) => match reference_price(config, &targets, map, name) {
                    Some(p) => Some((name.to_owned(), p)),
                    None => {
                        let map_note = map.map_or(String::new(), |m| {
                            format!(", nor of the price map {}", m.origin.file)
                        });
                        problems.push(format!(
                            "routes.{}.reference_model: cannot price \"{name}\": it is neither a \
                             configured target with a price nor a model of the built-in price \
                             table (as of {}){map_note}",
                            r.name,
                            prices::PRICES_AS_OF
                        ));
                        None
                    }
                },
            };
            let default_price = r
                .tiers
                .get(r.default_tier)
                .and_then(|t| t.targets.first())
                .and_then(|(t, _)| targets[t.0]);
            books.push(RouteBook {
                mode: if global_mode == Mode::Observe {
                    Mode::Observe
                } else {
                    acc.mode
                },
                reference,
                default_price,
            });
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Accountant {
            targets,
            origins,
            routes: books,
            passthrough: RouteBook {
                mode: global_mode,
                reference: None,
                default_price: None,
            },
            map: map.map(|m| m.origin.clone()),
        })
    }

    pub fn target_price(&self, t: TargetId) -> Option<ModelPrice> {
        self.targets.get(t.0).copied().flatten()
    }

    /// Where a target's price came from.
    pub fn target_origin(&self, t: TargetId) -> Option<&PriceOrigin> {
        self.origins.get(t.0)
    }

    /// The price map in use, if any.
    pub fn price_map(&self) -> Option<&MapOrigin> {
        self.map.as_ref()
    }

    /// Targets without a price (log them at startup: their spend will show as unknown).
    pub fn unpriced_targets(&self) -> impl Iterator<Item = TargetId> + '_ {
        self.targets
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_none())
            .map(|(i, _)| TargetId(i))
    }

    /// The effective mode of a route (`None`: pass-through); the gateway-wide `observe` wins.
    pub fn mode(&self, route: Option<RouteId>) -> Mode {
        self.book(route).mode
    }

    pub fn reference_model(&self, route: Option<RouteId>) -> Option<&str> {
        self.book(route).reference.as_ref().map(|(n, _)| n.as_str())
    }

    fn book(&self, route: Option<RouteId>) -> &RouteBook {
        route
            .and_then(|r| self.routes.get(r.0))
            .unwrap_or(&self.passthrough)
    }

    pub fn costs(&self, input: &CostInput) -> Costs {
        let book = self.book(input.route);
        let answered = input.answered_by.and_then(|t| self.target_price(t));
        let hit = input.cache.is_hit();
        let (parts, price_unknown) = match (hit, input.answered_by, answered) {
            (true, ..) | (false, None, _) => (Some(CostParts::default()), false),
            (false, Some(_), Some(p)) => (Some(p.parts(input.usage)), false),
            (false, Some(_), None) => (None, true),
        };
        let cost_usd = parts.map(|p| p.total());
        let reference = book.reference.as_ref().map(|(_, p)| *p);
        let cost_avoided_usd = if book.mode == Mode::Observe || input.answered_by.is_none() && !hit
        {
            Some(0.0)
        } else if hit {
            reference
                .or(answered)
                .or(book.default_price)
                .map(|p| p.cost(input.usage))
        } else {
            match reference {
                None => Some(0.0),
                Some(r) => cost_usd.map(|c| r.cost(input.usage) - c),
            }
        };
        Costs {
            cost_usd,
            parts,
            cost_avoided_usd,
            price_unknown,
        }
    }
}

/// A reference model: a target by `provider/model`, a configured model name, or a model of the
/// price map or the built-in table.
fn reference_price(
    config: &Config,
    targets: &[Option<ModelPrice>],
    map: Option<&PriceMap>,
    name: &str,
) -> Option<ModelPrice> {
    if let Some(i) = config.targets.iter().position(|t| t.name == name) {
        return targets[i];
    }
    if let Some(t) = config.targets_for_model(name).next() {
        if let Some(p) = targets[t.0] {
            return Some(p);
        }
    }
    model_price(map, name).0
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
        [providers.openai]
        kind = "openai"
        base_url = "http://127.0.0.1:1"
        models."gpt-4o-mini" = {}
        models."gpt-4o" = { input_per_mtok = 2.0 }
        models."my-finetune" = {}
        [providers.anthropic]
        kind = "anthropic"
        base_url = "http://127.0.0.1:1"
        models."claude-3-haiku-20240307" = {}
        [routes.chat]
        tiers.cheap = ["openai/gpt-4o-mini", "anthropic/claude-3-haiku-20240307"]
        tiers.premium = ["openai/gpt-4o", "openai/my-finetune"]
        [routes.plain]
        tiers.only = ["openai/gpt-4o-mini"]
    "#;

    fn setup(reference: Option<&str>, mode: Mode) -> (Config, Accountant) {
        let cfg = Config::parse(CONFIG, "test").unwrap();
        let routes = vec![
            RouteAccounting {
                reference_model: reference.map(str::to_owned),
                mode,
            },
            RouteAccounting::default(),
        ];
        let acc = Accountant::new(&cfg, &AccountingSettings::default(), &routes, None).unwrap();
        (cfg, acc)
    }

    fn target(cfg: &Config, name: &str) -> TargetId {
        TargetId(cfg.targets.iter().position(|t| t.name == name).unwrap())
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn cost_math_and_overrides() {
        let p = ModelPrice {
            input_per_mtok: 2.5,
            output_per_mtok: 10.0,
            cached_input_per_mtok: 1.25,
            cache_write_per_mtok: 3.125,
            cache_write_1h_per_mtok: 5.0,
            reasoning_per_mtok: 10.0,
        };
        assert_eq!(p.cost(TokenUsage::new(1_000_000, 0)), 2.5);
        assert_eq!(p.cost(TokenUsage::new(1000, 500)), 0.0025 + 0.005);
        let cached = TokenUsage {
            cache_read: 400,
            ..TokenUsage::new(1000, 0)
        };
        assert!((p.cost(cached) - (600.0 * 2.5 + 400.0 * 1.25) / 1e6).abs() < 1e-15);
        // Every part: 1000 in = 500 uncached + 300 read + 200 written (50 for an hour); 100 out.
        let u = TokenUsage {
            input: 1000,
            output: 100,
            cache_read: 300,
            cache_write: 200,
            cache_write_1h: 50,
            reasoning: 40,
        };
        let parts = p.parts(u);
        assert_eq!(parts.input_usd, 500.0 * 2.5 / 1e6);
        assert_eq!(parts.cache_read_usd, 300.0 * 1.25 / 1e6);
        assert!((parts.cache_write_usd - (150.0 * 3.125 + 50.0 * 5.0) / 1e6).abs() < 1e-18);
        assert_eq!(parts.output_usd, 60.0 * 10.0 / 1e6 + 40.0 * 10.0 / 1e6);
        let saved = 300.0 * (2.5 - 1.25) / 1e6 - (150.0 * (3.125 - 2.5) + 50.0 * (5.0 - 2.5)) / 1e6;
        assert!((parts.provider_cache_saved_usd - saved).abs() < 1e-18);
        assert_eq!(p.cost(u), parts.total());
        // A reasoning price of its own.
        let r = ModelPrice {
            reasoning_per_mtok: 20.0,
            ..p
        };
        assert_eq!(r.parts(u).output_usd, 60.0 * 10.0 / 1e6 + 40.0 * 20.0 / 1e6);

        let (cfg, acc) = setup(None, Mode::Gateway);
        // Config field overrides the table field; the rest comes from the table.
        let gpt4o = acc.target_price(target(&cfg, "openai/gpt-4o")).unwrap();
        assert_eq!(
            (
                gpt4o.input_per_mtok,
                gpt4o.output_per_mtok,
                gpt4o.cached_input_per_mtok
            ),
            (2.0, 10.0, 1.25)
        );
        let haiku = acc
            .target_price(target(&cfg, "anthropic/claude-3-haiku-20240307"))
            .unwrap();
        assert_eq!(haiku.input_per_mtok, 0.25);
        let unpriced: Vec<_> = acc.unpriced_targets().collect();
        assert_eq!(unpriced, vec![target(&cfg, "openai/my-finetune")]);
    }

    #[test]
    fn unknown_price_is_unknown_not_zero() {
        let (cfg, acc) = setup(None, Mode::Gateway);
        let c = acc.costs(&CostInput {
            route: cfg.route("chat"),
            answered_by: Some(target(&cfg, "openai/my-finetune")),
            cache: CacheOutcome::Miss,
            usage: TokenUsage::new(100, 100),
        });
        assert_eq!(c.cost_usd, None);
        assert!(c.price_unknown);
    }

    #[test]
    fn avoided_for_hits_and_cheaper_tiers() {
        let usage = TokenUsage::new(1000, 200);
        let (cfg, acc) = setup(Some("openai/gpt-4o"), Mode::Gateway);
        let chat = cfg.route("chat");
        // Reference gpt-4o as configured: input 2.0 (override), output 10.0.
        let reference = (1000.0 * 2.0 + 200.0 * 10.0) / 1e6;
        let hit = acc.costs(&CostInput {
            route: chat,
            answered_by: None,
            cache: CacheOutcome::HitSemantic,
            usage,
        });
        assert_eq!(hit.cost_usd, Some(0.0));
        assert!(close(hit.cost_avoided_usd, reference));

        let mini = target(&cfg, "openai/gpt-4o-mini");
        let actual = (1000.0 * 0.15 + 200.0 * 0.60) / 1e6;
        let cheap = acc.costs(&CostInput {
            route: chat,
            answered_by: Some(mini),
            cache: CacheOutcome::Miss,
            usage,
        });
        assert!(close(cheap.cost_usd, actual));
        assert!(close(cheap.cost_avoided_usd, reference - actual));

        // No reference: a hit falls back to the default tier's first target, a miss saves 0.
        let plain = cfg.route("plain");
        let hit = acc.costs(&CostInput {
            route: plain,
            answered_by: None,
            cache: CacheOutcome::HitExact,
            usage,
        });
        assert!(close(hit.cost_avoided_usd, actual));
        let miss = acc.costs(&CostInput {
            route: plain,
            answered_by: Some(mini),
            cache: CacheOutcome::Miss,
            usage,
        });
        assert_eq!(miss.cost_avoided_usd, Some(0.0));

        // Observe mode claims nothing; a failed request costs and saves nothing.
        let (cfg, acc) = setup(Some("gpt-4o"), Mode::Observe);
        assert_eq!(acc.mode(cfg.route("chat")), Mode::Observe);
        let c = acc.costs(&CostInput {
            route: cfg.route("chat"),
            answered_by: Some(mini),
            cache: CacheOutcome::Off,
            usage,
        });
        assert_eq!(c.cost_avoided_usd, Some(0.0));
        let failed = acc.costs(&CostInput {
            route: None,
            answered_by: None,
            cache: CacheOutcome::Miss,
            usage: TokenUsage::default(),
        });
        assert_eq!(
            (failed.cost_usd, failed.cost_avoided_usd),
            (Some(0.0), Some(0.0))
        );
    }

    #[test]
    fn references_resolve_by_target_model_or_table_and_errors_name_the_path() {
        let (_, acc) = setup(Some("claude-3-5-sonnet-20241022"), Mode::Gateway);
        assert_eq!(
            acc.reference_model(Some(RouteId(0))),
            Some("claude-3-5-sonnet-20241022")
        );
        let cfg = Config::parse(CONFIG, "test").unwrap();
        let bad = vec![
            RouteAccounting {
                reference_model: Some("nope-1".into()),
                mode: Mode::Gateway,
            },
            RouteAccounting::default(),
        ];
        let err = Accountant::new(&cfg, &AccountingSettings::default(), &bad, None).unwrap_err();
        assert!(
            err[0].starts_with("routes.chat.reference_model:"),
            "{err:?}"
        );
        let err = Accountant::new(&cfg, &AccountingSettings::default(), &[], None).unwrap_err();
        assert!(err[0].contains("0 route settings for 2 routes"), "{err:?}");
    }

    #[test]
    fn config_over_map_over_table_with_origins() {
        let cfg = Config::parse(CONFIG, "test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("map.json");
        std::fs::write(
            &file,
            r#"{"gpt-4o": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.2e-05,
                           "cache_read_input_token_cost": 1.5e-06},
                "gpt-4o-mini": {"input_cost_per_token": 2e-07, "output_cost_per_token": 8e-07}}"#,
        )
        .unwrap();
        let map = PriceMap::read(&file, "config").unwrap();
        let routes = vec![RouteAccounting::default(); 2];
        let acc =
            Accountant::new(&cfg, &AccountingSettings::default(), &routes, Some(&map)).unwrap();
        let price = |n| acc.target_price(target(&cfg, n)).unwrap();
        let origin = |n| acc.target_origin(target(&cfg, n)).unwrap().clone();
        // gpt-4o: input from the config, the rest from the map.
        let p = price("openai/gpt-4o");
        assert_eq!(
            (p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok),
            (2.0, 12.0, 1.5)
        );
        let o = origin("openai/gpt-4o");
        assert_eq!(
            (o.source(), o.config.clone()),
            ("map+config", vec!["input"])
        );
        assert_eq!(
            o.detail(),
            "map gpt-4o; config: input; derived: cache_write, cache_write_1h, reasoning"
        );
        // gpt-4o-mini: the map has no cache-read price: input price, derived (never 0).
        let p = price("openai/gpt-4o-mini");
        assert_eq!((p.input_per_mtok, p.cached_input_per_mtok), (0.2, 0.2));
        assert_eq!(origin("openai/gpt-4o-mini").source(), "map");
        // Claude is not in this map: the built-in table, its cache writes included.
        let p = price("anthropic/claude-3-haiku-20240307");
        assert_eq!(
            (p.cache_write_per_mtok, p.cache_write_1h_per_mtok),
            (0.30, 0.5)
        );
        let o = origin("anthropic/claude-3-haiku-20240307");
        assert_eq!(o.source(), "built-in");
        assert_eq!(o.base, Some(PriceBase::BuiltIn("claude-3-haiku")));
        let o = origin("openai/my-finetune");
        assert!(o.unknown && o.source() == "unknown", "{o:?}");
        assert_eq!(acc.price_map().unwrap().models, 2);
    }

    #[test]
    fn anthropic_targets_derive_anthropic_cache_write_prices() {
        let (p, derived) = resolve(
            Price {
                input_per_mtok: Some(4.0),
                output_per_mtok: Some(20.0),
                ..Price::default()
            },
            Price::default(),
            true,
        );
        let p = p.unwrap();
        assert_eq!(
            (
                p.cached_input_per_mtok,
                p.cache_write_per_mtok,
                p.cache_write_1h_per_mtok
            ),
            (4.0, 5.0, 8.0)
        );
        assert_eq!(
            derived,
            ["cached_input", "cache_write", "cache_write_1h", "reasoning"]
        );
        let (p, _) = resolve(Price::default(), Price::default(), true);
        assert!(p.is_none());
    }
}
