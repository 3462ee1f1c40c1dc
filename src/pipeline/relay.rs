//! Relaying a committed stream to the client, and continuing it at another target when it
//! breaks after output (`stream_resume = "continue"`).
//!
//! The client sees one stream: the continuation's chunks are spliced in after what was sent
//! (same id, no second role chunk, the leading whitespace a trimmed prefill already sent left
//! out), with one `[DONE]`, and its usage is the sum over the attempts (the interrupted part
//! estimated from its text). When nothing can continue it (no target left, no time left, tool
//! calls or several choices, or a finish reason already sent), it ends as before: an in-band
//! `stream_interrupted` error and no `[DONE]`, so no client takes a truncated answer for a
//! complete one. Only a stream that completed is cached.
//!
//! While a continuation is possible, each wait for the next chunk is bounded by a share of the
//! time left ([`window_end`]), like an attempt's, so a stall leaves the next target time.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use super::cached::WriteBack;
use super::{Event, Events, StreamItem};
use crate::chat::{self, ChatChunk, ChatRequest, StreamAssembler, Usage};
use crate::config::{StreamResume, TargetId};
use crate::error::ApiError;
use crate::outcome::{Attempt, Outcome, Resume};
use crate::provider::{chunk_has_output, ProviderError, TimeoutStage};
use crate::router::{
    error_detail, window_end, Continued, Done, FailReason, Failure, Plan, RunOptions, Started,
};
use crate::state::AppState;
use crate::telemetry::metrics::RouteSlot;

/// A stream the request is committed to: its target produced output.
pub(super) struct Committed {
    pub target: TargetId,
    /// From the start of its attempt to its first output.
    pub first_token_ms: f64,
    pub started: Started,
}

/// What continuing a broken stream needs: the plan and request it came from.
pub(super) struct Origin {
    pub plan: Plan,
    pub req: ChatRequest,
    pub sim_faults: Option<String>,
    pub deadline: tokio::time::Instant,
    /// Every attempt so far, the committed one last.
    pub attempts: Vec<Attempt>,
}

/// The relay's bookkeeping: what the client has been sent, and of which segment.
struct Relay {
    s: Arc<AppState>,
    origin: Origin,
    /// The target of the current segment, when its attempt started, when it committed.
    target: TargetId,
    segment_ms: f64,
    committed: Instant,
    /// Targets whose stream broke after output (not asked to continue again).
    broken: Vec<TargetId>,
    /// How many targets could continue the current segment (counted when it starts, not per
    /// chunk: the wait limit is computed for every chunk).
    candidates: usize,
    /// Choice 0's text as sent, for a continuation.
    sent: String,
    finished: bool,
    unresumable: bool,
    /// The original stream's id and time, kept on spliced chunks.
    id: Option<(String, u64)>,
    /// Usage of the interrupted segments (estimated), added to the final usage chunk.
    billed: Usage,
    /// Continuation only: leading whitespace still to drop, role deltas to drop.
    splice: Option<bool>,
    assembled: Option<StreamAssembler>,
}

pub(super) fn relay(
    s: Arc<AppState>,
    committed: Committed,
    origin: Origin,
    write_back: Option<Box<WriteBack>>,
) -> Events {
    let Committed {
        target,
        first_token_ms,
        started: Started { first, mut rest },
    } = committed;
    let candidates = s.router.resume_candidates(&origin.plan, target, &[]);
    let mut r = Relay {
        s,
        target,
        candidates,
        segment_ms: first_token_ms,
        committed: Instant::now(),
        broken: Vec::new(),
        sent: String::new(),
        finished: false,
        unresumable: origin.req.n.is_some_and(|n| n > 1),
        id: None,
        billed: Usage::default(),
        splice: None,
        assembled: write_back.as_ref().map(|_| StreamAssembler::default()),
        origin,
    };
    Box::pin(async_stream::stream! {
        let mut pending = first;
        loop {
            for c in pending.drain(..) {
                if let Some(c) = r.outgoing(c) {
                    yield Event::Out(StreamItem::Chunk(c));
                }
            }
            let limit = r.wait_limit();
            let err = match tokio::time::timeout_at(limit, rest.next()).await {
                Ok(Some(Ok(c))) => {
                    pending.push(c);
                    continue;
                }
                Ok(None) => {
                    r.store(write_back);
                    yield Event::Out(StreamItem::Done);
                    return;
                }
                Ok(Some(Err(e))) => e,
                Err(_) if limit >= r.origin.deadline => ProviderError::Timeout(TimeoutStage::Total),
                Err(_) => ProviderError::Timeout(TimeoutStage::Share),
            };
            r.interrupted(&err);
            match r.recover(&err).await {
                Recovery::Resumed(note, started) => {
                    yield note;
                    pending = started.first;
                    rest = started.rest;
                }
                Recovery::Lost(e) => {
                    yield Event::Out(StreamItem::Error(e));
                    return;
                }
            }
        }
    })
}

/// How a break after output ended.
enum Recovery {
    /// Another target continues the stream from here (the note is for the recorder).
    Resumed(Event, Started),
    /// It could not be continued: the stream's last event.
    Lost(ApiError),
}

impl Relay {
    fn enabled(&self) -> bool {
        self.origin.plan.policy.stream_resume == StreamResume::Continue
    }

    /// Could another target continue what was sent?
    fn resumable(&self) -> bool {
        self.enabled()
            && !self.finished
            && !self.unresumable
            && !self.sent.is_empty()
            && tokio::time::Instant::now() < self.origin.deadline
    }

    /// How long to wait for the next chunk: the deadline, or while another target could still
    /// continue the stream, a share of the time left (so a stall leaves it time).
    fn wait_limit(&self) -> tokio::time::Instant {
        let deadline = self.origin.deadline;
        match self.candidates {
            _ if !self.resumable() => deadline,
            0 => deadline,
            n => window_end(tokio::time::Instant::now(), deadline, n),
        }
    }

    /// A chunk of the current segment as the client gets it (`None`: nothing left to send).
    fn outgoing(&mut self, mut c: ChatChunk) -> Option<ChatChunk> {
        match &self.id {
            None => self.id = Some((c.id.clone(), c.created)),
            Some((id, created)) if self.splice.is_some() => {
                c.id.clone_from(id);
                c.created = *created;
            }
            Some(_) => {}
        }
        if let Some(skip_ws) = self.splice.as_mut() {
            for ch in &mut c.choices {
                ch.delta.role = None;
                if let (true, Some(text)) = (*skip_ws, ch.delta.content.as_mut()) {
                    let kept = text.trim_start().len();
                    text.drain(..text.len() - kept);
                    *skip_ws = text.is_empty();
                }
            }
            let carries = c.usage.is_some() || chunk_has_output(&c);
            if !carries {
                return None;
            }
        }
        if let Some(u) = &c.usage {
            c.usage = Some(self.billed.plus(u));
        }
        for ch in &c.choices {
            self.finished |= ch.finish_reason.is_some();
            self.unresumable |= ch.index > 0 || ch.delta.tool_calls.is_some();
            if let (0, Some(text)) = (ch.index, &ch.delta.content) {
                self.sent.push_str(text);
            }
        }
        if let Some(a) = self.assembled.as_mut() {
            a.push(&c);
        }
        Some(c)
    }

    /// The current segment broke: its attempt is listed with the failure in place of its `ok`,
    /// and the failure is held against its target unless the deadline caused it.
    fn interrupted(&mut self, err: &ProviderError) {
        self.s.router.stream_failed(self.target, err);
        let name = self.s.config.target(self.target).name.clone();
        tracing::warn!(target = %name, error = %err, "stream failed after output was sent");
        let attempts = &mut self.origin.attempts;
        if attempts
            .last()
            .is_some_and(|a| a.outcome.is_ok() && a.target == name)
        {
            attempts.pop();
        }
        let ms = self.segment_ms + self.committed.elapsed().as_secs_f64() * 1000.0;
        attempts.push(Attempt {
            target: name,
            status: err.status(),
            outcome: Outcome::Interrupted {
                detail: error_detail(err),
            },
            elapsed_ms: ms.round() as u64,
        });
        self.broken.push(self.target);
    }

    /// After a break: a continuation at another target when one is possible and succeeds, else
    /// the `stream_interrupted` error listing every attempt. Counted either way (when enabled).
    async fn recover(&mut self, err: &ProviderError) -> Recovery {
        let mut deadline = matches!(err, ProviderError::Timeout(TimeoutStage::Total));
        if self.resumable() {
            match self.resume().await {
                Ok(done) => {
                    let (attempts, from, billed) =
                        self.spliced(done.target, done.attempts, done.upstream_ms);
                    let Continued {
                        how,
                        started,
                        skip_leading_ws,
                    } = done.value;
                    self.splice = Some(skip_leading_ws);
                    self.count(Some(how));
                    let to = done.target;
                    let note = Event::Resumed {
                        attempts,
                        from,
                        billed,
                        to,
                    };
                    return Recovery::Resumed(note, started);
                }
                Err(f) => {
                    deadline |= matches!(f.reason, FailReason::Exhausted { deadline: true });
                    self.origin.attempts.extend(f.attempts);
                }
            }
        }
        if self.enabled() {
            self.count(None);
        }
        let attempts: Arc<[Attempt]> = std::mem::take(&mut self.origin.attempts).into();
        Recovery::Lost(ApiError::StreamInterrupted { attempts, deadline })
    }

    async fn resume(&self) -> Result<Done<Continued>, Failure> {
        let o = &self.origin;
        let ro = RunOptions {
            deadline: o.deadline,
            sim_faults: o.sim_faults.as_deref(),
        };
        let s = &self.s;
        s.router
            .resume_stream(
                &o.plan,
                &o.req,
                &self.sent,
                self.target,
                &self.broken,
                &s.providers,
                ro,
            )
            .await
    }

    /// A continuation started at `to`: the attempts so far for the record, the target that
    /// broke with the (estimated) usage of its part; from here chunks come from `to`.
    fn spliced(
        &mut self,
        to: TargetId,
        attempts: Vec<Attempt>,
        ms: f64,
    ) -> (Arc<[Attempt]>, TargetId, Usage) {
        let from = self.target;
        let part = Usage::new(
            self.origin.req.estimate_prompt_tokens(),
            chat::estimate_tokens_from_chars(self.sent.len()),
        );
        let part = Usage::new(
            part.prompt_tokens,
            part.completion_tokens
                .saturating_sub(self.billed.completion_tokens),
        );
        self.billed = self.billed.plus(&part);
        self.origin.attempts.extend(attempts);
        self.target = to;
        self.segment_ms = ms;
        self.committed = Instant::now();
        let router = &self.s.router;
        self.candidates = router.resume_candidates(&self.origin.plan, to, &self.broken);
        (self.origin.attempts.clone().into(), from, part)
    }

    fn count(&self, how: Option<Resume>) {
        let slot = match self.origin.plan.route {
            Some(r) => RouteSlot::Route(r),
            None => RouteSlot::Passthrough,
        };
        self.s.metrics.count_resume(slot, how);
    }

    fn store(&mut self, write_back: Option<Box<WriteBack>>) {
        if let (Some(wb), Some(a)) = (write_back, self.assembled.take()) {
            if let Some(resp) = a.finish() {
                wb.store(&resp);
            }
        }
    }
}
