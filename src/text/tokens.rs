//! Tokens of a request text for the guards: words, numbers with units, names and identifiers,
//! quoted spans; plus the light stemming the content-word comparison uses.

use super::lexicon;

/// One word-like token of the text.
#[derive(Debug)]
pub(super) struct Token<'a> {
    pub raw: &'a str,
    /// First token of a sentence (capitalisation says nothing there).
    pub sentence_start: bool,
    /// A part of a hyphenated compound ("short" in "short-term"): it modifies the next part, so
    /// it counts as an ordinary content word, not as a direction, negation or relation word.
    pub compound: bool,
}

/// Prefixes that are written with or without a hyphen ("non-stick" / "nonstick").
const JOINED_PREFIXES: &[&str] = &[
    "non", "re", "pre", "co", "anti", "multi", "sub", "un", "semi", "mid", "inter", "over",
];

/// Plausible base forms of an inflected word ("included" -> "include", "include"...).
pub(super) fn base_forms(w: &str) -> impl Iterator<Item = String> + '_ {
    let mut v = Vec::new();
    for suffix in ["ies", "es", "s", "ed", "d", "ing"] {
        if let Some(stem) = w.strip_suffix(suffix) {
            if stem.len() >= 3 {
                v.push(stem.to_owned());
                if suffix == "ies" {
                    v.push(format!("{stem}y"));
                }
                if suffix == "ing" || suffix == "ed" {
                    v.push(format!("{stem}e"));
                    // "getting" -> "get", "stopped" -> "stop"
                    let b = stem.as_bytes();
                    // ASCII only: equal trailing bytes of a multi-byte character are no
                    // doubled consonant (and cutting one would split the character).
                    if b.len() >= 4
                        && b[b.len() - 1].is_ascii_alphabetic()
                        && b[b.len() - 1] == b[b.len() - 2]
                    {
                        v.push(stem[..stem.len() - 1].to_owned());
                    }
                }
            }
        }
    }
    v.into_iter()
}

/// Words ending in -ly that are not adverbs of a shorter word.
const LY_WORDS: &[&str] = &[
    "family",
    "early",
    "only",
    "apply",
    "reply",
    "supply",
    "july",
    "italy",
    "fly",
    "belly",
    "holy",
    "rely",
    "ally",
    "bully",
    "jelly",
    "rally",
    "silly",
    "ugly",
    "lily",
    "anomaly",
    "assembly",
    "monopoly",
    "butterfly",
    "comply",
    "multiply",
    "imply",
    "homily",
    "jolly",
    "curly",
    "oily",
    "hilly",
    "chilly",
    "likely",
    "lonely",
    "lovely",
    "friendly",
    "elderly",
    "costly",
    "deadly",
    "orderly",
    "scholarly",
    "reply",
    "poly",
    "wholly",
];

/// Words ending in -our / -ise that are not British spellings of -or / -ize words.
const OUR_ISE_WORDS: &[&str] = &[
    "hour",
    "your",
    "four",
    "tour",
    "pour",
    "sour",
    "flour",
    "our",
    "devour",
    "detour",
    "contour",
    "velour",
    "advise",
    "rise",
    "wise",
    "exercise",
    "promise",
    "expertise",
    "noise",
    "raise",
    "praise",
    "otherwise",
    "surprise",
    "enterprise",
    "franchise",
    "paradise",
    "premise",
    "concise",
    "precise",
    "revise",
    "supervise",
    "televise",
    "compromise",
    "merchandise",
    "arise",
    "sunrise",
    "likewise",
    "clockwise",
    "disguise",
    "cruise",
    "bruise",
    "poise",
    "despise",
    "demise",
    "chemise",
    "porpoise",
    "tortoise",
    "treatise",
    "mortise",
    "anise",
    "concierge",
    "advertise",
    "devise",
    "incise",
    "excise",
    "comprise",
    "surmise",
    "improvise",
];

/// British spellings folded to American ones: colour -> color, organise -> organize,
/// analyse -> analyze, centre -> center.
fn american(w: &str) -> String {
    const RULES: &[(&str, &str, &str)] = &[
        // (British suffix, American suffix, the suffix of the word's base form)
        ("isation", "ization", "ise"),
        ("ised", "ized", "ise"),
        ("ising", "izing", "ise"),
        ("ises", "izes", "ise"),
        ("ise", "ize", "ise"),
        ("ysed", "yzed", "yse"),
        ("yse", "yze", "yse"),
        ("ours", "ors", "our"),
        ("our", "or", "our"),
        ("tres", "ters", "tre"),
        ("tre", "ter", "tre"),
    ];
    for (gb, us, base) in RULES {
        if let Some(stem) = w.strip_suffix(gb) {
            if stem.len() >= 3 && !OUR_ISE_WORDS.contains(&format!("{stem}{base}").as_str()) {
                return format!("{stem}{us}");
            }
            return w.to_owned();
        }
    }
    w.to_owned()
}

/// Light stemming: British spelling, -ly adverbs, -ation / -tion nouns of -ate / -t verbs,
/// plural, -ing, -ed, then a final -e ("baking", "baked", "bake" -> "bak"; "safely" -> "saf";
/// "dehydration" -> "dehydrat").
pub(super) fn stem(w: &str) -> String {
    let mut s = american(w);
    if s.len() > 4 && s.ends_with("ies") {
        s.truncate(s.len() - 3);
        s.push('y');
    } else if s.len() > 4
        && (s.ends_with("sses") || s.ends_with("xes") || s.ends_with("ches") || s.ends_with("shes"))
    {
        s.truncate(s.len() - 2);
    } else if s.len() > 3
        && s.ends_with('s')
        && !s.ends_with("ss")
        && !s.ends_with("us")
        && !s.ends_with("is")
    {
        s.truncate(s.len() - 1);
    }
    if s.len() >= 6 && s.ends_with("ly") && !LY_WORDS.contains(&s.as_str()) {
        let cut = if s.ends_with("ically") {
            4
        } else if s.ends_with("ily") {
            s.replace_range(s.len() - 3.., "y");
            0
        } else {
            2
        };
        s.truncate(s.len() - cut);
    }
    if s.len() >= 9 && (s.ends_with("ation") || s.ends_with("tion") && !s.ends_with("ition")) {
        s.truncate(s.len() - 3);
    }
    for suffix in ["ing", "ed"] {
        if s.len() >= suffix.len() + 3 && s.ends_with(suffix) {
            s.truncate(s.len() - suffix.len());
            let b = s.as_bytes();
            let n = b.len();
            // ASCII only: two equal bytes ending a multi-byte character ("₂" is E2 82 82) are
            // not a doubled consonant, and cutting one would split the character (a panic).
            if n >= 2
                && b[n - 1].is_ascii_alphabetic()
                && b[n - 1] == b[n - 2]
                && !matches!(b[n - 1], b'l' | b's' | b'z')
            {
                s.truncate(n - 1);
            }
            break;
        }
    }
    if s.len() > 3 && s.ends_with('e') {
        s.truncate(s.len() - 1);
    }
    // "calorie" / "calories" -> "calori", "city" / "cities" -> "citi".
    let b = s.as_bytes();
    if b.len() > 3 && b[b.len() - 1] == b'y' && !b"aeiou".contains(&b[b.len() - 2]) {
        s.replace_range(s.len() - 1.., "i");
    }
    s
}

/// Identifier-like tokens: mixed letters and digits (gpt-4o, A100), inner capitals (iPhone),
/// acronyms (USD), dotted or underscored names (os.path, snake_case), URLs, paths, handles.
pub(super) fn is_shaped(raw: &str) -> bool {
    let letters = raw.chars().filter(|c| c.is_alphabetic()).count();
    let digits = raw.chars().filter(|c| c.is_ascii_digit()).count();
    if letters == 0 {
        return false;
    }
    let inner_upper =
        raw.chars().skip(1).any(char::is_uppercase) && raw.chars().any(char::is_lowercase);
    let acronym = letters >= 2
        && raw.chars().all(|c| !c.is_lowercase())
        && !lexicon::is_common_capitalized(&raw.to_lowercase());
    let symbols = raw.contains(['.', '_', '/', '\\', '@', '#', ':']);
    (digits > 0) || inner_upper || (acronym && raw != "I") || symbols
}

/// Spans in double, curly or back quotes, and single quotes that are not apostrophes.
pub(super) fn quoted_spans(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let pairs = [('"', '"'), ('“', '”'), ('`', '`'), ('\'', '\''), ('‘', '’')];
    for (open, close) in pairs {
        let mut rest = text;
        while let Some(start) = rest.find(open) {
            let before_ok = open != '\''
                || rest[..start]
                    .chars()
                    .last()
                    .is_none_or(|c| !c.is_alphanumeric());
            let after = &rest[start + open.len_utf8()..];
            let Some(end) = after.find(close) else { break };
            let inner = &after[..end];
            let after_close = &after[end + close.len_utf8()..];
            let after_ok = open != '\''
                || after_close
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric());
            if before_ok && after_ok && !inner.trim().is_empty() && inner.len() <= 200 {
                out.push(
                    inner
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .to_lowercase(),
                );
                rest = after_close;
            } else {
                rest = after;
            }
        }
    }
    out
}

/// `text` with every case-insensitive occurrence of the ASCII `from` replaced by `to`.
pub(super) fn replace_ci(text: &str, from: &str, to: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in lower.match_indices(from) {
        out.push_str(&text[last..at]);
        out.push_str(to);
        last = at + from.len();
    }
    out.push_str(&text[last..]);
    out
}

pub(super) fn contains_at_boundary(hay: &str, needle: &str) -> bool {
    hay.match_indices(needle).any(|(at, _)| {
        let before = hay[..at].chars().last();
        let after = hay[at + needle.len()..].chars().next();
        before.is_none_or(|c| !c.is_alphanumeric()) && after.is_none_or(|c| !c.is_alphanumeric())
    })
}

/// Splits into word-like tokens: letters/digits plus inner `. _ / : @ # ' -` and leading
/// currency symbols. Purely alphabetic hyphenated words are split ("twenty-five", "e-mail").
pub(super) fn tokenize(text: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut sentence_start = true;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let starts = c.is_alphanumeric()
            || (lexicon::currency_symbol(c).is_some()
                && chars.get(i + 1).is_some_and(|(_, n)| n.is_ascii_digit()));
        if !starts {
            if matches!(c, '.' | '!' | '?' | '\n' | ':' | ';') {
                sentence_start = true;
            }
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() {
            let ch = chars[j].1;
            let inner = matches!(
                ch,
                '.' | '_' | '/' | ':' | '@' | '#' | '\'' | '’' | '-' | ',' | '%' | '°'
            ) && chars.get(j + 1).is_some_and(|(_, n)| n.is_alphanumeric());
            let tail = matches!(ch, '%');
            if ch.is_alphanumeric() || ch == '_' || inner || tail {
                j += 1;
            } else {
                break;
            }
        }
        let end = chars.get(j).map_or(text.len(), |(p, _)| *p);
        let raw = &text[at..end];
        push_parts(&mut out, text, at, raw, sentence_start);
        sentence_start = false;
        i = j;
    }
    out
}

/// Pushes the token `raw` (at byte `at` of `text`), split where its parts are words of their own.
fn push_parts<'a>(out: &mut Vec<Token<'a>>, text: &'a str, at: usize, raw: &'a str, start: bool) {
    let push = |out: &mut Vec<Token<'a>>, raw: &'a str, first: bool, compound: bool| {
        out.push(Token {
            raw,
            sentence_start: start && first,
            compound,
        });
    };
    let digit_first = raw.chars().next().is_some_and(|c| c.is_ascii_digit());
    let alpha_hyphen = raw.contains('-') && raw.chars().all(|c| c.is_alphabetic() || c == '-');
    let comma_word = raw.contains(',')
        && !(digit_first
            || raw
                .chars()
                .next()
                .and_then(lexicon::currency_symbol)
                .is_some());
    if alpha_hyphen {
        let parts: Vec<&str> = raw.split('-').filter(|p| !p.is_empty()).collect();
        let lower = raw.to_lowercase();
        // "e-mail", "wi-fi", "non-stick": one word, written either way.
        let joined = parts.iter().any(|p| p.chars().count() <= 2)
            || JOINED_PREFIXES
                .iter()
                .any(|p| lower.starts_with(&format!("{p}-")));
        if joined || parts.len() < 2 {
            push(out, raw, true, false);
        } else {
            for (k, part) in parts.into_iter().enumerate() {
                push(out, part, k == 0, true);
            }
        }
    } else if comma_word {
        for (k, part) in raw.split(',').filter(|p| !p.is_empty()).enumerate() {
            push(out, part, k == 0, false);
        }
    } else if digit_first && raw.contains('-') && raw.split('-').skip(1).any(is_alpha_word) {
        // "6-year-old", "12-inch", "4-week": a number and the words it qualifies.
        for (k, part) in raw.split('-').filter(|p| !p.is_empty()).enumerate() {
            push(out, part, k == 0, false);
        }
    } else if digit_first && is_dimensions(raw) {
        // "12x14": two numbers.
        for (k, part) in raw.split(['x', 'X']).enumerate() {
            push(out, part, k == 0, false);
        }
    } else {
        // A leading minus sign belongs to the number ("-5 °C"), not to an operator.
        let signed = digit_first
            && text[..at].ends_with('-')
            && text[..at - 1]
                .chars()
                .next_back()
                .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '[' | '=' | ',' | ':'));
        let raw = if signed {
            &text[at - 1..at + raw.len()]
        } else {
            raw
        };
        push(out, raw.trim_end_matches('\''), true, false);
    }
}

fn is_alpha_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(char::is_alphabetic)
}

/// "12x14", "1920x1080".
fn is_dimensions(raw: &str) -> bool {
    let parts: Vec<&str> = raw.split(['x', 'X']).collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// A number starting at token `i`: (canonical text, tokens used).
pub(super) fn number_at(tokens: &[Token], i: usize) -> Option<(String, usize)> {
    let raw = tokens[i].raw;
    if let Some(n) = numeric(raw) {
        // "5 million"
        if let Some(m) = tokens
            .get(i + 1)
            .and_then(|t| lexicon::number_word(&t.raw.to_lowercase()))
        {
            if m >= 100.0 {
                if let Ok(v) = n.parse::<f64>() {
                    return Some((fmt_num(v * m), 2));
                }
            }
        }
        return Some((n, 1));
    }
    let lower = raw.to_lowercase();
    let first = lexicon::number_word(&lower)?;
    if lower == "one" && i > 0 && !tokens[i].compound {
        // "which one", "this one", "each one": a pronoun, not a count.
        let prev = tokens[i - 1].raw.to_lowercase();
        if matches!(
            prev.as_str(),
            "which"
                | "this"
                | "that"
                | "each"
                | "every"
                | "any"
                | "no"
                | "the"
                | "another"
                | "other"
                | "some"
                | "last"
                | "next"
                | "first"
                | "a"
                | "one"
                | "no-one"
        ) {
            return None;
        }
    }
    // Combine "twenty five", "two hundred", "five thousand three hundred".
    let (mut total, mut current) = (0.0, first);
    if first >= 1000.0 {
        (total, current) = (first, 0.0);
    }
    let mut used = 1;
    while let Some(v) = tokens
        .get(i + used)
        .and_then(|t| lexicon::number_word(&t.raw.to_lowercase()))
    {
        if v == 100.0 {
            current = current.max(1.0) * 100.0;
        } else if v >= 1000.0 {
            total += current.max(1.0) * v;
            current = 0.0;
        } else if (1.0..100.0).contains(&v)
            && (current % 100.0 == 0.0 || current >= 20.0 && v < 10.0)
        {
            current += v;
        } else {
            break;
        }
        used += 1;
    }
    Some((fmt_num(total + current), used))
}

/// Canonical text of a numeric token ("1,000" -> "1000", "3.0" -> "3", "$5" -> "5 usd",
/// "5kg" -> "5 kg", "2nd" -> "#2"); versions and dates keep their shape.
pub(super) fn numeric(raw: &str) -> Option<String> {
    let (sign, mut s) = match raw.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", raw),
    };
    let mut prefix_unit = None;
    if let Some(c) = s.chars().next() {
        if let Some(u) = lexicon::currency_symbol(c) {
            prefix_unit = Some(u);
            s = &s[c.len_utf8()..];
        }
    }
    if !s.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits_end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '.' | ',' | ':' | '/' | '-')))
        .map_or(s.len(), |(p, _)| p);
    let (num, suffix) = s.split_at(digits_end);
    let suffix = suffix.to_lowercase();
    let plain: String = num.chars().filter(|c| *c != ',').collect();
    let (value, suffix) = match plain.parse::<f64>() {
        // "90k", "$300K": thousands (a round number or money; "401k" is a name).
        Ok(v) if suffix == "k" && (prefix_unit.is_some() || v % 5.0 == 0.0) => {
            (Some(v * 1e3), String::new())
        }
        // "59½": a vulgar fraction.
        Ok(v) if vulgar_fraction(&suffix).is_some() => (
            Some(v + vulgar_fraction(&suffix).unwrap_or(0.0)),
            String::new(),
        ),
        Ok(v) => (Some(v), suffix),
        Err(_) => (None, suffix),
    };
    let mut text = match value {
        Some(v) if num.matches('.').count() <= 1 => format!("{sign}{}", fmt_num(v)),
        _ => format!("{sign}{plain}"),
    };
    if matches!(suffix.as_str(), "st" | "nd" | "rd" | "th") {
        return Some(format!("#{text}"));
    }
    if let Some(u) = prefix_unit {
        text = format!("{text} {u}");
    }
    if !suffix.is_empty() {
        let unit = lexicon::unit(&suffix).map(str::to_owned).unwrap_or(suffix);
        text = format!("{text} {unit}");
    }
    Some(text)
}

fn vulgar_fraction(s: &str) -> Option<f64> {
    Some(match s {
        "½" => 0.5,
        "¼" => 0.25,
        "¾" => 0.75,
        "⅓" => 1.0 / 3.0,
        "⅔" => 2.0 / 3.0,
        _ => return None,
    })
}

pub(super) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// What follows a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum After {
    /// A unit of measure or currency, canonical ("kg", "usd", "°c").
    Unit(String),
    /// A counted noun, stemmed ("books" -> "book").
    Noun(String),
}

/// The unit or counted noun after a number, and the tokens it takes.
pub(super) fn unit_after(tokens: &[Token], i: usize) -> Option<(After, usize)> {
    let t = tokens.get(i)?;
    let lower = t.raw.to_lowercase();
    let next = tokens.get(i + 1).map(|n| n.raw.to_lowercase());
    let next_unit = next.as_deref().and_then(lexicon::unit);
    match (lower.as_str(), next.as_deref()) {
        ("per", Some("cent")) => return Some((After::Unit("%".into()), 2)),
        // "38 degrees Celsius", "10 degrees F": the scale is the unit.
        ("degree" | "degrees" | "deg", _) => {
            return Some(
                match next_unit.filter(|u| matches!(*u, "°c" | "°f" | "k")) {
                    Some(u) => (After::Unit(u.into()), 2),
                    None => (After::Unit("°".into()), 1),
                },
            )
        }
        ("us" | "u.s.", Some("dollar" | "dollars")) => return Some((After::Unit("usd".into()), 2)),
        // "20 square meters", "50 sq ft": an area.
        ("square" | "sq", _) => {
            if let Some(u @ ("m" | "ft" | "km" | "mi" | "cm" | "in" | "yd")) = next_unit {
                return Some((After::Unit(format!("{u}2")), 2));
            }
        }
        _ => {}
    }
    if let Some(u) = lexicon::unit(&lower) {
        return Some((After::Unit(u.to_owned()), 1));
    }
    if lower.chars().all(char::is_alphabetic)
        && !lexicon::is_stopword(&lower)
        && !lexicon::is_generic(&lower)
        && !lexicon::is_negation(&lower)
        && lexicon::direction(&lower).is_none()
        && lexicon::grade(&lower).is_none()
    {
        let canon = lexicon::synonym(&lower).map_or_else(|| stem(&lower), str::to_owned);
        if !lexicon::is_soft_task(&canon) && !lexicon::is_generic(&canon) {
            return Some((After::Noun(canon), 1));
        }
    }
    None
}
