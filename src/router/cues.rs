//! Cheap features of a prompt, read without a model: its length, whether it carries code, maths
//! or a document, how many questions and constraints it has, how long an answer it asks for, and
//! how many specialist (legal, financial, clinical, security) and reasoning terms it uses. With
//! the prompt's embedding they make the difficulty score (`difficulty.rs`).
//!
//! One pass over the words of the last user turn; no allocation (words are folded to ASCII lower
//! case in a stack buffer, and words longer than it cannot be lexicon terms anyway).

use std::collections::HashSet;
use std::sync::OnceLock;

/// Number of features in [`Cues::vector`].
pub const N_CUES: usize = 12;

/// What the cues say, in the units of [`Cues::vector`]'s inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cues {
    /// Characters of the last user turn.
    pub chars: u32,
    /// It carries a document (a long text split off the instruction).
    pub document: bool,
    pub code: bool,
    pub math: bool,
    /// Question marks.
    pub questions: u16,
    /// It asks for a long answer (detailed, in depth, N words with N >= 300, pages, an essay).
    pub long_answer: bool,
    /// It asks for a short one (one word, one sentence, yes or no, a label, briefly).
    pub short_answer: bool,
    /// List items and constraint words (must, at least, no more than, exactly, ...).
    pub constraints: u16,
    /// Specialist terms (legal, financial, clinical, security).
    pub domain: u16,
    /// Reasoning and engineering terms (prove, design, trade-off, concurrency, ...).
    pub reasoning: u16,
    /// Share of letters outside ASCII (another script or language).
    pub non_ascii: f32,
    /// Earlier user or assistant turns.
    pub multi_turn: bool,
}

impl Cues {
    /// The cues of `text` (the last user turn). `document`: the prompt parser found a document.
    pub fn extract(text: &str, document: bool, multi_turn: bool) -> Cues {
        let mut c = Cues {
            chars: text.chars().count().min(u32::MAX as usize) as u32,
            document,
            multi_turn,
            ..Cues::default()
        };
        let (mut letters, mut foreign) = (0u32, 0u32);
        for ch in text.chars() {
            if ch.is_alphabetic() {
                letters += 1;
                foreign += u32::from(!ch.is_ascii());
            }
            match ch {
                '?' | '？' => c.questions = c.questions.saturating_add(1),
                '∑' | '∫' | '√' | '≤' | '≥' | '≠' | '∀' | '∃' | '∈' | 'π' | '∞' | '→' => {
                    c.math = true
                }
                _ => {}
            }
        }
        c.non_ascii = if letters == 0 {
            0.0
        } else {
            foreign as f32 / letters as f32
        };
        c.code = text.contains("```") || code_lines(text) >= 2;
        c.math |= text.contains("\\frac")
            || text.contains("\\sum")
            || text.contains("\\int")
            || text.contains("$$")
            || equation(text);
        for line in text.lines() {
            let t = line.trim_start();
            let item = t.starts_with("- ")
                || t.starts_with("* ")
                || t.starts_with("• ")
                || t.split_once(['.', ')']).is_some_and(|(n, rest)| {
                    !n.is_empty()
                        && n.len() <= 2
                        && n.bytes().all(|b| b.is_ascii_digit())
                        && rest.starts_with(' ')
                });
            c.constraints = c.constraints.saturating_add(u16::from(item));
        }
        let lex = lexicon();
        let mut prev_number: Option<u32> = None;
        let mut prev: [u8; WORD] = [0; WORD];
        let mut prev_len = 0usize;
        let mut buf = [0u8; WORD];
        for word in text.split(|ch: char| !(ch.is_alphanumeric() || ch == '-' || ch == ';')) {
            let Some(w) = fold(word, &mut buf) else {
                prev_number = None;
                prev_len = 0;
                continue;
            };
            let p = &prev[..prev_len];
            if lex.domain.contains(w) {
                c.domain = c.domain.saturating_add(1);
            }
            if lex.reasoning.contains(w) {
                c.reasoning = c.reasoning.saturating_add(1);
            }
            if lex.math.contains(w) {
                c.math = true;
            }
            if lex.constraint.contains(w) {
                c.constraints = c.constraints.saturating_add(1);
            }
            if lex.long.contains(w) {
                c.long_answer = true;
            }
            if lex.short.contains(w) {
                c.short_answer = true;
            }
            match (p, w) {
                (b"one", b"word" | b"sentence" | b"line" | b"label" | b"number" | b"letter")
                | (b"yes", b"or")
                | (b"single", b"word" | b"label" | b"sentence")
                | (b"few", b"words")
                | (b"short", b"answer") => c.short_answer = true,
                (b"in", b"depth" | b"detail") | (b"step", b"by") => c.long_answer = true,
                (b"at", b"least") | (b"no", b"more") | (b"up", b"to") => {
                    c.constraints = c.constraints.saturating_add(1)
                }
                _ => {}
            }
            if let Some(n) = prev_number {
                match w {
                    b"words" | b"word" => {
                        if n >= 300 {
                            c.long_answer = true;
                        } else if n <= 50 {
                            c.short_answer = true;
                        }
                    }
                    b"pages" | b"page" | b"paragraphs" if n >= 2 => c.long_answer = true,
                    b"sentences" | b"bullets" | b"bullet" | b"points" => {
                        c.constraints = c.constraints.saturating_add(1)
                    }
                    _ => {}
                }
            }
            prev_number = std::str::from_utf8(w).ok().and_then(|s| s.parse().ok());
            prev[..w.len()].copy_from_slice(w);
            prev_len = w.len();
        }
        c
    }

    /// The cues as model inputs, each roughly in 0..1.
    pub fn vector(&self) -> [f32; N_CUES] {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        let sat = |n: u16, top: f32| (f32::from(n) / top).min(1.0);
        [
            ((1.0 + self.chars as f32).ln() / 9.0).min(1.0),
            b(self.document),
            b(self.code),
            b(self.math),
            sat(self.questions, 5.0),
            b(self.long_answer),
            b(self.short_answer),
            sat(self.constraints, 10.0),
            sat(self.domain, 8.0),
            sat(self.reasoning, 5.0),
            self.non_ascii,
            b(self.multi_turn),
        ]
    }
}

/// Longest word the lexicons hold.
const WORD: usize = 24;

/// `word` in ASCII lower case in `buf`, or `None` when it is empty, too long or not ASCII.
fn fold<'a>(word: &str, buf: &'a mut [u8; WORD]) -> Option<&'a [u8]> {
    let word = word.trim_matches(['-', ';']);
    if word.is_empty() || word.len() > WORD || !word.is_ascii() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(word.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    Some(&buf[..word.len()])
}

/// Lines that look like code: statements, braces, definitions, stack frames.
fn code_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            l.ends_with(';')
                || l.ends_with('{')
                || l == &"}"
                || l.starts_with("def ")
                || l.starts_with("fn ")
                || l.starts_with("class ")
                || l.starts_with("import ")
                || l.starts_with("#include")
                || l.starts_with("function ")
                || l.starts_with("const ")
                || l.starts_with("SELECT ")
                || l.starts_with("File \"")
                || l.starts_with("at ") && l.contains('(') && l.contains(')')
                || l.starts_with("Traceback")
        })
        .count()
}

/// A digit, an operator and a digit or variable (`3x + 2 = 11`, `x^2`).
fn equation(text: &str) -> bool {
    let b = text.as_bytes();
    let term = |c: u8| c.is_ascii_digit() || c.is_ascii_lowercase();
    b.windows(3)
        .any(|w| term(w[0]) && matches!(w[1], b'^' | b'=') && (term(w[2]) || w[2] == b'('))
        || b.windows(5).any(|w| {
            // `2 = 11`, `x ^ 2`: spaced, with a number on one side (prose rarely has `a = b`).
            term(w[0])
                && w[1] == b' '
                && matches!(w[2], b'^' | b'=')
                && w[3] == b' '
                && (term(w[4]) || w[4] == b'(')
                && (w[0].is_ascii_digit() || w[4].is_ascii_digit())
        })
}

struct Lexicon {
    domain: HashSet<&'static [u8]>,
    reasoning: HashSet<&'static [u8]>,
    math: HashSet<&'static [u8]>,
    constraint: HashSet<&'static [u8]>,
    long: HashSet<&'static [u8]>,
    short: HashSet<&'static [u8]>,
}

fn lexicon() -> &'static Lexicon {
    static L: OnceLock<Lexicon> = OnceLock::new();
    L.get_or_init(|| {
        let set = |words: &[&'static str]| words.iter().map(|w| w.as_bytes()).collect();
        Lexicon {
            domain: set(&[
                // legal
                "plaintiff",
                "defendant",
                "pursuant",
                "indemnify",
                "indemnification",
                "liability",
                "jurisdiction",
                "statute",
                "contract",
                "clause",
                "tort",
                "arbitration",
                "litigation",
                "counsel",
                "gdpr",
                "hipaa",
                "lease",
                "tenant",
                "lessee",
                "lessor",
                "warranty",
                "breach",
                "appellate",
                "court",
                "regulatory",
                "compliance",
                "subpoena",
                "affidavit",
                "precedent",
                // financial
                "ebitda",
                "revenue",
                "earnings",
                "dividend",
                "equity",
                "amortization",
                "depreciation",
                "liquidity",
                "derivatives",
                "hedge",
                "10-k",
                "8-k",
                "sec",
                "audit",
                "auditor",
                "gaap",
                "ifrs",
                "valuation",
                "tax",
                "taxes",
                "fiscal",
                "covenant",
                "securities",
                "portfolio",
                // clinical
                "diagnosis",
                "patient",
                "clinical",
                "dosage",
                "mg",
                "symptoms",
                "prognosis",
                "contraindication",
                "trial",
                "placebo",
                "adverse",
                "discharge",
                "pathology",
                "oncology",
                "cardiac",
                "medication",
                // security
                "cve",
                "vulnerability",
                "exploit",
                "xss",
                "csrf",
                "authentication",
                "encryption",
                "malware",
                "phishing",
                "ransomware",
                "soc",
            ]),
            reasoning: set(&[
                "prove",
                "proof",
                "theorem",
                "lemma",
                "derive",
                "design",
                "architecture",
                "architect",
                "trade-off",
                "tradeoff",
                "trade-offs",
                "tradeoffs",
                "optimize",
                "optimise",
                "optimization",
                "scalable",
                "scalability",
                "distributed",
                "concurrency",
                "concurrent",
                "deadlock",
                "race",
                "consensus",
                "algorithm",
                "complexity",
                "asymptotic",
                "invariant",
                "refactor",
                "debug",
                "migrate",
                "migration",
                "analyze",
                "analyse",
                "analysis",
                "evaluate",
                "critique",
                "rigorous",
                "formally",
                "counterexample",
                "strategy",
                "implement",
                "multi-tenant",
                "latency",
                "throughput",
                "fault-tolerant",
                "kubernetes",
            ]),
            math: set(&[
                "integral",
                "derivative",
                "equation",
                "polynomial",
                "eigenvalue",
                "eigenvalues",
                "matrix",
                "theorem",
                "lemma",
                "prime",
                "primes",
                "modulo",
                "probability",
                "calculus",
                "topology",
                "isomorphic",
                "homomorphism",
                "irrational",
                "induction",
                "combinatorics",
                "convergence",
                "converges",
            ]),
            constraint: set(&[
                "must",
                "exactly",
                "only",
                "without",
                "constraints",
                "constraint",
                "require",
                "requirements",
                "ensure",
                "never",
                "always",
                "maximum",
                "minimum",
                "limit",
            ]),
            long: set(&[
                "detailed",
                "comprehensive",
                "thorough",
                "thoroughly",
                "essay",
                "in-depth",
                "elaborate",
                "extensive",
                "whitepaper",
                "report",
                "rfc",
                "full",
            ]),
            short: set(&[
                "briefly",
                "brief",
                "tl;dr",
                "tldr",
                "label",
                "classify",
                "categorize",
                "yes/no",
                "concise",
                "one-word",
                "one-line",
            ]),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_of_typical_prompts() {
        let c = Cues::extract(
            "Is this review positive or negative? Answer with one word.",
            false,
            false,
        );
        assert!(c.short_answer && !c.long_answer && !c.code);
        assert_eq!(c.questions, 1);

        let c = Cues::extract(
            "Design a multi-tenant rate limiter for a distributed API gateway. Explain the \
             trade-offs in detail, in at least 800 words.",
            false,
            false,
        );
        assert!(
            c.long_answer && c.reasoning >= 3 && c.constraints >= 1,
            "{c:?}"
        );

        let c = Cues::extract(
            "Why does this fail?\n```rust\nfn main() { let x; }\n```",
            false,
            false,
        );
        assert!(c.code);
        let c = Cues::extract("Prove that there are infinitely many primes.", false, false);
        assert!(c.math && c.reasoning >= 1);
        let c = Cues::extract("Solve 3x + 2 = 11 for x.", false, false);
        assert!(c.math);
        let c = Cues::extract(
            "Résumez ce texte en français, s'il vous plaît : été",
            false,
            false,
        );
        assert!(c.non_ascii > 0.0 && c.non_ascii < 0.5);
        let c = Cues::extract("这篇文章的主要观点是什么？", false, false);
        assert!(c.non_ascii > 0.9 && c.questions == 1);
        let c = Cues::extract(
            "Summarize the plaintiff's claims and the court's holding on liability.",
            true,
            true,
        );
        assert!(c.domain >= 3 && c.document && c.multi_turn);
        let v = c.vector();
        assert!(v.iter().all(|x| (0.0..=1.0).contains(x)), "{v:?}");
    }
}
