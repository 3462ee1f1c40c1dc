//! Transport noise around a document: what mail clients, forwards, replies and web pages wrap
//! around the text a summarization request is about. It is dropped from the document's
//! *fingerprint* only (never from an instruction, never from a short prompt), and only where it
//! can be told apart from content by its shape:
//!
//! * at the **top**: forward separators ("---------- Forwarded message ---------", "-----Original
//!   Message-----", "Begin forwarded message:"), mail header lines (`From:`, `Sent:`, `To:`,
//!   `Cc:`, `Date:`, `Subject:`, `Reply-To:`), "On <date>, <name> wrote:", and web-page chrome
//!   (navigation lines such as "Home | World | Business" or "Home > News", cookie banners, short
//!   chrome lines: "Skip to content", "Share this article", "Advertisement");
//! * at the **bottom**: mail footers ("Sent from my iPhone", unsubscribe, mailing-list,
//!   virus-scan and confidentiality notices, copyright lines), sign-off words ("Best regards,"),
//!   separator rules, and web chrome ("Related stories" and the headlines under it, "Share this
//!   article", "Follow us", "Advertisement", cookie banners);
//! * **anywhere**: reply markers (`> ` at the start of a line: the marker goes, the text stays)
//!   and lines that are only "Advertisement".
//!
//! A name under a sign-off is content (who wrote the mail can change its summary), and so is
//! everything between the zones: a truncated document, or one with a number or a name changed,
//! keeps a different fingerprint. Each rule needs a shape or phrase that does not occur in
//! ordinary prose ("scanned for viruses", "intended only for", a `Subject:` header), not just a
//! topic word. Linear in the document: every line is looked at a bounded number of times.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

/// The document's lines without transport noise, joined by `\n`. Never empty when `doc` is not.
pub fn strip(doc: &str) -> String {
    let doc = html_text(doc);
    let doc = unnumber_lines(&doc);
    let lines: Vec<&str> = doc.lines().collect();
    let (start, end) = zones(&lines);
    if start >= end {
        return doc.into_owned();
    }
    clean_lines(&lines[start..end], doc.len())
}

/// The document without the noise that may stand anywhere in it (markup, line numbers, reply
/// markers, "Advertisement" lines, page furniture), its top and bottom kept: what
/// `super::edges` reads the edges from.
#[cfg(test)]
pub fn clean(doc: &str) -> String {
    strip_and_clean(doc).1
}

/// [`strip`] and [`clean`] of one document, its markup and numbering read once.
pub fn strip_and_clean(doc: &str) -> (String, String) {
    let doc = html_text(doc);
    let doc = unnumber_lines(&doc);
    let lines: Vec<&str> = doc.lines().collect();
    let cleaned = clean_lines(&lines, doc.len());
    let (start, end) = zones(&lines);
    let stripped = if start >= end {
        doc.into_owned()
    } else if (start, end) == (0, lines.len()) {
        cleaned.clone()
    } else {
        clean_lines(&lines[start..end], doc.len())
    };
    (stripped, cleaned)
}

/// Where the content starts and ends: the lines between the top and bottom noise zones.
fn zones(lines: &[&str]) -> (usize, usize) {
    let mut start = 0;
    let mut end = lines.len();
    // Top zone.
    let mut forwarded = false;
    while start < end {
        // Quoted lines ("> On ... wrote:") are read without their reply markers.
        let l = strip_reply_marker(lines[start]).trim();
        if l.is_empty() || is_chrome_line(l) || is_banner_line(l) || is_spaced_nav(l) {
            start += 1;
            continue;
        }
        // A forward separator heads the forward's header block; "... wrote:" heads the quoted
        // message itself (a `Subject:` line after it is the message's own).
        if is_forward_separator(l) || is_outlook_rule(l, lines.get(start + 1)) {
            forwarded = true;
            start += 1;
            continue;
        }
        if is_wrote_line(l) {
            start += 1;
            continue;
        }
        // A forwarder's note ("See below.", "FYI", "Sent from my iPhone") right above a
        // forward: a short line without figures, or a mail footer line.
        if is_forward_note(l) && forward_follows(&lines[start + 1..end]) {
            start += 1;
            continue;
        }
        if is_header_line(l) {
            // A mail header block is a forward's (after a separator, or naming an address or an
            // Outlook `Sent:`); at the top of a memo (`To: All staff`) it is the memo's own.
            let mut block = start + 1;
            while block < end
                && (is_header_line(strip_reply_marker(lines[block]).trim())
                    || is_header_continuation(lines[block]))
            {
                block += 1;
            }
            let mail = forwarded
                || lines[start..block].iter().any(|x| {
                    x.contains('@')
                        || strip_reply_marker(x)
                            .trim()
                            .to_ascii_lowercase()
                            .starts_with("sent:")
                });
            if !mail {
                break;
            }
            // One header block per forward: a second one is the forwarded memo's own.
            forwarded = false;
            start = block;
            continue;
        }
        // A short line right before chrome is the site's name ("Tallyho" over its menu).
        let next_is_chrome = lines
            .get(start + 1)
            .is_some_and(|n| is_chrome_line(n.trim()) || is_spaced_nav(n.trim()));
        if next_is_chrome && l.split_whitespace().count() <= 4 && !l.ends_with(['.', '!', '?', ':'])
        {
            start += 1;
            continue;
        }
        break;
    }
    // Bottom zone.
    if let Some(r) = related_block(&lines[start..end]) {
        end = start + r;
    }
    if let Some(r) = signature_block(&lines[start..end]) {
        end = start + r;
    }
    let noise = |l: &str| l.is_empty() || is_footer_line(l) || is_separator(l) || is_chrome_line(l);
    // Each line is read as noise once: as the previous line of one step, it is the next step's.
    let mut known: Option<bool> = None;
    while end > start {
        let l = lines[end - 1].trim();
        let is_noise = known.take().unwrap_or_else(|| noise(l));
        if !is_noise {
            break;
        }
        // A line of its own, not the tail of a re-wrapped sentence: what comes before it is a
        // blank line, the end of a sentence, or noise itself.
        let own_line = end - 1 == start || l.is_empty() || {
            let prev = lines[end - 2].trim();
            prev.is_empty() || prev.ends_with(['.', '!', '?', ':', '"', '\'', ')']) || {
                let n = noise(prev);
                known = Some(n);
                n
            }
        };
        if !own_line {
            break;
        }
        end -= 1;
    }
    (start, end)
}

/// `lines` joined by `\n`, without reply markers, "Advertisement" lines and page furniture.
fn clean_lines(lines: &[&str], capacity: usize) -> String {
    let mut out = String::with_capacity(capacity);
    // Page furniture: "Page 2 of 5" lines, and the running header right after one (a line in
    // capitals) when more text follows.
    let mut after_page_break = false;
    for (i, line) in lines.iter().enumerate() {
        let line = strip_reply_marker(line);
        let t = line.trim();
        if t.eq_ignore_ascii_case("advertisement") {
            continue;
        }
        if is_page_marker(t) {
            after_page_break = i + 1 < lines.len();
            continue;
        }
        if after_page_break && !t.is_empty() {
            after_page_break = false;
            if is_running_header(t) {
                continue;
            }
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

/// Tags that break a line when HTML is read as text.
const BLOCK_TAGS: &[&str] = &[
    "p",
    "br",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
];
/// Markup a mail body or a web page pasted as source: the text without its tags, `<p>`, `<br>`
/// and other block tags as line breaks, and the common entities decoded. Only a text with at
/// least two block tags is read as HTML ("if a < b and c > d" is not). Linear.
fn html_text(doc: &str) -> std::borrow::Cow<'_, str> {
    let block_tags = doc
        .match_indices('<')
        .filter(|&(i, _)| tag_name(&doc[i..]).is_some_and(|(name, _)| BLOCK_TAGS.contains(&name)))
        .take(2)
        .count();
    if block_tags < 2 {
        return std::borrow::Cow::Borrowed(doc);
    }
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(at) = rest.find(['<', '&']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with('<') {
            if let Some((name, len)) = tag_name(rest) {
                if BLOCK_TAGS.contains(&name) {
                    out.push('\n');
                }
                rest = &rest[len..];
                continue;
            }
        } else if let Some((c, len)) = entity(rest) {
            out.push(c);
            rest = &rest[len..];
            continue;
        }
        out.push_str(&rest[..1]);
        rest = &rest[1..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// `<p>`, `</div>`, `<br/>`, `<a href="...">` at the start of `s`: the lowercase ASCII name (as
/// a slice of `s` when it is lowercase already, else `None` for other names) and the tag's
/// length. A tag is at most 200 bytes and has no line break.
fn tag_name(s: &str) -> Option<(&str, usize)> {
    // The scan stops at the next '<' too: every byte is looked at once however many '<' a
    // hostile text holds.
    let end = s.as_bytes()[1..]
        .iter()
        .take(200)
        .position(|&b| b == b'>' || b == b'<' || b == b'\n')?
        + 1;
    if s.as_bytes()[end] != b'>' {
        return None;
    }
    let inner = &s[1..end];
    let name = inner.trim_start_matches('/');
    let len = name
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let name = &name[..len];
    (len > 0 && name.as_bytes()[0].is_ascii_alphabetic()).then_some((name, end + 1))
}

/// `&nbsp;`, `&amp;`, `&#39;`, `&#x2019;` at the start of `s`: the character and the length.
fn entity(s: &str) -> Option<(char, usize)> {
    let end = s.as_bytes().iter().take(12).position(|&b| b == b';')?;
    let name = &s[1..end];
    let c = match name {
        "nbsp" => ' ',
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code = match name.strip_prefix('#')? {
                hex if hex.starts_with(['x', 'X']) => u32::from_str_radix(&hex[1..], 16).ok()?,
                dec => dec.parse().ok()?,
            };
            match char::from_u32(code)? {
                '\u{a0}' => ' ',
                c => c,
            }
        }
    };
    Some((c, end + 1))
}

/// A text pasted with its line numbers (a PDF or an editor: "1  Title", "2", "3  First ..."):
/// the numbers dropped when every non-blank line from the first numbered one on starts with one
/// and they count up by one to the last (at least five lines; at most three lines before them,
/// such as a "Report:" label, stay as they are). Anything else is returned as it is.
fn unnumber_lines(doc: &str) -> std::borrow::Cow<'_, str> {
    let number = |l: &str| -> Option<u64> {
        let t = l.trim_start();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        let after = t.as_bytes().get(digits);
        if digits == 0 || digits > 6 || after.is_some_and(|b| !b.is_ascii_whitespace()) {
            return None;
        }
        t[..digits].parse().ok()
    };
    let mut expected = None;
    let mut count = 0;
    let mut before = 0;
    for l in doc.lines().filter(|l| !l.trim().is_empty()) {
        let Some(n) = number(l) else {
            if expected.is_none() && before < 3 {
                before += 1;
                continue;
            }
            return std::borrow::Cow::Borrowed(doc);
        };
        if expected.is_some_and(|e| e != n) {
            return std::borrow::Cow::Borrowed(doc);
        }
        expected = Some(n + 1);
        count += 1;
    }
    if count < 5 {
        return std::borrow::Cow::Borrowed(doc);
    }
    let mut out = String::with_capacity(doc.len());
    for l in doc.lines() {
        let t = l.trim_start();
        let digits = if number(l).is_some() {
            t.bytes().take_while(u8::is_ascii_digit).count()
        } else {
            0
        };
        out.push_str(t[digits..].trim_start());
        out.push('\n');
    }
    std::borrow::Cow::Owned(out)
}

/// "Page 2 of 5", "Seite 2 von 5", "p. 3", "3/5", "- 3 -": a page number on a line of its own
/// (at most one word around one or two numbers).
fn is_page_marker(l: &str) -> bool {
    // Every marker has a page number.
    if !l.bytes().any(|b| b.is_ascii_digit()) {
        return false;
    }
    let t = l.trim_matches(|c: char| c == '-' || c == '|' || c.is_whitespace());
    let tokens: Vec<&str> = t.split([' ', '/']).filter(|w| !w.is_empty()).collect();
    let is_number = |w: &str| w.len() <= 4 && w.bytes().all(|b| b.is_ascii_digit());
    let values: Vec<u32> = tokens
        .iter()
        .filter(|w| is_number(w))
        .filter_map(|w| w.parse().ok())
        .collect();
    let words = tokens.len() - values.len();
    // "Page 2 of 5" / "2 of 5" / "2/5": the page before the count, a word at most before the
    // first number and between the two; "p. 3" / "3": one number, a word at most before it.
    let first_number = tokens.iter().position(|w| is_number(w));
    let ends_in_number = tokens.last().is_some_and(|w| is_number(w));
    let shape = match values.as_slice() {
        [_] => words <= 1 && ends_in_number,
        [page, count] => words <= 2 && page <= count && ends_in_number,
        _ => false,
    };
    !t.is_empty()
        && shape
        && first_number.is_some_and(|p| p <= 1)
        && tokens.iter().all(|w| {
            is_number(w)
                || (w.len() <= 6 && w.trim_end_matches('.').chars().all(char::is_alphabetic))
        })
}

/// A running header: a short line in capitals ("FOURTH QUARTER RESULTS").
fn is_running_header(l: &str) -> bool {
    l.split_whitespace().count() <= 8
        && l.chars().any(char::is_alphabetic)
        && !l.chars().any(char::is_lowercase)
}

/// A menu laid out with runs of spaces ("Menu  Search  Sign in", "Latest  Politics  Money"):
/// three or more short segments without figures, one of them a chrome word. Looked for at the
/// top of a document only (a table's header or last row has the same shape).
fn is_spaced_nav(l: &str) -> bool {
    let parts: Vec<&str> = l
        .split("  ")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            p.split_whitespace().count() <= 3
                && !p.ends_with(['.', '!', '?', ':'])
                && !p.contains(|c: char| c.is_ascii_digit())
        })
        && parts.iter().any(|p| {
            let p = p.to_lowercase();
            is_chrome_line(&p) || matches!(p.as_str(), "home" | "latest" | "news" | "sections")
        })
}

/// Outlook's forward separator: a rule of underscores right above a `From:` header.
fn is_outlook_rule(l: &str, next: Option<&&str>) -> bool {
    l.len() >= 10
        && l.chars().all(|c| c == '_')
        && next.is_some_and(|n| is_header_line(strip_reply_marker(n).trim()))
}

/// A line a forwarder may write above what they forward: at most six words and no figures
/// ("See below.", "Passing this along.", "FYI"), or a mail footer ("Sent from my iPhone").
fn is_forward_note(l: &str) -> bool {
    (l.split_whitespace().count() <= 6 && !l.contains(|c: char| c.is_ascii_digit()))
        || is_footer_line(l)
}

/// A forward separator or "... wrote:" line within the next two non-empty lines.
fn forward_follows(rest: &[&str]) -> bool {
    rest.iter()
        .map(|l| strip_reply_marker(l).trim())
        .filter(|l| !l.is_empty())
        .take(2)
        .enumerate()
        .any(|(i, l)| {
            is_forward_separator(l)
                || is_wrote_line(l)
                || (i == 0 && l.len() >= 10 && l.chars().all(|c| c == '_'))
        })
}

/// `> text`, `>> text`, `> > text` -> `text`.
pub(super) fn strip_reply_marker(line: &str) -> &str {
    let t = line.trim_start();
    if !t.starts_with('>') {
        return line;
    }
    t.trim_start_matches(['>', ' '])
}

pub(super) fn is_forward_separator(l: &str) -> bool {
    let core = l.trim_matches(|c: char| c == '-' || c == '_' || c == '=' || c.is_whitespace());
    let lower = core.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "forwarded message"
            | "original message"
            | "begin forwarded message:"
            | "begin forwarded message"
            | "forwarded message follows"
    ) || (l.starts_with("-----") && lower.contains("forwarded"))
}

/// `From: ...`, `Subject: ...`: a mail header (the field name, a colon, something after it).
fn is_header_line(l: &str) -> bool {
    const FIELDS: &[&str] = &[
        "from", "sent", "to", "cc", "bcc", "date", "subject", "reply-to", "fwd", "fw",
    ];
    let Some((name, value)) = l.split_once(':') else {
        return false;
    };
    l.len() <= 400
        && !value.trim().is_empty()
        && FIELDS.contains(&name.trim().to_ascii_lowercase().as_str())
}

/// A folded header line (starts with whitespace) right after a header.
fn is_header_continuation(raw: &str) -> bool {
    raw.starts_with([' ', '\t']) && !raw.trim().is_empty() && raw.len() <= 400
}

/// "On Mon, 3 Jun 2024 at 10:12, Ann Lee <ann@example.com> wrote:"
pub(super) fn is_wrote_line(l: &str) -> bool {
    l.len() <= 300 && l.starts_with("On ") && l.ends_with("wrote:")
}

/// Chrome lines, lower case, without their closing punctuation.
const CHROME_PHRASES: &[&str] = &[
    "skip to content",
    "skip to main content",
    "menu",
    "main menu",
    "search",
    "sign in",
    "log in",
    "login",
    "subscribe",
    "sign up",
    "share",
    "share this",
    "share this article",
    "share this story",
    "share on facebook",
    "share on twitter",
    "advertisement",
    "sponsored",
    "listen to this article",
    "print",
    "email",
    "comments",
    "show comments",
    "follow us",
    "back to top",
    "accept all cookies",
    "accept cookies",
    "manage cookies",
    "cookie settings",
    "read more",
];
/// Every phrase a chrome line other than navigation holds (see [`may_hold`]).
static CHROME_WORDS: LazyLock<AhoCorasick> =
    LazyLock::new(|| any_of(&[CHROME_PHRASES, &["follow us on ", "cookie"]]));

/// Web-page chrome: navigation, cookie banners and short chrome phrases.
pub(super) fn is_chrome_line(l: &str) -> bool {
    if l.len() > 400 {
        return false;
    }
    // Navigation: short segments between spaced separators ("Home | World | Business",
    // "Home > News > Europe"); "02/24/2017" is no navigation.
    let segments = |sep: &str| -> bool {
        let mut parts = 0;
        l.contains(sep)
            && l.split(sep).map(str::trim).all(|p| {
                parts += 1;
                !p.is_empty() && p.split_whitespace().count() <= 3 && !p.ends_with(['.', '!', '?'])
            })
            && parts >= 3
    };
    let separated = l
        .bytes()
        .any(|b| matches!(b, b'|' | b'>' | b'/') || !b.is_ascii());
    if separated
        && [" | ", " > ", " » ", " › ", " / "]
            .iter()
            .any(|sep| segments(sep))
    {
        return true;
    }
    if !may_hold(&CHROME_WORDS, l) {
        return false;
    }
    let lower = l.to_lowercase();
    let trimmed = lower.trim_end_matches(['.', '!', ':', ' ']);
    if CHROME_PHRASES.contains(&trimmed) {
        return true;
    }
    // "Follow us on Twitter", "Share on WhatsApp"
    if lower.starts_with("follow us on ") && lower.split_whitespace().count() <= 8 {
        return true;
    }
    // A cookie banner names cookies and asks for consent.
    lower.contains("cookie")
        && [
            "accept",
            "consent",
            "we use",
            "uses cookies",
            "cookie policy",
            "preferences",
            "privacy policy",
        ]
        .iter()
        .any(|p| lower.contains(p))
}

/// Where a trailing `-- ` signature block starts (RFC 3676's delimiter; name, title, phone,
/// address lines and footers after it, at most 12 lines of at most 12 words).
fn signature_block(lines: &[&str]) -> Option<usize> {
    let from = lines.len().saturating_sub(13);
    let at = (from..lines.len())
        .rev()
        .find(|&i| lines[i].trim_end() == "--")?;
    let short = lines[at + 1..]
        .iter()
        .all(|l| l.split_whitespace().count() <= 12 || is_footer_line(l.trim()));
    (at > 0 && short).then_some(at)
}

/// A banner mail systems put above a message: external-sender warnings, "view in browser".
pub(super) fn is_banner_line(l: &str) -> bool {
    let opens = |p: &str| l.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    const STARTS: &[&str] = &[
        "view this email in",
        "view in browser",
        "view it in your browser",
        "view online",
        "having trouble viewing this email",
        "[external]",
        "external email",
        "external sender",
    ];
    STARTS.iter().any(|p| opens(p))
        || ((opens("caution") || opens("warning")) && {
            let lower = l.to_lowercase();
            lower.contains("outside") || lower.contains("external")
        })
}

/// Where a trailing "Related stories" block starts (a heading, then only short lines).
fn related_block(lines: &[&str]) -> Option<usize> {
    const HEADINGS: &[&str] = &[
        "related stories",
        "related articles",
        "related",
        "related coverage",
        "more stories",
        "more from",
        "read next",
        "read more",
        "you may also like",
        "you might also like",
        "recommended",
        "most read",
        "more on this story",
    ];
    // Only the last 30 lines are looked at.
    let from = lines.len().saturating_sub(30);
    for (i, line) in lines.iter().enumerate().skip(from) {
        let h = line.trim().to_lowercase();
        let h = h.trim_end_matches([':', '.', ' ']);
        if HEADINGS.contains(&h) || (h.starts_with("more from ") && h.len() <= 40) {
            let rest_short = lines[i + 1..]
                .iter()
                .all(|l| l.split_whitespace().count() <= 16);
            if rest_short && i > 0 {
                return Some(i);
            }
        }
    }
    None
}

/// A separator rule: `--`, `-----`, `_____`, `=====`, `***`.
pub(super) fn is_separator(l: &str) -> bool {
    (l == "--" || l.len() >= 3) && l.chars().all(|c| matches!(c, '-' | '_' | '=' | '*' | '~'))
}

/// How footer lines start (lower case).
const FOOTER_STARTS: &[&str] = &[
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
/// Phrases footer lines hold anywhere (lower case).
const FOOTER_PHRASES: &[&str] = &[
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
    "please consider the environment before printing",
    "our mailing address is",
    "forward to a friend",
    "update your preferences",
    "add us to your address book",
];
/// What else a footer test reads: the copyright and confidentiality openings, mailing lists.
const FOOTER_OTHERS: &[&str] = &["copyright", "(c) ", "confidential", "mailing list"];
/// Every phrase a footer line holds (see [`may_hold`]).
static FOOTER_WORDS: LazyLock<AhoCorasick> =
    LazyLock::new(|| any_of(&[FOOTER_STARTS, FOOTER_PHRASES, SIGN_OFFS, FOOTER_OTHERS]));

/// A line that mail clients, newsletters, mailing lists and corporate mail add at the end.
pub(crate) fn is_footer_line(line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() || t.len() > 400 || !may_hold(&FOOTER_WORDS, t) {
        return false;
    }
    let l = t.to_lowercase();
    if is_sign_off(&l) {
        return true;
    }
    let confidential = l.strip_prefix("confidential").is_some_and(|rest| {
        rest.is_empty() || rest.starts_with(':') || rest.starts_with(" notice")
    });
    // "Copyright 2024 Example Ltd", "(c) 2024 ...", but not "Copyright law protects ...".
    let copyright = ["copyright", "(c) "].iter().any(|p| {
        l.strip_prefix(p).is_some_and(|rest| {
            let rest = rest.trim_start_matches([' ', '©']);
            rest.len() >= 4 && rest.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        })
    });
    FOOTER_STARTS.iter().any(|s| l.starts_with(s))
        || copyright
        || FOOTER_PHRASES.iter().any(|p| l.contains(p))
        || (l.len() <= 80 && l.contains("mailing list"))
        || confidential
}

/// Sign-off lines, lower case, without their closing punctuation.
const SIGN_OFFS: &[&str] = &[
    "thanks",
    "thank you",
    "thanks a lot",
    "thanks so much",
    "thank you so much",
    "many thanks",
    "thanks in advance",
    "thx",
    "cheers",
    "regards",
    "best regards",
    "kind regards",
    "warm regards",
    "warmest regards",
    "best",
    "all the best",
    "best wishes",
    "sincerely",
    "yours sincerely",
    "yours truly",
    "yours",
];

/// "Thanks!", "Best regards,", "Cheers" ... (`l`: trimmed and lower-cased).
fn is_sign_off(l: &str) -> bool {
    SIGN_OFFS.contains(&l.trim_end_matches(['!', ',', '.', ' ']))
}

/// An automaton that finds (ASCII case aside) any of `literals`: a one-pass test that a line
/// may be furniture before the phrase lists are read one by one.
fn any_of(literals: &[&[&str]]) -> AhoCorasick {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(literals.iter().flat_map(|l| l.iter()))
        .expect("literal phrases")
}

/// False only when no phrase of `filter` can be in `l` (case aside): a line outside ASCII is
/// always read in full (its lower case is not ASCII case folding), one without an ASCII letter
/// holds no phrase.
fn may_hold(filter: &LazyLock<AhoCorasick>, l: &str) -> bool {
    !l.is_ascii() || (l.bytes().any(|b| b.is_ascii_alphabetic()) && filter.is_match(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "The council met on Tuesday.\nIt approved 4.2 million for roads.\nThe mayor, Anna Berg, spoke.";

    #[test]
    fn forwarded_replied_and_web_wrapped_documents_strip_to_the_body() {
        let forwarded = format!(
            "---------- Forwarded message ---------\nFrom: Ann Lee <ann@example.com>\nDate: Mon, 3 Jun 2024 at 10:12\nSubject: Council\nTo: Bob <bob@example.com>\n\n{BODY}\n\nSent from my iPhone"
        );
        assert_eq!(strip(&forwarded), BODY);
        let replied = format!(
            "On Mon, 3 Jun 2024 at 10:12, Ann Lee <ann@example.com> wrote:\n{}",
            BODY.lines()
                .map(|l| format!("> {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(strip(&replied), BODY);
        let web = format!(
            "Skip to content\nHome | World | Business | Sport\nWe use cookies to improve your experience. Accept all?\n\n{BODY}\n\nShare this article\n\nRelated stories\nRoads plan delayed again\nMayor faces questions"
        );
        assert_eq!(strip(&web), BODY);
    }

    #[test]
    fn banners_site_names_newsletters_and_signature_blocks_are_noise() {
        let wrapped = format!(
            "CAUTION: This email originated from outside of the organization.\nView this email in your browser\n\nTallyho\nHome | News | Business | Sport\n\n{BODY}\n\n--\nSofia Marchetti\nSenior Engineer | Pellucid\nM: +1 555 010 8842\n\nYou are receiving this email because you subscribed.\nOur mailing address is: 410 Market Street"
        );
        assert_eq!(strip(&wrapped), BODY);
    }

    #[test]
    fn notes_outlook_rules_nested_quotes_and_spaced_menus_are_noise() {
        let quote = |prefix: &str| {
            BODY.lines()
                .map(|l| format!("{prefix}{l}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let nested = format!(
            "Passing this along.\n\nOn Wed, Oct 29, 2025 at 8:17 PM, Sam <sam@example.com> wrote:\n> FYI\n>\n> On Wed, Oct 29, 2025 at 5:40 PM, Ann <ann@example.com> wrote:\n{}",
            quote(">> ")
        );
        assert_eq!(strip(&nested), BODY);
        let outlook = format!(
            "See below.\n\n________________________________\nFrom: Ann Lee <ann@example.com>\nSent: Monday, July 21, 2025 8:00 AM\nSubject: Council\n\n{BODY}"
        );
        assert_eq!(strip(&outlook), BODY);
        let iphone = format!(
            "Sent from my iPhone\n\nBegin forwarded message:\n\nFrom: Ann Lee <ann@example.com>\nSubject: Council\n\n{BODY}"
        );
        assert_eq!(strip(&iphone), BODY);
        let web = format!(
            "Menu  Search  Sign in\nCOASTAL DAILY\nLatest  Politics  Money  Tech\n\nThis site uses cookies. Read our cookie policy. [Got it]\n\n{BODY}"
        );
        assert_eq!(strip(&web), BODY);
        // The message's own subject after "wrote:", and a forwarded memo's own header, stay.
        let subject = format!("Subject: Council\n\n{BODY}");
        let replied = format!("On Mon, Jun 3, 2024, Ann <ann@example.com> wrote:\n{subject}");
        assert_eq!(strip(&replied), subject);
        let memo = format!("To: All staff\nFrom: Finance\n\n{BODY}");
        let forwarded = format!(
            "-----Original Message-----\nFrom: Ann <ann@example.com>\nSent: Monday\n\n{memo}"
        );
        assert_eq!(strip(&forwarded), memo);
    }

    #[test]
    fn notes_with_figures_and_spaced_tables_stay() {
        // A note that says something (a figure) is content, and so is a table laid out with
        // spaces, even at the top.
        let note = format!(
            "Deadline moved to May 3.\n\nOn Mon, Jun 3, 2024, Ann <ann@example.com> wrote:\n{BODY}"
        );
        assert!(strip(&note).starts_with("Deadline moved to May 3."));
        let table = format!("Name  Age  City\nBob  42  Paris\n\n{BODY}");
        assert_eq!(strip(&table), table);
    }

    #[test]
    fn a_memo_keeps_its_own_header() {
        let memo = format!("To: All Kessler Insurance employees\nFrom: Information Security\nSubject: Phishing results\n\n{BODY}");
        assert_eq!(strip(&memo), memo);
        // The same block after a forward separator, or naming an address, is a forward's.
        let fwd = format!("---------- Forwarded message ---------\nFrom: Information Security\nTo: All staff\n\n{BODY}");
        assert_eq!(strip(&fwd), BODY);
        let outlook =
            format!("From: Ann Lee <ann@example.com>\nSent: Monday\nTo: Bob\nSubject: x\n\n{BODY}");
        assert_eq!(strip(&outlook), BODY);
    }

    #[test]
    fn hostile_markup_and_numbering_stay_linear() {
        // Each scan stops at the next '<', ';' or line break: these finish at once (a quadratic
        // scan of a MiB would take seconds) and never panic on char boundaries.
        for unit in [
            "<",
            "<p",
            "<p>é&",
            "&#x1F600",
            "&#99999999;",
            "1 x\n",
            "Page 1 of 2\n",
        ] {
            let text = unit.repeat((1 << 20) / unit.len());
            let out = strip(&text);
            assert!(out.len() <= text.len() + text.matches('<').count());
            let _ = clean(&text);
        }
    }

    #[test]
    fn page_furniture_is_dropped() {
        let paged = "The council met on Tuesday.\n\nPage 1 of 2\n\nCOUNCIL NEWS\n\nIt approved 4.2 million for roads.\n\nPage 2 of 2";
        assert_eq!(
            strip(paged),
            "The council met on Tuesday.\n\n\n\nIt approved 4.2 million for roads.\n"
        );
        for marker in ["Page 2 of 5", "Seite 2 von 5", "p. 3", "- 3 -", "3/5"] {
            assert!(is_page_marker(marker), "{marker}");
        }
        for content in [
            "Revenue 2024 up",
            "Table 3 shows the totals",
            "Room 12 at 3",
            "1 apple",
        ] {
            assert!(!is_page_marker(content), "{content}");
        }
    }

    #[test]
    fn html_and_line_numbers_are_read_as_text() {
        let html = format!(
            "<div class=\"body\">\n<p>{}</p>\n</div>",
            BODY.replace('\n', "</p><p>").replace("Anna", "Anna&nbsp;")
        );
        assert_eq!(collapse(&strip(&html)), collapse(BODY));
        let numbered: String = BODY
            .lines()
            .flat_map(|l| [l, ""])
            .enumerate()
            .map(|(i, l)| format!("{}  {l}\n", i + 1))
            .collect();
        assert_eq!(collapse(&strip(&numbered)), collapse(BODY));
        // A comparison is no markup, and numbers that do not count up are content.
        let text = "If a < b and c > d then <b>x</b> holds.";
        assert_eq!(strip(text), text);
        let list = "1 apple\n3 pears\n2 plums\n4 figs\n5 kiwis";
        assert_eq!(strip(list), list);
    }

    fn collapse(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn names_and_content_between_the_zones_stay() {
        let signed = format!("{BODY}\n\nBest regards,\nHelena Kowalczyk");
        assert_eq!(
            strip(&signed),
            format!("{BODY}\n\nBest regards,\nHelena Kowalczyk")
        );
        let other = format!("{BODY}\n\nBest regards,\nHelena Novak");
        assert_ne!(strip(&signed), strip(&other));
        // A header-like line in the middle is content.
        let mid = format!("{BODY}\nSubject: roads\nMore text.");
        assert_eq!(strip(&mid), mid);
        // Only noise: the document is kept whole.
        assert_eq!(strip("Sent from my iPhone"), "Sent from my iPhone");
    }
}
