//! Serde types of upstream wire formats that differ from the canonical (OpenAI-shaped) `chat`
//! types, shared by `provider/`, `api/` and the mock server.

pub mod anthropic;

/// The API a client speaks: its requests are parsed, and its answers and errors rendered, in
/// that API's shape.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// OpenAI's chat completions (and embeddings).
    #[default]
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Anthropic => "anthropic",
        }
    }

    /// The dialect of an endpoint, by its path: Anthropic's under `/v1/messages`.
    pub fn of_path(path: &str) -> Dialect {
        let p = path.strip_prefix("/v1").unwrap_or(path);
        if p == "/messages" || p.starts_with("/messages/") {
            Dialect::Anthropic
        } else {
            Dialect::OpenAi
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn anthropic_paths_are_those_under_messages() {
        for p in [
            "/v1/messages",
            "/messages",
            "/v1/messages/count_tokens",
            "/v1/messages/batches",
        ] {
            assert_eq!(Dialect::of_path(p), Dialect::Anthropic, "{p}");
        }
        for p in [
            "/v1/chat/completions",
            "/v1/messagesx",
            "/admin/stats/summary",
            "/",
        ] {
            assert_eq!(Dialect::of_path(p), Dialect::OpenAi, "{p}");
        }
    }
}
