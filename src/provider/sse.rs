//! Upstream Server-Sent Events: a small incremental parser, and the one event loop both adapters
//! run ([`chunk_stream`]): bytes in, events out, each turned into canonical chunks by the
//! adapter's [`Decode`].
//!
//! The loop is tolerant where a client would be: one malformed or unknown event is skipped
//! (logged once per stream, counted per target), and only a run of `max_malformed` in a row
//! fails the attempt; a body that ends (or breaks) after the answer is complete by its content
//! (`Decode::complete`: every finish reason, and the usage when the client asked for it) ends
//! the stream cleanly, as if the end marker had come.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use futures::StreamExt;

use super::{ChunkStream, ProviderError};
use crate::chat::ChatChunk;
use crate::telemetry::counters::TargetCounters;

/// What an adapter makes of one upstream event.
pub(crate) enum Step {
    Chunk(ChatChunk),
    /// Nothing for the client (pings, block boundaries, event types it may ignore).
    Skip,
    /// Not the protocol (bad JSON, not a chunk): skipped, unless it is one of a run.
    Malformed(String),
    /// The upstream's end marker, with a last chunk (final usage) when it carries one.
    End(Option<ChatChunk>),
    Fail(ProviderError),
}

/// An adapter's stream decoder.
pub(crate) trait Decode: Send + 'static {
    fn event(&mut self, ev: SseEvent) -> Step;
    /// The body ended before the end marker: `Some(last chunk to send, if any)` when what
    /// arrived is a complete answer by its content, `None` when it was cut.
    fn complete(&mut self) -> Option<Option<ChatChunk>>;
}

/// How tolerant the loop is, and where it counts what it skips.
#[derive(Clone)]
pub struct Framing {
    /// This many malformed events in a row fail the attempt (at least 1).
    pub max_malformed: u32,
    pub counters: Arc<TargetCounters>,
}

/// The upstream event loop: reads `resp`'s body, parses events and hands each to `decode`.
/// The stream ends (`None`) after the end marker, or after a complete answer whose body ended
/// without it; a body that ends or breaks before either yields `StreamCut` first (`end_marker`
/// names it in the message).
pub(crate) fn chunk_stream(
    resp: reqwest::Response,
    end_marker: &'static str,
    framing: Framing,
    mut decode: impl Decode,
) -> ChunkStream {
    let mut bytes = resp.bytes_stream();
    Box::pin(async_stream::stream! {
        let mut parser = SseParser::default();
        let mut bad_run = 0u32;
        let mut logged = false;
        loop {
            match parser.next_event() {
                Err(e) => { yield Err(ProviderError::Protocol(e.to_string())); return; }
                Ok(Some(ev)) => {
                    let step = decode.event(ev);
                    if !matches!(step, Step::Malformed(_)) {
                        bad_run = 0;
                    }
                    match step {
                        Step::Chunk(c) => yield Ok(c),
                        Step::Skip => {}
                        Step::Malformed(why) => {
                            bad_run = bad_run.saturating_add(1);
                            if bad_run >= framing.max_malformed.max(1) {
                                yield Err(ProviderError::Protocol(format!(
                                    "{bad_run} malformed events in a row, the last: {why}"
                                )));
                                return;
                            }
                            framing.counters.events_skipped.fetch_add(1, Relaxed);
                            if !logged {
                                logged = true;
                                tracing::warn!(error = %why, "skipped a malformed upstream stream event");
                            }
                        }
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
            let cut = match bytes.next().await {
                Some(Ok(b)) => { parser.push(&b); continue; }
                Some(Err(e)) => format!("connection broke: {}", super::redacted(&e)),
                None => format!("stream ended without {end_marker}"),
            };
            match decode.complete() {
                Some(last) => {
                    tracing::debug!(cut = %cut, "upstream stream ended after a complete answer");
                    if let Some(c) = last { yield Ok(c); }
                }
                None => yield Err(ProviderError::StreamCut(cut)),
            }
            return;
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
    /// `buf[..scanned]` holds no newline: a long line arriving in many reads is scanned once,
    /// not from its start at every read (which was quadratic).
    scanned: usize,
    event: Option<String>,
    data: String,
    has_data: bool,
}

/// Upper bound on a single line, and on one event's data: a stream that never sends a newline
/// (or a blank line) is malformed, not a reason to buffer without end.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("SSE line or event longer than {MAX_LINE_BYTES} bytes")]
pub struct LineTooLong;

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, LineTooLong> {
        loop {
            let Some(nl) = self.buf[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + self.scanned)
            else {
                self.scanned = self.buf.len();
                if self.buf.len() > MAX_LINE_BYTES {
                    return Err(LineTooLong);
                }
                return Ok(None);
            };
            self.scanned = 0;
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
                    if self.data.len() + value.len() > MAX_LINE_BYTES {
                        return Err(LineTooLong);
                    }
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

    /// A long line in small reads is scanned once (the parser used to rescan from its start
    /// at every read), and an endless line or event is an error, not unbounded memory.
    #[test]
    fn long_lines_are_scanned_once_and_bounded() {
        let mut p = SseParser::default();
        for _ in 0..4096 {
            p.push(&[b'x'; 1024]);
            assert_eq!(p.next_event().unwrap(), None);
            assert_eq!(p.scanned, p.buf.len());
        }
        p.push(b"\n\n");
        assert_eq!(
            p.next_event().unwrap(),
            None,
            "a line without a field name is ignored"
        );
        let mut p = SseParser::default();
        let line = format!("data: {}\n", "y".repeat(1 << 20));
        let mut failed = false;
        for _ in 0..20 {
            p.push(line.as_bytes());
            if p.next_event().is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "an event of more than 16 MiB of data is refused");
        let mut p = SseParser::default();
        p.push(&vec![b'z'; MAX_LINE_BYTES + 1]);
        assert!(p.next_event().is_err());
    }
}
