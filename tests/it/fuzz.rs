//! Property tests over everything that reads untrusted input (`cargo fuzz` needs a nightly
//! sanitizer build of the ONNX/tokenizer stack, too heavy here; these run on stable in CI):
//! request bodies, prompt splitting / fingerprints / guards / frames, upstream SSE streams of
//! both adapters, the Anthropic translation both ways (the adapter's, and `/v1/messages`'s
//! inbound one), and config files. Each property holds
//! for any input: no panic, bounded output, and what must not depend on how bytes arrive does
//! not. `PROPTEST_CASES=N` runs longer (README: the duration run clean).

use proptest::prelude::*;
use serde_json::{json, Value};

use sluice::chat::{ChatChunk, ChatRequest, StreamAssembler};
use sluice::provider::props;
use sluice::provider::sse::SseParser;

/// Text with the characters parsers trip on: tags, brackets, quotes, digits, units, code
/// fences, unicode, whitespace runs.
fn hostile_text() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "<a>",
        "</a>",
        "<",
        ">",
        "[",
        "]",
        "{",
        "}",
        "(",
        ")",
        "\"",
        "'",
        "`",
        "```",
        "\n",
        "\r\n",
        "\t",
        "  ",
        "0",
        "7",
        "3.14",
        "1e9",
        "-",
        "%",
        "kg",
        "USD",
        "$",
        "€",
        "é",
        "ß",
        "日本",
        "🙂",
        "\u{200b}",
        "not",
        "no",
        "increase",
        "decrease",
        "to",
        "from",
        "before",
        "after",
        "summarize",
        "translate",
        "the",
        "Paris",
        "NASA",
        "x_y",
        "::",
        "//",
        "#",
        "*",
        "|",
        ":",
        "\\",
        "\u{0}",
        "Sent from my iPhone",
        "Please summarize the following article:",
    ]);
    prop::collection::vec(
        prop_oneof![3 => atoms.prop_map(str::to_owned), 1 => any::<String>()],
        0..80,
    )
    .prop_map(|v| v.concat())
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        hostile_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "model",
                    "messages",
                    "role",
                    "content",
                    "stream",
                    "n",
                    "tools",
                    "tool_calls",
                    "index",
                    "type",
                    "text",
                    "usage",
                    "prompt_tokens",
                    "choices",
                    "delta",
                    "finish_reason",
                    "temperature",
                    "max_tokens",
                    "stop",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A plausible chat request with hostile parts.
fn chat_request() -> impl Strategy<Value = Value> {
    let role = prop::sample::select(vec!["system", "user", "assistant", "tool", "developer"]);
    let content = prop_oneof![
        hostile_text().prop_map(Value::from),
        prop::collection::vec(
            prop_oneof![
                hostile_text().prop_map(|t| json!({"type": "text", "text": t})),
                Just(json!({"type": "image_url", "image_url": {"url": "data:x"}})),
                json_value(),
            ],
            0..4
        )
        .prop_map(Value::from),
        Just(Value::Null),
    ];
    (
        prop::collection::vec((role, content), 1..6),
        prop::option::of(0u32..300),
        prop::option::of(json_value()),
        any::<bool>(),
    )
        .prop_map(|(msgs, n, extra, stream)| {
            let messages: Vec<Value> = msgs
                .into_iter()
                .map(|(r, c)| json!({"role": r, "content": c}))
                .collect();
            let mut v = json!({"model": "m", "messages": messages, "stream": stream});
            if let Some(n) = n {
                v["n"] = json!(n);
            }
            if let Some(e) = extra {
                v["extra_field"] = e;
            }
            v
        })
}

/// A `/v1/messages` body as Anthropic clients send them, with hostile text and JSON where they
/// put theirs: system blocks, tool use and results, images, tools, metadata.
fn anthropic_request() -> impl Strategy<Value = Value> {
    (
        hostile_text(),
        hostile_text(),
        json_value(),
        any::<u32>(),
        any::<bool>(),
    )
        .prop_map(|(a, b, extra, max_tokens, stream)| {
            json!({
                "model": "chat", "max_tokens": max_tokens, "stream": stream,
                "system": [{"type": "text", "text": b}],
                "messages": [
                    {"role": "user", "content": a},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": b},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": extra}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": a},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b}}]}
                ],
                "tools": [{"name": "f", "input_schema": extra}],
                "metadata": {"user_id": a}
            })
        })
}

/// Found by `prompt_analysis_is_total_and_deterministic`: a word ending in a multi-byte
/// character whose last two bytes are equal ("₂" is E2 82 82) before "-ed"/"-ing" panicked the
/// stemmer (it took the bytes for a doubled consonant and cut one).
#[test]
fn stemming_never_splits_a_character() {
    for text in ["H₂ing", "CO₂ed the water", "x₂ing y₂ed ₂₂ing"] {
        let _ = sluice::text::parse(text);
        let f = sluice::text::Features::extract(text);
        assert!(f.agree(&sluice::text::Features::extract(text)).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Request bodies: any bytes or JSON either parse or fail cleanly; a parsed request's cache
    /// key and text analysis never panic.
    #[test]
    fn request_bodies_parse_or_fail_cleanly(body in prop_oneof![
        chat_request(),
        json_value(),
    ], bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<ChatRequest>(&bytes);
        let text = body.to_string();
        if let Ok(req) = serde_json::from_str::<ChatRequest>(&text) {
            let _ = req.estimate_prompt_tokens();
            let scope = sluice::cache::KeyScope { owner: Some("caller:a"), route: "r", target: "t", simulated: &[] };
            if let Some(key) = sluice::cache::CacheKey::new(&req, &scope) {
                prop_assert!(key.query_text().len() <= text.len() * 4 + 64);
            }
            let _ = sluice::chat::replay_chunks(
                &serde_json::from_value(json!({
                    "id": "x", "object": "chat.completion", "created": 1, "model": "m",
                    "choices": [{"index": 0, "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "a", "tool_calls": body.get("messages").cloned().unwrap_or(json!([]))}}]
                })).unwrap_or_else(|_| serde_json::from_value(json!({
                    "id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": []
                })).unwrap()),
                "id",
                true,
            );
        }
    }

    /// Prompt splitting, operand fingerprints, guards and task frames: total and deterministic.
    #[test]
    fn prompt_analysis_is_total_and_deterministic(a in hostile_text(), b in hostile_text()) {
        let pa = sluice::text::parse(&a);
        let again = sluice::text::parse(&a);
        prop_assert_eq!(&pa.instruction, &again.instruction);
        prop_assert_eq!(pa.operands, again.operands);
        let fa = sluice::text::Features::extract(&a);
        let fb = sluice::text::Features::extract(&b);
        let _ = fa.agree(&fb);
        prop_assert!(fa.agree(&sluice::text::Features::extract(&a)).is_ok(), "a prompt agrees with itself");
        let _ = sluice::text::compare(&fa, &fb, true);
        let _ = sluice::text::frame::parse(&pa.instruction);
    }

    /// Upstream SSE, both adapters: any bytes, split anywhere, give the same events, and never
    /// panic; reassembly stays bounded whatever the choice indexes say.
    #[test]
    fn upstream_streams_decode_the_same_however_split(
        events in prop::collection::vec(prop_oneof![
            json_value().prop_map(|v| format!("data: {v}\n\n")),
            Just("data: [DONE]\n\n".to_owned()),
            (any::<u32>(), hostile_text()).prop_map(|(i, t)| format!(
                "data: {}\n\n",
                json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": i, "delta": {"content": t}, "finish_reason": null}]}))),
            (any::<u32>(), hostile_text()).prop_map(|(i, t)| format!(
                "event: content_block_delta\ndata: {}\n\n",
                json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": t}}))),
            Just(format!("event: message_start\ndata: {}\n\n", json!({"type": "message_start", "message": {
                "id": "m", "type": "message", "role": "assistant", "model": "c", "content": [],
                "stop_reason": null, "usage": {"input_tokens": 4294967295u32, "output_tokens": 1}}}))),
            Just(": ping\n\n".to_owned()),
            hostile_text(),
        ], 0..20),
        cut in any::<prop::sample::Index>(),
        anthropic in any::<bool>(),
    ) {
        let bytes = events.concat().into_bytes();
        let whole = props::decode_stream(anthropic, &[&bytes]);
        let at = cut.index(bytes.len() + 1);
        let (x, y) = bytes.split_at(at);
        let split = props::decode_stream(anthropic, &[x, y]);
        let text = |v: &Vec<Result<Option<ChatChunk>, String>>| {
            v.iter().map(|r| match r {
                Ok(Some(c)) => serde_json::to_string(&c.choices).unwrap_or_default(),
                Ok(None) => "end".into(),
                Err(e) => format!("err {e}"),
            }).collect::<Vec<_>>()
        };
        prop_assert_eq!(text(&whole), text(&split));
        let mut a = StreamAssembler::default();
        for c in whole.iter().flatten().flatten() {
            a.push(c);
        }
        if let Some(r) = a.finish() {
            prop_assert!(r.choices.len() <= sluice::chat::MAX_ASSEMBLED_CHOICES);
        }
    }

    /// The SSE parser alone: one byte at a time or all at once, the same events.
    #[test]
    fn sse_parser_is_split_invariant(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let events = |pieces: &[&[u8]]| {
            let mut p = SseParser::default();
            let mut out = Vec::new();
            for piece in pieces {
                p.push(piece);
                while let Ok(Some(e)) = p.next_event() {
                    out.push(e);
                }
            }
            out
        };
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(events(&[&bytes]), events(&singles));
    }

    /// The Anthropic translation: any canonical request becomes a Messages request, any
    /// Messages answer a chat completion, without panics; text survives the answer's way back.
    #[test]
    fn anthropic_translation_is_total(req in chat_request(), answer in hostile_text(), reply in json_value()) {
        if let Ok(r) = serde_json::from_value::<ChatRequest>(req) {
            let m = props::to_anthropic(&r, "claude", r.stream);
            let _ = serde_json::to_string(&m);
        }
        let msg = json!({"id": "msg", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 4294967295u32,
                      "cache_read_input_tokens": 4294967295u32, "cache_creation_input_tokens": 7}});
        let parsed: sluice::wire::anthropic::MessagesResponse = serde_json::from_value(msg).unwrap();
        let back = props::from_anthropic(parsed);
        prop_assert_eq!(back.choices[0].message.text(), answer);
        let u = back.usage.unwrap();
        prop_assert_eq!(u.prompt_tokens, u32::MAX, "saturated, not wrapped");
        if let Ok(other) = serde_json::from_value::<sluice::wire::anthropic::MessagesResponse>(reply) {
            let _ = props::from_anthropic(other);
        }
    }

    /// The inbound direction (`/v1/messages`): any body is a Messages request or fails cleanly,
    /// a request becomes a canonical one (or a named problem) without panics, and any canonical
    /// answer goes back as Anthropic's answer and as its events with the text intact.
    #[test]
    fn anthropic_inbound_is_total(body in prop_oneof![anthropic_request(), json_value()], answer in hostile_text(), split in 1usize..8) {
        use sluice::wire::anthropic::{BlockDelta, EventEncoder, MessagesRequest, MessagesResponse, StreamEvent};
        if let Ok(m) = serde_json::from_value::<MessagesRequest>(body) {
            let _ = m.estimate_input_tokens();
            if let Ok(chat) = m.into_chat() {
                let _ = chat.estimate_prompt_tokens();
            }
        }
        let resp: sluice::chat::ChatResponse = serde_json::from_value(json!({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": u32::MAX, "completion_tokens": 5, "total_tokens": u32::MAX}
        })).unwrap();
        let m = MessagesResponse::from_chat(resp);
        let text: String = m.content.iter().filter_map(|b| b.as_text()).collect();
        prop_assert_eq!(&text, &answer);
        let chars: Vec<char> = answer.chars().collect();
        let mut enc = EventEncoder::new(u32::MAX);
        let mut events = Vec::new();
        for piece in chars.chunks(split) {
            let c: ChatChunk = serde_json::from_value(json!({
                "id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": piece.iter().collect::<String>()}}]
            })).unwrap();
            enc.chunk(c, &mut events);
        }
        let last: ChatChunk = serde_json::from_value(json!({
            "id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]
        })).unwrap();
        enc.chunk(last, &mut events);
        enc.finish(&mut events);
        let mut streamed = String::new();
        for ev in &events {
            let _ = ev.to_sse();
            if let StreamEvent::ContentBlockDelta { delta: BlockDelta::TextDelta { text }, .. } = ev {
                streamed.push_str(text);
            }
        }
        prop_assert_eq!(streamed, answer);
        prop_assert!(matches!(events.last(), Some(StreamEvent::MessageStop)));
    }

    /// Config files: any text is a config or a list of problems, never a panic; the embedded
    /// default with one line changed too.
    #[test]
    fn config_parsing_is_total(text in hostile_text(), line in any::<prop::sample::Index>(), junk in hostile_text()) {
        let _ = sluice::config::Config::parse(&text, "fuzz");
        let lines: Vec<&str> = sluice::config::DEFAULT_CONFIG.lines().collect();
        let i = line.index(lines.len());
        let mut mutated: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        // Cut at a character boundary (the default config has non-ASCII examples).
        let half = lines[i].floor_char_boundary(lines[i].len() / 2);
        mutated[i] = format!("{}{junk}", &lines[i][..half]);
        let _ = sluice::config::Config::parse(&mutated.join("\n"), "fuzz");
    }
}
