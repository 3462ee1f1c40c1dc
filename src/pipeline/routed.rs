//! Reading the prompt for the router, when the plan needs it: the last user turn parsed once
//! and embedded once, on the embedding worker (never on the async runtime). The parse and, when
//! it embedded the instruction, the vector go on to the cache key, so a cache miss costs at most
//! this one embedding.

use std::time::Instant;

use crate::chat::ChatRequest;
use crate::router::{Prompt, Resolved, Signals};
use crate::state::AppState;

/// The prompt as read for routing.
pub(super) struct Read {
    pub prompt: Prompt,
    /// `None` when the embedder was overloaded or failed: the router falls back (auto routes to
    /// their default route, tiers to rules and defaults).
    pub vector: Option<Vec<f32>>,
}

impl Read {
    pub fn signals(&self) -> Signals<'_> {
        Signals {
            prompt: &self.prompt,
            vector: self.vector.as_deref(),
        }
    }

    /// What the cache key may take over: the parse (when it is of the request's last message),
    /// and the vector (when it is of the instruction the cache compares).
    pub fn into_key_parts(self) -> Option<(crate::text::Parsed, Option<Vec<f32>>)> {
        if !self.prompt.is_last {
            return None;
        }
        let vector = self.vector.filter(|_| self.prompt.embeds_instruction());
        Some((self.prompt.parsed, vector))
    }
}

/// The prompt, parsed and embedded, when `resolved` needs it; else `None` (nothing is done).
pub(super) async fn read(
    s: &AppState,
    req: &ChatRequest,
    resolved: &Resolved,
    tier_hint: Option<&str>,
) -> Option<Read> {
    if !s.router.wants_embedding(resolved, tier_hint) {
        return None;
    }
    let size: usize = req.messages.iter().map(|m| m.text_len()).sum();
    let prompt = if size <= super::cached::OFFLOAD_PROMPT_BYTES {
        Prompt::of(req)?
    } else {
        // A long prompt is parsed on the blocking pool, like the cache key's (linear, but
        // milliseconds an async worker owes others).
        let req = req.clone();
        tokio::task::spawn_blocking(move || Prompt::of(&req))
            .await
            .ok()??
    };
    let vector = match &s.embedder {
        Some(e) => {
            let start = Instant::now();
            match e.embed(prompt.embed_text()).await {
                Ok(v) => {
                    s.metrics.observe_embedding(start.elapsed());
                    Some(v)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "prompt not embedded: routing without it");
                    None
                }
            }
        }
        None => None,
    };
    Some(Read { prompt, vector })
}
