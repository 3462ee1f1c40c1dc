//! Quantities: numbers with their units, bounds and counted nouns, and gradable adjectives.

use std::collections::BTreeMap;

use super::super::lexicon;
use super::super::tokens::{number_at, Token};
use super::{normalize, Features};

/// A number with its unit of measure or the noun it counts.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Number {
    pub value: String,
    pub unit: Option<String>,
    pub noun: Option<String>,
}

impl std::fmt::Debug for Number {
    /// "5 kg", "3 eggs" as "3 (egg)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.value)?;
        if let Some(u) = &self.unit {
            write!(f, " {u}")?;
        }
        if let Some(n) = &self.noun {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

/// A gradable adjective as used in a text (see [`lexicon::grade`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Degree {
    pub scales: Vec<String>,
    pub side: i8,
    pub strict: bool,
}

impl Degree {
    pub fn overlaps(&self, other: &Degree) -> bool {
        let any = |d: &Degree| d.scales.iter().any(|s| s == "*");
        any(self) || any(other) || self.scales.iter().any(|s| other.scales.contains(s))
    }
}

/// "more than 3", "under 50", "at least 2": the bound a number carries (lower or upper, not
/// whether it is inclusive: "max 280" and "under 280" ask the same), and the words it takes.
pub(super) fn bound_at(tokens: &[Token], i: usize) -> Option<(&'static str, usize)> {
    let w = |k: usize| tokens.get(k).map(|t| t.raw.to_lowercase());
    let number_follows = |k: usize| k < tokens.len() && number_at(tokens, k).is_some();
    let (bound, used) = match (w(i).as_deref(), w(i + 1).as_deref()) {
        (Some("more" | "greater" | "longer" | "larger" | "bigger"), Some("than")) => (">", 2),
        (Some("less" | "fewer" | "shorter" | "smaller"), Some("than")) => ("<", 2),
        (Some("at"), Some("least")) => (">", 2),
        (Some("at"), Some("most")) | (Some("up"), Some("to")) => ("<", 2),
        // Not "over 30 years": a duration.
        (Some("over"), _) if duration_follows(tokens, i + 1) => return None,
        (Some("over" | "above" | "exceeding" | "min" | "minimum"), _) => (">", 1),
        (Some("under" | "below" | "max" | "maximum"), _) => ("<", 1),
        _ => return None,
    };
    number_follows(i + used).then_some((bound, used))
}

/// A number of days, months, years ... at `k`.
fn duration_follows(tokens: &[Token], k: usize) -> bool {
    let Some((value, used)) = (k < tokens.len()).then(|| number_at(tokens, k)).flatten() else {
        return false;
    };
    let unit = match value.split_once(' ') {
        Some((_, u)) => Some(u.to_owned()),
        None => tokens
            .get(k + used)
            .and_then(|t| lexicon::unit(&t.raw.to_lowercase()).map(str::to_owned)),
    };
    unit.is_some_and(|u| {
        matches!(
            u.as_str(),
            "s" | "min" | "h" | "day" | "week" | "month" | "year"
        )
    })
}

/// "third row", "the second highest": an ordinal written as a word ("second" only after "the"
/// or before a superlative: it is also a unit of time).
pub(super) fn ordinal(tokens: &[Token], i: usize) -> Option<(String, usize)> {
    let lower = tokens[i].raw.to_lowercase();
    let after_the = i > 0 && tokens[i - 1].raw.eq_ignore_ascii_case("the");
    let before_grade = tokens
        .get(i + 1)
        .is_some_and(|t| lexicon::grade(&normalize(t.raw)).is_some_and(|g| g.strict));
    if lower == "second" && !(after_the || before_grade) {
        return None;
    }
    let n = match lower.as_str() {
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "fifth" => 5,
        "sixth" => 6,
        "seventh" => 7,
        "eighth" => 8,
        "ninth" => 9,
        "tenth" => 10,
        _ => return None,
    };
    Some((format!("#{n}"), 1))
}

/// Values per unit, in order.
fn by_unit(ns: &[Number]) -> BTreeMap<Option<&str>, Vec<&str>> {
    let mut m: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
    for n in ns {
        m.entry(n.unit.as_deref()).or_default().push(&n.value);
    }
    m
}

/// The numbers of `a` and `b` agree (see the module doc). "a gallon" is "1 gal"; it agrees with
/// a bare "gallon" on the other side ("gallon to liters").
pub(super) fn numbers_agree(fa: &Features, fb: &Features) -> bool {
    let implicit_one = |n: &Number, other: &Features| {
        n.value == "1"
            && n.unit.as_ref().is_some_and(|u| {
                other.units.contains(u) && !other.numbers.iter().any(|m| m.unit.as_ref() == Some(u))
            })
    };
    // "one cup" = "a cup": a count of one may be left implicit, unless the other side counts
    // the same noun otherwise (checked below).
    let counted = |n: &Number| !(n.value == "1" && n.unit.is_none());
    let a: Vec<Number> = fa
        .numbers
        .iter()
        .filter(|n| counted(n) && !implicit_one(n, fb))
        .cloned()
        .collect();
    let b: Vec<Number> = fb
        .numbers
        .iter()
        .filter(|n| counted(n) && !implicit_one(n, fa))
        .cloned()
        .collect();
    if by_unit(&a) != by_unit(&b) {
        return false;
    }
    let (a, b) = (fa.numbers.as_slice(), fb.numbers.as_slice());
    // A noun both sides count has the same counts: "3 eggs and 2 cups" != "2 eggs and 3 cups".
    let counts = |ns: &[Number], noun: &str| {
        let mut v: Vec<String> = ns
            .iter()
            .filter(|n| n.noun.as_deref() == Some(noun))
            .map(|n| n.value.clone())
            .collect();
        v.sort();
        v
    };
    a.iter().filter_map(|n| n.noun.as_deref()).all(|noun| {
        let (x, y) = (counts(a, noun), counts(b, noun));
        y.is_empty() || x == y
    })
}

/// Gradable adjectives: no two on a shared scale at opposite ends; a constraint on one side
/// only is fine on a soft scale ("a quick way" / "a way"), but not a superlative or comparative,
/// and not two different constraints ("cheapest" / "fastest").
pub(super) fn degrees_agree(a: &[Degree], b: &[Degree]) -> bool {
    // "a good way", "the best way": how requests are phrased, unless opposed ("bad").
    let framing = |d: &Degree| !d.strict && d.side > 0 && d.scales == ["quality"];
    let unmatched = |xs: &[Degree], ys: &[Degree]| -> Option<Vec<bool>> {
        let mut strict = Vec::new();
        for x in xs {
            let overlapping: Vec<&Degree> = ys.iter().filter(|y| x.overlaps(y)).collect();
            if overlapping.iter().any(|y| y.side == x.side) {
                continue;
            }
            if !overlapping.is_empty() {
                return None;
            }
            if !framing(x) {
                strict.push(x.strict);
            }
        }
        Some(strict)
    };
    match (unmatched(a, b), unmatched(b, a)) {
        (Some(x), Some(y)) => {
            (x.is_empty() || y.is_empty()) && !x.iter().chain(&y).any(|strict| *strict)
        }
        _ => false,
    }
}
