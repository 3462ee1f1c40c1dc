//! Server-sent events toward the client, in OpenAI's framing: `data: {json}\n\n`, ended by
//! `data: [DONE]\n\n` only when the answer is complete.

use bytes::{BufMut, Bytes, BytesMut};

use crate::chat::ChatChunk;

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
