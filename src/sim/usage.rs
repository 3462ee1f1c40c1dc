//! The usage the mock reports, in each provider's current shape, and the tokens that fill in its
//! details (see `faults` for how tokens reach a request):
//!
//! | token | OpenAI answer | Anthropic answer |
//! |---|---|---|
//! | `cached-<n>` | `prompt_tokens_details.cached_tokens` | `cache_read_input_tokens` |
//! | `cache-write-<n>` | `prompt_tokens_details.cache_write_tokens` (OpenRouter's name) | `cache_creation_input_tokens`, as 5-minute writes |
//! | `cache-write-1h-<n>` | added to `cache_write_tokens` | `cache_creation_input_tokens`, as 1-hour writes |
//! | `reasoning-<n>` | `completion_tokens_details.reasoning_tokens`, added to `completion_tokens` | added to `output_tokens` (Anthropic does not itemize thinking) |
//! | `extra-fields` | a field no API defines, `"x_mock"`, on the response, each choice and the usage | `"x_mock"` in the usage |
//!
//! The prompt's size is the request's estimate; cache reads come out of it first, then writes,
//! and the rest is uncached input. Without tokens the details are there with zeros, as the
//! providers send them today.

use serde_json::{json, Map, Value};

use crate::chat::Usage;
use crate::wire::anthropic;

/// The value of every `x_mock` field: where it was put.
pub(super) fn marker(level: &str) -> Value {
    Value::String(level.to_owned())
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct UsageTokens {
    pub cached: u32,
    pub cache_write: u32,
    pub cache_write_1h: u32,
    pub reasoning: u32,
    pub extra_fields: bool,
}

/// How a prompt splits: (uncached, cache reads, 5-minute writes, 1-hour writes).
type Split = (u32, u32, u32, u32);

impl UsageTokens {
    /// Takes `token` if it is one of the table's; false otherwise.
    pub fn apply(&mut self, token: &str) -> bool {
        let num = |prefix: &str| token.strip_prefix(prefix).and_then(|n| n.parse().ok());
        if token == "extra-fields" {
            self.extra_fields = true;
        } else if let Some(n) = num("cache-write-1h-") {
            self.cache_write_1h = n;
        } else if let Some(n) = num("cache-write-") {
            self.cache_write = n;
        } else if let Some(n) = num("cached-") {
            self.cached = n;
        } else if let Some(n) = num("reasoning-") {
            self.reasoning = n;
        } else {
            return false;
        }
        true
    }

    fn split(&self, prompt: u32) -> Split {
        let read = self.cached.min(prompt);
        let write_1h = self.cache_write_1h.min(prompt - read);
        let write = self.cache_write.min(prompt - read - write_1h);
        (prompt - read - write - write_1h, read, write, write_1h)
    }

    /// OpenAI's usage for a prompt of `prompt` tokens and an answer of `words` tokens.
    pub fn openai(&self, prompt: u32, words: u32) -> Usage {
        let (_, read, write, write_1h) = self.split(prompt);
        let mut u = Usage::new(prompt, words.saturating_add(self.reasoning));
        let mut details = json!({"cached_tokens": read, "audio_tokens": 0});
        if write + write_1h > 0 {
            details["cache_write_tokens"] = (write + write_1h).into();
        }
        u.extra.insert("prompt_tokens_details".into(), details);
        u.extra.insert(
            "completion_tokens_details".into(),
            json!({"reasoning_tokens": self.reasoning, "audio_tokens": 0,
                   "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}),
        );
        if self.extra_fields {
            u.extra.insert("x_mock".into(), marker("usage"));
        }
        u
    }

    /// Anthropic's usage for the same.
    pub fn anthropic(&self, prompt: u32, words: u32) -> anthropic::Usage {
        let (uncached, read, write, write_1h) = self.split(prompt);
        let mut extra = Map::new();
        extra.insert(
            "cache_creation".into(),
            json!({"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": write_1h}),
        );
        extra.insert("service_tier".into(), "standard".into());
        if self.extra_fields {
            extra.insert("x_mock".into(), marker("usage"));
        }
        anthropic::Usage {
            input_tokens: uncached,
            output_tokens: words.saturating_add(self.reasoning),
            cache_creation_input_tokens: Some(write + write_1h),
            cache_read_input_tokens: Some(read),
            extra,
        }
    }

    /// Unknown fields for a response or a choice (`extra-fields`), else none.
    pub fn extra(&self, level: &str) -> Map<String, Value> {
        let mut m = Map::new();
        if self.extra_fields {
            m.insert("x_mock".into(), marker(level));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_the_prompt_in_both_shapes() {
        let mut t = UsageTokens::default();
        for token in [
            "cached-60",
            "cache-write-30",
            "cache-write-1h-5",
            "reasoning-7",
        ] {
            assert!(t.apply(token), "{token}");
        }
        assert!(!t.apply("tokens-5"));
        let o = t.openai(100, 20);
        assert_eq!((o.prompt_tokens, o.completion_tokens), (100, 27));
        let tok = o.tokens();
        assert_eq!(
            (tok.cache_read, tok.cache_write, tok.reasoning),
            (60, 35, 7)
        );
        let a = t.anthropic(100, 20);
        assert_eq!(
            (
                a.input_tokens,
                a.cache_read_input_tokens,
                a.cache_creation_input_tokens
            ),
            (5, Some(60), Some(35))
        );
        assert_eq!(a.extra["cache_creation"]["ephemeral_1h_input_tokens"], 5);
        // More cache than prompt: reads first, then writes, never past the prompt.
        let a = t.anthropic(70, 1);
        assert_eq!(
            (
                a.input_tokens,
                a.cache_read_input_tokens,
                a.cache_creation_input_tokens
            ),
            (0, Some(60), Some(10))
        );
    }
}
