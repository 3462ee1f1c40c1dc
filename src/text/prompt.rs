//! A prompt (the last user turn) split for matching: the **instruction**, compared loosely
//! (embedded, thresholded, checked by the guards and task frames), and its **operands**, which
//! must match exactly: pasted code, data, quotations and documents (see [`super::operands`]).
//!
//! 1. Characters are folded (typographic quotes and dashes, invisible characters, CRLF) and words
//!    broken by hard-wrapping after a hyphen are rejoined.
//! 2. Fenced and tagged blocks become operands.
//! 3. A text still longer than [`LONG_TEXT_CHARS`] is split into an instruction and a
//!    **document**, on the text with all whitespace collapsed, so that re-wrapping, CRLF line
//!    ends, indentation or pasting everything on one line cannot move the split: the instruction
//!    is the run of leading sentences (at most [`MAX_INSTRUCTION_SENTENCES`] and
//!    [`MAX_INSTRUCTION_CHARS`]) that read as a request (a task word such as "summarize", a
//!    reference such as "this article" / "the following", request framing such as "could you",
//!    or a trailing colon), else the same run at the end ("... Translate the above into
//!    German."); the rest is the document. A long text with no recognisable instruction is all
//!    document. Transport noise around the document (forward headers, mail footers, web chrome:
//!    [`super::transport`]) is dropped from its fingerprint only.
//! 4. A shorter text has its code and data lines and its inline quotations taken out as
//!    operands. Nothing is ever stripped from a short prompt or an instruction.
//! 5. The operands are normalised (code keeps its relative indentation; prose, data and quotes
//!    have their whitespace collapsed) and hashed, in order, into one **operand fingerprint**.
//!    It joins the namespace to form the semantic search bucket, so only entries with the very
//!    same operands are candidates, and the instruction alone is embedded and compared.

use sha2::{Digest, Sha256};

use super::edges::{self, DocShape};
use super::lexicon;
use super::normalize::{collapse_ws, fold_chars, join_hyphen_breaks};
use super::operands::{self, Kind, Operand};
use super::transport;

/// Texts longer than this (about 150 tokens) are split into instruction + document.
pub const LONG_TEXT_CHARS: usize = 600;
/// An instruction is at most this long.
const MAX_INSTRUCTION_CHARS: usize = 300;
/// ... and at most this many sentences.
const MAX_INSTRUCTION_SENTENCES: usize = 4;
/// A request that shares a line with at most this many words of the text takes them (they would
/// otherwise be an edge line of the document: see [`from_asking_line`]); a longer rest is the
/// document's own prose.
const LINE_REST_WORDS: usize = 12;
/// Operand text kept for the focus guard (quotes, data and code only; documents are matched by
/// frames and fingerprints, not by what they mention).
const MAX_OPERAND_WORDS_BYTES: usize = 4096;

/// The last user turn, split for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Compared semantically (embedded, guards, frames): operands replaced by `§`,
    /// whitespace collapsed.
    pub instruction: String,
    /// Fingerprint of the operands, in order; `None` when there are none.
    pub operands: Option<[u8; 32]>,
    /// The prompt carries a document (a long text, or a long prose block).
    pub document: bool,
    /// The text of short operands (quotes, data, code), capped: what the prompt mentions
    /// besides its instruction, for the focus guard.
    pub mentions: String,
    /// The document's identity beyond its exact text, when it is the prompt's only operand:
    /// the same document re-spaced or in other transport noise ([`super::edges`]).
    pub doc: Option<DocShape>,
}

pub fn parse(text: &str) -> Parsed {
    let folded = fold_chars(text);
    let text = join_hyphen_breaks(&folded);
    let mut ops: Vec<Operand> = Vec::new();
    let rest = operands::blocks(text.trim(), &mut ops);
    let rest = if rest.trim().chars().count() > LONG_TEXT_CHARS {
        let (instruction, document) = split_long(&rest);
        if let Some(d) = document {
            ops.push(Operand {
                kind: Kind::Document,
                text: d,
                info: String::new(),
            });
        }
        operands::inline(&instruction, &mut ops)
    } else {
        let rest = operands::lines(&rest, &mut ops);
        let rest = short_text_operand(&rest, &mut ops);
        operands::inline(&rest, &mut ops)
    };
    let instruction = collapse_ws(&rest);
    let mut mentions = String::new();
    let mut document = false;
    let mut h = Sha256::new();
    h.update(b"sluice-operands-v1\0");
    let mut doc = None;
    for op in &ops {
        // A document's fingerprint drops its transport noise; its identity (when it is the only
        // operand) reads the edges of the text with only the noise that may stand anywhere gone.
        let normal = if !is_document_text(op) {
            normalize_operand(op)
        } else if ops.len() == 1 {
            let (stripped, cleaned) = transport::strip_and_clean(&op.text);
            doc = Some(edges::shape(&op.text, &cleaned));
            collapse_ws(&stripped)
        } else {
            collapse_ws(&transport::strip(&op.text))
        };
        document |= op.kind == Kind::Document
            || (op.kind == Kind::Block
                && normal.len() > MAX_INSTRUCTION_CHARS
                && !is_code_info(&op.info));
        if op.kind != Kind::Document && mentions.len() < MAX_OPERAND_WORDS_BYTES {
            let room = MAX_OPERAND_WORDS_BYTES - mentions.len();
            let mut cut = normal.len().min(room);
            while !normal.is_char_boundary(cut) {
                cut -= 1;
            }
            mentions.push_str(&normal[..cut]);
            mentions.push(' ');
        }
        h.update(op.kind.tag());
        h.update((normal.len() as u64).to_le_bytes());
        h.update(normal.as_bytes());
    }
    Parsed {
        instruction,
        operands: (!ops.is_empty()).then(|| h.finalize().into()),
        document,
        mentions,
        doc,
    }
}

/// A short prompt of several lines whose first line is an instruction ending in a colon
/// ("Translate this into French:") or whose last line points back at the text above it
/// ("Translate the above into French."): the rest is the text it works on, an operand. Only whole
/// lines are taken, and nothing is dropped.
fn short_text_operand(text: &str, ops: &mut Vec<Operand>) -> String {
    let trimmed = text.trim();
    let mut lines: Vec<&str> = trimmed.lines().collect();
    // Lines that only hand the text over ("My colleague sent me this:") belong to neither the
    // request nor the text.
    let handover = lines
        .iter()
        .take_while(|l| l.trim().is_empty() || is_handover_line(l))
        .count();
    if handover > 0 && lines[handover..].iter().any(|l| !l.trim().is_empty()) {
        lines.drain(..handover);
    }
    if lines.len() < 2 {
        return lines.join("\n");
    }
    let first = lines[0].trim();
    let body_of = |from: usize, to: usize| lines[from..to].join("\n");
    let (instruction, body) = if first.ends_with(':')
        && first.len() <= MAX_INSTRUCTION_CHARS
        && is_instruction(first, true)
    {
        (first.to_owned(), body_of(1, lines.len()))
    } else {
        let last = lines[lines.len() - 1].trim();
        if last.len() > MAX_INSTRUCTION_CHARS || !is_tail_instruction(last) {
            return lines.join("\n");
        }
        (last.to_owned(), body_of(0, lines.len() - 1))
    };
    // A body that is only placeholders (operands found already) or blank adds nothing.
    if body.trim().is_empty() || body.split_whitespace().all(|w| w == operands::PLACEHOLDER) {
        return lines.join("\n");
    }
    ops.push(Operand {
        kind: Kind::Quote,
        text: body,
        info: String::new(),
    });
    format!("{instruction} {}", operands::PLACEHOLDER)
}

/// A fence info string or tag name that says the block is code.
fn is_code_info(info: &str) -> bool {
    let i = info.trim().to_ascii_lowercase();
    !i.is_empty()
        && !matches!(
            i.as_str(),
            "text"
                | "txt"
                | "document"
                | "doc"
                | "article"
                | "email"
                | "mail"
                | "markdown"
                | "md"
                | "input"
                | "passage"
                | "report"
                | "story"
                | "transcript"
                | "notes"
                | "context"
                | "message"
                | "letter"
                | "review"
                // HTML containers of a mail body or page pasted as source.
                | "div"
                | "p"
                | "body"
                | "html"
                | "section"
                | "main"
                | "blockquote"
                | "span"
                | "font"
                | "td"
        )
}

/// A document or long prose block: compared without its transport noise.
fn is_document_text(op: &Operand) -> bool {
    match op.kind {
        Kind::Document => true,
        Kind::Block => op.text.len() > LONG_TEXT_CHARS && !is_code_info(&op.info),
        _ => false,
    }
}

/// An operand as it is compared: code keeps its relative indentation (it can carry meaning);
/// prose, quotes and data have their whitespace collapsed. Documents and long prose blocks
/// ([`is_document_text`]) also lose their transport noise, in [`parse`].
fn normalize_operand(op: &Operand) -> String {
    match op.kind {
        Kind::Code => normalize_code(&op.text),
        Kind::Block if is_code_info(&op.info) => normalize_code(&op.text),
        Kind::Data => op
            .text
            .lines()
            .map(collapse_ws)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n"),
        Kind::Block | Kind::Quote | Kind::Document => collapse_ws(&op.text),
    }
}

/// Trailing spaces and blank lines dropped, tabs as four spaces, the common indentation removed.
fn normalize_code(code: &str) -> String {
    let lines: Vec<String> = code
        .lines()
        .map(|l| l.replace('\t', "    ").trim_end().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let indent = lines
        .iter()
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| &l[indent..])
        .collect::<Vec<_>>()
        .join("\n")
}

/// (instruction, document) of a long text; `None` as document never happens for a long text,
/// but an instruction may be empty.
fn split_long(text: &str) -> (String, Option<String>) {
    let flat = collapse_ws(text);
    // An instruction stays within the first (or last) paragraph: a blank line ends it.
    let trimmed = text.trim();
    let lead = text.len() - text.trim_start().len();
    let first_break = paragraph_break(trimmed, false)
        .map(|(at, _)| flat_offset(&flat, non_ws(&text[..lead + at])));
    let last_break = paragraph_break(trimmed, true)
        .map(|(_, at)| flat_offset(&flat, non_ws(&text[..lead + at])));
    // Only sentences near either end can be the instruction: the ends are found there alone.
    let window = MAX_INSTRUCTION_CHARS + 1;
    let head_to = first_break
        .map_or(window, |b| b.min(window))
        .min(flat.len());
    let head_ends = sentence_ends(&flat, 0, head_to);
    // Head: a short first paragraph that asks for something ("What changed? Keep it short."),
    // else the leading sentences that read as a request.
    let head_paragraph = first_break.filter(|&b| {
        b <= MAX_INSTRUCTION_CHARS
            && paragraph_asks(&flat, 0, &head_ends, |s| is_instruction(s, true))
    });
    let head = head_paragraph.or_else(|| {
        head_ends
            .iter()
            .take(MAX_INSTRUCTION_SENTENCES)
            .take_while(|&&e| e <= MAX_INSTRUCTION_CHARS)
            .scan(0, |start, &end| {
                let sentence = &flat[*start..end];
                let first = *start == 0;
                *start = end;
                is_instruction(sentence, first).then_some(end)
            })
            .last()
    });
    // Tail: a short last paragraph that asks for something about the text above ("Can you boil
    // this memo down to 3 bullets?").
    let tail_paragraph = last_break.filter(|&b| b > 0 && flat.len() - b <= MAX_INSTRUCTION_CHARS);
    let tail_asks = |start: usize| {
        let ends = sentence_ends(&flat, start, flat.len());
        paragraph_asks(&flat, start, &ends, is_tail_instruction)
    };
    let tail_split = |start: usize| {
        let start = from_asking_line(text, &flat, start);
        let at = original_offset(text, &flat, start);
        let document = without_presentation(&text[..at]);
        (flat[start..].trim().to_owned(), Some(document.to_owned()))
    };
    if let Some(end) = head {
        // A head that only looks like a request (a label with a task word, "Book review:"; a
        // headline with "this spring" in it) gives way to a last paragraph that asks outright
        // and points back at the text ("Please write an overview of that book review.").
        let back = tail_paragraph.filter(|&start| {
            start >= end
                && !asks_outright(&flat[..end])
                && tail_asks(start)
                && points_back(&flat[start..])
        });
        if let Some(start) = back {
            return tail_split(start);
        }
        let end = to_asking_line_end(text, &flat, end);
        let (end, at) = to_line_end(text, &flat, end);
        let instruction = if head_paragraph.is_some() {
            flat[..end].trim_end()
        } else {
            &flat[..end]
        };
        return (
            instruction.to_owned(),
            Some(without_presentation(&text[at..]).to_owned()),
        );
    }
    if let Some(start) = tail_paragraph.filter(|&start| tail_asks(start)) {
        return tail_split(start);
    }
    // Else the trailing sentences that ask.
    let mut tail = flat.len();
    let mut from = flat.len().saturating_sub(window);
    while !flat.is_char_boundary(from) {
        from -= 1;
    }
    let tail_from = last_break.map_or(0, |b| b);
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            sentence_ends(&flat, from, flat.len())
                .into_iter()
                .filter(|&e| e < flat.len()),
        )
        .collect();
    for &start in starts.iter().rev().take(MAX_INSTRUCTION_SENTENCES) {
        if start == 0 || start < tail_from || flat.len() - start > MAX_INSTRUCTION_CHARS {
            break;
        }
        let sentence = &flat[start..tail];
        // The last sentence may ask by pointing at the text ("Condense this."); one before it
        // must ask outright: "... ends with this release." is the document's.
        let asks = if tail == flat.len() {
            is_tail_instruction(sentence)
        } else {
            let w = words(sentence);
            has_task(&w) || has_request_framing(&w) || refers_by_phrase(sentence)
        };
        if !asks {
            break;
        }
        tail = start;
    }
    if tail < flat.len() {
        let tail = from_asking_line(text, &flat, tail);
        let at = original_offset(text, &flat, tail);
        let document = without_presentation(&text[..at]);
        return (flat[tail..].to_owned(), Some(document.to_owned()));
    }
    (String::new(), Some(text.to_owned()))
}

/// A request after the text starts on a line of its own: lines at the top of the tail that do
/// not ask themselves (the document's last lines, "Questions can be sent to hr@example.com.")
/// go back to the document, whatever sentences the scan took with the request. `start` is an
/// offset in `flat`; so is the result. A copy pasted on one line keeps the scan's split (its
/// document then differs from the wrapped one's: a miss, never a wrong hit). Linear in the tail
/// (at most a few hundred characters).
fn from_asking_line(text: &str, flat: &str, start: usize) -> usize {
    let mut at = original_offset(text, flat, start);
    at += text[at..].len() - text[at..].trim_start().len();
    let mut start = start;
    // A request that starts inside a line takes the whole line: "Format: three bullets.
    // Language: Italian. Content: a summary of the text above." is one request, and what the
    // scan left of it must not end the document as a "Label: value" line.
    if let Some(nl) = text[..at].rfind('\n') {
        if is_line_rest(&text[nl + 1..at]) {
            at = nl + 1;
            start = flat_offset(flat, non_ws(&text[..at]));
        }
    }
    let mut offset = at;
    let mut first = true;
    for line in text[at..].split_inclusive('\n') {
        let here = offset;
        offset += line.len();
        if line.trim().is_empty() {
            continue;
        }
        if line_asks(line) {
            if first {
                return start;
            }
            return flat_offset(flat, non_ws(&text[..here]));
        }
        first = false;
    }
    start
}

/// A request before the text ends with the last of its lines that asks when the next line is
/// shaped like a title (no sentence end: "Notice to all users of Laboratory 3"): "just
/// summarize the part about X\nNotice to ...\nFrom: ..." is a one-line request over a document
/// whose first lines the scan took along (no blank line between them). A line that a wrapped
/// request continues opens in lower case and stays. `end` is an offset in `flat`; so is the
/// result. Linear in the head (at most a few hundred characters).
fn to_asking_line_end(text: &str, flat: &str, end: usize) -> usize {
    let at = original_offset(text, flat, end);
    let head = &text[..at];
    let mut offset = 0;
    let mut asked: Option<usize> = None;
    let mut first = true;
    for line in head.split_inclusive('\n') {
        let line_end = offset + line.trim_end().len();
        offset += line.len();
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        if line_asks(l) || (first && is_instruction(l, true)) {
            asked = Some(line_end);
        } else if let Some(cut) = asked {
            let title = !l.ends_with(['.', '!', '?', ':', ','])
                && l.chars().next().is_some_and(|c| !c.is_lowercase());
            if title && !is_handover_line(l) {
                return flat_offset(flat, non_ws(&text[..cut]));
            }
        }
        first = false;
    }
    end
}

/// A request before the text that ends inside a line takes the rest of the line ("Summarize
/// this in 3 bullets. Language: Italian."): what the scan left of it must not open the document
/// as a "Label: value" line. `end` is an offset in `flat`; returns it and its offset in `text`.
fn to_line_end(text: &str, flat: &str, end: usize) -> (usize, usize) {
    let at = original_offset(text, flat, end);
    match text[at..].find('\n') {
        Some(nl) if is_line_rest(&text[at..at + nl]) => {
            let at = at + nl;
            (flat_offset(flat, non_ws(&text[..at])), at)
        }
        _ => (end, at),
    }
}

/// What a request leaves of its line that it takes along: a few words, not blank.
fn is_line_rest(rest: &str) -> bool {
    let n = rest.split_whitespace().count();
    n > 0 && n <= LINE_REST_WORDS
}

/// A line holding a sentence that asks on its own: it points at the text, addresses the
/// assistant, opens with a task verb ("Condense ...", not "Questions can be sent ...") or asks a
/// question with a task word.
fn line_asks(line: &str) -> bool {
    let flat = collapse_ws(line);
    let mut from = 0;
    sentence_ends(&flat, 0, flat.len()).into_iter().any(|end| {
        let s = flat[from..end].trim();
        from = end;
        let w = words(s);
        let verb = |x: &String| !x.ends_with('s') || x.ends_with("ss");
        let opens_with_task = match w.first().map(String::as_str) {
            Some("please" | "pls" | "now" | "just" | "kindly") => {
                w.get(1).is_some_and(verb) && is_task_at(&w, 1)
            }
            Some(_) => verb(&w[0]) && is_task_at(&w, 0),
            None => false,
        };
        opens_with_task || asks_about_the_text(s, &w)
    })
}

/// A sentence that points at the text, addresses the assistant or asks a question with a task
/// word: what every test of a request after the text accepts, whatever it asks of the opening.
fn asks_about_the_text(s: &str, w: &[String]) -> bool {
    has_reference(s, w) || has_request_framing(w) || (has_task(w) && s.ends_with('?'))
}

/// A document whose request comes after it, without a first paragraph that only hands it over
/// ("Hi! Here are some meeting minutes:", "Hello there, here is an email:"): that paragraph is
/// the sender's, not the document's, and differs between two sendings of the same text.
fn without_presentation(document: &str) -> &str {
    const GREETING_WORDS: usize = 3;
    // "Hello there, here are some meeting minutes:"; a longer one may say something.
    const PRESENTATION_WORDS: usize = 8;
    // "Got this in my inbox:\nHere it is:": sentences that hand the text over (after a
    // greeting, "Hi there!"), read one at a time whether each has a line of its own or the text
    // was pasted on one line. A label ("Text:", "Post:") stays: the document's edges read it as
    // a line of its own; so does a greeting that hands nothing over ("Hi all," opens a mail).
    const HANDOVER_SENTENCES: usize = 4;
    let mut rest = document.trim_start();
    let mut trimmed = rest;
    for _ in 0..HANDOVER_SENTENCES {
        let Some(end) = first_sentence_end(rest) else {
            break;
        };
        let (sentence, after) = rest.split_at(end);
        if after.trim().is_empty() {
            break;
        }
        let s = sentence.trim();
        let w = words(s);
        if !w.is_empty() && w.iter().all(|x| is_greeting_word(x)) {
            rest = after.trim_start();
        } else if is_handover(s, &w) {
            rest = after.trim_start();
            trimmed = rest;
        } else {
            break;
        }
    }
    let Some((at, _)) = paragraph_break(trimmed, false) else {
        return trimmed;
    };
    if at > MAX_INSTRUCTION_CHARS {
        return trimmed;
    }
    let flat = collapse_ws(&trimmed[..at]);
    let mut start = 0;
    let mut presents = false;
    for end in sentence_ends(&flat, 0, flat.len()) {
        let sentence = flat[start..end].trim();
        start = end;
        if sentence.is_empty() {
            continue;
        }
        let w = words(sentence);
        if w.len() <= PRESENTATION_WORDS && presents_the_text(sentence, &w) {
            presents = true;
        } else if w.len() > GREETING_WORDS {
            return trimmed;
        }
    }
    if presents {
        &trimmed[at..]
    } else {
        trimmed
    }
}

/// Where the first sentence of `text` ends: at its first line break, or after `.`, `!`, `?` or
/// `:` and a space. `None` past [`MAX_INSTRUCTION_CHARS`]: a handover is short, and the scan
/// stays bounded.
fn first_sentence_end(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    for (i, &c) in b.iter().enumerate().take(MAX_INSTRUCTION_CHARS) {
        if c == b'\n' {
            return Some(i);
        }
        if matches!(c, b'.' | b'!' | b'?' | b':')
            && b.get(i + 1).is_some_and(u8::is_ascii_whitespace)
        {
            return Some(i + 1);
        }
    }
    None
}

/// Whether the paragraph `flat[from..]` cut at `ends` (its last end closes it) is a request:
/// at most [`MAX_INSTRUCTION_SENTENCES`] sentences, one of which `asks`, the others short
/// ("Keep it short.", "Can you do that?").
fn paragraph_asks(flat: &str, from: usize, ends: &[usize], asks: impl Fn(&str) -> bool) -> bool {
    const SHORT_WORDS: usize = 8;
    if ends.len() > MAX_INSTRUCTION_SENTENCES {
        return false;
    }
    let mut start = from;
    let mut asked = false;
    for &end in ends {
        let sentence = flat[start..end].trim();
        start = end;
        if sentence.is_empty() {
            continue;
        }
        if !asked && asks(sentence) {
            asked = true;
        } else if sentence.split_whitespace().count() > SHORT_WORDS {
            return false;
        }
    }
    asked
}

/// The first (or last) paragraph break: a blank line (a line break, then only spaces or tabs,
/// then another line break: trailing spaces do not hide a break) or a rule line of its own
/// ("---", "***", "==="). Returns where the paragraph before it ends and where the one after it
/// begins (equal for a blank line; a rule lies between them). A rule with no text after it
/// ends nothing for `last`. Linear.
fn paragraph_break(text: &str, last: bool) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    // The break at the line starting at `here`, if it is one.
    let at = |here: usize, line: &str| {
        let offset = here + line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let blank =
            here > 0 && line.ends_with('\n') && body.bytes().all(|c| c == b' ' || c == b'\t');
        let rule = {
            let t = body.trim();
            t.len() >= 3 && transport::is_separator(t)
        };
        if blank {
            Some((here - 1, here - 1))
        } else if rule && !(last && b[offset..].iter().all(u8::is_ascii_whitespace)) {
            Some((here.saturating_sub(1), offset))
        } else {
            None
        }
    };
    let mut lines = text.split_inclusive('\n');
    if last {
        let mut end = text.len();
        lines.rev().find_map(|line| {
            end -= line.len();
            at(end, line)
        })
    } else {
        let mut offset = 0;
        lines.find_map(|line| {
            let here = offset;
            offset += line.len();
            at(here, line)
        })
    }
}

/// Non-whitespace characters in `s`.
fn non_ws(s: &str) -> usize {
    s.chars().filter(|c| !c.is_whitespace()).count()
}

/// The byte offset in `flat` after `count` non-whitespace characters.
fn flat_offset(flat: &str, count: usize) -> usize {
    let mut seen = 0;
    for (i, c) in flat.char_indices() {
        if seen == count {
            return i;
        }
        if !c.is_whitespace() {
            seen += 1;
        }
    }
    flat.len()
}

/// The byte offset in `text` that corresponds to `flat_at` in `flat` (`text` with whitespace
/// collapsed): the same number of non-whitespace characters lies before both.
fn original_offset(text: &str, flat: &str, flat_at: usize) -> usize {
    let want = flat[..flat_at]
        .chars()
        .filter(|c| !c.is_whitespace())
        .count();
    let mut seen = 0;
    for (i, c) in text.char_indices() {
        if seen == want {
            return i;
        }
        if !c.is_whitespace() {
            seen += 1;
        }
    }
    text.len()
}

/// Byte offsets just past each sentence end in `flat[from..to]` (a whitespace-collapsed text):
/// after `.`, `!`, `?` or `:` (and a closing quote or bracket) followed by a space; `to` is the
/// last one.
fn sentence_ends(flat: &str, from: usize, to: usize) -> Vec<usize> {
    let b = &flat.as_bytes()[..to];
    let mut ends = Vec::new();
    for (i, &c) in b.iter().enumerate().skip(from) {
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
    ends.push(to);
    ends.dedup();
    ends
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

/// A task word ("summarize", "translate", "list" ...) in `words`. The soft tasks (list, write,
/// create, calculate) count only as those very words: their synonyms are everyday words in a
/// document's title ("Building B", "Update to our policy").
fn has_task(words: &[String]) -> bool {
    tasks_within(words, words.len())
}

/// A task word among the first `n` of `words` (the phrasal "boil ... down" may end past them).
fn tasks_within(words: &[String], n: usize) -> bool {
    (0..n.min(words.len())).any(|i| is_task_at(words, i))
}

fn is_task_at(words: &[String], i: usize) -> bool {
    // "boil the text down", "boil what I pasted down": the phrasal verb (not "boil the eggs").
    const PARTICLE_WITHIN: usize = 5;
    let w = &words[i];
    if w == "boil" {
        return words[i + 1..]
            .iter()
            .take(PARTICLE_WITHIN)
            .any(|x| x == "down");
    }
    let canon = lexicon::synonym(w).unwrap_or(w);
    let soft = lexicon::is_soft_task(canon);
    (lexicon::is_task(canon) && (!soft || canon == w)) || w == "tl;dr" || w == "tldr"
}

/// A reference to the text the request is about ("the following", "this article", "read this.").
fn has_reference(sentence: &str, words: &[String]) -> bool {
    // "this memo", "these notes": a demonstrative and the text it names ("that" is as often a
    // conjunction: "assertion that the media ...").
    let deictic = words.windows(2).any(|w| {
        matches!(w[0].as_str(), "this" | "these") && w[1].chars().all(char::is_alphabetic)
    });
    refers_by_phrase(sentence)
        || deictic
        || pointed_at_by_its_sender(words)
        || words.last().is_some_and(|w| w == "this" || w == "it")
}

/// The sender pointing at what they pasted: "what I pasted", "the text I've pasted", "what I
/// sent". Pasting is the chat's own act; "sent" or "shared" only after "what" ("I sent the
/// invoice on Monday" opens many a letter).
fn pointed_at_by_its_sender(words: &[String]) -> bool {
    let sender = |w: &str| matches!(w, "i" | "i've" | "we" | "we've");
    words.windows(2).any(|p| sender(&p[0]) && p[1] == "pasted")
        || words.windows(3).any(|p| {
            sender(&p[0]) && p[1] == "just" && p[2] == "pasted"
                || (p[0] == "what"
                    && sender(&p[1])
                    && matches!(p[2].as_str(), "sent" | "shared" | "forwarded" | "copied"))
        })
}

/// "the following", "the above", "below" ...: a reference that only a request makes.
fn refers_by_phrase(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    [
        "the following",
        "the above",
        "the below",
        "the attached",
        "below",
        "above",
    ]
    .iter()
    .any(|p| lower.contains(p))
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
/// A sentence that reads as a request: a task word, a reference to the text, or request framing
/// (see [`is_instruction`]'s body); a header such as "From:" or "Postmortem:" is none.
fn is_instruction(sentence: &str, first: bool) -> bool {
    let s = sentence.trim();
    if s.is_empty() {
        return false;
    }
    // "On Mon, ... Ann <ann@example.com> wrote:" heads a quoted message ("wrote" is a task
    // word's form): a colon-ended line naming an address asks for nothing.
    if transport::is_wrote_line(s)
        || (s.ends_with(':') && edges::names_an_address(s))
        || is_address_only(s)
        || transport::is_banner_line(s)
        || transport::is_footer_line(s)
        || is_document_label(s)
    {
        return false;
    }
    let w = words(s);
    if presents_the_text(s, &w) {
        return false;
    }
    if first {
        // A task word far into a sentence ("Quillstone raises $22 million to expand ...") is
        // the document's headline, not a request.
        let early = tasks_within(&w, 5);
        return early
            || (has_task(&w)
                && (s.ends_with(['?', ':']) || (s.ends_with(['.', '!']) && w.len() <= 12)))
            || has_reference(s, &w)
            || has_request_framing(&w);
    }
    // A later sentence continues the request only if it points at the text, asks ("Could you
    // sum it up for me?"), or is a short task: request framing ("Please be advised that ...")
    // and task words ("... would make her a celebrity") open many a document's first sentence.
    (has_reference(s, &w) && w.len() <= 16)
        || (has_request_framing(&w) && s.ends_with('?'))
        || (has_task(&w) && w.len() <= 12)
}

/// A leading request that asks outright: it opens with a task ("Summarize ...", "Please
/// condense ..."), addresses the assistant, points forward with a task ("Summarize the
/// following") or asks a question. A pointer alone ("See below.") hands the text over: the
/// request may follow it.
fn asks_outright(head: &str) -> bool {
    let s = head.trim();
    let w = words(s);
    let opens_with_task = match w.first().map(String::as_str) {
        Some("please" | "pls") => w.len() > 1 && is_task_at(&w, 1),
        Some(_) => is_task_at(&w, 0),
        None => false,
    };
    opens_with_task
        || has_request_framing(&w)
        || (refers_by_phrase(s) && has_task(&w))
        || s.ends_with('?')
}

/// A trailing request that names the text it is about: "the above", "this memo", "that book
/// review", "those minutes".
fn points_back(tail: &str) -> bool {
    let w = words(tail);
    has_reference(tail, &w)
        || w.windows(2).any(|p| {
            matches!(p[0].as_str(), "that" | "those") && p[1].chars().all(char::is_alphabetic)
        })
}

/// A trailing instruction points back at the text, addresses the assistant, asks a question
/// with a task word, or opens with one ("Condense ...", "Now summarize ..."): a statement that
/// only mentions a task ("... has promised a parking review") is the document's last sentence.
fn is_tail_instruction(sentence: &str) -> bool {
    let s = sentence.trim();
    if is_address_only(s) {
        return false;
    }
    let w = words(s);
    let opens_with_task = tasks_within(&w, 3);
    asks_about_the_text(s, &w) || opens_with_task
}

/// "Here is a hotel review:", "Below is the memo", "My colleague sent me this:", "See below.":
/// a sentence that hands the text over and asks nothing (no task word, no request framing, no
/// question, no figure; a colon at its end or at most eight words). The request, if any, is
/// elsewhere (often after the text). Besides the "here is" openings, it needs a verb of handing
/// over ("sent", "got", "pasting", "see" ...) and a word for what is handed over ("this",
/// "below", "a document" ...): "Fix this:" names no handing over and stays a request.
fn presents_the_text(s: &str, w: &[String]) -> bool {
    const MAX_WORDS: usize = 8;
    let rest = &w[w.iter().take_while(|x| is_greeting_word(x)).count()..];
    let opens = match rest {
        [a, b, ..] => matches!(
            (a.as_str(), b.as_str()),
            ("here", "is" | "are" | "comes")
                | ("here's" | "heres", _)
                | ("below" | "attached" | "enclosed", "is" | "are")
                | ("this" | "that", "is")
                | ("following", "is")
        ),
        _ => false,
    };
    // "I have this document:" ("I don't have time to read this." hands nothing over).
    let has_this = || {
        rest.windows(2)
            .any(|p| p[0] == "have" && matches!(p[1].as_str(), "this" | "these"))
    };
    let hands_over = || {
        has_this()
            || rest.iter().any(|x| {
                matches!(
                    x.as_str(),
                    "sent"
                        | "got"
                        | "received"
                        | "forwarded"
                        | "found"
                        | "pasting"
                        | "sharing"
                        | "forwarding"
                        | "attaching"
                        | "see"
                )
            }) && rest.iter().any(|x| HANDED_OVER.contains(&x.as_str()))
    };
    let short = s.ends_with(':') || w.len() <= MAX_WORDS;
    short
        && !has_request_framing(w)
        && (opens
            || (w.len() <= 2 * MAX_WORDS
                && !s.ends_with('?')
                && !has_task(w)
                && !s.contains(|c: char| c.is_ascii_digit())
                && hands_over()))
}

/// What a handover names as handed over: "sent me *this*", "see *below*", "pasting a *document*".
const HANDED_OVER: &[&str] = &[
    "this",
    "these",
    "below",
    "here",
    "following",
    "attached",
    "something",
    "document",
    "text",
];

/// "hi", "hello", "ok", "so" ...: words that open a message and say nothing.
fn is_greeting_word(w: &str) -> bool {
    matches!(
        w,
        "hey" | "hi" | "hello" | "there" | "ok" | "okay" | "so" | "all" | "team"
    )
}

/// A line of a short prompt that only hands the text over ("My colleague sent me this:", "Got
/// this in my inbox:") or greets ("Hi there!"): the sender's, neither the request nor the text.
/// Every word must be one of handing over (who sent what, where it came from): "Got this error
/// on Windows:" says where the error happens, and stays in the request.
fn is_handover_line(line: &str) -> bool {
    let s = line.trim();
    is_handover(s, &words(s))
}

/// [`is_handover_line`] of a trimmed line `s` and its words `w`.
fn is_handover(s: &str, w: &[String]) -> bool {
    // "Here are the minutes:"; a longer line may say something ("..., and note that ...").
    const PRESENTATION_WORDS: usize = 8;
    let handover_word = |x: &String| {
        is_greeting_word(x)
            || HANDED_OVER.contains(&x.as_str())
            || matches!(
                x.as_str(),
                "i" | "i'm"
                    | "i've"
                    | "me"
                    | "my"
                    | "we"
                    | "we've"
                    | "us"
                    | "our"
                    | "someone"
                    | "a"
                    | "an"
                    | "the"
                    | "it"
                    | "here's"
                    | "heres"
                    | "is"
                    | "are"
                    | "just"
                    | "today"
                    | "sent"
                    | "got"
                    | "received"
                    | "forwarded"
                    | "pasting"
                    | "sharing"
                    | "see"
                    | "have"
                    | "colleague"
                    | "coworker"
                    | "boss"
                    | "friend"
                    | "from"
                    | "in"
                    | "inbox"
                    | "over"
                    | "work"
            )
    };
    !w.is_empty()
        && w.iter().all(handover_word)
        && (w.iter().all(|x| is_greeting_word(x))
            || (w.len() <= PRESENTATION_WORDS && presents_the_text(s, w)))
}

/// "Email:", "Title: The coffee rule", "Course announcement: ...": a document's own label (a
/// noun naming a kind of text, before a colon), not a request, though "email" and "title" are
/// task words elsewhere ("Write an email", "Suggest a title").
fn is_document_label(s: &str) -> bool {
    const LABELS: &[&str] = &[
        "email",
        "e-mail",
        "mail",
        "title",
        "post",
        "article",
        "report",
        "memo",
        "notice",
        "text",
        "document",
        "message",
        "letter",
        "update",
        "abstract",
        "transcript",
        "story",
        "announcement",
        "minutes",
        "policy",
        "ticket",
        "notes",
        "note",
        "release",
        "subject",
        "headline",
        "excerpt",
        "thread",
        "page",
        "posting",
        "advert",
        "ad",
    ];
    let Some((label, _)) = s.split_once(':') else {
        return false;
    };
    let label = label
        .trim()
        .trim_start_matches(['"', '\'', '[', '(', '*'])
        .to_lowercase();
    let n = label.split_whitespace().count();
    (1..=2).contains(&n)
        && label
            .split_whitespace()
            .last()
            .is_some_and(|w| LABELS.contains(&w))
}

/// A line that is an address or a link and little else ("press@example.com"): no request.
fn is_address_only(s: &str) -> bool {
    edges::names_an_address(s) && s.split_whitespace().count() <= 3
}

/// The number of operands in an instruction, for tests.
#[cfg(test)]
fn placeholders(p: &Parsed) -> usize {
    p.instruction.matches(operands::PLACEHOLDER).count()
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
    fn same_document_rewrapped_forwarded_or_with_a_footer_has_the_same_operands() {
        let a = parse(&format!("Summarize this:\n\n{BODY}"));
        assert!(a.document);
        assert_eq!(a.instruction, "Summarize this:");
        let rewrapped = BODY.replace(". ", ".\n\n");
        let b = parse(&format!(
            "Please summarize the following article:\n{rewrapped}\n\nSent from my iPhone\n"
        ));
        assert_eq!(b.instruction, "Please summarize the following article:");
        assert_eq!(a.operands, b.operands);
        let forwarded = parse(&format!(
            "Summarize this:\n\n---------- Forwarded message ---------\nFrom: Ann <ann@example.com>\nDate: Mon, 3 Jun 2024\nSubject: Budget\nTo: Bob <bob@example.com>\n\n{BODY}\n\n--\nConfidential"
        ));
        assert_eq!(forwarded.operands, a.operands);
        assert_eq!(forwarded.instruction, "Summarize this:");
    }

    /// The same document, whatever the two senders put around it.
    fn same_doc(a: &Parsed, b: &Parsed) -> bool {
        match (&a.doc, &b.doc) {
            (Some(x), Some(y)) => super::super::same_document(x.edges(), y.edges()),
            _ => false,
        }
    }

    #[test]
    fn a_request_after_the_text_is_split_at_its_own_line() {
        let plain = parse(&format!("{BODY}\n\nSummarize the above."));
        // Glued to the document's last line: the document keeps that line.
        let glued = parse(&format!(
            "{BODY}\nQuestions can be sent to hr@example.com.\nWhat's the above about?"
        ));
        assert_eq!(glued.instruction, "What's the above about?");
        let own = parse(&format!(
            "{BODY}\nQuestions can be sent to hr@example.com.\n\nGive me the gist of the above."
        ));
        assert!(same_doc(&glued, &own));
        // A request that starts inside a line takes the whole line: its "Label: value" parts are
        // the request's, never an ignorable last line of the document.
        let labelled = parse(&format!(
            "{BODY}\nFormat: three bullets. Language: Italian. Content: a summary of the text above."
        ));
        assert!(labelled.instruction.starts_with("Format: three bullets."));
        // ... and so does one before the text that leaves a few words on its line.
        let head = parse(&format!(
            "Summarize this in 3 bullets. Language: Italian.\n{BODY}"
        ));
        assert!(head.instruction.ends_with("Language: Italian."));
        assert!(same_doc(&head, &plain));
    }

    #[test]
    fn a_label_or_headline_gives_way_to_a_request_after_the_text() {
        let review = format!("Book review: The Lantern Keeper by Imogen Sallis\n\n{BODY}");
        let p = parse(&format!(
            "{review}\n\nPlease write a one-paragraph overview of that book review."
        ));
        assert_eq!(
            p.instruction,
            "Please write a one-paragraph overview of that book review."
        );
        // A headline that mentions "this spring" is the document's, not a request.
        let news = format!(
            "\"Skylark Airlines will add four routes this spring, the company said on Monday.\n\n{BODY}\""
        );
        let p = parse(&format!(
            "{news}\n\nsum up the news article above in Italian please"
        ));
        assert_eq!(
            p.instruction,
            "sum up the news article above in Italian please"
        );
        // A request that asks outright keeps its place before the text.
        let p = parse(&format!(
            "Summarize this:\n\n{BODY}\n\nCould you send the above to the team by Friday?"
        ));
        assert_eq!(p.instruction, "Summarize this:");
    }

    #[test]
    fn greetings_and_presentations_around_a_document_are_the_senders() {
        let a = parse(&format!(
            "Hi! Here are some meeting minutes:\n\n{BODY}\n\nSummarize the minutes above in 5 bullet points."
        ));
        let b = parse(&format!(
            "Hello there, here are some meeting minutes:\n\n{BODY}\n\nGive me the key points of these minutes as five bullets."
        ));
        let c = parse(&format!(
            "Hey, quick favour.\n\n{BODY}\n\nPlease give me five bullet points summarizing the text above."
        ));
        let bare = parse(&format!("Summarize this:\n\n{BODY}"));
        assert_eq!(
            a.operands, b.operands,
            "the presentation is not the document"
        );
        assert!(
            same_doc(&a, &c),
            "a greeting alone on the first line is an edge"
        );
        assert!(same_doc(&bare, &c));
        // Two different first lines are two documents.
        let d = parse(&format!(
            "Sales fell.\n\n{BODY}\n\nPlease give me five bullet points summarizing the text above."
        ));
        let e = parse(&format!(
            "Sales rose.\n\n{BODY}\n\nPlease give me five bullet points summarizing the text above."
        ));
        assert!(!same_doc(&d, &e));
        // A first paragraph that says more than hello stays in the document.
        let f = parse(&format!(
            "Here are the minutes, and note that the vote was postponed to June:\n\n{BODY}\n\nSummarize the above."
        ));
        assert_ne!(f.operands, bare.operands);
    }

    #[test]
    fn a_pointer_or_a_handover_gives_way_to_the_request_after_the_text() {
        let asked_first = |doc: &str| {
            parse(&format!(
                "Summarize the attached in a formal tone.\n\nHere it is:\n{doc}"
            ))
        };
        let head = asked_first(BODY);
        // "See below." only points; the rules around the text are paragraph breaks.
        let ruled = parse(&format!(
            "See below.\n---\n{BODY}\n---\nProvide a summary of what I pasted above in a formal tone."
        ));
        assert_eq!(
            ruled.instruction,
            "Provide a summary of what I pasted above in a formal tone."
        );
        assert!(same_doc(&head, &ruled));
        // Handed over, then quoted, the request after it.
        let quoted = parse(&format!(
            "My colleague sent me this:\n\n\"{BODY}\"\n\nCould you sum this up in a formal tone?"
        ));
        assert_eq!(
            quoted.instruction,
            "Could you sum this up in a formal tone?"
        );
        assert!(same_doc(&head, &quoted));
        // In a fence: the handover is neither the request nor an operand of its own.
        let long = format!("{BODY}\n\n{}", BODY.replace("Tuesday", "Friday"));
        let head = asked_first(&long);
        let fenced = parse(&format!(
            "Got this in my inbox:\n\n```\n{long}\n```\n\nCould you sum this up in a formal tone?"
        ));
        assert_eq!(
            fenced.instruction,
            format!(
                "{} Could you sum this up in a formal tone?",
                operands::PLACEHOLDER
            )
        );
        assert!(same_doc(&head, &fenced));
        // Where the error happened is part of the request.
        let on = |os: &str| {
            parse(&format!(
                "Got this error on {os}:\n```\nError: cannot open file\n```"
            ))
        };
        assert_ne!(on("Windows").instruction, on("Linux").instruction);
        let long_on = |os: &str| {
            parse(&format!(
                "Got this error on {os}:\n{long}\n\nWhat does this mean?"
            ))
        };
        assert!(!same_doc(&long_on("Windows"), &long_on("Linux")));
        // A request names no handing over, and stays.
        let fix = parse("Fix this:\n```\nlet x = 1\n```");
        assert!(
            fix.instruction.starts_with("Fix this:"),
            "{:?}",
            fix.instruction
        );
        // "I don't have time to read this." hands nothing over.
        let busy = parse(&format!(
            "I don't have time to read this. Could you sum it up for me? {BODY}"
        ));
        assert_eq!(
            busy.instruction,
            "I don't have time to read this. Could you sum it up for me?"
        );
    }

    #[test]
    fn a_one_line_request_ends_before_a_title_line_of_the_text() {
        let head = parse(&format!(
            "Summarize this.\n\nNotice to all residents of Elm Road\n{BODY}"
        ));
        let glued = parse(&format!(
            "just summarize the part about the vote\nNotice to all residents of Elm Road\n{BODY}"
        ));
        assert_eq!(glued.instruction, "just summarize the part about the vote");
        assert!(same_doc(&head, &glued));
        // A request wrapped over two lines continues in lower case and stays whole.
        let wrapped = parse(&format!(
            "Summarize the following article\nin three bullet points.\n\n{BODY}"
        ));
        assert_eq!(
            wrapped.instruction,
            "Summarize the following article in three bullet points."
        );
    }

    #[test]
    fn boiling_a_text_down_is_a_request_boiling_eggs_is_not() {
        let boil = parse(&format!(
            "{BODY}\n\nBoil the council notice down to 30 words."
        ));
        assert_eq!(
            boil.instruction,
            "Boil the council notice down to 30 words."
        );
        let w = |s: &str| words(s);
        assert!(has_task(&w("Boil what I pasted down to 50 words.")));
        assert!(!has_task(&w(
            "Boil the eggs for five minutes, then cool them down."
        )));
    }

    #[test]
    fn changed_or_truncated_documents_differ() {
        let base = parse(&format!("Summarize this:\n{BODY}")).operands;
        let number = parse(&format!("Summarize this:\n{}", BODY.replace("4.2", "4.3"))).operands;
        let name = parse(&format!(
            "Summarize this:\n{}",
            BODY.replace("Berg", "Borg")
        ))
        .operands;
        let cut = parse(&format!("Summarize this:\n{}", &BODY[..BODY.len() - 40])).operands;
        assert_ne!(base, number);
        assert_ne!(base, name);
        assert_ne!(base, cut);
    }

    #[test]
    fn instruction_at_the_end_or_around_a_fence() {
        let tail = parse(&format!("{BODY}\n\nTranslate the above into German."));
        assert_eq!(tail.instruction, "Translate the above into German.");
        let fenced = parse(&format!(
            "Summarize the text in triple quotes.\n\"\"\"{BODY}\"\"\""
        ));
        assert_eq!(fenced.instruction, "Summarize the text in triple quotes. §");
        assert!(fenced.document);
        let plain = parse(&format!("{BODY}\n{BODY}"));
        assert_eq!(plain.instruction, "");
        assert!(plain.operands.is_some());
    }

    #[test]
    fn short_paragraphs_that_ask_are_the_instruction_at_either_end() {
        let head = parse(&format!(
            "What does this memo change for staff? Keep it short.\n\nMEMO\n\n{BODY}"
        ));
        assert_eq!(
            head.instruction,
            "What does this memo change for staff? Keep it short."
        );
        let lead_in = parse(&format!(
            "Keep it short: what changed for staff in this memo?\n\nMEMO\n\n{BODY}"
        ));
        assert_eq!(
            lead_in.instruction,
            "Keep it short: what changed for staff in this memo?"
        );
        // After a sign-off without a full stop, with a trailing "Can you do that?".
        let tail = parse(&format!(
            "MEMO\n\n{BODY}\n\nPer\n\nI need the short version of this memo. Can you do that?"
        ));
        assert_eq!(
            tail.instruction,
            "I need the short version of this memo. Can you do that?"
        );
        let first = parse(&format!("Summarize this memo.\n\nMEMO\n\n{BODY}\n\nPer"));
        let last = parse(&format!("MEMO\n\n{BODY}\n\nPer\n\nSummarize this memo."));
        assert_eq!(first.operands, last.operands);
        // A document's title is no request, even with a word that can name a task ("building").
        let titled = parse(&format!(
            "Incident report - Building B\n\n{BODY}\n\nSummarize this report."
        ));
        assert_eq!(titled.instruction, "Summarize this report.");
    }

    #[test]
    fn whitespace_and_one_line_pastes_split_the_same_way() {
        for instruction in [
            "Summarize the following article:",
            "Please summarize this news article.",
            "I don't have time to read this. Could you sum it up for me?",
            "TL;DR of the article below, please.",
        ] {
            let base = parse(&format!("{instruction}\n\n{BODY}"));
            assert_eq!(base.instruction, instruction);
            for v in [
                format!("{instruction} {BODY}"),
                format!("{instruction}\r\n\r\n{BODY}\r\n"),
                format!("\n{instruction}\n\n\n    {}\n\n", BODY.replace(". ", ".  ")),
            ] {
                assert_eq!(parse(&v), base, "{v:?}");
            }
        }
    }

    #[test]
    fn short_prompts_and_instructions_are_never_stripped() {
        // A planted line is part of the question, not transport noise.
        let a = parse("Write a welcome e-mail for new customers.");
        let b = parse("Write a welcome e-mail for new customers.\nInclude an unsubscribe link.");
        assert_ne!(a.instruction, b.instruction);
        let c = parse("How do I reset my password?\n\nSent from my iPhone");
        assert_eq!(
            c.instruction,
            "How do I reset my password? Sent from my iPhone"
        );
    }

    #[test]
    fn code_and_quotes_are_operands_matched_exactly() {
        let a =
            parse("What does this print?\n```js\nconsole.log(0 == \"0\", null == undefined)\n```");
        let b = parse(
            "What is the output of this?\n```js\nconsole.log(0 == \"0\", null == undefined)\n```",
        );
        let c =
            parse("What does this print?\n```js\nconsole.log(0 == \"0\", null === undefined)\n```");
        assert_eq!(a.operands, b.operands);
        assert_ne!(a.operands, c.operands);
        assert_eq!(placeholders(&a), 1);
        // Re-indenting code keeps its fingerprint; changing its structure does not.
        let d = parse("Why?\n```py\n    if x:\n        y()\n```");
        let e = parse("Why?\n```py\nif x:\n    y()\n```");
        let f = parse("Why?\n```py\nif x:\ny()\n```");
        assert_eq!(d.operands, e.operands);
        assert_ne!(e.operands, f.operands);
        // The text after an instruction line ending in a colon, or before a line pointing back.
        let t1 = parse("Translate this into French:\nThe meeting moved to Thursday.");
        let t2 = parse("Translate the following into French:\nThe meeting moved to Thursday.");
        let t3 = parse("The meeting moved to Thursday.\nTranslate the above into French.");
        let t4 = parse("Translate this into French:\nThe meeting moved to Tuesday.");
        assert_eq!(t1.operands, t2.operands);
        assert_eq!(t1.operands, t3.operands);
        assert_ne!(t1.operands, t4.operands);
        assert_eq!(t1.instruction, "Translate this into French: §");
        let plain = parse("How do I reset my password?\nI use the mobile app.");
        assert_eq!(plain.operands, None);
        let q1 = parse("Translate 'Good morning, everyone' into French.");
        let q2 = parse("How do you say 'Good morning, everyone' in French?");
        assert_eq!(q1.operands, q2.operands);
        assert_eq!(q1.instruction, "Translate § into French.");
        assert!(!q1.mentions.is_empty());
    }
}
