//! Character-level normalisation shared by the prompt parser: one linear pass each.

use std::borrow::Cow;

/// Typographic quotes and dashes folded to ASCII, invisible characters dropped, non-breaking
/// spaces made plain, CR and CRLF line ends made LF. Plain ASCII without CR is returned as is.
pub fn fold_chars(text: &str) -> Cow<'_, str> {
    if text.bytes().all(|b| b.is_ascii() && b != b'\r') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let c = match c {
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}' => continue,
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    continue;
                }
                '\n'
            }
            '\u{2018}' | '\u{2019}' | '\u{201b}' | '\u{2032}' => '\'',
            '\u{201c}' | '\u{201d}' | '\u{201f}' | '\u{2033}' | '\u{00ab}' | '\u{00bb}' => '"',
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            '\u{00a0}' | '\u{2007}' | '\u{202f}' => ' ',
            c => c,
        };
        out.push(c);
    }
    Cow::Owned(out)
}

/// Rejoins words that hard-wrapping broke after a hyphen ("co-\nfounder" -> "co-founder"): a
/// hyphen between a letter or digit and a line break, then a letter or digit.
pub fn join_hyphen_breaks(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut from = 0;
    for (at, _) in text.match_indices("-\n") {
        let before = text[..at].chars().next_back();
        let after_break = text[at + 2..].trim_start_matches([' ', '\t']);
        let after = after_break.chars().next();
        if before.is_some_and(char::is_alphanumeric) && after.is_some_and(char::is_alphanumeric) {
            if out.is_empty() {
                out.reserve(text.len());
            }
            out.push_str(&text[from..=at]);
            from = text.len() - after_break.len();
        }
    }
    if from == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[from..]);
    Cow::Owned(out)
}

/// Every run of whitespace made one space, ends trimmed.
pub fn collapse_ws(s: &str) -> String {
    if s.is_ascii() {
        return collapse_ascii_ws(s);
    }
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// [`collapse_ws`] of ASCII text, byte by byte (the whitespace of `char::is_whitespace` in
/// ASCII: space, tab, line feed, vertical tab, form feed, carriage return).
fn collapse_ascii_ws(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut gap = false;
    for &b in s.as_bytes() {
        if matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            gap = !out.is_empty();
        } else {
            if gap {
                out.push(b' ');
                gap = false;
            }
            out.push(b);
        }
    }
    String::from_utf8(out).expect("ASCII in, ASCII out")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_quotes_dashes_line_ends_and_invisible_characters() {
        assert_eq!(
            fold_chars("\u{201c}a\u{201d}\u{2014}b\u{200b}\r\nc\rd\u{00a0}e"),
            "\"a\"-b\nc\nd e"
        );
        assert_eq!(
            join_hyphen_breaks("co-\n  founder, not -\nthis"),
            "co-founder, not -\nthis"
        );
        assert_eq!(collapse_ws("  a \n\t b  "), "a b");
        assert_eq!(collapse_ws("a\x0bb\x0c\r\nc  "), "a b c");
        assert_eq!(collapse_ws(" \u{a0}a \u{2003}b "), "a b");
        assert_eq!(collapse_ws(" \t "), "");
    }
}
