//! Continuing an answer whose stream broke after output had reached the client, at another
//! target, so the client sees one answer.
//!
//! Each target tries the strategies it can take, in order ([`Resume::ALL`]):
//! 1. **prefill**, where its provider continues a trailing assistant message (Anthropic does,
//!    and OpenAI-compatible servers with `prefill = true`): the conversation is resent with the
//!    text already sent as that message (trailing whitespace left out: Anthropic refuses it);
//! 2. **regenerate**, when it serves the same model as the target that broke (the same model
//!    name in the config, or the same upstream id: a deployment of the model elsewhere): the
//!    request is resent as it was and the new answer is used only if it starts with exactly the
//!    text already sent, which is skipped;
//! 3. **user turn**: the text already sent as an assistant turn, then a user turn asking to
//!    continue it (`chat::CONTINUE_REQUEST`, quoting its end).
//!
//! A strategy the target refuses (a 400 naming the prefill, a regenerated answer that went
//! elsewhere) moves to the next at the same target; a target that fails (5xx, timeout, a
//! provider-side fault) moves to the next target. Each target gets its window of the deadline
//! like any attempt. What was sent, not what the upstream said, decides the splice: the relay
//! only ever appends.

use futures::StreamExt;

use super::calls::{first_output, Call};
use super::failover::{exhausted, Tried};
use super::{window_end, Done, Failure, Plan, Router, RunOptions, Started};
use crate::chat::{
    estimate_tokens_from_chars, ChatRequest, Content, Message, Role, CONTINUE_REQUEST,
};
use crate::config::TargetId;
use crate::outcome::{Outcome, Resume};
use crate::provider::{CallOptions, ErrorClass, Provider, ProviderError};

/// How much of the sent text's end the continuation request quotes.
const QUOTED_TAIL_BYTES: usize = 200;

/// A stream that continues an interrupted one, from its first new output.
pub struct Continued {
    pub how: Resume,
    pub started: Started,
    /// The sent text ended in whitespace the prefill left out: the continuation's leading
    /// whitespace is already with the client.
    pub skip_leading_ws: bool,
}

/// One continuation attempt by one strategy.
struct Continue<'r> {
    req: &'r ChatRequest,
    sent: &'r str,
    how: Resume,
}

impl Call for Continue<'_> {
    type Out = Started;
    async fn once<'a>(
        &'a self,
        p: &'a Provider,
        opts: CallOptions<'a>,
    ) -> Result<Started, ProviderError> {
        match self.how {
            Resume::Prefill => {
                let req = with_prefill(self.req, self.sent);
                first_output(p.stream(&req, opts).await?).await
            }
            Resume::UserTurn => {
                let req = with_continue_request(self.req, self.sent);
                first_output(p.stream(&req, opts).await?).await
            }
            Resume::Regenerate => after_prefix(p.stream(self.req, opts).await?, self.sent).await,
        }
    }
}

impl Router {
    /// Continue, at the plan's other targets (those after `from` first, none in `exclude`), an
    /// answer whose stream broke after `sent` had gone to the client from `from`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the interrupted stream's whole context"
    )]
    pub async fn resume_stream(
        &self,
        plan: &Plan,
        req: &ChatRequest,
        sent: &str,
        from: TargetId,
        exclude: &[TargetId],
        providers: &[Provider],
        ro: RunOptions<'_>,
    ) -> Result<Done<Continued>, Failure> {
        let mut attempts = Vec::new();
        let mut queue = resume_order(plan, from, exclude);
        queue.reverse(); // pop() takes the first
        while let Some(target) = queue.pop() {
            let health = self.health(target);
            if !health.breaker.try_acquire() {
                continue;
            }
            let now = tokio::time::Instant::now();
            let window = window_end(now, ro.deadline, self.available(&queue));
            for how in self.strategies(target, from) {
                let call = Continue { req, sent, how };
                let tried = self
                    .attempt(target, providers, &call, plan, window, ro, 0, &mut attempts)
                    .await;
                let err = match tried {
                    Tried::Ok(started, ms) => {
                        if let Some(last) = attempts.last_mut() {
                            last.outcome = Outcome::Resumed(how);
                        }
                        let skip_leading_ws =
                            how == Resume::Prefill && sent.ends_with(char::is_whitespace);
                        let value = Continued {
                            how,
                            started,
                            skip_leading_ws,
                        };
                        return Ok(Done {
                            value,
                            target,
                            attempts,
                            upstream_ms: ms,
                        });
                    }
                    Tried::Deadline => return Err(exhausted(attempts, true)),
                    Tried::Failed(e) => e,
                };
                match err.class() {
                    // Refused this way of continuing: it is up, try the next way.
                    ErrorClass::Reject | ErrorClass::ContextLength => health.breaker.on_success(),
                    ErrorClass::Provider(fault) => {
                        self.provider_fault(target, fault, &err);
                        break;
                    }
                    ErrorClass::Timeout | ErrorClass::RateLimited(_) | ErrorClass::Retry => {
                        health.breaker.on_failure();
                        break;
                    }
                }
            }
        }
        let deadline = tokio::time::Instant::now() >= ro.deadline;
        Err(exhausted(attempts, deadline))
    }

    /// The strategies `target` can take to continue what `from` started, in order.
    fn strategies(&self, target: TargetId, from: TargetId) -> impl Iterator<Item = Resume> + '_ {
        let tc = self.config.target(target);
        let prefill = self.config.provider(tc.provider).prefill;
        let was = self.config.target(from);
        let same_model = tc.model == was.model || tc.upstream_model == was.upstream_model;
        Resume::ALL.into_iter().filter(move |how| match how {
            Resume::Prefill => prefill,
            Resume::Regenerate => same_model,
            Resume::UserTurn => true,
        })
    }

    /// How many continuation targets a stream committed to `from` could still use.
    pub fn resume_candidates(&self, plan: &Plan, from: TargetId, exclude: &[TargetId]) -> usize {
        self.available(&resume_order(plan, from, exclude))
    }
}

/// The plan's targets after `from`, then those before it; none in `exclude`, each once.
fn resume_order(plan: &Plan, from: TargetId, exclude: &[TargetId]) -> Vec<TargetId> {
    let at = plan
        .targets
        .iter()
        .position(|t| *t == from)
        .map_or(0, |i| i + 1);
    let (before, after) = plan.targets.split_at(at.min(plan.targets.len()));
    let mut out: Vec<TargetId> = Vec::new();
    for t in after.iter().chain(before) {
        if *t != from && !exclude.contains(t) && !out.contains(t) {
            out.push(*t);
        }
    }
    out
}

/// The request with the sent text as a trailing assistant message (appended to the client's
/// own prefill, if the conversation ended with one).
fn with_prefill(req: &ChatRequest, sent: &str) -> ChatRequest {
    let mut r = req.clone();
    let text = sent.trim_end();
    match r.messages.last_mut() {
        Some(m) if m.role == Role::Assistant && m.tool_calls.is_none() => {
            let mut whole = m.text();
            whole.push_str(text);
            m.content = Some(Content::Text(whole));
        }
        _ => r.messages.push(Message::new(Role::Assistant, text)),
    }
    cap_output(&mut r, sent);
    r
}

/// The request with the sent text as an assistant turn and a user turn asking to continue it.
fn with_continue_request(req: &ChatRequest, sent: &str) -> ChatRequest {
    let mut r = req.clone();
    let mut start = sent.len().saturating_sub(QUOTED_TAIL_BYTES);
    while !sent.is_char_boundary(start) {
        start += 1;
    }
    let ask = format!("{CONTINUE_REQUEST}«{}»", &sent[start..]);
    r.messages.push(Message::new(Role::Assistant, sent));
    r.messages.push(Message::new(Role::User, ask));
    cap_output(&mut r, sent);
    r
}

/// The client's output cap, less what was already sent (estimated), so the whole answer keeps
/// to it.
fn cap_output(r: &mut ChatRequest, sent: &str) {
    let Some(max) = r.max_output_tokens() else {
        return;
    };
    let left = max
        .saturating_sub(estimate_tokens_from_chars(sent.len()))
        .max(1);
    if r.max_completion_tokens.is_some() {
        r.max_completion_tokens = Some(left);
    } else {
        r.max_tokens = Some(left);
    }
}

/// Reads a regenerated answer while it repeats `sent` exactly, and starts the stream where it
/// goes beyond it. Anything else (other words, tool calls, an end before `sent` is matched) is
/// `Diverged`. Linear in `sent`: each byte is compared once.
async fn after_prefix(
    mut s: crate::provider::ChunkStream,
    sent: &str,
) -> Result<Started, ProviderError> {
    let mut matched = 0;
    loop {
        let mut c = match s.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => return Err(e),
            None => return Err(ProviderError::Diverged),
        };
        let Some(choice) = c.choices.first_mut() else {
            continue;
        };
        if choice.delta.tool_calls.is_some() {
            return Err(ProviderError::Diverged);
        }
        let text = choice.delta.content.take().unwrap_or_default();
        let need = &sent[matched..];
        if text.len() <= need.len() {
            if !need.as_bytes().starts_with(text.as_bytes()) {
                return Err(ProviderError::Diverged);
            }
            matched += text.len();
            match choice.finish_reason {
                Some(_) if matched == sent.len() => {
                    return Ok(Started {
                        first: vec![c],
                        rest: s,
                    })
                }
                Some(_) => return Err(ProviderError::Diverged),
                None => continue,
            }
        }
        let Some(rest) = text.strip_prefix(need) else {
            return Err(ProviderError::Diverged);
        };
        choice.delta.content = Some(rest.to_owned());
        choice.delta.role = None;
        return Ok(Started {
            first: vec![c],
            rest: s,
        });
    }
}
