//! Server-sent events toward the client: OpenAI's framing (`data: {json}\n\n`, ended by
//! `data: [DONE]\n\n` only when the answer is complete) and Anthropic's (`event: <name>\ndata:
//! {json}\n\n`).

use axum::body::Body;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};

use crate::chat::ChatChunk;
use crate::wire::anthropic::StreamEvent;

pub fn chunk(c: &ChatChunk) -> Bytes {
    let mut buf = BytesMut::with_capacity(256).writer();
    buf.get_mut().put_slice(b"data: ");
    // Serializing our own types into memory cannot fail.
    let _ = serde_json::to_writer(&mut buf, c);
    let mut buf = buf.into_inner();
    buf.put_slice(b"\n\n");
    buf.freeze()
}

/// An in-band error (what OpenAI itself sends; the official SDKs raise on it).
pub fn error(body: &serde_json::Value) -> Bytes {
    Bytes::from(format!("data: {body}\n\n"))
}

pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Anthropic's events, one frame each, in one buffer.
pub fn events(events: &[StreamEvent]) -> Bytes {
    let mut buf = BytesMut::with_capacity(160 * events.len()).writer();
    for ev in events {
        buf.get_mut().put_slice(b"event: ");
        buf.get_mut().put_slice(ev.event_name().as_bytes());
        buf.get_mut().put_slice(b"\ndata: ");
        // Serializing our own types into memory cannot fail.
        let _ = serde_json::to_writer(&mut buf, ev);
        buf.get_mut().put_slice(b"\n\n");
    }
    buf.into_inner().freeze()
}

/// A streaming response with `body`.
pub fn response(body: Body) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
