//! Deterministic answers: the same prompt always gets the same text.
//!
//! The text starts `Mock answer to: <first 8 words of the last user message>` and continues with
//! filler words drawn from a fixed list by a PRNG seeded with a hash of the whole prompt (model
//! and every message), 24 words by default. Streams send one piece per word, so the pieces
//! concatenate to exactly the non-streamed text. Fault tokens in the model string do not change
//! the text: `gpt-4o-mini+cut-after-5` answers what `gpt-4o-mini` answers.
//!
//! Continuations: a request whose last message is an assistant turn (a prefill), or an assistant
//! turn followed by the gateway's continuation request (`chat::CONTINUE_REQUEST`), is answered
//! with the rest of this model's answer to the conversation before that turn, after as many
//! words as the turn holds; so the prefix from one model and the continuation from another
//! join into one answer of the usual length.

use crate::chat::estimate_tokens_from_chars;

const DEFAULT_WORDS: usize = 24;
const ECHOED_WORDS: usize = 8;
/// Tool-call arguments are streamed in pieces of about this many bytes.
const ARGS_PIECE: usize = 12;

const FILLER: [&str; 32] = [
    "the", "gateway", "routes", "each", "request", "through", "a", "cache", "and", "then", "to",
    "upstream", "models", "while", "tokens", "flow", "back", "in", "order", "with", "latency",
    "kept", "low", "so", "answers", "stay", "cheap", "fast", "and", "correct", "for", "users",
];

/// What the answer generator needs to know about a request, from either wire format.
#[derive(Debug, Clone)]
pub(super) struct Prompt {
    pub last_user: String,
    /// Hash of the model string and every message (see [`PromptHash`]).
    pub hash: u64,
    pub prompt_tokens: u32,
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    /// The tool the request forces (`tool_choice` required/named, Anthropic any/tool).
    pub forced_tool: Option<String>,
    /// The assistant text to continue (see the module doc); the other fields describe the
    /// conversation before it.
    pub continue_from: Option<String>,
    /// `continue_from` came as a prefill (a trailing assistant turn).
    pub prefill: bool,
}

impl Prompt {
    /// A prompt known only by its size (embeddings).
    pub fn tokens(prompt_tokens: u32) -> Prompt {
        Prompt {
            last_user: String::new(),
            hash: 0,
            prompt_tokens,
            max_tokens: None,
            stop: Vec::new(),
            forced_tool: None,
            continue_from: None,
            prefill: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Finish {
    Stop,
    Length,
    StopSequence(String),
    ToolCalls,
}

#[derive(Debug, Clone)]
pub(super) struct ToolCall {
    pub name: String,
    /// The arguments as JSON text: `{"query": "<last user text>"}`.
    pub arguments: String,
}

#[derive(Debug, Clone)]
pub(super) struct Answer {
    /// Stream pieces: words of the text answer, or slices of a tool call's arguments.
    pub pieces: Vec<String>,
    pub tool: Option<ToolCall>,
    pub finish: Finish,
    pub completion_tokens: u32,
}

impl Answer {
    pub fn new(prompt: &Prompt, words: Option<usize>) -> Answer {
        match (&prompt.forced_tool, &prompt.continue_from) {
            (Some(name), _) => tool_answer(prompt, name),
            (None, None) => text_answer(prompt, words.unwrap_or(DEFAULT_WORDS)),
            (None, Some(from)) => text_answer(prompt, words.unwrap_or(DEFAULT_WORDS)).after(from),
        }
    }

    /// Exactly `text`, one piece per word (the `answer-<text>` fault); a continuation gets the
    /// rest after its prefix.
    pub fn fixed(prompt: &Prompt, text: &str) -> Answer {
        let words: Vec<&str> = text.split(' ').collect();
        let last = words.len().saturating_sub(1);
        let pieces: Vec<String> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i == last {
                    (*w).to_owned()
                } else {
                    format!("{w} ")
                }
            })
            .collect();
        let whole = Answer {
            completion_tokens: pieces.len() as u32,
            pieces,
            tool: None,
            finish: Finish::Stop,
        };
        match &prompt.continue_from {
            Some(from) => whole.after(from),
            None => whole,
        }
    }

    /// The rest of this answer after the words of `prefix`: the pieces from the word after its
    /// last, the first one starting with a space when `prefix` does not end in whitespace.
    fn after(mut self, prefix: &str) -> Answer {
        let k = prefix.split_whitespace().count().min(self.pieces.len());
        self.pieces.drain(..k);
        let joins = !prefix.is_empty() && !prefix.ends_with(char::is_whitespace);
        if let (true, Some(first)) = (joins, self.pieces.first_mut()) {
            first.insert(0, ' ');
        }
        self.completion_tokens = self.pieces.len() as u32;
        self
    }

    pub fn text(&self) -> String {
        self.pieces.concat()
    }
}

fn text_answer(prompt: &Prompt, n: usize) -> Answer {
    let mut pieces = words(&prompt.last_user, prompt.hash, n);
    let mut finish = Finish::Stop;
    if let Some((at, seq)) = first_stop(&pieces.concat(), &prompt.stop) {
        cut_at(&mut pieces, at);
        finish = Finish::StopSequence(seq);
    }
    if let Some(max) = prompt.max_tokens.map(|m| m as usize) {
        if max < pieces.len() {
            pieces.truncate(max);
            if let Some(last) = pieces.last_mut() {
                last.truncate(last.trim_end().len());
            }
            finish = Finish::Length;
        }
    }
    let completion_tokens = pieces.len() as u32;
    Answer {
        pieces,
        tool: None,
        finish,
        completion_tokens,
    }
}

/// `n` words as stream pieces: each but the last followed by a space, the last ending in '.'.
fn words(last_user: &str, hash: u64, n: usize) -> Vec<String> {
    let echoed = last_user.split_whitespace().take(ECHOED_WORDS);
    let mut words: Vec<&str> = ["Mock", "answer", "to:"]
        .into_iter()
        .chain(echoed)
        .collect();
    let mut rng = hash;
    while words.len() < n {
        words.push(FILLER[(splitmix64(&mut rng) % FILLER.len() as u64) as usize]);
    }
    words.truncate(n);
    let last = words.len().saturating_sub(1);
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == last {
                format!("{w}.")
            } else {
                format!("{w} ")
            }
        })
        .collect()
}

/// The earliest occurrence of any (non-empty) stop sequence: its byte offset and the sequence.
fn first_stop(text: &str, stop: &[String]) -> Option<(usize, String)> {
    stop.iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|at| (at, s.clone())))
        .min_by_key(|(at, _)| *at)
}

/// Keeps the pieces' text up to byte offset `at`.
fn cut_at(pieces: &mut Vec<String>, at: usize) {
    let mut start = 0;
    let mut keep = 0;
    for piece in pieces.iter_mut() {
        if start + piece.len() <= at {
            start += piece.len();
            keep += 1;
            continue;
        }
        if at > start {
            piece.truncate(at - start);
            keep += 1;
        }
        break;
    }
    pieces.truncate(keep);
}

fn tool_answer(prompt: &Prompt, name: &str) -> Answer {
    let arguments = serde_json::json!({ "query": prompt.last_user }).to_string();
    let pieces = split_pieces(&arguments, ARGS_PIECE);
    Answer {
        pieces,
        completion_tokens: estimate_tokens_from_chars(name.len() + arguments.len()),
        tool: Some(ToolCall {
            name: name.to_owned(),
            arguments,
        }),
        finish: Finish::ToolCalls,
    }
}

/// Splits text into pieces of about `size` bytes, on char boundaries.
fn split_pieces(text: &str, size: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head.to_owned());
        rest = tail;
    }
    out
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a: stable across Rust versions and platforms (unlike `DefaultHasher`), so answers are
/// reproducible between runs and machines.
pub(super) struct PromptHash(u64);

impl PromptHash {
    pub fn new() -> Self {
        PromptHash(0xcbf2_9ce4_8422_2325)
    }

    /// Adds one field; a separator byte keeps `("ab","c")` apart from `("a","bc")`.
    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes.iter().chain(&[0xff]) {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(text: &str) -> Prompt {
        Prompt {
            last_user: text.to_owned(),
            hash: PromptHash::new().field(text.as_bytes()).finish(),
            prompt_tokens: 10,
            max_tokens: None,
            stop: Vec::new(),
            forced_tool: None,
            continue_from: None,
            prefill: false,
        }
    }

    #[test]
    fn continuations_resume_after_the_prefix_words() {
        let p = prompt("one two three four five six seven eight nine");
        let whole = Answer::new(&p, None).pieces;
        let cont = |from: &str| {
            let mut c = p.clone();
            c.continue_from = Some(from.to_owned());
            Answer::new(&c, None)
        };
        let a = cont("Mock answer to: one ");
        assert_eq!(a.text(), whole[4..].concat());
        assert_eq!(a.completion_tokens as usize, whole.len() - 4);
        assert_eq!(
            cont("Some other words, four").text(),
            format!(" {}", whole[4..].concat()),
            "a prefix without trailing space gets one"
        );
        assert_eq!(cont(&whole.concat()).text(), "", "nothing left to say");
        assert_eq!(cont("").text(), whole.concat());
    }

    #[test]
    fn text_is_deterministic_and_sized() {
        let p = prompt("what is the capital of France please tell me now quickly");
        let a = Answer::new(&p, None);
        assert_eq!(a.text(), Answer::new(&p, None).text());
        assert_eq!(a.pieces.len(), DEFAULT_WORDS);
        assert!(a
            .text()
            .starts_with("Mock answer to: what is the capital of France please tell "));
        assert!(a.text().ends_with('.'));
        assert_eq!(Answer::new(&p, Some(2)).text(), "Mock answer.");
        assert_ne!(a.text(), Answer::new(&prompt("other"), None).text());
    }

    #[test]
    fn max_tokens_and_stop_sequences_truncate() {
        let mut p = prompt("alpha beta gamma");
        p.max_tokens = Some(4);
        let a = Answer::new(&p, None);
        assert_eq!(
            (a.text().as_str(), &a.finish),
            ("Mock answer to: alpha", &Finish::Length)
        );
        p.max_tokens = None;
        p.stop = vec!["ta gam".into()];
        let a = Answer::new(&p, None);
        assert_eq!(a.text(), "Mock answer to: alpha be");
        assert_eq!(a.finish, Finish::StopSequence("ta gam".into()));
    }

    #[test]
    fn tool_arguments_split_and_rejoin() {
        let mut p = prompt("héllo wörld, a longer question");
        p.forced_tool = Some("search".into());
        let a = Answer::new(&p, None);
        let args = a.tool.as_ref().unwrap().arguments.clone();
        assert_eq!(a.text(), args);
        assert_eq!(a.finish, Finish::ToolCalls);
        let v: serde_json::Value = serde_json::from_str(&args).unwrap();
        assert_eq!(v["query"], "héllo wörld, a longer question");
    }
}
