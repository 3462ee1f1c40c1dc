//! Usage -> cost, and the cost a request avoided.
//!
//! Prices are resolved once at startup ([`Accountant::new`]): for each target, every field of its
//! config `price` overrides the built-in table; a target with no input or output price at all has
//! an unknown cost (`None`, never 0), which the caller counts in a metric.
//!
//! Cost avoided, per request:
//! - mode `observe`: 0 (nothing was routed or cached).
//! - cache hit (exact or semantic): the cost of the answer's usage on the route's reference model;
//!   without one, on the target that produced the answer (`answered_by`), else on the first target
//!   of the route's default tier. The hit itself costs 0.
//! - answered upstream: reference cost minus actual cost (negative when a failover landed on a
//!   pricier model than the reference); 0 when the route has no reference model.
//! - nothing answered: 0.

use crate::chat::Usage;
use crate::config::{Config, Price, RouteId, TargetId};
use crate::outcome::CacheOutcome;

use super::prices::{self, ModelPrice};
use crate::config::{AccountingSettings, Mode, RouteAccounting};

/// Token counts of one request. `input` includes `cached_input` (OpenAI's convention).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: u32,
    pub output: u32,
    pub cached_input: u32,
}

impl TokenUsage {
    pub fn new(input: u32, output: u32) -> Self {
        TokenUsage {
            input,
            output,
            cached_input: 0,
        }
    }

    pub fn total(&self) -> u64 {
        u64::from(self.input) + u64::from(self.output)
    }
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> Self {
        TokenUsage::new(u.prompt_tokens, u.completion_tokens)
    }
}

impl ModelPrice {
    /// USD for `usage` at this price.
    pub fn cost(&self, usage: TokenUsage) -> f64 {
        let cached = usage.cached_input.min(usage.input);
        let fresh = usage.input - cached;
        (f64::from(fresh) * self.input_per_mtok
            + f64::from(cached) * self.cached_input_per_mtok
            + f64::from(usage.output) * self.output_per_mtok)
            / 1e6
    }
}

/// Config price fields override the table's, field by field. Without a cached-input price,
/// cached tokens are charged as input (the conservative choice).
pub fn resolve(config: Price, table: Option<ModelPrice>) -> Option<ModelPrice> {
    let input = config.input_per_mtok.or(table.map(|t| t.input_per_mtok))?;
    let output = config
        .output_per_mtok
        .or(table.map(|t| t.output_per_mtok))?;
    let cached = config
        .cached_input_per_mtok
        .or(table.map(|t| t.cached_input_per_mtok))
        .unwrap_or(input);
    Some(ModelPrice {
        input_per_mtok: input,
        output_per_mtok: output,
        cached_input_per_mtok: cached,
    })
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
    pub cost_avoided_usd: Option<f64>,
    /// The answering target has no price: count it (`Metrics` does, from the observation).
    pub price_unknown: bool,
}

/// Resolved prices of every target and the accounting settings of every route.
#[derive(Debug, Clone)]
pub struct Accountant {
    /// Indexed by `TargetId`.
    targets: Vec<Option<ModelPrice>>,
    /// Indexed by `RouteId`.
    routes: Vec<RouteBook>,
    passthrough: RouteBook,
}

#[derive(Debug, Clone)]
struct RouteBook {
    mode: Mode,
    reference: Option<(String, ModelPrice)>,
    /// First target of the default tier: the fallback reference of cache hits.
    default_price: Option<ModelPrice>,
}

impl Accountant {
    /// `routes` is indexed like `config.routes`. Errors name the config path of every
    /// reference model that cannot be priced.
    pub fn new(
        config: &Config,
        settings: &AccountingSettings,
        routes: &[RouteAccounting],
    ) -> Result<Accountant, Vec<String>> {
        let targets: Vec<Option<ModelPrice>> = config
            .targets
            .iter()
            .map(|t| {
                let table = prices::lookup(&t.upstream_model).or_else(|| prices::lookup(&t.model));
                resolve(t.price, table)
            })
            .collect();
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
                Some(name) => match reference_price(config, &targets, name) {
                    Some(p) => Some((name.to_owned(), p)),
                    None => {
                        problems.push(format!(
                            "routes.{}.reference_model: cannot price \"{name}\": it is neither a \
                             configured target with a price nor a model of the built-in price \
                             table (as of {})",
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
            routes: books,
            passthrough: RouteBook {
                mode: global_mode,
                reference: None,
                default_price: None,
            },
        })
    }

    pub fn target_price(&self, t: TargetId) -> Option<ModelPrice> {
        self.targets.get(t.0).copied().flatten()
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
        let (cost_usd, price_unknown) = match (hit, input.answered_by, answered) {
            (true, ..) | (false, None, _) => (Some(0.0), false),
            (false, Some(_), Some(p)) => (Some(p.cost(input.usage)), false),
            (false, Some(_), None) => (None, true),
        };
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
            cost_avoided_usd,
            price_unknown,
        }
    }
}

/// A reference model: a target by `provider/model`, a configured model name, or the table.
fn reference_price(
    config: &Config,
    targets: &[Option<ModelPrice>],
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
    prices::lookup(name)
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
        let acc = Accountant::new(&cfg, &AccountingSettings::default(), &routes).unwrap();
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
        };
        assert_eq!(p.cost(TokenUsage::new(1_000_000, 0)), 2.5);
        assert_eq!(p.cost(TokenUsage::new(1000, 500)), 0.0025 + 0.005);
        let cached = TokenUsage {
            input: 1000,
            output: 0,
            cached_input: 400,
        };
        assert!((p.cost(cached) - (600.0 * 2.5 + 400.0 * 1.25) / 1e6).abs() < 1e-15);

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
        let err = Accountant::new(&cfg, &AccountingSettings::default(), &bad).unwrap_err();
        assert!(
            err[0].starts_with("routes.chat.reference_model:"),
            "{err:?}"
        );
        let err = Accountant::new(&cfg, &AccountingSettings::default(), &[]).unwrap_err();
        assert!(err[0].contains("0 route settings for 2 routes"), "{err:?}");
    }
}
