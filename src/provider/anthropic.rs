//! Anthropic Messages API: `x-api-key`, `{"type":"error","error":{...}}` errors, usage in the JSON
//! body or split over `message_start` (input, cache) and `message_delta` (cumulative totals).

use serde::Deserialize;

use super::{parse, AuthStyle, ChatEvent, Dialect, Provider, ProviderKind, Turn};
use crate::json;
use crate::usage::{Event, Reading, Usage};
use crate::validate::BodyInfo;

pub struct Anthropic {
    kind: ProviderKind,
}

/// Anthropic's API.
pub static ANTHROPIC: Anthropic = Anthropic {
    kind: ProviderKind::Anthropic,
};

/// The sidecar's Claude Code CLI service, which speaks Anthropic's API and states each run's
/// cost in the final usage (`cost_usd`).
pub static CLAUDE_CLI: Anthropic = Anthropic {
    kind: ProviderKind::ClaudeCli,
};

#[derive(Deserialize)]
struct AUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation: Option<CacheCreation>,
    /// The CLI service's cost of the run (never sent by Anthropic's API; read only for claude-cli).
    cost_usd: Option<f64>,
}

#[derive(Deserialize)]
struct CacheCreation {
    ephemeral_1h_input_tokens: Option<u64>,
}

impl From<AUsage> for Usage {
    fn from(u: AUsage) -> Usage {
        Usage {
            input: u.input_tokens,
            output: u.output_tokens,
            cache_read: u.cache_read_input_tokens,
            cache_write: u.cache_creation_input_tokens,
            cache_write_1h: u.cache_creation.and_then(|c| c.ephemeral_1h_input_tokens),
            cost: u.cost_usd.filter(|c| c.is_finite() && *c >= 0.0),
            input_includes_cache: false,
        }
    }
}

/// A message (the JSON body, or `message_start.message`) and `message_delta`, which has only
/// `usage` at the top.
struct Message {
    model: Option<String>,
    usage: Option<AUsage>,
    message: Option<Box<Message>>,
}

/// The fields of a message that matter, read without parsing the rest (its content is crossed
/// by a scan, not parsed). `nested`: also look into `message` (one level).
fn message(doc: &[u8], nested: bool) -> Message {
    let [model, usage, inner] = json::members(doc, [b"model", b"usage", b"message"]);
    Message {
        model: model.and_then(parse),
        usage: usage.and_then(parse),
        message: inner.filter(|_| nested).map(|m| Box::new(message(m, false))),
    }
}

fn apply(msg: Message, reading: &mut Reading, stated_cost: bool) -> bool {
    let msg = match msg.message {
        Some(inner) => *inner,
        None => msg,
    };
    if reading.model.is_none() {
        reading.model = msg.model;
    }
    match msg.usage {
        Some(mut u) => {
            if !stated_cost {
                u.cost_usd = None;
            }
            reading.usage.merge(&u.into());
            true
        }
        None => false,
    }
}

impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn dialect(&self) -> Dialect {
        Dialect::Anthropic
    }

    fn default_auth(&self) -> AuthStyle {
        AuthStyle::XApiKey
    }

    fn error_body(&self, status: u16, message: &str) -> Vec<u8> {
        let kind = match status {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 | 503 => "overloaded_error",
            400..=499 => "invalid_request_error",
            _ => "api_error",
        };
        let body = serde_json::json!({
            "type": "error",
            "error": { "type": kind, "message": message },
        });
        body.to_string().into_bytes()
    }

    fn json_usage(&self, body: &[u8], reading: &mut Reading) {
        reading.complete = apply(message(body, true), reading, self.kind == ProviderKind::ClaudeCli);
    }

    fn sse_event(&self, name: &[u8], data: &[u8], reading: &mut Reading) -> Event {
        match name {
            b"content_block_start" | b"content_block_delta" | b"content_block_stop" => Event::Content,
            b"message_start" => {
                apply(message(data, true), reading, self.kind == ProviderKind::ClaudeCli);
                Event::Other
            }
            b"message_delta" => {
                reading.complete |= apply(message(data, true), reading, self.kind == ProviderKind::ClaudeCli);
                Event::Other
            }
            b"message_stop" => Event::Done,
            b"error" => {
                reading.error = super::error_kind(data);
                Event::Error
            }
            _ => Event::Other,
        }
    }

    fn sse_error(&self, status: u16, message: &str) -> Vec<u8> {
        let mut out = b"event: error\ndata: ".to_vec();
        out.extend_from_slice(&self.error_body(status, message));
        out.extend_from_slice(b"\n\n");
        out
    }

    fn rate_limit_wait(&self, headers: &http::HeaderMap, now: std::time::SystemTime) -> Option<std::time::Duration> {
        const LIMITS: [(&str, &str); 4] = [
            (
                "anthropic-ratelimit-requests-remaining",
                "anthropic-ratelimit-requests-reset",
            ),
            (
                "anthropic-ratelimit-tokens-remaining",
                "anthropic-ratelimit-tokens-reset",
            ),
            (
                "anthropic-ratelimit-input-tokens-remaining",
                "anthropic-ratelimit-input-tokens-reset",
            ),
            (
                "anthropic-ratelimit-output-tokens-remaining",
                "anthropic-ratelimit-output-tokens-reset",
            ),
        ];
        crate::resilience::retry_after(headers, now).or_else(|| crate::resilience::reset_headers(headers, &LIMITS, now))
    }

    fn in_band_rate_limited(&self, kind: &str) -> bool {
        matches!(kind, "overloaded_error" | "rate_limit_error")
    }

    fn check_headers(&self) -> &'static [(&'static str, &'static str)] {
        &[("anthropic-version", "2023-06-01")]
    }

    fn chat_model(&self) -> &'static str {
        "claude-sonnet-4-6"
    }

    fn chat_request(&self, model: &str, turns: &[Turn]) -> (String, serde_json::Value) {
        let messages: Vec<_> = turns
            .iter()
            .map(|t| serde_json::json!({ "role": if t.user { "user" } else { "assistant" }, "content": t.text }))
            .collect();
        let body = serde_json::json!({ "model": model, "max_tokens": 4096, "stream": true, "messages": messages });
        ("/v1/messages".into(), body)
    }

    fn chat_event(&self, name: &[u8], data: &[u8]) -> ChatEvent {
        let Some(v) = parse::<serde_json::Value>(data) else {
            return ChatEvent::Other;
        };
        match name {
            b"content_block_delta" => match v["delta"]["text"].as_str() {
                Some(t) => ChatEvent::Text(t.to_string()),
                None => ChatEvent::Other,
            },
            b"error" => ChatEvent::Error(super::error_message(&v).unwrap_or_default()),
            _ => ChatEvent::Other,
        }
    }

    /// `metadata.user_id`; Claude Code writes a JSON object there as a string
    /// (`{"device_id":..,"session_id":..}`): its `session_id` then.
    fn body_session(&self, info: &BodyInfo) -> Option<String> {
        if self.kind == ProviderKind::ClaudeCli {
            if let Some(id) = info.session_id.clone() {
                return Some(id);
            }
        }
        let id = info.metadata.as_ref()?.get("user_id")?.as_str()?;
        if id.trim_start().starts_with('{') {
            let v: serde_json::Value = serde_json::from_str(id).ok()?;
            return v.get("session_id")?.as_str().map(String::from);
        }
        Some(id.to_string())
    }
}
