//! The Anthropic Messages request body as it is written: views that borrow from the [`Chat`]
//! ([`encode`](super::encode) builds them) and write themselves with [`JsonOut`], so no `Value`
//! tree is built for the body.
//!
//! [`Chat`]: crate::translate::form::Chat

use std::borrow::Cow;

use serde_json::Value;

use crate::translate::common::Obj;
use crate::translate::form::Image;
use crate::translate::jsonw::JsonOut;

/// The body, borrowing from the [`Chat`]; written by [`Body::write`].
pub(super) struct Body<'a> {
    pub(super) model: &'a str,
    pub(super) system: Option<System<'a>>,
    pub(super) messages: Vec<MessageOut<'a>>,
    pub(super) max_tokens: u64,
    pub(super) temperature: Option<f64>,
    pub(super) top_p: Option<f64>,
    pub(super) top_k: Option<u64>,
    pub(super) stop_sequences: &'a [String],
    pub(super) stream: bool,
    pub(super) tools: Vec<ToolDef<'a>>,
    pub(super) tool_choice: Option<Choice<'a>>,
    pub(super) user_id: Option<&'a str>,
    /// The source's own members and the CLI's extras, minus what the members above write.
    pub(super) rest: Obj,
}

impl Body<'_> {
    /// Whether the typed members write `key` (so `rest` must not).
    pub(super) fn writes(&self, key: &str) -> bool {
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

    pub(super) fn write(&self, w: &mut JsonOut) {
        w.begin_object();
        w.str_member("model", self.model);
        match &self.system {
            None => {}
            Some(System::One(text)) => w.str_member("system", text),
            Some(System::Many(blocks)) => {
                w.key("system");
                blocks_out(w, blocks);
            }
        }
        w.key("messages");
        w.begin_array();
        for m in &self.messages {
            w.begin_object();
            w.str_member("role", m.role);
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
            w.str_member("type", c.kind);
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
            w.str_member("user_id", user_id);
            w.end_object();
        }
        for (key, value) in &self.rest {
            w.member(key, value);
        }
        w.end_object();
    }
}

pub(super) enum System<'a> {
    One(&'a str),
    Many(Vec<Block<'a>>),
}

pub(super) struct MessageOut<'a> {
    pub(super) role: &'static str,
    pub(super) content: Vec<Block<'a>>,
}

pub(super) enum Block<'a> {
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

pub(super) enum ResultContent<'a> {
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
    pub(super) fn write(&self, w: &mut JsonOut) {
        if let Block::Native(v) = self {
            return w.value(*v);
        }
        w.begin_object();
        match self {
            Block::Text(text) => {
                w.str_member("type", "text");
                w.str_member("text", text);
            }
            Block::Image(image) => {
                w.str_member("type", "image");
                w.key("source");
                w.begin_object();
                match image {
                    Image::Base64 { media_type, data } => {
                        w.str_member("type", "base64");
                        w.str_member("media_type", media_type);
                        w.str_member("data", data);
                    }
                    Image::Url(url) => {
                        w.str_member("type", "url");
                        w.str_member("url", url);
                    }
                }
                w.end_object();
            }
            Block::ToolUse { id, name, input } => {
                w.str_member("type", "tool_use");
                w.str_member("id", id);
                w.str_member("name", name);
                w.member("input", input);
            }
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                w.str_member("type", "tool_result");
                w.str_member("tool_use_id", tool_use_id);
                match content {
                    None => {}
                    Some(ResultContent::Text(text)) => w.str_member("content", text),
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

pub(super) enum ToolDef<'a> {
    Def {
        name: &'a str,
        description: Option<&'a str>,
        input_schema: Cow<'a, Value>,
    },
    Native(&'a Value),
}

impl ToolDef<'_> {
    pub(super) fn write(&self, w: &mut JsonOut) {
        match self {
            ToolDef::Native(v) => w.value(*v),
            ToolDef::Def {
                name,
                description,
                input_schema,
            } => {
                w.begin_object();
                w.str_member("name", name);
                w.opt_string("description", *description);
                w.member("input_schema", input_schema);
                w.end_object();
            }
        }
    }
}

pub(super) struct Choice<'a> {
    pub(super) kind: &'static str,
    pub(super) name: Option<&'a str>,
    pub(super) disable_parallel_tool_use: bool,
}
