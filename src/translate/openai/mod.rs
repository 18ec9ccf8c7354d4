//! OpenAI Chat Completions: requests from clients and to upstreams, answers, streams, and the
//! usage and finish-reason vocabulary they share.

pub(super) mod encode;
pub(in crate::translate) mod plain;
pub(super) mod reply;
pub(super) mod request;
pub(super) mod stream;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
#[derive(Debug, Serialize)]
pub(super) struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: DetailsOut,
}

#[derive(Debug, Serialize)]
struct DetailsOut {
    cached_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    cache_write_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> UsageOut {
        UsageOut {
            prompt_tokens: u.input,
            completion_tokens: u.output,
            total_tokens: u.input.saturating_add(u.output),
            prompt_tokens_details: DetailsOut {
                cached_tokens: u.cache_read,
                cache_write_tokens: u.cache_write,
            },
        }
    }
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
