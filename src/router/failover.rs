//! The failover loop: a plain loop over the plan's targets that retries transient failures
//! with jittered backoff (within each target's retry budget), honours `Retry-After`, moves to
//! larger context windows, moves on at once from a timeout or a provider-side fault, stops at
//! the first error that is the client's, and keeps every attempt for the final error and the
//! audit.
//!
//! Each target gets a window of the request's deadline (`deadline.rs`) for all its attempts and
//! waits. A failure caused by the request's own deadline is not held against the target (its
//! breaker does not count it).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tracing::field::Empty;
use tracing::Instrument;

use serde_json::{Map, Value};

use super::calls::{Call, Complete, Embeddings, Stream};
use super::{backoff, window_end, Plan, Router, RunOptions};
use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::config::{TargetConfig, TargetId};
use crate::outcome::{Attempt, FailureClass, Outcome, ProviderFault};
use crate::provider::{
    CallOptions, ChunkStream, ErrorClass, Framing, Provider, ProviderError, TimeoutStage,
};

/// A successful call and how it was obtained.
pub struct Done<T> {
    pub value: T,
    pub target: TargetId,
    /// Every attempt, the successful one last.
    pub attempts: Vec<Attempt>,
    /// Time spent in the successful upstream call (for a stream: until its first output).
    pub upstream_ms: f64,
}

/// A stream that has produced its first output: from here on it is committed to its target.
pub struct Started {
    /// Chunks read while waiting for the first output (role chunk, then the first content).
    pub first: Vec<ChatChunk>,
    pub rest: ChunkStream,
}

/// A failed call with every attempt made.
pub struct Failure {
    pub attempts: Vec<Attempt>,
    pub reason: FailReason,
}

/// Why the loop gave up.
#[derive(Debug)]
pub enum FailReason {
    /// Every target failed or was skipped (circuit open); `deadline`: the total deadline ran out.
    Exhausted { deadline: bool },
    /// A target refused the request itself (a 4xx that is the client's, or a prompt too long
    /// for every window): relayed to the client.
    Rejected {
        target: TargetId,
        error: ProviderError,
    },
}

/// What the loop does after a failed attempt.
enum Next {
    /// The request ends with the target's refusal (the client's error).
    Stop,
    /// These targets instead of the rest of the plan (larger context windows).
    Replan(Vec<TargetId>),
    MoveOn,
    /// Another try at the same target, after this wait.
    Retry(std::time::Duration),
}

/// How one attempt ended, for the loop to decide on.
pub(super) enum Tried<T> {
    Ok(T, f64),
    /// The request's deadline ran out: nobody's fault, the loop ends.
    Deadline,
    Failed(ProviderError),
}

impl Router {
    pub async fn complete(
        &self,
        plan: &Plan,
        req: &ChatRequest,
        providers: &[Provider],
        ro: RunOptions<'_>,
    ) -> Result<Done<ChatResponse>, Failure> {
        self.run(plan, providers, Complete(req), ro).await
    }

    /// Start a stream and wait for its first output; failures until then fail over invisibly.
    pub async fn start_stream(
        &self,
        plan: &Plan,
        req: &ChatRequest,
        providers: &[Provider],
        ro: RunOptions<'_>,
    ) -> Result<Done<Started>, Failure> {
        self.run(plan, providers, Stream(req), ro).await
    }

    /// An embeddings call through the same loop (retries, failover, breakers).
    pub async fn embeddings(
        &self,
        plan: &Plan,
        body: &Map<String, Value>,
        providers: &[Provider],
        ro: RunOptions<'_>,
    ) -> Result<Done<Value>, Failure> {
        self.run(plan, providers, Embeddings(body), ro).await
    }

    /// Targets of `queue` a request could still go to (their circuit is not open).
    pub(super) fn available(&self, queue: &[TargetId]) -> usize {
        let open = |t: &&TargetId| self.health(**t).breaker.state() == super::BreakerState::Open;
        queue.iter().filter(|t| !open(t)).count()
    }

    /// The loop: `call` is one attempt at one provider.
    async fn run<C: Call>(
        &self,
        plan: &Plan,
        providers: &[Provider],
        call: C,
        ro: RunOptions<'_>,
    ) -> Result<Done<C::Out>, Failure> {
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut tried: Vec<TargetId> = Vec::new();
        let mut queue: Vec<TargetId> = plan.targets.clone();
        queue.reverse(); // pop() takes from the front of the plan
        while let Some(target) = queue.pop() {
            let tc = self.config.target(target);
            let health = self.health(target);
            if !health.breaker.try_acquire() {
                tracing::debug!(target = %tc.name, "skipped: circuit open");
                continue;
            }
            tried.push(target);
            health.retry_budget.on_request();
            let now = tokio::time::Instant::now();
            let window = window_end(now, ro.deadline, self.available(&queue));
            let mut retry = 0u32;
            loop {
                let tried_once = self
                    .attempt(
                        target,
                        providers,
                        &call,
                        plan,
                        window,
                        ro,
                        retry,
                        &mut attempts,
                    )
                    .await;
                let err = match tried_once {
                    Tried::Ok(value, ms) => {
                        return Ok(Done {
                            value,
                            target,
                            attempts,
                            upstream_ms: ms,
                        })
                    }
                    Tried::Deadline => return Err(exhausted(attempts, true)),
                    Tried::Failed(e) => e,
                };
                match self.after_failure(plan, target, &tried, &err, retry, window) {
                    Next::Stop => return Err(rejected(err, target, attempts)),
                    Next::Replan(mut next) => {
                        next.reverse();
                        queue = next;
                        break;
                    }
                    Next::MoveOn => break,
                    Next::Retry(wait) => {
                        tokio::time::sleep(wait).await;
                        retry += 1;
                    }
                }
            }
        }
        let deadline_hit = tokio::time::Instant::now() >= ro.deadline;
        Err(exhausted(attempts, deadline_hit))
    }

    /// What follows a failed attempt at `target`; tells its breaker. Another try at the same
    /// target must fit its retries, its window, its circuit (a 5xx may just have opened it) and
    /// its retry budget.
    fn after_failure(
        &self,
        plan: &Plan,
        target: TargetId,
        tried: &[TargetId],
        err: &ProviderError,
        retry: u32,
        window: tokio::time::Instant,
    ) -> Next {
        let health = self.health(target);
        let policy = &plan.policy;
        let class = err.class();
        let wait = match class {
            ErrorClass::Reject => {
                health.breaker.on_success(); // it answered: the target is up
                return Next::Stop;
            }
            ErrorClass::ContextLength => {
                health.breaker.on_success();
                let next = self.larger_windows(plan, target, tried);
                return if next.is_empty() {
                    Next::Stop
                } else {
                    Next::Replan(next)
                };
            }
            ErrorClass::Provider(fault) => {
                self.provider_fault(target, fault, err);
                return Next::MoveOn;
            }
            ErrorClass::Timeout => {
                health.breaker.on_failure();
                return Next::MoveOn;
            }
            ErrorClass::RateLimited(retry_after) => {
                health.breaker.on_failure();
                match retry_after {
                    Some(ra) if ra > policy.max_retry_after => return Next::MoveOn,
                    Some(ra) => ra,
                    None => backoff(policy, retry),
                }
            }
            ErrorClass::Retry => {
                health.breaker.on_failure();
                backoff(policy, retry)
            }
        };
        if retry >= policy.max_retries || tokio::time::Instant::now() + wait >= window {
            return Next::MoveOn;
        }
        if class == ErrorClass::Retry && !health.breaker.try_acquire() {
            return Next::MoveOn;
        }
        if !health.retry_budget.try_retry() {
            health.counters.retries_denied.fetch_add(1, Relaxed);
            let name = &self.config.target(target).name;
            tracing::debug!(target = %name, "retry budget spent: moving on");
            return Next::MoveOn;
        }
        Next::Retry(wait)
    }

    /// One attempt at `target` within its window, traced in an `attempt` span and recorded in
    /// `attempts`; the breaker hears of a success here (failures are the caller's to judge).
    #[expect(
        clippy::too_many_arguments,
        reason = "one attempt's whole context, passed once"
    )]
    pub(super) async fn attempt<C: Call>(
        &self,
        target: TargetId,
        providers: &[Provider],
        call: &C,
        plan: &Plan,
        window: tokio::time::Instant,
        ro: RunOptions<'_>,
        retry: u32,
        attempts: &mut Vec<Attempt>,
    ) -> Tried<C::Out> {
        let tc = self.config.target(target);
        let health = self.health(target);
        let policy = &plan.policy;
        let framing = Framing {
            max_malformed: policy.max_malformed_events,
            counters: health.counters.clone(),
        };
        let opts = CallOptions {
            model: &tc.upstream_model,
            first_byte_timeout: policy.first_byte_timeout,
            first_token_timeout: policy.first_token_timeout,
            idle_timeout: policy.idle_timeout,
            framing: &framing,
            sim_faults: ro.sim_faults,
        };
        let started = Instant::now();
        // Ends before any backoff: it measures the upstream call (for a stream, until its
        // first output).
        let span = tracing::debug_span!(
            "attempt",
            target = %tc.name,
            retry,
            outcome = Empty,
            status = Empty,
            error = Empty,
        );
        let provider = &providers[tc.provider.0];
        let result = tokio::time::timeout_at(window, call.once(provider, opts))
            .instrument(span.clone())
            .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let _in = span.enter();
        let err = match result {
            Ok(Ok(value)) => {
                span.record("outcome", "ok");
                health.breaker.on_success();
                health.observe_latency(ms);
                attempts.push(attempt(&tc.name, None, Outcome::Ok, ms));
                return Tried::Ok(value, ms);
            }
            Ok(Err(e)) => e,
            Err(_) if window >= ro.deadline => ProviderError::Timeout(TimeoutStage::Total),
            Err(_) => ProviderError::Timeout(TimeoutStage::Share),
        };
        // A time limit that ran out with the request's deadline is the deadline's doing.
        let deadline =
            matches!(err, ProviderError::Timeout(_)) && tokio::time::Instant::now() >= ro.deadline;
        let class = if deadline {
            FailureClass::Deadline
        } else {
            failure_class(err.class())
        };
        span.record("outcome", class.as_str());
        if let Some(status) = err.status() {
            span.record("status", status);
        }
        let outcome = failed(class, &err);
        span.record("error", tracing::field::display(&outcome));
        attempts.push(attempt(&tc.name, err.status(), outcome, ms));
        if deadline {
            health.breaker.release();
            return Tried::Deadline;
        }
        if !matches!(class, FailureClass::Provider) {
            tracing::info!(target = %tc.name, error = %err, retry, "upstream attempt failed");
        }
        Tried::Failed(err)
    }

    /// A committed stream of `target` broke: held against it as an attempt's failure would be,
    /// unless the request's deadline caused it.
    pub fn stream_failed(&self, target: TargetId, err: &ProviderError) {
        let breaker = &self.health(target).breaker;
        match err.class() {
            _ if matches!(err, ProviderError::Timeout(TimeoutStage::Total)) => breaker.release(),
            ErrorClass::Reject | ErrorClass::ContextLength => breaker.on_success(),
            ErrorClass::Provider(fault) => self.provider_fault(target, fault, err),
            ErrorClass::Timeout | ErrorClass::RateLimited(_) | ErrorClass::Retry => {
                breaker.on_failure()
            }
        }
    }

    /// The gateway's own fault at a provider: opens the target's breaker now, counts it, and
    /// logs it once at error level, upstream message included (for the operator; the client
    /// and the audit get the class only).
    pub(super) fn provider_fault(
        &self,
        target: TargetId,
        fault: ProviderFault,
        err: &ProviderError,
    ) {
        let tc: &TargetConfig = self.config.target(target);
        let health = self.health(target);
        health.breaker.trip();
        health.counters.provider_fault(fault);
        tracing::error!(
            target = %tc.name,
            fault = fault.as_str(),
            error = %cut(&err.to_string(), 300),
            "provider-side fault: the target's circuit is open; check its key, billing and model"
        );
    }
}

pub(super) fn attempt(target: &str, status: Option<u16>, outcome: Outcome, ms: f64) -> Attempt {
    Attempt {
        target: target.to_owned(),
        status,
        outcome,
        elapsed_ms: ms.round() as u64,
    }
}

fn failure_class(c: ErrorClass) -> FailureClass {
    match c {
        ErrorClass::Retry => FailureClass::Retryable,
        ErrorClass::Timeout => FailureClass::Timeout,
        ErrorClass::Provider(_) => FailureClass::Provider,
        ErrorClass::RateLimited(_) => FailureClass::RateLimited,
        ErrorClass::ContextLength => FailureClass::ContextLength,
        ErrorClass::Reject => FailureClass::Rejected,
    }
}

/// A failed attempt's outcome, with its [`error_detail`].
pub(super) fn failed(class: FailureClass, e: &ProviderError) -> Outcome {
    let detail = error_detail(e);
    Outcome::Failed { class, detail }
}

/// What an attempt's record says of its error (in the client's error and the audit): the
/// error's text, cut at 300 bytes; for a provider-side fault only its class (the upstream's
/// message can carry a masked key).
pub fn error_detail(e: &ProviderError) -> String {
    let ErrorClass::Provider(f) = e.class() else {
        return cut(&e.to_string(), 300);
    };
    let (class, what) = (f.as_str(), f.describe());
    match e.status() {
        Some(s) => format!("provider fault ({class}): {what} (HTTP {s})"),
        None => format!("provider fault ({class}): {what}"),
    }
}

/// `s` cut at `max` bytes (on a char boundary), marked with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

pub(super) fn exhausted(attempts: Vec<Attempt>, deadline: bool) -> Failure {
    Failure {
        attempts,
        reason: FailReason::Exhausted { deadline },
    }
}

fn rejected(error: ProviderError, target: TargetId, attempts: Vec<Attempt>) -> Failure {
    Failure {
        attempts,
        reason: FailReason::Rejected { target, error },
    }
}
