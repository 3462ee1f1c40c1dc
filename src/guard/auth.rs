//! Client keys: with keys on (`[server] api_keys`, or keys created with `sluice keys create`),
//! every request but the health checks must carry one, as OpenAI clients send theirs
//! (`Authorization: Bearer`), as Anthropic SDKs and Azure do (`x-api-key`, `api-key`), or as a
//! browser does after its login prompt (`Authorization: Basic`, the key as the password: the
//! dashboard). The dashboard, `/admin/*` and `/metrics` need an admin key (`/metrics` is open
//! with `[server] public_metrics = true`). An API call (a POST outside them: chat completions,
//! Anthropic's Messages, embeddings) is then admitted by the key's meters: budgets, request and
//! token rates, concurrency; the key's permit is held until the response body ends. A refusal
//! has the shape of the API the path belongs to (Anthropic's under `/v1/messages`).

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;

use super::hold;
use crate::access::{retry_after_secs, Key, Refusal};
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::Dialect;

/// Paths a load balancer reads without a key.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];

/// The name of the key a request came with, for its audit record (also on the response, for the
/// record of a request refused before the pipeline).
#[derive(Clone)]
pub struct Caller(pub Arc<str>);

pub async fn require_key(State(s): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !s.access.keys_on() || OPEN_PATHS.contains(&path) {
        return next.run(req).await;
    }
    let is_metrics = path == "/metrics";
    if is_metrics && s.config.server.public_metrics {
        return next.run(req).await;
    }
    let dialect = Dialect::of_path(path);
    let admin_only = is_metrics || super::admin::admin_path(path);
    let key = match presented_key(req.headers()) {
        Some(k) => s.access.authenticate(&k),
        None => return refuse(true, path),
    };
    let Some(key) = key else {
        return refuse(false, path);
    };
    let caller = Caller(key.name.clone());
    if admin_only && !super::admin::is_admin(&s, Some(&*key)) {
        let mut resp = ApiError::Forbidden {
            message: format!(
                "{path} needs an admin key; key \"{}\" has the client role",
                key.name
            ),
            code: "admin_required",
        }
        .into_response_for(dialect);
        resp.extensions_mut().insert(caller);
        return resp;
    }
    let api_call = req.method() == Method::POST && !admin_only;
    let permit = if api_call {
        match s.access.admit(&key) {
            Ok(p) => Some(p),
            Err(r) => {
                let mut resp = refusal(&key, r).into_response_for(dialect);
                resp.extensions_mut().insert(caller);
                return resp;
            }
        }
    } else {
        None
    };
    req.extensions_mut().insert(caller.clone());
    req.extensions_mut().insert(key);
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(caller);
    match permit {
        Some(p) => hold(resp, p),
        None => resp,
    }
}

/// A key's refusal as the client's error.
fn refusal(key: &Key, r: Refusal) -> ApiError {
    match r {
        Refusal::Budget {
            period,
            limit_usd,
            spent_usd,
            retry_after,
        } => ApiError::BudgetExceeded {
            message: format!(
                "Budget exceeded: key \"{}\" has spent ${spent_usd:.4} of its {period} budget of ${limit_usd:.2}; no request is sent upstream until it resets",
                key.name
            ),
            retry_after_secs: retry_after_secs(retry_after),
        },
        Refusal::Rate {
            what,
            per_minute,
            retry_after,
        } => ApiError::RateLimited {
            message: format!(
                "Rate limit reached for key \"{}\": {per_minute} {what} per minute; retry after the wait in Retry-After",
                key.name
            ),
            kind: what,
            code: "rate_limit_exceeded",
            retry_after_secs: retry_after_secs(retry_after),
        },
        Refusal::Concurrency { max } => ApiError::RateLimited {
            message: format!(
                "Key \"{}\" already has {max} requests in flight (its max_concurrent)",
                key.name
            ),
            kind: "requests",
            code: "concurrency_limit_exceeded",
            retry_after_secs: 1,
        },
    }
}

/// 401 in the path's API's shape; pages a browser opens (the dashboard) also ask it for the
/// key (`WWW-Authenticate: Basic`), which it then sends with the page's own requests.
fn refuse(missing: bool, path: &str) -> Response {
    let mut resp = ApiError::Unauthorized { missing }.into_response_for(Dialect::of_path(path));
    if super::admin::admin_path(path) {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"sluice admin\", charset=\"UTF-8\""),
        );
    }
    resp
}

fn presented_key(h: &HeaderMap) -> Option<Cow<'_, str>> {
    let authorization = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '));
    let from_authorization = authorization.and_then(|(scheme, token)| {
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(Cow::Borrowed(token.trim()))
        } else if scheme.eq_ignore_ascii_case("basic") {
            basic_password(token.trim()).map(Cow::Owned)
        } else {
            None
        }
    });
    from_authorization
        .or_else(|| {
            h.get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed)
        })
        .or_else(|| {
            h.get("api-key")
                .and_then(|v| v.to_str().ok())
                .map(Cow::Borrowed)
        })
        .map(|k| match k {
            Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
            Cow::Owned(o) => Cow::Owned(o.trim().to_owned()),
        })
        .filter(|k| !k.is_empty())
}

/// The key of `Basic base64(user:key)`: the password, or the user name when the password is
/// empty (what a prompt typed into the wrong field sends).
fn basic_password(token: &str) -> Option<String> {
    // A key is short; a longer token is no key of ours (and not worth decoding).
    if token.len() > 4096 {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':').unwrap_or((&text, ""));
    Some(if pass.is_empty() { user } else { pass }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_bearer_basic_and_key_headers() {
        let key = |name: &str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
            presented_key(&h).map(|k| k.into_owned())
        };
        assert_eq!(
            key("authorization", "Bearer sk-1 ").as_deref(),
            Some("sk-1")
        );
        // admin:sk-2 and sk-3: (no password)
        assert_eq!(
            key("authorization", "Basic YWRtaW46c2stMg==").as_deref(),
            Some("sk-2")
        );
        assert_eq!(
            key("authorization", "basic c2stMzo=").as_deref(),
            Some("sk-3")
        );
        assert_eq!(key("authorization", "Basic !!!"), None);
        assert_eq!(key("x-api-key", "sk-4").as_deref(), Some("sk-4"));
        assert_eq!(key("api-key", "  ").as_deref(), None);
    }
}
