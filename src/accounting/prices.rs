//! The built-in price table: list prices in USD per 1M tokens, standard (non-batch) tier, as
//! published by each vendor on [`PRICES_AS_OF`]. Never fetched from the network: a price change
//! is a code change, an imported price map (`price_map`, LiteLLM's format, which wins over this
//! table for the models it has) or a config override (which always wins).
//!
//! Caveats, kept here so nobody mistakes the table for a bill:
//! - `cached_input` is the price of a prompt-cache *read* (OpenAI "cached input", Anthropic
//!   "cache hits & refreshes", Gemini "context caching"). Anthropic's cache *writes* are 1.25x
//!   the input price (5-minute lifetime) and 2x (1 hour), for every Claude model but Haiku 3
//!   (writes $0.30).
//! - Gemini 2.5 Pro is priced at its <= 200k-token prompt tier.
//! - Lookup strips date suffixes, so an older snapshot (`gpt-3.5-turbo-0613`) gets the price of
//!   the family's current snapshot, which may differ from what that snapshot cost.

use crate::config::Price;

/// Date the prices below were checked against the vendors' pricing pages.
pub const PRICES_AS_OF: &str = "2025-08-15";

/// USD per 1M tokens, every field known (see `cost::resolve` for how missing fields are filled).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPrice {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_input_per_mtok: f64,
    /// Prompt tokens written to the provider's prompt cache (Anthropic's 5-minute writes).
    pub cache_write_per_mtok: f64,
    /// Prompt tokens written to the prompt cache for one hour (Anthropic).
    pub cache_write_1h_per_mtok: f64,
    /// Reasoning tokens, when a model bills them apart from its other output.
    pub reasoning_per_mtok: f64,
}

/// Input, output and cache-read price, nothing else known.
const fn p(input: f64, output: f64, cached: f64) -> Price {
    Price {
        input_per_mtok: Some(input),
        output_per_mtok: Some(output),
        cached_input_per_mtok: Some(cached),
        cache_write_per_mtok: None,
        cache_write_1h_per_mtok: None,
        reasoning_per_mtok: None,
    }
}

/// A Claude model: cache writes at 1.25x input (5 minutes) and 2x (1 hour), Anthropic's rule.
const fn claude(input: f64, output: f64, cached: f64) -> Price {
    Price {
        cache_write_per_mtok: Some(input * 1.25),
        cache_write_1h_per_mtok: Some(input * 2.0),
        ..p(input, output, cached)
    }
}

/// Names are lower case; lookups compare them with `.` and `-` treated alike, so
/// `claude-3.5-haiku` finds `claude-3-5-haiku`.
const TABLE: &[(&str, Price)] = &[
    // OpenAI (input, output, cached input)
    ("gpt-5", p(1.25, 10.00, 0.125)),
    ("gpt-5-mini", p(0.25, 2.00, 0.025)),
    ("gpt-5-nano", p(0.05, 0.40, 0.005)),
    ("gpt-4.1", p(2.00, 8.00, 0.50)),
    ("gpt-4.1-mini", p(0.40, 1.60, 0.10)),
    ("gpt-4.1-nano", p(0.10, 0.40, 0.025)),
    ("gpt-4o", p(2.50, 10.00, 1.25)),
    ("gpt-4o-mini", p(0.15, 0.60, 0.075)),
    ("o1", p(15.00, 60.00, 7.50)),
    ("o1-mini", p(1.10, 4.40, 0.55)),
    ("o3", p(2.00, 8.00, 0.50)),
    ("o3-mini", p(1.10, 4.40, 0.55)),
    ("o4-mini", p(1.10, 4.40, 0.275)),
    ("gpt-4-turbo", p(10.00, 30.00, 10.00)),
    ("gpt-4", p(30.00, 60.00, 30.00)),
    ("gpt-3.5-turbo", p(0.50, 1.50, 0.50)),
    // Anthropic (cached = cache read)
    ("claude-opus-4-1", claude(15.00, 75.00, 1.50)),
    ("claude-opus-4", claude(15.00, 75.00, 1.50)),
    ("claude-sonnet-4", claude(3.00, 15.00, 0.30)),
    ("claude-3-7-sonnet", claude(3.00, 15.00, 0.30)),
    ("claude-3-5-sonnet", claude(3.00, 15.00, 0.30)),
    ("claude-3-5-haiku", claude(0.80, 4.00, 0.08)),
    ("claude-3-opus", claude(15.00, 75.00, 1.50)),
    ("claude-3-sonnet", claude(3.00, 15.00, 0.30)),
    // The one exception to the 1.25x rule: Haiku 3 writes cost $0.30.
    (
        "claude-3-haiku",
        Price {
            cache_write_per_mtok: Some(0.30),
            ..claude(0.25, 1.25, 0.03)
        },
    ),
    // Google Gemini (<= 200k prompt tier)
    ("gemini-2.5-pro", p(1.25, 10.00, 0.31)),
    ("gemini-2.5-flash", p(0.30, 2.50, 0.075)),
    ("gemini-2.5-flash-lite", p(0.10, 0.40, 0.025)),
    ("gemini-2.0-flash", p(0.10, 0.40, 0.025)),
    ("gemini-2.0-flash-lite", p(0.075, 0.30, 0.075)),
    // Mistral (no prompt cache: cached = input)
    ("mistral-large", p(2.00, 6.00, 2.00)),
    ("mistral-medium", p(0.40, 2.00, 0.40)),
    ("mistral-small", p(0.10, 0.30, 0.10)),
    ("codestral", p(0.30, 0.90, 0.30)),
    ("mistral-nemo", p(0.15, 0.15, 0.15)),
    ("open-mistral-nemo", p(0.15, 0.15, 0.15)),
    ("ministral-8b", p(0.10, 0.10, 0.10)),
    ("ministral-3b", p(0.04, 0.04, 0.04)),
    // DeepSeek
    ("deepseek-chat", p(0.27, 1.10, 0.07)),
    ("deepseek-reasoner", p(0.55, 2.19, 0.14)),
];

/// Vendor aliases that are neither a table name nor one after suffix stripping.
const ALIASES: &[(&str, &str)] = &[
    ("claude-opus-4-0", "claude-opus-4"),
    ("claude-sonnet-4-0", "claude-sonnet-4"),
    ("claude-4-opus", "claude-opus-4"),
    ("claude-4-sonnet", "claude-sonnet-4"),
    ("chatgpt-4o", "gpt-4o"),
    ("gpt-4-turbo-preview", "gpt-4-turbo"),
];

/// The built-in price of `model` and the table name it matched, tolerant of provider prefixes
/// (`openai/gpt-4o`, `models/gemini-2.5-pro`, `anthropic.claude-3-haiku-20240307-v1:0`), date
/// suffixes (`-20240307`, `-2024-08-06`, `-0125`, `-2411`), `-latest` and `@date`.
pub fn lookup(model: &str) -> Option<(&'static str, Price)> {
    let name = normalize(model);
    let name = ALIASES
        .iter()
        .find(|(alias, _)| same(alias, &name))
        .map_or(name.as_str(), |(_, canonical)| canonical);
    TABLE
        .iter()
        .find(|(n, _)| same(n, name))
        .map(|&(n, price)| (n, price))
}

/// `.` and `-` compare equal (`gpt-4.1` vs `claude-3-5-haiku` spellings differ by vendor).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (matches!(x, b'.' | b'-') && matches!(y, b'.' | b'-')))
}

/// The family name of a model id: lower case, without provider prefix, `@`/`:` suffixes,
/// `-latest`, `-vN` and date suffixes (`anthropic.claude-3-haiku-20240307-v1:0` ->
/// `claude-3-haiku`).
pub fn normalize(model: &str) -> String {
    let mut s = model.trim().to_ascii_lowercase();
    if let Some(i) = s.rfind('/') {
        s.drain(..=i);
    }
    // Bedrock: `anthropic.claude-...-v1:0`; Vertex: `claude-...@20240307`.
    for vendor in ["anthropic.", "meta.", "mistral.", "amazon."] {
        if let Some(rest) = s.strip_prefix(vendor) {
            s = rest.to_owned();
        }
    }
    for sep in ['@', ':'] {
        if let Some(i) = s.find(sep) {
            s.truncate(i);
        }
    }
    strip_suffix_version(&mut s);
    strip_suffix_date(&mut s);
    s
}

/// `-latest`, `-v1`, `-preview` (when what remains is a known family).
fn strip_suffix_version(s: &mut String) {
    if let Some(rest) = s.strip_suffix("-latest") {
        s.truncate(rest.len());
    }
    if let Some(i) = s.rfind("-v") {
        if s.len() > i + 2 && s[i + 2..].bytes().all(|b| b.is_ascii_digit()) {
            s.truncate(i);
        }
    }
}

/// Trailing date-like groups: `-YYYYMMDD`, `-YYYY-MM-DD`, `-MMDD` / `-YYMM`, `-001`.
fn strip_suffix_date(s: &mut String) {
    loop {
        let Some(i) = s.rfind('-') else { return };
        let tail = &s[i + 1..];
        let is_date_part =
            matches!(tail.len(), 2..=4 | 8) && tail.bytes().all(|b| b.is_ascii_digit());
        // Never strip the family's own number (`gpt-4`, `claude-3`, `o1`): a date group is at
        // least 4 digits, or a 2-digit month/day following another digit group.
        let prev_is_digits = s[..i]
            .rsplit('-')
            .next()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !is_date_part || (tail.len() == 2 && !prev_is_digits) || i == 0 {
            return;
        }
        s.truncate(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(model: &str) -> Option<(f64, f64, f64)> {
        lookup(model).map(|(_, p)| {
            (
                p.input_per_mtok.unwrap(),
                p.output_per_mtok.unwrap(),
                p.cached_input_per_mtok.unwrap(),
            )
        })
    }

    #[test]
    fn exact_names_and_vendor_spellings() {
        assert_eq!(price("gpt-4o"), Some((2.50, 10.00, 1.25)));
        assert_eq!(price("gpt-4o-mini"), Some((0.15, 0.60, 0.075)));
        assert_eq!(price("GPT-4.1-nano"), Some((0.10, 0.40, 0.025)));
        assert_eq!(price("o3-mini"), Some((1.10, 4.40, 0.55)));
        assert_eq!(price("claude-3.5-haiku"), price("claude-3-5-haiku"));
        assert_eq!(price("claude-3-5-haiku").unwrap().0, 0.80);
        let (name, haiku) = lookup("claude-3-haiku-20240307").unwrap();
        assert_eq!(name, "claude-3-haiku");
        assert_eq!(
            (haiku.cache_write_per_mtok, haiku.cache_write_1h_per_mtok),
            (Some(0.30), Some(0.5))
        );
        assert_eq!(lookup("gpt-4o").unwrap().1.cache_write_per_mtok, None);
    }

    #[test]
    fn date_suffixes_and_prefixes_are_tolerated() {
        assert_eq!(price("claude-3-haiku-20240307"), Some((0.25, 1.25, 0.03)));
        assert_eq!(price("gpt-4o-2024-08-06"), price("gpt-4o"));
        assert_eq!(price("gpt-4o-mini-2024-07-18"), price("gpt-4o-mini"));
        assert_eq!(
            price("openai/gpt-4.1-mini-2025-04-14"),
            price("gpt-4.1-mini")
        );
        assert_eq!(
            price("anthropic/claude-sonnet-4-20250514"),
            price("claude-sonnet-4")
        );
        assert_eq!(price("claude-opus-4-1-20250805"), price("claude-opus-4-1"));
        assert_eq!(
            price("claude-3-7-sonnet-latest"),
            price("claude-3-7-sonnet")
        );
        assert_eq!(
            price("anthropic.claude-3-haiku-20240307-v1:0"),
            price("claude-3-haiku")
        );
        assert_eq!(
            price("claude-3-5-sonnet@20241022"),
            price("claude-3-5-sonnet")
        );
        assert_eq!(price("models/gemini-2.5-pro"), price("gemini-2.5-pro"));
        assert_eq!(price("gpt-3.5-turbo-0125"), price("gpt-3.5-turbo"));
        assert_eq!(price("mistral-large-2411"), price("mistral-large"));
        assert_eq!(price("o1-2024-12-17"), price("o1"));
        assert_eq!(price("gemini-2.0-flash-001"), price("gemini-2.0-flash"));
        assert_eq!(price("claude-sonnet-4-0"), price("claude-sonnet-4"));
    }

    #[test]
    fn family_numbers_are_not_dates_and_unknowns_stay_unknown() {
        // `gpt-4` must not become `gpt`, `claude-opus-4` must stay Opus 4 (not Opus 4.1).
        assert_eq!(price("gpt-4").unwrap().0, 30.00);
        assert_eq!(price("claude-opus-4").unwrap().0, 15.00);
        assert_eq!(price("gpt-4-turbo-2024-04-09"), price("gpt-4-turbo"));
        assert_eq!(price("my-finetune"), None);
        assert_eq!(price(""), None);
        assert_eq!(price("gpt-4o-mini-tts"), None);
        assert_eq!(price("2024"), None);
    }
}
