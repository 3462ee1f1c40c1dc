//! Upstream Server-Sent Events: a small incremental parser, and the one event loop both adapters
//! run ([`chunk_stream`]): bytes in, events out, each turned into canonical chunks by the
//! adapter's `decode`.

use bytes::{Buf, BytesMut};
use futures::StreamExt;

use super::{ChunkStream, ProviderError};
use crate::chat::ChatChunk;

/// What an adapter makes of one upstream event.
pub(crate) enum Step {
    Chunk(ChatChunk),
    /// Nothing for the client (pings, block boundaries).
    Skip,
    /// The upstream's end marker, with a last chunk (final usage) when it carries one.
    End(Option<ChatChunk>),
    Fail(ProviderError),
}

/// The upstream event loop: reads `resp`'s body, parses events and hands each to `decode`.
/// The stream ends (`None`) only after `decode` saw the end marker; a body that ends or breaks
/// before it yields `StreamCut` first (`end_marker` names it in the message).
pub(crate) fn chunk_stream(
    resp: reqwest::Response,
    end_marker: &'static str,
    mut decode: impl FnMut(SseEvent) -> Step + Send + 'static,
) -> ChunkStream {
    let mut bytes = resp.bytes_stream();
    Box::pin(async_stream::stream! {
        let mut parser = SseParser::default();
        loop {
            match parser.next_event() {
                Err(e) => { yield Err(ProviderError::Protocol(e.to_string())); return; }
                Ok(Some(ev)) => {
                    match decode(ev) {
                        Step::Chunk(c) => yield Ok(c),
                        Step::Skip => {}
                        Step::End(last) => {
                            if let Some(c) = last { yield Ok(c); }
                            return;
                        }
                        Step::Fail(e) => { yield Err(e); return; }
                    }
                    continue;
                }
                Ok(None) => {}
            }
            match bytes.next().await {
                Some(Ok(b)) => parser.push(&b),
                Some(Err(e)) => {
                    yield Err(ProviderError::StreamCut(format!("connection broke: {e}")));
                    return;
                }
                None => {
                    yield Err(ProviderError::StreamCut(format!("stream ended without {end_marker}")));
                    return;
                }
            }
        }
    })
}

/// One SSE event: the `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Feed bytes in, take complete events out. Handles `\n` and `\r\n` line ends, comments
/// (`: ping`), multi-line data, and events split across network reads.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: BytesMut,
    event: Option<String>,
    data: String,
    has_data: bool,
}

/// Upper bound on a single line: a stream that never sends a newline is malformed, not a
/// reason to buffer without end.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("SSE line longer than {MAX_LINE_BYTES} bytes")]
pub struct LineTooLong;

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, LineTooLong> {
        loop {
            let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_LINE_BYTES {
                    return Err(LineTooLong);
                }
                return Ok(None);
            };
            let mut line = &self.buf[..nl];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            self.buf.advance(nl + 1);
            if line.is_empty() {
                if self.has_data || self.event.is_some() {
                    let ev = SseEvent {
                        event: self.event.take(),
                        data: std::mem::take(&mut self.data),
                    };
                    self.has_data = false;
                    return Ok(Some(ev));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => self.event = Some(value.to_owned()),
                "data" => {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
    }

    /// True when bytes of an unfinished event are buffered (a stream ending here was cut).
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.has_data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_events_and_crlf() {
        let mut p = SseParser::default();
        p.push(b"data: {\"a\":1}\r\n\r\nevent: message_stop\nda");
        assert_eq!(
            p.next_event().unwrap(),
            Some(SseEvent {
                event: None,
                data: "{\"a\":1}".into()
            })
        );
        assert_eq!(p.next_event().unwrap(), None);
        p.push(b"ta: x\ndata: y\n\n: comment\n\n");
        assert_eq!(
            p.next_event().unwrap(),
            Some(SseEvent {
                event: Some("message_stop".into()),
                data: "x\ny".into()
            })
        );
        assert_eq!(p.next_event().unwrap(), None);
        assert!(!p.has_partial());
    }
}
