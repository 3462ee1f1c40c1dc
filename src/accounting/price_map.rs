//! Prices from a maintained map in LiteLLM's format (`model_prices_and_context_window.json`,
//! the community-kept map that ships inside the `litellm` package): a JSON object keyed by model
//! name, each entry with prices in USD per token.
//!
//! Read: `input_cost_per_token`, `output_cost_per_token` (both needed for an entry to count),
//! `cache_read_input_token_cost`, `cache_creation_input_token_cost`,
//! `cache_creation_input_token_cost_above_1hr` and `output_cost_per_reasoning_token`. Other
//! fields (batch, priority and flex tiers, prompt-size tiers above 128k/200k/272k tokens, audio,
//! images, per-request fees) are not modelled: the standard tier's base prices apply. The
//! `sample_spec` entry (the format's own documentation) is skipped, so is any entry whose price
//! fields are not numbers >= 0.
//!
//! Two ways in, checked in this order at startup:
//! - `[accounting] price_map = "FILE"`: read as it is; the prices date from the moment the
//!   gateway read it.
//! - `sluice prices import FILE`: checked, reduced to the fields above (plus `litellm_provider`,
//!   `mode`, `max_input_tokens`, `max_output_tokens`) and written to `<data_dir>/price_map.json`
//!   with a `sluice_import` entry recording where it came from, its sha256 and when it was
//!   imported. That file is itself in LiteLLM's format.
//!
//! Lookup of a model id, first hit wins: the id itself, `<provider name>/<id>` (LiteLLM's keys
//! for third-party hosts: `groq/llama-3.1-8b-instant`), then the id's family name (provider
//! prefix, `-latest` and date suffixes removed, as the built-in table does). Case is ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Digest;

use super::prices;
use crate::config::{AccountingSettings, Price};

/// The imported map inside the data directory.
pub const IMPORTED_FILE: &str = "price_map.json";
/// The entry of an imported map that records the import.
const IMPORT_KEY: &str = "sluice_import";
/// LiteLLM's documentation entry.
const SAMPLE_KEY: &str = "sample_spec";
/// LiteLLM's price fields (USD per token), in the order of `Price::fields`.
const PRICE_FIELDS: [&str; 6] = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "cache_creation_input_token_cost_above_1hr",
    "output_cost_per_reasoning_token",
];
/// Fields an import keeps besides the prices: what the entry is.
const KEPT_FIELDS: [&str; 4] = [
    "litellm_provider",
    "mode",
    "max_input_tokens",
    "max_output_tokens",
];
/// Problems listed by name before the rest are only counted.
const MAX_LISTED: usize = 5;

/// Where a map came from and when its prices were loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MapOrigin {
    /// The file given to `sluice prices import`, or `[accounting] price_map`.
    pub source: String,
    /// The file the gateway reads (the imported copy in the data directory, or `source`).
    pub file: String,
    /// `import` or `config`.
    pub via: &'static str,
    /// When the prices were loaded: the import, or (for `[accounting] price_map`) the moment
    /// this process read the file. Unix ms.
    pub loaded_at_ms: u64,
    /// sha256 of the source file as read.
    pub sha256: String,
    /// When the source file was last modified (unix ms), if the file system says.
    pub modified_ms: Option<u64>,
    /// Entries with an input and an output price.
    pub models: usize,
    /// Entries without them, or with a price that is not a number >= 0.
    pub skipped: usize,
}

impl MapOrigin {
    /// One line: `price map FILE (import of SOURCE, 2025-12-07 03:31 UTC, 3,923 models)`.
    pub fn describe(&self) -> String {
        let from = if self.via == "import" {
            format!("imported from {}", self.source)
        } else {
            "[accounting] price_map".to_owned()
        };
        let modified = self.modified_ms.map_or(String::new(), |m| {
            format!(", file of {}", super::format_utc_ms(m))
        });
        format!(
            "price map {} ({from}{modified}, loaded {}, {} models, sha256 {})",
            self.file,
            super::format_utc_ms(self.loaded_at_ms),
            self.models,
            &self.sha256[..self.sha256.len().min(12)]
        )
    }
}

#[derive(Debug, Clone)]
pub struct PriceMap {
    /// Lower-cased key -> (key as written, price).
    entries: HashMap<String, (String, Price)>,
    pub origin: MapOrigin,
    /// Entries skipped for a bad price value (listed up to [`MAX_LISTED`]).
    pub problems: Vec<String>,
}

impl PriceMap {
    /// The map a gateway with these settings uses: `[accounting] price_map`, else the imported
    /// one in `data_dir`, else none.
    pub fn load(
        settings: &AccountingSettings,
        data_dir: &Path,
    ) -> Result<Option<PriceMap>, String> {
        if let Some(path) = &settings.price_map {
            return Self::read(path, "config").map(Some);
        }
        let imported = data_dir.join(IMPORTED_FILE);
        if imported.is_file() {
            return Self::read(&imported, "import").map(Some);
        }
        Ok(None)
    }

    /// Reads a map file (the `sluice_import` entry, if any, says where it came from).
    pub fn read(path: &Path, via: &'static str) -> Result<PriceMap, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("price map {}: {e}", path.display()))?;
        let shown = path.display().to_string();
        let (mut map, _) = Self::parse(&bytes, &shown, via)?;
        if via == "config" {
            map.origin.modified_ms = modified_ms(path);
        }
        Ok(map)
    }

    /// `sluice prices import`: check `source`, then write its prices to `<data_dir>/price_map.json`
    /// (atomically: a running gateway or a concurrent import never reads half a file).
    pub fn import(source: &Path, data_dir: &Path) -> Result<PriceMap, String> {
        let bytes =
            std::fs::read(source).map_err(|e| format!("price map {}: {e}", source.display()))?;
        let shown = std::fs::canonicalize(source)
            .unwrap_or_else(|_| source.to_owned())
            .display()
            .to_string();
        let (mut map, mut kept) = Self::parse(&bytes, &shown, "import")?;
        map.origin.modified_ms = modified_ms(source);
        let target = data_dir.join(IMPORTED_FILE);
        map.origin.file = target.display().to_string();
        map.origin.loaded_at_ms = super::unix_ms_now();
        let meta = serde_json::to_value(&map.origin).map_err(|e| e.to_string())?;
        kept.insert(IMPORT_KEY.to_owned(), meta);
        std::fs::create_dir_all(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let tmp: PathBuf = data_dir.join(format!(".{IMPORTED_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(&kept).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &target))
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        Ok(map)
    }

    /// Parses a map; also returns the usable entries reduced to the fields an import keeps.
    fn parse(
        bytes: &[u8],
        file: &str,
        via: &'static str,
    ) -> Result<(PriceMap, Map<String, Value>), String> {
        let all: Map<String, Value> = serde_json::from_slice(bytes).map_err(|e| {
            format!("price map {file}: not a JSON object of models (LiteLLM's format): {e}")
        })?;
        let mut origin = MapOrigin {
            source: file.to_owned(),
            file: file.to_owned(),
            via,
            loaded_at_ms: super::unix_ms_now(),
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            modified_ms: None,
            models: 0,
            skipped: 0,
        };
        let mut entries = HashMap::with_capacity(all.len());
        let mut kept = Map::new();
        let mut problems = Vec::new();
        let mut imported_skipped = None;
        for (key, v) in &all {
            if key == SAMPLE_KEY {
                continue;
            }
            if key == IMPORT_KEY {
                // A map written by `sluice prices import`: its origin is the import's.
                if let Some(o) = v.as_object() {
                    let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
                    origin.source = text("source").unwrap_or(origin.source);
                    origin.sha256 = text("sha256").unwrap_or(origin.sha256);
                    if let Some(t) = o.get("loaded_at_ms").and_then(Value::as_u64) {
                        origin.loaded_at_ms = t;
                    }
                    imported_skipped = o.get("skipped").and_then(Value::as_u64);
                    origin.modified_ms = o.get("modified_ms").and_then(Value::as_u64);
                }
                continue;
            }
            match entry_price(v) {
                Ok(Some(price)) => {
                    entries.insert(key.to_ascii_lowercase(), (key.clone(), price));
                    kept.insert(key.clone(), reduced(v));
                }
                Ok(None) => origin.skipped += 1,
                Err(e) => {
                    origin.skipped += 1;
                    if problems.len() < MAX_LISTED {
                        problems.push(format!("{key}: {e}"));
                    }
                }
            }
        }
        origin.models = entries.len();
        if let Some(n) = imported_skipped {
            // The import dropped them; the count is the source file's.
            origin.skipped = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if entries.is_empty() {
            return Err(format!(
                "price map {file}: no entry has both input_cost_per_token and \
                 output_cost_per_token (is it LiteLLM's model_prices_and_context_window.json?)"
            ));
        }
        Ok((
            PriceMap {
                entries,
                origin,
                problems,
            },
            kept,
        ))
    }

    /// The price of a model id, and the key it was found under (see the module doc).
    pub fn lookup(&self, provider: Option<&str>, model: &str) -> Option<(&str, Price)> {
        let id = model.trim().to_ascii_lowercase();
        let get = |k: &str| self.entries.get(k).map(|(key, p)| (key.as_str(), *p));
        get(&id)
            .or_else(|| provider.and_then(|p| get(&format!("{}/{id}", p.to_ascii_lowercase()))))
            .or_else(|| get(&prices::normalize(&id)))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A file's modification time, unix ms.
fn modified_ms(path: &Path) -> Option<u64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

/// An entry's price per 1M tokens: `None` when it has no input or output token price (images,
/// per-second audio, ...); an error when a price field is not a number >= 0.
fn entry_price(v: &Value) -> Result<Option<Price>, String> {
    let Some(o) = v.as_object() else {
        return Ok(None);
    };
    let mut fields = [None; 6];
    for (slot, name) in fields.iter_mut().zip(PRICE_FIELDS) {
        *slot = match o.get(name) {
            None | Some(Value::Null) => None,
            Some(x) => match x.as_f64() {
                Some(f) if f.is_finite() && f >= 0.0 => Some(per_mtok(f)),
                _ => return Err(format!("{name} = {x} is not a price")),
            },
        };
    }
    let [input, output, cached, write, write_1h, reasoning] = fields;
    if input.is_none() || output.is_none() {
        return Ok(None);
    }
    Ok(Some(Price {
        input_per_mtok: input,
        output_per_mtok: output,
        cached_input_per_mtok: cached,
        cache_write_per_mtok: write,
        cache_write_1h_per_mtok: write_1h,
        reasoning_per_mtok: reasoning,
    }))
}

/// USD per token -> USD per 1M tokens, rounded to 1e-9 so that `1.5e-07` shows as `0.15`.
fn per_mtok(per_token: f64) -> f64 {
    (per_token * 1e6 * 1e9).round() / 1e9
}

/// The fields of an entry an import keeps.
fn reduced(v: &Value) -> Value {
    let mut out = Map::new();
    if let Some(o) = v.as_object() {
        for k in PRICE_FIELDS.iter().chain(&KEPT_FIELDS) {
            if let Some(x) = o.get(*k) {
                out.insert((*k).to_owned(), x.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "sample_spec": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
                            "litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
            "gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,
                            "cache_read_input_token_cost": 7.5e-08, "litellm_provider": "openai",
                            "mode": "chat", "max_input_tokens": 128000, "supports_vision": true},
            "claude-sonnet-4-5": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                            "cache_read_input_token_cost": 3e-07,
                            "cache_creation_input_token_cost": 3.75e-06,
                            "cache_creation_input_token_cost_above_1hr": 6e-06,
                            "litellm_provider": "anthropic", "mode": "chat"},
            "groq/llama-3.1-8b-instant": {"input_cost_per_token": 5e-08,
                            "output_cost_per_token": 8e-08, "litellm_provider": "groq"},
            "dall-e-3": {"output_cost_per_image": 0.04, "mode": "image_generation"},
            "broken": {"input_cost_per_token": "free", "output_cost_per_token": 1e-06}
        })
    }

    #[test]
    fn reads_litellm_entries_and_skips_the_rest() {
        let bytes = serde_json::to_vec(&sample()).unwrap();
        let (m, kept) = PriceMap::parse(&bytes, "x.json", "config").unwrap();
        assert_eq!((m.origin.models, m.origin.skipped), (3, 2));
        assert!(
            m.problems[0].starts_with("broken: input_cost_per_token"),
            "{:?}",
            m.problems
        );
        let (key, p) = m.lookup(None, "GPT-4o-mini").unwrap();
        assert_eq!(key, "gpt-4o-mini");
        assert_eq!(
            (p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok),
            (Some(0.15), Some(0.6), Some(0.075))
        );
        assert_eq!(p.cache_write_per_mtok, None);
        // Date suffixes and provider prefixes find the family entry.
        let (key, p) = m
            .lookup(None, "anthropic/claude-sonnet-4-5-20250929")
            .unwrap();
        assert_eq!(key, "claude-sonnet-4-5");
        assert_eq!(
            (p.cache_write_per_mtok, p.cache_write_1h_per_mtok),
            (Some(3.75), Some(6.0))
        );
        // A third-party host's key by provider name.
        assert_eq!(
            m.lookup(Some("groq"), "llama-3.1-8b-instant").unwrap().0,
            "groq/llama-3.1-8b-instant"
        );
        assert!(m.lookup(None, "llama-3.1-8b-instant").is_none());
        assert!(m.lookup(None, "dall-e-3").is_none());
        // What an import keeps.
        assert_eq!(kept.len(), 3);
        assert!(kept["gpt-4o-mini"].get("supports_vision").is_none());
        assert_eq!(kept["gpt-4o-mini"]["max_input_tokens"], 128000);
    }

    #[test]
    fn an_import_is_a_map_that_remembers_where_and_when() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("prices.json");
        std::fs::write(&src, serde_json::to_vec(&sample()).unwrap()).unwrap();
        let data = dir.path().join("data");
        let before = crate::accounting::unix_ms_now();
        let imported = PriceMap::import(&src, &data).unwrap();
        assert!(imported.origin.loaded_at_ms >= before);
        let settings = AccountingSettings::default();
        let back = PriceMap::load(&settings, &data).unwrap().unwrap();
        assert_eq!(back.origin, imported.origin);
        assert_eq!(back.origin.via, "import");
        assert!(back.origin.source.ends_with("prices.json"));
        assert_eq!(back.len(), 3);
        assert!(back.origin.describe().contains("imported from"));
        assert!(back
            .origin
            .modified_ms
            .is_some_and(|m| m <= imported.origin.loaded_at_ms));
        // The config's map wins over the imported one.
        let configured = AccountingSettings {
            price_map: Some(src.clone()),
            ..AccountingSettings::default()
        };
        let m = PriceMap::load(&configured, &data).unwrap().unwrap();
        assert_eq!(m.origin.via, "config");
        // Not a map: a clear error, nothing written.
        std::fs::write(&src, b"[1, 2]").unwrap();
        let err = PriceMap::import(&src, &dir.path().join("other")).unwrap_err();
        assert!(err.contains("LiteLLM"), "{err}");
        assert!(!dir.path().join("other").join(IMPORTED_FILE).exists());
        assert!(PriceMap::load(&settings, &dir.path().join("none"))
            .unwrap()
            .is_none());
    }
}
