//! OpenAI Chat Completions: requests from clients and to upstreams, answers, streams, and the
//! usage and finish-reason vocabulary they share.

pub(super) mod encode;
pub(super) mod reply;
pub(super) mod request;
pub(super) mod stream;

use serde_json::{json, Value};

use super::form::{StopReason, Usage};

/// Usage from an OpenAI `usage` object: `prompt_tokens` already counts cached input.
/// `cache_write_tokens` is OpenRouter's (OpenAI itself reports no cache writes).
pub(super) fn usage(v: &Value) -> Usage {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let details = v.get("prompt_tokens_details");
    Usage {
        input: n(v.get("prompt_tokens")),
        cache_read: n(details.and_then(|d| d.get("cached_tokens"))),
        cache_write: n(details.and_then(|d| d.get("cache_write_tokens"))),
        output: n(v.get("completion_tokens")),
    }
}

/// Usage as an OpenAI client reads it; cache writes (which OpenAI itself never reports) are
/// written as OpenRouter does, only when there are some.
pub(super) fn usage_json(u: &Usage) -> Value {
    let mut details = json!({ "cached_tokens": u.cache_read });
    if let (true, Some(d)) = (u.cache_write > 0, details.as_object_mut()) {
        d.insert("cache_write_tokens".into(), u.cache_write.into());
    }
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input.saturating_add(u.output),
        "prompt_tokens_details": details,
    })
}

pub(super) fn stop_reason(s: &str) -> StopReason {
    match s {
        "stop" => StopReason::Stop,
        "length" => StopReason::Length,
        "tool_calls" | "function_call" => StopReason::ToolCalls,
        "content_filter" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

pub(super) fn stop_str(s: StopReason) -> &'static str {
    match s {
        StopReason::Stop | StopReason::Other => "stop",
        StopReason::Length => "length",
        StopReason::ToolCalls => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}
