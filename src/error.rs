//! `ApiError`: every way a request can fail, as an OpenAI-shaped JSON error
//! (`{"error":{"message","type","param","code"}}`) with its HTTP status and a metric label, or
//! for Anthropic clients in Anthropic's shape (`{"type":"error","error":{"type","message"}}`)
//! with Anthropic's status codes.

use std::borrow::Cow;
use std::sync::Arc;

use crate::outcome::Attempt;
use crate::wire::anthropic::{error_type_for_status, ERROR_TYPES};
use crate::wire::Dialect;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        message: String,
        /// The offending field: a top-level name or a path (`messages[0].role`).
        param: Option<Cow<'static, str>>,
        code: Option<&'static str>,
    },
    /// Client keys are on and the request carries none of them (or a revoked one).
    #[error("{}", if *.missing {
        "You didn't provide an API key: send `Authorization: Bearer <key>` (or `x-api-key`) with a key of the gateway (`[server] api_keys` or `sluice keys create`)"
    } else {
        "Incorrect API key provided: it is not a key of this gateway, or it was revoked"
    })]
    Unauthorized { missing: bool },
    /// No such endpoint (OpenAI answers 404 `unknown_url` too).
    #[error("Unknown request URL: {method} {path}")]
    UnknownUrl { method: String, path: String },
    #[error("The model `{0}` does not exist: it is neither a route nor a model of a configured provider")]
    ModelNotFound(String),
    #[error("Request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// Feedback names a request the audit has no record of.
    #[error("No request with id `{0}` is recorded (feedback needs the id of a request this gateway served, from its x-request-id header)")]
    RequestNotFound(String),
    /// An upstream refused the request itself (4xx other than rate limits): no retry, no
    /// failover; the client gets the upstream's status and message.
    #[error("{message}")]
    Upstream {
        status: u16,
        message: String,
        kind: String,
        code: Option<String>,
        target: String,
    },
    #[error("{}", all_failed_message(.attempts, *.deadline))]
    AllTargetsFailed {
        /// Shared with the request's audit record.
        attempts: Arc<[Attempt]>,
        /// The route's deadline ran out.
        deadline: bool,
    },
    /// A stream broke after output had been sent and could not be continued: the last event
    /// of the stream, which then has no `[DONE]`.
    #[error("{}", interrupted_message(.attempts, *.deadline))]
    StreamInterrupted {
        attempts: Arc<[Attempt]>,
        /// The deadline ran out (mid-stream, or while it was being continued).
        deadline: bool,
    },
    #[error("No cached answer for this request (x-sluice-cache: only-if-cached)")]
    CacheMiss,
    /// The key may not do this (an admin endpoint, a route, model or tier it is not allowed),
    /// or a browser request from another site.
    #[error("{message}")]
    Forbidden { message: String, code: &'static str },
    /// A key's request or token rate, or its concurrency, is over its limit.
    #[error("{message}")]
    RateLimited {
        message: String,
        /// OpenAI's `type`: `requests` or `tokens`.
        kind: &'static str,
        code: &'static str,
        retry_after_secs: u64,
    },
    /// A key's daily or monthly budget is spent: nothing goes upstream.
    #[error("{message}")]
    BudgetExceeded {
        message: String,
        retry_after_secs: u64,
    },
    /// The gateway has `max_concurrent_requests` in flight.
    #[error("The gateway is at its limit of concurrent requests; retry shortly")]
    Overloaded { retry_after_secs: u64 },
    /// The request body did not arrive within `body_read_timeout_ms`.
    #[error("The request body did not arrive within {0} ms")]
    RequestTimeout(u64),
    /// A POST whose body is not JSON (`Content-Type: application/json`).
    #[error("Content-Type must be application/json (got `{0}`)")]
    UnsupportedMediaType(String),
    #[error("Sluice is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
}

fn all_failed_message(attempts: &[Attempt], deadline: bool) -> String {
    let mut s = String::from(if deadline {
        "Deadline exceeded before any target answered. Attempts: "
    } else {
        "All targets failed. Attempts: "
    });
    if attempts.is_empty() {
        s.push_str("none (every target's circuit breaker is open)");
    }
    list_attempts(&mut s, attempts);
    s
}

fn interrupted_message(attempts: &[Attempt], deadline: bool) -> String {
    let mut s = String::from(if deadline {
        "The stream was interrupted after output was sent, and the deadline ran out before \
         it could be continued: the answer is incomplete. Attempts: "
    } else {
        "The stream was interrupted after output was sent, and no target could continue it: \
         the answer is incomplete. Attempts: "
    });
    list_attempts(&mut s, attempts);
    s
}

fn list_attempts(s: &mut String, attempts: &[Attempt]) {
    for (i, a) in attempts.iter().enumerate() {
        if i > 0 {
            s.push_str("; ");
        }
        s.push_str(&format!(
            "{} -> {} ({} ms)",
            a.target, a.outcome, a.elapsed_ms
        ));
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            param: None,
            code: None,
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::ModelNotFound(_)
            | ApiError::UnknownUrl { .. }
            | ApiError::RequestNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Upstream { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            ApiError::AllTargetsFailed { attempts, deadline } => {
                if *deadline {
                    StatusCode::GATEWAY_TIMEOUT
                } else if !attempts.is_empty() && attempts.iter().all(Attempt::rate_limited) {
                    StatusCode::TOO_MANY_REQUESTS
                } else if attempts.is_empty() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_GATEWAY
                }
            }
            // Recorded only (the stream's status went out as 200).
            ApiError::StreamInterrupted { deadline: true, .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::StreamInterrupted { .. } => StatusCode::BAD_GATEWAY,
            ApiError::CacheMiss => StatusCode::GATEWAY_TIMEOUT,
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } | ApiError::BudgetExceeded { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// Seconds a client should wait before retrying (`Retry-After`), for refusals that pass.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited {
                retry_after_secs, ..
            }
            | ApiError::BudgetExceeded {
                retry_after_secs, ..
            }
            | ApiError::Overloaded { retry_after_secs } => Some(*retry_after_secs),
            ApiError::ShuttingDown => Some(1),
            _ => None,
        }
    }

    /// OpenAI's `error.type`.
    fn kind(&self) -> &str {
        match self {
            ApiError::BadRequest { .. }
            | ApiError::ModelNotFound(_)
            | ApiError::UnknownUrl { .. }
            | ApiError::Unauthorized { .. }
            | ApiError::PayloadTooLarge(_)
            | ApiError::RequestNotFound(_)
            | ApiError::RequestTimeout(_)
            | ApiError::UnsupportedMediaType(_) => "invalid_request_error",
            ApiError::Forbidden { .. } => "permission_error",
            ApiError::RateLimited { kind, .. } => kind,
            ApiError::BudgetExceeded { .. } => "insufficient_quota",
            ApiError::Overloaded { .. } => "server_error",
            ApiError::Upstream { kind, .. } => kind,
            ApiError::AllTargetsFailed { .. } | ApiError::StreamInterrupted { .. } => {
                "upstream_error"
            }
            ApiError::CacheMiss => "cache_miss",
            ApiError::ShuttingDown | ApiError::Internal(_) => "server_error",
        }
    }

    fn code(&self) -> Option<&str> {
        match self {
            ApiError::BadRequest { code, .. } => *code,
            ApiError::ModelNotFound(_) => Some("model_not_found"),
            ApiError::UnknownUrl { .. } => Some("unknown_url"),
            ApiError::Unauthorized { .. } => Some("invalid_api_key"),
            ApiError::PayloadTooLarge(_) => Some("payload_too_large"),
            ApiError::RequestNotFound(_) => Some("request_not_found"),
            ApiError::Upstream { code, .. } => code.as_deref(),
            ApiError::AllTargetsFailed { deadline: true, .. } => Some("deadline_exceeded"),
            ApiError::AllTargetsFailed { .. } => Some("all_targets_failed"),
            ApiError::StreamInterrupted { .. } => Some("stream_interrupted"),
            ApiError::CacheMiss => Some("cache_miss"),
            ApiError::ShuttingDown => Some("shutting_down"),
            ApiError::Internal(_) => None,
            ApiError::Forbidden { code, .. } | ApiError::RateLimited { code, .. } => Some(code),
            ApiError::BudgetExceeded { .. } => Some("budget_exceeded"),
            ApiError::Overloaded { .. } => Some("overloaded"),
            ApiError::RequestTimeout(_) => Some("request_timeout"),
            ApiError::UnsupportedMediaType(_) => Some("unsupported_media_type"),
        }
    }

    /// A fixed label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::ModelNotFound(_) => "model_not_found",
            ApiError::UnknownUrl { .. } => "unknown_url",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestNotFound(_) => "request_not_found",
            ApiError::Upstream { .. } => "upstream_rejected",
            ApiError::AllTargetsFailed { deadline: true, .. } => "deadline_exceeded",
            ApiError::AllTargetsFailed { .. } => "all_targets_failed",
            ApiError::StreamInterrupted { .. } => "stream_interrupted",
            ApiError::CacheMiss => "cache_miss",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Internal(_) => "internal",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::BudgetExceeded { .. } => "budget_exceeded",
            ApiError::Overloaded { .. } => "overloaded",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
        }
    }

    /// The OpenAI-shaped JSON body.
    pub fn body(&self) -> serde_json::Value {
        let param = match self {
            ApiError::BadRequest { param, .. } => param.as_deref(),
            ApiError::ModelNotFound(_) => Some("model"),
            ApiError::RequestNotFound(_) => Some("request_id"),
            _ => None,
        };
        let mut err = serde_json::json!({
            "message": self.to_string(),
            "type": self.kind(),
            "param": param,
            "code": self.code(),
        });
        if let ApiError::AllTargetsFailed { attempts, .. }
        | ApiError::StreamInterrupted { attempts, .. } = self
        {
            err["attempts"] = serde_json::to_value(&attempts[..]).unwrap_or_default();
        }
        serde_json::json!({ "error": err })
    }
}

/// On every error response: the error's metric label, for the record of a request refused
/// before the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct ErrorLabel(pub &'static str);

/// Anthropic's shape.
impl ApiError {
    /// Anthropic's status code and error `type` for this error: its own codes (429 rate limits,
    /// 504 `timeout_error`, 529 `overloaded_error` when no target could be tried or the gateway
    /// is stopping, 500 `api_error` when every target failed), an upstream's refusal with its
    /// status.
    pub fn anthropic_status(&self) -> (StatusCode, &'static str) {
        let status = |code: u16| StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
        match self {
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_request_error"),
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "authentication_error"),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "permission_error"),
            // Anthropic has no quota type: a spent budget is a rate limit that lifts later.
            ApiError::RateLimited { .. } | ApiError::BudgetExceeded { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error")
            }
            ApiError::Overloaded { .. } => (status(529), "overloaded_error"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "timeout_error"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request_error")
            }
            ApiError::UnknownUrl { .. }
            | ApiError::ModelNotFound(_)
            | ApiError::RequestNotFound(_) => (StatusCode::NOT_FOUND, "not_found_error"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"),
            ApiError::Upstream {
                status: s, kind, ..
            } => {
                let kind = ERROR_TYPES
                    .iter()
                    .find(|t| **t == kind.as_str())
                    .copied()
                    .unwrap_or_else(|| error_type_for_status(*s));
                (status(*s), kind)
            }
            ApiError::AllTargetsFailed { .. } => match self.status_code().as_u16() {
                504 => (StatusCode::GATEWAY_TIMEOUT, "timeout_error"),
                429 => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
                503 => (status(529), "overloaded_error"),
                _ => (StatusCode::INTERNAL_SERVER_ERROR, "api_error"),
            },
            ApiError::StreamInterrupted { deadline: true, .. } => {
                (StatusCode::GATEWAY_TIMEOUT, "timeout_error")
            }
            ApiError::StreamInterrupted { .. } | ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "api_error")
            }
            ApiError::CacheMiss => (StatusCode::GATEWAY_TIMEOUT, "timeout_error"),
            ApiError::ShuttingDown => (status(529), "overloaded_error"),
        }
    }

    /// The Anthropic-shaped body; the attempts of a failover stay in `error.attempts`, the
    /// OpenAI-shaped code in `error.code` (Anthropic's SDKs ignore fields they do not know).
    pub fn anthropic_body(&self) -> serde_json::Value {
        let (_, kind) = self.anthropic_status();
        let mut err = serde_json::json!({"type": kind, "message": self.to_string()});
        if let Some(code) = self.code() {
            err["code"] = code.into();
        }
        if let ApiError::AllTargetsFailed { attempts, .. }
        | ApiError::StreamInterrupted { attempts, .. } = self
        {
            err["attempts"] = serde_json::to_value(&attempts[..]).unwrap_or_default();
        }
        serde_json::json!({"type": "error", "error": err})
    }

    /// The error response in the client's API's shape.
    pub fn into_response_for(self, dialect: Dialect) -> Response {
        match dialect {
            Dialect::OpenAi => self.into_response(),
            Dialect::Anthropic => {
                let (status, _) = self.anthropic_status();
                if status.is_server_error() && !matches!(self, ApiError::Overloaded { .. }) {
                    tracing::warn!(error = %self, label = self.metric_label(), "request failed");
                }
                let mut resp = (status, axum::Json(self.anthropic_body())).into_response();
                self.decorate(&mut resp);
                resp
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() && !matches!(self, ApiError::Overloaded { .. }) {
            tracing::warn!(error = %self, label = self.metric_label(), "request failed");
        }
        let mut resp = (status, axum::Json(self.body())).into_response();
        self.decorate(&mut resp);
        resp
    }
}

impl ApiError {
    /// What every error response carries whatever its shape: `Retry-After` for refusals that
    /// pass, and the metric label for the record of a request refused before the pipeline.
    fn decorate(&self, resp: &mut Response) {
        if let Some(secs) = self.retry_after_secs() {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp.extensions_mut()
            .insert(ErrorLabel(self.metric_label()));
    }
}
