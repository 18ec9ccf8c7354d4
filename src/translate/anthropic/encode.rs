//! A [`Chat`] as an Anthropic Messages request body: one system slot, strictly alternating
//! user/assistant messages (tool results are user `tool_result` blocks, first in their message),
//! `max_tokens` always set, `tool_choice` with `disable_parallel_tool_use`. Written straight from
//! views that borrow from the [`Chat`] ([`JsonOut`]): no `Value` tree is built for the body.

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::provider::Dialect;
use crate::translate::common::{self, Obj};
use crate::translate::form::{Chat, Image, Invalid, Part, ResponseFormat, Role, ToolChoice, ToolResult};
use crate::translate::jsonw::JsonOut;
use crate::translate::EncodeOpts;

const TARGET: Dialect = Dialect::Anthropic;

/// The body, borrowing from the [`Chat`]; written by [`Body::write`].
struct Body<'a> {
    model: &'a str,
    system: Option<System<'a>>,
    messages: Vec<MessageOut<'a>>,
    max_tokens: u64,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u64>,
    stop_sequences: &'a [String],
    stream: bool,
    tools: Vec<ToolDef<'a>>,
    tool_choice: Option<Choice<'a>>,
    user_id: Option<&'a str>,
    /// The source's own members and the CLI's extras, minus what the members above write.
    rest: Obj,
}

impl Body<'_> {
    /// Whether the typed members write `key` (so `rest` must not).
    fn writes(&self, key: &str) -> bool {
        match key {
            "model" | "messages" | "max_tokens" => true,
            "system" => self.system.is_some(),
            "temperature" => self.temperature.is_some(),
            "top_p" => self.top_p.is_some(),
            "top_k" => self.top_k.is_some(),
            "stop_sequences" => !self.stop_sequences.is_empty(),
            "stream" => self.stream,
            "tools" => !self.tools.is_empty(),
            "tool_choice" => self.tool_choice.is_some(),
            "metadata" => self.user_id.is_some(),
            _ => false,
        }
    }

    fn write(&self, w: &mut JsonOut) {
        w.begin_object();
        w.opt_string("model", Some(self.model));
        match &self.system {
            None => {}
            Some(System::One(text)) => w.opt_string("system", Some(text)),
            Some(System::Many(blocks)) => {
                w.key("system");
                blocks_out(w, blocks);
            }
        }
        w.key("messages");
        w.begin_array();
        for m in &self.messages {
            w.begin_object();
            w.opt_string("role", Some(m.role));
            w.key("content");
            blocks_out(w, &m.content);
            w.end_object();
        }
        w.end_array();
        w.key("max_tokens");
        w.value(&self.max_tokens);
        for (key, x) in [("temperature", self.temperature), ("top_p", self.top_p)] {
            if let Some(x) = x {
                w.key(key);
                w.value(&x);
            }
        }
        if let Some(k) = self.top_k {
            w.key("top_k");
            w.value(&k);
        }
        if !self.stop_sequences.is_empty() {
            w.key("stop_sequences");
            w.begin_array();
            for s in self.stop_sequences {
                w.string(s);
            }
            w.end_array();
        }
        if self.stream {
            w.key("stream");
            w.bool(true);
        }
        if !self.tools.is_empty() {
            w.key("tools");
            w.begin_array();
            for t in &self.tools {
                t.write(w);
            }
            w.end_array();
        }
        if let Some(c) = &self.tool_choice {
            w.key("tool_choice");
            w.begin_object();
            w.opt_string("type", Some(c.kind));
            w.opt_string("name", c.name);
            if c.disable_parallel_tool_use {
                w.key("disable_parallel_tool_use");
                w.bool(true);
            }
            w.end_object();
        }
        if let Some(user_id) = self.user_id {
            w.key("metadata");
            w.begin_object();
            w.opt_string("user_id", Some(user_id));
            w.end_object();
        }
        for (key, value) in &self.rest {
            w.member(key, value);
        }
        w.end_object();
    }
}

enum System<'a> {
    One(&'a str),
    Many(Vec<Block<'a>>),
}

struct MessageOut<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

enum Block<'a> {
    Text(&'a str),
    Image(&'a Image),
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: Cow<'a, str>,
        content: Option<ResultContent<'a>>,
        is_error: bool,
    },
    /// A source-dialect block, as the client wrote it.
    Native(&'a Value),
}

enum ResultContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

fn blocks_out(w: &mut JsonOut, blocks: &[Block<'_>]) {
    w.begin_array();
    for b in blocks {
        b.write(w);
    }
    w.end_array();
}

impl Block<'_> {
    fn write(&self, w: &mut JsonOut) {
        if let Block::Native(v) = self {
            return w.value(*v);
        }
        w.begin_object();
        match self {
            Block::Text(text) => {
                w.opt_string("type", Some("text"));
                w.opt_string("text", Some(text));
            }
            Block::Image(image) => {
                w.opt_string("type", Some("image"));
                w.key("source");
                w.begin_object();
                match image {
                    Image::Base64 { media_type, data } => {
                        w.opt_string("type", Some("base64"));
                        w.opt_string("media_type", Some(media_type));
                        w.opt_string("data", Some(data));
                    }
                    Image::Url(url) => {
                        w.opt_string("type", Some("url"));
                        w.opt_string("url", Some(url));
                    }
                }
                w.end_object();
            }
            Block::ToolUse { id, name, input } => {
                w.opt_string("type", Some("tool_use"));
                w.opt_string("id", Some(id));
                w.opt_string("name", Some(name));
                w.member("input", input);
            }
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                w.opt_string("type", Some("tool_result"));
                w.opt_string("tool_use_id", Some(tool_use_id));
                match content {
                    None => {}
                    Some(ResultContent::Text(text)) => w.opt_string("content", Some(text)),
                    Some(ResultContent::Blocks(blocks)) => {
                        w.key("content");
                        blocks_out(w, blocks);
                    }
                }
                if *is_error {
                    w.key("is_error");
                    w.bool(true);
                }
            }
            Block::Native(_) => {}
        }
        w.end_object();
    }
}

enum ToolDef<'a> {
    Def {
        name: &'a str,
        description: Option<&'a str>,
        input_schema: Cow<'a, Value>,
    },
    Native(&'a Value),
}

impl ToolDef<'_> {
    fn write(&self, w: &mut JsonOut) {
        match self {
            ToolDef::Native(v) => w.value(*v),
            ToolDef::Def {
                name,
                description,
                input_schema,
            } => {
                w.begin_object();
                w.opt_string("name", Some(name));
                w.opt_string("description", *description);
                w.member("input_schema", input_schema);
                w.end_object();
            }
        }
    }
}

struct Choice<'a> {
    kind: &'static str,
    name: Option<&'a str>,
    disable_parallel_tool_use: bool,
}

pub(in crate::translate) fn encode(
    chat: &Chat,
    model: &str,
    opts: &EncodeOpts,
    dropped: &mut Vec<&'static str>,
) -> Result<(String, Vec<u8>), Invalid> {
    let system = match common::system_texts(chat, dropped).as_slice() {
        [] => None,
        [one] => Some(System::One(one)),
        many => Some(System::Many(many.iter().map(|t| text(t)).collect())),
    };
    let messages = messages(chat)?;
    check_sampling(chat)?;
    let (tools, tool_choice) = tools(chat)?;
    let mut body = Body {
        model,
        system,
        messages,
        max_tokens: chat.max_tokens.unwrap_or(opts.default_max_tokens),
        temperature: chat.temperature,
        top_p: chat.top_p,
        top_k: chat.top_k,
        stop_sequences: &chat.stop,
        stream: chat.stream,
        tools,
        tool_choice,
        user_id: chat.user.as_deref(),
        rest: Obj::new(),
    };
    common::single_answer(chat, TARGET)?;
    let mut rest = Obj::new();
    common::other_members(chat, TARGET, &mut rest, dropped)?;
    common::extra(chat, opts, &mut rest, dropped);
    rest.retain(|k, _| !body.writes(k));
    body.rest = rest;
    // Room for the texts and the JSON around them, so the buffer rarely grows.
    let texts: usize = chat.system.iter().map(String::len).sum::<usize>()
        + chat
            .messages
            .iter()
            .flat_map(|m| &m.parts)
            .map(|p| match p {
                Part::Text(t) => t.len(),
                _ => 64,
            })
            .sum::<usize>();
    let mut bytes = Vec::with_capacity(texts + 256);
    body.write(&mut JsonOut::new(&mut bytes));
    Ok(("/v1/messages".into(), bytes))
}

fn text(t: &str) -> Block<'_> {
    Block::Text(t)
}

/// What Anthropic cannot take of the sampling parameters.
fn check_sampling(chat: &Chat) -> Result<(), Invalid> {
    if chat.temperature.is_some_and(|t| t > 1.0) {
        return Err(Invalid::new(
            "temperature",
            "must be at most 1 for this model's Anthropic backend",
        ));
    }
    match chat.response_format {
        None | Some(ResponseFormat::Text) => Ok(()),
        Some(_) => Err(common::refuse("response_format", TARGET)),
    }
}

/// Messages with their roles mapped, empty ones left out, neighbours of one role merged.
fn messages(chat: &Chat) -> Result<Vec<MessageOut<'_>>, Invalid> {
    let mut out: Vec<MessageOut> = Vec::with_capacity(chat.messages.len());
    for (i, m) in chat.messages.iter().enumerate() {
        let role = match m.role {
            Role::System => continue, // in the system slot
            Role::User | Role::Tool => "user",
            Role::Assistant => "assistant",
        };
        let mut blocks = Vec::with_capacity(m.parts.len());
        let mut calls = 0;
        for (j, part) in m.parts.iter().enumerate() {
            let block = match part {
                Part::Text(t) if t.is_empty() => continue, // Anthropic refuses empty text blocks
                Part::Text(t) => text(t),
                Part::Image(image) => image_block(image),
                Part::ToolCall(c) => {
                    calls += 1;
                    let input = common::arguments(&c.arguments, || common::arguments_param(chat, i, j, calls - 1))?;
                    Block::ToolUse {
                        id: tool_id(&c.id),
                        name: &c.name,
                        input,
                    }
                }
                Part::ToolResult(r) => tool_result(chat, r)?,
                Part::Native(n) => Block::Native(common::native(chat, TARGET, n)?),
            };
            blocks.push(block);
        }
        match out.last_mut() {
            _ if blocks.is_empty() => {}
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => out.push(MessageOut { role, content: blocks }),
        }
    }
    for m in &mut out {
        // Tool results answer the turn before: they come first (a stable sort keeps order).
        m.content.sort_by_key(|b| !matches!(b, Block::ToolResult { .. }));
    }
    Ok(out)
}

/// A tool call id as Anthropic accepts it (`[A-Za-z0-9_-]+`): ids from other dialects may
/// hold other characters (`functions.get_weather:0`). The same id always maps the same way, so
/// a call and its result still match.
fn tool_id(id: &str) -> Cow<'_, str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(ok) {
        return Cow::Borrowed(id);
    }
    let mapped: String = id.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    Cow::Owned(if mapped.is_empty() { "_".into() } else { mapped })
}

fn image_block(image: &Image) -> Block<'_> {
    Block::Image(image)
}

fn tool_result<'a>(chat: &'a Chat, r: &'a ToolResult) -> Result<Block<'a>, Invalid> {
    let content = match r.content.as_slice() {
        [] => None,
        [Part::Text(t)] => Some(ResultContent::Text(t)),
        parts => {
            let mut blocks = Vec::with_capacity(parts.len());
            for p in parts {
                blocks.push(match p {
                    Part::Text(t) if t.is_empty() => continue,
                    Part::Text(t) => text(t),
                    Part::Image(image) => image_block(image),
                    Part::Native(n) => Block::Native(common::native(chat, TARGET, n)?),
                    Part::ToolCall(_) | Part::ToolResult(_) => continue, // not in a result
                });
            }
            Some(ResultContent::Blocks(blocks))
        }
    };
    Ok(Block::ToolResult {
        tool_use_id: tool_id(&r.tool_call_id),
        content,
        is_error: r.is_error,
    })
}

/// The tool definitions and the tool choice (none without tools: a choice without tools means
/// nothing, and Anthropic refuses it).
fn tools(chat: &Chat) -> Result<(Vec<ToolDef<'_>>, Option<Choice<'_>>), Invalid> {
    if chat.tools.is_empty() {
        return Ok((Vec::new(), None));
    }
    let mut defs = Vec::with_capacity(chat.tools.len());
    for tool in &chat.tools {
        if let Some(n) = &tool.native {
            defs.push(ToolDef::Native(common::native(chat, TARGET, n)?));
            continue;
        }
        defs.push(ToolDef::Def {
            name: &tool.name,
            description: tool.description.as_deref(),
            input_schema: match &tool.schema {
                Value::Null => Cow::Owned(json!({"type": "object", "properties": {}})),
                s => Cow::Borrowed(s),
            },
        });
    }
    let (kind, name) = match &chat.tool_choice {
        None | Some(ToolChoice::Auto) => ("auto", None),
        Some(ToolChoice::None) => ("none", None),
        Some(ToolChoice::Required) => ("any", None),
        Some(ToolChoice::Named(name)) => ("tool", Some(name.as_str())),
    };
    let parallel_off = chat.parallel_tool_calls == Some(false) && chat.tool_choice != Some(ToolChoice::None);
    let choice = (chat.tool_choice.is_some() || parallel_off).then_some(Choice {
        kind,
        name,
        disable_parallel_tool_use: parallel_off,
    });
    Ok((defs, choice))
}
