//! `GET /v1/models`: the routes (use cases) and the models of every configured provider, in
//! OpenAI's list shape.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::config::TargetId;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn list(State(s): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"object": "list", "data": entries(&s)}))
}

pub async fn get(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    entries(&s)
        .into_iter()
        .find(|e| e["id"] == id.as_str())
        .map(Json)
        .ok_or(ApiError::ModelNotFound(id))
}

fn entries(s: &AppState) -> Vec<Value> {
    let cfg = &s.config;
    let mut out = Vec::with_capacity(cfg.routes.len() + cfg.targets.len());
    for r in &cfg.routes {
        let tiers: Vec<Value> = r
            .tiers
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "targets": t.targets.iter().map(|(id, _)| cfg.target(*id).name.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect();
        out.push(json!({
            "id": r.name, "object": "model", "created": 0, "owned_by": "sluice",
            "sluice": {"kind": "route", "description": r.description, "tiers": tiers}
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, t) in cfg.targets.iter().enumerate() {
        if !seen.insert(t.model.as_str()) {
            continue;
        }
        let p = cfg.provider(t.provider);
        let price = s.accountant.target_price(TargetId(i));
        let source = s.accountant.target_origin(TargetId(i)).map(|o| o.source());
        out.push(json!({
            "id": t.model, "object": "model", "created": 0, "owned_by": p.name,
            "sluice": {
                "kind": "model",
                "providers": cfg.targets.iter().filter(|x| x.model == t.model).map(|x| cfg.provider(x.provider).name.as_str()).collect::<Vec<_>>(),
                "context_window": t.context_window,
                "input_per_mtok": price.map(|p| p.input_per_mtok),
                "output_per_mtok": price.map(|p| p.output_per_mtok),
                "cached_input_per_mtok": price.map(|p| p.cached_input_per_mtok),
                "price_source": source,
            }
        }));
    }
    out
}
