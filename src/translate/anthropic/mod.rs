//! Anthropic Messages: requests from clients and to upstreams, answers, streams, and the
//! usage and stop-reason vocabulary they share.

mod body;
pub(super) mod encode;
pub(super) mod reply;
pub(super) mod request;
pub(super) mod stream;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::form::{StopReason, Usage};

/// A content block of an answer or of a stream's `content_block_start`.
#[derive(Deserialize)]
pub(super) struct Block<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Option<std::borrow::Cow<'a, str>>,
    pub(super) text: Option<String>,
    pub(super) id: Option<String>,
    pub(super) name: Option<String>,
    pub(super) input: Option<Value>,
}

/// Usage as Anthropic reports it: `input_tokens` leaves out cache reads and writes.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(super) struct RawUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl RawUsage {
    /// Merge a later report: `message_start` has the input, `message_delta` the cumulative
    /// output (and sometimes the input again); per field the larger value, a missing one kept.
    pub(super) fn merge(&mut self, later: &RawUsage) {
        fn max(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, None) => x,
                (None, y) => y,
            }
        }
        self.input_tokens = max(self.input_tokens, later.input_tokens);
        self.output_tokens = max(self.output_tokens, later.output_tokens);
        self.cache_creation_input_tokens = max(self.cache_creation_input_tokens, later.cache_creation_input_tokens);
        self.cache_read_input_tokens = max(self.cache_read_input_tokens, later.cache_read_input_tokens);
    }

    /// In the internal form: all input, cache included.
    pub(super) fn usage(&self) -> Usage {
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let cache_write = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input: self
                .input_tokens
                .unwrap_or(0)
                .saturating_add(cache_read)
                .saturating_add(cache_write),
            cache_read,
            cache_write,
            output: self.output_tokens.unwrap_or(0),
        }
    }
}

/// Usage as an Anthropic client reads it.
#[derive(Debug, Serialize)]
pub(super) struct UsageOut {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

impl From<&Usage> for UsageOut {
    fn from(u: &Usage) -> UsageOut {
        UsageOut {
            input_tokens: u.uncached_input(),
            cache_creation_input_tokens: u.cache_write,
            cache_read_input_tokens: u.cache_read,
            output_tokens: u.output,
        }
    }
}

pub(super) fn stop_reason(s: &str) -> StopReason {
    match s {
        "end_turn" | "stop_sequence" => StopReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => StopReason::Length,
        "tool_use" => StopReason::ToolCalls,
        "refusal" => StopReason::ContentFilter,
        _ => StopReason::Other,
    }
}

pub(super) fn stop_str(s: StopReason) -> &'static str {
    match s {
        StopReason::Stop | StopReason::Other => "end_turn",
        StopReason::Length => "max_tokens",
        StopReason::ToolCalls => "tool_use",
        StopReason::ContentFilter => "refusal",
    }
}

/// A tool call's arguments as the `input` object. Text that is not a JSON object (an answer
/// cut off by `max_tokens`) is kept whole under `_raw_arguments` rather than lost.
pub(super) fn input_object(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "_raw_arguments": arguments }),
    }
}
