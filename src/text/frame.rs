//! Task frames: what an instruction over a document asks for, whatever its wording.
//!
//! "TL;DR:", "I don't have time to read this, sum it up briefly" and "Write a short summary of
//! the article below" all ask for the same thing: a short summary. A frame holds the **task**
//! (summarize, key points, translate, headline, action items, ...), the **length** (N sentences,
//! N words, N bullets, N paragraphs, short, detailed), the **format** (bullets, numbered list,
//! paragraph, JSON, table), the output **language**, the **audience**, the **tone** and the
//! **focus** ("focusing on costs"). Two instructions over the same operands with equal frames
//! are equivalent; different frames are different requests.
//!
//! The parse is *total* or nothing: every word of the instruction must be read by the grammar
//! below (a task, length, format, language, audience, tone or focus phrase, a reference to the
//! text such as "the article below", or request framing such as "could you please"). One word it
//! cannot place and the instruction has no frame: the cache then falls back to its guarded
//! similarity matching. So an unknown qualifier ("... for the board, as a limerick") can never
//! be silently ignored.

use super::normalize::collapse_ws;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Task {
    Summarize,
    KeyPoints,
    Translate,
    Headline,
    ActionItems,
    Sentiment,
    Explain,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Length {
    Sentences(u32),
    Words(u32),
    Bullets(u32),
    Paragraphs(u32),
    Short,
    Detailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Bullets,
    Numbered,
    Paragraph,
    Json,
    Table,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Frame {
    pub task: Option<Task>,
    pub length: Option<Length>,
    pub format: Option<Format>,
    pub language: Option<&'static str>,
    pub audience: Option<String>,
    pub tone: Option<&'static str>,
    pub focus: Option<String>,
    /// Only what is asked, nothing around it ("the title only", "nothing else", "no
    /// commentary"): an answer with a preamble or several options does not serve it.
    pub bare: bool,
}

const LANGUAGES: &[(&str, &str)] = &[
    ("english", "en"),
    ("french", "fr"),
    ("german", "de"),
    ("spanish", "es"),
    ("italian", "it"),
    ("portuguese", "pt"),
    ("dutch", "nl"),
    ("swedish", "sv"),
    ("norwegian", "no"),
    ("danish", "da"),
    ("finnish", "fi"),
    ("polish", "pl"),
    ("czech", "cs"),
    ("russian", "ru"),
    ("ukrainian", "uk"),
    ("greek", "el"),
    ("turkish", "tr"),
    ("arabic", "ar"),
    ("hebrew", "he"),
    ("hindi", "hi"),
    ("chinese", "zh"),
    ("mandarin", "zh"),
    ("japanese", "ja"),
    ("korean", "ko"),
    ("vietnamese", "vi"),
    ("thai", "th"),
    ("indonesian", "id"),
    ("romanian", "ro"),
    ("hungarian", "hu"),
    ("catalan", "ca"),
];

/// Nouns that name the text being worked on ("this article", "for the text below").
const TEXT_NOUNS: &[&str] = &[
    "text",
    "article",
    "articles",
    "story",
    "piece",
    "passage",
    "document",
    "doc",
    "email",
    "e-mail",
    "mail",
    "message",
    "thread",
    "memo",
    "report",
    "post",
    "page",
    "content",
    "contents",
    "transcript",
    "notes",
    "note",
    "letter",
    "announcement",
    "update",
    "news",
    "paper",
    "item",
];

/// Words that refer to the text being worked on (besides [`TEXT_NOUNS`]), or address the
/// assistant: read, no meaning.
const FILLER: &[&str] = &[
    "this",
    "that",
    "these",
    "those",
    "it",
    "the",
    "following",
    "above",
    "below",
    "here",
    "please",
    "pls",
    "kindly",
    "can",
    "could",
    "would",
    "will",
    "you",
    "me",
    "us",
    "i",
    "i'd",
    "i'm",
    "like",
    "want",
    "need",
    "give",
    "provide",
    "write",
    "create",
    "make",
    "produce",
    "generate",
    "prepare",
    "do",
    "get",
    "let",
    "have",
    "a",
    "an",
    "of",
    "to",
    "in",
    "into",
    "on",
    "as",
    "with",
    "and",
    "my",
    "our",
    "your",
    "just",
    "up",
    "down",
    "now",
    "here's",
    "is",
    "are",
    "what",
    "version",
    "thanks",
    "thank",
    "help",
    "something",
    "form",
    "format",
    "formatted",
    "using",
    "read",
    "pasted",
    "shared",
    "attached",
    "included",
    "its",
    "whole",
    "entire",
    "review",
    "comment",
    "thread's",
    "what's",
    "whats",
    "does",
    "say",
    "says",
    "hey",
    "hi",
    "hello",
    "thx",
    "ty",
    "cheers",
    "plz",
    "mainly",
    "mostly",
    "ish",
    "keep",
    "keeping",
    "stay",
    "stays",
    "staying",
    "should",
    "be",
];

/// The word that marks a sentence end: phrases ("for new starters", "focusing on costs") stop
/// there, so "... for new starters. Thanks!" reads the audience "new starter", not "new starter
/// thank".
const SENTENCE_END: &str = "¶";

/// `text` with every sentence end ('.', '!' or '?' before a space or the end) turned into
/// [`SENTENCE_END`] as a word of its own. Linear.
fn sentence_marks(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()) {
            out.push_str(" ¶ ");
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads a frame from an instruction (operands as `§`); `None` when any word is left unread.
pub fn parse(instruction: &str) -> Option<Frame> {
    read(instruction, false)
}

/// What of a frame an instruction states, words the grammar cannot place skipped: not enough to
/// call two instructions equivalent, but enough to see that they ask for different lengths,
/// formats, languages, audiences, tones or foci.
pub fn parse_lenient(instruction: &str) -> Frame {
    read(instruction, true).unwrap_or_default()
}

fn read(instruction: &str, lenient: bool) -> Option<Frame> {
    let text = sentence_marks(&collapse_ws(
        &instruction
            .to_lowercase()
            .replace("tl;dr", "tldr")
            .replace("tl,dr", "tldr"),
    ));
    let words: Vec<String> = text
        .split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    ',' | '.'
                        | ':'
                        | ';'
                        | '!'
                        | '?'
                        | '('
                        | ')'
                        | '"'
                        | '§'
                        | '-'
                        | '/'
                        | '*'
                        | '~'
                        | '¿'
                        | '¡'
                )
        })
        .map(|w| w.trim_matches('\'').to_owned())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return None;
    }
    let mut f = Frame::default();
    let mut i = 0;
    while i < words.len() {
        match phrase(&words, i, &mut f) {
            Some(used) => i += used,
            None if lenient => i += 1,
            None => return None,
        }
    }
    // "The one-sentence version", "a shorter version": a length with "version" asks for a
    // summary ("the French version" has no length: a translation, never read as one).
    if f.task.is_none() && f.length.is_some() && words.iter().any(|w| w == "version") {
        f.task = Some(Task::Summarize);
    }
    // Key points, takeaways, highlights: a summary as bullets.
    if f.task == Some(Task::KeyPoints) {
        f.task = Some(Task::Summarize);
        if f.format.is_none() || f.format == Some(Format::Bullets) {
            f.format = Some(Format::Bullets);
        } else {
            return None;
        }
    }
    if lenient {
        return Some(f);
    }
    // A frame names a task (a bare "in French, please" is no request we can compare).
    f.task.as_ref()?;
    Some(f)
}

impl Frame {
    /// Whether an answer made for `self` also serves a request with frame `other` (and back):
    /// the same task, language, audience, tone and focus; a length or format given on both
    /// sides the same. A summary is short by nature, so "short" and an unspecified length are
    /// one; prose ("a paragraph") and an unspecified format are one. A number of sentences,
    /// words, bullets or paragraphs, "detailed", bullets, JSON or a table must be asked on both
    /// sides.
    /// What two lenient frames state does not conflict (tasks compared only when both state
    /// one): see [`Self::equivalent`] for what is compared.
    pub fn compatible(&self, other: &Frame) -> bool {
        let tasks = self.task.is_none() || other.task.is_none() || self.task == other.task;
        tasks
            && Frame {
                task: None,
                ..self.clone()
            }
            .equivalent(&Frame {
                task: None,
                ..other.clone()
            })
    }

    pub fn equivalent(&self, other: &Frame) -> bool {
        let length = |l: &Option<Length>| match l {
            None | Some(Length::Short) => None,
            Some(x) => Some(x.clone()),
        };
        let format = |f: Option<Format>| match f {
            None | Some(Format::Paragraph) => None,
            x => x,
        };
        self.task == other.task
            && length(&self.length) == length(&other.length)
            && format(self.format) == format(other.format)
            && self.language == other.language
            && self.audience == other.audience
            && self.tone == other.tone
            && self.focus == other.focus
            && self.bare == other.bare
    }
}

fn number(w: &str) -> Option<u32> {
    if let Ok(n) = w.parse::<u32>() {
        return (1..=1000).contains(&n).then_some(n);
    }
    Some(match w {
        "one" | "single" => 1,
        "two" | "couple" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "fifteen" => 15,
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        "hundred" => 100,
        _ => return None,
    })
}

/// Reads one phrase at `i`; returns how many words it used, `None` when the word is unknown.
fn phrase(w: &[String], i: usize, f: &mut Frame) -> Option<usize> {
    let at = |k: usize| w.get(i + k).map(String::as_str).unwrap_or("");
    if at(0) == SENTENCE_END {
        return Some(1);
    }
    let set_task = |f: &mut Frame, t: Task| -> Option<()> {
        match &f.task {
            Some(old) if *old != t => None,
            _ => {
                f.task = Some(t);
                Some(())
            }
        }
    };
    // "Short" is what a summary is anyway: a stated length ("TL;DR in one sentence") refines it.
    let set_length = |f: &mut Frame, l: Length| -> Option<()> {
        match &f.length {
            Some(old) if *old == l || l == Length::Short => Some(()),
            Some(old) if *old != Length::Short => None,
            _ => {
                f.length = Some(l);
                Some(())
            }
        }
    };
    let set_format = |f: &mut Frame, x: Format| -> Option<()> {
        match f.format {
            Some(old) if old != x => None,
            _ => {
                f.format = Some(x);
                Some(())
            }
        }
    };
    let w0 = at(0);
    // A task's own noun, for "the title only", "only the title", "just the title".
    let output_noun = |x: &str| matches!(x, "title" | "headline" | "summary");
    let noun_after = |k: usize| output_noun(at(k)) || (at(k) == "the" && output_noun(at(k + 1)));
    match w0 {
        // "nothing else", "and nothing more"
        "nothing" if matches!(at(1), "else" | "more") => {
            f.bare = true;
            return Some(2);
        }
        // "no other text", "no commentary", "no explanation needed"
        "no" => {
            let k = usize::from(at(1) == "other" || at(1) == "extra");
            if matches!(
                at(1 + k),
                "text" | "words" | "commentary" | "explanation" | "explanations" | "preamble"
            ) {
                f.bare = true;
                return Some(2 + k + usize::from(at(2 + k) == "needed"));
            }
            return None;
        }
        "only" | "alone" if i > 0 && output_noun(&w[i - 1]) => {
            f.bare = true;
            return Some(1);
        }
        "only" | "just" if noun_after(1) => {
            f.bare = true;
            return Some(1);
        }
        // "reply with the title", "respond with only that": how to answer, said again.
        "respond" | "reply" | "answer" | "return" | "output" if at(1) == "with" => {
            if at(2) == "only" && matches!(at(3), "that" | "it" | "this") {
                f.bare = true;
                return Some(4);
            }
            return Some(2);
        }
        // "Return the title alone.", "Output only the summary.": a sentence opened by how
        // to answer.
        "return" | "output" if i == 0 || w[i - 1] == SENTENCE_END => return Some(1),
        // "suggest a title", "come up with one title", "a good title", "one title"
        "suggest" | "propose" => return Some(1),
        "come" if at(1) == "up" && at(2) == "with" => return Some(3),
        "good" | "fitting" | "suitable" | "appropriate"
            if matches!(at(1), "title" | "headline") =>
        {
            return Some(1)
        }
        "one" | "single" if matches!(at(1), "title" | "headline") => {
            set_task(f, Task::Headline)?;
            return Some(2);
        }
        _ => {}
    }
    // "I don't have time to read (all) this/it"
    if w0 == "don't" || w0 == "dont" || (w0 == "do" && at(1) == "not") {
        let k = if w0 == "do" { 2 } else { 1 };
        if at(k) == "have" && at(k + 1) == "time" {
            return Some(k + 2);
        }
        return None;
    }
    if w0 == "too" && at(1) == "long" {
        // "too long; didn't read"
        let k = if matches!(at(2), "didn't" | "didnt") && at(3) == "read" {
            4
        } else {
            2
        };
        set_task(f, Task::Summarize)?;
        set_length(f, Length::Short)?;
        return Some(k);
    }
    // "What is this article about?": what a short summary answers.
    // ... and "What does it say?"
    if (w0 == "about" || (matches!(w0, "say" | "says") && i > 0 && w[i - 1] != "to"))
        && w[..i].iter().any(|x| x == "what" || x == "what's")
    {
        set_task(f, Task::Summarize)?;
        return Some(1);
    }
    match w0 {
        "summarize" | "summarise" | "summary" | "summarization" | "summarisation" | "synopsis"
        | "summarizing" | "summarising" | "summarized" | "summarised" | "recap" | "condense"
        | "précis" | "precis" | "rundown" | "digest" | "overview" | "distill" | "distil" => {
            set_task(f, Task::Summarize)?;
            return Some(1);
        }
        "gist" => {
            set_task(f, Task::Summarize)?;
            set_length(f, Length::Short)?;
            return Some(1);
        }
        "tldr" => {
            set_task(f, Task::Summarize)?;
            set_length(f, Length::Short)?;
            return Some(1);
        }
        "sum" | "boil" => {
            // "sum it up", "sum this up", "boil this down"
            // ... and with the text named: "boil the HR notice down", "sum up what I pasted".
            let particle = if w0 == "sum" { "up" } else { "down" };
            let k = (1..=5).find(|&k| at(k) == particle)?;
            let names_the_text = |x: &str| {
                matches!(
                    x,
                    "it" | "this"
                        | "that"
                        | "all"
                        | "everything"
                        | "the"
                        | "these"
                        | "those"
                        | "my"
                        | "our"
                        | "what"
                        | "i"
                        | "pasted"
                        | "sent"
                        | "shared"
                ) || is_plain_noun(x)
            };
            if (1..k).any(|j| !names_the_text(at(j))) {
                return None;
            }
            set_task(f, Task::Summarize)?;
            return Some(k + 1);
        }
        "nutshell" => {
            set_task(f, Task::Summarize)?;
            set_length(f, Length::Short)?;
            return Some(1);
        }
        "key" | "main" | "important" => {
            if matches!(
                at(1),
                "points" | "takeaways" | "takeaway" | "facts" | "ideas" | "messages" | "highlights"
            ) {
                set_task(f, Task::KeyPoints)?;
                return Some(2);
            }
            return None;
        }
        "takeaways" | "highlights" => {
            set_task(f, Task::KeyPoints)?;
            return Some(1);
        }
        "headline" | "title" => {
            set_task(f, Task::Headline)?;
            return Some(1);
        }
        "action" if at(1) == "items" => {
            set_task(f, Task::ActionItems)?;
            return Some(2);
        }
        "next" if at(1) == "steps" => {
            set_task(f, Task::ActionItems)?;
            return Some(2);
        }
        "translate" | "translation" => {
            set_task(f, Task::Translate)?;
            return Some(1);
        }
        "sentiment" => {
            set_task(f, Task::Sentiment)?;
            return Some(1);
        }
        // "Explain what this says" asks what a summary answers.
        "explain" if at(1) == "what" && matches!(at(3), "says" | "say") => {
            set_task(f, Task::Summarize)?;
            return Some(4);
        }
        "explain" | "explanation" => {
            set_task(f, Task::Explain)?;
            return Some(1);
        }
        "short" | "shorter" | "brief" | "briefly" | "concise" | "concisely" | "quickly"
        | "quick" | "succinct" | "succinctly" | "compact" => {
            set_length(f, Length::Short)?;
            return Some(1);
        }
        "detailed" | "thorough" | "comprehensive" | "thoroughly" | "long" | "extended"
        | "exhaustive" => {
            set_length(f, Length::Detailed)?;
            return Some(1);
        }
        "depth" | "detail" if i > 0 && w[i - 1] == "in" => {
            set_length(f, Length::Detailed)?;
            return Some(1);
        }
        "few" | "couple" if matches!(at(1), "sentences" | "lines") => {
            set_length(f, Length::Short)?;
            return Some(2);
        }
        "couple" if at(1) == "of" && matches!(at(2), "sentences" | "lines") => {
            set_length(f, Length::Short)?;
            return Some(3);
        }
        "bullet" | "bullets" | "bulleted" | "bullet-point" | "points" | "point" => {
            set_format(f, Format::Bullets)?;
            let k = if w0 == "bullet" && matches!(at(1), "points" | "point" | "list") {
                2
            } else {
                1
            };
            return Some(k);
        }
        "list" | "listed" => {
            // "as a list", "bulleted list", "list form": the format; "numbered list" below.
            set_format(f, f.format.unwrap_or(Format::Bullets))?;
            return Some(1);
        }
        "numbered" => {
            set_format(f, Format::Numbered)?;
            return Some(1);
        }
        "paragraph" | "prose" => {
            set_format(f, Format::Paragraph)?;
            return Some(1);
        }
        "json" => {
            set_format(f, Format::Json)?;
            return Some(1);
        }
        "table" | "tabular" => {
            set_format(f, Format::Table)?;
            return Some(1);
        }
        "formal" | "informal" | "casual" | "professional" | "friendly" | "neutral" => {
            f.tone = Some(match w0 {
                "formal" => "formal",
                "informal" | "casual" => "casual",
                "professional" => "professional",
                "friendly" => "friendly",
                _ => "neutral",
            });
            return Some(1);
        }
        "plain" | "simple" | "simply" | "layman's" | "laymans" | "everyday" => {
            let k = if matches!(at(1), "english" | "language" | "terms" | "words") {
                2
            } else {
                1
            };
            f.tone = Some("simple");
            return Some(k);
        }
        "focusing" | "focussing" | "focus" | "focuses" | "focused" | "focussed" | "emphasizing"
        | "emphasising" | "concentrating" | "concentrate" => {
            let k = if matches!(at(1), "on" | "upon") { 2 } else { 1 };
            return focus(w, i + k, f).map(|n| n + k);
        }
        "emphasis" if at(1) == "on" => return focus(w, i + 2, f).map(|n| n + 2),
        "only" if at(1) == "about" => return focus(w, i + 2, f).map(|n| n + 2),
        _ => {}
    }
    // Lengths with a number: "in 3 sentences", "3-sentence", "5 bullet points", "100 words",
    // "2 paragraphs", "one line", "under 50 words".
    if let Some(n) = number(w0) {
        let unit = at(1);
        let l = match unit {
            "sentence" | "sentences" | "line" | "lines" => Length::Sentences(n),
            "word" | "words" => Length::Words(n),
            "bullet" | "bullets" | "points" | "point" | "bullet-points" | "key" => {
                set_format(f, Format::Bullets)?;
                let two_words = (unit == "bullet" && matches!(at(2), "points" | "point"))
                    || (unit == "key" && at(2) == "points");
                let k = if two_words { 3 } else { 2 };
                set_length(f, Length::Bullets(n))?;
                return Some(k);
            }
            "paragraph" | "paragraphs" => Length::Paragraphs(n),
            _ => return None,
        };
        set_length(f, l)?;
        // "three sentences long", "about 80 words long"
        return Some(if at(2) == "long" { 3 } else { 2 });
    }
    if matches!(
        w0,
        "under"
            | "about"
            | "around"
            | "approximately"
            | "roughly"
            | "max"
            | "maximum"
            | "most"
            | "at"
            | "no"
            | "than"
            | "fewer"
            | "less"
            | "more"
            | "up"
            | "within"
            | "~"
    ) {
        // Bounds around a number ("in under 50 words", "no more than 3 sentences").
        return (number(at(1)).is_some()
            || matches!(
                at(1),
                "most" | "more" | "than" | "to" | "less" | "fewer" | "of"
            ))
        .then_some(1);
    }
    if let Some((_, code)) = LANGUAGES.iter().find(|(name, _)| *name == w0) {
        match f.language {
            Some(old) if old != *code => return None,
            _ => f.language = Some(code),
        }
        // "a Spanish-language summary"
        return Some(if at(1) == "language" { 2 } else { 1 });
    }
    if w0 == "for" {
        if let Some((a, used)) = age(w, i + 1) {
            return set_audience(f, a).then_some(used + 1);
        }
        // "for me", "for us": who asks; "for my boss", "for our executives": who reads.
        if matches!(at(1), "me" | "us" | "me,") {
            return Some(2);
        }
        // "a title for this text", "a summary for the article below", "for what I pasted": the
        // text itself, read by the phrases after "for" (a reference is never an audience).
        let text_noun = |x: &str| TEXT_NOUNS.contains(&x);
        let pointing = |x: &str| matches!(x, "above" | "below" | "attached" | "following");
        let reference = at(1) == "it"
            || (matches!(at(1), "this" | "these" | "that" | "those")
                && (text_noun(at(2)) || matches!(at(2), "" | SENTENCE_END)))
            || (at(1) == "what" && at(2) == "i")
            || (at(1) == "the" && (text_noun(at(2)) || (2..=4).any(|k| pointing(at(k)))));
        if reference {
            return Some(1);
        }
        return audience(w, i + 1, f).map(|n| n + 1);
    }
    // "this incident report", "these release notes", "the following press release": the text
    // being referred to (at most 3 plain words, up to a word the grammar reads, never a
    // possessive such as "this report's risks").
    if matches!(
        w0,
        "this"
            | "these"
            | "that"
            | "those"
            | "following"
            | "attached"
            | "above"
            | "below"
            | "enclosed"
            | "pasted"
    ) {
        let mut k = 1;
        while k <= 3 && w.get(i + k).is_some_and(|x| is_plain_noun(x)) {
            k += 1;
        }
        return Some(k);
    }
    if let Some(n) = understood_by(w, i, f) {
        return Some(n);
    }
    // "mainly interested in the pay": a focus.
    if w0 == "interested" && at(1) == "in" {
        return focus(w, i + 2, f).map(|n| n + 2);
    }
    if let Some((_, code)) = FOREIGN_LANGUAGES.iter().find(|(name, _)| *name == w0) {
        match f.language {
            Some(old) if old != *code => return None,
            _ => f.language = Some(code),
        }
        return Some(1);
    }
    if FOREIGN_SUMMARIZE.contains(&w0) {
        set_task(f, Task::Summarize)?;
        return Some(1);
    }
    // "the HR memo above", "the minutes below", "the survey report here": the text referred to
    // by a noun before the pointing word (at most 3 plain words).
    if matches!(w0, "the" | "of") {
        let pointing = |x: &str| matches!(x, "above" | "below" | "here" | "attached");
        let nouns = (1..=3)
            .take_while(|&k| {
                w.get(i + k)
                    .is_some_and(|x| !pointing(x) && is_plain_noun(x))
            })
            .count();
        if nouns > 0 && pointing(at(nouns + 1)) {
            return Some(nouns + 2);
        }
    }
    // "in a way suited to new hires", "tailored for executives": an audience.
    if matches!(w0, "suited" | "suitable" | "tailored" | "adapted") && matches!(at(1), "to" | "for")
    {
        return audience(w, i + 2, f).map(|n| n + 2);
    }
    if w0 == "way" && matches!(at(1), "suited" | "suitable" | "tailored" | "adapted") {
        return Some(1);
    }
    if is_filler(w0) || FOREIGN_FILLER.contains(&w0) || w0 == "§" {
        return Some(1);
    }
    None
}

fn is_filler(x: &str) -> bool {
    FILLER.contains(&x) || TEXT_NOUNS.contains(&x)
}

/// The same requests in the languages a summarizing gateway often receives them in: the task,
/// the output language ("auf Deutsch", "en español") and the words around them. Words that are
/// also English ("résumé", a CV; "vat", a tax) are left out.
const FOREIGN_SUMMARIZE: &[&str] = &[
    "zusammen",
    "zusammenfassen",
    "zusammenfassung",
    "résumer",
    "résume",
    "résumez",
    "resumen",
    "resumir",
    "resúmeme",
    "resumo",
    "resuma",
    "riassumi",
    "riassunto",
    "samenvatting",
];
const FOREIGN_LANGUAGES: &[(&str, &str)] = &[
    ("deutsch", "de"),
    ("englisch", "en"),
    ("französisch", "fr"),
    ("spanisch", "es"),
    ("español", "es"),
    ("espanol", "es"),
    ("inglés", "en"),
    ("ingles", "en"),
    ("francés", "fr"),
    ("alemán", "de"),
    ("français", "fr"),
    ("francais", "fr"),
    ("anglais", "en"),
    ("allemand", "de"),
    ("espagnol", "es"),
    ("italiano", "it"),
    ("italien", "it"),
    ("nederlands", "nl"),
    ("português", "pt"),
    ("portugues", "pt"),
];
const FOREIGN_FILLER: &[&str] = &[
    // German
    "fasse",
    "fass",
    "den",
    "die",
    "das",
    "folgenden",
    "text",
    "unten",
    "bitte",
    "auf",
    "eine",
    "einen",
    "mir",
    "diesen",
    "kannst",
    "du",
    "hier",
    "können",
    "sie",
    // Spanish, Portuguese, Italian
    "en",
    "el",
    "del",
    "de",
    "la",
    "por",
    "favor",
    "siguiente",
    "texto",
    "abajo",
    "un",
    "una",
    "este",
    "esto",
    "em",
    "do",
    "il",
    "testo",
    "seguente",
    "per",
    "haz",
    "hacer",
    "puedes",
    "hazme",
    "dame",
    // French
    "le",
    "du",
    "ci",
    "dessous",
    "fais",
    "moi",
    "peux",
    "tu",
    "ceci",
    "s'il",
    "te",
    "plaît",
    "vous",
    "plait",
    "suivant",
    "texte",
    "pouvez",
];

/// A word that can only be part of a reference to the text: letters only, and nothing the
/// frame grammar reads itself.
fn is_plain_noun(x: &str) -> bool {
    const GRAMMAR: &[&str] = &[
        "in",
        "as",
        "and",
        "with",
        "using",
        "please",
        "for",
        "into",
        "on",
        "to",
        "of",
        "about",
        "by",
        "from",
        "at",
        "under",
        "within",
        "focusing",
        "focussing",
        "focus",
        "focuses",
        "focused",
        "focussed",
        "concentrating",
        "concentrate",
        "interested",
        "aimed",
        "targeted",
        "emphasizing",
        "only",
        "summary",
        "summarize",
        "summarise",
        "key",
        "main",
        "important",
        "short",
        "brief",
        "briefly",
        "detailed",
        "long",
        "quick",
        "bullet",
        "bullets",
        "bulleted",
        "points",
        "list",
        "json",
        "table",
        "paragraph",
        "paragraphs",
        "sentence",
        "sentences",
        "words",
        "lines",
        "formal",
        "casual",
        "simple",
        "plain",
        "tldr",
        "then",
        "but",
        "not",
        "without",
        "me",
        "us",
        "it",
        "up",
        "down",
        "is",
        "are",
        "was",
        "be",
        "sum",
        "boil",
        "recap",
        "condense",
        "gist",
        "overview",
        "synopsis",
        "digest",
        "rundown",
        "nutshell",
        "translate",
        "headline",
        "title",
        "explain",
        "sentiment",
        "give",
        "write",
        "make",
        "provide",
        "produce",
        "create",
        "generate",
        "prepare",
        "do",
        "get",
        "tell",
        "let",
        "could",
        "would",
        "can",
        "will",
        "you",
        "i",
        "summarizing",
        "summarising",
        "summarized",
        "summarised",
        "takeaways",
        "highlights",
    ];
    // Nor a word that makes a phrase of its own ("concisely", "bulleted", "formal").
    let alone = [x.to_owned()];
    // An adverb ("sarcastically") or a word in another script ("日本語で") says how to answer.
    x.chars().all(|c| c.is_ascii_lowercase())
        && (!x.ends_with("ly") || x.len() <= 4)
        && !GRAMMAR.contains(&x)
        && !LANGUAGES.iter().any(|(n, _)| *n == x)
        && number(x).is_none()
        && (is_filler(x) || phrase(&alone, 0, &mut Frame::default()).is_none())
}

/// "focusing on the financial impact" -> focus "financial impact" (at most 5 words, up to the
/// next frame word); "the pay and benefits" is one focus.
fn focus(w: &[String], from: usize, f: &mut Frame) -> Option<usize> {
    let (mut text, mut used) = phrase_words(w, from, 5)?;
    while w.get(from + used).is_some_and(|x| x == "and") {
        let Some((more, n)) = phrase_words(w, from + used + 1, 5) else {
            break;
        };
        text = format!("{text} and {more}");
        used += n + 1;
    }
    if text.split(' ').count() > 6 {
        return None;
    }
    f.focus = Some(text);
    Some(used)
}

/// "for a busy executive", "for a 10-year-old", "for engineers" -> audience.
fn audience(w: &[String], from: usize, f: &mut Frame) -> Option<usize> {
    // "a 10-year-old", "a ten year old": an age (the number would end the phrase).
    if let Some((age, used)) = age(w, from).or_else(|| aged(w, from)) {
        return set_audience(f, age).then_some(used);
    }
    let words = phrase_words(w, from, 4)?;
    set_audience(f, canonical_audience(&words.0)).then_some(words.1)
}

fn set_audience(f: &mut Frame, a: String) -> bool {
    match &f.audience {
        Some(old) if *old != a => false,
        _ => {
            f.audience = Some(a);
            true
        }
    }
}

/// "(a) 10-year-old", "ten year olds", "an 8 yr old" at `from`: ("age 10", words used).
fn age(w: &[String], from: usize) -> Option<(String, usize)> {
    let skip = usize::from(matches!(
        w.get(from).map(String::as_str),
        Some("a" | "an" | "my" | "our")
    ));
    let at = |k: usize| w.get(from + skip + k).map_or("", String::as_str);
    let n = number(at(0))?;
    if !matches!(at(1), "year" | "years" | "yr" | "yrs") || !matches!(at(2), "old" | "olds") {
        return None;
    }
    let noun = usize::from(matches!(
        at(3),
        "child" | "children" | "kid" | "kids" | "boy" | "girl" | "reader" | "readers"
    ));
    Some((format!("age {n}"), skip + 3 + noun))
}

/// "a kid around ten years old", "a child aged roughly ten", "a child of about 10": the noun
/// first, then the age ("age 10", words used).
fn aged(w: &[String], from: usize) -> Option<(String, usize)> {
    let mut k = from + usize::from(matches!(w.get(from).map(String::as_str), Some("a" | "an")));
    if !matches!(
        w.get(k).map(String::as_str),
        Some("child" | "kid" | "reader" | "student" | "boy" | "girl")
    ) {
        return None;
    }
    k += 1;
    while k < w.len()
        && matches!(
            w[k].as_str(),
            "aged" | "of" | "around" | "about" | "roughly" | "approximately" | "age"
        )
    {
        k += 1;
    }
    let n = number(w.get(k)?)?;
    k += 1;
    if matches!(w.get(k).map(String::as_str), Some("year" | "years"))
        && w.get(k + 1).is_some_and(|x| x == "old")
    {
        k += 2;
    }
    Some((format!("age {n}"), k - from))
}

/// One spelling of an audience: "an executive audience", "executives", "our executives",
/// "executive readers" -> "executive"; "non-technical staff" keeps every word.
fn canonical_audience(words: &str) -> String {
    // Readers without the subject's background, however named.
    if matches!(
        words,
        "layperson"
            | "laypeople"
            | "layman"
            | "laymen"
            | "lay reader"
            | "lay readers"
            | "lay audience"
            | "non expert"
            | "non experts"
            | "non expert reader"
            | "non expert readers"
            | "non specialist"
            | "non specialists"
            | "non specialist audience"
            | "general reader"
            | "general readers"
            | "general audience"
            | "general public"
    ) {
        return "layperson".to_owned();
    }
    words
        .split(' ')
        .filter(|w| {
            !matches!(
                *w,
                "audience" | "audiences" | "reader" | "readers" | "crowd" | "folks" | "people"
            )
        })
        .map(|w| {
            w.strip_suffix('s')
                .filter(|stem| stem.len() >= 4 && !stem.ends_with('s'))
                .unwrap_or(w)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "so a 10-year-old would understand (it)", "in a way a child could follow", "in words a
/// teenager would get", "aimed at executives": the audience, and the words used from `i`.
fn understood_by(w: &[String], i: usize, f: &mut Frame) -> Option<usize> {
    let at = |k: usize| w.get(i + k).map_or("", String::as_str);
    if matches!(at(0), "aimed" | "targeted" | "geared" | "pitched")
        && matches!(at(1), "at" | "towards" | "toward")
    {
        return audience(w, i + 2, f).map(|n| n + 2);
    }
    if !matches!(at(0), "so" | "way" | "words" | "terms") {
        return None;
    }
    let modal = (1..=8).find(|&k| matches!(at(k), "would" | "could" | "can" | "will" | "might"))?;
    if !matches!(at(modal + 1), "understand" | "follow" | "get" | "grasp") {
        return None;
    }
    let from = i + 1 + usize::from(at(1) == "that");
    let mut sub = Frame::default();
    let used = audience(&w[..i + modal], from, &mut sub)?;
    if from + used != i + modal {
        return None;
    }
    set_audience(f, sub.audience?).then_some(())?;
    let tail = usize::from(at(modal + 2) == "it");
    Some(modal + 2 + tail)
}

/// Up to `max` words from `from`, stopping at a word the frame grammar reads itself; articles
/// dropped. `None` when there is no word or the phrase is longer than `max`.
fn phrase_words(w: &[String], from: usize, max: usize) -> Option<(String, usize)> {
    let stop = |x: &str| {
        matches!(
            x,
            "in" | "as"
                | "and"
                | "with"
                | "using"
                | "please"
                | "focusing"
                | "focus"
                | "bullet"
                | "bullets"
                | "json"
                | "table"
                | "paragraph"
                | "summary"
                | "summarize"
                | "into"
                | "for"
        ) || LANGUAGES.iter().any(|(n, _)| *n == x)
            || number(x).is_some()
    };
    let mut out = Vec::new();
    let mut k = from;
    while k < w.len() && !stop(&w[k]) && w[k] != SENTENCE_END {
        if !matches!(w[k].as_str(), "a" | "an" | "the" | "our" | "my" | "your") {
            out.push(w[k].as_str());
        }
        k += 1;
    }
    if out.is_empty() || out.len() > max {
        return None;
    }
    Some((out.join(" "), k - from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &str) -> Frame {
        parse(s).unwrap_or_else(|| panic!("no frame: {s}"))
    }

    #[test]
    fn words_after_a_reference_that_say_how_to_answer_are_not_read_as_its_noun() {
        // "this match report" names the text; "this, 日本語で" and "this sarcastically" do not.
        assert!(parse("Summarize this match report.").is_some());
        assert_eq!(parse("Summarize this, 日本語で please."), None);
        assert_eq!(parse("Summarize this sarcastically."), None);
    }

    #[test]
    fn wordings_of_lengths_audiences_key_points_and_languages_agree() {
        let same = |a: &str, b: &str| {
            let (fa, fb) = (frame(a), frame(b));
            assert!(fa.equivalent(&fb), "{a} / {b}: {fa:?} / {fb:?}");
        };
        same(
            "Summarize the following text in one sentence.",
            "tl;dr in one sentence?",
        );
        same(
            "Summarize the following text in one sentence.",
            "What's the one-sentence version of this?",
        );
        same(
            "Summarize the following text in one sentence.",
            "I don't have time to read this. What does it say, in one sentence?",
        );
        same(
            "Summarize this in about 50 words.",
            "can you sum this up in ~50 words?",
        );
        same(
            "Summarize the following in 3 bullet points.",
            "Give me the key takeaways as three bullet points.",
        );
        same(
            "Summarize the following for an executive audience.",
            "Please condense this into a summary aimed at executives.",
        );
        // A sign-off after the audience or focus is not part of it.
        same(
            "Summarize the HR memo above for new starters.",
            "I need a summary of that HR memo written for new starters. Thanks!",
        );
        same(
            "Summarize these minutes, focusing on the budget decision. Cheers.",
            "Summarise this with the focus on the budget decision, please.",
        );
        same(
            "Summarize the following for a 10-year-old.",
            "Can you sum this up so a 10 year old would understand it?",
        );
        same(
            "Summarize the following for a 10-year-old.",
            "summarize this for my 10-year-old pls",
        );
        same(
            "Summarize the following text in German.",
            "Fasse den folgenden Text auf Deutsch zusammen.",
        );
        same(
            "Summarize the following text in Spanish.",
            "Resumen en español, por favor:",
        );
        same(
            "Summarize the following for a 10-year-old.",
            "Write a summary of the text below for a ten-year-old child.",
        );
        same(
            "Summarize the following for an executive audience.",
            "Can you sum this up for our executives?",
        );
        same(
            "sum this up, mainly interested in the pay and benefits",
            "Summarise the above, concentrating on the pay and benefits.",
        );
        same(
            "Summarize the following text in Spanish.",
            "Give me a Spanish-language summary of the above.",
        );
        same(
            "Summarize this in about 50 words.",
            "hey, 50-word-ish summary of this?",
        );
        same(
            "Summarize the minutes above in 5 bullet points.",
            "Give me the key points of these minutes as five bullets. Cheers.",
        );
        same(
            "Summarize the above in three sentences.",
            "Write a summary of the text above that is three sentences long.",
        );
        same(
            "Summarize the following text in at most fifty words.",
            "Can you condense those release notes to a maximum of 50 words?",
        );
        same(
            "Summarize this memo for new hires.",
            "Please recap this in a way suited to new hires.",
        );
        same(
            "Summarize the text below in under 60 words.",
            "Please summarise this sales report, keeping it below sixty words.",
        );
        let differ = |a: &str, b: &str| {
            let (fa, fb) = (frame(a), frame(b));
            assert!(!fa.equivalent(&fb), "{a} / {b}");
        };
        differ(
            "Summarize this for a 10-year-old.",
            "Summarize this for a 14-year-old.",
        );
        differ(
            "Summarize this for executives.",
            "Summarize this for engineers.",
        );
        differ(
            "Summarize this, focusing on the pay and benefits.",
            "Summarize this, focusing on the pay.",
        );
        differ(
            "Key points of this, please.",
            "Summarize this in one paragraph.",
        );
        differ("tl;dr in one sentence", "tl;dr in two sentences");
        // "The French version" is a translation, not a summary.
        assert_eq!(parse("Give me the French version of this"), None);
    }

    #[test]
    fn equivalent_wordings_share_a_frame() {
        let short = frame("TL;DR:");
        for s in [
            "I don't have time to read this, sum it up briefly",
            "Write a short summary of the article below",
            "Give me a brief summary of this.",
            "Could you please summarize this text concisely?",
        ] {
            assert_eq!(frame(s), short, "{s}");
        }
        let plain = frame("Summarize the following article:");
        assert_eq!(frame("Please write a summary of the text below."), plain);
        // A summary is short by nature: an unspecified length is "short"; prose is the default.
        assert!(plain.equivalent(&short));
        assert!(frame("Summarize this article in a short paragraph:").equivalent(&plain));
        assert!(frame("What is this article about? Please summarize it.").equivalent(&plain));
        assert_eq!(
            frame("Summarize this in 3 bullet points."),
            frame("Give me a three-bullet summary")
        );
    }

    #[test]
    fn a_bare_answer_ages_and_lay_readers_are_read_whatever_the_wording() {
        let bare_title = frame("Suggest one title for the text below and nothing else.");
        for s in [
            "Propose a title for the text above. Return the title alone.",
            "Come up with one title for what I pasted; respond with the title alone.",
            "Can I get a title for this text? Just the title.",
            "Write a fitting title for this text. No explanation needed.",
        ] {
            assert!(frame(s).equivalent(&bare_title), "{s}");
        }
        // "for this text" names the text; "for these executives" names readers.
        assert_eq!(
            frame("Write a summary for the article below.").audience,
            None
        );
        assert!(frame("Write a summary for these executives.")
            .audience
            .is_some_and(|a| a.contains("executive")));
        // Asking for the title alone is not asking for a title (options, a preamble).
        assert!(!frame("Suggest a title for the text below.").equivalent(&bare_title));
        let ten = frame("Summarize this for a 10-year-old.");
        for s in [
            "Summarize this for a kid around ten years old.",
            "Summarize this for a child aged roughly ten.",
            "Summarize the text for a child of about 10.",
        ] {
            assert!(frame(s).equivalent(&ten), "{s}");
        }
        assert!(!frame("Summarize this for a child of about 12.").equivalent(&ten));
        assert!(frame("Summarize this for a non-expert reader.")
            .equivalent(&frame("Summarize this for a layperson.")));
        assert!(!frame("Summarize this for a non-expert reader.")
            .equivalent(&frame("Summarize this for an expert reader.")));
    }

    #[test]
    fn different_lengths_formats_languages_and_foci_differ() {
        let base = frame("Summarize this article in one sentence.");
        assert_ne!(base, frame("Summarize this article in 3 sentences."));
        assert_ne!(
            base,
            frame("Summarize this article in one sentence in French.")
        );
        assert_ne!(
            frame("Summarize this as a bulleted list."),
            frame("Please summarize:")
        );
        assert_ne!(
            frame("Summarize this focusing on costs."),
            frame("Summarize this focusing on risks.")
        );
        assert_ne!(
            frame("Summarize this for executives."),
            frame("Summarize this for engineers.")
        );
        assert_ne!(
            frame("Summarize this"),
            frame("List the key points of this")
        );
    }

    #[test]
    fn references_to_the_text_and_lenient_frames() {
        assert_eq!(
            frame("Summarize this incident report for non-technical executives."),
            frame("Summarize the text for non-technical executives.")
        );
        assert!(
            frame("Summarize these release notes in 3 bullet points.").equivalent(&frame(
                "Give me 3 bullets summarizing the following release notes"
            ))
        );
        // A possessive is no reference: "this report's risks" is a focus the grammar cannot read.
        assert_eq!(parse("Summarize this report's risks"), None);
        let a = parse_lenient("Summarize these minutes for parents as a bulleted list.");
        let b = parse_lenient("Recap these minutes for the parents, a haiku please.");
        assert!(!a.compatible(&b), "bullets against none");
        let c = parse_lenient("Recap the minutes for parents as bullets, kindly.");
        assert!(a.compatible(&c));
    }

    #[test]
    fn unknown_words_leave_no_frame() {
        assert_eq!(parse("Summarize this as a limerick"), None);
        assert_eq!(parse("What is the capital of France?"), None);
        assert_eq!(parse("Summarize this, then rate its accuracy"), None);
        assert_eq!(parse("in French please"), None);
    }
}
