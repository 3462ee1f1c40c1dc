//! Long prompts: an instruction plus a document.
//!
//! The embedding model reads only the first 256 tokens, so for summarisation-style traffic the
//! similarity of two (truncated) prompts says nothing about whether their documents are the same.
//! The cache therefore never lets the vector decide about a document:
//!
//! 1. **Footers** are dropped from the *end* of the last user turn (never from inside it): mail
//!    client lines ("Sent from my iPhone", "Get Outlook for Android"), unsubscribe / "manage
//!    preferences" / "view in browser" lines, mailing-list, virus-scan and confidentiality
//!    notices, copyright lines, sign-offs ("Thanks!", "Best regards," and a name), separator
//!    rules, and a `--` signature block after a long text. Each rule needs a phrase that does not
//!    occur in ordinary prose at the end of an article ("scanned for viruses", "intended only
//!    for", "unsubscribe"), not just a topic word ("virus", "confidential" in a sentence).
//! 2. A turn still longer than [`LONG_TEXT_CHARS`] is split into an **instruction** and a
//!    **document**, on the text with *all* whitespace collapsed, so that re-wrapping, CRLF line
//!    ends, indentation or pasting everything on one line cannot move the split. The document is
//!    the largest fenced or tagged block (```` ``` ````, `"""`, `<document>...</document>`) when
//!    it holds most of the text; otherwise the instruction is the run of leading sentences (at most
//!    [`MAX_INSTRUCTION_SENTENCES`], [`MAX_INSTRUCTION_CHARS`]) that read as a request (a task
//!    word such as "summarize", a reference such as "this article" / "the following" / "read
//!    this.", request framing such as "could you", or a trailing colon), else the same run at
//!    the end ("... Translate the above into German."), and the rest is the document. A long
//!    text with no recognisable instruction is all document.
//! 3. The document is reduced to a **content fingerprint**: typographic quotes and dashes folded,
//!    invisible characters dropped, all whitespace collapsed, and the result hashed (sha256).
//!    Documents must have the *same* fingerprint to share an answer: a different document, one
//!    changed number or name, or a truncated copy all change it; re-wrapped lines, extra blank
//!    lines or a new email footer do not.
//! 4. The fingerprint joins the namespace to form the semantic search **bucket**, so only entries
//!    about the very same document are candidates, and the **instruction** alone is compared:
//!    embedded, thresholded and checked by the structural guards (task words must agree, so
//!    "summarize" never answers "translate" or "list the key points").
//!
//! Short texts (the common chat case) are not split: the whole turn (footers dropped) is embedded
//! (it fits the model's window) and the guards still read all of it.

use sha2::{Digest, Sha256};

use super::lexicon;

/// Texts longer than this (about 150 tokens) are split into instruction + document.
pub const LONG_TEXT_CHARS: usize = 600;
/// An instruction is at most this long.
const MAX_INSTRUCTION_CHARS: usize = 300;
/// ... and at most this many sentences.
const MAX_INSTRUCTION_SENTENCES: usize = 4;
/// A fenced block counts as the document when it holds at least this share of the text.
const MIN_BLOCK_SHARE: f64 = 0.5;
/// A `--` signature block without a footer phrase is dropped only when it is this short.
const MAX_SIGNATURE_CHARS: usize = 300;

/// The last user turn, split for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptParts {
    /// Compared semantically (embedded + guards). Whitespace-normalised.
    pub instruction: String,
    /// Content fingerprint of the document part, compared exactly.
    pub document: Option<[u8; 32]>,
}

pub fn split(text: &str) -> PromptParts {
    let text = fold_chars(&text.replace("\r\n", "\n").replace('\r', "\n"));
    let text = join_hyphen_breaks(&text);
    let text = strip_footer(text.trim());
    if text.chars().count() <= LONG_TEXT_CHARS {
        return PromptParts {
            instruction: collapse_ws(text),
            document: None,
        };
    }
    let (instruction, document) = split_long(text);
    PromptParts {
        instruction: collapse_ws(&instruction),
        document: Some(document_fingerprint(&document)),
    }
}

fn split_long(text: &str) -> (String, String) {
    if let Some((start, end, inner)) = largest_block(text) {
        if inner.len() as f64 >= MIN_BLOCK_SHARE * text.len() as f64 {
            let instruction = format!("{} {}", &text[..start], &text[end..]);
            return (instruction, inner.to_owned());
        }
    }
    let flat = collapse_ws(text);
    let ends = sentence_ends(&flat);
    // Head: leading sentences that read as a request.
    let head = ends
        .iter()
        .take(MAX_INSTRUCTION_SENTENCES)
        .take_while(|&&e| e <= MAX_INSTRUCTION_CHARS)
        .scan(0, |start, &end| {
            let sentence = &flat[*start..end];
            *start = end;
            is_instruction(sentence).then_some(end)
        })
        .last();
    if let Some(end) = head {
        return (flat[..end].to_owned(), flat[end..].to_owned());
    }
    // Tail: trailing sentences that ask for something about the text above.
    let mut tail = flat.len();
    let starts = std::iter::once(0).chain(ends.iter().copied().filter(|&e| e < flat.len()));
    let starts: Vec<usize> = starts.collect();
    for &start in starts.iter().rev().take(MAX_INSTRUCTION_SENTENCES) {
        let sentence = &flat[start..tail];
        if start == 0
            || flat.len() - start > MAX_INSTRUCTION_CHARS
            || !is_tail_instruction(sentence)
        {
            break;
        }
        tail = start;
    }
    if tail < flat.len() {
        return (flat[tail..].to_owned(), flat[..tail].to_owned());
    }
    (String::new(), flat)
}

/// Byte offsets just past each sentence end of a whitespace-collapsed text: after `.`, `!`, `?`
/// or `:` (and a closing quote or bracket) followed by a space; the text's end is the last one.
fn sentence_ends(flat: &str) -> Vec<usize> {
    let b = flat.as_bytes();
    let mut ends = Vec::new();
    for (i, &c) in b.iter().enumerate() {
        if matches!(c, b'.' | b'!' | b'?' | b':') {
            let mut j = i + 1;
            while j < b.len() && matches!(b[j], b'"' | b'\'' | b')' | b']') && c != b':' {
                j += 1;
            }
            if j < b.len() && b[j] == b' ' {
                ends.push(j + 1);
            }
        }
    }
    ends.push(flat.len());
    ends.dedup();
    ends
}

/// (start, end, inner) of the largest ``` / """ / <tag> block.
fn largest_block(text: &str) -> Option<(usize, usize, &str)> {
    let mut blocks: Vec<(usize, usize, &str)> = Vec::new();
    for fence in ["```", "\"\"\"", "'''"] {
        if let Some(open) = text.find(fence) {
            let body = open + fence.len();
            if let Some(close) = text[body..].rfind(fence) {
                blocks.push((open, body + close + fence.len(), &text[body..body + close]));
            }
        }
    }
    // <document>...</document>, <article>, <text>, <email>, <input>...
    let mut search = 0;
    while let Some(lt) = text[search..].find('<') {
        let open = search + lt;
        let Some(gt) = text[open..].find('>') else {
            break;
        };
        let tag = &text[open + 1..open + gt];
        let plain_tag = tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !tag.is_empty() && tag.len() <= 20 && plain_tag {
            let closing = format!("</{tag}>");
            let body = open + gt + 1;
            if let Some(close) = text[body..].find(&closing) {
                blocks.push((
                    open,
                    body + close + closing.len(),
                    &text[body..body + close],
                ));
            }
        }
        search = open + 1;
    }
    blocks.into_iter().max_by_key(|(_, _, inner)| inner.len())
}

/// Lower-cased words of a sentence (`tl;dr` kept whole).
fn words(sentence: &str) -> Vec<String> {
    sentence
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != ';' && c != '\'')
        .map(|w| w.trim_matches(|c| c == ';' || c == '\'').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// A task word ("summarize", "translate", "list" ...) in `words`.
fn has_task(words: &[String]) -> bool {
    words.iter().any(|w| {
        let canon = lexicon::synonym(w).unwrap_or(w);
        lexicon::is_task(canon) || w == "tl;dr" || w == "tldr"
    })
}

/// A reference to the text the request is about ("the following", "this article", "read this.").
fn has_reference(sentence: &str, words: &[String]) -> bool {
    let lower = sentence.to_lowercase();
    let phrases = ["the following", "the above", "below", "above"];
    let deictic = words.windows(2).any(|w| {
        matches!(w[0].as_str(), "this" | "the" | "that")
            && matches!(
                w[1].as_str(),
                "text"
                    | "article"
                    | "email"
                    | "e"
                    | "document"
                    | "passage"
                    | "message"
                    | "story"
                    | "post"
                    | "piece"
                    | "news"
                    | "report"
                    | "page"
                    | "transcript"
                    | "letter"
            )
    });
    phrases.iter().any(|p| lower.contains(p))
        || deictic
        || words.last().is_some_and(|w| w == "this" || w == "it")
}

/// Words that address the assistant ("could you ...", "... for me").
fn has_request_framing(words: &[String]) -> bool {
    words.iter().any(|w| w == "please" || w == "pls")
        || words.windows(2).any(|w| {
            matches!(
                (w[0].as_str(), w[1].as_str()),
                ("can" | "could" | "would" | "will", "you")
                    | ("for" | "help" | "tell" | "give" | "show", "me")
                    | ("i", "need" | "want" | "would")
                    | ("i'd", "like")
            )
        })
}

/// A sentence that asks for something rather than being part of a document.
fn is_instruction(sentence: &str) -> bool {
    let s = sentence.trim();
    if s.is_empty() {
        return false;
    }
    if s.ends_with(':') {
        return true;
    }
    let w = words(s);
    has_task(&w) || has_reference(s, &w) || has_request_framing(&w)
}

/// A trailing instruction must name a task or point back at the text.
fn is_tail_instruction(sentence: &str) -> bool {
    let w = words(sentence);
    has_task(&w) || has_reference(sentence, &w)
}

/// `text` without the footers at its end (see the module doc). Never returns an empty text.
fn strip_footer(text: &str) -> &str {
    let mut body = text.trim_end();
    loop {
        let Some(cut) = footer_start(body) else {
            return body;
        };
        let rest = body[..cut].trim_end();
        if rest.is_empty() {
            return body;
        }
        body = rest;
    }
}

/// Where the footer at the end of `body` starts (a line start), if it ends in one.
fn footer_start(body: &str) -> Option<usize> {
    let last_start = body.rfind('\n').map_or(0, |p| p + 1);
    let last = &body[last_start..];
    if is_footer_line(last) || is_separator(last) {
        return Some(last_start);
    }
    // "Best regards,\nAnna Berg"
    if is_name_line(last) {
        let before = body[..last_start].trim_end();
        let prev_start = before.rfind('\n').map_or(0, |p| p + 1);
        if is_sign_off(&before[prev_start..]) {
            return Some(prev_start);
        }
    }
    // A "--" signature block after a long text.
    let tail_from = body.len().saturating_sub(MAX_SIGNATURE_CHARS);
    let mut at = body.len();
    while let Some(nl) = body[..at].rfind('\n') {
        if nl < tail_from {
            break;
        }
        let line_start = body[..nl].rfind('\n').map_or(0, |p| p + 1);
        let line = body[line_start..nl].trim();
        let lines_after = body[nl + 1..]
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        if line == "--" && lines_after <= 4 && line_start > LONG_TEXT_CHARS {
            return Some(line_start);
        }
        at = nl;
    }
    None
}

/// A separator rule: `--`, `-----`, `_____`, `=====`, `***`.
fn is_separator(line: &str) -> bool {
    let l = line.trim();
    (l == "--" || l.len() >= 3) && l.chars().all(|c| matches!(c, '-' | '_' | '=' | '*' | '~'))
}

/// A line that mail clients, newsletters, mailing lists and corporate mail add at the end.
fn is_footer_line(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    if l.is_empty() || l.len() > 300 {
        return false;
    }
    if is_sign_off(&l) {
        return true;
    }
    let starts = [
        "sent from my ",
        "sent from outlook",
        "sent from yahoo",
        "sent from mail for",
        "sent with proton",
        "get outlook for",
        "©",
        "view this email in",
        "view in browser",
        "view it in your browser",
        "click here to unsubscribe",
        "to unsubscribe",
        "unsubscribe",
        "manage your preferences",
        "manage preferences",
        "update your preferences",
        "you are receiving this",
        "you're receiving this",
        "you received this",
        "this email was sent to",
        "this e-mail was sent to",
    ];
    let phrases = [
        "all rights reserved",
        "unsubscribe",
        "scanned for viruses",
        "checked for viruses",
        "virus-free",
        "intended only for",
        "intended solely for",
        "intended recipient",
        "named recipient",
        "received this in error",
        "received it in error",
        "received this message in error",
        "received this e-mail in error",
        "received this email in error",
    ];
    let short_phrases = ["mailing list"];
    let confidential = l.strip_prefix("confidential").is_some_and(|rest| {
        rest.is_empty() || rest.starts_with(':') || rest.starts_with(" notice")
    });
    // "Copyright 2024 Example Ltd", "(c) 2024 ...", but not "Copyright law protects ...".
    let copyright = ["copyright", "(c) "].iter().any(|p| {
        l.strip_prefix(p).is_some_and(|rest| {
            let rest = rest.trim_start_matches([' ', '©']);
            rest.len() >= 4 && rest[..4].chars().all(|c| c.is_ascii_digit())
        })
    });
    starts.iter().any(|s| l.starts_with(s))
        || copyright
        || phrases.iter().any(|p| l.contains(p))
        || (l.len() <= 80 && short_phrases.iter().any(|p| l.contains(p)))
        || confidential
}

/// "Thanks!", "Best regards,", "Cheers" ...
fn is_sign_off(line: &str) -> bool {
    let l = line
        .trim()
        .trim_end_matches(['!', ',', '.', ' '])
        .to_lowercase();
    matches!(
        l.as_str(),
        "thanks"
            | "thank you"
            | "thanks a lot"
            | "thanks so much"
            | "thank you so much"
            | "many thanks"
            | "thanks in advance"
            | "thx"
            | "cheers"
            | "regards"
            | "best regards"
            | "kind regards"
            | "warm regards"
            | "warmest regards"
            | "best"
            | "all the best"
            | "best wishes"
            | "sincerely"
            | "yours sincerely"
            | "yours truly"
            | "yours"
    )
}

/// One to three capitalised words: the name under a sign-off.
fn is_name_line(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    (1..=3).contains(&words.len())
        && line.len() <= 40
        && words.iter().all(|w| {
            w.chars().next().is_some_and(char::is_uppercase)
                && w.chars()
                    .all(|c| c.is_alphabetic() || matches!(c, '.' | '-' | '\''))
        })
}

/// Rejoins words that hard-wrapping broke after a hyphen ("co-\nfounder" -> "co-founder"): a
/// hyphen between a letter or digit and a line break, then a letter or digit.
fn join_hyphen_breaks(text: &str) -> String {
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
    out
}

/// Typographic quotes and dashes folded to ASCII, invisible characters dropped, non-breaking
/// spaces made plain.
fn fold_chars(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}'
            )
        })
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{201b}' | '\u{2032}' => '\'',
            '\u{201c}' | '\u{201d}' | '\u{201f}' | '\u{2033}' => '"',
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            '\u{00a0}' | '\u{2007}' | '\u{202f}' => ' ',
            c => c,
        })
        .collect()
}

/// Document text reduced to what matters for its answer (see the module doc).
pub fn normalize_document(doc: &str) -> String {
    collapse_ws(&fold_chars(doc))
}

pub fn document_fingerprint(doc: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sluice-doc-v2\0");
    h.update(normalize_document(doc).as_bytes());
    h.finalize().into()
}

pub fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "The city council met on Tuesday to discuss the new budget. \
        Officials proposed spending 4.2 million dollars on road repairs over the next two years. \
        Several residents spoke in favour of more bike lanes, while others asked for better \
        street lighting in the northern districts. The mayor, Anna Berg, said a final vote \
        would take place in March after a public consultation. Critics argued that the plan \
        ignored the needs of older residents who rely on buses, and asked the council to \
        publish a detailed breakdown of the costs before the vote. The council agreed to \
        release the figures within two weeks.";

    #[test]
    fn same_document_with_new_whitespace_and_footer_has_same_fingerprint() {
        let a = split(&format!("Summarize this:\n\n{BODY}"));
        let rewrapped = BODY.replace(". ", ".\n\n");
        let b = split(&format!(
            "Please summarize the following article:\n{rewrapped}\n\nSent from my iPhone\n"
        ));
        assert!(a.document.is_some());
        assert_eq!(a.document, b.document);
        assert_eq!(a.instruction, "Summarize this:");
        assert_eq!(b.instruction, "Please summarize the following article:");
    }

    #[test]
    fn changed_or_truncated_documents_differ() {
        let base = split(&format!("Summarize this:\n{BODY}")).document;
        let number = split(&format!("Summarize this:\n{}", BODY.replace("4.2", "4.3"))).document;
        let cut = split(&format!("Summarize this:\n{}", &BODY[..BODY.len() - 40])).document;
        assert_ne!(base, number);
        assert_ne!(base, cut);
    }

    #[test]
    fn instruction_at_the_end_or_around_a_fence() {
        let tail = split(&format!("{BODY}\n\nTranslate the above into German."));
        assert_eq!(tail.instruction, "Translate the above into German.");
        let fenced = split(&format!(
            "Summarize the text in triple quotes.\n\"\"\"{BODY}\"\"\""
        ));
        assert_eq!(fenced.instruction, "Summarize the text in triple quotes.");
        assert_eq!(fenced.document, Some(document_fingerprint(BODY)));
        let plain = split(&format!("{BODY}\n{BODY}"));
        assert_eq!(plain.instruction, "");
    }

    /// `BODY` hard-wrapped at `width` columns.
    fn wrapped(width: usize) -> String {
        let mut out = String::new();
        let mut line = 0;
        for w in BODY.split(' ') {
            if line > 0 && line + 1 + w.len() > width {
                out.push('\n');
                line = 0;
            } else if line > 0 {
                out.push(' ');
                line += 1;
            }
            out.push_str(w);
            line += w.len();
        }
        out
    }

    #[test]
    fn whitespace_and_one_line_pastes_split_the_same_way() {
        for instruction in [
            "Summarize the following article:",
            "Please summarize this news article.",
            "I don't have time to read this. Could you sum it up for me?",
            "TL;DR of the article below, please.",
            "What is this article about? Please summarize it.",
        ] {
            let base = split(&format!("{instruction}\n\n{BODY}"));
            assert_eq!(base.instruction, instruction);
            let variants = [
                format!("{instruction} {BODY}"),
                format!("{instruction}\n\n{}", wrapped(72)),
                format!("{instruction}\r\n\r\n{BODY}\r\n"),
                format!("\n{instruction}\n\n\n    {}\n\n", BODY.replace(". ", ".  ")),
            ];
            for v in variants {
                assert_eq!(split(&v), base, "{v:?}");
            }
        }
    }

    #[test]
    fn words_broken_after_a_hyphen_are_rejoined() {
        let hyphenated = BODY.replace("bike lanes", "bike-lanes");
        let base = split(&format!("Summarize this:\n\n{hyphenated}"));
        let broken = hyphenated.replace("bike-lanes", "bike-\n    lanes");
        assert_eq!(split(&format!("Summarize this:\n\n{broken}")), base);
        // A dash at the end of a line is not a broken word.
        let dash = BODY.replace("bike lanes,", "bike lanes -\nwhile");
        let spaced = BODY.replace("bike lanes,", "bike lanes - while");
        assert_eq!(
            split(&format!("Summarize this:\n\n{dash}")),
            split(&format!("Summarize this:\n\n{spaced}"))
        );
    }

    #[test]
    fn footers_are_dropped_only_at_the_end() {
        let base = split(&format!("Summarize this:\n\n{BODY}"));
        let footers = [
            "Sent from my iPhone",
            "Get Outlook for Android",
            "Thanks!\n\n--\nConfidential",
            "Best regards,\nAnna Berg",
            "--\nConfidential: this e-mail and any attachments are intended only for the named \
             recipient. If you received it in error, please notify the sender and delete it.",
            "--\nYou are receiving this because you subscribed to the Morning Briefing.\n\
             Unsubscribe | Manage preferences | View in browser",
            "_______________________________________________\nnews-digest mailing list\n\
             To unsubscribe, send an e-mail to news-digest-leave@lists.example.org",
            "-----\nThis message was scanned for viruses and malware.",
            "© 2024 Northbridge Gazette. All rights reserved.",
            "--\nJane Doe\nCity desk, Northbridge Gazette",
        ];
        for footer in footers {
            let q = split(&format!("Summarize this:\n\n{BODY}\n\n{footer}\n"));
            assert_eq!(q, base, "{footer:?}");
        }
        // The same lines inside the text, or prose that merely mentions the topic, stay.
        let (head, tail) = BODY.split_at(BODY.find(" Several").unwrap());
        let inside = split(&format!(
            "Summarize this:\n\n{head}\nSent from my iPhone\n{tail}"
        ));
        assert_ne!(inside.document, base.document);
        for last in [
            "The virus was found in 30 samples.",
            "Copyright law protects the plans.",
            "Thanks to the grant, 12 schools reopened.",
        ] {
            let with = split(&format!("Summarize this:\n\n{BODY}\n\n{last}"));
            assert_ne!(with.document, base.document, "{last}");
        }
        // A footer never empties a prompt.
        assert_eq!(split("Thanks!").instruction, "Thanks!");
    }

    #[test]
    fn short_prompts_lose_footers_too() {
        let a = split("How do I reset my password?\n\nSent from my iPhone");
        assert_eq!(a.instruction, "How do I reset my password?");
        assert_eq!(a.document, None);
        // A rule in a short prompt is dropped only at its very end, not what follows it.
        let b = split("Explain this:\n--\nfoo bar");
        assert_eq!(b.instruction, "Explain this: -- foo bar");
    }
}
