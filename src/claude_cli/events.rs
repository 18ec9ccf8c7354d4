//! The CLI's stream-json stdout, one JSON object per line, translated into what an Anthropic
//! Messages client expects: SSE written as lines arrive (streaming), or one `message` body at
//! the end. The client sees one assistant message holding the text of every top-level turn.
//!
//! - The CLI's own tool use and tool results (its agent loop: `tool_use` blocks, `user` lines,
//!   sub-agents' lines with a `parent_tool_use_id`) are omitted: they are not tools the client
//!   could run, and their inputs and outputs may hold file contents. Thinking is omitted too.
//! - Token-level text comes from `stream_event` partials (with `--include-partial-messages`);
//!   an `assistant` line whose message was already streamed is skipped, else its text blocks are
//!   sent whole. Partial tool input (`input_json_delta`) is never kept.
//! - `message_start` is held back until the model's first output, so a run that fails before
//!   (a usage limit, an auth error) can still be answered with an HTTP error status.
//! - The final `result` gives the usage (cumulative over all turns) and `total_cost_usd`, put in
//!   the last `message_delta.usage` (with `"cost_usd"`), and the [`Outcome`].
//! - `system/api_retry`, `system/status`, `rate_limit_event` and the like are progress, not output.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{json, Value};

use super::limit;
use super::process::Exit;
use crate::provider::ProviderKind;
use crate::text::sanitize;

/// Text kept for a JSON (non-streaming) answer at most.
pub const MAX_JSON_TEXT: usize = 16 << 20;

/// Token counts of a whole run (every turn of the agent loop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Usage {
    /// Uncached input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
}

/// What the final `result` line reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The CLI's session id, from `result` or the `system/init` line (`None`: neither gave one).
    pub session_id: Option<String>,
    /// Turns of the agent loop (`num_turns`; 0 when not given).
    pub num_turns: u32,
    /// Tokens over the whole run.
    pub usage: Usage,
    /// `total_cost_usd`: what the CLI says the run cost, in USD (0 when not given or invalid).
    pub cost_usd: f64,
    /// `modelUsage`: an object keyed by model (tokens and `costUSD` of each).
    pub model_usage: Value,
    /// Why the last turn stopped, as the CLI says (`end_turn`, `max_tokens`, ...; `None`: not
    /// said).
    pub stop_reason: Option<String>,
}

/// How a run ended. Messages come from the child and are sanitized.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The run produced its answer.
    Success(Report),
    /// An error result (`is_error`), or no result at all; `status` is the upstream status to use.
    Failed {
        /// The HTTP status to answer with: the CLI's `api_error_status` when it gave one, 400 when
        /// a run limit (`max_turns`, `max_budget_usd`) stopped it, else 502.
        status: u16,
        /// What went wrong, sanitized.
        message: String,
        /// The final report (`None`: the run ended without a `result` line).
        report: Option<Report>,
    },
    /// The account hit its subscription usage limit or a rate limit.
    RateLimited {
        /// When the limit resets, from a `rate_limit_event` or the message (`None`: unknown).
        reset: Option<SystemTime>,
        /// The CLI's notice, sanitized.
        message: String,
        /// The final report (`None`: the run ended without a `result` line).
        report: Option<Report>,
    },
}

impl Outcome {
    /// The final report, when the run got as far as a `result` line.
    pub fn report(&self) -> Option<&Report> {
        match self {
            Outcome::Success(r) => Some(r),
            Outcome::Failed { report, .. } | Outcome::RateLimited { report, .. } => report.as_ref(),
        }
    }
}

/// The end of a translation.
#[derive(Debug)]
pub struct Finished {
    /// How the run ended.
    pub outcome: Outcome,
    /// Streaming: the last SSE bytes to write (the closing events, or an `error` event when the
    /// stream had started). Empty when nothing was sent and the run failed: answer with
    /// [`error_body`] and the outcome's status instead.
    pub tail: Vec<u8>,
    /// Non-streaming success: the `message` JSON.
    pub body: Option<Vec<u8>>,
    /// Whether any SSE was written (then the HTTP status is already 200).
    pub started: bool,
}

/// An Anthropic error body, `{"type":"error","error":{...}}`.
pub fn error_body(status: u16, message: &str) -> Vec<u8> {
    ProviderKind::Anthropic.get().error_body(status, message)
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    subtype: Option<String>,
    parent_tool_use_id: Option<String>,
}

#[derive(Deserialize)]
struct Init {
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct RateLimitLine {
    rate_limit_info: RateLimitInfo,
}

#[derive(Deserialize)]
struct RateLimitInfo {
    status: Option<String>,
    #[serde(rename = "resetsAt")]
    resets_at: Option<f64>,
}

#[derive(Deserialize)]
struct AssistantLine {
    message: Msg,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Msg {
    id: Option<String>,
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct StreamLine {
    event: StreamEvent,
}

#[derive(Deserialize)]
struct StreamEvent {
    #[serde(rename = "type")]
    kind: String,
    index: Option<u64>,
    message: Option<Msg>,
    content_block: Option<Block>,
    delta: Option<Block>,
}

#[derive(Deserialize)]
struct ResultLine {
    subtype: Option<String>,
    #[serde(default)]
    is_error: bool,
    api_error_status: Option<u64>,
    num_turns: Option<u32>,
    result: Option<String>,
    stop_reason: Option<String>,
    session_id: Option<String>,
    total_cost_usd: Option<f64>,
    usage: Option<Usage>,
    #[serde(rename = "modelUsage")]
    model_usage: Option<Value>,
    errors: Option<Vec<Value>>,
    structured_output: Option<Value>,
}

#[path = "translate.rs"]
mod translate;

pub use translate::Translator;

fn epoch(secs: f64) -> Option<SystemTime> {
    (secs.is_finite() && secs > 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(secs.min(1e12)))
}

/// Client-facing `stop_reason`: tool use is internal, so it reads as the end of the turn.
fn stop_reason(r: Option<&str>) -> &'static str {
    match r {
        Some("max_tokens") => "max_tokens",
        Some("stop_sequence") => "stop_sequence",
        Some("refusal") => "refusal",
        Some("pause_turn") => "pause_turn",
        _ => "end_turn",
    }
}

fn usage_json(report: &Report) -> Value {
    let u = &report.usage;
    json!({
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_read_input_tokens": u.cache_read_input_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
        "cost_usd": report.cost_usd,
    })
}

/// Sanitized text of an error result: its `result`, else its `errors`.
fn error_text(r: &ResultLine) -> Option<String> {
    if let Some(t) = r.result.as_deref().filter(|t| !t.trim().is_empty()) {
        return Some(sanitize(t));
    }
    let errors = r.errors.as_ref()?;
    let joined: Vec<String> = errors
        .iter()
        .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
        .collect();
    Some(sanitize(&joined.join("; "))).filter(|s| !s.is_empty())
}

fn status_of(r: &ResultLine) -> u16 {
    match r.api_error_status.and_then(|s| u16::try_from(s).ok()) {
        Some(s @ 400..=599) => s,
        _ => match r.subtype.as_deref() {
            Some("error_max_turns" | "error_max_budget_usd" | "error_max_structured_output_retries") => 400,
            _ => 502,
        },
    }
}

fn describe_exit(exit: &Exit) -> String {
    match (exit.code, exit.signal) {
        (_, Some(sig)) => format!("killed by signal {sig}"),
        (Some(code), None) => format!("exit code {code}"),
        (None, None) => "unknown exit".to_string(),
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
