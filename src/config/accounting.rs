//! `[accounting]` and a route's accounting fields (`reference_model`, `mode`).

use serde::{Deserialize, Serialize};

/// `[accounting]`: gateway-wide audit settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountingSettings {
    /// Record every request in the audit store.
    pub enabled: bool,
    /// Records older than this are pruned (0 keeps them forever).
    pub retention_days: u32,
    /// `observe` puts the whole gateway in observe mode, whatever the routes say.
    pub mode: Mode,
    /// Keep each request's text (system prompt, earlier turns, last user turn) and a digest of
    /// its answer in the audit record, for `sluice audit export --format workload` (a what-if
    /// replay of real traffic through the cache). Off by default: prompts can hold personal
    /// or confidential data.
    pub log_prompts: bool,
    /// A price map in LiteLLM's format (`model_prices_and_context_window.json`), read at startup:
    /// for the models it has, its prices win over the built-in table (config prices win over
    /// both). Without it, the map last imported with `sluice prices import` into the data
    /// directory is used, if any.
    pub price_map: Option<std::path::PathBuf>,
}

impl Default for AccountingSettings {
    fn default() -> Self {
        AccountingSettings {
            enabled: true,
            retention_days: DEFAULT_RETENTION_DAYS,
            mode: Mode::Gateway,
            log_prompts: false,
            price_map: None,
        }
    }
}

pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// A route's accounting settings (`routes.<name>.reference_model`, `routes.<name>.mode`); the
/// gateway-wide value applies to pass-through requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteAccounting {
    /// What the route's traffic would cost without Sluice: `provider/model` of a configured
    /// target, a configured model name, or a model of the built-in price table. Savings of cache
    /// hits and cheaper tiers are measured against it.
    pub reference_model: Option<String>,
    pub mode: Mode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Cache, route and fail over.
    #[default]
    Gateway,
    /// Pass calls through to the requested model untouched, cache nothing, only record: the
    /// audit baseline. Nothing is saved, so cost avoided is 0.
    Observe,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_defaults_and_unknown_fields() {
        let s: AccountingSettings = toml::from_str("").unwrap();
        assert_eq!(s, AccountingSettings::default());
        assert_eq!(s.retention_days, 90);
        assert!(s.enabled);
        assert!(toml::from_str::<AccountingSettings>("retention = 3").is_err());

        let r: RouteAccounting =
            toml::from_str("reference_model = \"openai/gpt-4o\"\nmode = \"observe\"").unwrap();
        assert_eq!(r.mode, Mode::Observe);
        assert_eq!(r.reference_model.as_deref(), Some("openai/gpt-4o"));
        assert_eq!(
            toml::from_str::<RouteAccounting>("").unwrap().mode,
            Mode::Gateway
        );
        assert!(toml::from_str::<RouteAccounting>("mode = \"shadow\"").is_err());
    }
}
