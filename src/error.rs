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
    /// `[server] api_keys` is set and the request carries none of them.
    #[error("{}", if *.missing {
        "You didn't provide an API key: send `Authorization: Bearer <key>` (or `x-api-key`) with a key from the gateway's `[server] api_keys`"
    } else {
        "Incorrect API key provided: it is not one of the gateway's `[server] api_keys`"
    })]
    Unauthorized { missing: bool },
    /// A valid key without the right to this endpoint (the admin endpoints).
    #[error("{0}")]
    Forbidden(String),
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
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
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
        }
    }

    /// OpenAI's `error.type`.
    fn kind(&self) -> &str {
        match self {
            ApiError::BadRequest { .. }
            | ApiError::ModelNotFound(_)
            | ApiError::UnknownUrl { .. }
            | ApiError::Unauthorized { .. }
            | ApiError::RequestNotFound(_)
            | ApiError::Forbidden(_)
            | ApiError::PayloadTooLarge(_) => "invalid_request_error",
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
            ApiError::Forbidden(_) => Some("forbidden"),
            ApiError::PayloadTooLarge(_) => Some("payload_too_large"),
            ApiError::RequestNotFound(_) => Some("request_not_found"),
            ApiError::Upstream { code, .. } => code.as_deref(),
            ApiError::AllTargetsFailed { deadline: true, .. } => Some("deadline_exceeded"),
            ApiError::AllTargetsFailed { .. } => Some("all_targets_failed"),
            ApiError::StreamInterrupted { .. } => Some("stream_interrupted"),
            ApiError::CacheMiss => Some("cache_miss"),
            ApiError::ShuttingDown => Some("shutting_down"),
            ApiError::Internal(_) => None,
        }
    }

    /// A fixed label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::ModelNotFound(_) => "model_not_found",
            ApiError::UnknownUrl { .. } => "unknown_url",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestNotFound(_) => "request_not_found",
            ApiError::Upstream { .. } => "upstream_rejected",
            ApiError::AllTargetsFailed { deadline: true, .. } => "deadline_exceeded",
            ApiError::AllTargetsFailed { .. } => "all_targets_failed",
            ApiError::StreamInterrupted { .. } => "stream_interrupted",
            ApiError::CacheMiss => "cache_miss",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Internal(_) => "internal",
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
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "permission_error"),
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
                if status.is_server_error() {
                    tracing::warn!(error = %self, label = self.metric_label(), "request failed");
                }
                (status, axum::Json(self.anthropic_body())).into_response()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::warn!(error = %self, label = self.metric_label(), "request failed");
        }
        (status, axum::Json(self.body())).into_response()
    }
}
