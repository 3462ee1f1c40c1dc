//! Structural guards: what must agree between a query and a cached entry besides the vector.
//!
//! Sentence embeddings put near-misses ("... in 2019?" vs "... in 2020?", "Paris" vs "Lyon",
//! "can" vs "cannot") *closer* together than real paraphrases, so cosine similarity cannot tell a
//! paraphrase from a wrong answer. A semantic hit therefore also needs, between the two texts:
//!
//! * **numbers**: the same numbers in the same order, each with its unit or counted noun
//!   (`5 kg` = `five kilograms` != `5 lb`; `$20` = `20 dollars`);
//! * **names and literals**: every proper noun, acronym, identifier, URL/path and quoted or code
//!   span of one side occurs in the other, and those present in both occur in the same order;
//! * **negation**: the same number of negation cues (`not`, `never`, `-n't`, `without`, ...);
//! * **direction and comparison**: the same side of every antonym axis (`increase`/`decrease`,
//!   `before`/`after`, `from`, `max`/`min`, `import`/`export`, `encrypt`/`decrypt`, ...);
//! * **relations**: no pair of words swapped around `to`/`than`/`from`/`vs`
//!   ("convert usd to eur" vs "convert eur to usd");
//! * **task**: the same task words (`summarize` != `translate` != `list`);
//! * **content words**: the same set of content words after dropping function words and request
//!   framing ("how do I", "what are the steps to", "please explain"), folding common synonyms and
//!   light stemming. This catches names typed in lower case and swapped nouns
//!   ("cats" vs "dogs"), which no vector threshold separates.
//!
//! The guards compare the *whole* text, never a truncated one. They are deliberately strict: a
//! missed hit costs one upstream call, a wrong hit serves a wrong answer.

use std::collections::{BTreeMap, BTreeSet};

use super::lexicon::{self, Axis};
use super::tokens::{
    base_forms, contains_at_boundary, is_shaped, number_at, quoted_spans, replace_ci, stem,
    tokenize, unit_after, Token,
};

/// Why two texts are not interchangeable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardMismatch {
    Numbers,
    Entities,
    Negation,
    Direction,
    Relation,
    Task,
    Content,
}

impl GuardMismatch {
    pub fn metric_label(&self) -> &'static str {
        match self {
            GuardMismatch::Numbers => "numbers",
            GuardMismatch::Entities => "entities",
            GuardMismatch::Negation => "negation",
            GuardMismatch::Direction => "direction",
            GuardMismatch::Relation => "relation",
            GuardMismatch::Task => "task",
            GuardMismatch::Content => "content",
        }
    }
}

/// The structural features of one text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    numbers: Vec<String>,
    /// Names, identifiers and quoted spans, lower-cased, in order of appearance.
    entities: Vec<String>,
    negations: u32,
    /// Per axis: (has a + word, has a - word).
    directions: BTreeMap<Axis, (bool, bool)>,
    relations: BTreeSet<(String, &'static str, String)>,
    tasks: BTreeSet<String>,
    content: BTreeSet<String>,
    /// Lower-cased words, for containment checks of entities.
    words: Vec<String>,
    /// Lower-cased text with collapsed whitespace, for containment checks of quoted spans.
    flat: String,
}

impl Features {
    pub fn extract(text: &str) -> Features {
        let folded;
        let text = if text.to_lowercase().contains("tl;dr") {
            folded = replace_ci(text, "tl;dr", "tldr");
            folded.as_str()
        } else {
            text
        };
        let mut f = Features {
            flat: text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase(),
            ..Features::default()
        };
        f.entities.extend(quoted_spans(text));
        let tokens = tokenize(text);
        let mut prev_content: Option<String> = None;
        let mut pending_marker: Option<(String, &'static str)> = None;
        let mut i = 0;
        while i < tokens.len() {
            let tok = &tokens[i];
            // Numbers: digits, number words (with their multipliers), and a following unit.
            if let Some((value, used)) = number_at(&tokens, i) {
                let unit = unit_after(&tokens, i + used);
                let n = match &unit {
                    Some((u, _)) => format!("{value} {u}"),
                    None => value,
                };
                f.numbers.push(n);
                // "5 kg to lb": the unit is the left side of a relation.
                prev_content = unit.as_ref().map(|(u, _)| u.clone());
                i += used + unit.as_ref().map_or(0, |(_, k)| *k);
                continue;
            }
            if is_shaped(tok.raw) {
                f.entities.push(tok.raw.to_lowercase());
                f.words.push(tok.raw.to_lowercase());
                i += 1;
                continue;
            }
            let lower = tok.raw.to_lowercase();
            let word = lower.trim_end_matches("'s").trim_matches('\'').to_owned();
            f.words.push(word.clone());
            if lexicon::is_negation(&lower) || lexicon::is_negation(&word) {
                f.negations += 1;
            } else if let Some((axis, side)) = lexicon::direction(&word)
                .or_else(|| base_forms(&word).find_map(|b| lexicon::direction(&b)))
            {
                let e = f.directions.entry(axis).or_default();
                if side > 0 {
                    e.0 = true;
                } else {
                    e.1 = true;
                }
            }
            if lexicon::is_relation_marker(&word) {
                pending_marker = prev_content.take().map(|p| (p, marker_name(&word)));
            } else if let Some(canon) = content_word(&word) {
                if is_name(tok) {
                    push_name(&mut f.entities, &tokens, i);
                }
                if lexicon::is_task(&canon) {
                    f.tasks.insert(canon.clone());
                }
                if let Some((left, m)) = pending_marker.take() {
                    f.relations.insert((left, m, canon.clone()));
                }
                prev_content = Some(canon.clone());
                f.content.insert(canon);
            }
            i += 1;
        }
        f.entities.dedup();
        f
    }

    /// Ok when `self` and `other` may share an answer, else the first guard that disagrees.
    pub fn agree(&self, other: &Features) -> Result<(), GuardMismatch> {
        if self.numbers != other.numbers {
            return Err(GuardMismatch::Numbers);
        }
        if self.negations != other.negations {
            return Err(GuardMismatch::Negation);
        }
        if !directions_agree(&self.directions, &other.directions) {
            return Err(GuardMismatch::Direction);
        }
        if !self.entities_in(other) || !other.entities_in(self) || !same_order(self, other) {
            return Err(GuardMismatch::Entities);
        }
        let swapped = self
            .relations
            .iter()
            .any(|(a, m, b)| a != b && other.relations.contains(&(b.clone(), *m, a.clone())));
        if swapped {
            return Err(GuardMismatch::Relation);
        }
        if self.tasks != other.tasks {
            return Err(GuardMismatch::Task);
        }
        if self.content != other.content {
            return Err(GuardMismatch::Content);
        }
        Ok(())
    }

    /// Every entity of `self` occurs in `other` (as a word sequence, or inside its text for
    /// quoted spans and identifiers).
    fn entities_in(&self, other: &Features) -> bool {
        self.entities.iter().all(|e| {
            let parts: Vec<&str> = e.split(' ').collect();
            other.entities.contains(e)
                || other
                    .words
                    .windows(parts.len())
                    .any(|w| w == parts.as_slice())
                || contains_at_boundary(&other.flat, e)
        })
    }
}

/// Entities found as entities on both sides must come in the same order.
fn same_order(a: &Features, b: &Features) -> bool {
    let common_a: Vec<&String> = a
        .entities
        .iter()
        .filter(|e| b.entities.contains(e))
        .collect();
    let common_b: Vec<&String> = b
        .entities
        .iter()
        .filter(|e| a.entities.contains(e))
        .collect();
    common_a == common_b
}

fn directions_agree(a: &BTreeMap<Axis, (bool, bool)>, b: &BTreeMap<Axis, (bool, bool)>) -> bool {
    let axes: BTreeSet<&Axis> = a.keys().chain(b.keys()).collect();
    axes.into_iter().all(|axis| {
        let x = a.get(axis).copied().unwrap_or_default();
        let y = b.get(axis).copied().unwrap_or_default();
        if axis.strict || (x != (false, false) && y != (false, false)) {
            x == y
        } else {
            true
        }
    })
}

fn marker_name(w: &str) -> &'static str {
    match w {
        "to" | "into" | "onto" => "to",
        "than" | "over" | "instead" => "than",
        "vs" | "versus" => "vs",
        "from" => "from",
        _ => "per",
    }
}

/// The canonical content word for `word`, or None for function words, framing, negation,
/// direction words and numbers.
fn content_word(word: &str) -> Option<String> {
    if word.is_empty()
        || !word.chars().any(char::is_alphabetic)
        || lexicon::is_negation(word)
        || lexicon::direction(word).is_some()
        || lexicon::number_word(word).is_some()
        || lexicon::is_stopword(word)
        || lexicon::is_generic(word)
    {
        return None;
    }
    if let Some(s) = lexicon::synonym(word)
        .or_else(|| base_forms(word).find_map(|b| lexicon::synonym(&b)))
        .or_else(|| lexicon::unit(word).filter(|_| word.len() >= 2))
    {
        return Some(s.to_owned());
    }
    if base_forms(word).any(|b| lexicon::direction(&b).is_some() || lexicon::is_generic(&b)) {
        return None;
    }
    Some(stem(word))
}

/// A capitalised word in the middle of a sentence, or at its start when it is not an ordinary
/// request word ("Paris is ..." but not "Explain ...").
fn is_name(tok: &Token) -> bool {
    let mut chars = tok.raw.chars();
    let first_upper = chars.next().is_some_and(char::is_uppercase);
    if !first_upper || tok.raw.len() < 2 {
        return false;
    }
    let lower = tok.raw.to_lowercase();
    if tok.raw == "I" || lower == "i'm" || lower == "i'd" || lower == "i've" || lower == "i'll" {
        return false;
    }
    !(tok.sentence_start && lexicon::is_common_capitalized(lower.trim_end_matches("'s")))
}

/// Pushes the run of capitalised words starting at `i` as one entity ("New York City"), unless
/// it continues a run already pushed.
fn push_name(entities: &mut Vec<String>, tokens: &[Token], i: usize) {
    if i > 0 && is_name(&tokens[i - 1]) {
        return;
    }
    let run: Vec<String> = tokens[i..]
        .iter()
        .take_while(|t| is_name(t) || std::ptr::eq(*t, &tokens[i]))
        .map(|t| t.raw.to_lowercase().trim_end_matches("'s").to_owned())
        .collect();
    entities.push(run.join(" "));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agree(a: &str, b: &str) -> Result<(), GuardMismatch> {
        Features::extract(a).agree(&Features::extract(b))
    }

    #[test]
    fn paraphrases_agree() {
        let same = [
            (
                "How do I reset my password?",
                "What are the steps to reset my password?",
            ),
            ("Convert 5 kilograms to pounds", "convert 5 kg to lb"),
            (
                "What is the capital of France?",
                "Tell me the capital of France.",
            ),
            ("Summarize this:", "Please summarize the following article:"),
            (
                "Why doesn't my Python script run?",
                "Why does my Python script not run?",
            ),
            ("What's the best way to learn Rust?", "How do I learn Rust?"),
            (
                "How much is $20 in euros?",
                "How much is 20 dollars in euros?",
            ),
            ("Give me twenty-five ideas", "Give me 25 ideas"),
        ];
        for (a, b) in same {
            assert_eq!(agree(a, b), Ok(()), "{a} / {b}");
        }
    }

    #[test]
    fn near_misses_disagree() {
        use GuardMismatch::*;
        let cases = [
            (
                "How many days are in 2 weeks?",
                "How many days are in 3 weeks?",
                Numbers,
            ),
            ("Convert 5 km to miles", "Convert 5 miles to km", Numbers),
            (
                "What is the capital of France?",
                "What is the capital of Germany?",
                Entities,
            ),
            (
                "what is the capital of france",
                "what is the capital of germany",
                Content,
            ),
            (
                "Is Python a compiled language?",
                "Is Python not a compiled language?",
                Negation,
            ),
            (
                "How do I increase my credit score?",
                "How do I decrease my credit score?",
                Direction,
            ),
            ("Flights from Paris", "Flights to Paris", Direction),
            ("convert usd to eur", "convert eur to usd", Relation),
            (
                "Translate 'good morning' to French",
                "Translate 'good night' to French",
                Entities,
            ),
            ("Summarize this article:", "Translate this article:", Task),
            ("How long do cats live?", "How long do dogs live?", Content),
            (
                "What is the maximum heart rate?",
                "What is the minimum heart rate?",
                Direction,
            ),
            ("Call `foo.bar()` first", "Call `foo.baz()` first", Entities),
        ];
        for (a, b, why) in cases {
            assert_eq!(agree(a, b), Err(why), "{a} / {b}");
        }
    }

    #[test]
    fn numbers_are_canonical() {
        let f = Features::extract("Spend $1,000 on 3.0 kg and 5% of two hundred twelve, the 2nd");
        assert_eq!(f.numbers, ["1000 usd", "3 kg", "5 %", "212", "#2"]);
    }

    #[test]
    fn stems_fold_inflections() {
        assert_eq!(stem("baking"), stem("bake"));
        assert_eq!(stem("passwords"), stem("password"));
        assert_eq!(stem("running"), "run");
    }
}
