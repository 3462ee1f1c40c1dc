//! Operators of inline math and code: `2x + 5 = 17` is not `2x - 5 = 17`, `x > 0` not `x < 0`.
//!
//! The tokenizer keeps words and numbers only, so the operators between them are read from the
//! text: a run of operator symbols (`+ - * / = < > ^ ≤ ≥ ≠ × ÷ · & |`) with an operand on each
//! side (a digit, a one-letter variable, a bracket), or an operator word between numbers
//! ("17 multiplied by 23", "divide 3/4 by 2/3"). A hyphen inside a word ("short-term",
//! "COVID-19") or a dash between words ("10°C - what should I wear") is not an operator, nor is
//! a minus sign in front of a number ("-5 °C": the number guard reads it). Both texts must have
//! the same operators in the same order.

use super::super::tokens::{number_at, Token};

const SYMBOLS: &str = "+-*/=<>^≤≥≠×÷·&|!";

/// The operators of `text`, canonical (`×` and `·` are `*`, `÷` is `/`), in order.
pub(super) fn operators(text: &str, tokens: &[Token]) -> Vec<String> {
    let mut found: Vec<(usize, String)> = symbol_operators(text);
    found.extend(word_operators(text, tokens));
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, op)| op).collect()
}

fn symbol_operators(text: &str) -> Vec<(usize, String)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !SYMBOLS.contains(chars[i].1) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && SYMBOLS.contains(chars[i].1) {
            i += 1;
        }
        let run: String = chars[start..i]
            .iter()
            .map(|(_, c)| match c {
                '×' | '·' => '*',
                '÷' => '/',
                c => *c,
            })
            .collect();
        if run == "!" || !left_operand(&chars, start) || !right_operand(&chars, i) {
            continue;
        }
        out.push((chars[start].0, run));
    }
    out
}

/// A one-letter word at `chars[k]` ("x" in "2x + 1" counts: the letter follows a digit).
fn single_letter(chars: &[(usize, char)], k: usize) -> bool {
    let letter = |j: usize| chars.get(j).is_some_and(|(_, c)| c.is_alphabetic());
    chars[k].1.is_alphabetic() && (k == 0 || !letter(k - 1)) && !letter(k + 1)
}

fn left_operand(chars: &[(usize, char)], start: usize) -> bool {
    let Some(k) = (0..start).rev().find(|&k| chars[k].1 != ' ') else {
        return false;
    };
    let c = chars[k].1;
    c.is_ascii_digit() || matches!(c, ')' | ']' | '²' | '³') || single_letter(chars, k)
}

fn right_operand(chars: &[(usize, char)], end: usize) -> bool {
    let Some(k) = (end..chars.len()).find(|&k| chars[k].1 != ' ') else {
        return false;
    };
    let c = chars[k].1;
    c.is_ascii_digit() || matches!(c, '(' | '[' | '√') || single_letter(chars, k)
}

/// "17 multiplied by 23", "3 plus 4", "divide 3/4 by 2/3".
fn word_operators(text: &str, tokens: &[Token]) -> Vec<(usize, String)> {
    (0..tokens.len())
        .filter_map(|k| {
            let op = operator_word(tokens, k)?;
            let at = tokens[k].raw.as_ptr() as usize - text.as_ptr() as usize;
            Some((at, op.to_owned()))
        })
        .collect()
}

/// The operator the word at `k` names between operands ("17 times 23"), if it does.
pub(super) fn operator_word(tokens: &[Token], k: usize) -> Option<&'static str> {
    let operand = |k: usize| {
        tokens.get(k).is_some_and(|t| {
            number_at(tokens, k).is_some()
                || (t.raw.chars().count() == 1
                    && t.raw.chars().all(char::is_alphabetic)
                    && !matches!(t.raw, "a" | "A" | "I" | "i"))
        })
    };
    let w = tokens[k].raw.to_lowercase();
    let infix = match w.as_str() {
        "plus" => Some("+"),
        "minus" => Some("-"),
        "times" | "multiplied" => Some("*"),
        "divided" => Some("/"),
        _ => None,
    };
    let prefix = match w.as_str() {
        "multiply" | "multiplying" => Some("*"),
        "divide" | "dividing" => Some("/"),
        _ => None,
    };
    let next = if tokens
        .get(k + 1)
        .is_some_and(|n| n.raw.eq_ignore_ascii_case("by"))
    {
        k + 2
    } else {
        k + 1
    };
    match (infix, prefix) {
        (Some(op), _) if k > 0 && operand(k - 1) && operand(next) => Some(op),
        (_, Some(op)) if operand(k + 1) => Some(op),
        _ => None,
    }
}
