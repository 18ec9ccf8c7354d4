//! The internal form every dialect is translated into and out of: a request ([`Chat`]), a
//! complete answer ([`Reply`]) and the events of a streamed answer ([`Event`]).

use serde_json::{Map, Value};

use crate::provider::Dialect;

/// A chat request in no dialect in particular.
#[derive(Debug, Clone, PartialEq)]
pub struct Chat {
    /// The dialect the request was written in: [`Native`] items and `other` belong to it.
    pub source: Dialect,
    /// The model the client asked for.
    pub model: String,
    /// The system prompt given apart from the messages (Anthropic `system`). System messages
    /// inside the conversation are [`Role::System`] messages in place.
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<String>,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`: the client wants the usage chunk.
    pub include_usage: bool,
    pub user: Option<String>,
    pub response_format: Option<ResponseFormat>,
    /// OpenAI `n`, kept so that a target with one answer per request can refuse n > 1.
    pub n: Option<u64>,
    /// OpenAI `logprobs` (true) and `top_logprobs`, kept so other targets can refuse them.
    pub logprobs: bool,
    pub top_logprobs: Option<u64>,
    /// The pool the client named (OpenAI door body field `backend`); never sent upstream.
    pub backend: Option<String>,
    /// A session named in the body (`session_id`); never sent upstream.
    pub session_id: Option<String>,
    /// Fields for a Claude Code CLI upstream ([`super::EXTRA_FIELDS`]), written only when
    /// [`super::EncodeOpts::keep_extra`].
    pub extra: Map<String, Value>,
    /// Other top-level members of the source dialect, written as they are to a target of the
    /// same dialect; another target drops the harmless ones (noting them) and refuses the rest.
    pub other: Map<String, Value>,
    /// What decoding could not carry (`cache_control` on blocks, `thinking` blocks in history).
    pub dropped: Vec<&'static str>,
}

impl Chat {
    /// An empty request in `source`'s dialect for `model`: no messages, nothing set.
    pub fn new(source: Dialect, model: &str) -> Chat {
        Chat {
            source,
            model: model.to_string(),
            system: Vec::new(),
            messages: Vec::new(),
            tools: Vec::new(),
            tool_choice: None,
            parallel_tool_calls: None,
            max_tokens: None,
            temperature: None,
            top_p: None,
            top_k: None,
            stop: Vec::new(),
            stream: false,
            include_usage: false,
            user: None,
            response_format: None,
            n: None,
            logprobs: false,
            top_logprobs: None,
            backend: None,
            session_id: None,
            extra: Map::new(),
            other: Map::new(),
            dropped: Vec::new(),
        }
    }

    /// Note something decoding could not carry (once).
    pub(crate) fn drop_hint(&mut self, what: &'static str) {
        if !self.dropped.contains(&what) {
            self.dropped.push(what);
        }
    }
}

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A system message inside the conversation (OpenAI system/developer, Anthropic role system).
    System,
    User,
    Assistant,
    /// OpenAI `role: tool`: one [`Part::ToolResult`]. Anthropic keeps tool results in user
    /// messages; encoders accept them in either.
    Tool,
}

/// One message. Decoders keep the source's message indices and, for user and tool messages,
/// one part per content item, so an encoder can name the exact param it refuses.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

/// One piece of a message's content, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
    /// Content only the source dialect has (an Anthropic `document` block, an OpenAI
    /// `input_audio` part): written as is to the same dialect, refused by others.
    Native(Native),
}

/// An image, by value or by reference. URLs are never fetched by the sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    Base64 { media_type: String, data: String },
    Url(String),
}

/// A call the assistant made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text (may be empty: no arguments).
    pub arguments: String,
}

/// The answer to a tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub tool_call_id: String,
    /// The called function's name, when the conversation shows it (Gemini needs it).
    pub name: Option<String>,
    /// Text and image parts.
    pub content: Vec<Part>,
    pub is_error: bool,
}

/// A source-dialect item with the param path that names it in the client's request.
#[derive(Debug, Clone, PartialEq)]
pub struct Native {
    pub param: String,
    pub value: Value,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON schema of the arguments.
    pub schema: Value,
    /// A tool only the source dialect runs (Anthropic server tools such as
    /// `web_search_20250305`): the whole definition, refused by other dialects.
    pub native: Option<Native>,
}

/// Which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool (OpenAI `required`, Anthropic `any`, Gemini `ANY`).
    Required,
    /// This function.
    Named(String),
}

/// The shape the answer's text must have.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        strict: Option<bool>,
    },
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Other,
}

/// Token counts of one answer. `input` counts ALL input tokens, cache reads and writes included.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub output: u64,
}

impl Usage {
    /// Merge a later report of the same answer: counts are cumulative, so per field the larger
    /// value wins and a field a later report omits (zero) is never lost.
    pub fn merge(&mut self, later: &Usage) {
        self.input = self.input.max(later.input);
        self.cache_read = self.cache_read.max(later.cache_read);
        self.cache_write = self.cache_write.max(later.cache_write);
        self.output = self.output.max(later.output);
    }

    /// Input that was neither read from nor written to a cache (Anthropic's `input_tokens`).
    pub fn uncached_input(&self) -> u64 {
        self.input
            .saturating_sub(self.cache_read.saturating_add(self.cache_write))
    }
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub id: Option<String>,
    pub model: Option<String>,
    /// Text and tool call parts, in order.
    pub content: Vec<Part>,
    pub stop: StopReason,
    pub usage: Usage,
}

/// What the client is told about the answer it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyMeta {
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name the client asked for.
    pub model: String,
}

/// An error from an upstream, in no dialect in particular.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    pub status: u16,
    /// The upstream's own error kind (`overloaded_error`, `RESOURCE_EXHAUSTED`, ...).
    pub kind: String,
    /// Sanitized: control characters removed, at most 500 bytes.
    pub message: String,
}

/// One event of a streamed answer. Block indices count the answer's text and tool call blocks
/// from 0, in order, whatever the upstream numbered (its thinking blocks are skipped).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Start {
        id: Option<String>,
        model: Option<String>,
        usage: Usage,
    },
    Text {
        index: usize,
        text: String,
    },
    ToolStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolArgs {
        index: usize,
        fragment: String,
    },
    BlockStop {
        index: usize,
    },
    /// The stop reason and/or usage so far (cumulative).
    Delta {
        stop: Option<StopReason>,
        usage: Option<Usage>,
    },
    /// In-band upstream error: the stream ends.
    Error(ErrorInfo),
    /// The upstream's end marker: the stream ends cleanly.
    Done,
}

/// A request the front door refuses, with the param it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Field path in the client's request, like `messages[2].content` or `temperature`;
    /// empty for the body as a whole.
    pub param: String,
    pub message: String,
}

impl Invalid {
    pub(crate) fn new(param: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            param: param.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.param.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.param, self.message)
        }
    }
}
