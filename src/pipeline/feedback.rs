//! Feedback on answers (`POST /v1/feedback`, the `x-sluice-feedback` header): a score in 0..1
//! (and an optional label) for an earlier request, by its id. It is stored with the request's
//! audit record (`sluice report` shows quality per route, tier and target), counted in the
//! metrics, and taught to the route's learned policy when the request was answered upstream
//! on a learned route. Rating a request again replaces its score (everywhere).

use serde::Serialize;

use crate::access::Key;
use crate::accounting::audit::MAX_LABEL_BYTES;
use crate::accounting::{unix_ms_now, AuditError, Feedback};
use crate::config::KeyRole;
use crate::error::ApiError;
use crate::router::Rated;
use crate::state::AppState;

/// A score given for a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Given {
    pub request_id: String,
    pub score: f64,
    pub label: Option<String>,
}

/// What was stored, and about which request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stored {
    pub object: &'static str,
    pub request_id: String,
    pub score: f64,
    pub label: Option<String>,
    pub route: String,
    pub tier: Option<String>,
    pub target: Option<String>,
    /// The request had been rated before: this score replaced that one.
    pub replaced: bool,
    /// A learned route's policy took it into account.
    pub learned: bool,
}

/// Checks and stores one score. `wait`: return once it is committed (the endpoint), else once
/// it is queued (the header).
/// `by`: the key the scores come with (with client keys on); a client key rates only its own
/// requests (another caller's read as unknown, so ids reveal nothing), an admin key any.
pub async fn submit(
    s: &AppState,
    given: Given,
    wait: bool,
    by: Option<&Key>,
) -> Result<Stored, ApiError> {
    let Given {
        request_id,
        score,
        label,
    } = given;
    if !(0.0..=1.0).contains(&score) {
        return Err(ApiError::BadRequest {
            message: format!("`score` must be a number from 0 to 1, not {score}"),
            param: Some("score".into()),
            code: Some("invalid_request"),
        });
    }
    if label.as_ref().is_some_and(|l| l.len() > MAX_LABEL_BYTES) {
        return Err(ApiError::BadRequest {
            message: format!("`label` must be at most {MAX_LABEL_BYTES} bytes"),
            param: Some("label".into()),
            code: Some("invalid_request"),
        });
    }
    if request_id.is_empty() || request_id.len() > 128 {
        return Err(ApiError::BadRequest {
            message: "`request_id` must be a request's id (x-request-id), 1 to 128 bytes".into(),
            param: Some("request_id".into()),
            code: Some("invalid_request"),
        });
    }
    let feedback = Feedback {
        score: score as f32,
        label: label.clone(),
        time_ms: unix_ms_now(),
    };
    let may_rate = |r: &crate::accounting::AuditRecord| match by {
        None => true,
        Some(k) => k.policy.role == KeyRole::Admin || r.caller.as_deref() == Some(&*k.name),
    };
    let rated = match s.audit.rate(&request_id, feedback, wait, may_rate).await {
        Ok(Some(r)) => r.record,
        Ok(None) => return Err(ApiError::RequestNotFound(request_id)),
        Err(AuditError::Disabled) => {
            return Err(ApiError::BadRequest {
                message: AuditError::Disabled.to_string(),
                param: None,
                code: Some("audit_disabled"),
            })
        }
        Err(e) => return Err(ApiError::Internal(format!("feedback not stored: {e}"))),
    };
    s.metrics
        .observe_feedback(s.config.route(&rated.route), score);
    let replaced = rated.feedback.as_ref().map(|f| f64::from(f.score));
    // Only an answer a tier produced says something about the tier (not a cache hit's).
    let learned = match (&rated.routing.tier, rated.cache.is_hit()) {
        (Some(tier), false) => s.router.observe_feedback(Rated {
            route: &rated.route,
            tier,
            cluster: rated.routing.cluster,
            score,
            replaced,
        }),
        _ => false,
    };
    Ok(Stored {
        object: "feedback",
        request_id,
        score,
        label,
        route: rated.route,
        tier: rated.routing.tier,
        target: rated.target,
        replaced: replaced.is_some(),
        learned,
    })
}

/// The scores of an `x-sluice-feedback` header, each stored without waiting for the commit;
/// returns how many were stored (the others named unknown requests or were invalid, and are
/// logged at debug level: a batch job's typo must not fail its next request).
pub async fn apply_header(s: &AppState, given: Vec<Given>, by: Option<&Key>) -> usize {
    let mut stored = 0;
    for g in given {
        match submit(s, g, false, by).await {
            Ok(_) => stored += 1,
            Err(e) => tracing::debug!(error = %e, "x-sluice-feedback entry not stored"),
        }
    }
    stored
}
