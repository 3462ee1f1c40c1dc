//! `POST /v1/messages` (Anthropic's Messages API) and `POST /v1/messages/count_tokens`.
//!
//! An Anthropic client's request becomes the canonical request (`wire::anthropic`, the same
//! translation the Anthropic adapter uses outbound) and takes the same pipeline as a chat
//! completion: routes and tiers (`model` names a route or a model), the cache, failover to
//! either provider kind, the audit. Its answer, its stream (Anthropic's named events, a cache
//! hit replayed as them too) and its errors (Anthropic's shape and status codes) come back as
//! Anthropic's API gives them. `anthropic-version` is accepted whatever its value;
//! `anthropic-beta` reaches Anthropic targets.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Value};
use tracing::Instrument;

use super::request::{self, Common};
use super::sse;
use crate::error::ApiError;
use crate::pipeline::{self, EventStream, Reply, StreamItem};
use crate::state::AppState;
use crate::wire::anthropic::{
    CountTokensRequest, EventEncoder, Invalid, MessagesRequest, MessagesResponse, BETAS, EXTENSION,
};
use crate::wire::Dialect;

pub async fn create(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let (request_id, caller, span) = super::request_span(&req);
    let ids = (request_id.clone(), caller);
    let mut resp = handle(s, req, ids, started, span.clone())
        .instrument(span)
        .await;
    anthropic_headers(&request_id, resp.headers_mut());
    resp
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
        let msg: MessagesRequest = parse(&bytes)?;
        validate(&msg)?;
        let common = Common::of(&parts.headers)?;
        let mut chat = msg.into_chat().map_err(invalid)?;
        add_betas(&mut chat.extra, &parts.headers);
        Ok::<_, ApiError>((chat, common))
    };
    let (chat, ctx, feedback) = match prepared.await {
        Ok((chat, mut common)) => {
            let feedback = common.take_feedback();
            let ctx = common.ctx(request_id, caller, started, span, Dialect::Anthropic, key);
            (chat, ctx, feedback)
        }
        Err(e) => {
            // Refused before the pipeline, so not recorded there: the status goes on here.
            let resp = e.into_response_for(Dialect::Anthropic);
            span.record("status", resp.status().as_u16());
            return resp;
        }
    };
    let rated = super::chat::rate_earlier(&s, feedback, ctx.key.as_deref()).await;
    let estimate = chat.estimate_prompt_tokens();
    let (meta, result) = pipeline::chat(&s, chat, ctx).await;
    let mut resp = match result {
        Ok(Reply::Complete(r)) => axum::Json(MessagesResponse::from_chat(r)).into_response(),
        Ok(Reply::Stream(events)) => stream_response(events, estimate),
        Err(e) => e.into_response_for(Dialect::Anthropic),
    };
    super::chat::set_meta_headers(&s, &meta, resp.headers_mut());
    resp.extensions_mut().insert(pipeline::Recorded);
    super::chat::set_feedback_header(rated, resp.headers_mut());
    resp
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, estimated (about four characters
/// a token, as routing rules count), for a request whose `model` names a route or a model.
pub async fn count_tokens(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let (request_id, caller, span) = super::request_span(&req);
    let key = request::key_of(&req);
    let counted = async {
        let (parts, body) = req.into_parts();
        let bytes = request::read_body(&s, body).await?;
        let c: CountTokensRequest = parse(&bytes)?;
        if c.model.trim().is_empty() {
            return Err(field("model", "String should have at least 1 character"));
        }
        let msg = MessagesRequest {
            model: c.model,
            messages: c.messages,
            max_tokens: 1,
            system: c.system,
            temperature: None,
            top_p: None,
            top_k: None,
            stop_sequences: None,
            stream: false,
            tools: c.tools,
            tool_choice: None,
            metadata: None,
            extra: serde_json::Map::new(),
        };
        let chat = msg.into_chat().map_err(invalid)?;
        let common = Common::of(&parts.headers)?;
        let ctx = common.ctx(
            request_id.clone(),
            caller,
            started,
            span.clone(),
            Dialect::Anthropic,
            key,
        );
        pipeline::count_tokens(&s, &chat, &ctx)
    }
    .instrument(span.clone())
    .await;
    let mut resp = match counted {
        Ok(n) => {
            // A read in all but method: not recorded (its refusals are, by the audit layer).
            let mut r = axum::Json(json!({"input_tokens": n})).into_response();
            r.extensions_mut().insert(pipeline::Recorded);
            r
        }
        Err(e) => e.into_response_for(Dialect::Anthropic),
    };
    span.record("status", resp.status().as_u16());
    anthropic_headers(&request_id, resp.headers_mut());
    resp
}

/// Anthropic names the request id `request-id` (its SDKs read it); ours is also `x-request-id`.
fn anthropic_headers(request_id: &str, h: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("request-id", v);
    }
}

/// `anthropic-beta: a,b` (one header or several) into the request's extension, for the
/// Anthropic adapter to send on.
fn add_betas(extra: &mut serde_json::Map<String, Value>, h: &HeaderMap) {
    let betas: Vec<Value> = h
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| Value::String(b.to_owned()))
        .collect();
    if betas.is_empty() {
        return;
    }
    let ext = extra
        .entry(EXTENSION)
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Value::Object(ext) = ext {
        ext.insert(BETAS.into(), Value::Array(betas));
    }
}

/// Parses the body; errors name the field in Anthropic's form (`messages.0.content: ...`).
fn parse<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::BadRequest {
                message: format!("There was an error parsing the body of your request: {e}"),
                param: None,
                code: Some("invalid_json"),
            },
            // Off the happy path: parsed again to name the field by its path.
            Category::Data => {
                let mut de = serde_json::Deserializer::from_slice(bytes);
                let path = serde_path_to_error::deserialize::<_, T>(&mut de)
                    .err()
                    .map(|l| anthropic_path(&l.path().to_string()))
                    .filter(|p| p != ".")
                    .or_else(|| missing_field(&e.to_string()));
                let (message, param) = match path {
                    Some(p) if e.to_string().starts_with("missing field") => {
                        (format!("{p}: Field required"), Some(p))
                    }
                    Some(p) => (format!("{p}: {e}"), Some(p)),
                    None => (format!("Invalid request body: {e}"), None),
                };
                ApiError::BadRequest {
                    message,
                    param: param.map(Into::into),
                    code: Some("invalid_request"),
                }
            }
        }
    })
}

/// `messages[0].content` -> `messages.0.content`, as Anthropic names fields.
fn anthropic_path(p: &str) -> String {
    p.replace('[', ".").replace(']', "")
}

/// `missing field `max_tokens`` names a field the path cannot (it is not there). A field of a
/// nested object is named by the path of its parent, which serde_path_to_error gives.
fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

fn field(param: &str, message: &str) -> ApiError {
    ApiError::BadRequest {
        message: format!("{param}: {message}"),
        param: Some(param.to_owned().into()),
        code: Some("invalid_request"),
    }
}

fn invalid(e: Invalid) -> ApiError {
    field(&e.param, &e.message)
}

/// What Anthropic checks beyond the types.
fn validate(m: &MessagesRequest) -> Result<(), ApiError> {
    if m.model.trim().is_empty() {
        return Err(field("model", "String should have at least 1 character"));
    }
    if m.messages.is_empty() {
        return Err(field("messages", "at least one message is required"));
    }
    if m.max_tokens == 0 {
        return Err(field(
            "max_tokens",
            "Input should be greater than or equal to 1",
        ));
    }
    for (name, v) in [("temperature", m.temperature), ("top_p", m.top_p)] {
        if v.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
            return Err(field(name, "Input should be between 0 and 1"));
        }
    }
    Ok(())
}

/// The reply stream as Anthropic's events. A stream that ends without its end (which the
/// pipeline never does) still ends with an `error` event rather than silently.
fn stream_response(mut events: EventStream, estimate: u32) -> Response {
    let body = async_stream::stream! {
        let mut enc = EventEncoder::new(estimate);
        let mut out = Vec::with_capacity(4);
        loop {
            let ended = match events.next().await {
                Some(StreamItem::Chunk(c)) => {
                    enc.chunk(c, &mut out);
                    false
                }
                Some(StreamItem::Done) => {
                    enc.finish(&mut out);
                    true
                }
                Some(StreamItem::Error(e)) => {
                    let (_, kind) = e.anthropic_status();
                    out.push(EventEncoder::error(kind, e.to_string()));
                    true
                }
                None => {
                    out.push(EventEncoder::error("api_error", "the stream ended early".into()));
                    true
                }
            };
            if !out.is_empty() {
                yield Ok::<Bytes, std::convert::Infallible>(sse::events(&out));
                out.clear();
            }
            if ended {
                break;
            }
        }
    };
    sse::response(Body::from_stream(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: Value) -> String {
        let bytes = Bytes::from(body.to_string());
        let r = parse::<MessagesRequest>(&bytes).and_then(|m| validate(&m));
        r.unwrap_err().to_string()
    }

    #[test]
    fn beta_headers_go_into_the_extension() {
        let mut h = HeaderMap::new();
        h.append("anthropic-beta", HeaderValue::from_static("a-1, b-2"));
        h.append("anthropic-beta", HeaderValue::from_static("c-3"));
        let mut extra = serde_json::Map::new();
        add_betas(&mut extra, &h);
        assert_eq!(extra[EXTENSION][BETAS], json!(["a-1", "b-2", "c-3"]));
        let mut none = serde_json::Map::new();
        add_betas(&mut none, &HeaderMap::new());
        assert!(
            none.is_empty(),
            "no extension without betas (the cache key stays the same)"
        );
    }

    #[test]
    fn errors_name_fields_as_anthropic_does() {
        assert_eq!(
            message(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]})),
            "max_tokens: Field required"
        );
        let m = message(json!({"model": "m", "max_tokens": 5,
            "messages": [{"role": "robot", "content": "x"}]}));
        assert!(m.starts_with("messages.0.role: "), "{m}");
        assert_eq!(
            message(json!({"model": "m", "max_tokens": 5, "messages": []})),
            "messages: at least one message is required"
        );
        assert_eq!(
            message(json!({"model": "m", "max_tokens": 0,
                "messages": [{"role": "user", "content": "x"}]})),
            "max_tokens: Input should be greater than or equal to 1"
        );
        assert_eq!(
            message(json!({"model": "m", "max_tokens": 5, "temperature": 1.5,
                "messages": [{"role": "user", "content": "x"}]})),
            "temperature: Input should be between 0 and 1"
        );
    }
}
