//! The failover loop: a plain loop over the plan's targets that retries transient failures
//! with jittered backoff (within each target's retry budget), honours `Retry-After`, moves to
//! larger context windows, moves on at once from a timeout or a provider-side fault, stops at
//! the first error that is the client's, and keeps every attempt for the final error and the
//! audit.
//!
//! Deadline budgets: each target gets a window, a share of what is left of the request's
//! deadline ([`window_end`]), for all its attempts and waits; the rest is kept for the targets
//! after it, so a target that hangs never eats the fallback's time. A failure caused by the
//! request's own deadline is not held against the target (its breaker does not count it).

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use futures::StreamExt;
use tracing::field::Empty;
use tracing::Instrument;

use serde_json::{Map, Value};

use super::{backoff, Plan, Router};
use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::config::{TargetConfig, TargetId};
use crate::outcome::{Attempt, FailureClass, Outcome, ProviderFault};
use crate::provider::{
    chunk_has_output, CallOptions, ChunkStream, ErrorClass, Framing, Provider, ProviderError,
    TimeoutStage,
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

/// What the request brings to every attempt besides its body.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    /// When the request must be answered: its arrival plus the route's total timeout.
    pub deadline: tokio::time::Instant,
    /// The client's `x-mock-fault` header (forwarded to simulated providers only).
    pub sim_faults: Option<&'a str>,
}

/// Read a stream until its first output; failures until then fail over invisibly.
pub(super) async fn first_output(mut s: ChunkStream) -> Result<Started, ProviderError> {
    let mut first = Vec::new();
    loop {
        match s.next().await {
            Some(Ok(c)) => {
                let out = chunk_has_output(&c);
                first.push(c);
                if out {
                    return Ok(Started { first, rest: s });
                }
            }
            Some(Err(e)) => return Err(e),
            None => {
                return Err(ProviderError::Protocol(
                    "stream ended before any output".into(),
                ))
            }
        }
    }
}

/// One kind of upstream call: what one attempt at one provider sends and gets.
pub(super) trait Call {
    type Out;
    fn once<'a>(
        &'a self,
        p: &'a Provider,
        opts: CallOptions<'a>,
    ) -> impl Future<Output = Result<Self::Out, ProviderError>> + Send + 'a;
}

struct Complete<'r>(&'r ChatRequest);

impl Call for Complete<'_> {
    type Out = ChatResponse;
    fn once<'a>(
        &'a self,
        p: &'a Provider,
        opts: CallOptions<'a>,
    ) -> impl Future<Output = Result<ChatResponse, ProviderError>> + Send + 'a {
        p.complete(self.0, opts)
    }
}

struct Stream<'r>(&'r ChatRequest);

impl Call for Stream<'_> {
    type Out = Started;
    async fn once<'a>(
        &'a self,
        p: &'a Provider,
        opts: CallOptions<'a>,
    ) -> Result<Started, ProviderError> {
        first_output(p.stream(self.0, opts).await?).await
    }
}

/// An OpenAI `/embeddings` body.
struct Embeddings<'r>(&'r Map<String, Value>);

impl Call for Embeddings<'_> {
    type Out = Value;
    fn once<'a>(
        &'a self,
        p: &'a Provider,
        opts: CallOptions<'a>,
    ) -> impl Future<Output = Result<Value, ProviderError>> + Send + 'a {
        p.embeddings(self.0, opts)
    }
}

/// How one attempt ended, for the loop to decide on.
pub(super) enum Tried<T> {
    Ok(T, f64),
    /// The request's deadline ran out: nobody's fault, the loop ends.
    Deadline,
    Failed(ProviderError),
}

/// The end of the next target's window. The last target gets all that is left; otherwise each
/// remaining target keeps twice the next one's share, so with two targets the first gets a
/// third of the deadline, and a later (last-chance) target always gets more than an earlier one.
pub fn window_end(
    now: tokio::time::Instant,
    deadline: tokio::time::Instant,
    remaining: usize,
) -> tokio::time::Instant {
    if remaining == 0 {
        return deadline;
    }
    let left = deadline.saturating_duration_since(now);
    let shares = 1 + 2 * u32::try_from(remaining)
        .unwrap_or(u32::MAX / 4)
        .min(1 << 20);
    (now + left / shares).min(deadline)
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
        let policy = &plan.policy;
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
                let class = err.class();
                let wait = match class {
                    ErrorClass::Reject => {
                        health.breaker.on_success(); // it answered: the target is up
                        return Err(rejected(err, target, attempts));
                    }
                    ErrorClass::ContextLength => {
                        health.breaker.on_success();
                        let mut next = self.larger_windows(plan, target, &tried);
                        if next.is_empty() {
                            return Err(rejected(err, target, attempts));
                        }
                        next.reverse();
                        queue = next;
                        break;
                    }
                    ErrorClass::Provider(fault) => {
                        self.provider_fault(target, fault, &err);
                        break;
                    }
                    ErrorClass::Timeout => {
                        health.breaker.on_failure();
                        break;
                    }
                    ErrorClass::RateLimited(retry_after) => {
                        health.breaker.on_failure();
                        match retry_after {
                            Some(ra) if ra > policy.max_retry_after => break,
                            Some(ra) => ra,
                            None => backoff(policy, retry),
                        }
                    }
                    ErrorClass::Retry => {
                        health.breaker.on_failure();
                        backoff(policy, retry)
                    }
                };
                // Another try at this target: within its retries, its window, its circuit (a
                // 5xx may just have opened it) and its retry budget.
                if retry >= policy.max_retries || tokio::time::Instant::now() + wait >= window {
                    break;
                }
                if class == ErrorClass::Retry && !health.breaker.try_acquire() {
                    break;
                }
                if !health.retry_budget.try_retry() {
                    health.counters.retries_denied.fetch_add(1, Relaxed);
                    tracing::debug!(target = %tc.name, "retry budget spent: moving on");
                    break;
                }
                tokio::time::sleep(wait).await;
                retry += 1;
            }
        }
        let deadline_hit = tokio::time::Instant::now() >= ro.deadline;
        Err(exhausted(attempts, deadline_hit))
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

/// A failed attempt's outcome; its detail is the error's text, cut at 300 bytes; for a
/// provider-side fault only its class (the upstream's message can carry a masked key).
pub(super) fn failed(class: FailureClass, e: &ProviderError) -> Outcome {
    let detail = match e.class() {
        ErrorClass::Provider(f) => match e.status() {
            Some(s) => format!(
                "provider fault ({}): {} (HTTP {s})",
                f.as_str(),
                f.describe()
            ),
            None => format!("provider fault ({}): {}", f.as_str(), f.describe()),
        },
        _ => cut(&e.to_string(), 300),
    };
    Outcome::Failed { class, detail }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn windows_keep_a_reserve_for_the_targets_after() {
        let now = tokio::time::Instant::now();
        let deadline = now + Duration::from_secs(30);
        let w = |remaining| window_end(now, deadline, remaining) - now;
        assert_eq!(w(0), Duration::from_secs(30), "the last target gets all");
        assert_eq!(
            w(1),
            Duration::from_secs(10),
            "two targets: the fallback by ~10 s"
        );
        assert_eq!(w(2), Duration::from_secs(6));
        let past = window_end(deadline + Duration::from_secs(1), deadline, 3);
        assert_eq!(past, deadline, "never beyond the deadline");
    }
}
