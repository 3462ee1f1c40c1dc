//! Token usage as upstreams report it, and the counts that price a call.
//!
//! [`Usage`] is OpenAI's `usage` object kept whole: the three totals are typed, every other field
//! (`prompt_tokens_details`, `completion_tokens_details`, what other OpenAI-compatible servers
//! add) stays in `extra` exactly as the upstream sent it, so clients, the cache and cache replays
//! see it unchanged. [`Usage::tokens`] reads the details that change the price of a call, under
//! the names the common servers use:
//!
//! | count | read from (first present wins) |
//! |---|---|
//! | cache reads | `prompt_tokens_details.cached_tokens` (OpenAI, xAI, OpenRouter), `cache_read_input_tokens` (LiteLLM, Anthropic mapped), `prompt_cache_hit_tokens` (DeepSeek) |
//! | cache writes | `prompt_tokens_details.cache_write_tokens` (OpenRouter), `prompt_tokens_details.cache_creation_tokens` (LiteLLM), `cache_creation_input_tokens` |
//! | of which 1-hour writes | `cache_creation.ephemeral_1h_input_tokens` (Anthropic's, kept by the mapping), `prompt_tokens_details.cache_creation_token_details.ephemeral_1h_input_tokens` (LiteLLM) |
//! | reasoning | `completion_tokens_details.reasoning_tokens` |
//!
//! Upstream numbers are not trusted: counts saturate at `u32::MAX` instead of wrapping or failing
//! the answer, and the parts are clamped so that they never exceed their whole.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// OpenAI's `usage` object. Prompt tokens include cache reads and writes; completion tokens
/// include reasoning.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Usage {
    #[serde(default, deserialize_with = "saturating_count")]
    pub prompt_tokens: u32,
    #[serde(default, deserialize_with = "saturating_count")]
    pub completion_tokens: u32,
    #[serde(default, deserialize_with = "saturating_count")]
    pub total_tokens: u32,
    /// Every other field (the details objects included), as the upstream sent it.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The counts that price one call. Invariants, kept by [`Usage::tokens`] and [`TokenUsage::new`]:
/// `cache_read + cache_write <= input`, `cache_write_1h <= cache_write`, `reasoning <= output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Every prompt token, cache reads and writes included (OpenAI's `prompt_tokens`).
    pub input: u32,
    /// Every generated token, reasoning included (OpenAI's `completion_tokens`).
    pub output: u32,
    /// Prompt tokens read from the provider's prompt cache.
    pub cache_read: u32,
    /// Prompt tokens written to the provider's prompt cache.
    pub cache_write: u32,
    /// Of `cache_write`, those written with a one-hour lifetime (Anthropic bills them higher).
    pub cache_write_1h: u32,
    /// Of `output`, the model's hidden reasoning.
    pub reasoning: u32,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            extra: Map::new(),
        }
    }

    /// Two attempts' usage together (a resumed stream is billed for both): the totals summed,
    /// the details of the later attempt (the earlier one's are usually estimated).
    pub fn plus(&self, other: &Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
            total_tokens: self.total_tokens.saturating_add(other.total_tokens),
            extra: other.extra.clone(),
        }
    }

    /// The counts that price this call (see the module doc for the field names read).
    pub fn tokens(&self) -> TokenUsage {
        let top = |k: &str| self.extra.get(k).and_then(count_of);
        let prompt = self.extra.get("prompt_tokens_details");
        let completion = self.extra.get("completion_tokens_details");
        let cache_read = nested(prompt, &["cached_tokens"])
            .or_else(|| top("cache_read_input_tokens"))
            .or_else(|| top("prompt_cache_hit_tokens"));
        let cache_write = nested(prompt, &["cache_write_tokens"])
            .or_else(|| nested(prompt, &["cache_creation_tokens"]))
            .or_else(|| top("cache_creation_input_tokens"));
        let cache_write_1h = nested(
            self.extra.get("cache_creation"),
            &["ephemeral_1h_input_tokens"],
        )
        .or_else(|| {
            nested(
                prompt,
                &["cache_creation_token_details", "ephemeral_1h_input_tokens"],
            )
        });
        TokenUsage {
            input: self.prompt_tokens,
            output: self.completion_tokens,
            cache_read: cache_read.unwrap_or(0),
            cache_write: cache_write.unwrap_or(0),
            cache_write_1h: cache_write_1h.unwrap_or(0),
            reasoning: nested(completion, &["reasoning_tokens"]).unwrap_or(0),
        }
        .clamped()
    }
}

impl TokenUsage {
    pub fn new(input: u32, output: u32) -> Self {
        TokenUsage {
            input,
            output,
            ..TokenUsage::default()
        }
    }

    /// Prompt tokens neither read from nor written to the provider's cache.
    pub fn uncached_input(&self) -> u32 {
        self.input
            .saturating_sub(self.cache_read)
            .saturating_sub(self.cache_write)
    }

    pub fn total(&self) -> u64 {
        u64::from(self.input) + u64::from(self.output)
    }

    /// Parts cut to their wholes: reads first, then writes, out of the prompt.
    pub fn clamped(mut self) -> Self {
        self.cache_read = self.cache_read.min(self.input);
        self.cache_write = self.cache_write.min(self.input - self.cache_read);
        self.cache_write_1h = self.cache_write_1h.min(self.cache_write);
        self.reasoning = self.reasoning.min(self.output);
        self
    }
}

/// A count at `path` inside an optional JSON object.
fn nested(v: Option<&Value>, path: &[&str]) -> Option<u32> {
    let mut v = v?;
    for k in path {
        v = v.get(k)?;
    }
    count_of(v)
}

/// A JSON number as a token count: saturated into `u32`; negative numbers are 0; anything that
/// is not a number is no count.
pub fn count_of(v: &Value) -> Option<u32> {
    let n = v.as_number()?;
    Some(if let Some(u) = n.as_u64() {
        u32::try_from(u).unwrap_or(u32::MAX)
    } else if n.is_i64() {
        0
    } else {
        // A float: `as` saturates (NaN cannot occur in JSON).
        n.as_f64().map_or(0, |f| f as u32)
    })
}

/// For `deserialize_with` on an upstream's token counts: a bogus figure (too large, negative,
/// fractional, `null`, not a number) becomes a bounded count instead of failing the whole answer.
pub fn saturating_count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(count_of(&Value::deserialize(d)?).unwrap_or(0))
}

/// [`saturating_count`] for an optional count: absent, `null` or not a number is `None`.
pub fn saturating_count_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(count_of(&Value::deserialize(d)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usage(v: Value) -> Usage {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn openai_details_are_read_and_relayed_untouched() {
        let wire = json!({
            "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
            "some_future_field": {"x": [1, 2]}
        });
        let u = usage(wire.clone());
        assert_eq!(serde_json::to_value(&u).unwrap(), wire);
        assert_eq!(
            u.tokens(),
            TokenUsage {
                input: 2006,
                output: 300,
                cache_read: 1920,
                cache_write: 0,
                cache_write_1h: 0,
                reasoning: 192,
            }
        );
        assert_eq!(u.tokens().uncached_input(), 86);
    }

    #[test]
    fn other_servers_spellings() {
        // OpenRouter
        let t = usage(json!({"prompt_tokens": 194, "completion_tokens": 2,
            "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 100}}))
        .tokens();
        assert_eq!((t.cache_read, t.cache_write), (10, 100));
        // LiteLLM's mapping of Anthropic
        let t = usage(json!({"prompt_tokens": 500, "completion_tokens": 2,
            "cache_read_input_tokens": 300, "cache_creation_input_tokens": 50,
            "prompt_tokens_details": {"cache_creation_token_details":
                {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 30}}}))
        .tokens();
        assert_eq!(
            (t.cache_read, t.cache_write, t.cache_write_1h),
            (300, 50, 30)
        );
        // DeepSeek
        let t = usage(json!({"prompt_tokens": 90, "completion_tokens": 2,
            "prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 26}))
        .tokens();
        assert_eq!(t.cache_read, 64);
    }

    #[test]
    fn hostile_numbers_saturate_and_parts_never_exceed_their_whole() {
        let u = usage(
            json!({"prompt_tokens": 99_999_999_999u64, "completion_tokens": -5,
            "total_tokens": null,
            "prompt_tokens_details": {"cached_tokens": 1e30, "cache_write_tokens": 7},
            "completion_tokens_details": {"reasoning_tokens": 12}}),
        );
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (u32::MAX, 0, 0)
        );
        let t = u.tokens();
        assert_eq!((t.cache_read, t.cache_write, t.reasoning), (u32::MAX, 0, 0));
        let t = usage(json!({"prompt_tokens": 10, "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 8, "cache_write_tokens": 7},
            "completion_tokens_details": {"reasoning_tokens": "many"}}))
        .tokens();
        assert_eq!((t.cache_read, t.cache_write, t.reasoning), (8, 2, 0));
        assert_eq!(t.uncached_input(), 0);
        assert_eq!(Usage::new(u32::MAX, 3).total_tokens, u32::MAX);
    }
}
