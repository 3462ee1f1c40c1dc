//! Operands: the parts of a prompt that the instruction works on, found by their shape. An
//! operand must match *exactly* (after whitespace normalisation) for any semantic hit: a
//! one-character change inside pasted code, data or a quotation is always a miss, however close
//! the two prompts' vectors are. Only the instruction around them is matched loosely.
//!
//! Found, in this order, each replaced by [`PLACEHOLDER`] in the instruction:
//! 1. **blocks**: fenced (```` ``` ````, `~~~`, `"""`, `'''`) and tagged (`<document>...</document>`,
//!    any `<name>` with its closing tag);
//! 2. **lines** (short prompts only): runs of code lines (statement ends, braces, comparison and
//!    arrow operators, assignments, calls, definitions), data lines (CSV/TSV rows with the same
//!    number of fields, Markdown table rows, JSON that opens a line, `key: value` runs, log lines);
//! 3. **inline** spans: quoted text (`"..."`, `'...'` at word boundaries, `` `...` ``) and
//!    inline JSON objects or arrays.
//!
//! Every pass is linear in the text (a bracket or quote is matched by one forward scan, tags by
//! one pass that records each name's first opening and last closing).

use std::collections::HashMap;

/// What stands for an operand in the instruction (read by neither the embedding model nor the
/// guards as content).
pub const PLACEHOLDER: &str = "§";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fenced or tagged block.
    Block,
    Code,
    Data,
    Quote,
    /// The document of a long prompt.
    Document,
}

impl Kind {
    pub fn tag(self) -> &'static [u8] {
        match self {
            Kind::Block => b"block",
            Kind::Code => b"code",
            Kind::Data => b"data",
            Kind::Quote => b"quote",
            Kind::Document => b"document",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operand {
    pub kind: Kind,
    /// The operand's text as written (normalised by the caller before fingerprinting).
    pub text: String,
    /// For blocks: the fence's info string (```` ```python ````), empty otherwise.
    pub info: String,
}

/// Replaces the spans (sorted, non-overlapping byte ranges of `text`) by the placeholder and
/// pushes them as operands of `kind`.
fn cut(
    text: &str,
    spans: &[(usize, usize, usize, usize, String)],
    kind: Kind,
    out: &mut Vec<Operand>,
) -> String {
    let mut rest = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, inner_start, inner_end, info) in spans {
        rest.push_str(&text[at..*start]);
        rest.push(' ');
        rest.push_str(PLACEHOLDER);
        rest.push(' ');
        out.push(Operand {
            kind,
            text: text[*inner_start..*inner_end].to_owned(),
            info: info.clone(),
        });
        at = *end;
    }
    rest.push_str(&text[at..]);
    rest
}

/// Step 1: fenced and tagged blocks.
pub fn blocks(text: &str, out: &mut Vec<Operand>) -> String {
    let mut spans = fences(text);
    spans.extend(tags(text));
    spans.sort_by_key(|s| (s.0, std::cmp::Reverse(s.1)));
    // Outermost blocks only.
    let mut kept: Vec<(usize, usize, usize, usize, String)> = Vec::new();
    for s in spans {
        if kept.last().is_none_or(|k| s.0 >= k.1) {
            kept.push(s);
        }
    }
    cut(text, &kept, Kind::Block, out)
}

/// Fenced blocks: a line opening with ``` or ~~~ up to the next line opening with the same
/// fence; `"""` / `'''` pairs anywhere.
fn fences(text: &str) -> Vec<(usize, usize, usize, usize, String)> {
    let mut out = Vec::new();
    // Line fences.
    let mut open: Option<(usize, usize, &str, String)> = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        for fence in ["```", "~~~"] {
            if indent <= 3 && t.starts_with(fence) {
                match &open {
                    None => {
                        let info = t[3..].trim().to_owned();
                        open = Some((pos, pos + line.len(), fence, info));
                    }
                    Some((start, body, f, info)) if *f == fence => {
                        out.push((*start, pos + line.len(), *body, pos, info.clone()));
                        open = None;
                    }
                    Some(_) => {}
                }
                break;
            }
        }
        pos += line.len();
    }
    // Triple quotes, paired in order.
    for fence in ["\"\"\"", "'''"] {
        let mut at = 0;
        while let Some(o) = text[at..].find(fence) {
            let open = at + o;
            let body = open + 3;
            let Some(c) = text[body..].find(fence) else {
                break;
            };
            let close = body + c;
            out.push((open, close + 3, body, close, String::new()));
            at = close + 3;
        }
    }
    out
}

/// `<name ...>` ... `</name>`: per name, its first opening and its last closing.
fn tags(text: &str) -> Vec<(usize, usize, usize, usize, String)> {
    let b = text.as_bytes();
    let mut first_open: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut last_close: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let closing = b.get(i + 1) == Some(&b'/');
        let name_start = i + 1 + usize::from(closing);
        let mut j = name_start;
        while j < b.len()
            && j - name_start <= 20
            && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'-')
        {
            j += 1;
        }
        if j == name_start || j - name_start > 20 {
            i += 1;
            continue;
        }
        let name = &text[name_start..j];
        // Attributes up to '>' on the same line, bounded.
        let mut k = j;
        while k < b.len() && k - j <= 200 && b[k] != b'>' && b[k] != b'\n' && b[k] != b'<' {
            k += 1;
        }
        if b.get(k) != Some(&b'>') || (closing && k != j) {
            i += 1;
            continue;
        }
        if closing {
            last_close.insert(name, (i, k + 1));
        } else {
            first_open.entry(name).or_insert((i, k + 1));
        }
        i = k + 1;
    }
    let mut out = Vec::new();
    for (name, (o_start, o_end)) in first_open {
        if let Some(&(c_start, c_end)) = last_close.get(name) {
            if c_start >= o_end {
                out.push((o_start, c_end, o_end, c_start, name.to_owned()));
            }
        }
    }
    out
}

/// Step 2: runs of code and data lines (short prompts).
pub fn lines(text: &str, out: &mut Vec<Operand>) -> String {
    let ls: Vec<(usize, &str)> = {
        let mut pos = 0;
        text.split_inclusive('\n')
            .map(|l| {
                let at = pos;
                pos += l.len();
                (at, l)
            })
            .collect()
    };
    let brackets = bracket_ends(text);
    let mut spans: Vec<(usize, usize, usize, usize, String, Kind)> = Vec::new();
    let mut i = 0;
    while i < ls.len() {
        let (at, line) = ls[i];
        let t = line.trim();
        // JSON opening a line: up to its balanced end.
        if (t.starts_with('{') || t.starts_with('[')) && !is_prose(t) {
            let start = at + (line.len() - line.trim_start().len());
            if let Some(&end) = brackets.get(&start) {
                spans.push((at, end, start, end, String::new(), Kind::Data));
                while i < ls.len() && ls[i].0 < end {
                    i += 1;
                }
                continue;
            }
        }
        let run = |pred: &dyn Fn(&str) -> bool, min: usize, i: usize| -> usize {
            let mut j = i;
            while j < ls.len() && pred(ls[j].1) {
                j += 1;
            }
            if j - i >= min {
                j
            } else {
                i
            }
        };
        // Code: a line with a code signal, extended by indented, brace or code lines.
        if is_code_line(line) {
            let mut j = i + 1;
            while j < ls.len() {
                let l = ls[j].1;
                let blank_then_code = l.trim().is_empty()
                    && ls
                        .get(j + 1)
                        .is_some_and(|n| is_code_line(n.1) || is_indented_code(n.1));
                if is_code_line(l) || is_indented_code(l) || blank_then_code {
                    j += 1;
                } else {
                    break;
                }
            }
            let end = ls[j - 1].0 + ls[j - 1].1.len();
            spans.push((at, end, at, end, String::new(), Kind::Code));
            i = j;
            continue;
        }
        let j = run(&|l: &str| l.trim_start().starts_with('|'), 2, i)
            .max(run(&is_log_line, 1, i))
            .max(run(&is_key_value, 2, i))
            .max(same_fields_run(&ls, i));
        if j > i {
            let end = ls[j - 1].0 + ls[j - 1].1.len();
            spans.push((at, end, at, end, String::new(), Kind::Data));
            i = j;
            continue;
        }
        i += 1;
    }
    let mut rest = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, inner_start, inner_end, info, kind) in spans {
        rest.push_str(&text[at..start]);
        rest.push_str(" § \n");
        out.push(Operand {
            kind,
            text: text[inner_start..inner_end].to_owned(),
            info,
        });
        at = end;
    }
    rest.push_str(&text[at..]);
    rest
}

/// A sentence of prose: mostly lower-case words, ending like a sentence.
fn is_prose(t: &str) -> bool {
    let words: Vec<&str> = t.split_whitespace().collect();
    if words.len() < 5 {
        return false;
    }
    let wordy = words
        .iter()
        .filter(|w| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            !w.is_empty() && w.chars().all(char::is_alphabetic)
        })
        .count();
    wordy * 10 >= words.len() * 7 && t.ends_with(['.', '?', '!'])
}

const CODE_OPERATORS: &[&str] = &[
    "==", "!=", "=>", "->", "::", "&&", "||", "+=", "-=", "*=", "/=", ":=", "<-", "++", "<<", ">>",
];

const CODE_STARTS: &[&str] = &[
    "def ",
    "fn ",
    "func ",
    "function ",
    "class ",
    "struct ",
    "impl ",
    "import ",
    "from ",
    "#include",
    "package ",
    "public ",
    "private ",
    "protected ",
    "return ",
    "let ",
    "const ",
    "var ",
    "for (",
    "for(",
    "if (",
    "if(",
    "while (",
    "while(",
    "elif ",
    "else:",
    "else {",
    "try:",
    "except",
    "catch",
    "switch",
    "case ",
    "SELECT ",
    "UPDATE ",
    "INSERT ",
    "DELETE ",
    "CREATE ",
    "ALTER ",
    "DROP ",
    "WITH ",
    "echo ",
    "print(",
    "console.",
    "$ ",
    "sudo ",
    "git ",
    "npm ",
    "pip ",
    "cargo ",
    "docker ",
    "kubectl ",
    "@",
];

/// A line that reads as code, not prose.
fn is_code_line(line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() || is_prose(t) {
        return false;
    }
    let ends = [";", "{", "}", "};", "});", ");", "):", "=>", "[", "]", "],"];
    if ends.iter().any(|e| t.ends_with(e)) && !t.ends_with("...") {
        return true;
    }
    if CODE_OPERATORS.iter().any(|op| t.contains(op)) {
        return true;
    }
    if CODE_STARTS.iter().any(|s| t.starts_with(s)) && t.contains(['(', '=', ':', '{', ' ']) {
        // "From Paris to Rome" is prose: a `from` line needs an `import`.
        if t.starts_with("from ") && !t.contains(" import ") {
            return false;
        }
        return t.split_whitespace().count() <= 12 || t.contains(['(', '=', '{', ';']);
    }
    // A shell command: a lower-case program name, then flags or paths (`rm -rf ./build/*`).
    let mut words = t.split_whitespace();
    if let (Some(cmd), Some(_)) = (words.next(), t.split_whitespace().nth(1)) {
        let program = cmd
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && cmd.len() <= 20;
        let argv = words.all(|w| {
            w.starts_with('-')
                || w.contains(['/', '*', '.', '=', '$', '~'])
                || w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        });
        let flagged = t.split_whitespace().skip(1).any(|w| {
            (w.starts_with('-')
                && w.len() > 1
                && w[1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '-'))
                || w.contains('/')
        });
        if program && argv && flagged && !t.ends_with(['.', '?', '!']) {
            return true;
        }
    }
    // `name = value`, `obj.method(args)`, `x[i] = y`
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '$'))
    };
    if let Some((lhs, rhs)) = t.split_once('=') {
        if ident(lhs.trim()) && !rhs.trim().is_empty() && !lhs.trim().contains(' ') {
            return true;
        }
    }
    if let Some(open) = t.find('(') {
        if open > 0 && ident(&t[..open]) && t.ends_with(')') && t[..open].contains(['.', '_']) {
            return true;
        }
    }
    false
}

/// Indented with code symbols: the body of a block whose first line was code.
fn is_indented_code(line: &str) -> bool {
    let t = line.trim_start();
    (line.starts_with("    ") || line.starts_with('\t') || line.starts_with("  "))
        && !t.is_empty()
        && !is_prose(t)
}

/// `2024-05-01 12:00:03 ERROR ...`, `[12:00:03] ...`, `ERROR: ...`.
fn is_log_line(line: &str) -> bool {
    let t = line.trim_start().trim_start_matches('[').as_bytes();
    let date = t.len() >= 10
        && t[..4].iter().all(u8::is_ascii_digit)
        && t[4] == b'-'
        && t[5..7].iter().all(u8::is_ascii_digit)
        && t[7] == b'-';
    let time = t.len() >= 8
        && t[..2].iter().all(u8::is_ascii_digit)
        && t[2] == b':'
        && t[3..5].iter().all(u8::is_ascii_digit)
        && t[5] == b':';
    date || time
}

/// `Name: Ada`, `Total price: 12.50 EUR`: a short key (at most 4 words, no sentence inside it).
fn is_key_value(line: &str) -> bool {
    let t = line.trim();
    let Some((key, value)) = t.split_once(':') else {
        return false;
    };
    let key = key.trim_start_matches(['-', '*', ' ']);
    !key.is_empty()
        && key.len() <= 40
        && key.split_whitespace().count() <= 4
        && !key.contains(['.', '?', '!', ','])
        && !value.trim().is_empty()
        && !value.starts_with("//")
        && t.len() <= 300
}

/// Rows with the same number (>= 1) of `,`, `;` or tab separators, not ending like sentences.
fn same_fields_run(ls: &[(usize, &str)], i: usize) -> usize {
    let fields = |l: &str, sep: char| -> usize {
        let t = l.trim();
        if t.is_empty() || t.ends_with(['.', '?', '!', ':']) || is_prose(t) {
            return 0;
        }
        t.matches(sep).count()
    };
    let mut best = i;
    for sep in [',', ';', '\t'] {
        let n = fields(ls[i].1, sep);
        if n == 0 {
            continue;
        }
        let mut j = i + 1;
        while j < ls.len() && fields(ls[j].1, sep) == n {
            j += 1;
        }
        if j - i >= 2 {
            best = best.max(j);
        }
    }
    best
}

/// For every `{` / `[` of `text` that closes, the byte offset just past its closing bracket
/// (brackets inside `"strings"` skipped): one pass with a stack.
fn bracket_ends(text: &str) -> HashMap<usize, usize> {
    let mut ends = HashMap::new();
    let mut stack: Vec<(usize, u8)> = Vec::new();
    let mut in_str = false;
    let mut escaped = false;
    for (i, &c) in text.as_bytes().iter().enumerate() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') | (false, b'\n') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => stack.push((i, c)),
            b'}' | b']' => {
                let want = if c == b'}' { b'{' } else { b'[' };
                match stack.pop() {
                    Some((open, o)) if o == want => {
                        ends.insert(open, i + 1);
                    }
                    // A stray closing bracket: nothing open matches it any more.
                    _ => stack.clear(),
                }
            }
            _ => {}
        }
    }
    ends
}

/// Step 3: quoted spans, backtick spans and inline JSON in the rest of the prompt.
pub fn inline(text: &str, out: &mut Vec<Operand>) -> String {
    let b = text.as_bytes();
    let brackets = bracket_ends(text);
    // Where `:`, `,` and `"` occur: whether a bracketed span holds data is one binary search,
    // not a scan of the span (nested brackets would make that quadratic).
    let data_marks: Vec<usize> = (0..b.len())
        .filter(|&i| matches!(b[i], b':' | b',' | b'"'))
        .collect();
    let marked = |from: usize, to: usize| {
        let k = data_marks.partition_point(|&p| p < from);
        data_marks.get(k).is_some_and(|&p| p < to)
    };
    let mut spans: Vec<(usize, usize, usize, usize, String)> = Vec::new();
    // Closing positions per quote character, so each opening finds its closing by advancing a
    // cursor (linear overall).
    let closes = |q: u8| -> Vec<usize> {
        (0..b.len())
            .filter(|&i| b[i] == q && closes_at(b, i, q))
            .collect()
    };
    let mut close_lists: [(u8, Vec<usize>, usize); 3] = [
        (b'"', closes(b'"'), 0),
        (b'\'', closes(b'\''), 0),
        (b'`', closes(b'`'), 0),
    ];
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some((_, list, cursor)) = close_lists.iter_mut().find(|(q, _, _)| *q == c) {
            if opens_at(b, i, c) {
                while *cursor < list.len() && list[*cursor] <= i {
                    *cursor += 1;
                }
                if let Some(&close) = list.get(*cursor) {
                    if close > i + 1 {
                        spans.push((i, close + 1, i + 1, close, String::new()));
                        i = close + 1;
                        continue;
                    }
                }
            }
        }
        if let Some(&end) = brackets.get(&i) {
            if end - i > 2 && marked(i, end) {
                spans.push((i, end, i, end, String::new()));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    cut(text, &spans, Kind::Quote, out)
}

/// An opening quote: not after a letter or digit, not before a space.
fn opens_at(b: &[u8], i: usize, q: u8) -> bool {
    let before_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || (q != b'`' && b[i - 1] == q));
    let after_ok = b.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace());
    before_ok && after_ok
}

/// A closing quote: not after a space, not before a letter or digit.
fn closes_at(b: &[u8], i: usize, _q: u8) -> bool {
    let before_ok = i > 0 && !b[i - 1].is_ascii_whitespace();
    let after_ok = b.get(i + 1).is_none_or(|c| !c.is_ascii_alphanumeric());
    before_ok && after_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_and_rest(text: &str) -> (Vec<(Kind, String)>, String) {
        let mut ops = Vec::new();
        let rest = blocks(text, &mut ops);
        let rest = lines(&rest, &mut ops);
        let rest = inline(&rest, &mut ops);
        let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
        (ops.into_iter().map(|o| (o.kind, o.text)).collect(), rest)
    }

    #[test]
    fn fenced_tagged_and_quoted_operands() {
        let (ops, rest) =
            kinds_and_rest("Explain this:\n```js\nlet x = 1;\n```\nand <doc>hello</doc> please");
        assert_eq!(
            ops,
            [
                (Kind::Block, "let x = 1;\n".into()),
                (Kind::Block, "hello".into())
            ]
        );
        assert_eq!(rest, "Explain this: § and § please");
        let (ops, rest) =
            kinds_and_rest("What's the meaning of 'carpe diem' in \"Dead Poets Society\"?");
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].1, "carpe diem");
        assert_eq!(rest, "What's the meaning of § in § ?");
        let (ops, _) = kinds_and_rest("Parse {\"a\": [1, 2]} for me");
        assert_eq!(ops, [(Kind::Quote, "{\"a\": [1, 2]}".into())]);
    }

    #[test]
    fn code_and_data_lines() {
        let (ops, rest) =
            kinds_and_rest("Why does this fail?\nfor i in range(10):\n    print(i)\nThanks");
        assert_eq!(ops[0].0, Kind::Code);
        assert!(ops[0].1.contains("print(i)"));
        assert_eq!(rest, "Why does this fail? § Thanks");
        let (ops, _) = kinds_and_rest("Which city is largest?\nname,pop\nOslo,700\nBergen,290");
        assert_eq!(ops, [(Kind::Data, "name,pop\nOslo,700\nBergen,290".into())]);
        let (ops, _) = kinds_and_rest("Order:\nItem: boots\nSize: 44\nWhat should I return?");
        assert_eq!(ops[0].0, Kind::Data);
        // Prose is not code, even with an operator in it.
        let (ops, _) = kinds_and_rest("Is it true that x == y holds for every real number here?");
        assert!(ops.is_empty());
        let (ops, _) = kinds_and_rest("How do I get from Paris to Rome by train?");
        assert!(ops.is_empty());
        let (ops, rest) = kinds_and_rest("Is this command safe to run?\nrm -rf ./build/*");
        assert_eq!(ops, [(Kind::Code, "rm -rf ./build/*".into())]);
        assert_eq!(rest, "Is this command safe to run? §");
        let (ops, _) = kinds_and_rest("Is this safe?\ngit push --force origin main");
        assert_eq!(ops.len(), 1);
    }

    #[test]
    fn hostile_input_is_read_in_one_pass() {
        // Unclosed tags, quotes and brackets by the hundred thousand: each scan is linear (a
        // quadratic one would take minutes here), and nothing unbalanced becomes an operand.
        let (ops, rest) = kinds_and_rest(&"<a>".repeat(100_000));
        assert!(ops.is_empty(), "{}", ops.len());
        assert!(rest.len() >= 300_000);
        let (ops, _) = kinds_and_rest(&"\"'`{[ x".repeat(50_000));
        assert!(ops.len() <= 150_000);
        let nested = "[".repeat(200_000) + &"]".repeat(200_000);
        let (ops, _) = kinds_and_rest(&format!("Sort {nested} now"));
        assert!(ops.len() <= 1);
    }
}
