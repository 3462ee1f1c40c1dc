//! Browser-origin protection: a web page must not be able to spend the providers' credit or
//! plant cache entries through a gateway it can reach (the default set-up: no keys, loopback),
//! nor read its answers through DNS rebinding.
//!
//! - **Host allow-list** (when listening on loopback): `localhost`, loopback addresses and
//!   `[server] allowed_hosts` only; a rebound name (`evil.example` resolving to 127.0.0.1) is
//!   refused.
//! - **Cross-site requests**: a request that changes something (not GET/HEAD/OPTIONS) with
//!   `Sec-Fetch-Site` other than `same-origin` / `none`, or an `Origin` other than the gateway's
//!   own, is refused unless the origin is in `[server] allowed_origins`.
//! - **JSON only**: a POST must say `Content-Type: application/json`: a cross-site page can
//!   send `text/plain` or a form without asking, JSON only after a CORS preflight, which Sluice
//!   never grants.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::state::AppState;
use crate::wire::Dialect;

pub async fn same_origin(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match check(&s.config.server, req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response_for(Dialect::of_path(req.uri().path())),
    }
}

fn check(server: &ServerConfig, method: &Method, h: &HeaderMap) -> Result<(), ApiError> {
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    if server.listen.ip().is_loopback() {
        if let Some(host) = host {
            if !host_allowed(host, &server.allowed_hosts) {
                return Err(ApiError::Forbidden {
                    message: format!(
                        "Host `{host}` is not allowed: this gateway listens on loopback and answers to localhost and [server] allowed_hosts only"
                    ),
                    code: "host_not_allowed",
                });
            }
        }
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let allowed_origin = origin.is_some_and(|o| {
        let o = o.trim_end_matches('/').to_ascii_lowercase();
        server.allowed_origins.contains(&o)
    });
    if !allowed_origin {
        let site = h.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let cross_fetch = site.is_some_and(|s| !matches!(s, "same-origin" | "none"));
        let cross_origin = match (origin, host) {
            (Some("null"), _) => true,
            (Some(o), Some(host)) => {
                origin_authority(o).is_none_or(|a| !a.eq_ignore_ascii_case(host))
            }
            (Some(_), None) => true,
            (None, _) => false,
        };
        if cross_fetch || cross_origin {
            return Err(ApiError::Forbidden {
                message: format!(
                    "Cross-site request refused (Origin {}, Sec-Fetch-Site {}); add the origin to [server] allowed_origins to let a web app call the gateway",
                    origin.unwrap_or("none"),
                    site.unwrap_or("none")
                ),
                code: "cross_site_request",
            });
        }
    }
    if *method == Method::POST {
        let ct = h
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType(
                ct.chars().take(100).collect(),
            ));
        }
    }
    Ok(())
}

/// `https://host:port` -> `host:port` (what the Host header of a same-origin request holds).
fn origin_authority(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    Some(rest.trim_end_matches('/'))
}

/// Loopback names and addresses (any port), or a configured host name.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // [::1]:8080
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || allowed.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_and_rebound_names() {
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "127.9.9.9",
            "[::1]:80",
            "LOCALHOST.",
        ] {
            assert!(host_allowed(ok, &[]), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:80",
            "[::2]:80",
            "127.0.0.1.evil.example",
        ] {
            assert!(!host_allowed(bad, &[]), "{bad}");
        }
        assert!(host_allowed("gw.internal:8080", &["gw.internal".into()]));
    }
}
