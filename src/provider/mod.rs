//! Everything that differs between LLM providers, behind one trait: credentials, error shape,
//! usage fields and stream framing. Nothing outside this module branches on the provider.

mod anthropic;
mod gemini;
mod openai;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use serde::Deserialize;

use crate::secret::Secret;
use crate::usage::{Event, Reading};
use crate::validate::BodyInfo;

/// The providers a pool can speak to, as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// `anthropic`: the Messages API, key in `x-api-key`.
    Anthropic,
    /// `openai`: Chat Completions and the Responses API, key as `authorization: Bearer`.
    Openai,
    /// `gemini`: generateContent, key in `x-goog-api-key`.
    Gemini,
    /// `openrouter`: the OpenAI dialect, with its own `usage.cost` in USD.
    Openrouter,
    /// `claude-cli`: the sidecar's pool of headless Claude Code CLI processes (Anthropic's API).
    #[serde(rename = "claude-cli")]
    ClaudeCli,
}

impl ProviderKind {
    /// The name as written in the config (`provider:`) and shown in logs.
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Openai => "openai",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Openrouter => "openrouter",
            ProviderKind::ClaudeCli => "claude-cli",
        }
    }

    /// The provider whose API is `dialect` (OpenRouter speaks OpenAI's).
    pub fn for_dialect(dialect: Dialect) -> ProviderKind {
        match dialect {
            Dialect::Anthropic => ProviderKind::Anthropic,
            Dialect::OpenAi => ProviderKind::Openai,
            Dialect::Gemini => ProviderKind::Gemini,
        }
    }

    /// The provider's behaviour.
    pub fn get(self) -> &'static dyn Provider {
        match self {
            ProviderKind::Anthropic => &anthropic::ANTHROPIC,
            ProviderKind::ClaudeCli => &anthropic::CLAUDE_CLI,
            ProviderKind::Openai => &openai::OPENAI,
            ProviderKind::Openrouter => &openai::OPENROUTER,
            ProviderKind::Gemini => &gemini::Gemini,
        }
    }
}

/// How an account's key is sent upstream (`auth:` in the config overrides the provider's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthStyle {
    /// `authorization: Bearer KEY`
    Bearer,
    /// `x-api-key: KEY`
    XApiKey,
    /// `x-goog-api-key: KEY`
    XGoogApiKey,
}

impl AuthStyle {
    /// The header that carries `key`, marked sensitive so it is never printed by `http`'s Debug.
    pub fn header(self, key: &Secret) -> Result<(HeaderName, HeaderValue), String> {
        let (name, value) = match self {
            AuthStyle::Bearer => (AUTHORIZATION, format!("Bearer {}", key.expose())),
            AuthStyle::XApiKey => (HeaderName::from_static("x-api-key"), key.expose().to_owned()),
            AuthStyle::XGoogApiKey => (HeaderName::from_static("x-goog-api-key"), key.expose().to_owned()),
        };
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| "key contains characters not allowed in an HTTP header".to_string())?;
        value.set_sensitive(true);
        Ok((name, value))
    }
}

/// Which request/response dialect a provider speaks; fallback pools must share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Anthropic Messages.
    Anthropic,
    /// The OpenAI API (OpenAI and OpenRouter pools).
    OpenAi,
    /// Gemini generateContent.
    Gemini,
}

/// What one stream event means to `llm-sidecar chat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// A piece of the reply's text, to print as it comes.
    Text(String),
    /// An error the stream reported, to show.
    Error(String),
    /// Nothing to show (bookkeeping events, the end marker).
    Other,
}

/// A turn of a conversation: who spoke, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// The user spoke (else the model).
    pub user: bool,
    /// What was said.
    pub text: String,
}

/// Provider behaviour used on the request path.
pub trait Provider: Send + Sync {
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// The API dialect, for fallback compatibility.
    fn dialect(&self) -> Dialect;

    /// Where the provider expects its key by default.
    fn default_auth(&self) -> AuthStyle;

    /// A complete JSON error body in the provider's own shape.
    fn error_body(&self, status: u16, message: &str) -> Vec<u8>;

    /// Read usage and model from a complete JSON response body.
    fn json_usage(&self, body: &[u8], reading: &mut Reading);

    /// Apply one SSE event (`name` may be empty) to the reading and say what it is.
    fn sse_event(&self, name: &[u8], data: &[u8], reading: &mut Reading) -> Event;

    /// The body to send upstream, and whether usage-only events must be removed from the
    /// response because the sidecar asked for them (OpenAI `stream_options.include_usage`).
    /// `path` is the upstream path and query.
    fn prepare_body(&self, _path: &str, _info: &BodyInfo, body: Bytes) -> (Bytes, bool) {
        (body, false)
    }

    /// An error as an event of this provider's stream (when the head already went out).
    fn sse_error(&self, status: u16, message: &str) -> Vec<u8> {
        let mut out = b"data: ".to_vec();
        out.extend_from_slice(&self.error_body(status, message));
        out.extend_from_slice(b"\n\n");
        out
    }

    /// How long a rate-limited account should rest, from the response's headers.
    fn rate_limit_wait(&self, headers: &http::HeaderMap, now: std::time::SystemTime) -> Option<std::time::Duration> {
        crate::resilience::retry_after(headers, now)
    }

    /// Whether the request path itself asks for a stream (Gemini `:streamGenerateContent`).
    fn streams_by_path(&self, _path: &str) -> bool {
        false
    }

    /// Whether an in-band error kind means "rate limited / overloaded" rather than a failure.
    fn in_band_rate_limited(&self, kind: &str) -> bool {
        let k = kind.to_ascii_lowercase();
        k.contains("rate_limit") || k == "429"
    }

    /// Headers an active health check sends besides the key.
    fn check_headers(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// `llm-sidecar chat`: the model used when none is given.
    fn chat_model(&self) -> &'static str;

    /// `llm-sidecar chat`: path and body of a streaming request for the conversation so far.
    fn chat_request(&self, model: &str, turns: &[Turn]) -> (String, serde_json::Value);

    /// `llm-sidecar chat`: the text or error one stream event carries.
    fn chat_event(&self, name: &[u8], data: &[u8]) -> ChatEvent;

    /// A session named inside the request body (Anthropic `metadata.user_id`).
    fn body_session(&self, _info: &BodyInfo) -> Option<String> {
        None
    }
}

/// The `error` object's kind in an error event: `error.type`, `error.code` or `error.status`.
pub(crate) fn error_kind(data: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    let e = v.get("error")?;
    let kind = ["type", "code", "status"]
        .iter()
        .find_map(|k| e.get(*k).filter(|x| !x.is_null()))?;
    Some(crate::text::sanitize(&kind.to_string().replace('"', "")))
}

/// The `error.message` of an error object, for `chat`.
pub(crate) fn error_message(v: &serde_json::Value) -> Option<String> {
    let e = v.get("error")?;
    Some(
        e.get("message")
            .and_then(|m| m.as_str())
            .map_or_else(|| e.to_string(), String::from),
    )
}

/// Parse `data` as `T`, or `None` when it is not that JSON (a malformed event is ignored).
pub(crate) fn parse<'a, T: Deserialize<'a>>(data: &'a [u8]) -> Option<T> {
    serde_json::from_slice(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: Vec<u8>) -> serde_json::Value {
        serde_json::from_slice(&body).expect("error bodies are valid JSON")
    }

    #[test]
    fn anthropic_error_shape() {
        let v = parse(ProviderKind::Anthropic.get().error_body(400, "bad \"json\""));
        assert_eq!(v["type"], "error", "top-level type: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        assert_eq!(v["error"]["message"], "bad \"json\"", "{v}");
        let v = parse(ProviderKind::Anthropic.get().error_body(429, "slow down"));
        assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
    }

    #[test]
    fn openai_and_openrouter_error_shape() {
        for kind in [ProviderKind::Openai, ProviderKind::Openrouter] {
            let v = parse(kind.get().error_body(401, "no token"));
            assert_eq!(v["error"]["message"], "no token", "{kind:?}: {v}");
            assert_eq!(v["error"]["type"], "invalid_request_error", "{kind:?}: {v}");
            assert_eq!(v["error"]["code"], "invalid_api_key", "{kind:?}: {v}");
        }
    }

    #[test]
    fn gemini_error_shape() {
        let v = parse(ProviderKind::Gemini.get().error_body(504, "timed out"));
        assert_eq!(v["error"]["code"], 504, "{v}");
        assert_eq!(v["error"]["status"], "DEADLINE_EXCEEDED", "{v}");
        assert_eq!(v["error"]["message"], "timed out", "{v}");
    }

    #[test]
    fn auth_headers_are_sensitive_and_correct() {
        let key = Secret::new("k-1");
        let (n, v) = AuthStyle::Bearer.header(&key).expect("valid");
        assert_eq!((n.as_str(), v.to_str().ok()), ("authorization", Some("Bearer k-1")));
        assert!(v.is_sensitive(), "credential header values are sensitive");
        let (n, _) = AuthStyle::XGoogApiKey.header(&key).expect("valid");
        assert_eq!(n.as_str(), "x-goog-api-key");
        assert!(
            AuthStyle::XApiKey.header(&Secret::new("a\nb")).is_err(),
            "newline rejected"
        );
    }
}
