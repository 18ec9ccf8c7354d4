//! Complete Anthropic answers: read from an upstream (text and tool_use blocks; thinking and
//! server-tool blocks are not part of the internal answer) and written for a client, through
//! typed views of the JSON: no `Value` tree on the door's hot path.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{input_object, stop_str, Block, RawUsage, UsageOut};
use crate::translate::form::{Part, Reply, ReplyMeta, StopReason, ToolCall};
use crate::translate::read;

/// The members of an answer the door reads; the rest is skipped unparsed.
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    error: Option<Value>,
    id: Option<String>,
    model: Option<String>,
    #[serde(borrow)]
    content: Option<Vec<Block<'a>>>,
    #[serde(borrow)]
    stop_reason: Option<Cow<'a, str>>,
    usage: Option<RawUsage>,
}

pub(in crate::translate) fn decode(body: &[u8]) -> Result<Reply, String> {
    let a: Answer = read::typed(body).map_err(|e| format!("answer is not an Anthropic message: {e}"))?;
    if a.kind.as_deref() == Some("error") {
        return Err(format!("answer is an error: {}", a.error.unwrap_or(Value::Null)));
    }
    let blocks = a.content.ok_or("answer has no `content` array")?;
    let mut content = Vec::with_capacity(blocks.len());
    for b in blocks {
        match b.kind.as_deref() {
            Some("text") => content.push(Part::Text(b.text.unwrap_or_default())),
            Some("tool_use") => content.push(Part::ToolCall(ToolCall {
                id: b.id.unwrap_or_default(),
                name: b.name.unwrap_or_default(),
                arguments: b.input.map_or_else(|| "{}".into(), |v| v.to_string()),
            })),
            _ => {}
        }
    }
    Ok(Reply {
        id: a.id,
        model: a.model,
        content,
        stop: a.stop_reason.as_deref().map_or(StopReason::Other, super::stop_reason),
        usage: a.usage.unwrap_or_default().usage(),
    })
}

/// A message as a client reads it.
#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<BlockOut<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<()>,
    usage: UsageOut,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockOut<'a> {
    Text { text: &'a str },
    ToolUse { id: &'a str, name: &'a str, input: Value },
}

pub(in crate::translate) fn encode(reply: &Reply, meta: &ReplyMeta) -> Vec<u8> {
    let content = reply
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(BlockOut::Text { text: t }),
            Part::ToolCall(c) => Some(BlockOut::ToolUse {
                id: &c.id,
                name: &c.name,
                input: input_object(&c.arguments),
            }),
            _ => None,
        })
        .collect();
    let body = Message {
        id: &meta.id,
        kind: "message",
        role: "assistant",
        model: &meta.model,
        content,
        stop_reason: stop_str(reply.stop),
        stop_sequence: None,
        usage: UsageOut::from(&reply.usage),
    };
    serde_json::to_vec(&body).unwrap_or_default() // plain structs of strings and numbers always serialize
}
