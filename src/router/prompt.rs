//! The last user turn as the router reads it: parsed once into instruction and operands
//! (`crate::text::parse`, the parse the cache key is built from, so the pipeline hands it on
//! instead of parsing twice), its cues, and the text to embed.
//!
//! The embedded text is the **instruction** (operands as `§`): what the prompt asks, which is
//! what decides both its use case and, on a cache miss, which earlier answers may serve it, so
//! one embedding serves both. A prompt that is all document (no instruction found) embeds the
//! first [`HEAD_CHARS`] characters of its text instead; the cache never embeds an empty
//! instruction, so that is still one embedding.

use crate::chat::{ChatRequest, Role};
use crate::text::{self, Parsed};

use super::cues::Cues;

/// Characters of an instruction-less prompt that are embedded.
pub const HEAD_CHARS: usize = 1000;

#[derive(Debug, Clone)]
pub struct Prompt {
    pub parsed: Parsed,
    pub cues: Cues,
    /// The request's last message is this turn (so the cache key may take the parse over).
    pub is_last: bool,
    /// Its opening words, as the use-case classifier's lexical model reads them.
    pub head: String,
    /// The text's head, kept when the instruction is empty (see the module doc).
    embed_head: Option<String>,
}

impl Prompt {
    /// The request's last user turn; `None` when it has none with text.
    pub fn of(req: &ChatRequest) -> Option<Prompt> {
        let i = req.messages.iter().rposition(|m| m.role == Role::User)?;
        let text = req.messages[i].text();
        if text.trim().is_empty() {
            return None;
        }
        let multi_turn = req.messages[..i]
            .iter()
            .any(|m| !matches!(m.role, Role::System | Role::Developer));
        let mut p = Prompt::from_text(&text, multi_turn);
        p.is_last = i + 1 == req.messages.len();
        Some(p)
    }

    /// A prompt given as text (reference examples, workloads).
    pub fn from_text(text: &str, multi_turn: bool) -> Prompt {
        let parsed = text::parse(text);
        let cues = Cues::extract(text, parsed.document, multi_turn);
        let head = parsed
            .instruction
            .trim()
            .is_empty()
            .then(|| text.chars().take(HEAD_CHARS).collect());
        Prompt {
            parsed,
            cues,
            is_last: true,
            head: super::lexical::head(text),
            embed_head: head,
        }
    }

    /// The text whose embedding routes this prompt (see the module doc).
    pub fn embed_text(&self) -> &str {
        self.embed_head
            .as_deref()
            .unwrap_or(&self.parsed.instruction)
    }

    /// True when the embedded text is the instruction the cache compares: its vector can be
    /// handed to the cache key.
    pub fn embeds_instruction(&self) -> bool {
        self.embed_head.is_none()
    }
}

/// What the router may read of a prompt besides the request: the pipeline computes it only when
/// the plan needs it ([`super::Router::wants_embedding`]).
#[derive(Debug, Clone, Copy)]
pub struct Signals<'a> {
    pub prompt: &'a Prompt,
    /// The embedding of [`Prompt::embed_text`]; `None` when it could not be computed (the
    /// embedder was overloaded): auto routes fall back, tiers come from rules.
    pub vector: Option<&'a [f32]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_is_embedded_and_documents_fall_back_to_the_head() {
        let p = Prompt::from_text("Is this email spam? \"You won a cruise!\"", false);
        assert!(p.embeds_instruction());
        assert!(p.embed_text().contains("spam"), "{}", p.embed_text());
        assert!(
            !p.embed_text().contains("cruise"),
            "operands are not embedded"
        );

        let doc = "The quarterly results were strong. ".repeat(40);
        let p = Prompt::from_text(&doc, false);
        assert!(!p.embeds_instruction());
        assert_eq!(p.embed_text().chars().count(), HEAD_CHARS);

        let req: ChatRequest = serde_json::from_value(serde_json::json!({
            "model": "auto",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi there"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Summarize our chat."}
            ]
        }))
        .unwrap();
        let p = Prompt::of(&req).unwrap();
        assert!(p.is_last && p.cues.multi_turn);
        assert!(p.embed_text().starts_with("Summarize"));
    }
}
