//! `POST /v1/feedback` and the `x-sluice-feedback` request header: scores of earlier requests.
//!
//! Body: `{"request_id": "req_...", "score": 0.0..1.0, "label": "optional text"}`; the answer is
//! the stored feedback with the rated request's route, tier and target. Header (batch jobs rate
//! earlier requests on their next one): `x-sluice-feedback: ID=SCORE[;label=TEXT], ...`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;

use crate::error::ApiError;
use crate::pipeline::feedback::{self, Given, Stored};
use crate::state::AppState;

/// Largest feedback body accepted.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Most scores one header may carry.
pub const MAX_HEADER_ENTRIES: usize = 64;
pub const HEADER: &str = "x-sluice-feedback";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    request_id: String,
    score: f64,
    #[serde(default)]
    label: Option<String>,
}

pub async fn create(
    State(s): State<Arc<AppState>>,
    req: Request,
) -> Result<Json<Stored>, ApiError> {
    let key = super::request::key_of(&req);
    // Within the body read timeout, like every API body.
    let limit = MAX_BODY_BYTES.min(s.config.server.max_body_bytes);
    let bytes = super::request::read_body_within(&s, req.into_body(), limit).await?;
    let body: Body = serde_json::from_slice(&bytes).map_err(|e| {
        let param = ["request_id", "score", "label"]
            .into_iter()
            .find(|f| e.to_string().contains(&format!("`{f}`")));
        ApiError::BadRequest {
            message: format!(
                "Invalid feedback: {e} (expected {{\"request_id\": string, \"score\": 0..1, \"label\"?: string}})"
            ),
            param: param.map(Into::into),
            code: Some("invalid_request"),
        }
    })?;
    let given = Given {
        request_id: body.request_id,
        score: body.score,
        label: body.label,
    };
    Ok(Json(
        feedback::submit(&s, given, true, key.as_deref()).await?,
    ))
}

/// The scores of an `x-sluice-feedback` header (empty without one).
pub fn from_header(h: &HeaderMap) -> Result<Vec<Given>, ApiError> {
    let bad = |detail: String| ApiError::BadRequest {
        message: format!("{HEADER}: {detail} (expected `ID=SCORE[;label=TEXT], ...`)"),
        param: None,
        code: Some("invalid_header"),
    };
    let mut out = Vec::new();
    for v in h.get_all(HEADER) {
        let v = v
            .to_str()
            .map_err(|_| bad("not visible ASCII".to_owned()))?;
        for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (head, label) = match entry.split_once(';') {
                Some((head, rest)) => {
                    let label = rest
                        .trim()
                        .strip_prefix("label=")
                        .ok_or_else(|| bad(format!("`{entry}`: only `label=` may follow `;`")))?;
                    (head, Some(label.trim().to_owned()))
                }
                None => (entry, None),
            };
            let (id, score) = head
                .split_once('=')
                .ok_or_else(|| bad(format!("`{entry}` has no `=SCORE`")))?;
            let score: f64 = score
                .trim()
                .parse()
                .map_err(|_| bad(format!("`{entry}`: the score is not a number")))?;
            out.push(Given {
                request_id: id.trim().to_owned(),
                score,
                label,
            });
        }
    }
    if out.len() > MAX_HEADER_ENTRIES {
        return Err(bad(format!("at most {MAX_HEADER_ENTRIES} scores")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_entries_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            HEADER,
            "req_1=0.9, req_2=0;label=wrong language".parse().unwrap(),
        );
        let g = from_header(&h).unwrap();
        assert_eq!(
            g,
            [
                Given {
                    request_id: "req_1".into(),
                    score: 0.9,
                    label: None
                },
                Given {
                    request_id: "req_2".into(),
                    score: 0.0,
                    label: Some("wrong language".into())
                }
            ]
        );
        assert!(from_header(&HeaderMap::new()).unwrap().is_empty());
        for bad in ["req_1", "req_1=high", "req_1=1;note=x"] {
            let mut h = HeaderMap::new();
            h.insert(HEADER, bad.parse().unwrap());
            assert!(from_header(&h).is_err(), "{bad}");
        }
    }
}
