//! `POST /v1/embeddings`: pass-through to the OpenAI-compatible providers that list the model.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::error::ApiError;
use crate::pipeline::{self, RequestCtx};
use crate::state::AppState;

pub async fn create(State(s): State<Arc<AppState>>, req: Request) -> Response {
    let started = Instant::now();
    let (request_id, caller, span) = super::request_span(&req);
    let key = super::request::key_of(&req);
    async move {
        let (body, model) = match parse(&s, req).await {
            Ok(x) => x,
            Err(e) => {
                // Refused before the pipeline: the status goes on the span here.
                let resp = e.into_response();
                tracing::Span::current().record("status", resp.status().as_u16());
                return resp;
            }
        };
        let ctx = RequestCtx {
            request_id,
            caller,
            route_hint: None,
            tier_hint: None,
            cache: pipeline::CacheControl::default(),
            started,
            span: tracing::Span::current(),
            sim_faults: None,
            timeout: None,
            key,
            dialect: crate::wire::Dialect::OpenAi,
        };
        let (meta, result) = pipeline::embeddings(&s, body, &model, ctx).await;
        let mut resp = match result {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => e.into_response(),
        };
        super::chat::set_meta_headers(&s, &meta, resp.headers_mut());
        resp.extensions_mut().insert(pipeline::Recorded);
        resp
    }
    .instrument(span)
    .await
}

async fn parse(s: &AppState, req: Request) -> Result<(Map<String, Value>, String), ApiError> {
    let bytes = super::request::read_body(s, req.into_body()).await?;
    let body: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest {
            message: format!("We could not parse the JSON body of your request: {e}"),
            param: None,
            code: Some("invalid_json"),
        })?;
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        _ => {
            return Err(ApiError::BadRequest {
                message: "`model` must be a non-empty string".into(),
                param: Some("model".into()),
                code: Some("invalid_request"),
            })
        }
    };
    match body.get("input") {
        Some(Value::String(_)) | Some(Value::Array(_)) => Ok((body, model)),
        _ => Err(ApiError::BadRequest {
            message: "`input` must be a string or an array".into(),
            param: Some("input".into()),
            code: Some("invalid_request"),
        }),
    }
}
