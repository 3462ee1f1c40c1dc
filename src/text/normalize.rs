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
    if !text.contains("-\n") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("-\n") {
        let before = rest[..at].chars().next_back();
        let after_break = rest[at + 2..].trim_start_matches([' ', '\t']);
        let after = after_break.chars().next();
        out.push_str(&rest[..=at]);
        if before.is_some_and(char::is_alphanumeric) && after.is_some_and(char::is_alphanumeric) {
            rest = after_break;
        } else {
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Every run of whitespace made one space, ends trimmed.
pub fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
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
    }
}
