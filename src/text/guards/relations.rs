//! Ordered relations: which words are the source and which the target of a request.
//!
//! "Copy a file from my computer to a server" and "... from a server to my computer" have the
//! same words; only their roles differ. Every content word, name and unit gets the roles the
//! relation markers around it give it:
//!
//! * the noun phrase after `from` is a **source**; the one after `to` / `into` / `onto` /
//!   `towards` / `than` / `over` / `instead of` is a **target**, and the one right before those
//!   markers is a source ("usd to eur", "tea over coffee"); "X per Y" measures X in one Y, so X
//!   is the target and Y the source ("ounces per pound" = "ounces in a pound"). Only the head
//!   of a phrase (its last word: "a remote *server*") gets the role, and a `to` after a framing
//!   word or at the start of a clause ("the command to delete ...", "how to ...") is an
//!   infinitive, not a relation; a phrase ends at a second determiner ("to load *a* file" is a
//!   verb and its object);
//! * units: a unit with a quantity ("5 kg", "a pound", "one gallon") is a source, a unit asked
//!   for ("how many ounces", "... in liters", "to km") a target, so "how many ounces are in a
//!   pound" is not "how many pounds are in an ounce".
//!
//! Two texts disagree when a word is only a source in one and only a target in the other. A
//! word without a role on one side (a paraphrase that says "between X and Y") is no objection.
//!
//! The **participants** of a question swap too: "do I need to give my landlord notice" /
//! "does my landlord need to give (me) notice". The subject is read from an inverted question
//! in the first sentence ("do I", "can my employer"); when each side's subject is a participant
//! the other side names elsewhere, the roles are swapped.

use std::collections::BTreeMap;

use super::super::lexicon;
use super::super::tokens::Token;

/// One step of a text as the role assignment reads it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Slot {
    /// A content word, name or identifier (canonical form).
    Key(String),
    /// A unit; `quantity` when a number or an article measures it ("5 kg", "a pound").
    Unit { unit: String, quantity: bool },
    /// A relation marker ("to", "from", "than", ...); not an infinitive `to`.
    Marker(&'static str),
    /// "in", which relates units ("5 km in miles", "ounces in a pound").
    In,
    /// "how many" / "how much": the unit that follows is asked for.
    HowMany,
    /// "a" / "an": the unit that follows is a quantity.
    Article,
    /// Another determiner ("the", "my", "this"): starts a noun phrase.
    Det,
    /// A framing word ("way", "command", "steps"): inside a phrase, but a `to` after it is an
    /// infinitive.
    Frame,
    /// Anything that ends a noun phrase: punctuation, verbs of the framing, conjunctions.
    Break,
}

const SOURCE: u8 = 1;
const TARGET: u8 = 2;

/// A `to` that starts an infinitive ("the command to delete ...", "how to ...", "need to go"):
/// nothing that names a thing before it, and a plain word after it.
pub(super) fn is_infinitive(
    tokens: &[Token],
    i: usize,
    after_thing: bool,
    thing: impl Fn(&Token) -> bool,
) -> bool {
    !after_thing && tokens.get(i + 1).is_some_and(|t| !thing(t))
}

/// Roles per key: a bit set of SOURCE / TARGET.
pub(super) fn roles(slots: &[Slot]) -> BTreeMap<String, u8> {
    let mut roles: BTreeMap<String, u8> = BTreeMap::new();
    let mut give = |slot: Option<&Slot>, role: u8| {
        if let Some(k) = slot.and_then(key) {
            *roles.entry(k).or_default() |= role;
        }
    };
    for (m, slot) in slots.iter().enumerate() {
        match slot {
            Slot::Marker(name) => {
                // "X per Y" measures X in one Y: "ounces per pound" asks what "how many
                // ounces are in a pound" asks.
                let (before, after) = match *name {
                    "from" => (None, SOURCE),
                    "per" => (Some(TARGET), SOURCE),
                    _ => (Some(SOURCE), TARGET),
                };
                if let Some(role) = before {
                    give(head(left_phrase(&slots[..m])), role);
                }
                give(head(right_phrase(&slots[m + 1..])), after);
            }
            Slot::In => {
                let right = right_phrase(&slots[m + 1..]);
                for (k, s) in right.iter().enumerate() {
                    if let Slot::Unit { quantity, .. } = s {
                        // "in a pound", "in a US gallon": one of them, measured.
                        let measured = *quantity || right[..k].contains(&Slot::Article);
                        give(Some(s), if measured { SOURCE } else { TARGET });
                    }
                }
            }
            Slot::HowMany => {
                // "how many ounces", "how many US gallons": the unit counted, past modifiers.
                let counted = right_phrase(&slots[m + 1..])
                    .iter()
                    .find(|s| matches!(s, Slot::Unit { .. }));
                give(counted, TARGET);
            }
            Slot::Unit { quantity: true, .. } => give(Some(slot), SOURCE),
            _ => {}
        }
    }
    roles
}

fn key(slot: &Slot) -> Option<String> {
    match slot {
        Slot::Key(k) => Some(k.clone()),
        Slot::Unit { unit, .. } => Some(format!("unit:{unit}")),
        _ => None,
    }
}

fn in_phrase(slot: &Slot) -> bool {
    matches!(
        slot,
        Slot::Key(_) | Slot::Unit { .. } | Slot::Article | Slot::Det | Slot::Frame
    )
}

fn is_determiner(slot: &Slot) -> bool {
    matches!(slot, Slot::Article | Slot::Det)
}

/// The noun phrase at the start of `slots`: up to a word that is not part of one, or up to a
/// determiner after its first word ("to load a file": "load").
fn right_phrase(slots: &[Slot]) -> &[Slot] {
    let mut end = slots
        .iter()
        .position(|s| !in_phrase(s))
        .unwrap_or(slots.len());
    if let Some(first_word) = slots[..end].iter().position(|s| key(s).is_some()) {
        if let Some(det) = slots[first_word..end].iter().position(is_determiner) {
            end = first_word + det;
        }
    }
    &slots[..end]
}

/// The noun phrase at the end of `slots`, from its determiner if it has one.
fn left_phrase(slots: &[Slot]) -> &[Slot] {
    let start = slots
        .iter()
        .rposition(|s| !in_phrase(s) || is_determiner(s))
        .map_or(0, |p| p + 1);
    &slots[start..]
}

/// The head of a noun phrase: its last word.
fn head(phrase: &[Slot]) -> Option<&Slot> {
    phrase.iter().rev().find(|s| key(s).is_some())
}

/// True when `key` is only a source or only a target.
pub(super) fn has_one_role(roles: &BTreeMap<String, u8>, key: &str) -> bool {
    matches!(roles.get(key), Some(&SOURCE | &TARGET))
}

/// True when some word is only a source on one side and only a target on the other.
pub(super) fn swapped(a: &BTreeMap<String, u8>, b: &BTreeMap<String, u8>) -> bool {
    a.iter().any(|(k, &ra)| {
        b.get(k)
            .is_some_and(|&rb| matches!((ra, rb), (SOURCE, TARGET) | (TARGET, SOURCE)))
    })
}

/// Who acts in a request: "1p" (I / we), "2p" (you) or a content word; and how often the text
/// mentions the first person at all.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Participants {
    pub subject: Option<String>,
    pub first_person: u32,
}

const DETERMINERS: &[&str] = &[
    "my", "your", "our", "his", "her", "their", "the", "a", "an", "this", "that", "these", "those",
];

/// Reads the subject of an inverted question in the first sentence ("do I", "can my employer",
/// "does the landlord"). Later sentences are left alone: in "Outlook keeps asking for my
/// password. How do I fix it?" the asker is not Outlook's object.
pub(super) fn participants(
    tokens: &[Token],
    canon: impl Fn(&Token) -> Option<String>,
) -> Participants {
    let lower: Vec<String> = tokens.iter().map(|t| t.raw.to_lowercase()).collect();
    let first_person = lower
        .iter()
        .zip(tokens)
        .filter(|(w, t)| {
            matches!(
                w.as_str(),
                "i" | "me" | "my" | "mine" | "myself" | "we" | "our" | "ours"
            ) || w.starts_with("i'")
                || (w.as_str() == "us" && t.raw == "us")
        })
        .count() as u32;
    let person = |w: &str| match w {
        "i" | "we" | "i'm" | "i've" | "i'd" => Some(Some("1p".to_owned())),
        "you" => Some(Some("2p".to_owned())),
        "he" | "she" | "they" | "it" | "there" | "this" | "that" | "one" => Some(None),
        _ => None,
    };
    let first_sentence = tokens
        .iter()
        .skip(1)
        .position(|t| t.sentence_start)
        .map_or(tokens.len(), |p| p + 1);
    // The auxiliary opens the question, or follows its wh-phrase ("how much notice do I").
    let wh = |w: &String| {
        matches!(
            w.as_str(),
            "what" | "why" | "how" | "when" | "where" | "who" | "whom" | "which"
        )
    };
    let opens_question = |k: usize| k == 0 || lower[..k].iter().any(wh);
    let subject = (0..first_sentence)
        .find(|&k| lexicon::is_aux(&lower[k]) && opens_question(k))
        .and_then(|k| {
            let next = lower.get(k + 1)?;
            if let Some(p) = person(next) {
                return p;
            }
            let from = k + 1 + usize::from(DETERMINERS.contains(&next.as_str()));
            tokens.get(from).and_then(&canon)
        });
    Participants {
        subject,
        first_person,
    }
}

/// "Do I owe my landlord ..." vs "Does my landlord owe me ...": each side's subject is a
/// participant the other side mentions outside its own subject.
pub(super) fn participants_swapped(
    a: &Participants,
    a_has: impl Fn(&str) -> bool,
    b: &Participants,
    b_has: impl Fn(&str) -> bool,
) -> bool {
    let (Some(sa), Some(sb)) = (&a.subject, &b.subject) else {
        return false;
    };
    let mentions = |p: &Participants, has: &dyn Fn(&str) -> bool, who: &str| {
        if who == "1p" {
            p.first_person > u32::from(p.subject.as_deref() == Some("1p"))
        } else {
            who != "2p" && has(who)
        }
    };
    sa != sb && mentions(a, &a_has, sb) && mentions(b, &b_has, sa)
}
