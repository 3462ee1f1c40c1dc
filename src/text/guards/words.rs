//! Words: how a token reads for the guards (normalised form, content word, name, identifier).

use super::super::lexicon::{self, Axis};
use super::super::tokens::{base_forms, stem, Token};

/// The direction of a word or of its inflected form ("increases"), but not of a word the
/// synonym table knows as something else ("news" is not "new").
pub(super) fn direction_of(word: &str) -> Option<(Axis, i8)> {
    lexicon::direction(word).or_else(|| {
        if lexicon::synonym(word).is_some() {
            return None;
        }
        base_forms(word)
            .filter(|b| !UNINFLECTED.contains(&b.as_str()))
            .find_map(|b| lexicon::direction(&b))
    })
}

/// Direction words that take no verb or plural ending: a word that looks like one of them
/// inflected is another word ("pasted", "pasting" / "past"; "posted", "posts" / "post";
/// "lasted" / "last"; "outing" / "out").
const UNINFLECTED: &[&str] = &[
    "past", "post", "pre", "prior", "up", "down", "out", "over", "under", "above", "below", "new",
    "old", "first", "last", "next", "left", "right", "inner", "outer", "upper", "before", "after",
    "since", "until", "till",
];

/// Phrasal verbs whose particle names no direction ("sum up", "break the text down", "pull out
/// the key points"): the request is the same with another verb ("summarize", "analyse",
/// "extract"). Those with a direction ("round up" / "round down", "scale up", "turn down")
/// are not here.
const IDIOMS: &[(&str, &str)] = &[
    ("sum", "up"),
    ("write", "up"),
    ("wrap", "up"),
    ("look", "up"),
    ("break", "down"),
    ("boil", "down"),
    ("narrow", "down"),
    ("pull", "out"),
    ("point", "out"),
    ("lay", "out"),
    ("spell", "out"),
    ("set", "out"),
    ("write", "out"),
    ("list", "out"),
    ("pick", "out"),
    ("figure", "out"),
    ("find", "out"),
    ("work", "out"),
    ("carry", "out"),
];
/// Words between an idiom's verb and its particle, at most ("break the passage below down").
const IDIOM_GAP: usize = 4;

/// True when `word` (token `i`) is the particle of an idiom of [`IDIOMS`] whose verb stands at
/// most [`IDIOM_GAP`] words before it in the same sentence, or the verb of one whose particle
/// follows so.
pub(super) fn is_idiom_part(tokens: &[Token], i: usize, word: &str) -> bool {
    // Token `k` as written and its base forms, read once per token.
    let forms = |k: usize| {
        let w = normalize(tokens[k].raw);
        let mut f: Vec<String> = base_forms(&w).collect();
        f.push(w);
        f
    };
    if matches!(word, "up" | "down" | "out") {
        if tokens[i].sentence_start {
            return false;
        }
        for k in (i.saturating_sub(IDIOM_GAP + 1)..i).rev() {
            let f = forms(k);
            if IDIOMS
                .iter()
                .any(|&(v, p)| p == word && f.iter().any(|x| x == v))
            {
                return true;
            }
            if tokens[k].sentence_start {
                break;
            }
        }
        return false;
    }
    let f = forms(i);
    let after: Vec<String> = tokens[i + 1..]
        .iter()
        .take(IDIOM_GAP + 1)
        .take_while(|t| !t.sentence_start)
        .map(|t| normalize(t.raw))
        .collect();
    IDIOMS
        .iter()
        .any(|&(v, p)| f.iter().any(|x| x == v) && after.iter().any(|x| x == p))
}

/// Nouns that name the text a request is about ("this news story", "the email below").
const DOCUMENT_NOUNS: &[&str] = &[
    "news",
    "story",
    "stories",
    "post",
    "email",
    "e-mail",
    "message",
    "report",
    "letter",
    "transcript",
    "page",
    "thread",
    "note",
    "memo",
    "essay",
    "excerpt",
    "extract",
];

/// "this news story", "the following email", "the article below": a noun that points at the
/// text the request is about says nothing the text does not ("Summarize this news article"
/// asks what "Summarize the following:" asks).
pub(super) fn is_document_reference(tokens: &[Token], i: usize, word: &str) -> bool {
    const POINTERS: &[&str] = &[
        "this",
        "these",
        "that",
        "following",
        "above",
        "below",
        "attached",
    ];
    let near = |k: usize| {
        tokens
            .get(k)
            .is_some_and(|t| POINTERS.contains(&normalize(t.raw).as_str()))
    };
    DOCUMENT_NOUNS.contains(&word)
        && ((i >= 1 && near(i - 1)) || (i >= 2 && near(i - 2)) || near(i + 1))
}

/// "the passage below", "the text above", "see below", "what's below?": a pointer at the text
/// the request is about, not a side of a threshold ("temperatures below zero"). Over the same
/// text, "the passage below" and "what I pasted above" ask the same.
pub(super) fn is_text_pointer(tokens: &[Token], i: usize, word: &str) -> bool {
    const BEFORE: &[&str] = &[
        "the",
        "pasted",
        "see",
        "shown",
        "quoted",
        "given",
        "provided",
        "text",
        "passage",
        "article",
        "document",
        "doc",
        "content",
        "notes",
        "piece",
        "section",
        "paragraph",
        "summary",
        "review",
        "notice",
        "proposal",
        "writeup",
        "minutes",
        "listing",
    ];
    // "the below-average students" compares.
    if !matches!(word, "above" | "below") || i == 0 || tokens[i].compound {
        return false;
    }
    let prev = normalize(tokens[i - 1].raw);
    // The sentence ends here, or a placeholder of the text follows.
    let ends = tokens
        .get(i + 1)
        .is_none_or(|t| t.sentence_start || t.raw == super::super::operands::PLACEHOLDER);
    BEFORE.contains(&prev.as_str())
        || DOCUMENT_NOUNS.contains(&prev.as_str())
        || (ends && matches!(prev.as_str(), "what" | "whats" | "is" | "here"))
}

/// Determiners start a noun phrase ("the", "my", "this"; "a" / "an" are read apart).
pub(super) const DETERMINERS: &[&str] = &[
    "the", "my", "your", "our", "his", "her", "their", "its", "this", "that", "these", "those",
];

/// Quantifiers and "of" continue a noun phrase; other function words end it.
pub(super) const PHRASE_WORDS: &[&str] = &["some", "any", "each", "every", "all", "of", "one's"];

/// The lower-cased word of a token: possessive and quotes dropped, hyphens of a joined
/// compound removed ("Wi-Fi" -> "wifi").
pub(super) fn normalize(raw: &str) -> String {
    let lower = raw.to_lowercase();
    let w = lower.trim_end_matches("'s").trim_matches('\'');
    if w.contains('-') && w.chars().all(|c| c.is_alphabetic() || c == '-') {
        w.replace('-', "")
    } else {
        w.to_owned()
    }
}

/// Most words in capitals: capitalisation carries no information.
pub(super) fn is_shouting(tokens: &[Token]) -> bool {
    let words: Vec<&Token> = tokens
        .iter()
        .filter(|t| t.raw.chars().filter(|c| c.is_alphabetic()).count() >= 2)
        .collect();
    let caps = words
        .iter()
        .filter(|t| t.raw.chars().all(|c| !c.is_lowercase()))
        .count();
    caps * 2 > words.len()
}

/// An identifier as an entity: lower case, "ETFs" -> "etf", "Wi-Fi" -> "wifi".
pub(super) fn entity_of(raw: &str) -> String {
    let plural_acronym = raw.len() >= 3
        && raw.ends_with('s')
        && raw[..raw.len() - 1].chars().all(|c| c.is_ascii_uppercase());
    let raw = if plural_acronym {
        &raw[..raw.len() - 1]
    } else {
        raw
    };
    let lower = raw.to_lowercase();
    if lower.chars().all(|c| c.is_alphabetic() || c == '-') {
        lower.replace('-', "")
    } else {
        lower
    }
}

/// "US", "IT": an acronym spelled like a function word.
pub(super) fn is_stopword_acronym(raw: &str) -> bool {
    raw.len() >= 2
        && raw.chars().all(|c| c.is_ascii_uppercase())
        && lexicon::is_stopword(&raw.to_lowercase())
}

pub(super) fn marker_name(w: &str) -> &'static str {
    match w {
        "from" => "from",
        "than" => "than",
        "over" | "instead" => "over",
        "per" => "per",
        _ => "to",
    }
}

/// The canonical content word for `word`, or None for function words, framing, negation,
/// direction and degree words and numbers.
pub(super) fn content_word(word: &str) -> Option<String> {
    if word.is_empty()
        || !word.chars().any(char::is_alphabetic)
        || lexicon::is_negation(word)
        || lexicon::direction(word).is_some()
        || lexicon::grade(word).is_some()
        || lexicon::number_word(word).is_some()
        || lexicon::is_stopword(word)
        || lexicon::is_generic(word)
    {
        return None;
    }
    if let Some(s) = lexicon::synonym(word)
        .or_else(|| base_forms(word).find_map(|b| lexicon::synonym(&b)))
        .or_else(|| lexicon::unit(word).filter(|_| word.len() >= 2))
    {
        return Some(s.to_owned());
    }
    if base_forms(word).any(|b| {
        lexicon::direction(&b).is_some() || lexicon::is_generic(&b) || lexicon::grade(&b).is_some()
    }) {
        return None;
    }
    Some(stem(word))
}

/// A capitalised word in the middle of a sentence that is not a function or framing word
/// ("is that OK?"). At the start of a sentence capitals say nothing ("Hiking at 10°C ...",
/// "Integrate 1/x"); such a word is still compared as a content word.
pub(super) fn is_name(tok: &Token) -> bool {
    let mut chars = tok.raw.chars();
    let first_upper = chars.next().is_some_and(char::is_uppercase);
    if !first_upper || tok.raw.len() < 2 || tok.sentence_start {
        return false;
    }
    let lower = normalize(tok.raw);
    !(lower.starts_with("i'")
        || lexicon::is_stopword(&lower)
        || lexicon::is_generic(&lower)
        || lexicon::is_negation(&lower))
}

/// Pushes the run of capitalised words starting at `i` as one entity ("New York City"), unless
/// it continues a run already pushed; returns the run pushed.
pub(super) fn push_name(entities: &mut Vec<String>, tokens: &[Token], i: usize) -> Option<String> {
    if i > 0 && is_name(&tokens[i - 1]) {
        return None;
    }
    let run: Vec<String> = tokens[i..]
        .iter()
        .take_while(|t| is_name(t))
        .map(|t| normalize(t.raw))
        .collect();
    let run = run.join(" ");
    entities.push(run.clone());
    Some(run)
}
