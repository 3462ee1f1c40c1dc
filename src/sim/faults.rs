//! Fault tokens: how a test steers the mock.
//!
//! Tokens come from the model name after the base name (`gpt-4o-mini+status-500-once+latency-50ms`)
//! and from the `x-mock-fault` header (comma-separated). A header token may name the model it is
//! for, `<model>:<token>` (`gpt-4o-mini:cut-after-5`): it then applies only to requests for that
//! base model, so one header can break a primary and leave its fallback healthy (the gateway
//! forwards the header to simulated providers only). Any token may end in `-once` (only the
//! first request for this model string) or `-times-<n>` (the first n requests); attempts are
//! counted per full model string. Unknown tokens are ignored.
//!
//! | token                      | effect                                                        |
//! |----------------------------|---------------------------------------------------------------|
//! | `status-<code>`            | answer with that status and the provider's error body         |
//! | `fail`                     | `status-500` (so `fail-once` = `status-500-once`)             |
//! | `flap-<ms>ms`              | 503 in alternating periods of <ms> from the model's first request (down, up, down, up, down), then healthy for good |
//! | `quota`                    | the provider's billing error (OpenAI: 429 `insufficient_quota`; Anthropic: 400 credit balance too low) |
//! | `retry-after-<secs>`       | with a 429: `Retry-After: <secs>`                             |
//! | `reset`                    | TCP reset, no response                                        |
//! | `stall-headers`            | never answer (until the server shuts down)                    |
//! | `latency-<ms>ms`, `slow-<ms>ms` | wait before the response headers                         |
//! | `pace-<ms>ms`              | stream: wait between chunks                                   |
//! | `slow-first-token-<ms>ms`  | stream: headers at once, first content chunk after the wait   |
//! | `cut-after-<n>`            | stream: n content chunks, then abort the body; non-stream: headers and half the body, then abort |
//! | `stall-after-<n>`          | stream: n content chunks, then hang (until shutdown)          |
//! | `malformed-after-<n>`      | stream: n content chunks, one invalid JSON event, clean end   |
//! | `malformed-at-<n>`         | stream: one invalid JSON event after n content chunks, then the rest of the stream |
//! | `malformed-run-<k>-at-<n>` | stream: k invalid JSON events in a row after n content chunks, then the rest |
//! | `unknown-at-<n>`           | stream: one well-formed event the protocol does not define after n content chunks |
//! | `no-done`                  | stream: everything but the terminator (`[DONE]` / `message_stop`) |
//! | `no-usage`                 | OpenAI stream: no usage chunk, even when `include_usage` asks for it |
//! | `no-prefill`               | 400 naming the assistant message when the request ends with one (a prefill) |
//! | `no-stream`                | OpenAI: answer a streaming request with one JSON completion    |
//! | `context-length`           | 400 context-length error                                      |
//! | `window-<n>`               | the same, only when the prompt estimate exceeds n tokens      |
//! | `content-filter`           | 400 content-policy error                                      |
//! | `tokens-<n>`               | the answer has n words (default 24)                           |
//! | `answer-<text>`            | the answer is exactly `<text>` (`_` for spaces), whatever the prompt |
//! | `cached-<n>`, `cache-write-<n>`, `cache-write-1h-<n>`, `reasoning-<n>`, `extra-fields` | usage details and unknown fields (see `usage`) |

use std::str::FromStr;

use super::usage::UsageTokens;

/// The header carrying extra fault tokens (the gateway forwards it to simulated providers).
pub const FAULT_HEADER: &str = crate::config::SIM_FAULT_HEADER;

/// The faults active for one request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Faults {
    pub status: Option<u16>,
    /// `flap-<ms>ms`: the length of one down or up period.
    pub flap_ms: Option<u64>,
    pub quota: bool,
    pub retry_after_secs: Option<u64>,
    pub reset: bool,
    pub stall_headers: bool,
    pub latency_ms: Option<u64>,
    pub pace_ms: Option<u64>,
    pub slow_first_token_ms: Option<u64>,
    pub cut_after: Option<usize>,
    pub stall_after: Option<usize>,
    pub malformed_after: Option<usize>,
    /// `malformed-at-<n>` / `malformed-run-<k>-at-<n>`: (n, k).
    pub malformed_at: Option<(usize, usize)>,
    pub unknown_at: Option<usize>,
    pub no_done: bool,
    pub no_usage: bool,
    pub no_prefill: bool,
    pub no_stream: bool,
    pub context_length: bool,
    pub window: Option<u32>,
    pub content_filter: bool,
    pub words: Option<usize>,
    /// A fixed answer text.
    pub answer: Option<String>,
    /// Usage details to report.
    pub usage: UsageTokens,
}

impl Faults {
    /// The faults for the `attempt`-th request (1-based) with this model string and header.
    pub fn parse(model: &str, header: Option<&str>, attempt: u64) -> Faults {
        let mut faults = Faults::default();
        let mut parts = model.split('+');
        let base = parts.next().unwrap_or_default();
        let from_header = header
            .into_iter()
            .flat_map(|h| h.split(','))
            .filter_map(|t| match t.trim().rsplit_once(':') {
                Some((scope, token)) => (scope.trim() == base).then_some(token),
                None => Some(t),
            });
        for token in parts.chain(from_header) {
            let (token, times) = split_times(token.trim());
            if times.is_none_or(|n| attempt <= n) {
                faults.apply(token);
            }
        }
        faults
    }

    fn apply(&mut self, token: &str) {
        if let Some(text) = token.strip_prefix("answer-") {
            self.answer = Some(text.replace('_', " "));
            return;
        }
        match token {
            "fail" => self.status = Some(500),
            "reset" => self.reset = true,
            "stall-headers" => self.stall_headers = true,
            "no-done" => self.no_done = true,
            "no-usage" => self.no_usage = true,
            "no-prefill" => self.no_prefill = true,
            "quota" => self.quota = true,
            "no-stream" => self.no_stream = true,
            "context-length" => self.context_length = true,
            "content-filter" => self.content_filter = true,
            _ => self.apply_numeric(token),
        }
    }

    fn apply_numeric(&mut self, t: &str) {
        if let Some(code) = num::<u16>(t, "status-", "").filter(|c| (400..=599).contains(c)) {
            self.status = Some(code);
        } else if let Some(v) = num(t, "retry-after-", "") {
            self.retry_after_secs = Some(v);
        } else if let Some(v) = num(t, "latency-", "ms").or_else(|| num(t, "slow-", "ms")) {
            self.latency_ms = Some(v);
        } else if let Some(v) = num(t, "pace-", "ms") {
            self.pace_ms = Some(v);
        } else if let Some(v) = num(t, "slow-first-token-", "ms") {
            self.slow_first_token_ms = Some(v);
        } else if let Some(v) = num(t, "cut-after-", "") {
            self.cut_after = Some(v);
        } else if let Some(v) = num(t, "stall-after-", "") {
            self.stall_after = Some(v);
        } else if let Some(v) = num(t, "malformed-after-", "") {
            self.malformed_after = Some(v);
        } else if let Some(v) = num(t, "malformed-at-", "") {
            self.malformed_at = Some((v, 1));
        } else if let Some(run) = malformed_run(t) {
            self.malformed_at = Some(run);
        } else if let Some(v) = num(t, "unknown-at-", "") {
            self.unknown_at = Some(v);
        } else if let Some(v) = num(t, "flap-", "ms") {
            self.flap_ms = Some(v);
        } else if let Some(v) = num(t, "window-", "") {
            self.window = Some(v);
        } else if let Some(v) = num(t, "tokens-", "") {
            self.words = Some(v);
        } else {
            self.usage.apply(t);
        }
    }
}

/// `malformed-run-<k>-at-<n>` as `(n, k)`.
fn malformed_run(t: &str) -> Option<(usize, usize)> {
    let (k, n) = t.strip_prefix("malformed-run-")?.split_once("-at-")?;
    Some((n.parse().ok()?, k.parse().ok()?))
}

/// Splits a `-once` / `-times-<n>` suffix off a token.
fn split_times(token: &str) -> (&str, Option<u64>) {
    if let Some(base) = token.strip_suffix("-once") {
        return (base, Some(1));
    }
    if let Some((base, n)) = token.rsplit_once("-times-") {
        if let Ok(n) = n.parse() {
            return (base, Some(n));
        }
    }
    (token, None)
}

fn num<T: FromStr>(token: &str, prefix: &str, suffix: &str) -> Option<T> {
    token
        .strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_model_and_header() {
        let f = Faults::parse(
            "gpt-4o-mini+status-429+retry-after-3+latency-50ms+bogus",
            Some("pace-5ms, tokens-7,slow-first-token-20ms"),
            1,
        );
        assert_eq!(f.status, Some(429));
        assert_eq!(f.retry_after_secs, Some(3));
        assert_eq!(f.latency_ms, Some(50));
        assert_eq!(f.pace_ms, Some(5));
        assert_eq!(f.words, Some(7));
        assert_eq!(f.slow_first_token_ms, Some(20));
        assert_eq!(Faults::parse("plain-model", None, 1), Faults::default());
        let f = Faults::parse("m+malformed-run-3-at-4", Some("unknown-at-2,flap-250ms"), 1);
        assert_eq!(f.malformed_at, Some((4, 3)));
        assert_eq!(f.unknown_at, Some(2));
        assert_eq!(f.flap_ms, Some(250));
        assert_eq!(
            Faults::parse("m+malformed-at-5", None, 1).malformed_at,
            Some((5, 1))
        );
    }

    #[test]
    fn header_tokens_may_name_their_model() {
        let header = Some("gpt-4o-mini:cut-after-5, claude:no-prefill,tokens-7");
        let f = Faults::parse("gpt-4o-mini+latency-5ms", header, 1);
        assert_eq!(
            (f.cut_after, f.no_prefill, f.words),
            (Some(5), false, Some(7))
        );
        let f = Faults::parse("claude", header, 1);
        assert_eq!((f.cut_after, f.no_prefill, f.words), (None, true, Some(7)));
        let f = Faults::parse("ft:gpt-4o:acme", Some("ft:gpt-4o:acme:quota"), 1);
        assert!(f.quota, "a model name with colons scopes by its last one");
    }

    #[test]
    fn once_and_times_follow_the_attempt() {
        assert_eq!(Faults::parse("m+fail-once", None, 1).status, Some(500));
        assert_eq!(Faults::parse("m+fail-once", None, 2).status, None);
        assert!(Faults::parse("m+reset-once", None, 1).reset);
        assert!(!Faults::parse("m+reset-once", None, 2).reset);
        let times = |n| Faults::parse("m+status-503-times-2", None, n).status;
        assert_eq!((times(1), times(2), times(3)), (Some(503), Some(503), None));
    }
}
