//! Complete Gemini answers: read from an upstream (the first candidate; thought parts are not
//! part of the answer) and, for completeness, written in Gemini's shape.

use serde_json::{json, Value};

use super::{call_id, stop_str, usage, usage_json};
use crate::translate::form::{Part, Reply, ReplyMeta, StopReason, ToolCall};

pub(in crate::translate) fn decode(body: &[u8]) -> Result<Reply, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        return Err(format!("answer is an error: {e}"));
    }
    let response_id = v.get("responseId").and_then(Value::as_str);
    let candidate = v.get("candidates").and_then(Value::as_array).and_then(|c| c.first());
    let mut content = Vec::new();
    let parts = candidate.and_then(|c| c.get("content")).and_then(|c| c.get("parts"));
    for part in parts.and_then(Value::as_array).into_iter().flatten() {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            content.push(Part::Text(t.to_string()));
        } else if let Some(call) = part.get("functionCall") {
            let ordinal = content.iter().filter(|p| matches!(p, Part::ToolCall(_))).count();
            let own = call.get("id").and_then(Value::as_str);
            content.push(Part::ToolCall(ToolCall {
                id: call_id(own, response_id, ordinal),
                name: call.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                arguments: call.get("args").map_or_else(|| "{}".into(), Value::to_string),
            }));
        }
    }
    let called = content.iter().any(|p| matches!(p, Part::ToolCall(_)));
    let stop = match candidate.and_then(|c| c.get("finishReason")).and_then(Value::as_str) {
        Some(reason) => super::stop_reason(reason, called),
        // No candidate at all: the prompt itself was blocked.
        None if candidate.is_none() && v.get("promptFeedback").is_some() => StopReason::ContentFilter,
        None => return Err("answer has no candidate with a finishReason".into()),
    };
    Ok(Reply {
        id: response_id.map(String::from),
        model: v.get("modelVersion").and_then(Value::as_str).map(String::from),
        content,
        stop,
        usage: v.get("usageMetadata").map(usage).unwrap_or_default(),
    })
}

pub(in crate::translate) fn encode(reply: &Reply, meta: &ReplyMeta) -> Vec<u8> {
    let parts: Vec<Value> = reply
        .content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(json!({"text": t})),
            Part::ToolCall(c) => Some(json!({"functionCall": {
                "id": c.id, "name": c.name, "args": crate::translate::anthropic::input_object(&c.arguments),
            }})),
            _ => None,
        })
        .collect();
    let body = json!({
        "candidates": [{
            "content": {"role": "model", "parts": parts},
            "finishReason": stop_str(reply.stop),
            "index": 0,
        }],
        "usageMetadata": usage_json(&reply.usage),
        "modelVersion": meta.model,
        "responseId": meta.id,
    });
    serde_json::to_vec(&body).unwrap_or_default() // a Value always serializes
}
