//! A document's identity beyond its exact text: the same document re-spaced, or wrapped in
//! transport noise that [`super::transport::strip`] does not know by name (a forward header in
//! another language, another site's menu, an unfamiliar signature).
//!
//! Two keys and a shape, all computed in one pass over the document:
//!
//! * **words**: the document's words in order, whitespace ignored. Equal words are the same
//!   document, however it was wrapped, indented or line-ended.
//! * **core**: the words between the document's *edge zones*. An edge zone is the run of lines
//!   at the top (or bottom) that are shaped like transport noise ([`is_edge_line`]): blank
//!   lines, separators, `Label: value` header lines, "... wrote:"-style lines ending in a colon,
//!   lines naming an address or a link, short lines without a sentence end (menus, sign-offs,
//!   names, titles, "Share this"), a short first line standing alone (a greeting: "Hi!"), and
//!   the known footer, banner and chrome lines. A line of
//!   prose, a list item or a table row ends the zone.
//! * **shape**: the edge lines themselves (a hash and word count each).
//!
//! Two documents are the same when their words are equal, or when their cores are equal and at
//! each edge **one of them holds every edge line of the other, in order,** plus extra lines of
//! its own ([`same_document`]): one side added a forward header or a footer, nothing was changed. A
//! truncated or extended document has another core (prose ends every zone); a name or a figure
//! changed in a header or signature line leaves both sides with an edge line the other lacks,
//! and is a different document. The rules are about the *shape* of lines, not their words.

use std::cell::Cell;

use sha2::{Digest, Sha256};

use super::transport;

/// Edge lines kept per side; a longer zone is cut there (both sides cut it the same way).
const MAX_EDGE_LINES: usize = 40;
/// Lines with text looked at per zone, at most (a zone may skip lines that say nothing: a
/// megabyte of "---" lines is not read as one zone, the core takes the rest).
const MAX_ZONE_LINES: usize = 4 * MAX_EDGE_LINES;
/// Noise-shaped lines inside the core and at the bottom, at most: a document with more is matched
/// only by its exact words.
const MAX_INNER_LINES: usize = 200;
/// A core shorter than this is not matched through its edges (too little left to be sure).
const MIN_CORE_WORDS: u32 = 30;
/// Short lines: at most this many words and no sentence end.
const SHORT_LINE_WORDS: usize = 12;
/// A first line standing alone (a paragraph of its own) with at most this many words is an
/// edge line, even with a sentence end: a greeting or a preface ("Hi!", "Good morning,").
const PREFACE_WORDS: usize = 5;
/// Header and colon-ended lines: at most this many words.
const HEADER_LINE_WORDS: usize = 30;
/// A banner opened by a shouted tag: at most this many words.
const BANNER_WORDS: usize = 60;
/// Longest line looked at as noise.
const MAX_EDGE_LINE_BYTES: usize = 400;

/// One edge line: a hash of its collapsed text and its word count.
pub type EdgeLine = (u64, u32);

/// The identity of one document (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocShape {
    pub words: [u8; 32],
    /// `None` when the core is shorter than [`MIN_CORE_WORDS`].
    pub core: Option<[u8; 32]>,
    pub core_words: u32,
    pub top: Vec<EdgeLine>,
    pub bottom: Vec<EdgeLine>,
}

/// The shape of `raw` (the document as sent) given `cleaned` (it without the noise that may
/// stand anywhere: `transport::clean`).
pub fn shape(raw: &str, cleaned: &str) -> DocShape {
    let (raw, cleaned) = (unquote(raw), unquote(cleaned));
    let mut h = WordHasher::new(b"sluice-doc-words-v1\0");
    for w in raw.split_whitespace() {
        h.word(w);
    }
    let words = h.finish();

    let lines: Vec<&str> = cleaned
        .lines()
        .map(|l| transport::strip_reply_marker(l).trim())
        .collect();
    // A line that a re-wrapped sentence continues (the next line opens in lower case) is prose,
    // however short: where a paragraph was wrapped must not move the zone's end.
    let wrapped = |next: Option<&&str>| {
        next.and_then(|n| n.chars().next())
            .is_some_and(char::is_lowercase)
    };
    // How each line reads, worked out at most once per line (the zones below look ahead).
    let kinds: Vec<Cell<Option<EdgeKind>>> = vec![Cell::new(None); lines.len()];
    let kind = |i: usize| {
        if let Some(k) = kinds[i].get() {
            return k;
        }
        let table = [i.checked_sub(1), Some(i + 1)]
            .into_iter()
            .flatten()
            .any(|j| lines.get(j).is_some_and(|n| has_cells(n)));
        let k = edge_kind(lines[i], table);
        kinds[i].set(Some(k));
        k
    };
    let mut start = 0;
    let mut top = Vec::new();
    // No line with text before this one: the document's first line.
    let mut first = true;
    let mut looked = 0;
    while start < lines.len() && top.len() < MAX_EDGE_LINES && looked < MAX_ZONE_LINES {
        let l = lines[start];
        if !l.is_empty() {
            looked += 1;
            let next = lines[start + 1..].iter().find(|n| !n.is_empty());
            // A short line in one block (no blank line between) with prose or a wrapped line
            // among the next three opens a paragraph that wrapping cut.
            let opens_paragraph = (start + 1..lines.len().min(start + 4))
                .take_while(|&j| !lines[j].is_empty())
                .any(|j| match kind(j) {
                    EdgeKind::Content => true,
                    EdgeKind::Short => wrapped(Some(&lines[j])),
                    EdgeKind::Noise => false,
                });
            // The document's first line standing alone and short ("Hi!", "Hey, quick favour.")
            // is a preface, whatever its end.
            let preface = std::mem::take(&mut first)
                && lines.get(start + 1).is_none_or(|n| n.is_empty())
                && l.split_whitespace().count() <= PREFACE_WORDS;
            match kind(start) {
                _ if preface => top.push(edge_line(l)),
                EdgeKind::Content => break,
                EdgeKind::Short if wrapped(next) || opens_paragraph => break,
                _ if says_nothing(l) => {}
                _ => top.push(edge_line(l)),
            }
        }
        start += 1;
    }
    let mut end = lines.len();
    let mut bottom = Vec::new();
    let mut looked = 0;
    while end > start && bottom.len() < MAX_EDGE_LINES && looked < MAX_ZONE_LINES {
        let l = lines[end - 1];
        if !l.is_empty() {
            looked += 1;
            let prev = lines[start..end - 1].iter().rev().find(|n| !n.is_empty());
            let continues =
                prev.is_some_and(|p| !p.ends_with(['.', '!', '?', ':', ','])) && wrapped(Some(&l));
            match kind(end - 1) {
                EdgeKind::Content => break,
                EdgeKind::Short if continues => break,
                _ if says_nothing(l) => {}
                _ => bottom.push(edge_line(l)),
            }
        }
        end -= 1;
    }
    bottom.reverse();

    // The core: the prose between the zones. A line inside it shaped like noise (a chat
    // timestamp, a running page header, "Continue reading below", a `Label: value` line) is
    // kept out of the hash and joins the bottom lines, in order, so that the same containment
    // rule forgives noise added between paragraphs and refuses a changed line.
    let mut h = WordHasher::new(b"sluice-doc-core-v3\0");
    let mut core_words = 0u32;
    let mut inner = Vec::new();
    let mut overflow = false;
    for i in start..end {
        let line = lines[i];
        if line.is_empty() {
            continue;
        }
        let next = lines[i + 1..end].iter().find(|n| !n.is_empty());
        let prose = match kind(i) {
            EdgeKind::Content => true,
            EdgeKind::Short => continued(line, next),
            EdgeKind::Noise => false,
        };
        if !prose {
            if !says_nothing(line) {
                // More noise lines than fit: the core is not matched (below), nothing more to read.
                if inner.len() + bottom.len() >= MAX_INNER_LINES {
                    overflow = true;
                    break;
                }
                inner.push(edge_line(line));
            }
            continue;
        }
        // Quotation marks aside: the text pasted between quotes is the same text.
        for w in line.split_whitespace() {
            if w.contains('"') {
                let bare = w.replace('"', "");
                if bare.is_empty() {
                    continue;
                }
                h.word(&bare);
            } else {
                h.word(w);
            }
            core_words = core_words.saturating_add(1);
        }
    }
    let core = h.finish();
    let matched = core_words >= MIN_CORE_WORDS && !overflow;
    if !matched {
        // Only the exact words can match this document: its edges are never read.
        top.clear();
        bottom.clear();
        inner.clear();
    }
    inner.append(&mut bottom);
    DocShape {
        words,
        core: matched.then_some(core),
        core_words,
        top,
        bottom: inner,
    }
}

impl DocShape {
    pub fn edges(&self) -> Edges<'_> {
        Edges {
            words: &self.words,
            core: self.core.as_ref(),
            core_words: self.core_words,
            top: &self.top,
            bottom: &self.bottom,
        }
    }
}

/// A document's identity as compared, borrowed from wherever it is kept (the cache keeps it
/// with namespaced keys).
#[derive(Debug, Clone, Copy)]
pub struct Edges<'a> {
    pub words: &'a [u8; 32],
    pub core: Option<&'a [u8; 32]>,
    pub core_words: u32,
    pub top: &'a [EdgeLine],
    pub bottom: &'a [EdgeLine],
}

/// True when `a` and `b` are the same document: equal words, or equal cores where at each edge
/// one holds all the other's edge lines (in order) and what it adds is no longer than the core.
pub fn same_document(a: Edges<'_>, b: Edges<'_>) -> bool {
    if a.words == b.words {
        return true;
    }
    if a.core.is_none() || a.core != b.core {
        return false;
    }
    let holds = |x: &[EdgeLine], y: &[EdgeLine]| within(x, y) || within(y, x);
    let (top, bottom) = (holds(a.top, b.top), holds(a.bottom, b.bottom));
    let words = |z: &[EdgeLine]| z.iter().map(|&(_, n)| u64::from(n)).sum::<u64>();
    let extra = words(a.top).abs_diff(words(b.top)) + words(a.bottom).abs_diff(words(b.bottom));
    top && bottom && extra <= u64::from(a.core_words)
}

/// A SHA-256 of words fed one at a time, buffered (a word is a few bytes; the hasher is fed in
/// blocks).
struct WordHasher {
    h: Sha256,
    buf: Vec<u8>,
}

impl WordHasher {
    const BUF: usize = 4096;

    fn new(domain: &[u8]) -> WordHasher {
        let mut buf = Vec::with_capacity(Self::BUF);
        buf.extend_from_slice(domain);
        WordHasher {
            h: Sha256::new(),
            buf,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > Self::BUF {
            self.h.update(&self.buf);
            self.buf.clear();
        }
        if bytes.len() > Self::BUF {
            self.h.update(bytes);
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Feeds one word, without the hyphens between two letters: a word that wrapping broke
    /// after a hyphen ("access-\nories", rejoined as "access-ories") and the word itself are
    /// one. A hyphen next to a figure ("-5", "2020-21") stays.
    fn word(&mut self, w: &str) {
        let b = w.as_bytes();
        let mut from = 0;
        // Only a word with a hyphen and a letter can have a hyphen between two letters.
        if b.contains(&b'-') && w.contains(char::is_alphabetic) {
            for (i, _) in w.match_indices('-') {
                let letter = |c: Option<char>| c.is_some_and(char::is_alphabetic);
                if letter(w[..i].chars().next_back()) && letter(w[i + 1..].chars().next()) {
                    self.push(&b[from..i]);
                    from = i + 1;
                }
            }
        }
        self.push(&b[from..]);
        self.push(b" ");
    }

    fn finish(mut self) -> [u8; 32] {
        self.h.update(&self.buf);
        self.h.finalize().into()
    }
}

/// True when every line of `small` is in `big`, in the same order (a subsequence). Linear.
fn within(small: &[EdgeLine], big: &[EdgeLine]) -> bool {
    let mut rest = big.iter();
    small.iter().all(|l| rest.any(|b| b.0 == l.0))
}

/// An edge line that tells nothing about the document, left out of the zone so that either
/// side may have it: a rule ("---"), a label ("Text:", "News item:"), a lowercase greeting
/// ("hey"). A capitalised word ("Marguerite") may be a signature, and counts.
fn says_nothing(l: &str) -> bool {
    let words = || l.split_whitespace().count();
    !l.chars().any(char::is_alphanumeric)
        || (l.ends_with(':') && words() <= 3 && !l.chars().any(|c| c.is_ascii_digit()))
        || (words() == 1
            && l.chars()
                .filter(|c| c.is_alphanumeric())
                .all(char::is_lowercase))
}

/// A document pasted between quotation marks: the text inside them (one mark off each end; a
/// text that opens and closes with quoted speech loses the same two marks on every side).
fn unquote(doc: &str) -> &str {
    let t = doc.trim();
    ['"', '\'']
        .iter()
        .find_map(|&q| t.strip_prefix(q).and_then(|r| r.strip_suffix(q)))
        .unwrap_or(doc)
}

/// An edge line is compared by its letters and figures (case, spacing and punctuation aside:
/// `"Subject: Renewal` and `Subject: Renewal` are one line).
fn edge_line(l: &str) -> EdgeLine {
    let collapsed: String = l
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ");
    let digest = Sha256::digest(collapsed.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let words = collapsed.split_whitespace().count();
    (
        u64::from_le_bytes(first),
        u32::try_from(words).unwrap_or(u32::MAX),
    )
}

/// How a line reads at a document's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    /// Prose, a list item or a table row: content.
    Content,
    /// Shaped like noise whatever surrounds it: a header, an address, a banner, a separator.
    Noise,
    /// Short and without a sentence end: noise unless a wrapped sentence continues it.
    Short,
}

/// A line shaped like transport noise (trimmed, reply markers removed, not empty).
#[cfg(test)]
fn is_edge_line(l: &str) -> bool {
    edge_kind(l, false) != EdgeKind::Content
}

/// A short line inside the text that a wrapped sentence continues: several words, and a next
/// line opening with a lower-case word of letters ("spring, I did not expect ..."), not a user
/// name ("sanne-groot commented ...", "tom_p") or a one-word label ("Labels" / "documentation").
fn continued(line: &str, next: Option<&&str>) -> bool {
    const MIN_WORDS: usize = 3;
    let word_of_letters = next
        .and_then(|n| n.split_whitespace().next())
        .is_some_and(|w| {
            w.chars().next().is_some_and(char::is_lowercase)
                && w.trim_end_matches([',', ';', '.'])
                    .chars()
                    .all(char::is_alphabetic)
        });
    word_of_letters && line.split_whitespace().count() >= MIN_WORDS && !is_stamp(line)
}

/// A short line with a clock time ("tom - Today at 9:47 AM", "[10:42] Dana"): a chat or mail
/// stamp, never a sentence that wrapping cut.
fn is_stamp(l: &str) -> bool {
    const STAMP_WORDS: usize = 8;
    l.split_whitespace().count() <= STAMP_WORDS
        && l.split(|c: char| !c.is_ascii_digit() && c != ':')
            .any(|t| match t.split_once(':') {
                Some((h, m)) => (1..=2).contains(&h.len()) && m.len() == 2 && !m.contains(':'),
                None => false,
            })
}

/// `table`: the line has a neighbour with cells too (a table has rows).
fn edge_kind(l: &str, table: bool) -> EdgeKind {
    if l.len() > MAX_EDGE_LINE_BYTES
        || is_list_item(l)
        || (table && has_cells(l) && l.contains(|c: char| c.is_ascii_digit()))
    {
        return EdgeKind::Content;
    }
    if !l.chars().any(char::is_alphanumeric)
        || transport::is_footer_line(l)
        || transport::is_chrome_line(l)
        || transport::is_banner_line(l)
        || transport::is_separator(l)
    {
        return EdgeKind::Noise;
    }
    let words = l.split_whitespace().count();
    if (words <= HEADER_LINE_WORDS && (names_an_address(l) || l.ends_with(':') || is_header(l)))
        || (words <= BANNER_WORDS && is_tagged_banner(l))
    {
        return EdgeKind::Noise;
    }
    if words <= SHORT_LINE_WORDS && !l.ends_with(['.', '!', '?', ';']) {
        EdgeKind::Short
    } else {
        EdgeKind::Content
    }
}

/// `Label: value`: a label of at most two words of letters (any language) before the colon,
/// and a value of at most twelve words after it ("Von: Anna", "Objet : Rapport", "Sent:
/// Monday, 3 June"). A colon-ended line is handled by the caller.
fn is_header(l: &str) -> bool {
    let Some((label, value)) = l.split_once(':') else {
        return false;
    };
    let label = label.trim().trim_start_matches(['[', '*', '_']);
    let value = value.trim();
    !label.is_empty()
        && label.len() <= 30
        && label.split_whitespace().count() <= 2
        && label
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '.' || c == '\'')
        && !value.is_empty()
        && value.split_whitespace().count() <= 12
}

/// A line opened by a shouted tag, as mail gateways and intranets stamp them: "[EXTERNAL
/// EMAIL] Be careful with links ...", "CAUTION: This message ...", "VERTRAULICH: ...": a
/// bracketed or colon-ended label in capitals (at least three letters, at most three words).
fn is_tagged_banner(l: &str) -> bool {
    let label = if let Some(rest) = l.strip_prefix('[') {
        rest.split_once(']').map(|(tag, _)| tag)
    } else {
        l.split_once(':').map(|(tag, _)| tag)
    };
    label.is_some_and(|t| {
        let letters = t.chars().filter(|c| c.is_alphabetic()).count();
        letters >= 3
            && t.split_whitespace().count() <= 3
            && t.chars()
                .all(|c| c.is_uppercase() || c == ' ' || c == '-' || c == '_')
    })
}

/// An e-mail address or a link.
pub(super) fn names_an_address(l: &str) -> bool {
    // Every address has a dot, a slash or an at sign.
    if !l.bytes().any(|b| matches!(b, b'.' | b'/' | b'@')) {
        return false;
    }
    l.contains("http://")
        || l.contains("https://")
        || l.contains("www.")
        || l.split_whitespace().any(|w| {
            w.split_once('@').is_some_and(|(user, host)| {
                !user.trim_start_matches(['<', '(', '[', '"']).is_empty() && host.contains('.')
            })
        })
}

/// "- item", "* item", "• item", "1. item", "2) item", "a) item": content, never noise.
fn is_list_item(l: &str) -> bool {
    if l.starts_with(['-', '*', '•', '+', '▪', '◦']) && l.chars().nth(1).is_some_and(|c| c == ' ')
    {
        return true;
    }
    let head = &l[..l
        .bytes()
        .position(|b| !b.is_ascii_alphanumeric())
        .unwrap_or(l.len())];
    let rest = &l[head.len()..];
    !head.is_empty()
        && head.len() <= 3
        && (head.chars().all(|c| c.is_ascii_digit()) || head.len() == 1)
        && (rest.starts_with(". ") || rest.starts_with(") "))
}

/// Cells between pipes or tabs (a table row when a neighbour has cells too and it has a figure).
fn has_cells(l: &str) -> bool {
    l.bytes().filter(|&b| b == b'|').nth(1).is_some() || l.as_bytes().contains(&b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "The council met on Tuesday evening to discuss the budget for next year.\n\
It approved 4.2 million for road repairs after a long debate among its members.\n\
The mayor, Anna Berg, said the repairs would start in spring and last until the autumn.";

    fn same(a: &str, b: &str) -> bool {
        let sa = shape(a, &transport::clean(a));
        let sb = shape(b, &transport::clean(b));
        same_document(sa.edges(), sb.edges()) && same_document(sb.edges(), sa.edges())
    }

    #[test]
    fn noise_between_paragraphs_is_forgiven_and_a_changed_line_is_not() {
        let paragraphs: Vec<&str> = BODY.lines().collect();
        let doc = format!("Budget 2026\n\n{}", paragraphs.join("\n\n"));
        // Chat stamps and a running page header between the paragraphs.
        let chat = format!(
            "Budget 2026\nana_b - Today at 9:47 AM\n{}\nana_b - Today at 9:48 AM\n{}\n\n{}\n[reply] tom - 9:50 AM\nty",
            paragraphs[0], paragraphs[1], paragraphs[2]
        );
        assert!(same(&doc, &chat));
        let pdf = format!(
            "Budget 2026\n\n{}\n\nCouncil minutes    |    Page 1 of 2\n\n{}\n\n{}",
            paragraphs[0], paragraphs[1], paragraphs[2]
        );
        assert!(same(&doc, &pdf));
        // A line inside the text changed, or prose changed: another document.
        let labelled = |v: &str| {
            format!(
                "Budget 2026\n\n{}\nStatus: {v}\n\n{}\n\n{}",
                paragraphs[0], paragraphs[1], paragraphs[2]
            )
        };
        assert!(!same(&labelled("approved"), &labelled("rejected")));
        assert!(!same(&doc, &chat.replace("4.2 million", "4.3 million")));
    }

    #[test]
    fn headers_in_any_language_and_unknown_chrome_are_edges() {
        let german = format!(
            "Von: Anna Berg <anna@rat.example>\nGesendet: Dienstag, 3. Juni 2025 10:12\nAn: Team\nBetreff: Haushalt\n\n{BODY}\n\nMit freundlichen Grüßen\nAnna Berg\nStadtrat | Tel. +49 30 1234567"
        );
        assert!(same(BODY, &german));
        let french = format!(
            "Le mar. 3 juin 2025 à 10:12, Anna Berg <anna@rat.example> a écrit :\n{}",
            BODY.lines()
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(same(BODY, &french));
        let web = format!(
            "Coastal Gazette\nNews  Opinion  Sport  Weather\nBy Lena Hart | 4 min read\n\n{BODY}\n\nTags: budget, roads\nMore from Coastal Gazette\nPrinted from www.gazette.example"
        );
        assert!(same(BODY, &web));
        // Re-spaced: the same words, also where wrapping broke a word after a hyphen.
        assert!(same(BODY, &BODY.replace('\n', " ")));
        assert!(same(BODY, &BODY.replace("approved ", "ap-proved ")));
        assert!(!same(BODY, &BODY.replace("4.2", "-4.2")));
        // One side has a footer, the other a header: each edge has one side's extra lines.
        assert!(same(
            &format!("{BODY}\nSent from my phone"),
            &format!("Fwd: Budget\n\n{BODY}")
        ));
        // A label on one side, a greeting on the other.
        assert!(same(&format!("Text:\n{BODY}"), &format!("hey\n\n{BODY}")));
        // Pasted between quotation marks.
        assert!(same(
            &format!("Fwd: Budget\n{BODY}"),
            &format!("\"{BODY}\"")
        ));
        // Noise inserted among the edge lines the other side has.
        assert!(same(
            &format!("Article:\n{BODY}"),
            &format!("Article:\n---------- Messaggio inoltrato ---------\nDa: Emma <e@x.example>\nOggetto: Bilancio\n\n{BODY}")
        ));
    }

    #[test]
    fn truncated_extended_and_edited_documents_differ() {
        let wrapped =
            |body: &str| format!("Von: Anna Berg <anna@rat.example>\nBetreff: Haushalt\n\n{body}");
        let truncated: String = BODY.lines().take(2).collect::<Vec<_>>().join("\n");
        assert!(!same(BODY, &wrapped(&truncated)));
        let extended =
            format!("{BODY}\nThe opposition voted against the plan and asked for a new vote.");
        assert!(!same(BODY, &wrapped(&extended)));
        assert!(!same(BODY, &wrapped(&BODY.replace("4.2", "4.7"))));
        // A changed name in a signature: both sides have an edge line the other lacks.
        assert!(!same(
            &format!("{BODY}\n\nBest,\nAnna Berg"),
            &format!("{BODY}\n\nBest,\nAnne Borg")
        ));
        // A changed header line.
        assert!(!same(
            &format!("Effective: 1 March\n\n{BODY}"),
            &format!("Effective: 8 March\n\n{BODY}")
        ));
        // A list item is content: a list dropped from the end is a truncation.
        assert!(!same(
            &format!("{BODY}\n- Roads first\n- Bridges next"),
            &format!("{BODY}\nSent from my phone")
        ));
    }

    #[test]
    fn line_shapes() {
        for noise in [
            "Von: Anna Berg <anna@rat.example>",
            "Objet : Rapport trimestriel",
            "On Tue, 3 Jun 2025, Anna <a@b.example> wrote:",
            "Share on LinkedIn",
            "Menu",
            "Page 2 of 5",
            "=====",
            "Mit freundlichen Grüßen",
            "[EXTERNAL EMAIL] Be careful with links and attachments. Report suspicious messages.",
            "CAUTION: This message came from outside the company. Do not open attachments you did not expect.",
        ] {
            assert!(is_edge_line(noise), "{noise}");
        }
        for content in [
            "The council approved 4.2 million for roads.",
            "- Roads first",
            "2. Bridges next",
            "- Q1 revenue",
            "It approved the plan after a long debate among its members and the public today.",
            "The EU said: the plan will cost more than expected and take longer to finish.",
        ] {
            assert!(!is_edge_line(content), "{content}");
        }
    }

    #[test]
    fn hostile_line_shapes_stay_linear() {
        // Blank lines, then lines that say nothing, then blank lines again: each zone scan
        // looks at every line a bounded number of times (a rescan per line would take minutes).
        let half = (1 << 20) / 5;
        let text = format!(
            "{}{}{}",
            "\n".repeat(half),
            "---\n".repeat(half / 4),
            "\n".repeat(half)
        );
        let s = shape(&text, &text);
        assert!(s.top.is_empty() && s.bottom.is_empty());
        let text = "Hi!\n\n".repeat(half / 5);
        let s = shape(&text, &text);
        assert!(s.top.len() <= MAX_EDGE_LINES);
    }

    #[test]
    fn a_short_core_is_not_matched_by_its_edges() {
        let s = shape("Short text here.", "Short text here.");
        assert!(s.core.is_none());
    }
}
