//! Complete OpenAI chat completions: read from an upstream (the first choice) and written for
//! a client.

use serde_json::{json, Value};

use super::{stop_str, usage, usage_json};
use crate::translate::form::{Part, Reply, ReplyMeta, StopReason, ToolCall};

pub(in crate::translate) fn decode(body: &[u8]) -> Result<Reply, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        return Err(format!("answer is an error: {e}"));
    }
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or("answer has no choices")?;
    let message = choice.get("message").ok_or("answer's choice has no message")?;
    let mut content = Vec::new();
    match message.get("content") {
        Some(Value::String(s)) if !s.is_empty() => content.push(Part::Text(s.clone())),
        // Some OpenAI-compatible servers answer with parts.
        Some(Value::Array(parts)) => content.extend(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .map(|t| Part::Text(t.to_string())),
        ),
        _ => {}
    }
    let refusal = message.get("refusal").and_then(Value::as_str);
    if let Some(refusal) = refusal {
        content.push(Part::Text(refusal.to_string()));
    }
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let function = call.get("function");
        content.push(Part::ToolCall(ToolCall {
            id: text(call.get("id")),
            name: text(function.and_then(|f| f.get("name"))),
            arguments: text(function.and_then(|f| f.get("arguments"))),
        }));
    }
    let stop = match choice.get("finish_reason").and_then(Value::as_str) {
        // The model declined: what Anthropic calls a refusal.
        Some("stop") if refusal.is_some() => StopReason::ContentFilter,
        Some(reason) => super::stop_reason(reason),
        None => StopReason::Other,
    };
    Ok(Reply {
        id: v.get("id").and_then(Value::as_str).map(String::from),
        model: v.get("model").and_then(Value::as_str).map(String::from),
        content,
        stop,
        usage: v.get("usage").filter(|u| u.is_object()).map(usage).unwrap_or_default(),
    })
}

pub(in crate::translate) fn encode(reply: &Reply, meta: &ReplyMeta) -> Vec<u8> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in &reply.content {
        match part {
            Part::Text(t) => text.push_str(t),
            Part::ToolCall(c) => {
                let arguments = if c.arguments.trim().is_empty() {
                    "{}"
                } else {
                    &c.arguments
                };
                calls.push(
                    json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": arguments}}),
                );
            }
            _ => {}
        }
    }
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if let (false, Some(m)) = (calls.is_empty(), message.as_object_mut()) {
        m.insert("tool_calls".into(), Value::Array(calls));
    }
    let body = json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": stop_str(reply.stop)}],
        "usage": usage_json(&reply.usage),
    });
    serde_json::to_vec(&body).unwrap_or_default() // a Value always serializes
}
