//! Complete OpenAI chat completions: read from an upstream (the first choice) through a typed
//! view and written for a client with [`JsonOut`]: no `Value` tree on the door's hot path.

use std::borrow::Cow;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{stop_str, write_usage, UsageIn};
use crate::translate::form::{Part, Reply, ReplyMeta, StopReason, ToolCall};
use crate::translate::jsonw::JsonOut;
use crate::translate::read;

/// The members of an answer the door reads; the rest is skipped unparsed.
#[derive(Deserialize)]
struct Answer<'a> {
    id: Option<String>,
    model: Option<String>,
    #[serde(borrow)]
    choices: Option<Vec<Choice<'a>>>,
    usage: Option<UsageIn>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    message: Option<MessageIn>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct MessageIn {
    content: Option<Content>,
    refusal: Option<String>,
    tool_calls: Option<Vec<CallIn>>,
}

/// `content`: a string, or (some OpenAI-compatible servers) a list of parts with `text`.
enum Content {
    Text(String),
    Parts(Vec<PartIn>),
}

#[derive(Deserialize)]
struct PartIn {
    text: Option<String>,
}

#[derive(Deserialize)]
struct CallIn {
    id: Option<String>,
    function: Option<FunctionIn>,
}

#[derive(Deserialize)]
struct FunctionIn {
    name: Option<String>,
    /// JSON text; some servers send the object itself, which is the same JSON.
    arguments: Option<Value>,
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Content, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Content;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Content, E> {
                Ok(Content::Text(s.to_string()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Content, E> {
                Ok(Content::Text(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut parts = Vec::new();
                while let Some(p) = seq.next_element()? {
                    parts.push(p);
                }
                Ok(Content::Parts(parts))
            }
        }
        d.deserialize_any(V)
    }
}

pub(in crate::translate) fn decode(body: &[u8]) -> Result<Reply, String> {
    let a: Answer = read::typed(body).map_err(|e| format!("answer is not an OpenAI chat completion: {e}"))?;
    if let Some(e) = a.error {
        return Err(format!("answer is an error: {e}"));
    }
    let choice = a
        .choices
        .and_then(|c| c.into_iter().next())
        .ok_or("answer has no choices")?;
    let message = choice.message.ok_or("answer's choice has no message")?;
    let mut content = Vec::new();
    match message.content {
        Some(Content::Text(s)) if !s.is_empty() => content.push(Part::Text(s)),
        Some(Content::Parts(parts)) => content.extend(parts.into_iter().filter_map(|p| p.text).map(Part::Text)),
        _ => {}
    }
    let refused = message.refusal.is_some();
    if let Some(refusal) = message.refusal {
        content.push(Part::Text(refusal));
    }
    for call in message.tool_calls.into_iter().flatten() {
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let arguments = match arguments {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            Some(v) => v.to_string(),
        };
        content.push(Part::ToolCall(ToolCall {
            id: call.id.unwrap_or_default(),
            name: name.unwrap_or_default(),
            arguments,
        }));
    }
    let stop = match choice.finish_reason.as_deref() {
        // The model declined: what Anthropic calls a refusal.
        Some("stop") if refused => StopReason::ContentFilter,
        Some(reason) => super::stop_reason(reason),
        None => StopReason::Other,
    };
    Ok(Reply {
        id: a.id,
        model: a.model,
        content,
        stop,
        usage: a.usage.map(|u| u.usage()).unwrap_or_default(),
    })
}

pub(in crate::translate) fn encode(reply: &Reply, meta: &ReplyMeta) -> Vec<u8> {
    // The usual answer has one text part: borrowed, not copied.
    let mut text = Cow::Borrowed("");
    let mut calls = 0;
    for part in &reply.content {
        match part {
            Part::Text(t) if text.is_empty() => text = Cow::Borrowed(t.as_str()),
            Part::Text(t) => text.to_mut().push_str(t),
            Part::ToolCall(_) => calls += 1,
            _ => {}
        }
    }
    let mut bytes = Vec::with_capacity(text.len() + 400);
    let w = &mut JsonOut::new(&mut bytes);
    w.raw(b"{\"id\":");
    w.string(&meta.id);
    w.raw(b",\"object\":\"chat.completion\",\"created\":");
    w.value(&meta.created);
    w.raw(b",\"model\":");
    w.string(&meta.model);
    w.raw(b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if text.is_empty() && calls > 0 {
        w.raw(b"null");
    } else {
        w.string(&text);
    }
    w.raw(b",\"refusal\":null");
    if calls > 0 {
        w.raw(b",\"tool_calls\":[");
        for c in reply.content.iter().filter_map(|p| match p {
            Part::ToolCall(c) => Some(c),
            _ => None,
        }) {
            w.begin_object();
            w.str_member("id", &c.id);
            w.raw(b",\"type\":\"function\",\"function\":{");
            w.str_member("name", &c.name);
            let arguments = if c.arguments.trim().is_empty() {
                "{}"
            } else {
                &c.arguments
            };
            w.str_member("arguments", arguments);
            w.raw(b"}}");
        }
        w.raw(b"]");
    }
    w.raw(b"},\"logprobs\":null,\"finish_reason\":\"");
    w.raw(stop_str(reply.stop).as_bytes());
    w.raw(b"\"}],\"usage\":");
    write_usage(w, &reply.usage);
    w.raw(b"}");
    bytes
}
