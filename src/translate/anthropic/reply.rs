//! Complete Anthropic answers: read from an upstream (text and tool_use blocks; thinking and
//! server-tool blocks are not part of the internal answer) and written for a client.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{input_object, stop_str, usage_json, RawUsage};
use crate::translate::form::{Part, Reply, ReplyMeta, StopReason, ToolCall};

pub(in crate::translate) fn decode(body: &[u8]) -> Result<Reply, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(format!(
            "answer is an error: {}",
            v.get("error").unwrap_or(&Value::Null)
        ));
    }
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or("answer has no `content` array")?;
    let mut content = Vec::with_capacity(blocks.len());
    for b in blocks {
        let text = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        match b.get("type").and_then(Value::as_str) {
            Some("text") => content.push(Part::Text(text("text"))),
            Some("tool_use") => content.push(Part::ToolCall(ToolCall {
                id: text("id"),
                name: text("name"),
                arguments: b.get("input").map_or_else(|| "{}".into(), Value::to_string),
            })),
            _ => {}
        }
    }
    let usage = v
        .get("usage")
        .map(RawUsage::deserialize)
        .transpose()
        .map_err(|e| format!("bad usage: {e}"))?;
    let stop = v.get("stop_reason").and_then(Value::as_str);
    Ok(Reply {
        id: v.get("id").and_then(Value::as_str).map(String::from),
        model: v.get("model").and_then(Value::as_str).map(String::from),
        content,
        stop: stop.map_or(StopReason::Other, super::stop_reason),
        usage: usage.unwrap_or_default().usage(),
    })
}

pub(in crate::translate) fn encode(reply: &Reply, meta: &ReplyMeta) -> Vec<u8> {
    let content: Vec<Value> = reply
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(json!({"type": "text", "text": t})),
            Part::ToolCall(c) => Some(json!({
                "type": "tool_use", "id": c.id, "name": c.name, "input": input_object(&c.arguments),
            })),
            _ => None,
        })
        .collect();
    let body = json!({
        "id": meta.id,
        "type": "message",
        "role": "assistant",
        "model": meta.model,
        "content": content,
        "stop_reason": stop_str(reply.stop),
        "stop_sequence": null,
        "usage": usage_json(&reply.usage),
    });
    serde_json::to_vec(&body).unwrap_or_default() // a Value always serializes
}
