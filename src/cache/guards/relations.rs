//! Ordered relations: which words are the source and which the target of a request.
//!
//! "Copy a file from my computer to a server" and "... from a server to my computer" have the
//! same words; only their roles differ. Every content word, name and unit gets the roles the
//! relation markers around it give it:
//!
//! * the phrase after `from` is a **source**; the phrase after `to` / `into` / `onto` /
//!   `towards` / `than` / `over` / `instead of` is a **target**, and the phrase right before
//!   those markers is a source ("usd to eur", "tea over coffee"); "X per Y" measures X in one Y,
//!   so X is the target and Y the source ("ounces per pound" = "ounces in a pound");
//! * units: a unit with a quantity ("5 kg", "a pound", "one gallon") is a source, a unit asked
//!   for ("how many ounces", "... in liters", "to km") a target, so "how many ounces are in a
//!   pound" is not "how many pounds are in an ounce".
//!
//! Two texts disagree when a word is only a source in one and only a target in the other. A
//! word without a role on one side (a paraphrase that says "between X and Y") is no objection.
//!
//! The **participants** of a question swap too: "do I need to give my landlord notice" /
//! "does my landlord need to give (me) notice". The subject is read from the inverted question
//! ("do I", "can my employer") or a sentence-initial "I"/"we"; when each side's subject is a
//! participant the other side names elsewhere, the roles are swapped.

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
    /// A relation marker ("to", "from", "than", ...).
    Marker(&'static str),
    /// "in", which relates units ("5 km in miles", "ounces in a pound").
    In,
    /// "how many" / "how much": the unit that follows is asked for.
    HowMany,
    /// "a" / "an": the unit that follows is a quantity.
    Article,
    /// Anything that ends a noun phrase: punctuation, verbs of the framing, conjunctions.
    Break,
}

const SOURCE: u8 = 1;
const TARGET: u8 = 2;

/// Roles per key: a bit set of SOURCE / TARGET.
pub(super) fn roles(slots: &[Slot]) -> BTreeMap<String, u8> {
    let mut roles: BTreeMap<String, u8> = BTreeMap::new();
    let mut give = |slot: &Slot, role: u8| {
        if let Some(k) = key(slot) {
            *roles.entry(k).or_default() |= role;
        }
    };
    for (m, slot) in slots.iter().enumerate() {
        match slot {
            Slot::Marker(name) => {
                let right = phrase(&slots[m + 1..]);
                let left_start = slots[..m]
                    .iter()
                    .rposition(|s| !in_phrase(s))
                    .map_or(0, |p| p + 1);
                let left = &slots[left_start..m];
                // "X per Y" measures X in one Y: "ounces per pound" asks what "how many
                // ounces are in a pound" asks.
                let (before, after) = match *name {
                    "from" => (None, Some(SOURCE)),
                    "per" => (Some(TARGET), Some(SOURCE)),
                    _ => (Some(SOURCE), Some(TARGET)),
                };
                if let Some(role) = before {
                    left.iter().for_each(|s| give(s, role));
                }
                if let Some(role) = after {
                    right.iter().for_each(|s| give(s, role));
                }
            }
            Slot::In => {
                let right = phrase(&slots[m + 1..]);
                for (k, s) in right.iter().enumerate() {
                    if let Slot::Unit { quantity, .. } = s {
                        let measured = *quantity || (k > 0 && right[k - 1] == Slot::Article);
                        give(s, if measured { SOURCE } else { TARGET });
                    }
                }
            }
            Slot::HowMany => {
                if let Some(unit @ Slot::Unit { .. }) = slots.get(m + 1) {
                    give(unit, TARGET);
                }
            }
            Slot::Unit { quantity: true, .. } => give(slot, SOURCE),
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
    matches!(slot, Slot::Key(_) | Slot::Unit { .. } | Slot::Article)
}

/// The noun phrase at the start of `slots`.
fn phrase(slots: &[Slot]) -> &[Slot] {
    let end = slots
        .iter()
        .position(|s| !in_phrase(s))
        .unwrap_or(slots.len());
    &slots[..end]
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

/// Reads the subject of the first inverted question ("do I", "can my employer", "does the
/// landlord"), else a sentence-initial "I" / "we".
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
    let subject = lower
        .iter()
        .position(|w| lexicon::is_aux(w))
        .and_then(|k| {
            let next = lower.get(k + 1)?;
            if let Some(p) = person(next) {
                return p;
            }
            let from = k + 1 + usize::from(DETERMINERS.contains(&next.as_str()));
            tokens[from..tokens.len().min(from + 3)]
                .iter()
                .find_map(&canon)
        })
        .or_else(|| match lower.first().map(String::as_str) {
            Some("i" | "we" | "i'm" | "i've" | "i'd") => Some("1p".to_owned()),
            _ => None,
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
