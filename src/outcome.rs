//! What happened to a request, in the terms that the pipeline, the metrics, the audit record and
//! error bodies all report: what the cache did, and each upstream attempt's outcome.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// How the cache treated a request (`x-sluice-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    Miss,
    HitExact,
    HitSemantic,
    /// The client or the route asked not to use the cache.
    Bypass,
    /// No cache (disabled, observe mode, uncacheable request).
    #[default]
    Off,
}

impl CacheOutcome {
    pub const ALL: [CacheOutcome; 5] = [
        CacheOutcome::Miss,
        CacheOutcome::HitExact,
        CacheOutcome::HitSemantic,
        CacheOutcome::Bypass,
        CacheOutcome::Off,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Miss => "miss",
            CacheOutcome::HitExact => "hit-exact",
            CacheOutcome::HitSemantic => "hit-semantic",
            CacheOutcome::Bypass => "bypass",
            CacheOutcome::Off => "off",
        }
    }

    pub fn is_hit(self) -> bool {
        matches!(self, CacheOutcome::HitExact | CacheOutcome::HitSemantic)
    }

    /// Position in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One attempt at one target, kept for the final error and the audit record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// `provider/model`
    pub target: String,
    /// Upstream HTTP status, when one arrived.
    pub status: Option<u16>,
    /// Serialized as its text: `ok` or the reason (`timeout: first byte`, `HTTP 503: ...`).
    pub outcome: Outcome,
    pub elapsed_ms: u64,
}

impl Attempt {
    /// A 429 that was a rate limit (not a quota refusal, which is the provider account's).
    pub fn rate_limited(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Failed {
                class: FailureClass::RateLimited,
                ..
            }
        )
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It answered (a stream: it produced output and the request committed to it).
    Ok,
    /// It failed before the request committed to it; `detail` says how (at most ~300 bytes).
    Failed { class: FailureClass, detail: String },
    /// A committed stream broke after output had been sent to the client.
    Interrupted { detail: String },
    /// It continued a stream that broke at an earlier target, by this strategy.
    Resumed(Resume),
}

impl Outcome {
    /// It answered: from the start, or by continuing another target's answer.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Resumed(_))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Failed { detail, .. } => f.write_str(detail),
            Outcome::Interrupted { detail } => {
                write!(f, "stream interrupted after output was sent: {detail}")
            }
            Outcome::Resumed(how) => {
                write!(f, "ok: resumed the interrupted stream ({})", how.as_str())
            }
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why an attempt failed, as the failover loop classed it (a fixed set: span and metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Transient (5xx, connection, timeout, malformed answer): retried, then failed over.
    Retryable,
    /// 429.
    RateLimited,
    /// The prompt does not fit the target's context window.
    ContextLength,
    /// The target refused the request itself (a 4xx that is the client's).
    Rejected,
    /// The request's total deadline ran out during the attempt.
    Deadline,
    /// The attempt ran out of its time: a stage limit or its share of the deadline. Not retried
    /// at the same target.
    Timeout,
    /// The gateway's own fault at the provider (key, billing, model): see [`ProviderFault`].
    Provider,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Retryable => "retryable",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::ContextLength => "context_length",
            FailureClass::Rejected => "rejected",
            FailureClass::Deadline => "deadline",
            FailureClass::Timeout => "timeout",
            FailureClass::Provider => "provider_fault",
        }
    }
}

/// A refusal that is the gateway's fault at a provider, not the client's: it fails over at
/// once, opens the target's breaker, and its upstream message (which can carry a masked key)
/// never reaches the client. A fixed set: metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFault {
    /// 401 / 403: the provider key is wrong, revoked or lacks permission.
    Auth,
    /// 402, or a quota or billing refusal (OpenAI's 429 `insufficient_quota`, Anthropic's
    /// "credit balance is too low").
    Billing,
    /// 404: the provider does not serve the model (any more), or the base URL is wrong.
    NotFound,
}

impl ProviderFault {
    pub const ALL: [ProviderFault; 3] = [
        ProviderFault::Auth,
        ProviderFault::Billing,
        ProviderFault::NotFound,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderFault::Auth => "auth",
            ProviderFault::Billing => "billing",
            ProviderFault::NotFound => "not_found",
        }
    }

    /// What the client and the audit are told: the class, never the upstream's words.
    pub fn describe(self) -> &'static str {
        match self {
            ProviderFault::Auth => "the provider refused the gateway's credentials",
            ProviderFault::Billing => "the provider account's quota or credit is exhausted",
            ProviderFault::NotFound => "the provider does not serve this model",
        }
    }

    /// Position in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a stream that broke after output was continued at another target. A fixed set: metric
/// label (with `failed` for a stream nothing could continue) and audit text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The partial answer sent as an assistant prefill; the target continued it.
    Prefill,
    /// The answer regenerated from the start, the part already sent matched and skipped.
    Regenerate,
    /// The partial answer, then a user turn asking to continue it (`chat::CONTINUE_REQUEST`).
    UserTurn,
}

impl Resume {
    /// In the order they are tried.
    pub const ALL: [Resume; 3] = [Resume::Prefill, Resume::Regenerate, Resume::UserTurn];

    pub fn as_str(self) -> &'static str {
        match self {
            Resume::Prefill => "prefill",
            Resume::Regenerate => "regenerate",
            Resume::UserTurn => "user_turn",
        }
    }

    /// Position in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a request's route was chosen (`x-sluice-route-by`, the audit, a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteBy {
    /// The client named the route as its `model`.
    #[default]
    Named,
    /// `x-sluice-route` named it.
    Header,
    /// An auto route chose it from the prompt, confidently.
    Auto,
    /// An auto route was not confident enough (or could not embed the prompt): its default route.
    Fallback,
    /// A plain model name, no route.
    Passthrough,
}

impl RouteBy {
    pub const ALL: [RouteBy; 5] = [
        RouteBy::Named,
        RouteBy::Header,
        RouteBy::Auto,
        RouteBy::Fallback,
        RouteBy::Passthrough,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RouteBy::Named => "named",
            RouteBy::Header => "header",
            RouteBy::Auto => "auto",
            RouteBy::Fallback => "fallback",
            RouteBy::Passthrough => "passthrough",
        }
    }

    /// Position in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What chose a request's tier (`x-sluice-tier-by`, the audit, a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TierReason {
    /// No rule held and no model applies: the route's default tier.
    #[default]
    Default,
    /// A routing rule.
    Rule,
    /// `x-sluice-tier`.
    Header,
    /// The difficulty score against the route's thresholds.
    Difficulty,
    /// The learned policy's best-known choice.
    Learned,
    /// The learned policy exploring another tier (within its budget).
    Explore,
}

impl TierReason {
    pub const ALL: [TierReason; 6] = [
        TierReason::Default,
        TierReason::Rule,
        TierReason::Header,
        TierReason::Difficulty,
        TierReason::Learned,
        TierReason::Explore,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TierReason::Default => "default",
            TierReason::Rule => "rule",
            TierReason::Header => "header",
            TierReason::Difficulty => "difficulty",
            TierReason::Learned => "learned",
            TierReason::Explore => "explore",
        }
    }

    /// Position in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_serialize_their_outcome_as_text() {
        let a = Attempt {
            target: "oa/m".into(),
            status: Some(503),
            outcome: Outcome::Failed {
                class: FailureClass::Retryable,
                detail: "HTTP 503: busy".into(),
            },
            elapsed_ms: 4,
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["outcome"], "HTTP 503: busy");
        let cut = Outcome::Interrupted {
            detail: "stream cut: reset".into(),
        };
        assert_eq!(
            cut.to_string(),
            "stream interrupted after output was sent: stream cut: reset"
        );
        assert_eq!(Outcome::Ok.to_string(), "ok");
    }
}
