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

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It answered (a stream: it produced output and the request committed to it).
    Ok,
    /// It failed before the request committed to it; `detail` says how (at most ~300 bytes).
    Failed { class: FailureClass, detail: String },
    /// A committed stream broke after output had been sent to the client.
    Interrupted { detail: String },
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
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
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Retryable => "retryable",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::ContextLength => "context_length",
            FailureClass::Rejected => "rejected",
            FailureClass::Deadline => "deadline",
        }
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
