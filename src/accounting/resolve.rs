//! Which price applies to a model: per field, the config's `price` fields win, then the price
//! map's entry for the model (`price_map`), else the built-in table's (`prices`); a field none of
//! them gives is derived by the rules of [`resolve`]. Each resolved price keeps its origin
//! ([`PriceOrigin`]: `sluice prices list`, `/v1/models`).

use serde::Serialize;

use super::price_map::PriceMap;
use super::prices::{self, ModelPrice};
use crate::config::{Config, Price, ProviderKind, TargetConfig};

/// Anthropic's cache-write prices as multiples of the input price (5 minutes, 1 hour), for an
/// Anthropic target whose sources give none.
const ANTHROPIC_CACHE_WRITE: (f64, f64) = (1.25, 2.0);

/// `config` over `base` (a map entry or the built-in table's), then what neither gives: cached
/// input at the input price (no discount known: the conservative choice), cache writes at the
/// input price and 1-hour writes at the 5-minute price (an Anthropic target: 1.25x and 2x the
/// input price, Anthropic's rule), reasoning at the output price. `None` without an input or
/// output price; also the names of the fields that were derived.
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
    let (x5m, x1h) = ANTHROPIC_CACHE_WRITE;
    let cached = field(p.cached_input_per_mtok, "cached_input", input);
    let write_rule = if anthropic { input * x5m } else { input };
    let write = field(p.cache_write_per_mtok, "cache_write", write_rule);
    let write_1h_rule = if anthropic { input * x1h } else { write };
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
pub(super) fn price_target(
    config: &Config,
    t: &TargetConfig,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::Accountant;
    use crate::config::{AccountingSettings, RouteAccounting, TargetId};

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
    "#;

    fn target(cfg: &Config, name: &str) -> TargetId {
        TargetId(cfg.targets.iter().position(|t| t.name == name).unwrap())
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
        let routes = vec![RouteAccounting::default()];
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
