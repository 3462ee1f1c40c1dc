//! Question structure: *what* is being asked, not only which words occur. Two prompts can share
//! every word and still ask different questions:
//!
//! * **focus**: a word problem or a quoted review mentions several participants or aspects, and
//!   the question picks one ("... How many apples does Ben have?" / "... does Ana have?"; "Sentiment
//!   toward the battery?" / "toward the screen?"). The focus is the content words and names of
//!   the last sentence that asks (the last one with a `?`, else the last one). Two prompts whose
//!   foci each hold a word the other mentions only outside its focus ask about different things;
//! * **asked type**: where / when / who / why / how many ask for different kinds of answer
//!   ("Where was it signed?" / "In what year was it signed?");
//! * **ordered pairs**: content words joined by a relation word, in order ("teachers *per*
//!   student" / "students *per* teacher", "price-*to*-earnings" / "earnings-*to*-price"): a pair
//!   reversed, or one head given another argument that both prompts mention, is another question;
//! * **quantifiers**: "all rows" / "a single row";
//! * **symbols**: runs of code and math symbols in order (`==` / `===`, `C++` / `C#`, `->` / `=>`),
//!   wherever they occur (an operand detector can miss inline code; this cannot).
//!
//! Only closed classes of words are used (question words, prepositions, quantifiers): no topic
//! vocabulary. Every pass is linear in the (short) instruction.

use std::collections::BTreeSet;

use super::super::lexicon;
use super::words::{content_word, normalize};

/// Symbols whose runs are compared in order.
const SYMBOLS: &str = "=<>+*^~&|\\{}[]@#";

/// Words that join two things in an order that matters.
const PAIR_WORDS: &[&str] = &[
    "per", "to", "for", "over", "into", "vs", "versus", "than", "from", "of", "against", "toward",
    "towards", "relative", "compared",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    Place,
    Time,
    Person,
    Reason,
    Quantity,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Structure {
    symbols: Vec<String>,
    focus: BTreeSet<String>,
    /// The names and labels in the focus sentence's question clause (see [`question_clause`]):
    /// which of the participants the question is about.
    clause: BTreeSet<String>,
    /// Every content word of the prompt, its operands' included.
    mentions: BTreeSet<String>,
    asked: Option<Asked>,
    universal: bool,
    singular: bool,
    pairs: BTreeSet<(String, String)>,
    /// What a "per" divides by ("pounds per dollar": dollar).
    per: BTreeSet<String>,
    /// The instruction's words in order (at most [`MAX_ORDER`]).
    order: Vec<Ordered>,
}

/// A word of the instruction, for the swap check.
#[derive(Debug, Clone, Default, PartialEq)]
struct Ordered {
    /// Its key when it has one (a content word, name, number or label), else the word.
    word: String,
    keyed: bool,
    /// Only a coordinator (and articles) join it to the keyed word before ("cats and dogs").
    joined: bool,
}

/// Keyed words kept in order for the swap check.
const MAX_ORDER: usize = 256;

/// What differs, when the structures disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disagreement {
    Symbols,
    Focus,
    Asked,
    Quantifier,
    Pairs,
    /// The same words with two of them trading places ("A is 25% higher than B" / "B is 25%
    /// higher than A", "a cheetah runs 2.5 times as fast as a horse" / "a horse ... a cheetah").
    Swapped,
}

/// A word of the structure's vocabulary: a content word, a name, a number or a one-letter label
/// ("car X", "tank P").
fn key(raw: &str, sentence_start: bool) -> Option<String> {
    if raw
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
        && raw.chars().any(|c| c.is_ascii_digit())
    {
        return Some(raw.trim_end_matches(['.', ',']).to_owned());
    }
    // "A's" is the label A.
    let bare = raw.strip_suffix("'s").unwrap_or(raw);
    let mut chars = bare.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let label = c.is_ascii_uppercase() && c != 'I' && !(c == 'A' && sentence_start);
        return label.then(|| format!("label:{c}"));
    }
    let word = normalize(raw);
    content_word(&word).or_else(|| {
        // Ends of an axis order a relation too ("lower note to upper note").
        let axis = lexicon::direction(&word).is_some() || lexicon::grade(&word).is_some();
        axis.then(|| format!("axis:{word}"))
    })
}

/// Words of `text` with sentence-start flags: split on anything but letters, digits, `'`, `.`/`,`
/// inside numbers; hyphenated words split into their parts ("price-to-earnings").
fn words(text: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let mut start = true;
    let b = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let c = text[i..].chars().next().unwrap_or(' ');
        if c.is_alphanumeric() {
            let s = i;
            while i < text.len() {
                let ch = text[i..].chars().next().unwrap_or(' ');
                let inner_num = (ch == '.' || ch == ',')
                    && i > s
                    && b[i - 1].is_ascii_digit()
                    && b.get(i + 1).is_some_and(u8::is_ascii_digit);
                if ch.is_alphanumeric() || ch == '\'' || inner_num {
                    i += ch.len_utf8();
                } else {
                    break;
                }
            }
            out.push((text[s..i].trim_end_matches('\''), start));
            start = false;
        } else {
            if matches!(c, '.' | '?' | '!' | '\n' | ':' | ';') {
                start = true;
            }
            i += c.len_utf8();
        }
    }
    out
}

/// Byte ranges of the sentences of `text` (ended by `.`, `?`, `!` or a line break, not inside a
/// number).
fn sentences(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..b.len() {
        let end = match b[i] {
            b'?' | b'!' | b'\n' => true,
            b'.' => {
                !(i > 0
                    && b[i - 1].is_ascii_digit()
                    && b.get(i + 1).is_some_and(u8::is_ascii_digit))
            }
            _ => false,
        };
        if end {
            if text[start..=i].chars().any(char::is_alphanumeric) {
                out.push((start, i + 1));
            }
            start = i + 1;
        }
    }
    if text[start..].chars().any(char::is_alphanumeric) {
        out.push((start, text.len()));
    }
    out
}

fn asked_in(sentence: &str) -> Option<Asked> {
    let lower = sentence.to_lowercase();
    let w: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    for (i, word) in w.iter().enumerate() {
        let next = w.get(i + 1).copied().unwrap_or("");
        let asked = match (*word, next) {
            ("where", _) => Asked::Place,
            ("when", _) => Asked::Time,
            (
                "what" | "which",
                "year" | "time" | "date" | "day" | "month" | "century" | "decade",
            ) => Asked::Time,
            ("who" | "whom" | "whose", _) => Asked::Person,
            ("why", _) => Asked::Reason,
            ("how", "come") => Asked::Reason,
            ("how", "many" | "much" | "long" | "far" | "old" | "big" | "tall" | "often") => {
                Asked::Quantity
            }
            _ => continue,
        };
        return Some(asked);
    }
    None
}

/// The clause of the sentence `focus` that asks: split at commas, semicolons, colons and
/// dashes between words (not inside "5,000" or "10:30"), the last clause with a question word,
/// else the last clause ("If 2 engineers move from Team A to Team B, *how many are in Team A?*";
/// "Jack $5,000, Jill $3,000 invested - *Jack's share?*"). Linear in the sentence.
fn question_clause(text: &str, focus: (usize, usize)) -> (usize, usize) {
    let s = &text[focus.0..focus.1];
    let b = s.as_bytes();
    let mut clauses = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        // "5,000", "10:30", "3, 8, 1, 9": numbers, not clauses.
        let next_digit = b[i + c.len_utf8()..]
            .iter()
            .find(|&&x| x != b' ')
            .is_some_and(u8::is_ascii_digit);
        let spaced = i > 0 && b[i - 1] == b' ' && b.get(i + 1) == Some(&b' ');
        let cut = match c {
            ',' | ':' => !next_digit,
            ';' | '—' | '–' => true,
            '-' => spaced,
            _ => false,
        };
        if cut {
            clauses.push((start, i));
            start = i + c.len_utf8();
        }
    }
    clauses.push((start, s.len()));
    const QUESTION_WORDS: &[&str] = &[
        "what", "which", "who", "whom", "whose", "how", "when", "where", "why",
    ];
    let asks = |&&(x, y): &&(usize, usize)| {
        words(&s[x..y])
            .iter()
            .any(|(w, _)| QUESTION_WORDS.iter().any(|q| w.eq_ignore_ascii_case(q)))
    };
    let (x, y) = clauses
        .iter()
        .rev()
        .find(asks)
        .or(clauses.last())
        .copied()
        .unwrap_or((0, s.len()));
    (focus.0 + x, focus.0 + y)
}

impl Structure {
    /// `text` is the instruction (operands as `§`), `mentions` the text of its short operands.
    pub fn extract(text: &str, mentions: &str) -> Structure {
        let mut s = Structure {
            symbols: symbol_runs(text),
            ..Structure::default()
        };
        let sentences = sentences(text);
        let focus = sentences
            .iter()
            .rev()
            .find(|(a, b)| text[*a..*b].contains('?'))
            .or(sentences.last())
            .copied()
            .unwrap_or((0, 0));
        s.asked = asked_in(&text[focus.0..focus.1]);
        let clause = question_clause(text, focus);
        let all = words(text);
        // Since the last keyed word: only coordinators and articles, and at least one coordinator.
        let (mut only_coordinators, mut saw_coordinator) = (false, false);
        let mut offset_words: Vec<(usize, Option<String>, String)> = Vec::with_capacity(all.len());
        for (raw, start) in &all {
            let at = raw.as_ptr() as usize - text.as_ptr() as usize;
            let lower = raw.to_lowercase();
            let k = key(raw, *start);
            if k.is_none() {
                let coordinator = matches!(lower.as_str(), "and" | "or" | "vs" | "versus" | "nor");
                only_coordinators &= coordinator || matches!(lower.as_str(), "a" | "an" | "the");
                saw_coordinator |= coordinator;
            }
            if s.order.len() < MAX_ORDER {
                let joined = k.is_some() && only_coordinators && saw_coordinator;
                s.order.push(Ordered {
                    word: k.clone().unwrap_or_else(|| lower.clone()),
                    keyed: k.is_some(),
                    joined,
                });
            }
            if let Some(k) = &k {
                (only_coordinators, saw_coordinator) = (true, false);
                s.mentions.insert(k.clone());
                if at >= focus.0 && at < focus.1 {
                    s.focus.insert(k.clone());
                }
                let named = k.starts_with("label:")
                    || (!*start && raw.chars().next().is_some_and(char::is_uppercase));
                if named && at >= clause.0 && at < clause.1 {
                    s.clause.insert(k.clone());
                }
            }
            match lower.as_str() {
                "all" | "every" | "each" | "entire" | "whole" | "both" => s.universal = true,
                "single" | "individual" | "particular" | "specific" | "one" => s.singular = true,
                _ => {}
            }
            offset_words.push((at, k, lower));
        }
        for (raw, start) in words(mentions) {
            if let Some(k) = key(raw, start) {
                s.mentions.insert(k);
            }
        }
        (s.pairs, s.per) = pairs(&offset_words);
        s
    }

    pub fn agree(&self, other: &Structure) -> Result<(), Disagreement> {
        if self.symbols != other.symbols {
            return Err(Disagreement::Symbols);
        }
        if matches!((self.asked, other.asked), (Some(a), Some(b)) if a != b) {
            return Err(Disagreement::Asked);
        }
        if (self.universal && other.singular && !other.universal)
            || (other.universal && self.singular && !self.universal)
        {
            return Err(Disagreement::Quantifier);
        }
        let shifted =
            |a: &BTreeSet<String>, b: &BTreeSet<String>, b_mentions: &BTreeSet<String>| {
                a.difference(b).any(|w| b_mentions.contains(w))
            };
        let apart = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
            shifted(a, b, &other.mentions) && shifted(b, a, &self.mentions)
        };
        if apart(&self.focus, &other.focus) || apart(&self.clause, &other.clause) {
            return Err(Disagreement::Focus);
        }
        // "how many pounds per dollar" / "the price per pound": another quantity.
        // Both divide, by different words, one of which the other side mentions.
        let divides_by_other = |a: &Structure, b: &Structure| {
            a.per
                .iter()
                .any(|w| !b.per.contains(w) && b.mentions.contains(w))
        };
        let per_differs = !self.per.is_empty()
            && !other.per.is_empty()
            && self.per != other.per
            && (divides_by_other(self, other) || divides_by_other(other, self));
        if per_differs || pairs_conflict(self, other) {
            return Err(Disagreement::Pairs);
        }
        if transposed(&self.order, &other.order) {
            return Err(Disagreement::Swapped);
        }
        Ok(())
    }
}

/// `a` and `b` are the same text but for two keyed words trading places ("a cheetah runs 2.5
/// times as fast as a horse" / "a horse ... as a cheetah"): a rewording changes more than that,
/// a swap of who is compared with whom nothing else. Two words joined by a coordinator ("cats
/// and dogs" / "dogs and cats") may trade places.
fn transposed(a: &[Ordered], b: &[Ordered]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut differ = (0..a.len()).filter(|&i| a[i].word != b[i].word);
    match (differ.next(), differ.next(), differ.next()) {
        (Some(i), Some(j), None) => {
            let swapped = a[i].word == b[j].word && a[j].word == b[i].word;
            let keyed = a[i].keyed && a[j].keyed;
            let coordination = a[j].joined && b[j].joined && (i + 1..j).all(|m| !a[m].keyed);
            swapped && keyed && !coordination
        }
        _ => false,
    }
}

/// Runs of [`SYMBOLS`] (and `!=`), in order.
fn symbol_runs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let symbol = SYMBOLS.contains(c) || (c == '!' && chars.peek() == Some(&'='));
        if symbol {
            run.push(c);
        } else if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

/// (left, right) for each pair word between two keyed words at most 3 words away on each side,
/// and the right sides of "per".
fn pairs(
    words: &[(usize, Option<String>, String)],
) -> (BTreeSet<(String, String)>, BTreeSet<String>) {
    let mut out = BTreeSet::new();
    let mut per = BTreeSet::new();
    for (i, (_, _, w)) in words.iter().enumerate() {
        if !PAIR_WORDS.contains(&w.as_str()) {
            continue;
        }
        let left = words[i.saturating_sub(4)..i]
            .iter()
            .rev()
            .find_map(|(_, k, _)| k.clone());
        let right = words[i + 1..(i + 5).min(words.len())]
            .iter()
            .find_map(|(_, k, _)| k.clone());
        if w == "per" {
            if let Some(r) = &right {
                per.insert(r.clone());
            }
        }
        if let (Some(l), Some(r)) = (left, right) {
            if l != r && !lexicon::is_stopword(&l) {
                out.insert((l, r));
            }
        }
    }
    (out, per)
}

/// A pair of one side reversed on the other, or one head with another argument that both sides
/// mention ("percent of 20" / "percent of 80" when both mention 20 and 80).
fn pairs_conflict(a: &Structure, b: &Structure) -> bool {
    a.pairs.iter().any(|(l, r)| {
        (b.pairs.contains(&(r.clone(), l.clone())) && !a.pairs.contains(&(r.clone(), l.clone())))
            || b.pairs.iter().any(|(l2, r2)| {
                l2 == l
                    && r2 != r
                    && a.mentions.contains(r2)
                    && b.mentions.contains(r)
                    && !a.pairs.contains(&(l.clone(), r2.clone()))
                    && !b.pairs.contains(&(l.clone(), r.clone()))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agree(a: &str, b: &str) -> Result<(), Disagreement> {
        Structure::extract(a, "").agree(&Structure::extract(b, ""))
    }

    #[test]
    fn focus_on_another_participant_or_aspect() {
        assert_eq!(
            agree(
                "Ana has 3 more apples than Ben. Together they have 17 apples. How many apples does Ben have?",
                "Ana has 3 more apples than Ben. Together they have 17 apples. How many apples does Ana have?"
            ),
            Err(Disagreement::Focus)
        );
        let review =
            "The battery easily lasts two days, but the screen is too dim to read outdoors.";
        let a = Structure::extract(
            "In this review — § — is the opinion of the battery positive?",
            review,
        );
        let b = Structure::extract(
            "In this review — § — is the opinion of the screen positive?",
            review,
        );
        assert!(a.agree(&b).is_err());
        // A question sentence that names both participants: its asking clause picks one.
        assert_eq!(
            agree(
                "Team A has 8 engineers and Team B has 5. If 2 engineers move from Team A to Team B, how many engineers are in Team A?",
                "Team A has 8 engineers and Team B has 5. If 2 engineers move from Team A to Team B, how many engineers are in Team B?"
            ),
            Err(Disagreement::Focus)
        );
        assert_eq!(
            agree(
                "Jack $5,000, Jill $3,000 invested; $2,400 profit split proportionally - Jack's share?",
                "Jack $5,000, Jill $3,000 invested; $2,400 profit split proportionally - Jill's share?"
            ),
            Err(Disagreement::Focus)
        );
        // A list of numbers is not a list of clauses.
        assert_eq!(
            agree(
                "median of 3, 8, 1, 9, 4",
                "What is the median of 3, 8, 1, 9, 4?"
            ),
            Ok(())
        );
        // Restating the question keeps its focus.
        assert_eq!(
            agree(
                "Ana has 3 more apples than Ben. Together they have 17 apples. How many apples does Ben have?",
                "If Ana has 3 more apples than Ben and they have 17 apples together, how many apples does Ben have?"
            ),
            Ok(())
        );
        assert_eq!(
            agree("How do I reset my password?", "password reset steps?"),
            Ok(())
        );
    }

    #[test]
    fn asked_type_pairs_quantifiers_and_symbols() {
        assert_eq!(
            agree(
                "Where was the Magna Carta sealed?",
                "In what year was the Magna Carta sealed?"
            ),
            Err(Disagreement::Asked)
        );
        assert_eq!(agree("When did WW2 end?", "What year did WW2 end?"), Ok(()));
        assert_eq!(
            agree(
                "A school has 480 students and 32 teachers. How many teachers are there per student?",
                "A school has 480 students and 32 teachers. How many students are there per teacher?"
            ),
            Err(Disagreement::Pairs)
        );
        assert_eq!(
            agree(
                "If 3 lbs of apples cost $4.50, what's the price per pound?",
                "If 3 lbs of apples cost $4.50, how many pounds do I get per dollar?"
            ),
            Err(Disagreement::Pairs)
        );
        assert_eq!(
            agree(
                "What is the price per pound of apples?",
                "How much do apples cost per pound?"
            ),
            Ok(())
        );
        // Two words trading places: who is compared with whom.
        assert_eq!(
            agree(
                "A truck carries three times as much as a van. The van carries 800 kg. How much does the truck carry?",
                "A van carries three times as much as a truck. The van carries 800 kg. How much does the truck carry?"
            ),
            Err(Disagreement::Swapped)
        );
        assert_eq!(
            agree(
                "Warehouse X's stock is 30% larger than warehouse Y's. Y holds 900 units. How many does X hold?",
                "Warehouse Y's stock is 30% larger than warehouse X's. Y holds 900 units. How many does X hold?"
            ),
            Err(Disagreement::Swapped)
        );
        assert!(agree(
            "How much heavier is an elephant than a hippo?",
            "How much heavier is a hippo than an elephant?"
        )
        .is_err());
        // Coordinated words may trade places: the same question.
        assert_eq!(
            agree(
                "What is the difference between a crocodile and an alligator?",
                "What is the difference between an alligator and a crocodile?"
            ),
            Ok(())
        );
        assert_eq!(
            agree(
                "What is a good price-to-earnings ratio?",
                "What is a good earnings-to-price ratio?"
            ),
            Err(Disagreement::Pairs)
        );
        assert_eq!(
            agree(
                "How do I delete all rows from a table in SQL?",
                "How do I delete a single row from a table in SQL?"
            ),
            Err(Disagreement::Quantifier)
        );
        assert_eq!(
            agree(
                "What does console.log(null == undefined) print?",
                "What does console.log(null === undefined) print?"
            ),
            Err(Disagreement::Symbols)
        );
        assert_eq!(
            agree("Is C++ faster than C#?", "Is C++ quicker than C#?"),
            Ok(())
        );
    }
}
