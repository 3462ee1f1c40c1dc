//! Text rules of the semantic cache: what in a prompt decides its answer, in English and in
//! structure. The cache engine (`crate::cache`: index, store, writer, embedder) knows none of
//! this; it asks this module to parse a prompt ([`parse`]), to extract the features of an
//! instruction ([`Features`]) and to compare two of them ([`compare`]).
//!
//! - `prompt`: instruction + operand fingerprint (`operands`: code, data, quotes, blocks;
//!   `transport`: the noise around documents; `edges`: a document's identity through
//!   re-spacing and unknown noise);
//! - `guards`: numbers, names, negation, direction, question structure, content words;
//! - `frame`: task frames of instructions over documents;
//! - `tokens`, `lexicon`, `normalize`: the shared word-level machinery.

mod edges;
pub mod frame;
pub mod guards;
mod lexicon;
mod normalize;
pub mod operands;
pub mod prompt;
mod tokens;
mod transport;

pub use edges::{same_document, DocShape, EdgeLine, Edges};
pub use guards::{Features, GuardMismatch};
pub use prompt::{parse, Parsed};

/// How two instructions over the same operands relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// Equal task frames over the same operands: the same request, whatever the wording.
    SameFrame,
    /// Every guard agrees: the same question if the vectors are close enough.
    Compatible,
    /// Only a soft guard objects (content words): maybe a paraphrase, worth verifying.
    Soft(GuardMismatch),
    /// Never the same request.
    Hard(GuardMismatch),
}

/// Compares a query's instruction features with a stored entry's; `operands` says whether the
/// two prompts carry (the same) operands, which is when task frames decide.
pub fn compare(query: &Features, entry: &Features, operands: bool) -> Agreement {
    if operands {
        if let (Some(a), Some(b)) = (query.frame(), entry.frame()) {
            return if a.equivalent(b) {
                Agreement::SameFrame
            } else {
                Agreement::Hard(GuardMismatch::Frame)
            };
        }
        // One instruction has words the grammar cannot place: what both state must still agree.
        if !query.frame_hint().compatible(entry.frame_hint()) {
            return Agreement::Hard(GuardMismatch::Frame);
        }
    }
    match query.agree(entry) {
        Ok(()) => Agreement::Compatible,
        Err(g) if g.is_hard() => Agreement::Hard(g),
        Err(g) => Agreement::Soft(g),
    }
}
