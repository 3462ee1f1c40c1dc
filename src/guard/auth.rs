//! Client authentication: with `[server] api_keys` set, every request but the health checks and
//! `/metrics` must carry one of the keys, as OpenAI clients send theirs (`Authorization: Bearer`),
//! as Anthropic-style clients and Azure do (`x-api-key`, `api-key`), or as a browser does after
//! its login prompt (`Authorization: Basic`, the key as the password: the dashboard). A refusal
//! has the shape of the API the path belongs to (Anthropic's under `/v1/messages`).

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;

use crate::config::ApiKeys;
use crate::error::ApiError;
use crate::wire::Dialect;

/// Paths a load balancer or a Prometheus scraper reads without a key.
const OPEN_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The name of the key a request came with (`[server] api_keys`), for its audit record.
#[derive(Clone)]
pub struct Caller(pub Arc<str>);

pub async fn require_key(State(keys): State<ApiKeys>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if keys.is_empty() || OPEN_PATHS.contains(&path) {
        return next.run(req).await;
    }
    let caller = match presented_key(req.headers()) {
        Some(k) => keys.caller(&k).cloned(),
        None => return refuse(true, path),
    };
    match caller {
        Some(name) => {
            req.extensions_mut().insert(Caller(name));
            next.run(req).await
        }
        None => refuse(false, path),
    }
}

/// 401 in the path's API's shape; pages a browser opens (the dashboard) also ask it for the
/// key (`WWW-Authenticate: Basic`), which it then sends with the page's own requests.
fn refuse(missing: bool, path: &str) -> Response {
    let mut resp = ApiError::Unauthorized { missing }.into_response_for(Dialect::of_path(path));
    if path == "/dashboard" || path.starts_with("/dashboard/") || path.starts_with("/admin/") {
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
