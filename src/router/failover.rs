//! The failover loop: a plain loop over the plan's targets that retries transient failures
//! with jittered backoff, honours `Retry-After`, moves to larger context windows, stops at the
//! first error that is the client's, and keeps every attempt for the final error and the audit.

use std::future::Future;
use std::time::Instant;

use futures::StreamExt;
use tracing::field::Empty;
use tracing::Instrument;

use serde_json::{Map, Value};

use super::{backoff, Plan, Router};
use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::config::TargetId;
use crate::outcome::{Attempt, FailureClass, Outcome};
use crate::provider::{
    chunk_has_output, CallOptions, ChunkStream, ErrorClass, Provider, ProviderError, TimeoutStage,
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

/// Read a stream until its first output; failures until then fail over invisibly.
async fn first_output(mut s: ChunkStream) -> Result<Started, ProviderError> {
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
trait Call {
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
        p.embeddings(self.0, opts.model, opts.first_byte_timeout)
    }
}

impl Router {
    pub async fn complete(
        &self,
        plan: &Plan,
        req: &ChatRequest,
        providers: &[Provider],
    ) -> Result<Done<ChatResponse>, Failure> {
        self.run(plan, providers, Complete(req)).await
    }

    /// Start a stream and wait for its first output; failures until then fail over invisibly.
    pub async fn start_stream(
        &self,
        plan: &Plan,
        req: &ChatRequest,
        providers: &[Provider],
    ) -> Result<Done<Started>, Failure> {
        self.run(plan, providers, Stream(req)).await
    }

    /// An embeddings call through the same loop (retries, failover, breakers).
    pub async fn embeddings(
        &self,
        plan: &Plan,
        body: &Map<String, Value>,
        providers: &[Provider],
    ) -> Result<Done<Value>, Failure> {
        self.run(plan, providers, Embeddings(body)).await
    }

    /// The loop: `call` is one attempt at one provider.
    async fn run<C: Call>(
        &self,
        plan: &Plan,
        providers: &[Provider],
        call: C,
    ) -> Result<Done<C::Out>, Failure> {
        let cfg = &*self.config;
        let policy = &plan.policy;
        let deadline = tokio::time::Instant::now() + policy.total_timeout;
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut tried: Vec<TargetId> = Vec::new();
        let mut queue: Vec<TargetId> = plan.targets.clone();
        queue.reverse(); // pop() takes from the front of the plan
        while let Some(target) = queue.pop() {
            let tc = cfg.target(target);
            let health = self.health(target);
            if !health.breaker.try_acquire() {
                tracing::debug!(target = %tc.name, "skipped: circuit open");
                continue;
            }
            tried.push(target);
            let provider = &providers[tc.provider.0];
            let mut retry = 0u32;
            loop {
                let started = Instant::now();
                let opts = CallOptions {
                    model: &tc.upstream_model,
                    first_byte_timeout: policy.first_byte_timeout,
                    first_token_timeout: policy.first_token_timeout,
                    idle_timeout: policy.idle_timeout,
                };
                // Ends before any backoff: it measures the upstream call (for a stream, until
                // its first output).
                let span = tracing::debug_span!(
                    "attempt",
                    target = %tc.name,
                    retry,
                    outcome = Empty,
                    status = Empty,
                    error = Empty,
                );
                let result = tokio::time::timeout_at(deadline, call.once(provider, opts))
                    .instrument(span.clone())
                    .await;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                let entered = span.enter();
                let err = match result {
                    Ok(Ok(value)) => {
                        span.record("outcome", "ok");
                        health.breaker.on_success();
                        health.observe_latency(ms);
                        attempts.push(attempt(&tc.name, None, Outcome::Ok, ms));
                        return Ok(Done {
                            value,
                            target,
                            attempts,
                            upstream_ms: ms,
                        });
                    }
                    Ok(Err(e)) => e,
                    Err(_) => {
                        let e = ProviderError::Timeout(TimeoutStage::Total);
                        let class = FailureClass::Deadline;
                        span.record("outcome", class.as_str());
                        span.record("error", tracing::field::display(&e));
                        health.breaker.on_failure();
                        attempts.push(attempt(&tc.name, None, failed(class, &e), ms));
                        return Err(exhausted(attempts, true));
                    }
                };
                let class = failure_class(err.class());
                span.record("outcome", class.as_str());
                if let Some(status) = err.status() {
                    span.record("status", status);
                }
                span.record("error", tracing::field::display(&err));
                attempts.push(attempt(&tc.name, err.status(), failed(class, &err), ms));
                tracing::info!(target = %tc.name, error = %err, retry, "upstream attempt failed");
                drop(entered);
                drop(span);
                match err.class() {
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
                    ErrorClass::RateLimited(retry_after) => {
                        health.breaker.on_failure();
                        if retry >= policy.max_retries {
                            break;
                        }
                        let wait = match retry_after {
                            Some(ra) if ra > policy.max_retry_after => break,
                            Some(ra) => ra,
                            None => backoff(policy, retry),
                        };
                        if tokio::time::Instant::now() + wait >= deadline {
                            break; // waiting would not fit the deadline: move on
                        }
                        tokio::time::sleep(wait).await;
                    }
                    ErrorClass::Retry => {
                        health.breaker.on_failure();
                        if retry >= policy.max_retries || !health.breaker.try_acquire() {
                            break;
                        }
                        let wait = backoff(policy, retry);
                        if tokio::time::Instant::now() + wait >= deadline {
                            break;
                        }
                        tokio::time::sleep(wait).await;
                    }
                }
                retry += 1;
            }
        }
        let deadline_hit = tokio::time::Instant::now() >= deadline;
        Err(exhausted(attempts, deadline_hit))
    }
}

fn attempt(target: &str, status: Option<u16>, outcome: Outcome, ms: f64) -> Attempt {
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
        ErrorClass::RateLimited(_) => FailureClass::RateLimited,
        ErrorClass::ContextLength => FailureClass::ContextLength,
        ErrorClass::Reject => FailureClass::Rejected,
    }
}

/// A failed attempt's outcome; its detail is the error's text, cut at 300 bytes.
fn failed(class: FailureClass, e: &ProviderError) -> Outcome {
    let mut detail = e.to_string();
    if detail.len() > 300 {
        let mut cut = 300;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    Outcome::Failed { class, detail }
}

fn exhausted(attempts: Vec<Attempt>, deadline: bool) -> Failure {
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
