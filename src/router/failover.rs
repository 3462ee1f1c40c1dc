//! The failover loop: a plain loop over the plan's targets that retries transient failures
//! with jittered backoff, honours `Retry-After`, moves to larger context windows, stops at the
//! first error that is the client's, and keeps every attempt for the final error and the audit.

use std::time::Instant;

use futures::StreamExt;
use tracing::field::Empty;
use tracing::Instrument;

use super::{backoff, Plan, Router};
use serde_json::{Map, Value};

use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::config::TargetId;
use crate::error::{ApiError, Attempt};
use crate::provider::{
    chunk_has_output, CallOptions, ChunkStream, ErrorClass, Provider, ProviderError, TimeoutStage,
};

/// A non-streaming answer and how it was obtained.
pub struct Completed {
    pub response: ChatResponse,
    pub target: TargetId,
    pub attempts: Vec<Attempt>,
    /// Time spent in the successful upstream call.
    pub upstream_ms: f64,
}

/// A stream that has produced its first output: from here on it is committed to this target.
pub struct StreamStarted {
    pub target: TargetId,
    pub attempts: Vec<Attempt>,
    /// Chunks read while waiting for the first output (role chunk, then the first content).
    pub first: Vec<ChatChunk>,
    pub rest: ChunkStream,
    /// Time from the start of the successful attempt to its first output.
    pub first_token_ms: f64,
}

/// A failed request with every attempt made.
pub struct Failure {
    pub error: ApiError,
    pub attempts: Vec<Attempt>,
}

/// What the loop sends; one attempt of any kind is `attempt_once`.
#[derive(Clone, Copy)]
enum Call<'a> {
    Complete(&'a ChatRequest),
    Stream(&'a ChatRequest),
    /// An OpenAI `/embeddings` body.
    Embeddings(&'a Map<String, Value>),
}

enum Outcome {
    Complete(ChatResponse),
    Stream(Vec<ChatChunk>, ChunkStream),
    Embeddings(Value),
}

async fn attempt_once(
    call: Call<'_>,
    p: &Provider,
    opts: CallOptions<'_>,
) -> Result<Outcome, ProviderError> {
    match call {
        Call::Complete(req) => p.complete(req, opts).await.map(Outcome::Complete),
        Call::Embeddings(body) => p
            .embeddings(body, opts.model, opts.first_byte_timeout)
            .await
            .map(Outcome::Embeddings),
        Call::Stream(req) => {
            let mut s = p.stream(req, opts).await?;
            let mut first = Vec::new();
            loop {
                match s.next().await {
                    Some(Ok(c)) => {
                        let out = chunk_has_output(&c);
                        first.push(c);
                        if out {
                            return Ok(Outcome::Stream(first, s));
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
    }
}

impl Router {
    pub async fn complete(
        &self,
        plan: &Plan,
        req: &ChatRequest,
        providers: &[Provider],
    ) -> Result<Completed, Failure> {
        let (target, out, attempts, ms) = self.run(plan, providers, Call::Complete(req)).await?;
        let Outcome::Complete(response) = out else {
            unreachable!("complete mode yields complete outcomes")
        };
        Ok(Completed {
            response,
            target,
            attempts,
            upstream_ms: ms,
        })
    }

    /// Start a stream and wait for its first output; failures until then fail over invisibly.
    pub async fn start_stream(
        &self,
        plan: &Plan,
        req: &ChatRequest,
        providers: &[Provider],
    ) -> Result<StreamStarted, Failure> {
        let (target, out, attempts, ms) = self.run(plan, providers, Call::Stream(req)).await?;
        let Outcome::Stream(first, rest) = out else {
            unreachable!("stream mode yields stream outcomes")
        };
        Ok(StreamStarted {
            target,
            attempts,
            first,
            rest,
            first_token_ms: ms,
        })
    }

    /// An embeddings call through the same loop (retries, failover, breakers).
    pub async fn embeddings(
        &self,
        plan: &Plan,
        body: &Map<String, Value>,
        providers: &[Provider],
    ) -> Result<(TargetId, Value, Vec<Attempt>, f64), Failure> {
        let (target, out, attempts, ms) = self.run(plan, providers, Call::Embeddings(body)).await?;
        let Outcome::Embeddings(v) = out else {
            unreachable!("embeddings calls yield embeddings")
        };
        Ok((target, v, attempts, ms))
    }

    async fn run(
        &self,
        plan: &Plan,
        providers: &[Provider],
        call: Call<'_>,
    ) -> Result<(TargetId, Outcome, Vec<Attempt>, f64), Failure> {
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
                let result = tokio::time::timeout_at(deadline, attempt_once(call, provider, opts))
                    .instrument(span.clone())
                    .await;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                let entered = span.enter();
                let err = match result {
                    Ok(Ok(v)) => {
                        span.record("outcome", "ok");
                        health.breaker.on_success();
                        health.observe_latency(ms);
                        attempts.push(attempt(&tc.name, None, "ok".into(), ms));
                        return Ok((target, v, attempts, ms));
                    }
                    Ok(Err(e)) => e,
                    Err(_) => {
                        let e = ProviderError::Timeout(TimeoutStage::Total);
                        span.record("outcome", "deadline");
                        span.record("error", tracing::field::display(&e));
                        health.breaker.on_failure();
                        attempts.push(attempt(&tc.name, None, e.to_string(), ms));
                        return Err(all_failed(attempts, true));
                    }
                };
                span.record("outcome", class_label(&err.class()));
                if let Some(status) = err.status() {
                    span.record("status", status);
                }
                span.record("error", tracing::field::display(&err));
                attempts.push(attempt(&tc.name, err.status(), short(&err), ms));
                tracing::info!(target = %tc.name, error = %err, retry, "upstream attempt failed");
                drop(entered);
                drop(span);
                match err.class() {
                    ErrorClass::Reject => {
                        health.breaker.on_success(); // it answered: the target is up
                        return Err(rejected(err, &tc.name, attempts));
                    }
                    ErrorClass::ContextLength => {
                        health.breaker.on_success();
                        let mut next = self.larger_windows(plan, target, &tried);
                        if next.is_empty() {
                            return Err(rejected(err, &tc.name, attempts));
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
        Err(all_failed(attempts, deadline_hit))
    }
}

fn attempt(target: &str, status: Option<u16>, outcome: String, ms: f64) -> Attempt {
    Attempt {
        target: target.to_owned(),
        status,
        outcome,
        elapsed_ms: ms.round() as u64,
    }
}

/// An attempt's `outcome` on its span (a fixed set).
fn class_label(c: &ErrorClass) -> &'static str {
    match c {
        ErrorClass::Retry => "retryable",
        ErrorClass::RateLimited(_) => "rate_limited",
        ErrorClass::ContextLength => "context_length",
        ErrorClass::Reject => "rejected",
    }
}

fn short(e: &ProviderError) -> String {
    let mut s = e.to_string();
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn all_failed(attempts: Vec<Attempt>, deadline: bool) -> Failure {
    Failure {
        error: ApiError::AllTargetsFailed {
            attempts: attempts.clone(),
            deadline,
        },
        attempts,
    }
}

fn rejected(err: ProviderError, target: &str, attempts: Vec<Attempt>) -> Failure {
    let error = match err {
        ProviderError::Status {
            status,
            kind,
            code,
            message,
            ..
        } => ApiError::Upstream {
            status,
            message,
            kind,
            code,
            target: target.to_owned(),
        },
        other => ApiError::Internal(other.to_string()),
    };
    Failure { error, attempts }
}
