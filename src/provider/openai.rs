//! OpenAI-shaped APIs (OpenAI and OpenRouter): bearer keys, `{"error":{...}}` errors, usage in
//! the JSON body, in the final chunk of a chat stream (`choices: []`), or in the Responses API's
//! `response.completed` event. Streams that did not ask for usage are asked for it upstream.

use bytes::Bytes;
use serde::Deserialize;

use super::{parse, AuthStyle, ChatEvent, Dialect, Provider, ProviderKind, Turn};
use crate::json;
use crate::usage::{Event, Reading, Usage};
use crate::validate::BodyInfo;

pub struct OpenAiCompat {
    kind: ProviderKind,
}

pub static OPENAI: OpenAiCompat = OpenAiCompat {
    kind: ProviderKind::Openai,
};
pub static OPENROUTER: OpenAiCompat = OpenAiCompat {
    kind: ProviderKind::Openrouter,
};

#[derive(Deserialize)]
struct Details {
    cached_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
}

/// Chat Completions (`prompt_tokens`...) and Responses (`input_tokens`...) usage.
#[derive(Deserialize)]
struct OUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    prompt_tokens_details: Option<Details>,
    input_tokens_details: Option<Details>,
    cost: Option<f64>,
}

impl From<OUsage> for Usage {
    fn from(u: OUsage) -> Usage {
        let details = u.prompt_tokens_details.or(u.input_tokens_details);
        Usage {
            input: u.prompt_tokens.or(u.input_tokens),
            output: u.completion_tokens.or(u.output_tokens),
            cache_read: details.as_ref().and_then(|d| d.cached_tokens),
            cache_write: details.as_ref().and_then(|d| d.cache_write_tokens),
            cache_write_1h: None,
            cost: u.cost,
            input_includes_cache: true,
        }
    }
}

/// A JSON body, a chat chunk, or a Responses event (whose response sits in `response`).
struct Body {
    model: Option<String>,
    usage: Option<OUsage>,
    /// `choices` is an array: whether it has any element.
    choices: Option<bool>,
    /// A non-null `error`.
    error: bool,
    response: Option<Box<Body>>,
}

/// The fields of a body or chunk that matter, read without parsing the rest (choices and output
/// are crossed by a scan). `nested`: also look into `response` (one level; Responses API events).
fn body(doc: &[u8], nested: bool) -> Body {
    let keys = [&b"model"[..], b"usage", b"choices", b"error", b"response"];
    let [model, usage, choices, error, response] = json::members(doc, keys);
    Body {
        model: model.and_then(parse),
        usage: usage.and_then(parse),
        choices: choices
            .filter(|c| c.starts_with(b"["))
            .map(|c| !json::is_empty_array(c)),
        error: error.is_some_and(|e| e != b"null"),
        response: response.filter(|_| nested).map(|r| Box::new(body(r, false))),
    }
}

fn apply(body: Body, reading: &mut Reading) -> bool {
    let body = match body.response {
        Some(inner) => *inner,
        None => body,
    };
    if reading.model.is_none() {
        reading.model = body.model;
    }
    match body.usage {
        Some(u) => {
            reading.usage.merge(&u.into());
            true
        }
        None => false,
    }
}

impl Provider for OpenAiCompat {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn dialect(&self) -> Dialect {
        Dialect::OpenAi
    }

    fn default_auth(&self) -> AuthStyle {
        AuthStyle::Bearer
    }

    fn error_body(&self, status: u16, message: &str) -> Vec<u8> {
        let (kind, code) = match status {
            401 => ("invalid_request_error", "invalid_api_key"),
            403 => ("invalid_request_error", "permission_denied"),
            404 => ("invalid_request_error", "not_found"),
            413 => ("invalid_request_error", "request_too_large"),
            429 => ("rate_limit_exceeded", "rate_limit_exceeded"),
            400..=499 => ("invalid_request_error", "invalid_request"),
            504 => ("server_error", "timeout"),
            _ => ("server_error", "upstream_unavailable"),
        };
        let body = serde_json::json!({
            "error": { "message": message, "type": kind, "param": null, "code": code },
        });
        body.to_string().into_bytes()
    }

    fn json_usage(&self, body: &[u8], reading: &mut Reading) {
        reading.complete = apply(self::body(body, true), reading);
    }

    fn sse_event(&self, name: &[u8], data: &[u8], reading: &mut Reading) -> Event {
        if data == b"[DONE]" {
            return Event::Done;
        }
        // Responses API: named events.
        if let Some(kind) = name.strip_prefix(b"response.") {
            return match kind {
                b"completed" | b"incomplete" | b"failed" => {
                    reading.complete |= apply(body(data, true), reading);
                    if kind == b"failed" {
                        Event::Error
                    } else {
                        Event::Other
                    }
                }
                b"created" | b"in_progress" | b"queued" => Event::Other,
                _ => Event::Content,
            };
        }
        if name == b"error" {
            reading.error = super::error_kind(data);
            return Event::Error;
        }
        // Chat Completions chunks.
        let chunk = body(data, false);
        if chunk.error {
            reading.error = super::error_kind(data);
            return Event::Error;
        }
        let no_choices = chunk.choices == Some(false);
        let has_choices = chunk.choices == Some(true);
        if apply(chunk, reading) {
            reading.complete = true;
            if no_choices {
                return Event::UsageOnly;
            }
        }
        if has_choices {
            Event::Content
        } else {
            Event::Other
        }
    }

    fn rate_limit_wait(&self, headers: &http::HeaderMap, now: std::time::SystemTime) -> Option<std::time::Duration> {
        const LIMITS: [(&str, &str); 2] = [
            ("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
            ("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
        ];
        crate::resilience::retry_after(headers, now).or_else(|| crate::resilience::reset_headers(headers, &LIMITS, now))
    }

    fn chat_model(&self) -> &'static str {
        "gpt-4.1"
    }

    fn chat_request(&self, model: &str, turns: &[Turn]) -> (String, serde_json::Value) {
        let messages: Vec<_> = turns
            .iter()
            .map(|t| serde_json::json!({ "role": if t.user { "user" } else { "assistant" }, "content": t.text }))
            .collect();
        (
            "/v1/chat/completions".into(),
            serde_json::json!({ "model": model, "stream": true, "messages": messages }),
        )
    }

    fn chat_event(&self, _name: &[u8], data: &[u8]) -> ChatEvent {
        let Some(v) = parse::<serde_json::Value>(data) else {
            return ChatEvent::Other;
        };
        if let Some(m) = super::error_message(&v) {
            return ChatEvent::Error(m);
        }
        match v["choices"][0]["delta"]["content"].as_str() {
            Some(t) if !t.is_empty() => ChatEvent::Text(t.to_string()),
            _ => ChatEvent::Other,
        }
    }

    /// A streaming chat request that did not ask for usage is asked for it upstream; the
    /// usage-only chunk is then removed from what the client receives. Done on the bytes (the
    /// client's bytes stay as they were around the edit), so a body serde could not re-serialise
    /// still gets metered.
    fn prepare_body(&self, path: &str, info: &BodyInfo, body: Bytes) -> (Bytes, bool) {
        let path = path.split('?').next().unwrap_or(path);
        if info.stream != Some(true) || !path.ends_with("/chat/completions") {
            return (body, false);
        }
        match ask_for_usage(&body) {
            Some(out) => (Bytes::from(out), true),
            None => (body, false),
        }
    }
}

const INCLUDE_USAGE: &[u8] = br#""include_usage":true"#;

/// `body` with `stream_options.include_usage` set to true, or `None` when the client already
/// asked for usage (every `include_usage` member is `true`).
fn ask_for_usage(body: &[u8]) -> Option<Vec<u8>> {
    let mut options = None;
    json::each_member(body, |key, range| {
        if key == b"stream_options" && options.is_none() {
            options = Some(range);
        }
    });
    let Some(options) = options else {
        // No options: add them right after the opening brace.
        let open = memchr::memchr(b'{', body)?;
        return Some(splice(
            body,
            &[(open + 1..open + 1, b"\"stream_options\":{\"include_usage\":true},")],
        ));
    };
    let value = body.get(options.clone())?;
    if value.first() != Some(&b'{') {
        // `null` or anything else: replaced by the option alone.
        return Some(splice(body, &[(options, b"{\"include_usage\":true}")]));
    }
    let mut edits = Vec::new();
    let mut members = 0;
    json::each_member(value, |key, r| {
        members += 1;
        if key == b"include_usage" && value.get(r.clone()) != Some(b"true") {
            edits.push((options.start + r.start..options.start + r.end, &b"true"[..]));
        }
    });
    let mut asked = false;
    json::each_member(value, |key, _| asked |= key == b"include_usage");
    if !asked {
        let at = options.start + 1;
        let text: &[u8] = if members == 0 {
            INCLUDE_USAGE
        } else {
            br#""include_usage":true,"#
        };
        edits.push((at..at, text));
    }
    (!edits.is_empty()).then(|| splice(body, &edits))
}

/// `body` with each range (in ascending order, not overlapping) replaced by its text, in one copy.
fn splice(body: &[u8], edits: &[(std::ops::Range<usize>, &[u8])]) -> Vec<u8> {
    let extra: usize = edits.iter().map(|(_, t)| t.len()).sum();
    let mut out = Vec::with_capacity(body.len() + extra);
    let mut at = 0;
    for (range, text) in edits {
        out.extend_from_slice(body.get(at..range.start).unwrap_or_default());
        out.extend_from_slice(text);
        at = range.end;
    }
    out.extend_from_slice(body.get(at..).unwrap_or_default());
    out
}
