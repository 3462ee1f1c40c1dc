//! Text rules of the semantic cache: what in a prompt decides its answer, in English and in
//! structure. The cache engine (`crate::cache`: index, store, writer, embedder) knows none of
//! this; it asks this module to parse a prompt and to compare two parsed prompts.

pub mod guards;
mod lexicon;
pub mod prompt;
mod tokens;

pub use guards::{Features, GuardMismatch};
