//! Long prompts: an instruction plus a document.
//!
//! The embedding model reads only the first 256 tokens, so for summarisation-style traffic the
//! similarity of two (truncated) prompts says nothing about whether their documents are the same.
//! The cache therefore never lets the vector decide about a document:
//!
//! 1. A last user turn longer than [`LONG_TEXT_CHARS`] is split into an **instruction** and a
//!    **document**. The document is the largest fenced or tagged block (```` ``` ````, `"""`,
//!    `<document>...</document>`) when there is one; otherwise the instruction is the first line
//!    (or the text up to the first colon) when it reads as an instruction (a task word such as
//!    "summarize"/"translate", a reference like "the following"/"this article", or a trailing
//!    colon), else the last line under the same test, and the rest is the document. A long text
//!    with no recognisable instruction is all document.
//! 2. The document is reduced to a **content fingerprint**: boilerplate lines ("Sent from my
//!    iPhone", unsubscribe and "view in browser" lines, copyright / "all rights reserved" lines,
//!    separator rules) are dropped, typographic quotes and dashes folded, all whitespace
//!    collapsed, and the result hashed (sha256). Documents must have the *same* fingerprint to
//!    share an answer: a different document, one changed number or name, or a truncated copy all
//!    change it; re-wrapped lines, extra blank lines or a new email footer do not.
//! 3. The fingerprint joins the namespace to form the semantic search **bucket**, so only entries
//!    about the very same document are candidates, and the **instruction** alone is compared:
//!    embedded, thresholded and checked by the structural guards (task words must agree, so
//!    "summarize" never answers "translate" or "list the key points").
//!
//! Short texts (the common chat case) are not split: the whole turn is embedded (it fits the
//! model's window) and the guards still read all of it.

use sha2::{Digest, Sha256};

use super::lexicon;

/// Texts longer than this (about 150 tokens) are split into instruction + document.
pub const LONG_TEXT_CHARS: usize = 600;
/// An instruction line is at most this long.
const MAX_INSTRUCTION_CHARS: usize = 300;
/// A fenced block counts as the document when it holds at least this share of the text.
const MIN_BLOCK_SHARE: f64 = 0.5;

/// The last user turn, split for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptParts {
    /// Compared semantically (embedded + guards). Whitespace-normalised.
    pub instruction: String,
    /// Content fingerprint of the document part, compared exactly.
    pub document: Option<[u8; 32]>,
}

pub fn split(text: &str) -> PromptParts {
    let text = text.replace("\r\n", "\n");
    let text = text.trim();
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
    // Head: the first line, or the text before the first colon of a long first line.
    let first_line = text.lines().next().unwrap_or("");
    let head = if first_line.len() <= MAX_INSTRUCTION_CHARS {
        Some(first_line)
    } else {
        first_line
            .find(':')
            .filter(|&p| p <= MAX_INSTRUCTION_CHARS)
            .map(|p| &first_line[..=p])
    };
    if let Some(head) = head.filter(|h| is_instruction(h)) {
        return (head.to_owned(), text[head.len()..].to_owned());
    }
    let last_line = text.lines().last().unwrap_or("");
    if last_line.len() <= MAX_INSTRUCTION_CHARS && is_instruction(last_line) {
        let doc = &text[..text.len() - last_line.len()];
        return (last_line.to_owned(), doc.to_owned());
    }
    (String::new(), text.to_owned())
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

/// A line that asks for something rather than being part of a document.
fn is_instruction(line: &str) -> bool {
    let line = line.trim();
    if line.is_empty() {
        return false;
    }
    if line.ends_with(':') {
        return true;
    }
    let lower = line.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != ';')
        .filter(|w| !w.is_empty())
        .collect();
    let task = words.iter().any(|w| {
        let canon = lexicon::synonym(w).unwrap_or(w);
        lexicon::is_task(canon) || *w == "tl;dr"
    });
    let reference = [
        "the following",
        "the above",
        "this text",
        "this article",
        "this email",
        "this document",
        "this passage",
        "this message",
        "this story",
        "this post",
        "below",
        "above",
    ]
    .iter()
    .any(|r| lower.contains(r));
    task || reference
}

/// Boilerplate that mail clients, newsletters and sites add around content.
fn is_boilerplate(line: &str) -> bool {
    let l = line.trim().to_lowercase();
    if l.is_empty() {
        return true;
    }
    if l.len() > 160 {
        return false;
    }
    let rule = l
        .chars()
        .all(|c| matches!(c, '-' | '_' | '=' | '*' | '~' | '#' | ' '));
    let starts = [
        "sent from my ",
        "sent from outlook",
        "sent from yahoo",
        "sent from mail for",
        "get outlook for",
        "©",
        "(c) ",
        "copyright ",
        "copyright©",
        "view this email in",
        "view in browser",
        "view it in your browser",
        "view online",
        "click here to unsubscribe",
        "to unsubscribe",
        "unsubscribe",
        "manage your preferences",
        "manage preferences",
        "update your preferences",
        "you are receiving this",
        "you received this",
        "this email was sent to",
        "follow us on",
        "share this",
        "advertisement",
    ];
    rule || starts.iter().any(|s| l.starts_with(s))
        || l.contains("all rights reserved")
        || l.ends_with("unsubscribe")
        || l.contains("unsubscribe here")
}

/// Document text reduced to what matters for its answer (see the module doc).
pub fn normalize_document(doc: &str) -> String {
    let kept: Vec<&str> = doc.lines().filter(|l| !is_boilerplate(l)).collect();
    let folded: String = kept
        .join(" ")
        .chars()
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
        .collect();
    collapse_ws(&folded)
}

pub fn document_fingerprint(doc: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sluice-doc-v1\0");
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
}
