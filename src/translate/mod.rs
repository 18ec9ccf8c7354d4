//! Dialect translation for the front doors: OpenAI Chat Completions, Anthropic Messages and
//! Gemini generateContent, each translated into and out of ONE internal form ([`Chat`],
//! [`Reply`], [`Event`]), never a translator per pair. Pure functions and state machines over
//! bytes: no I/O. Client-facing dialects are OpenAI and Anthropic; targets can be any of three.
//!
//! What a target cannot honour is refused with an [`Invalid`] naming the client's param, never
//! dropped silently; what changes nothing about the answer's shape (cache hints, the source
//! dialect's bookkeeping members) is dropped and listed in [`Encoded::dropped`].

mod anthropic;
mod common;
mod error;
mod form;
mod gemini;
mod jsonw;
mod lenient;
mod models;
mod openai;
mod passthrough;
mod read;
mod stream;

#[cfg(test)]
mod tests;

pub use error::decode_error;
pub use form::{
    Chat, ErrorInfo, Event, Image, Invalid, Message, Native, Part, Reply, ReplyMeta, ResponseFormat, Role, StopReason,
    Tool, ToolCall, ToolChoice, ToolResult, Usage,
};
pub use models::model_list;
pub use passthrough::passthrough;
pub use stream::{StreamMeta, StreamTranslator};

use crate::provider::Dialect;

/// Top-level request fields for a Claude Code CLI upstream, kept in [`Chat::extra`].
pub const EXTRA_FIELDS: [&str; 14] = [
    "append_system_prompt",
    "allowed_tools",
    "disallowed_tools",
    "working_directory",
    "add_dirs",
    "context_files",
    "permission_mode",
    "max_turns",
    "max_budget_usd",
    "json_schema",
    "agents",
    "mcp_config",
    "fallback_model",
    "betas",
];

/// Top-level request fields only the front door reads; they never go upstream (a pass-through
/// removes them with [`passthrough`]).
pub const DOOR_FIELDS: [&str; 2] = ["backend", "session_id"];

/// How to encode a request for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOpts {
    /// `max_tokens` when the client set none (Anthropic requires one).
    pub default_max_tokens: u64,
    /// Write [`Chat::extra`] (the target is the Claude Code CLI).
    pub keep_extra: bool,
}

/// A request ready for its upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Upstream path and query, e.g. `/v1/messages`.
    pub path: String,
    /// The request body, JSON.
    pub body: Vec<u8>,
    /// What the client sent that this target does not get and that changes nothing about the
    /// answer's shape (for a response header): [`Chat::dropped`] and this encoding's own drops.
    pub dropped: Vec<&'static str>,
}

/// Read a client's request body (OpenAI or Anthropic) with the front door's checks.
pub fn decode_request(dialect: Dialect, body: &[u8]) -> Result<Chat, Invalid> {
    if dialect == Dialect::OpenAi {
        if let Some(chat) = openai::plain::decode(body) {
            return Ok(chat);
        }
    }
    decode_request_general(dialect, body)
}

/// [`decode_request`] without the typed reader of plain OpenAI requests: what every body goes
/// through when that reader declines it (public so tests can compare the two).
#[doc(hidden)]
pub fn decode_request_general(dialect: Dialect, body: &[u8]) -> Result<Chat, Invalid> {
    match dialect {
        Dialect::OpenAi => openai::request::decode(body),
        Dialect::Anthropic => anthropic::request::decode(body),
        Dialect::Gemini => Err(Invalid::new("", "Gemini is not a front-door dialect")),
    }
}

/// Write `chat` for a `dialect` target that knows the model as `model`.
pub fn encode_request(dialect: Dialect, chat: &Chat, model: &str, opts: &EncodeOpts) -> Result<Encoded, Invalid> {
    let mut dropped = chat.dropped.clone();
    let (path, body) = match dialect {
        Dialect::OpenAi => {
            let (path, body) = openai::encode::encode(chat, model, opts, &mut dropped)?;
            (path, common::to_body(&body)?)
        }
        Dialect::Anthropic => anthropic::encode::encode(chat, model, opts, &mut dropped)?,
        Dialect::Gemini => {
            let (path, body) = gemini::encode::encode(chat, model, opts, &mut dropped)?;
            (path, common::to_body(&body)?)
        }
    };
    Ok(Encoded { path, body, dropped })
}

/// Read an upstream's complete JSON answer.
pub fn decode_response(dialect: Dialect, body: &[u8]) -> Result<Reply, String> {
    match dialect {
        Dialect::OpenAi => openai::reply::decode(body),
        Dialect::Anthropic => anthropic::reply::decode(body),
        Dialect::Gemini => gemini::reply::decode(body),
    }
}

/// Write a complete answer in the client's dialect.
pub fn encode_response(dialect: Dialect, reply: &Reply, meta: &ReplyMeta) -> Vec<u8> {
    match dialect {
        Dialect::OpenAi => openai::reply::encode(reply, meta),
        Dialect::Anthropic => anthropic::reply::encode(reply, meta),
        Dialect::Gemini => gemini::reply::encode(reply, meta),
    }
}
