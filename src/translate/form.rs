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
    /// The conversation, in order (system messages included where the client put them).
    pub messages: Vec<Message>,
    /// Functions the model may call.
    pub tools: Vec<Tool>,
    /// Which tool the model must call (`None`: the target's default).
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one turn (Anthropic `disable_parallel_tool_use`
    /// inverted; `None`: not said).
    pub parallel_tool_calls: Option<bool>,
    /// The most output tokens to generate (OpenAI `max_completion_tokens`, else `max_tokens`;
    /// `None`: not set, see [`super::EncodeOpts::default_max_tokens`]).
    pub max_tokens: Option<u64>,
    /// Sampling temperature, as the client gave it.
    pub temperature: Option<f64>,
    /// Nucleus sampling share, as the client gave it.
    pub top_p: Option<f64>,
    /// Top-k sampling (Anthropic, Gemini; `None`: not set).
    pub top_k: Option<u64>,
    /// Stop sequences (empty: none).
    pub stop: Vec<String>,
    /// The client asked for a streamed answer.
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`: the client wants the usage chunk.
    pub include_usage: bool,
    /// An end-user id for the upstream's abuse tracking (OpenAI `user`, Anthropic
    /// `metadata.user_id`).
    pub user: Option<String>,
    /// OpenAI `response_format` (`None`: free text).
    pub response_format: Option<ResponseFormat>,
    /// OpenAI `n`, kept so that a target with one answer per request can refuse n > 1.
    pub n: Option<u64>,
    /// OpenAI `logprobs` (true) and `top_logprobs`, kept so other targets can refuse them.
    pub logprobs: bool,
    /// OpenAI `top_logprobs`: alternatives per token, kept so other targets can refuse it.
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
    /// The person or app asking.
    User,
    /// The model's turns, tool calls included.
    Assistant,
    /// OpenAI `role: tool`: one [`Part::ToolResult`]. Anthropic keeps tool results in user
    /// messages; encoders accept them in either.
    Tool,
}

/// One message. Decoders keep the source's message indices and, for user and tool messages,
/// one part per content item, so an encoder can name the exact param it refuses.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who speaks it.
    pub role: Role,
    /// Its content, in order.
    pub parts: Vec<Part>,
}

/// One piece of a message's content, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Plain text.
    Text(String),
    /// An image given to the model.
    Image(Image),
    /// A tool call in an assistant message.
    ToolCall(ToolCall),
    /// A tool's answer (in a tool message, or an Anthropic user message).
    ToolResult(ToolResult),
    /// Content only the source dialect has (an Anthropic `document` block, an OpenAI
    /// `input_audio` part): written as is to the same dialect, refused by others.
    Native(Native),
}

/// An image, by value or by reference. URLs are never fetched by the sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// Inline bytes.
    Base64 {
        /// The image's MIME type, like `image/png`.
        media_type: String,
        /// The bytes, base64-encoded.
        data: String,
    },
    /// An `http(s)` URL the upstream fetches (a Gemini target refuses it).
    Url(String),
}

/// A call the assistant made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The call's id, which the result quotes.
    pub id: String,
    /// The function called.
    pub name: String,
    /// The arguments as JSON text (may be empty: no arguments).
    pub arguments: String,
}

/// The answer to a tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The id of the [`ToolCall`] this answers.
    pub tool_call_id: String,
    /// The called function's name, when the conversation shows it (Gemini needs it).
    pub name: Option<String>,
    /// Text and image parts.
    pub content: Vec<Part>,
    /// The tool failed (Anthropic `is_error`).
    pub is_error: bool,
}

/// A source-dialect item with the param path that names it in the client's request.
#[derive(Debug, Clone, PartialEq)]
pub struct Native {
    /// Where the item sits in the client's request, like `messages[1].content[0]`.
    pub param: String,
    /// The item as the client wrote it.
    pub value: Value,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// The function's name.
    pub name: String,
    /// What the function does, for the model (`None`: not given).
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
    /// The model decides (OpenAI `auto`).
    Auto,
    /// No tool may be called (OpenAI `none`).
    None,
    /// Some tool (OpenAI `required`, Anthropic `any`, Gemini `ANY`).
    Required,
    /// This function.
    Named(String),
}

/// The shape the answer's text must have.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object (OpenAI `json_object`).
    JsonObject,
    /// JSON matching a schema (OpenAI `json_schema`).
    JsonSchema {
        /// Names the schema for the upstream.
        name: String,
        /// The JSON schema the answer must match.
        schema: Value,
        /// Strict schema adherence (`None`: the upstream's default).
        strict: Option<bool>,
    },
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A natural end or a stop sequence.
    Stop,
    /// The token limit (`max_tokens`, or the context window).
    Length,
    /// The model is waiting for tool results.
    ToolCalls,
    /// Refused or blocked by the provider's safety filter.
    ContentFilter,
    /// Any reason the dialects do not share.
    Other,
}

/// Token counts of one answer. `input` counts ALL input tokens, cache reads and writes included.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// All input tokens, cache reads and writes included.
    pub input: u64,
    /// Input tokens read from a prompt cache.
    pub cache_read: u64,
    /// Input tokens written to a prompt cache.
    pub cache_write: u64,
    /// Output tokens (Gemini's thinking tokens included).
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
    /// The upstream's id for the answer (`None`: it gave none).
    pub id: Option<String>,
    /// The model the upstream says answered (`None`: not named).
    pub model: Option<String>,
    /// Text and tool call parts, in order.
    pub content: Vec<Part>,
    /// Why the model stopped.
    pub stop: StopReason,
    /// Tokens the upstream reported.
    pub usage: Usage,
}

/// What the client is told about the answer it receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyMeta {
    /// The answer's id as the client sees it.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name the client asked for.
    pub model: String,
}

/// An error from an upstream, in no dialect in particular.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The HTTP status the upstream answered with; for an in-band stream error, the one its code or
    /// kind implies.
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
    /// The answer began.
    Start {
        /// The upstream's id for the answer.
        id: Option<String>,
        /// The model the upstream says answers.
        model: Option<String>,
        /// Usage known at the start (typically input tokens).
        usage: Usage,
    },
    /// A piece of text for block `index`.
    Text {
        /// The block's index.
        index: usize,
        /// The text.
        text: String,
    },
    /// A tool call block began.
    ToolStart {
        /// The block's index.
        index: usize,
        /// The call's id.
        id: String,
        /// The function called.
        name: String,
    },
    /// A piece of a tool call's arguments (JSON text, to be concatenated).
    ToolArgs {
        /// The block's index.
        index: usize,
        /// The arguments' next piece.
        fragment: String,
    },
    /// Block `index` is complete.
    BlockStop {
        /// The block's index.
        index: usize,
    },
    /// The stop reason and/or usage so far (cumulative).
    Delta {
        /// Why the model stopped, once known.
        stop: Option<StopReason>,
        /// Usage so far, when this event carries it.
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
    /// What is wrong with it.
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
