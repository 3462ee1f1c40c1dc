//! The kinds of upstream call the failover loop makes: one attempt at one provider, whatever
//! it sends (a completion, a stream until its first output, an embeddings body).

use std::future::Future;

use futures::StreamExt;
use serde_json::{Map, Value};

use super::Started;
use crate::chat::{ChatRequest, ChatResponse};
use crate::provider::{chunk_has_output, CallOptions, ChunkStream, Provider, ProviderError};

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

pub(super) struct Complete<'r>(pub &'r ChatRequest);

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

pub(super) struct Stream<'r>(pub &'r ChatRequest);

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
pub(super) struct Embeddings<'r>(pub &'r Map<String, Value>);

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
