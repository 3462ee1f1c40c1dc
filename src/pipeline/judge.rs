//! The judge (`verify = "judge"`): for a gray-zone candidate, a configured cheap target is asked
//! one fixed question, off the response path, whether the cached answer would also have been a
//! correct answer to the new prompt. Its verdict becomes a verified observation of the route's
//! learner (see `cache::decide::Learner`); its call is recorded in the audit like any other (route
//! `judge`), so its cost shows in `sluice report`. At most `judge_per_minute` calls per route.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::record::{self, Ending, RequestInfo};
use super::{CacheControl, Meta, RequestCtx};
use crate::cache::{CacheKey, Verification};
use crate::chat::{ChatRequest, ChatResponse};
use crate::config::CachePolicy;
use crate::router::Plan;
use crate::state::AppState;

/// Longest cached answer shown to the judge.
const MAX_ANSWER_CHARS: usize = 4000;

/// The fixed question. `{a}` and `{b}` are the two instructions (their operands, equal on both
/// sides, shown as `§`), `{answer}` the cached answer.
pub const QUESTION: &str = "You check a response cache. Request A received the answer below. \
Request B is a new request about the same attached material (shown as §, identical in both). \
Would the answer to A be a correct and complete answer to B, with nothing to change? \
Reply with exactly one word: YES or NO.\n\nRequest A: {a}\nRequest B: {b}\nAnswer to A: {answer}";

/// Starts the judge for `v` in the background, if the route's budget allows.
pub(super) fn spawn(s: &Arc<AppState>, key: &CacheKey, policy: &CachePolicy, v: Verification) {
    let Some(judge) = policy.judge.as_deref() else {
        return;
    };
    let Some(target) = s.config.targets.iter().position(|t| t.name == judge) else {
        return;
    };
    if !s.judge_budget.take(key.route(), policy.judge_per_minute) {
        return;
    }
    let (s, route, query) = (
        s.clone(),
        key.route().to_owned(),
        key.query_text().to_owned(),
    );
    tokio::spawn(async move {
        let Some(cache) = s.cache.as_ref() else {
            return;
        };
        let Ok(Some((cached_prompt, cached))) = cache.entry(v.entry_id).await else {
            return;
        };
        let answer: String = cached
            .choices
            .first()
            .map(|c| c.message.text())
            .unwrap_or_default()
            .chars()
            .take(MAX_ANSWER_CHARS)
            .collect();
        let question = QUESTION
            .replace("{a}", &cached_prompt)
            .replace("{b}", &query)
            .replace("{answer}", &answer);
        let tc = s.config.target(crate::config::TargetId(target));
        let req: ChatRequest = match serde_json::from_value(json!({
            "model": tc.name,
            "messages": [{"role": "user", "content": question}],
            "temperature": 0,
            "max_tokens": 3,
        })) {
            Ok(r) => r,
            Err(_) => return,
        };
        if let Some(agreed) = ask(&s, &req, crate::config::TargetId(target)).await {
            cache.observe(&route, v, agreed);
        }
    });
}

/// Asks the judge; `Some(verdict)` when it answered YES or NO. The call is audited.
async fn ask(
    s: &Arc<AppState>,
    req: &ChatRequest,
    target: crate::config::TargetId,
) -> Option<bool> {
    let ctx = RequestCtx {
        request_id: Arc::from(format!("judge_{:016x}", rand::random::<u64>())),
        caller: None,
        route_hint: None,
        tier_hint: None,
        cache: CacheControl::default(),
        started: Instant::now(),
        span: tracing::debug_span!("judge"),
        sim_faults: None,
        timeout: None,
        key: None,
        dialect: crate::wire::Dialect::OpenAi,
    };
    let plan = Plan {
        route: None,
        route_name: Arc::from("judge"),
        tier: None,
        targets: vec![target],
        policy: s.config.defaults.clone(),
        decision: Default::default(),
    };
    let mut info = RequestInfo::other(&req.model, &ctx);
    let mut meta = Meta {
        route: Some(plan.route_name.clone()),
        ..Meta::default()
    };
    let run = ctx.run_options(plan.policy.total_timeout);
    match s.router.complete(&plan, req, &s.providers, run).await {
        Ok(done) => {
            meta.answered(done.target, done.attempts, done.upstream_ms);
            let verdict = verdict(&done.value);
            let usage = done.value.usage.as_ref().map(crate::chat::Usage::tokens);
            record::finish(s, &mut info, &meta, Ending::answered(usage));
            verdict
        }
        Err(f) => {
            let e = meta.failed(s, f);
            record::failed(s, &mut info, &meta, &e);
            None
        }
    }
}

/// YES / NO at the start of the judge's answer.
fn verdict(r: &ChatResponse) -> Option<bool> {
    let text = r.choices.first()?.message.text();
    let word = text
        .trim_start()
        .split(|c: char| !c.is_alphabetic())
        .next()?
        .to_ascii_lowercase();
    match word.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}
