//! Every request gets an audit record: the pipeline records the ones it serves; this layer
//! records the rest when they were refused (any 4xx or 5xx: bad JSON, no or wrong key, an
//! unknown URL or method, too large, over a limit or budget, cross-site) or changed something
//! (a POST or DELETE that succeeded, e.g. an admin purge). Successful reads (health checks,
//! `/metrics`, model lists, stats) are not recorded, nor is a browser's login challenge: a read
//! of the dashboard or `/admin/` that carried no key at all, answered 401 with
//! `WWW-Authenticate` (the browser then repeats it with the key; a wrong key is recorded).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;

use super::auth::Caller;
use crate::error::ErrorLabel;
use crate::pipeline::{self, Recorded};
use crate::state::{AppState, RequestId};
use crate::wire::Dialect;

pub async fn refusals(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let dialect = Dialect::of_path(req.uri().path());
    let no_credentials = !["authorization", "x-api-key", "api-key"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let challenge = reads
        && no_credentials
        && status == 401
        && resp.headers().contains_key(header::WWW_AUTHENTICATE);
    if resp.extensions().get::<Recorded>().is_some() || (reads && status < 400) || challenge {
        return resp;
    }
    pipeline::record_refused(
        &s,
        pipeline::Refused {
            started,
            request_id: request_id.unwrap_or_else(|| Arc::from("unknown")),
            caller: resp.extensions().get::<Caller>().map(|c| c.0.clone()),
            status,
            error: match resp.extensions().get::<ErrorLabel>() {
                Some(l) => Some(l.0),
                None if status >= 400 => Some("refused"),
                None => None,
            },
            dialect,
        },
    );
    resp
}
