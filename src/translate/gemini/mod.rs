//! Google Gemini generateContent: requests to upstreams, answers, streams, and the usage and
//! finish-reason vocabulary they share. Gemini is never a client's dialect here.

pub(super) mod encode;
pub(super) mod reply;
pub(super) mod stream;

use serde_json::{json, Value};

use super::form::{StopReason, Usage};

/// Usage from `usageMetadata`: `promptTokenCount` includes cached content; output counts the
/// thinking tokens Google bills as output; tool-use prompt tokens are input.
pub(super) fn usage(v: &Value) -> Usage {
    let n = |key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input: n("promptTokenCount").saturating_add(n("toolUsePromptTokenCount")),
        cache_read: n("cachedContentTokenCount"),
        cache_write: 0,
        output: n("candidatesTokenCount").saturating_add(n("thoughtsTokenCount")),
    }
}

pub(super) fn usage_json(u: &Usage) -> Value {
    json!({
        "promptTokenCount": u.input,
        "candidatesTokenCount": u.output,
        "cachedContentTokenCount": u.cache_read,
        "totalTokenCount": u.input.saturating_add(u.output),
    })
}

/// A finish reason; `STOP` after function calls means the model wants them run.
pub(super) fn stop_reason(s: &str, called: bool) -> StopReason {
    match s {
        "STOP" if called => StopReason::ToolCalls,
        "STOP" => StopReason::Stop,
        "MAX_TOKENS" => StopReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            StopReason::ContentFilter
        }
        _ => StopReason::Other,
    }
}

pub(super) fn stop_str(s: StopReason) -> &'static str {
    match s {
        StopReason::Stop | StopReason::ToolCalls => "STOP",
        StopReason::Length => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        StopReason::Other => "OTHER",
    }
}

/// An id for a function call (Gemini's calls may have none; clients need one to answer it):
/// the call's own id, else one made of the response id and the call's ordinal, kept to the
/// characters every dialect accepts in an id.
pub(super) fn call_id(own: Option<&str>, response_id: Option<&str>, ordinal: usize) -> String {
    if let Some(id) = own.filter(|id| !id.is_empty()) {
        return id.to_string();
    }
    let safe: String = response_id
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect();
    if safe.is_empty() {
        format!("call_{ordinal}")
    } else {
        format!("call_{safe}_{ordinal}")
    }
}
