//! Structural guards: what must agree between a query and a cached entry besides the vector.
//!
//! Sentence embeddings put near-misses ("... in 2019?" vs "... in 2020?", "Paris" vs "Lyon",
//! "can" vs "cannot") *closer* together than real paraphrases, so cosine similarity cannot tell a
//! paraphrase from a wrong answer. A semantic hit therefore also needs, between the two texts:
//!
//! * **numbers**: the same numbers with the same units (`5 kg` = `five kilograms` != `5 lb`;
//!   `$20` = `20 dollars`; `-5` != `5`), in the same order among numbers of one unit, and the
//!   same count for a noun both sides count ("3 eggs, 2 cups" != "2 eggs, 3 cups"). A bare "one"
//!   is an article ("one cup" = "a cup");
//! * **operators** of inline math and code, in order (`2x + 5` != `2x - 5`), see [`math`];
//! * **names and literals**: every proper noun, acronym, identifier, URL/path and quoted or code
//!   span of one side occurs in the other, and those present in both occur in the same order;
//! * **negation**: the same number of negation cues (`not`, `never`, `-n't`, `without`, ...);
//! * **direction**: the same side of every antonym axis (`increase`/`decrease`,
//!   `before`/`after`, `import`/`export`, `encrypt`/`decrypt`, ...);
//! * **degree**: gradable adjectives on compatible scales and ends ("tallest" = "highest" !=
//!   "largest"; "cheapest" != "fastest"; a superlative or comparative on one side only is a
//!   different question);
//! * **relations**: no word a source on one side and a target on the other ("X to Y" vs "Y to
//!   X", "ounces in a pound" vs "pounds in an ounce"), and no swapped participants ("do I give my
//!   landlord notice" vs "does my landlord give notice"), see [`relations`];
//! * **task**: the same task words (`summarize` != `translate` != `extract` != `compare`);
//!   "list", "write"/"create" and "calculate" may be left implicit on one side, but "write" or
//!   "create" never answers "find", "get", "explain" or "describe";
//! * **content words**: the same set of content words after dropping function words and request
//!   framing ("how do I", "what are the steps to", "please explain", "the command to", "this
//!   news article", "the idiom '...'"), folding common synonyms, British spellings and light
//!   stemming; "p value" = "p-value", "screen shot" = "screenshot". The parts of a hyphenated
//!   modifier count as content ("short-term capital gains" != "capital gains"). This catches
//!   names typed in lower case and swapped nouns ("cats" vs "dogs"), which no vector threshold
//!   separates.
//!
//! The guards compare the *whole* text, never a truncated one. They are deliberately strict: a
//! missed hit costs one upstream call, a wrong hit serves a wrong answer.

mod math;
mod quantities;
mod relations;
mod structure;
mod words;

use std::collections::{BTreeMap, BTreeSet};

use super::lexicon::{self, Axis};
use super::tokens::{
    contains_at_boundary, is_shaped, number_at, numeric, quoted_spans, replace_ci, stem, tokenize,
    unit_after, After, Token,
};
use quantities::{bound_at, degrees_agree, numbers_agree, ordinal, Degree, Number};
use relations::{Participants, Slot};
use structure::{Disagreement, Structure};
use words::{
    content_word, direction_of, entity_of, is_document_reference, is_idiom_part, is_name,
    is_shouting, is_stopword_acronym, is_text_pointer, marker_name, normalize, push_name,
    DETERMINERS, PHRASE_WORDS,
};

/// Why two texts are not interchangeable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardMismatch {
    Numbers,
    Operators,
    /// Code or math symbols differ (`==` / `===`).
    Symbols,
    Entities,
    Negation,
    Direction,
    Degree,
    Relation,
    /// The question is about another of the things both prompts mention.
    Focus,
    /// Where / when / who / why / how many.
    Asked,
    /// "all" / "a single".
    Quantifier,
    Task,
    Content,
    /// Task frames of two instructions over the same operands differ.
    Frame,
}

impl GuardMismatch {
    pub fn metric_label(&self) -> &'static str {
        match self {
            GuardMismatch::Numbers => "numbers",
            GuardMismatch::Operators => "operators",
            GuardMismatch::Symbols => "symbols",
            GuardMismatch::Focus => "focus",
            GuardMismatch::Asked => "asked",
            GuardMismatch::Quantifier => "quantifier",
            GuardMismatch::Frame => "frame",
            GuardMismatch::Entities => "entities",
            GuardMismatch::Negation => "negation",
            GuardMismatch::Direction => "direction",
            GuardMismatch::Degree => "degree",
            GuardMismatch::Relation => "relation",
            GuardMismatch::Task => "task",
            GuardMismatch::Content => "content",
        }
    }

    /// A hard mismatch is never served, whatever the similarity or what was learned; a soft one
    /// (different content words only) may be a paraphrase: worth verifying.
    pub fn is_hard(&self) -> bool {
        !matches!(self, GuardMismatch::Content)
    }
}

/// The structural features of one text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    numbers: Vec<Number>,
    operators: Vec<String>,
    /// Names, identifiers and quoted spans, lower-cased, in order of appearance.
    entities: Vec<String>,
    negations: u32,
    /// Per axis: (has a + word, has a - word).
    directions: BTreeMap<Axis, (bool, bool)>,
    degrees: Vec<Degree>,
    /// Every unit named, with a number or without ("5 km to miles": km, mi).
    units: BTreeSet<String>,
    /// The units asked for ("how many days", "what year").
    asked_units: BTreeSet<String>,
    /// Source / target roles per word (see [`relations`]).
    roles: BTreeMap<String, u8>,
    participants: Participants,
    tasks: BTreeSet<String>,
    content: BTreeSet<String>,
    /// Adjacent content words by their closed compound ("p value" -> "pvalu": [p, valu]), so
    /// "p-value" / "p value" and "screenshot" / "screen shot" compare equal.
    pairs: BTreeMap<String, [String; 2]>,
    /// Lower-cased words, for containment checks of entities.
    words: Vec<String>,
    /// Lower-cased text with collapsed whitespace, for containment checks of quoted spans.
    flat: String,
    /// Quoted or code spans in the text.
    quotes: usize,
    /// Asks to find, show or explain something (not to make it): see [`tasks_agree`].
    retrieval: bool,
    /// While extracting: the bound ("more than", "under") the next number carries.
    bound: Option<&'static str>,
    /// While extracting: the name run being read, by its last token ("New York City").
    run: Option<(usize, String)>,
    /// What is asked (focus, asked type, ordered pairs, quantifiers, symbols).
    structure: Structure,
    /// The instruction's task frame, when it has one (see [`super::frame`]).
    frame: Option<super::frame::Frame>,
    /// What the instruction states of a frame, unknown words skipped.
    frame_hint: super::frame::Frame,
}

impl Features {
    /// The features of an instruction that has no operands.
    pub fn extract(text: &str) -> Features {
        Self::extract_with(text, "")
    }

    /// The features of an instruction; `mentions` is the text of its short operands (quotes,
    /// data, code), which the focus guard reads.
    pub fn extract_with(text: &str, mentions: &str) -> Features {
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
        f.quotes = f.entities.len();
        let tokens = tokenize(text);
        f.operators = math::operators(text, &tokens);
        f.participants = relations::participants(&tokens, |t| content_word(&normalize(t.raw)));
        let shouting = is_shouting(&tokens);
        let mut slots = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            if tokens[i].sentence_start {
                slots.push(Slot::Break);
            }
            i = f.extract_at(&tokens, i, shouting, &mut slots);
            // A name is one word for the roles, placed at its end (its head).
            if f.run.as_ref().is_some_and(|(end, _)| *end < i) {
                let (_, run) = f.run.take().unwrap_or_default();
                slots.push(Slot::Key(run));
            }
        }
        f.entities.dedup();
        f.roles = relations::roles(&slots);
        f.structure = Structure::extract(text, mentions);
        f.frame = super::frame::parse(text);
        f.frame_hint = super::frame::parse_lenient(text);
        let words: Vec<Option<(String, String)>> = tokens
            .iter()
            .map(|t| {
                let w = normalize(t.raw);
                let c = content_word(&w).filter(|_| !t.compound)?;
                Some((w, c))
            })
            .collect();
        f.pairs = words
            .windows(2)
            .filter_map(|w| {
                let ((a, ca), (b, cb)) = (w[0].as_ref()?, w[1].as_ref()?);
                Some((stem(&format!("{a}{b}")), [ca.clone(), cb.clone()]))
            })
            .collect();
        f
    }

    /// The content words, with the word pairs of `self` that `other` writes as one word joined.
    fn content_against(&self, other: &Features) -> BTreeSet<String> {
        let mut content = self.content.clone();
        // "Solve for x: 2x + 5 = 17" / "solve 2x+5=17": the variable is in the other's math.
        let variable = |w: &String| {
            let mut chars = w.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return false;
            };
            !other.operators.is_empty()
                && other
                    .flat
                    .as_bytes()
                    .windows(2)
                    .any(|p| p[0].is_ascii_digit() && char::from(p[1]) == c)
        };
        content.retain(|w| other.content.contains(w) || !variable(w));
        for (joined, [a, b]) in &self.pairs {
            if other.content.contains(joined) && !self.content.contains(joined) {
                content.remove(a);
                content.remove(b);
                content.insert(joined.clone());
            }
        }
        content
    }

    /// Reads the token(s) at `i`; returns the index of the next unread token.
    fn extract_at(
        &mut self,
        tokens: &[Token],
        i: usize,
        shouting: bool,
        slots: &mut Vec<Slot>,
    ) -> usize {
        let tok = &tokens[i];
        if let Some(next) = self.number(tokens, i, slots) {
            return next;
        }
        if math::operator_word(tokens, i).is_some() {
            // Compared as an operator; "by" in "divided by" goes with it.
            let by = tokens
                .get(i + 1)
                .is_some_and(|t| t.raw.eq_ignore_ascii_case("by"));
            return i + 1 + usize::from(by);
        }
        if let Some((bound, used)) = bound_at(tokens, i) {
            self.bound = Some(bound);
            return i + used;
        }
        let word = normalize(tok.raw);
        if self.unit_word(tokens, i, &word, slots) {
            return i + 1;
        }
        if is_shaped(tok.raw) || (!shouting && is_stopword_acronym(tok.raw)) {
            self.identifier(tok.raw, slots);
            return i + 1;
        }
        self.words.push(word.clone());
        if is_name(tok) {
            if let Some(run) = push_name(&mut self.entities, tokens, i) {
                let end = i + run.split(' ').count() - 1;
                self.run = Some((end, run));
            }
        }
        if tok.compound {
            // "chemical-free" asks what "without chemicals" asks.
            if word == "free" && i > 0 && tokens[i - 1].compound {
                self.negations += 1;
                return i + 1;
            }
            // "short-term", "long-term", "high-protein": a modifier, whatever its parts are
            // ("above-average" too, though "above" alone is a stopword).
            if (!lexicon::is_stopword(&word) && !lexicon::is_generic(&word))
                || lexicon::direction(&word).is_some()
            {
                let canon = lexicon::synonym(&word).map_or_else(|| stem(&word), str::to_owned);
                self.content.insert(canon.clone());
                slots.push(Slot::Key(canon));
            }
            return i + 1;
        }
        if lexicon::is_negation(&word) {
            self.negations += 1;
            slots.push(Slot::Break);
            return i + 1;
        }
        if let Some(next) = self.degree(tokens, i, &word) {
            return next;
        }
        if let Some(next) = self.relation_word(tokens, i, &word, slots) {
            return next;
        }
        // "the even integers", "an even number" are not "the integers", "a number"; "even if",
        // "is it even possible" use it as a function word. Read as an adjective before a plural
        // or after an article.
        let plural = |t: &Token| {
            let n = normalize(t.raw);
            n.len() > 3
                && n.chars().all(char::is_alphabetic)
                && n.ends_with('s')
                && !n.ends_with("ss")
                && !lexicon::is_stopword(&n)
        };
        let after_article =
            || i > 0 && matches!(normalize(tokens[i - 1].raw).as_str(), "a" | "an" | "the");
        if word == "even" && (after_article() || tokens.get(i + 1).is_some_and(plural)) {
            self.content.insert(word.clone());
            slots.push(Slot::Key(word));
            return i + 1;
        }
        self.word(tokens, i, &word, slots)
    }

    /// "in EUR", "to miles", "a pound": a unit named without a number (not "am" in "am I",
    /// "min" for minimum, "second" the ordinal).
    fn unit_word(&mut self, tokens: &[Token], i: usize, word: &str, slots: &mut Vec<Slot>) -> bool {
        let tok = &tokens[i];
        let Some(u) = lexicon::unit(word).filter(|_| {
            (word.len() >= 2 || tok.raw == "C" || tok.raw == "F")
                && !lexicon::is_stopword(word)
                && lexicon::grade(word).is_none()
                && word != "second"
        }) else {
            return false;
        };
        let quantity = slots.last() == Some(&Slot::Article);
        if quantity {
            slots.pop();
            self.numbers.push(Number {
                value: "1".into(),
                unit: Some(u.into()),
                noun: None,
            });
        }
        slots.push(Slot::Unit {
            unit: u.into(),
            quantity,
        });
        let asked = |w: &str| matches!(w, "many" | "much" | "what" | "which");
        if i > 0 && asked(&normalize(tokens[i - 1].raw)) {
            self.asked_units.insert(u.into());
        }
        self.units.insert(u.into());
        self.words.push(word.to_owned());
        true
    }

    /// An identifier, acronym or path: an entity, and for "JavaScript" or "AWS" also the word
    /// someone types in lower case.
    fn identifier(&mut self, raw: &str, slots: &mut Vec<Slot>) {
        let e = entity_of(raw);
        self.entities.push(e.clone());
        self.words.push(e.clone());
        if e.chars().all(char::is_alphabetic) && !lexicon::is_stopword(&e) {
            self.content.insert(stem(&e));
        }
        slots.push(Slot::Key(e));
    }

    /// Relation markers, direction words and the function words the roles read ("in", "a",
    /// "how many"); returns the next index when `word` is one.
    fn relation_word(
        &mut self,
        tokens: &[Token],
        i: usize,
        word: &str,
        slots: &mut Vec<Slot>,
    ) -> Option<usize> {
        let after_thing = matches!(slots.last(), Some(Slot::Key(_) | Slot::Unit { .. }));
        let thing = |t: &Token| {
            let w = normalize(t.raw);
            DETERMINERS.contains(&w.as_str())
                || matches!(w.as_str(), "a" | "an")
                || is_name(t)
                || is_shaped(t.raw)
                || lexicon::unit(&w).is_some()
                || numeric(t.raw).is_some()
        };
        let marker = lexicon::is_relation_marker(word)
            && !(word == "to" && relations::is_infinitive(tokens, i, after_thing, thing));
        if marker {
            slots.push(Slot::Marker(marker_name(word)));
        }
        if is_text_pointer(tokens, i, word) {
            return Some(i + 1);
        }
        if let Some((axis, side)) = direction_of(word) {
            if !marker {
                slots.push(Slot::Break);
            }
            // A direction word in an idiom ("sum up", "pull out the figures") or in "more or
            // less" (about) names no direction.
            let next_is = |k: usize, w: &str| tokens.get(k).is_some_and(|t| normalize(t.raw) == w);
            if word == "more" && next_is(i + 1, "or") && next_is(i + 2, "less") {
                return Some(i + 3);
            }
            if is_idiom_part(tokens, i, word) {
                return Some(i + 1);
            }
            let e = self.directions.entry(axis).or_default();
            if side > 0 {
                e.0 = true;
            } else {
                e.1 = true;
            }
            return Some(i + 1);
        }
        let many = |k: usize| {
            tokens
                .get(k)
                .is_some_and(|n| matches!(n.raw.to_lowercase().as_str(), "many" | "much"))
        };
        match word {
            _ if marker => Some(i + 1),
            "in" => {
                slots.push(Slot::In);
                Some(i + 1)
            }
            "a" | "an" => {
                slots.push(Slot::Article);
                Some(i + 1)
            }
            "how" if many(i + 1) => {
                slots.push(Slot::HowMany);
                Some(i + 2)
            }
            _ => None,
        }
    }

    /// Any other word: a content word, a task, framing, or a function word that ends a phrase.
    fn word(&mut self, tokens: &[Token], i: usize, word: &str, slots: &mut Vec<Slot>) -> usize {
        // "sum it up" asks what "summarize it" asks.
        if word == "sum" {
            let up = tokens[i + 1..]
                .iter()
                .take(2)
                .position(|t| t.raw.eq_ignore_ascii_case("up"));
            if let Some(k) = up {
                self.tasks.insert("summarize".into());
                self.content.insert("summarize".into());
                slots.push(Slot::Key("summarize".into()));
                return i + k + 2;
            }
        }
        if is_document_reference(tokens, i, word) {
            return i + 1;
        }
        if RETRIEVAL_VERBS.contains(&word) {
            self.retrieval = true;
        }
        // "JSON format", "fraction form", "calorie count", "bullet points": the word before
        // says it; "the number of seconds" asks what "how many seconds" asks.
        let after_thing = matches!(slots.last(), Some(Slot::Key(_) | Slot::Unit { .. }));
        // ("the number of", not "the atomic number of")
        let before_of = tokens.get(i + 1).is_some_and(|t| t.raw == "of") && !after_thing;
        let after_bullet = i > 0 && normalize(tokens[i - 1].raw).starts_with("bullet");
        if (matches!(word, "format" | "form" | "formatted" | "count") && after_thing)
            || (matches!(word, "number" | "numbers") && before_of)
            || (matches!(word, "point" | "points") && after_bullet)
        {
            return i + 1;
        }
        // Nouns that point at a quoted span say nothing the span does not: "the expression
        // 'bite the bullet'", "this shell command: `ls -la`".
        if self.quotes > 0 && SPAN_NOUNS.contains(&word) {
            return i + 1;
        }
        // "How do you say 'thank you' in Spanish?" asks for a translation.
        let says_in =
            word == "say" && self.quotes > 0 && tokens[i + 1..].iter().any(|t| t.raw == "in");
        if says_in {
            self.tasks.insert("translate".into());
            self.content.insert("translate".into());
            slots.push(Slot::Key("translate".into()));
            return i + 1;
        }
        if let Some(canon) = content_word(word) {
            if lexicon::is_task(&canon) || lexicon::is_task(word) {
                self.tasks.insert(canon.clone());
            }
            if !lexicon::is_soft_task(&canon) {
                self.content.insert(canon.clone());
                slots.push(Slot::Key(canon));
            }
        } else if lexicon::is_generic(word) {
            slots.push(Slot::Frame);
        } else if DETERMINERS.contains(&word) {
            slots.push(Slot::Det);
        } else if !PHRASE_WORDS.contains(&word) {
            slots.push(Slot::Break);
        }
        i + 1
    }

    /// A number at `i` with its unit or counted noun; returns the next index.
    fn number(&mut self, tokens: &[Token], i: usize, slots: &mut Vec<Slot>) -> Option<usize> {
        let (q, used) = ordinal(tokens, i).or_else(|| number_at(tokens, i))?;
        let mut next = i + used;
        let (value, mut unit) = match q.split_once(' ') {
            Some((v, u)) => (v.to_owned(), Some(u.to_owned())),
            None => (q, None),
        };
        let value = format!("{}{value}", self.bound.take().unwrap_or(""));
        let mut noun = None;
        // "6 ft 2 in": inches after feet.
        let after_feet = self
            .numbers
            .last()
            .is_some_and(|n| n.unit.as_deref() == Some("ft"));
        if unit.is_none() && after_feet && tokens.get(next).is_some_and(|t| t.raw == "in") {
            unit = Some("in".into());
            next += 1;
        }
        let operator_next = next < tokens.len() && math::operator_word(tokens, next).is_some();
        if unit.is_none() && !operator_next {
            if let Some((after, k)) = unit_after(tokens, next) {
                match after {
                    After::Unit(u) => unit = Some(u),
                    After::Noun(n) => noun = Some(n),
                }
                next += k;
            }
        }
        if slots.last() == Some(&Slot::Article) {
            slots.pop();
        }
        if let Some(u) = &unit {
            self.units.insert(u.clone());
            slots.push(Slot::Unit {
                unit: u.clone(),
                quantity: true,
            });
        }
        if let Some(n) = &noun {
            self.content.insert(n.clone());
            slots.push(Slot::Key(n.clone()));
        }
        self.numbers.push(Number { value, unit, noun });
        Some(next)
    }

    /// A gradable adjective at `i` ("most expensive" and "less expensive" read as one);
    /// returns the next index.
    fn degree(&mut self, tokens: &[Token], i: usize, word: &str) -> Option<usize> {
        let next = tokens.get(i + 1).map(|t| normalize(t.raw));
        let next_grade = next.as_deref().and_then(lexicon::grade);
        let (grade, used, flip, strict) = match (word, next_grade) {
            ("most" | "more", Some(g)) if g.scales != lexicon::ANY_SCALE => (g, 2, false, true),
            ("least" | "less", Some(g)) if g.scales != lexicon::ANY_SCALE => (g, 2, true, true),
            _ => match lexicon::grade(word) {
                Some(g) => (g, 1, false, g.strict),
                None if word.len() >= 6 && word.ends_with("iest") && !lexicon::is_generic(word) => {
                    // "healthiest", "busiest": a superlative of its own scale.
                    self.degrees.push(Degree {
                        scales: vec![word.to_owned()],
                        side: 1,
                        strict: true,
                    });
                    return Some(i + 1);
                }
                None => return None,
            },
        };
        // "175 cm tall", "3 m long": a measurement, not a constraint.
        let lower = |k: usize| normalize(tokens[k].raw);
        let measured =
            i >= 2 && lexicon::unit(&lower(i - 1)).is_some() && number_at(tokens, i - 2).is_some();
        if measured {
            return Some(i + used);
        }
        // "How tall is ...?" asks for a height: no end of the scale is preferred.
        let asked = i >= 1 && lower(i - 1) == "how";
        self.degrees.push(Degree {
            scales: grade.scales.iter().map(|s| (*s).to_owned()).collect(),
            side: if flip { -grade.side } else { grade.side },
            strict: strict && !asked,
        });
        Some(i + used)
    }

    pub fn frame(&self) -> Option<&super::frame::Frame> {
        self.frame.as_ref()
    }

    pub fn frame_hint(&self) -> &super::frame::Frame {
        &self.frame_hint
    }

    /// Ok when `self` and `other` may share an answer, else the first guard that disagrees.
    pub fn agree(&self, other: &Features) -> Result<(), GuardMismatch> {
        if !numbers_agree(self, other) || !units_agree(self, other) {
            return Err(GuardMismatch::Numbers);
        }
        if self.operators != other.operators {
            return Err(GuardMismatch::Operators);
        }
        if self.negations != other.negations {
            return Err(GuardMismatch::Negation);
        }
        if !directions_agree(&self.directions, &other.directions) {
            return Err(GuardMismatch::Direction);
        }
        if !degrees_agree(&self.degrees, &other.degrees) {
            return Err(GuardMismatch::Degree);
        }
        if !self.entities_in(other) || !other.entities_in(self) || !same_order(self, other) {
            return Err(GuardMismatch::Entities);
        }
        if relations::swapped(&self.roles, &other.roles)
            || relations::participants_swapped(
                &self.participants,
                |w| self.content.contains(w),
                &other.participants,
                |w| other.content.contains(w),
            )
        {
            return Err(GuardMismatch::Relation);
        }
        if let Err(d) = self.structure.agree(&other.structure) {
            return Err(match d {
                Disagreement::Symbols => GuardMismatch::Symbols,
                Disagreement::Focus => GuardMismatch::Focus,
                Disagreement::Asked => GuardMismatch::Asked,
                Disagreement::Quantifier => GuardMismatch::Quantifier,
                Disagreement::Pairs | Disagreement::Swapped => GuardMismatch::Relation,
            });
        }
        if !tasks_agree(self, other) {
            return Err(GuardMismatch::Task);
        }
        if self.content != other.content
            && self.content_against(other) != other.content_against(self)
        {
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
                || contains_at_boundary(&other.flat, e) && !path_inside_longer(&other.flat, e)
        })
    }
}

/// A path or identifier (`/build/*`, `config.yaml`) found only inside a longer one of the other
/// text (`./build/*`, `old_config.yaml`): not the same operand.
fn path_inside_longer(hay: &str, e: &str) -> bool {
    let shaped = e.contains(['/', '.', '_', '*', '~', '\\']);
    shaped
        && hay.match_indices(e).all(|(at, _)| {
            let before = hay[..at].chars().next_back();
            let after = hay[at + e.len()..].chars().next();
            let glued = |c: Option<char>| {
                c.is_some_and(|c| !c.is_whitespace() && !"\"'`()[],;".contains(c))
            };
            glued(before) || glued(after)
        })
}

/// Task words: the same ones, except that the soft ones ([`lexicon::is_soft_task`]) may be
/// implicit on one side; "write" and "create" ask for the same thing, but not for what "find" or
/// "get" asks ("How do I create a file?" / "How do I find a file?").
fn tasks_agree(a: &Features, b: &Features) -> bool {
    let strong = |t: &BTreeSet<String>| -> BTreeSet<String> {
        t.iter()
            .filter(|w| !lexicon::is_soft_task(w))
            .cloned()
            .collect()
    };
    let soft = |t: &BTreeSet<String>| -> BTreeSet<String> {
        t.iter()
            .filter(|w| lexicon::is_soft_task(w) && !matches!(w.as_str(), "write" | "create"))
            .cloned()
            .collect()
    };
    let makes = |f: &Features| f.tasks.contains("write") || f.tasks.contains("create");
    let made_or_found = |x: &Features, y: &Features| makes(x) && !makes(y) && y.retrieval;
    let (sa, sb) = (soft(&a.tasks), soft(&b.tasks));
    strong(&a.tasks) == strong(&b.tasks)
        && (sa.is_empty() || sb.is_empty() || sa == sb)
        && !made_or_found(a, b)
        && !made_or_found(b, a)
}

/// The same units, except that a unit of time asked for without a number ("How many *days* can
/// I keep soup?", "What *year* did ...?") may stand for "how long" / "when" on the other side,
/// when that side names no unit of time itself.
fn units_agree(a: &Features, b: &Features) -> bool {
    let time = |u: &String| {
        matches!(
            u.as_str(),
            "s" | "min" | "h" | "day" | "week" | "month" | "year"
        )
    };
    let only_asked_time = |x: &Features, y: &Features| {
        x.units
            .difference(&y.units)
            .all(|u| time(u) && x.asked_units.contains(u))
            && !y.asked_units.iter().any(time)
    };
    a.units == b.units
        || (b.units.is_subset(&a.units) && only_asked_time(a, b))
        || (a.units.is_subset(&b.units) && only_asked_time(b, a))
}

/// What a quoted or code span may be called.
const SPAN_NOUNS: &[&str] = &[
    "expression",
    "expressions",
    "phrase",
    "phrases",
    "idiom",
    "idioms",
    "saying",
    "sentence",
    "sentences",
    "word",
    "words",
    "paragraph",
    "snippet",
    "code",
    "command",
    "shell",
    "query",
    "function",
    "formula",
    "error",
    "message",
    "line",
    "statement",
    "regex",
    "regexp",
    "pattern",
    "equation",
    "script",
    "verb",
    "noun",
    "term",
    "quote",
    "text",
];

/// Verbs that ask for something that exists, or about it, rather than for something to be made.
const RETRIEVAL_VERBS: &[&str] = &[
    "find", "finding", "locate", "get", "getting", "check", "see", "show", "look", "search",
    "lookup", "retrieve", "fetch", "open", "explain", "describe", "tell", "define", "read",
];

/// Entities found as entities on both sides must come in the same order ("Did Argentina beat
/// France?" is not "Did France beat Argentina?"), unless every one of them has exactly one
/// role on both sides ("from London to Heathrow" / "to Heathrow from London"; the roles are
/// compared).
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
    let placed =
        |e: &String| relations::has_one_role(&a.roles, e) && relations::has_one_role(&b.roles, e);
    common_a == common_b || common_a.iter().all(|e| placed(e))
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

#[cfg(test)]
mod tests;
