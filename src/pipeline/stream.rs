//! Streamed replies: relaying a committed upstream stream, replaying a cached answer, and
//! recording a stream when it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::{Stream, StreamExt};

use super::cached::WriteBack;
use super::record::{self, Ending, RequestInfo};
use super::{EventStream, Meta, Reply, StreamItem};
use crate::accounting::audit::PromptLog;
use crate::chat::{self, ChatRequest, ChatResponse, StreamAssembler, TokenUsage};
use crate::config::TargetId;
use crate::error::ApiError;
use crate::outcome::{Attempt, Outcome};
use crate::provider::{ProviderError, TimeoutStage};
use crate::router::Started;
use crate::state::AppState;

/// A stream the request is committed to: its target produced output.
pub(super) struct Committed {
    pub target: TargetId,
    /// From the start of its attempt to its first output.
    pub first_token_ms: f64,
    pub started: Started,
}

/// A cached answer, as a fresh completion (new id, now) or as a replayed SSE stream.
pub(super) fn replay(mut resp: ChatResponse, req: &ChatRequest) -> Reply {
    resp.id = chat::new_completion_id();
    resp.created = chat::unix_now();
    if !req.stream {
        return Reply::Complete(resp);
    }
    // Always with the usage chunk: the recorder reads it, and drops it when not asked for.
    let chunks = chat::replay_chunks(&resp, &resp.id, true);
    let items = chunks
        .into_iter()
        .map(StreamItem::Chunk)
        .chain(std::iter::once(StreamItem::Done));
    Reply::Stream(Box::pin(futures::stream::iter(items)))
}

/// Relay a committed stream to the client. A failure after output was sent can no longer fail
/// over invisibly: it ends the stream with an in-band error and no `[DONE]`, so no client
/// mistakes a truncated answer for a complete one. Only a stream that completed is cached.
/// The error lists the committed attempt alone, with its time from its start to the failure;
/// [`recorded`] puts it in place of that attempt's `ok` among the earlier ones.
pub(super) fn relay(
    s: Arc<AppState>,
    committed_to: Committed,
    deadline: tokio::time::Instant,
    write_back: Option<Box<WriteBack>>,
) -> EventStream {
    let Committed {
        target,
        first_token_ms,
        started: Started { first, mut rest },
    } = committed_to;
    let committed = Instant::now();
    Box::pin(async_stream::stream! {
        let mut assembled = write_back.as_ref().map(|_| StreamAssembler::default());
        for c in first {
            if let Some(a) = assembled.as_mut() {
                a.push(&c);
            }
            yield StreamItem::Chunk(c);
        }
        loop {
            let next = tokio::time::timeout_at(deadline, rest.next()).await;
            let err = match next {
                Ok(Some(Ok(c))) => {
                    if let Some(a) = assembled.as_mut() {
                        a.push(&c);
                    }
                    yield StreamItem::Chunk(c);
                    continue;
                }
                Ok(None) => {
                    if let (Some(wb), Some(a)) = (write_back, assembled) {
                        if let Some(resp) = a.finish() {
                            wb.store(&resp);
                        }
                    }
                    yield StreamItem::Done;
                    return;
                }
                Ok(Some(Err(e))) => e,
                Err(_) => ProviderError::Timeout(TimeoutStage::Total),
            };
            s.router.health(target).breaker.on_failure();
            let name = &s.config.target(target).name;
            tracing::warn!(target = %name, error = %err, "stream failed after output was sent");
            yield StreamItem::Error(ApiError::AllTargetsFailed {
                attempts: Arc::from([Attempt {
                    target: name.clone(),
                    status: err.status(),
                    outcome: Outcome::Interrupted { detail: err.to_string() },
                    elapsed_ms: (first_token_ms + committed.elapsed().as_secs_f64() * 1000.0)
                        .round() as u64,
                }]),
                deadline: matches!(err, ProviderError::Timeout(TimeoutStage::Total)),
            });
            return;
        }
    })
}

/// Wraps a reply stream: filters usage chunks for clients that did not ask for them, and
/// records the request when the stream ends: complete, failed, or abandoned by its client
/// (recorded on drop with status 499).
pub(super) fn recorded(
    s: Arc<AppState>,
    info: RequestInfo,
    meta: &Meta,
    inner: EventStream,
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
        while let Some(item) = inner.next().await {
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
                StreamItem::Error(mut e) => {
                    rec.commit_failure(&mut e);
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
    inner: EventStream,
}

impl Stream for InSpan {
    type Item = StreamItem;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<StreamItem>> {
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
    /// A committed stream failed ([`relay`]): its attempt ends in that failure instead of `ok`,
    /// in the audit record and in the error the client reads, which then lists every attempt.
    fn commit_failure(&mut self, e: &mut ApiError) {
        let ApiError::AllTargetsFailed { attempts, .. } = e else {
            return;
        };
        let [failed] = &attempts[..] else {
            return;
        };
        // The failure path only: the list is copied once.
        let mut all = self.meta.attempts.to_vec();
        if all
            .last()
            .is_some_and(|a| a.outcome.is_ok() && a.target == failed.target)
        {
            all.pop();
        }
        all.push(failed.clone());
        self.meta.attempts = all.into();
        *attempts = self.meta.attempts.clone();
    }

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
