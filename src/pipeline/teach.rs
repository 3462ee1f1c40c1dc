//! Learning from the prompt log (`[routing] learn_from_prompt_log`): services that name their
//! use case teach auto routing for those that do not. At startup and then every
//! `prompt_log_refresh_secs`, the latest `prompt_log_examples` prompts that were sent to each
//! route *by name* (never those an auto route chose: the router must not learn from its own
//! guesses) are read from the audit's prompt log, embedded on the embedding worker, and become
//! that route's prompt-log examples, replacing the previous round's. The audit is the source of
//! truth, so nothing else is stored.

use std::sync::{Arc, Weak};

use crate::router::Prompt;
use crate::state::AppState;

/// Records read back per round, at most (newest first).
const MAX_RECORDS: usize = 200_000;
/// Texts per embedding call.
const BATCH: usize = 64;

/// Spawns the learning loop when the config asks for it; the caller aborts the handle at
/// shutdown. It holds the state only while a round runs.
pub fn spawn(state: &Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    let routing = &state.config.routing;
    if !routing.learn_from_prompt_log || state.embedder.is_none() {
        return None;
    }
    let weak = Arc::downgrade(state);
    let every = routing.prompt_log_refresh;
    Some(tokio::spawn(async move {
        loop {
            if !round_of(&weak).await {
                return;
            }
            tokio::time::sleep(every).await;
        }
    }))
}

/// One round; false when the gateway is gone or stopping.
async fn round_of(weak: &Weak<AppState>) -> bool {
    let Some(s) = weak.upgrade() else {
        return false;
    };
    if s.is_shutting_down() {
        return false;
    }
    match round(&s).await {
        Ok(n) => tracing::info!(prompts = n, "auto routing learned from the prompt log"),
        Err(e) => tracing::warn!(error = %e, "learning from the prompt log failed"),
    }
    s.prompt_log_rounds.send_modify(|n| *n += 1);
    true
}

/// Reads, embeds and installs the prompt-log examples; returns how many prompts it embedded.
async fn round(s: &Arc<AppState>) -> Result<usize, String> {
    let Some(embedder) = &s.embedder else {
        return Ok(0);
    };
    let per_route = s.config.routing.prompt_log_examples;
    let reader = s.clone();
    let prompts =
        tokio::task::spawn_blocking(move || reader.audit.named_prompts(per_route, MAX_RECORDS))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    let mut total = 0;
    let mut examples = Vec::new();
    for (route, texts) in prompts {
        let Some(id) = s.config.route(&route) else {
            continue;
        };
        let parsed: Vec<Prompt> = texts.iter().map(|t| Prompt::from_text(t, false)).collect();
        let embed: Vec<String> = parsed.iter().map(|p| p.embed_text().to_owned()).collect();
        let mut vectors = Vec::with_capacity(embed.len() * embedder.dimensions());
        for chunk in embed.chunks(BATCH) {
            for v in embedder
                .embed_batch(chunk.to_vec())
                .await
                .map_err(|e| e.to_string())?
            {
                vectors.extend_from_slice(&v);
            }
        }
        total += embed.len();
        examples.push((id, vectors, parsed.into_iter().map(|p| p.head).collect()));
    }
    // Fitting the lexical model again blocks: off the runtime.
    let state = s.clone();
    tokio::task::spawn_blocking(move || state.router.set_prompt_log_examples(examples))
        .await
        .map_err(|e| e.to_string())?;
    Ok(total)
}
