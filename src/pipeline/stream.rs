//! Streamed replies: replaying a cached answer, and recording a stream when it ends (the relay
//! of a committed upstream stream is `relay.rs`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use super::record::{self, Ending, RequestInfo};
use super::{Event, EventStream, Events, Meta, Served, StreamItem};
use crate::accounting::audit::PromptLog;
use crate::chat::{self, ChatRequest, ChatResponse, TokenUsage};
use crate::error::ApiError;
use crate::state::AppState;

/// A cached answer, as a fresh completion (new id, now) or as a replayed SSE stream.
pub(super) fn replay(mut resp: ChatResponse, req: &ChatRequest) -> Served {
    resp.id = chat::new_completion_id();
    resp.created = chat::unix_now();
    if !req.stream {
        return Served::Complete(resp);
    }
    // Always with the usage chunk: the recorder reads it, and drops it when not asked for.
    let chunks = chat::replay_chunks(&resp, &resp.id, true);
    let items = chunks
        .into_iter()
        .map(|c| Event::Out(StreamItem::Chunk(c)))
        .chain(std::iter::once(Event::Out(StreamItem::Done)));
    Served::Stream(Box::pin(futures::stream::iter(items)))
}

/// Wraps a reply stream: filters usage chunks for clients that did not ask for them, and
/// records the request when the stream ends: complete, failed, or abandoned by its client
/// (recorded on drop with status 499).
pub(super) fn recorded(
    s: Arc<AppState>,
    info: RequestInfo,
    meta: &Meta,
    inner: Events,
) -> EventStream {
    let mut inner = InSpan {
        span: info.span.clone(),
        inner,
    };
    let answer = info
        .prompt
        .is_some()
        .then(|| (sha2::Sha256::default(), false));
    let mut rec = StreamRecorder {
        s,
        info,
        meta: meta.clone(),
        usage: None,
        output_chars: 0,
        answer,
        done: false,
    };
    Box::pin(async_stream::stream! {
        while let Some(event) = inner.next().await {
            let item = match event {
                Event::Out(item) => item,
                Event::Resumed { attempts, from, billed, to } => {
                    rec.meta.attempts = attempts;
                    rec.meta.earlier.push((from, billed));
                    rec.meta.target = Some(to);
                    continue;
                }
            };
            match item {
                StreamItem::Chunk(mut c) => {
                    if let Some(u) = &c.usage {
                        rec.usage = Some(u.tokens());
                    }
                    for ch in &c.choices {
                        let Some(text) = ch.delta.content.as_deref() else { continue };
                        rec.output_chars += text.len();
                        if let (0, Some((hasher, seen))) = (ch.index, &mut rec.answer) {
                            sha2::Digest::update(hasher, text);
                            *seen |= !text.is_empty();
                        }
                    }
                    if !rec.info.include_usage {
                        if c.choices.is_empty() {
                            continue;
                        }
                        c.usage = None;
                    }
                    yield StreamItem::Chunk(c);
                }
                StreamItem::Done => {
                    rec.finish(Ending::answered(None));
                    yield StreamItem::Done;
                    return;
                }
                StreamItem::Error(e) => {
                    if let ApiError::StreamInterrupted { attempts, .. } = &e {
                        rec.meta.attempts = attempts.clone();
                    }
                    rec.finish(Ending::failed(&e));
                    yield StreamItem::Error(e);
                    return;
                }
            }
        }
    })
}

/// Polls a reply stream inside the request's span: the handler has returned by then, but what
/// the stream logs, and the write-back it does at its end, still belong to the request. (The
/// recorder around it names its parent span explicitly.)
struct InSpan {
    span: tracing::Span,
    inner: Events,
}

impl Stream for InSpan {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = self.get_mut();
        let _in = this.span.enter();
        this.inner.as_mut().poll_next(cx)
    }
}

struct StreamRecorder {
    s: Arc<AppState>,
    info: RequestInfo,
    meta: Meta,
    usage: Option<TokenUsage>,
    output_chars: usize,
    /// `[accounting] log_prompts`: the first choice's text so far, digested.
    answer: Option<(sha2::Sha256, bool)>,
    done: bool,
}

impl StreamRecorder {
    /// Records the stream once; `end.usage` and `end.output_chars` come from what was relayed.
    fn finish(&mut self, end: Ending) {
        if self.done {
            return;
        }
        self.done = true;
        // Only an answer served in full gets a digest.
        if let (200, None, Some(log), Some((hasher, seen))) = (
            end.status,
            end.error,
            &mut self.info.prompt,
            self.answer.take(),
        ) {
            log.answer = PromptLog::digest_of(hasher, seen);
        }
        let end = Ending {
            usage: self.usage,
            output_chars: self.output_chars,
            ..end
        };
        record::finish(&self.s, &mut self.info, &self.meta, end);
    }
}

impl Drop for StreamRecorder {
    /// The client went away before the end: recorded with nginx's 499 "client closed request".
    fn drop(&mut self) {
        self.finish(Ending::CLIENT_CLOSED);
    }
}
