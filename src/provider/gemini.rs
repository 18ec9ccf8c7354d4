//! Google Gemini API: `x-goog-api-key`, `{"error":{"code":..,"status":..}}` errors, usage in
//! `usageMetadata` (cumulative on every stream chunk; the last one is final).

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::{parse, AuthStyle, ChatEvent, Dialect, Provider, ProviderKind, Turn};
use crate::usage::{Event, Reading, Usage};

pub struct Gemini;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GUsage {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    tool_use_prompt_token_count: Option<u64>,
}

fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

impl From<GUsage> for Usage {
    /// Input includes tool-use prompt tokens; output includes thinking tokens, which Google
    /// bills as output and reports apart from `candidatesTokenCount`.
    fn from(u: GUsage) -> Usage {
        Usage {
            input: sum(u.prompt_token_count, u.tool_use_prompt_token_count),
            output: sum(u.candidates_token_count, u.thoughts_token_count),
            cache_read: u.cached_content_token_count,
            cache_write: None,
            cache_write_1h: None,
            cost: None,
            input_includes_cache: true,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    usage_metadata: Option<GUsage>,
    model_version: Option<String>,
    candidates: Option<Vec<Candidate>>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    finish_reason: Option<IgnoredAny>,
}

/// A JSON response is one chunk, or (streamGenerateContent without `alt=sse`) an array of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonBody {
    One(Chunk),
    Many(Vec<Chunk>),
}

/// Apply a chunk; true when it finished a candidate (its usage is then final).
fn apply(chunk: Chunk, reading: &mut Reading) -> bool {
    if reading.model.is_none() {
        reading.model = chunk.model_version;
    }
    if let Some(u) = chunk.usage_metadata {
        reading.usage.merge(&u.into());
    }
    chunk
        .candidates
        .is_some_and(|c| c.iter().any(|c| c.finish_reason.is_some()))
}

impl Provider for Gemini {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    fn dialect(&self) -> Dialect {
        Dialect::Gemini
    }

    fn default_auth(&self) -> AuthStyle {
        AuthStyle::XGoogApiKey
    }

    fn error_body(&self, status: u16, message: &str) -> Vec<u8> {
        let grpc = match status {
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            429 => "RESOURCE_EXHAUSTED",
            400..=499 => "INVALID_ARGUMENT",
            501 => "UNIMPLEMENTED",
            503 | 502 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        };
        let body = serde_json::json!({
            "error": { "code": status, "message": message, "status": grpc },
        });
        body.to_string().into_bytes()
    }

    fn streams_by_path(&self, path: &str) -> bool {
        path.contains(":streamGenerateContent")
    }

    fn in_band_rate_limited(&self, kind: &str) -> bool {
        matches!(kind, "RESOURCE_EXHAUSTED" | "UNAVAILABLE" | "429" | "503")
    }

    fn chat_model(&self) -> &'static str {
        "gemini-2.5-flash"
    }

    fn chat_request(&self, model: &str, turns: &[Turn]) -> (String, serde_json::Value) {
        let contents: Vec<_> = turns
            .iter()
            .map(
                |t| serde_json::json!({ "role": if t.user { "user" } else { "model" }, "parts": [{ "text": t.text }] }),
            )
            .collect();
        (
            format!("/v1beta/models/{model}:streamGenerateContent?alt=sse"),
            serde_json::json!({ "contents": contents }),
        )
    }

    fn chat_event(&self, _name: &[u8], data: &[u8]) -> ChatEvent {
        let Some(v) = parse::<serde_json::Value>(data) else {
            return ChatEvent::Other;
        };
        if let Some(m) = super::error_message(&v) {
            return ChatEvent::Error(m);
        }
        let parts = v["candidates"][0]["content"]["parts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let text: String = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        if text.is_empty() {
            ChatEvent::Other
        } else {
            ChatEvent::Text(text)
        }
    }

    fn json_usage(&self, body: &[u8], reading: &mut Reading) {
        let chunks = match parse::<JsonBody>(body) {
            Some(JsonBody::One(c)) => vec![c],
            Some(JsonBody::Many(v)) => v,
            None => return,
        };
        for c in chunks {
            apply(c, reading);
        }
        reading.complete = !reading.usage.is_empty();
    }

    fn sse_event(&self, _name: &[u8], data: &[u8], reading: &mut Reading) -> Event {
        let Some(chunk) = parse::<Chunk>(data) else {
            return Event::Other;
        };
        if chunk.error.is_some() {
            reading.error = super::error_kind(data);
            return Event::Error;
        }
        let has_candidates = chunk.candidates.as_ref().is_some_and(|c| !c.is_empty());
        if apply(chunk, reading) {
            reading.complete = true;
        }
        if has_candidates {
            Event::Content
        } else {
            Event::Other
        }
    }
}
