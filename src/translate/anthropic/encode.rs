//! A [`Chat`] as an Anthropic Messages request body: one system slot, strictly alternating
//! user/assistant messages (tool results are user `tool_result` blocks, first in their message),
//! `max_tokens` always set, `tool_choice` with `disable_parallel_tool_use`.

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::provider::Dialect;
use crate::translate::common::{self, Obj};
use crate::translate::form::{Chat, Image, Invalid, Part, ResponseFormat, Role, ToolChoice, ToolResult};
use crate::translate::EncodeOpts;

const TARGET: Dialect = Dialect::Anthropic;

pub(in crate::translate) fn encode(
    chat: &Chat,
    model: &str,
    opts: &EncodeOpts,
    dropped: &mut Vec<&'static str>,
) -> Result<(String, Obj), Invalid> {
    let mut body = Obj::new();
    body.insert("model".into(), model.into());
    let system = common::system_texts(chat, dropped);
    match system.as_slice() {
        [] => {}
        [one] => {
            body.insert("system".into(), (*one).into());
        }
        many => {
            let blocks = many.iter().map(|t| json!({"type": "text", "text": t})).collect();
            body.insert("system".into(), Value::Array(blocks));
        }
    }
    body.insert("messages".into(), Value::Array(messages(chat)?));
    body.insert(
        "max_tokens".into(),
        chat.max_tokens.unwrap_or(opts.default_max_tokens).into(),
    );
    sampling(chat, &mut body)?;
    tools(chat, &mut body)?;
    if let Some(user) = &chat.user {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    common::single_answer(chat, TARGET)?;
    common::other_members(chat, TARGET, &mut body, dropped)?;
    common::extra(chat, opts, &mut body, dropped);
    Ok(("/v1/messages".into(), body))
}

fn sampling(chat: &Chat, body: &mut Obj) -> Result<(), Invalid> {
    if let Some(t) = chat.temperature {
        if t > 1.0 {
            return Err(Invalid::new(
                "temperature",
                "must be at most 1 for this model's Anthropic backend",
            ));
        }
        body.insert("temperature".into(), t.into());
    }
    if let Some(p) = chat.top_p {
        body.insert("top_p".into(), p.into());
    }
    if let Some(k) = chat.top_k {
        body.insert("top_k".into(), k.into());
    }
    if !chat.stop.is_empty() {
        body.insert("stop_sequences".into(), chat.stop.clone().into());
    }
    if chat.stream {
        body.insert("stream".into(), true.into());
    }
    match chat.response_format {
        None | Some(ResponseFormat::Text) => Ok(()),
        Some(_) => Err(common::refuse("response_format", TARGET)),
    }
}

/// Messages with their roles mapped, empty ones left out, neighbours of one role merged.
fn messages(chat: &Chat) -> Result<Vec<Value>, Invalid> {
    let mut out: Vec<(&str, Vec<Value>)> = Vec::with_capacity(chat.messages.len());
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
                Part::Text(t) => json!({"type": "text", "text": t}),
                Part::Image(image) => image_block(image),
                Part::ToolCall(c) => {
                    calls += 1;
                    let input = common::arguments(&c.arguments, || common::arguments_param(chat, i, j, calls - 1))?;
                    json!({"type": "tool_use", "id": tool_id(&c.id), "name": c.name, "input": input})
                }
                Part::ToolResult(r) => tool_result(chat, r)?,
                Part::Native(n) => common::native(chat, TARGET, n)?.clone(),
            };
            blocks.push(block);
        }
        match out.last_mut() {
            _ if blocks.is_empty() => {}
            Some((last, previous)) if *last == role => previous.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    Ok(out
        .into_iter()
        .map(|(role, mut blocks)| {
            // Tool results answer the turn before: they come first (a stable sort keeps order).
            blocks.sort_by_key(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"));
            json!({"role": role, "content": blocks})
        })
        .collect())
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

fn image_block(image: &Image) -> Value {
    let source = match image {
        Image::Base64 { media_type, data } => json!({"type": "base64", "media_type": media_type, "data": data}),
        Image::Url(url) => json!({"type": "url", "url": url}),
    };
    json!({"type": "image", "source": source})
}

fn tool_result(chat: &Chat, r: &ToolResult) -> Result<Value, Invalid> {
    let mut block = Obj::new();
    block.insert("type".into(), "tool_result".into());
    block.insert("tool_use_id".into(), tool_id(&r.tool_call_id).into());
    let content = match r.content.as_slice() {
        [] => None,
        [Part::Text(t)] => Some(Value::from(t.as_str())),
        parts => {
            let mut blocks = Vec::with_capacity(parts.len());
            for p in parts {
                blocks.push(match p {
                    Part::Text(t) if t.is_empty() => continue,
                    Part::Text(t) => json!({"type": "text", "text": t}),
                    Part::Image(image) => image_block(image),
                    Part::Native(n) => common::native(chat, TARGET, n)?.clone(),
                    Part::ToolCall(_) | Part::ToolResult(_) => continue, // not in a result
                });
            }
            Some(Value::Array(blocks))
        }
    };
    if let Some(content) = content {
        block.insert("content".into(), content);
    }
    if r.is_error {
        block.insert("is_error".into(), true.into());
    }
    Ok(Value::Object(block))
}

fn tools(chat: &Chat, body: &mut Obj) -> Result<(), Invalid> {
    if chat.tools.is_empty() {
        return Ok(()); // a tool choice without tools means nothing, and Anthropic refuses it
    }
    let mut defs = Vec::with_capacity(chat.tools.len());
    for tool in &chat.tools {
        if let Some(n) = &tool.native {
            defs.push(common::native(chat, TARGET, n)?.clone());
            continue;
        }
        let mut def = Obj::new();
        def.insert("name".into(), tool.name.clone().into());
        if let Some(d) = &tool.description {
            def.insert("description".into(), d.clone().into());
        }
        let schema = match &tool.schema {
            Value::Null => json!({"type": "object", "properties": {}}),
            s => s.clone(),
        };
        def.insert("input_schema".into(), schema);
        defs.push(Value::Object(def));
    }
    body.insert("tools".into(), Value::Array(defs));
    let mut choice = match &chat.tool_choice {
        None | Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::None) => json!({"type": "none"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Named(name)) => json!({"type": "tool", "name": name}),
    };
    let parallel_off = chat.parallel_tool_calls == Some(false) && chat.tool_choice != Some(ToolChoice::None);
    if parallel_off {
        if let Some(c) = choice.as_object_mut() {
            c.insert("disable_parallel_tool_use".into(), true.into());
        }
    }
    if chat.tool_choice.is_some() || parallel_off {
        body.insert("tool_choice".into(), choice);
    }
    Ok(())
}
