//! OpenAI Chat Completions: requests from clients and to upstreams, answers, streams, and the
//! usage and finish-reason vocabulary they share.

pub(super) mod encode;
pub(in crate::translate) mod plain;
pub(super) mod reply;
pub(super) mod request;
pub(super) mod stream;

use serde::Deserialize;
use serde_json::Value;

use super::jsonw::JsonOut;
use super::lenient::count;

use super::form::{StopReason, Usage};

/// Usage from an OpenAI `usage` object: `prompt_tokens` already counts cached input.
/// `cache_write_tokens` is OpenRouter's (OpenAI itself reports no cache writes).
#[derive(Debug, Default, Deserialize)]
pub(super) struct UsageIn {
    #[serde(default, deserialize_with = "count")]
    prompt_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<DetailsIn>,
}

#[derive(Debug, Default, Deserialize)]
struct DetailsIn {
    #[serde(default, deserialize_with = "count")]
    cached_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    cache_write_tokens: Option<u64>,
}

impl UsageIn {
    pub(super) fn usage(&self) -> Usage {
        let details = self.prompt_tokens_details.as_ref();
        Usage {
            input: self.prompt_tokens.unwrap_or(0),
            cache_read: details.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write: details.and_then(|d| d.cache_write_tokens).unwrap_or(0),
            output: self.completion_tokens.unwrap_or(0),
        }
    }
}

/// Usage from a `usage` object already parsed (a stream chunk's).
pub(super) fn usage(v: &Value) -> Usage {
    UsageIn::deserialize(v).map(|u| u.usage()).unwrap_or_default()
}

/// Usage as an OpenAI client reads it; cache writes (which OpenAI itself never reports) are
/// written as OpenRouter does, only when there are some.
pub(super) fn write_usage(w: &mut JsonOut, u: &Usage) {
    w.raw(b"{\"prompt_tokens\":");
    w.value(&u.input);
    w.raw(b",\"completion_tokens\":");
    w.value(&u.output);
    w.raw(b",\"total_tokens\":");
    w.value(&u.input.saturating_add(u.output));
    w.raw(b",\"prompt_tokens_details\":{\"cached_tokens\":");
    w.value(&u.cache_read);
    if u.cache_write > 0 {
        w.raw(b",\"cache_write_tokens\":");
        w.value(&u.cache_write);
    }
    w.raw(b"}}");
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
