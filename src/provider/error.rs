//! Upstream failures and their classification for the failover loop.

use std::time::Duration;

use crate::outcome::ProviderFault;

/// Which time limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutStage {
    FirstByte,
    FirstToken,
    Idle,
    /// The attempt's share of the request's deadline (the rest is kept for other targets).
    Share,
    Total,
}

impl TimeoutStage {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutStage::FirstByte => "first byte",
            TimeoutStage::FirstToken => "first token",
            TimeoutStage::Idle => "stream idle",
            TimeoutStage::Share => "the attempt's share of the deadline",
            TimeoutStage::Total => "total deadline",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("timeout: {}", .0.as_str())]
    Timeout(TimeoutStage),
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        /// The provider's error type (`rate_limit_error`, `invalid_request_error`, ...).
        kind: String,
        code: Option<String>,
        message: String,
    },
    /// The upstream answered something that is not its protocol (bad JSON, bad event).
    #[error("malformed response: {0}")]
    Protocol(String),
    /// The body or stream ended or broke before its end marker.
    #[error("stream cut: {0}")]
    StreamCut(String),
    /// A regenerated answer that does not start with the text already sent (so it cannot
    /// continue it).
    #[error("the regenerated answer does not repeat the text already sent")]
    Diverged,
}

/// What the failover loop should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: retry the same target with backoff, then move on.
    Retry,
    /// A time limit ran out: move on at once (the same target would likely be slow again).
    Timeout,
    /// The gateway's own fault at this provider (key, billing, model): move on at once and open
    /// the target's breaker; the upstream's message is not for the client.
    Provider(ProviderFault),
    /// 429: wait `Retry-After` when given and within limits, else back off or move on.
    RateLimited(Option<Duration>),
    /// The prompt does not fit: never retry at the same size; a larger window may take it.
    ContextLength,
    /// The request itself was refused (bad request, content filter): the client's error.
    Reject,
}

impl ProviderError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::Connect(_)
            | ProviderError::Protocol(_)
            | ProviderError::StreamCut(_) => ErrorClass::Retry,
            ProviderError::Timeout(_) => ErrorClass::Timeout,
            // The target is up; it just answered otherwise.
            ProviderError::Diverged => ErrorClass::Reject,
            ProviderError::Status {
                status,
                retry_after,
                kind,
                code,
                message,
            } => {
                let billing = is_billing(kind, code.as_deref(), message);
                match *status {
                    // Redirects are not followed (they would carry the provider key to another
                    // host): a base URL that redirects is the config's fault, like a 404.
                    300..=399 => ErrorClass::Provider(ProviderFault::NotFound),
                    429 if billing => ErrorClass::Provider(ProviderFault::Billing),
                    429 => ErrorClass::RateLimited(*retry_after),
                    401 | 403 => ErrorClass::Provider(ProviderFault::Auth),
                    402 => ErrorClass::Provider(ProviderFault::Billing),
                    // The model id is the config's, never the client's.
                    404 => ErrorClass::Provider(ProviderFault::NotFound),
                    408 | 409 | 500..=599 => ErrorClass::Retry,
                    _ if is_context_length(kind, code.as_deref(), message) => {
                        ErrorClass::ContextLength
                    }
                    // Anthropic reports overload as 529 (handled above) and sometimes as an
                    // `overloaded_error` with another status.
                    _ if kind == "overloaded_error" => ErrorClass::Retry,
                    _ if billing => ErrorClass::Provider(ProviderFault::Billing),
                    _ => ErrorClass::Reject,
                }
            }
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ProviderError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn from_reqwest(e: &reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            return ProviderError::Timeout(TimeoutStage::FirstByte);
        }
        // A refused, reset or closed connection before the response: the request may not have
        // been processed; a transient connection failure.
        ProviderError::Connect(redacted(e))
    }
}

/// A reqwest error as text for clients, the audit and traces: its root cause, and never the
/// full URL (a query string or user info can carry a key): any URL in it is cut to
/// `scheme://host[:port]/path`.
pub fn redacted(e: &reqwest::Error) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let mut text = cur.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), &redact_url(url));
    }
    // reqwest's own message names the URL even when the root cause does not.
    if text.contains("://") {
        text = text
            .split_whitespace()
            .map(
                |w| match reqwest::Url::parse(w.trim_matches(['(', ')', ','])) {
                    Ok(u) => redact_url(&u),
                    Err(_) => w.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join(" ");
    }
    text
}

/// `scheme://host[:port]/path`: no user info, query or fragment.
pub fn redact_url(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// A refusal for money, not for the request: OpenAI's 429 `insufficient_quota`, Anthropic's
/// 400 "Your credit balance is too low", a billing hard limit.
fn is_billing(kind: &str, code: Option<&str>, message: &str) -> bool {
    const CODES: [&str; 2] = ["insufficient_quota", "billing_hard_limit_reached"];
    if CODES.iter().any(|c| code == Some(c) || kind == *c) {
        return true;
    }
    let m = message.to_ascii_lowercase();
    m.contains("credit balance") || m.contains("current quota") || m.contains("billing")
}

fn is_context_length(kind: &str, code: Option<&str>, message: &str) -> bool {
    if code == Some("context_length_exceeded") || kind == "context_length_exceeded" {
        return true;
    }
    let m = message.to_ascii_lowercase();
    m.contains("context length")
        || m.contains("context window")
        || m.contains("prompt is too long")
        || m.contains("maximum context")
        || m.contains("too many tokens")
}

/// Turn a non-2xx response into `ProviderError::Status`, reading the OpenAI
/// (`{"error":{"message","type","code"}}`) or Anthropic (`{"type":"error","error":{...}}`)
/// error body when there is one.
pub(super) async fn from_error_response(resp: reqwest::Response) -> ProviderError {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    // Bounded: an error body is small; a slow one should not hold the attempt.
    let body = tokio::time::timeout(Duration::from_secs(10), resp.bytes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let (kind, code, message) = parse_error_body(&body);
    ProviderError::Status {
        status,
        retry_after,
        kind: kind.unwrap_or_else(|| default_kind(status).to_owned()),
        code,
        message: message.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() {
                format!("upstream returned HTTP {status}")
            } else {
                text.chars().take(500).collect()
            }
        }),
    }
}

pub(super) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None, None);
    };
    let err = v.get("error").unwrap_or(&v);
    let s = |k: &str| err.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let code = match err.get("code") {
        Some(serde_json::Value::String(c)) => Some(c.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    (s("type"), code, s("message"))
}

fn default_kind(status: u16) -> &'static str {
    match status {
        400 | 404 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "api_error",
    }
}

/// `Retry-After` as seconds (fractions allowed) or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(86_400.0)));
        }
    }
    let when = httpdate_to_unix(v)?;
    let now = crate::chat::unix_now();
    Some(Duration::from_secs(when.saturating_sub(now)))
}

/// Parses IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form servers should send.
fn httpdate_to_unix(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    // Bounded fields: the arithmetic below cannot overflow or underflow.
    let day: u64 = parts[1].parse().ok().filter(|d| (1..=31).contains(d))?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as u64
        + 1;
    let year: u64 = parts[3]
        .parse()
        .ok()
        .filter(|y| (1970..=9999).contains(y))?;
    let hms: Vec<u64> = parts[4].split(':').filter_map(|x| x.parse().ok()).collect();
    if hms.len() != 3 || hms[0] > 23 || hms[1] > 59 || hms[2] > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, kind: &str, code: Option<&str>, message: &str) -> ProviderError {
        ProviderError::Status {
            status,
            retry_after: None,
            kind: kind.into(),
            code: code.map(Into::into),
            message: message.into(),
        }
    }

    #[test]
    fn classifies_statuses() {
        assert_eq!(
            status(503, "api_error", None, "x").class(),
            ErrorClass::Retry
        );
        assert_eq!(
            status(529, "overloaded_error", None, "x").class(),
            ErrorClass::Retry
        );
        assert_eq!(
            status(429, "rate_limit_error", None, "x").class(),
            ErrorClass::RateLimited(None)
        );
        assert_eq!(
            status(
                400,
                "invalid_request_error",
                Some("context_length_exceeded"),
                "x"
            )
            .class(),
            ErrorClass::ContextLength
        );
        assert_eq!(
            status(
                400,
                "invalid_request_error",
                None,
                "prompt is too long: 300000 tokens > 200000 maximum"
            )
            .class(),
            ErrorClass::ContextLength
        );
        assert_eq!(
            status(400, "invalid_request_error", Some("content_filter"), "x").class(),
            ErrorClass::Reject
        );
        assert_eq!(
            status(401, "authentication_error", None, "x").class(),
            ErrorClass::Provider(ProviderFault::Auth)
        );
        assert_eq!(
            status(404, "not_found_error", None, "model: claude-2").class(),
            ErrorClass::Provider(ProviderFault::NotFound)
        );
        let quota = status(429, "insufficient_quota", Some("insufficient_quota"), "x");
        assert_eq!(quota.class(), ErrorClass::Provider(ProviderFault::Billing));
        let credit = status(
            400,
            "invalid_request_error",
            None,
            "Your credit balance is too low to access the Anthropic API.",
        );
        assert_eq!(credit.class(), ErrorClass::Provider(ProviderFault::Billing));
        assert_eq!(
            status(402, "payment_required", None, "x").class(),
            ErrorClass::Provider(ProviderFault::Billing)
        );
        assert_eq!(
            ProviderError::Timeout(TimeoutStage::FirstByte).class(),
            ErrorClass::Timeout
        );
    }

    #[test]
    fn parses_retry_after() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            httpdate_to_unix("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        // Out-of-range fields are refused, not overflowed (these panicked in debug builds).
        for bad in [
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 0 08:49:37 GMT",
            "Sun, 06 Nov 18446744073709551615 08:49:37 GMT",
            "Sun, 18446744073709551615 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 18446744073709551615:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad), None, "{bad}");
        }
    }

    #[test]
    fn redirects_are_provider_faults_and_urls_are_redacted() {
        assert_eq!(
            status(302, "api_error", None, "moved").class(),
            ErrorClass::Provider(ProviderFault::NotFound)
        );
        let u = reqwest::Url::parse("https://user:pw@api.example.com:8443/v1/chat?key=sk-123#x")
            .unwrap();
        assert_eq!(redact_url(&u), "https://api.example.com:8443/v1/chat");
    }
}
