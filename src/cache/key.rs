//! Cache keys: a request reduced to what decides its answer.
//!
//! * **namespace** = sha256 over a canonical JSON of everything that changes the output except the
//!   last user turn: the owner (the cache scope: a caller, a user, or none for a shared route),
//!   which providers of the plan are the built-in simulator (a simulated answer never serves
//!   once a real key is set), route, the model/tier identity the route resolved, the model the
//!   client asked for, every earlier message (system prompt, turns, tool calls and results), tools
//!   and tool_choice, response_format, temperature (omitted is the provider default, distinct from
//!   0), top_p, the output cap, stop sequences, seed, n, and every other request field in `extra`
//!   except transport ones ([`TRANSPORT_FIELDS`]). `stream`, `stream_options`, `user` and
//!   `metadata` are left out: they change how the answer is delivered or billed, not what it says.
//! * **fingerprint** = sha256(namespace + the last user turn's instruction + its operand
//!   fingerprint, see [`crate::text::prompt`]). Equal fingerprints are served without embedding.
//! * **bucket** = sha256(namespace + operand fingerprint): the scope of semantic search, so the
//!   operands (code, data, quotations, documents) of a candidate are always the query's own.
//! * **document keys** = sha256(namespace + a document's words, or its core between the edge
//!   zones; see `text::edges`): when a prompt's only operand is a document that no entry holds
//!   exactly, these find the entries holding the same document re-spaced or wrapped in other
//!   transport noise, whose buckets are then searched as the query's own.
//!
//! Not cacheable (`None`): no messages, a last message that is not a user turn (a tool result
//! continuation), a last user turn with non-text parts (images, audio: the text alone does not
//! identify the question), an empty last turn, and `n > 1` (the client wants distinct samples).

use std::sync::OnceLock;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::chat::{ChatRequest, Content, Message, Role};
use crate::store::StoredDoc;
use crate::text::{self, Parsed};

/// `extra` fields that do not change the answer.
pub const TRANSPORT_FIELDS: &[&str] = &[
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
];

/// Who asks and where the request goes, as resolved by the gateway.
#[derive(Debug, Clone, Copy)]
pub struct KeyScope<'a> {
    /// Whose entries these are (`caller:<name>`, `user:<id>`); `None` on a shared route. A hard
    /// part of the namespace: no lookup ever sees another owner's entries.
    pub owner: Option<&'a str>,
    pub route: &'a str,
    /// Identity of the model or tier serving the route (e.g. "tier:cheap" or "openai/gpt-4o-mini").
    pub target: &'a str,
    /// Providers of the plan that the built-in simulator answers for (sorted).
    pub simulated: &'a [&'a str],
}

/// A request's cache identity. Built once per request; the embedding computed by a semantic
/// lookup is kept in it so that the insert after a miss does not embed again.
#[derive(Debug)]
pub struct CacheKey {
    pub(crate) namespace: [u8; 32],
    pub(crate) fingerprint: [u8; 32],
    pub(crate) bucket: [u8; 32],
    pub(crate) route: String,
    pub(crate) owner: Option<String>,
    pub(crate) parsed: Parsed,
    pub(crate) temperature: Option<f64>,
    pub(crate) multi_turn: bool,
    pub(crate) vector: OnceLock<Vec<f32>>,
    /// The document's identity with namespaced keys, when it is the only operand.
    pub(crate) doc: Option<StoredDoc>,
}

impl CacheKey {
    pub fn new(req: &ChatRequest, scope: &KeyScope) -> Option<CacheKey> {
        Self::build(req, scope, None)
    }

    /// [`Self::new`] with the last user turn already parsed (`text::parse` of its text, which
    /// the router did to read the prompt): the parse is not repeated.
    pub fn from_parsed(req: &ChatRequest, scope: &KeyScope, parsed: Parsed) -> Option<CacheKey> {
        Self::build(req, scope, Some(parsed))
    }

    fn build(req: &ChatRequest, scope: &KeyScope, parsed: Option<Parsed>) -> Option<CacheKey> {
        if req.n.is_some_and(|n| n > 1) {
            return None;
        }
        let (last, earlier) = req.messages.split_last()?;
        if last.role != Role::User || has_non_text_parts(last) {
            return None;
        }
        let mut parsed = match parsed {
            Some(p) => p,
            None => {
                let text = last.text();
                if text.trim().is_empty() {
                    return None;
                }
                text::parse(&text)
            }
        };
        let namespace = namespace(req, earlier, last, scope);
        let operands = parsed.operands.unwrap_or([0; 32]);
        let bucket = hash(&[b"bucket", &namespace, &operands]);
        let fingerprint = hash(&[
            b"exact",
            &namespace,
            parsed.instruction.as_bytes(),
            &operands,
        ]);
        let multi_turn = earlier
            .iter()
            .any(|m| !matches!(m.role, Role::System | Role::Developer));
        let bare = parsed.instruction.trim() == text::operands::PLACEHOLDER
            || parsed.instruction.is_empty();
        // Moved, not copied: the key keeps the document's identity under namespaced keys.
        let doc = parsed.doc.take().map(|d| StoredDoc {
            words: hash(&[b"doc-words", &namespace, &d.words]),
            core: d.core.map(|c| hash(&[b"doc-core", &namespace, &c])),
            core_words: d.core_words,
            top: d.top,
            bottom: d.bottom,
            bare,
        });
        Some(CacheKey {
            namespace,
            fingerprint,
            bucket,
            route: scope.route.to_owned(),
            owner: scope.owner.map(str::to_owned),
            parsed,
            temperature: req.temperature,
            multi_turn,
            vector: OnceLock::new(),
            doc,
        })
    }

    pub fn route(&self) -> &str {
        &self.route
    }

    /// Hands the key the embedding of [`Self::query_text`] computed elsewhere (the router's,
    /// of the same text): the lookup and the insert then do not embed again.
    pub fn set_vector(&self, vector: Vec<f32>) {
        let _ = self.vector.set(vector);
    }

    pub fn namespace_hex(&self) -> String {
        hex::encode(self.namespace)
    }

    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.fingerprint)
    }

    /// True when the request has turns before the last user message (besides system prompts).
    pub fn is_multi_turn(&self) -> bool {
        self.multi_turn
    }

    /// The text compared semantically: the last user turn's instruction (operands as `§`).
    pub fn query_text(&self) -> &str {
        &self.parsed.instruction
    }

    /// True when the last user turn carries a document (matched by exact fingerprint).
    pub fn has_document(&self) -> bool {
        self.parsed.document
    }

    /// True when the last user turn has operands (code, data, quotes, a document).
    pub fn has_operands(&self) -> bool {
        self.parsed.operands.is_some()
    }

    /// The text of the prompt's short operands, which the focus guard reads.
    pub fn mentions(&self) -> &str {
        &self.parsed.mentions
    }

    /// The cache scope's owner (`caller:<name>`, `user:<id>`), `None` on a shared route.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
}

fn has_non_text_parts(m: &Message) -> bool {
    match &m.content {
        Some(Content::Parts(parts)) => parts
            .iter()
            .any(|p| p.get("type").and_then(Value::as_str) != Some("text")),
        _ => false,
    }
}

fn hash(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

fn namespace(req: &ChatRequest, earlier: &[Message], last: &Message, scope: &KeyScope) -> [u8; 32] {
    let mut extra: Map<String, Value> = req
        .extra
        .iter()
        .filter(|(k, _)| !TRANSPORT_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The last turn's own metadata (name, extra fields) is part of the question's context.
    let mut last_meta = Map::new();
    if let Some(name) = &last.name {
        last_meta.insert("name".into(), Value::String(name.clone()));
    }
    last_meta.extend(last.extra.clone());
    extra.insert("__last_user".into(), Value::Object(last_meta));
    let stop = req.stop.as_ref().map(|s| {
        let mut v = s.to_vec();
        v.sort();
        v.dedup();
        v
    });
    let doc = serde_json::json!({
        "v": 2,
        "owner": scope.owner,
        "simulated": scope.simulated,
        "route": scope.route,
        "target": scope.target,
        "model": req.model,
        "messages": earlier.iter().map(canonical_message).collect::<Vec<_>>(),
        "temperature": req.temperature,
        "top_p": req.top_p,
        "max_output_tokens": req.max_output_tokens(),
        "stop": stop,
        "seed": req.seed,
        "n": req.n.unwrap_or(1),
        "tools": req.tools,
        "tool_choice": req.tool_choice,
        "response_format": req.response_format,
        "extra": extra,
    });
    hash(&[b"namespace", canonical_json(&doc).as_bytes()])
}

/// A message with its text whitespace-normalised (line endings, trailing spaces, blank runs):
/// formatting noise in a system prompt should not split the cache.
fn canonical_message(m: &Message) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let (Some(Content::Text(t)), Some(obj)) = (&m.content, v.as_object_mut()) {
        let lines: Vec<&str> = t.lines().map(str::trim_end).collect();
        let mut text = lines.join("\n");
        while text.contains("\n\n\n") {
            text = text.replace("\n\n\n", "\n\n");
        }
        obj.insert("content".into(), Value::String(text.trim().to_owned()));
    }
    v
}

/// JSON with object keys sorted at every level, whatever map type serde_json was built with.
fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => {
            format!(
                "[{}]",
                items
                    .iter()
                    .map(canonical_json)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: Value) -> ChatRequest {
        serde_json::from_value(json).unwrap()
    }

    const SCOPE: KeyScope = KeyScope {
        owner: Some("caller:acme"),
        route: "chat",
        target: "tier:cheap",
        simulated: &[],
    };

    fn base() -> Value {
        serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "How do I reset my password?"}
            ]
        })
    }

    fn key(v: Value) -> CacheKey {
        CacheKey::new(&req(v), &SCOPE).unwrap()
    }

    #[test]
    fn namespace_covers_output_changing_fields_only() {
        let b = key(base());
        let with = |field: &str, value: Value| {
            let mut v = base();
            v[field] = value;
            key(v).namespace
        };
        assert_ne!(with("temperature", 0.0.into()), b.namespace, "omitted != 0");
        assert_ne!(with("top_p", 0.5.into()), b.namespace);
        assert_ne!(with("max_tokens", 10.into()), b.namespace);
        assert_ne!(with("seed", 1.into()), b.namespace);
        assert_ne!(with("presence_penalty", 0.5.into()), b.namespace);
        assert_ne!(with("logprobs", true.into()), b.namespace);
        assert_ne!(
            with(
                "response_format",
                serde_json::json!({"type": "json_object"})
            ),
            b.namespace
        );
        assert_ne!(
            with("tools", serde_json::json!([{"type": "function"}])),
            b.namespace
        );
        assert_eq!(with("stream", true.into()), b.namespace);
        assert_eq!(with("user", "u1".into()), b.namespace);
        assert_eq!(with("metadata", serde_json::json!({"k": "v"})), b.namespace);
        assert_eq!(with("service_tier", "flex".into()), b.namespace);
        let other_scope = CacheKey::new(
            &req(base()),
            &KeyScope {
                route: "other",
                ..SCOPE
            },
        )
        .unwrap();
        assert_ne!(other_scope.namespace, b.namespace);
        let other_target = CacheKey::new(
            &req(base()),
            &KeyScope {
                target: "tier:premium",
                ..SCOPE
            },
        )
        .unwrap();
        assert_ne!(other_target.namespace, b.namespace);
        let other_owner = CacheKey::new(
            &req(base()),
            &KeyScope {
                owner: Some("caller:other"),
                ..SCOPE
            },
        )
        .unwrap();
        assert_ne!(other_owner.namespace, b.namespace);
        let simulated = CacheKey::new(
            &req(base()),
            &KeyScope {
                simulated: &["openai"],
                ..SCOPE
            },
        )
        .unwrap();
        assert_ne!(simulated.namespace, b.namespace);
    }

    #[test]
    fn last_turn_changes_fingerprint_not_namespace() {
        let a = key(base());
        let mut v = base();
        v["messages"][1]["content"] = "How do I reset   my password?\n".into();
        let same = key(v.clone());
        assert_eq!(a.fingerprint, same.fingerprint, "whitespace is normalised");
        v["messages"][1]["content"] = "How do I change my password?".into();
        let other = key(v);
        assert_eq!(a.namespace, other.namespace);
        assert_ne!(a.fingerprint, other.fingerprint);
        assert_eq!(a.bucket, other.bucket);
    }

    #[test]
    fn uncacheable_requests() {
        let mut v = base();
        v["n"] = 2.into();
        assert!(CacheKey::new(&req(v), &SCOPE).is_none());
        let mut v = base();
        v["messages"][1]["content"] = serde_json::json!([
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
        ]);
        assert!(CacheKey::new(&req(v), &SCOPE).is_none());
        let mut v = base();
        v["messages"] = serde_json::json!([{"role": "system", "content": "hi"}]);
        assert!(CacheKey::new(&req(v), &SCOPE).is_none());
    }

    #[test]
    fn multi_turn_is_detected() {
        assert!(!key(base()).is_multi_turn());
        let mut v = base();
        v["messages"] = serde_json::json!([
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "How do I reset my password?"}
        ]);
        assert!(key(v).is_multi_turn());
    }
}
