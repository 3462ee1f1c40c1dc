//! Layers in front of the handlers that decide whether a request is let in at all (HTTP
//! concerns, so axum middleware), outermost first:
//! - `record`: every request refused before the pipeline still gets its audit record;
//! - `origin`: browser-origin protection (Host allow-list on loopback, cross-site requests,
//!   JSON bodies only);
//! - `limits`: the gateway's cap on requests in flight;
//! - `auth`: client keys, roles, and each key's budgets, rates and concurrency;
//! - `admin`: administrator access (the dashboard, `/admin/*`, `/metrics`), on the admin routes.

pub mod admin;
pub mod auth;
pub mod limits;
pub mod origin;
pub mod record;

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::response::Response;

/// `resp` with `guard` kept alive until its body has been sent (or dropped): a permit for a
/// stream is released when the stream ends, not when the handler returns.
pub fn hold<G: Send + Sync + Unpin + 'static>(resp: Response, guard: G) -> Response {
    resp.map(|inner| {
        Body::new(Held {
            inner,
            _guard: guard,
        })
    })
}

struct Held<G> {
    inner: Body,
    _guard: G,
}

impl<G: Unpin> HttpBody for Held<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
