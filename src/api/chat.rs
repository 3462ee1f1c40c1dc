//! `POST /v1/chat/completions`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tracing::Instrument;

use super::sse;
use crate::chat::ChatRequest;
use crate::config::SIM_FAULT_HEADER;
use crate::error::ApiError;
use crate::pipeline::{self, CacheControl, Meta, Reply, RequestCtx, StreamItem};
use crate::state::AppState;

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
    let (chat, ctx, feedback) = match prepare(&s, req).await {
        Ok(Prepared {
            chat,
            cache,
            route_hint,
            tier_hint,
            sim_faults,
            timeout,
            feedback,
        }) => (
            chat,
            RequestCtx {
                request_id,
                caller,
                cache,
                route_hint,
                tier_hint,
                started,
                span,
                sim_faults,
                timeout,
            },
            feedback,
        ),
        Err(e) => {
            // Refused before the pipeline, so not recorded there: the status goes on here.
            let resp = e.into_response();
            span.record("status", resp.status().as_u16());
            return resp;
        }
    };
    // Scores of earlier requests, stored before this one is served.
    let rated = match feedback.len() {
        0 => None,
        n => Some((pipeline::feedback::apply_header(&s, feedback).await, n)),
    };
    let (meta, result) = pipeline::chat(&s, chat, ctx).await;
    let mut resp = match result {
        Ok(Reply::Complete(r)) => axum::Json(r).into_response(),
        Ok(Reply::Stream(events)) => sse_response(events),
        Err(e) => e.into_response(),
    };
    set_meta_headers(&s, &meta, resp.headers_mut());
    if let Some((stored, given)) = rated {
        if let Ok(v) = HeaderValue::from_str(&format!("{stored}/{given}")) {
            resp.headers_mut().insert("x-sluice-feedback-stored", v);
        }
    }
    resp
}

/// The request as the pipeline takes it.
struct Prepared {
    chat: ChatRequest,
    cache: CacheControl,
    route_hint: Option<String>,
    tier_hint: Option<String>,
    sim_faults: Option<String>,
    timeout: Option<std::time::Duration>,
    /// `x-sluice-feedback`: scores of earlier requests.
    feedback: Vec<pipeline::feedback::Given>,
}

/// Longest `x-mock-fault` value passed on (it only ever reaches the built-in simulator).
const MAX_SIM_FAULTS_BYTES: usize = 1024;

/// Body and headers in: the canonical request, its cache controls, route / tier hints and the
/// simulated provider's fault tokens.
async fn prepare(s: &AppState, req: Request) -> Result<Prepared, ApiError> {
    if s.is_shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    let (parts, body) = req.into_parts();
    let limit = s.config.server.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(limit))?;
    let chat = parse(&bytes)?;
    let cache = cache_control(&parts.headers)?;
    let route_hint = header_str(&parts.headers, "x-sluice-route");
    let tier_hint = header_str(&parts.headers, "x-sluice-tier");
    let sim_faults =
        header_str(&parts.headers, SIM_FAULT_HEADER).filter(|v| v.len() <= MAX_SIM_FAULTS_BYTES);
    Ok(Prepared {
        chat,
        cache,
        route_hint,
        tier_hint,
        sim_faults,
        timeout: client_timeout(&parts.headers)?,
        feedback: super::feedback::from_header(&parts.headers)?,
    })
}

/// `x-sluice-timeout-ms: N`: the client's own deadline for the whole request (the route's
/// `total_timeout_ms` still caps it). Failover plans within it, and what it cuts short is not
/// held against a target.
fn client_timeout(h: &HeaderMap) -> Result<Option<std::time::Duration>, ApiError> {
    let Some(t) = header_str(h, "x-sluice-timeout-ms") else {
        return Ok(None);
    };
    match t.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(Some(std::time::Duration::from_millis(ms))),
        _ => Err(ApiError::BadRequest {
            message: format!("x-sluice-timeout-ms: `{t}` is not a positive number of milliseconds"),
            param: None,
            code: Some("invalid_header"),
        }),
    }
}

/// `x-sluice-cache: bypass | refresh | only-if-cached`, `Cache-Control: no-store | no-cache`,
/// `x-sluice-cache-ttl: SECONDS`.
fn cache_control(h: &HeaderMap) -> Result<CacheControl, ApiError> {
    let mut c = CacheControl::default();
    match header_str(h, "x-sluice-cache").as_deref() {
        None => {}
        Some("bypass") => {
            c.read = false;
            c.write = false;
        }
        Some("refresh") => c.read = false,
        Some("only-if-cached") => c.only_if_cached = true,
        Some(other) => {
            return Err(ApiError::BadRequest {
                message: format!(
                    "x-sluice-cache: unknown value `{other}` (expected bypass, refresh or only-if-cached)"
                ),
                param: None,
                code: Some("invalid_header"),
            })
        }
    }
    for v in h.get_all(header::CACHE_CONTROL) {
        for d in v.to_str().unwrap_or("").split(',').map(str::trim) {
            if d.eq_ignore_ascii_case("no-store") {
                c.write = false;
            } else if d.eq_ignore_ascii_case("no-cache") {
                c.read = false;
            } else if d.eq_ignore_ascii_case("only-if-cached") {
                c.only_if_cached = true;
            }
        }
    }
    if let Some(t) = header_str(h, "x-sluice-cache-ttl") {
        let secs: u64 = t.parse().map_err(|_| ApiError::BadRequest {
            message: format!("x-sluice-cache-ttl: `{t}` is not a number of seconds"),
            param: None,
            code: Some("invalid_header"),
        })?;
        c.ttl = Some(std::time::Duration::from_secs(secs));
    }
    Ok(c)
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
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
    let body = events.map(|item| {
        Ok::<Bytes, std::convert::Infallible>(match item {
            StreamItem::Chunk(c) => sse::chunk(&c),
            StreamItem::Done => Bytes::from_static(sse::DONE),
            StreamItem::Error(e) => sse::error(&e.body()),
        })
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
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
