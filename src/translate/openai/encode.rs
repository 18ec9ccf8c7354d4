//! A [`Chat`] as an OpenAI Chat Completions request body: system messages in place, tool
//! results as `role: tool` messages, images as `image_url` parts, and a stream always asked
//! for its usage (the proxy meters it).

use serde_json::{json, Value};

use crate::provider::Dialect;
use crate::translate::common::{self, Obj};
use crate::translate::form::{Chat, Image, Invalid, Message, Part, ResponseFormat, Role, ToolChoice};
use crate::translate::EncodeOpts;

const TARGET: Dialect = Dialect::OpenAi;

pub(in crate::translate) fn encode(
    chat: &Chat,
    model: &str,
    opts: &EncodeOpts,
    dropped: &mut Vec<&'static str>,
) -> Result<(String, Obj), Invalid> {
    let mut body = Obj::new();
    body.insert("model".into(), model.into());
    let mut messages = Vec::with_capacity(chat.messages.len() + 1);
    let system: Vec<&str> = chat
        .system
        .iter()
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .collect();
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system.join("\n\n")}));
    }
    for m in &chat.messages {
        message(chat, m, &mut messages)?;
    }
    body.insert("messages".into(), Value::Array(messages));
    sampling(chat, &mut body)?;
    tools(chat, &mut body)?;
    common::other_members(chat, TARGET, &mut body, dropped)?;
    common::extra(chat, opts, &mut body, dropped);
    Ok(("/v1/chat/completions".into(), body))
}

fn sampling(chat: &Chat, body: &mut Obj) -> Result<(), Invalid> {
    if chat.top_k.is_some() {
        return Err(common::refuse("top_k", TARGET));
    }
    let mut put = |key: &str, value: Value| {
        body.insert(key.into(), value);
    };
    if let Some(n) = chat.max_tokens {
        put("max_completion_tokens", n.into());
    }
    if let Some(t) = chat.temperature {
        put("temperature", t.into());
    }
    if let Some(p) = chat.top_p {
        put("top_p", p.into());
    }
    if !chat.stop.is_empty() {
        put("stop", chat.stop.clone().into());
    }
    if chat.stream {
        put("stream", true.into());
        put("stream_options", json!({"include_usage": true}));
    }
    if let Some(n) = chat.n {
        put("n", n.into());
    }
    if chat.logprobs {
        put("logprobs", true.into());
    }
    if let Some(n) = chat.top_logprobs {
        put("top_logprobs", n.into());
    }
    if let Some(user) = &chat.user {
        put("user", user.clone().into());
    }
    if let Some(format) = &chat.response_format {
        put("response_format", response_format(format));
    }
    Ok(())
}

fn response_format(format: &ResponseFormat) -> Value {
    match format {
        ResponseFormat::Text => json!({"type": "text"}),
        ResponseFormat::JsonObject => json!({"type": "json_object"}),
        ResponseFormat::JsonSchema { name, schema, strict } => {
            let mut spec = json!({"name": name, "schema": schema});
            if let (Some(strict), Some(s)) = (strict, spec.as_object_mut()) {
                s.insert("strict".into(), (*strict).into());
            }
            json!({"type": "json_schema", "json_schema": spec})
        }
    }
}

/// One message as one or more OpenAI messages: a user message's tool results become tool
/// messages (in order), and images in a tool result follow as a user message, since a tool
/// message holds text only.
fn message(chat: &Chat, m: &Message, out: &mut Vec<Value>) -> Result<(), Invalid> {
    match m.role {
        Role::System => out.push(json!({"role": "system", "content": joined_text(&m.parts)})),
        Role::Assistant => out.push(assistant(chat, m)?),
        Role::User | Role::Tool => {
            let mut pending: Vec<Value> = Vec::new();
            for part in &m.parts {
                let Part::ToolResult(r) = part else {
                    pending.push(content_part(chat, part)?);
                    continue;
                };
                flush_user(&mut pending, out);
                out.push(json!({"role": "tool", "tool_call_id": r.tool_call_id, "content": joined_text(&r.content)}));
                for p in r.content.iter().filter(|p| !matches!(p, Part::Text(_))) {
                    pending.push(content_part(chat, p)?);
                }
            }
            flush_user(&mut pending, out);
        }
    }
    Ok(())
}

/// A user message of the parts gathered so far: a lone text is a plain string.
fn flush_user(pending: &mut Vec<Value>, out: &mut Vec<Value>) {
    if pending.is_empty() {
        return;
    }
    let parts = std::mem::take(pending);
    let content = match parts.as_slice() {
        [one] if one.get("type").and_then(Value::as_str) == Some("text") => one.get("text").cloned(),
        _ => None,
    };
    out.push(json!({"role": "user", "content": content.unwrap_or(Value::Array(parts))}));
}

fn content_part(chat: &Chat, part: &Part) -> Result<Value, Invalid> {
    Ok(match part {
        Part::Image(Image::Base64 { media_type, data }) => {
            json!({"type": "image_url", "image_url": {"url": format!("data:{media_type};base64,{data}")}})
        }
        Part::Image(Image::Url(url)) => json!({"type": "image_url", "image_url": {"url": url}}),
        Part::Native(n) => common::native(chat, TARGET, n)?.clone(),
        Part::Text(t) => json!({"type": "text", "text": t}),
        Part::ToolCall(_) | Part::ToolResult(_) => json!({"type": "text", "text": ""}),
    })
}

fn joined_text(parts: &[Part]) -> String {
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if !t.is_empty() => Some(t.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n\n")
}

/// Text (a string, or parts when something else is among them), then `tool_calls`.
fn assistant(chat: &Chat, m: &Message) -> Result<Value, Invalid> {
    let mut content = Vec::new();
    let mut calls = Vec::new();
    for part in &m.parts {
        match part {
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
            // An OpenAI tool call of another type is kept among the calls.
            Part::Native(n) if n.param.contains(".tool_calls[") => calls.push(common::native(chat, TARGET, n)?.clone()),
            Part::Text(t) if t.is_empty() => {}
            other => content.push(content_part(chat, other)?),
        }
    }
    let all_text = content
        .iter()
        .all(|c| c.get("type").and_then(Value::as_str) == Some("text"));
    let content = if content.is_empty() {
        Value::Null
    } else if all_text {
        Value::String(joined_text(&m.parts))
    } else {
        Value::Array(content)
    };
    let mut message = json!({"role": "assistant", "content": content});
    if let (false, Some(o)) = (calls.is_empty(), message.as_object_mut()) {
        o.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(message)
}

fn tools(chat: &Chat, body: &mut Obj) -> Result<(), Invalid> {
    if chat.tools.is_empty() {
        return Ok(()); // OpenAI refuses tool_choice and parallel_tool_calls without tools
    }
    let mut defs = Vec::with_capacity(chat.tools.len());
    for tool in &chat.tools {
        if let Some(n) = &tool.native {
            defs.push(common::native(chat, TARGET, n)?.clone());
            continue;
        }
        let mut function = Obj::new();
        function.insert("name".into(), tool.name.clone().into());
        if let Some(d) = &tool.description {
            function.insert("description".into(), d.clone().into());
        }
        if !tool.schema.is_null() {
            function.insert("parameters".into(), tool.schema.clone());
        }
        defs.push(json!({"type": "function", "function": function}));
    }
    body.insert("tools".into(), Value::Array(defs));
    if let Some(choice) = &chat.tool_choice {
        let choice = match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(name) => json!({"type": "function", "function": {"name": name}}),
        };
        body.insert("tool_choice".into(), choice);
    }
    if let Some(parallel) = chat.parallel_tool_calls {
        body.insert("parallel_tool_calls".into(), parallel.into());
    }
    Ok(())
}
