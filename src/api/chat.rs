//! `POST /v1/chat/completions`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tracing::Instrument;

use super::{request, sse};
use crate::chat::ChatRequest;
use crate::error::ApiError;
use crate::pipeline::{self, Meta, Reply, StreamItem};
use crate::state::AppState;
use crate::wire::Dialect;

/// One `request` span per call (info level: the request id is on every log line inside it);
/// the pipeline records the route and the final status on it.
pub async fn completions(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let (request_id, caller, span) = super::request_span(&req);
    handle(s, req, (request_id, caller), started, span.clone())
        .instrument(span)
        .await
}

async fn handle(
    s: Arc<AppState>,
    req: Request,
    (request_id, caller): (Arc<str>, Option<Arc<str>>),
    started: Instant,
    span: tracing::Span,
) -> Response {
    let key = request::key_of(&req);
    let prepared = async {
        let (parts, body) = req.into_parts();
        let bytes = request::read_body(&s, body).await?;
        let chat = parse(&bytes)?;
        Ok::<_, ApiError>((chat, request::Common::of(&parts.headers)?))
    };
    let (chat, ctx, feedback) = match prepared.await {
        Ok((chat, mut common)) => {
            let feedback = common.take_feedback();
            let ctx = common.ctx(request_id, caller, started, span, Dialect::OpenAi, key);
            (chat, ctx, feedback)
        }
        Err(e) => {
            // Refused before the pipeline, so not recorded there: the status goes on here.
            let resp = e.into_response();
            span.record("status", resp.status().as_u16());
            return resp;
        }
    };
    let rated = rate_earlier(&s, feedback, ctx.key.as_deref()).await;
    let (meta, result) = pipeline::chat(&s, chat, ctx).await;
    let mut resp = match result {
        Ok(Reply::Complete(r)) => axum::Json(r).into_response(),
        Ok(Reply::Stream(events)) => sse_response(events),
        Err(e) => e.into_response(),
    };
    set_meta_headers(&s, &meta, resp.headers_mut());
    resp.extensions_mut().insert(pipeline::Recorded);
    set_feedback_header(rated, resp.headers_mut());
    resp
}

/// `x-sluice-feedback`: scores of earlier requests, stored before this one is served; `(stored,
/// given)` when there were any.
pub(super) async fn rate_earlier(
    s: &AppState,
    feedback: Vec<pipeline::feedback::Given>,
    by: Option<&crate::access::Key>,
) -> Option<(usize, usize)> {
    match feedback.len() {
        0 => None,
        n => Some((pipeline::feedback::apply_header(s, feedback, by).await, n)),
    }
}

/// `x-sluice-feedback-stored: STORED/GIVEN` when the request rated earlier ones.
pub(super) fn set_feedback_header(rated: Option<(usize, usize)>, h: &mut HeaderMap) {
    if let Some((stored, given)) = rated {
        if let Ok(v) = HeaderValue::from_str(&format!("{stored}/{given}")) {
            h.insert("x-sluice-feedback-stored", v);
        }
    }
}

/// Parse and validate the body, with OpenAI-style messages naming the bad field.
fn parse(bytes: &Bytes) -> Result<ChatRequest, ApiError> {
    let req: ChatRequest = serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::BadRequest {
                message: format!("We could not parse the JSON body of your request: {e}"),
                param: None,
                code: Some("invalid_json"),
            },
            Category::Data => invalid_field(bytes, e),
        }
    })?;
    if req.model.trim().is_empty() {
        return Err(ApiError::BadRequest {
            message: "`model` must not be empty".into(),
            param: Some("model".into()),
            code: Some("invalid_request"),
        });
    }
    if req.messages.is_empty() {
        return Err(ApiError::BadRequest {
            message: "`messages` must contain at least one message".into(),
            param: Some("messages".into()),
            code: Some("invalid_request"),
        });
    }
    if req.n.is_some_and(|n| n == 0 || n > 128) {
        return Err(ApiError::BadRequest {
            message: "`n` must be between 1 and 128".into(),
            param: Some("n".into()),
            code: Some("invalid_request"),
        });
    }
    Ok(req)
}

/// A well-formed body with a field of the wrong type or value. Parsed a second time, off the
/// happy path, to name the field by its path (`messages[0].role`), as OpenAI's `param` does.
fn invalid_field(bytes: &Bytes, e: serde_json::Error) -> ApiError {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let located = serde_path_to_error::deserialize::<_, ChatRequest>(&mut de).err();
    let path = located
        .as_ref()
        .map(|l| l.path().to_string())
        .filter(|p| p != ".")
        .or_else(|| missing_field(&e.to_string()));
    let message = match &path {
        Some(p) => format!("Invalid value for `{p}`: {e}"),
        None => format!("Invalid request body: {e}"),
    };
    ApiError::BadRequest {
        message,
        param: path.map(Into::into),
        code: Some("invalid_request"),
    }
}

/// `missing field `messages`` names a field serde's path cannot (it is not there).
fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

fn sse_response(events: pipeline::EventStream) -> Response {
    sse::response(Body::from_stream(events.map(|item| {
        Ok::<Bytes, std::convert::Infallible>(match item {
            StreamItem::Chunk(c) => sse::chunk(&c),
            StreamItem::Done => Bytes::from_static(sse::DONE),
            StreamItem::Error(e) => sse::error(&e.body()),
        })
    })))
}

pub(super) fn set_meta_headers(s: &AppState, meta: &Meta, h: &mut HeaderMap) {
    if let Some(route) = &meta.route {
        if let Ok(v) = HeaderValue::from_str(route) {
            h.insert("x-sluice-route", v);
        }
    }
    if let Some(t) = meta.target {
        if let Ok(v) = HeaderValue::from_str(&s.config.target(t).name) {
            h.insert("x-sluice-target", v);
        }
    }
    if meta.route.is_some() {
        let d = &meta.decision;
        h.insert(
            "x-sluice-route-by",
            HeaderValue::from_static(d.route_by.as_str()),
        );
        if let Some(c) = d.confidence {
            if let Ok(v) = HeaderValue::from_str(&format!("{c:.3}")) {
                h.insert("x-sluice-route-confidence", v);
            }
        }
        let tier = meta
            .route_id
            .zip(meta.tier)
            .and_then(|(r, t)| s.config.routes[r.0].tiers.get(t));
        if let Some(tier) = tier {
            if let Ok(v) = HeaderValue::from_str(&tier.name) {
                h.insert("x-sluice-tier", v);
            }
            h.insert(
                "x-sluice-tier-by",
                HeaderValue::from_static(d.tier_by.as_str()),
            );
        }
    }
    h.insert("x-sluice-attempts", HeaderValue::from(meta.attempts.len()));
    h.insert(
        "x-sluice-cache",
        HeaderValue::from_static(meta.cache.as_str()),
    );
    if let Some(sim) = meta.similarity {
        if let Ok(v) = HeaderValue::from_str(&format!("{sim:.4}")) {
            h.insert("x-sluice-similarity", v);
        }
    }
}
