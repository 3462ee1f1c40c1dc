//! One request's whole flow: lookup -> plan -> run -> write back.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};

use crate::app::AppState;
use crate::chat::{ChatChunk, ChatRequest, ChatResponse};
use crate::config::TargetId;
use crate::error::{ApiError, Attempt};
use crate::provider::{ProviderError, TimeoutStage};
use crate::router::StreamStarted;

/// What the client asked for besides the body.
pub struct RequestCtx {
    pub request_id: Arc<str>,
    /// `x-sluice-route`
    pub route_hint: Option<String>,
    /// `x-sluice-tier`
    pub tier_hint: Option<String>,
    pub started: Instant,
}

/// How the request was served: becomes response headers and the audit record.
#[derive(Default)]
pub struct Meta {
    pub route: Option<Arc<str>>,
    pub target: Option<TargetId>,
    pub attempts: Vec<Attempt>,
}

pub enum Reply {
    Complete(ChatResponse),
    Stream(EventStream),
}

/// What a streamed reply sends: chunks, then either `Done` or one `Error` (never both).
pub enum StreamItem {
    Chunk(ChatChunk),
    Done,
    Error(ApiError),
}

pub type EventStream = Pin<Box<dyn Stream<Item = StreamItem> + Send>>;

pub async fn chat(
    s: &Arc<AppState>,
    req: ChatRequest,
    ctx: RequestCtx,
) -> (Meta, Result<Reply, ApiError>) {
    let mut meta = Meta::default();
    let plan = match s
        .router
        .plan(&req, ctx.route_hint.as_deref(), ctx.tier_hint.as_deref())
    {
        Ok(p) => p,
        Err(e) => return (meta, Err(e)),
    };
    meta.route = Some(plan.route_name.clone());
    if !req.stream {
        return match s.router.complete(&plan, &req, &s.providers).await {
            Ok(done) => {
                meta.target = Some(done.target);
                meta.attempts = done.attempts;
                (meta, Ok(Reply::Complete(done.response)))
            }
            Err(f) => {
                meta.attempts = f.attempts;
                (meta, Err(f.error))
            }
        };
    }
    let deadline = tokio::time::Instant::from_std(ctx.started) + plan.policy.total_timeout;
    match s.router.start_stream(&plan, &req, &s.providers).await {
        Ok(mut started) => {
            meta.target = Some(started.target);
            meta.attempts = std::mem::take(&mut started.attempts);
            let stream = relay(s.clone(), started, req.include_usage(), deadline);
            (meta, Ok(Reply::Stream(stream)))
        }
        Err(f) => {
            meta.attempts = f.attempts;
            (meta, Err(f.error))
        }
    }
}

/// Relay a committed stream to the client. A failure after output was sent can no longer fail
/// over invisibly: it ends the stream with an in-band error and no `[DONE]`, so no client
/// mistakes a truncated answer for a complete one.
fn relay(
    s: Arc<AppState>,
    started: StreamStarted,
    include_usage: bool,
    deadline: tokio::time::Instant,
) -> EventStream {
    let StreamStarted {
        target,
        first,
        mut rest,
        ..
    } = started;
    Box::pin(async_stream::stream! {
        for c in first {
            if let Some(c) = for_client(c, include_usage) {
                yield StreamItem::Chunk(c);
            }
        }
        loop {
            let next = tokio::time::timeout_at(deadline, rest.next()).await;
            let err = match next {
                Ok(Some(Ok(c))) => {
                    if let Some(c) = for_client(c, include_usage) {
                        yield StreamItem::Chunk(c);
                    }
                    continue;
                }
                Ok(None) => {
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
                attempts: vec![Attempt {
                    target: name.clone(),
                    status: err.status(),
                    outcome: format!("stream interrupted after output was sent: {err}"),
                    elapsed_ms: 0,
                }],
                deadline: matches!(err, ProviderError::Timeout(TimeoutStage::Total)),
            });
            return;
        }
    })
}

/// Usage-only chunks (we always ask upstreams for usage) reach the client only when it asked
/// for them with `stream_options.include_usage`.
fn for_client(mut c: ChatChunk, include_usage: bool) -> Option<ChatChunk> {
    if !include_usage {
        if c.choices.is_empty() {
            return None;
        }
        c.usage = None;
    }
    Some(c)
}
