//! The failover scenarios: each a route `r` of two targets at two providers, a primary at the
//! OpenAI-compatible mock endpoint and a backup at the Anthropic one, with fault tokens on their
//! upstream models, and what a client should get.

use std::time::Duration;

/// What the client should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A correct, complete answer.
    Answer,
    /// The upstream's refusal of the request itself, relayed with this status and code.
    ClientError(u16, &'static str),
}

/// What a scenario checks besides the one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    None,
    /// The audit record lists every upstream request the mock counted.
    Accounting,
    /// Requests keep coming while the primary flaps; traffic must return to it after it
    /// recovers, within this long.
    Recovery(Duration),
}

#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub id: &'static str,
    pub title: &'static str,
    /// Fault tokens of the primary's upstream model (`+`-separated, may be empty).
    pub primary: &'static str,
    pub backup: &'static str,
    pub stream: bool,
    pub expect: Expect,
    /// A correct answer later than this is a partial success.
    pub goal: Option<Duration>,
    pub extra: Extra,
}

const fn answer(id: &'static str, title: &'static str, primary: &'static str) -> Scenario {
    Scenario {
        id,
        title,
        primary,
        backup: "",
        stream: false,
        expect: Expect::Answer,
        goal: None,
        extra: Extra::None,
    }
}

const fn streamed(s: Scenario) -> Scenario {
    Scenario { stream: true, ..s }
}

/// The whole list, in the order the scorecard prints it. Streams break after 14 content chunks:
/// past the 11 words the mock echoes from the prompt, so a continuation at the backup (whose
/// filler words differ) shows in the text.
pub fn all() -> Vec<Scenario> {
    let fast = Some(Duration::from_secs(15));
    vec![
        Scenario {
            goal: fast,
            ..answer("never-answers", "upstream never answers", "stall-headers")
        },
        streamed(answer(
            "stream-cut",
            "stream cut after N tokens",
            "cut-after-14",
        )),
        streamed(answer(
            "stream-stall",
            "stream stalls mid-answer",
            "stall-after-14",
        )),
        streamed(answer(
            "malformed-event",
            "one malformed SSE event mid-stream",
            "malformed-at-10",
        )),
        streamed(answer(
            "malformed-tail",
            "stream ends in a malformed event",
            "malformed-after-14",
        )),
        streamed(answer(
            "no-done",
            "stream ends without [DONE] after finish_reason and usage",
            "no-done",
        )),
        Scenario {
            backup: "no-prefill",
            ..streamed(answer(
                "prefill-rejected",
                "fallback rejects assistant prefill",
                "cut-after-14",
            ))
        },
        Scenario {
            goal: fast,
            ..streamed(answer(
                "slow-first-token",
                "slow first token (20 s)",
                "slow-first-token-20000ms",
            ))
        },
        Scenario {
            extra: Extra::Recovery(Duration::from_secs(10)),
            ..answer(
                "flapping-primary",
                "primary flaps then recovers",
                "flap-1000ms",
            )
        },
        answer(
            "429-retry-after",
            "429 with Retry-After",
            "status-429-once+retry-after-1",
        ),
        answer(
            "429-no-retry-after",
            "429 without Retry-After",
            "status-429-once",
        ),
        answer("429-persistent", "persistent 429", "status-429"),
        answer("500-once", "500 once", "status-500-once"),
        answer("503-persistent", "503 persistent", "status-503"),
        answer("connection-reset", "connection reset", "reset"),
        answer(
            "context-length",
            "context length exceeded",
            "context-length",
        ),
        Scenario {
            expect: Expect::ClientError(400, "content_filter"),
            ..answer("content-filter", "content filter", "content-filter")
        },
        Scenario {
            extra: Extra::Accounting,
            ..answer(
                "failed-attempts-accounted",
                "accounting of failed attempts",
                "status-503",
            )
        },
        answer("key-revoked", "provider key revoked (401)", "status-401"),
        answer("quota-exhausted", "provider quota exhausted", "quota"),
        answer("model-gone", "model no longer served (404)", "status-404"),
    ]
}
