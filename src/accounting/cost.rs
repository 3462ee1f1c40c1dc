//! Usage -> cost, and the cost a request avoided.
//!
//! Prices are resolved once at startup ([`Accountant::new`], with `resolve`), per target and per
//! field. A target with no input or output price at all has an unknown cost (`None`, never 0),
//! which the caller counts in a metric.
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
use super::resolve::{model_price, price_target, PriceOrigin};
use crate::config::{AccountingSettings, Config, Mode, RouteAccounting, RouteId, TargetId};
use crate::outcome::CacheOutcome;

pub use crate::chat::TokenUsage;

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

    /// (input, output) USD per token of every target, by `TargetId` (what routing weighs).
    pub fn per_token_prices(&self) -> Vec<Option<(f64, f64)>> {
        self.targets
            .iter()
            .map(|p| p.map(|p| (p.input_per_mtok / 1e6, p.output_per_mtok / 1e6)))
            .collect()
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
}
