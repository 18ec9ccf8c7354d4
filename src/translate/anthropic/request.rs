//! Anthropic Messages request bodies from a client, read into a [`Chat`] with the front door's
//! checks. Tool results stay inside their user messages; `role: "system"` messages (Claude Code
//! sends them) stay in place; thinking blocks and `cache_control` are dropped and noted.

use std::collections::HashMap;

use serde_json::Value;

use crate::provider::Dialect;
use crate::translate::form::{
    Chat, Image, Invalid, Message, Native, Part, Role, Tool, ToolCall, ToolChoice, ToolResult,
};
use crate::translate::read::{self, join, Obj};

/// Tool use ids seen so far, with their names (a tool result names only the id).
type Names = HashMap<String, String>;

pub(in crate::translate) fn decode(body: &[u8]) -> Result<Chat, Invalid> {
    let obj = read::object(body)?;
    let mut chat = Chat::new(Dialect::Anthropic, &read::model(&obj)?);
    system(&obj, &mut chat)?;
    let messages = read::check_messages(obj.get("messages"))?;
    let mut names = Names::new();
    for (i, m) in messages.iter().enumerate() {
        let message = message(m, i, &mut names, &mut chat)?;
        chat.messages.push(message);
    }
    if !chat.messages.iter().any(|m| m.role == Role::User) {
        return Err(Invalid::new("messages", "must contain at least one user message"));
    }
    chat.temperature = read::opt_num(&obj, "temperature", 0.0, 1.0)?;
    chat.top_p = read::opt_num(&obj, "top_p", 0.0, 1.0)?;
    chat.top_k = read::opt_uint(&obj, "top_k", 0)?;
    chat.max_tokens = read::opt_uint(&obj, "max_tokens", 1)?;
    chat.stop = read::strings(&obj, "stop_sequences")?;
    chat.stream = read::opt_bool(&obj, "stream")?.unwrap_or(false);
    metadata(&obj, &mut chat)?;
    tools(&obj, &mut chat)?;
    for (key, value) in &obj {
        rest(&mut chat, key, value)?;
    }
    Ok(chat)
}

/// `system`: a string or text blocks.
fn system(obj: &Obj, chat: &mut Chat) -> Result<(), Invalid> {
    let Some(value) = read::get(obj, "system") else {
        return Ok(());
    };
    let parts = text_blocks(value, "system", chat)?;
    chat.system = parts;
    Ok(())
}

/// A string or an array of text blocks, as texts.
fn text_blocks(value: &Value, path: &str, chat: &mut Chat) -> Result<Vec<String>, Invalid> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(j, b)| {
                let bpath = format!("{path}[{j}]");
                let block = read::as_object(b, &bpath)?;
                if read::opt_str(block, "type", &bpath)?.as_deref() != Some("text") {
                    return Err(Invalid::new(join(&bpath, "type"), "only text blocks are allowed here"));
                }
                note_cache_control(block, chat);
                read::opt_str(block, "text", &bpath)?.ok_or_else(|| Invalid::new(join(&bpath, "text"), "is required"))
            })
            .collect(),
        _ => Err(Invalid::new(path, "must be a string or an array of text blocks")),
    }
}

fn note_cache_control(block: &Obj, chat: &mut Chat) {
    if read::get(block, "cache_control").is_some() {
        chat.drop_hint("cache_control");
    }
}

fn message(m: &Value, i: usize, names: &mut Names, chat: &mut Chat) -> Result<Message, Invalid> {
    let path = format!("messages[{i}]");
    let obj = read::as_object(m, &path)?;
    let Some(role) = read::opt_str(obj, "role", &path)? else {
        return Err(Invalid::new(join(&path, "role"), "`role` is required"));
    };
    let role = match role.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" => Role::System,
        other => return Err(Invalid::new(join(&path, "role"), format!("unknown role `{other}`"))),
    };
    let cpath = join(&path, "content");
    let parts = match read::get(obj, "content") {
        None => return Err(Invalid::new(cpath, "`content` is required")),
        Some(Value::String(s)) if s.is_empty() => return Err(Invalid::new(cpath, "must not be empty")),
        Some(Value::Array(a)) if a.is_empty() => return Err(Invalid::new(cpath, "must not be empty")),
        Some(v) if role == Role::System => text_blocks(v, &cpath, chat)?.into_iter().map(Part::Text).collect(),
        Some(Value::String(s)) => vec![Part::Text(s.clone())],
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                if let Some(part) = block(b, &format!("{cpath}[{j}]"), names, chat)? {
                    parts.push(part);
                }
            }
            parts
        }
        Some(_) => return Err(Invalid::new(cpath, "must be a string or an array of content blocks")),
    };
    Ok(Message { role, parts })
}

/// One content block; `None` for what is dropped (thinking).
fn block(value: &Value, path: &str, names: &mut Names, chat: &mut Chat) -> Result<Option<Part>, Invalid> {
    let obj = read::as_object(value, path)?;
    note_cache_control(obj, chat);
    let Some(kind) = read::opt_str(obj, "type", path)? else {
        return Err(Invalid::new(join(path, "type"), "`type` is required"));
    };
    let native = || {
        Part::Native(Native {
            param: path.to_string(),
            value: value.clone(),
        })
    };
    Ok(Some(match kind.as_str() {
        "text" => Part::Text(read::opt_str(obj, "text", path)?.unwrap_or_default()),
        "image" => image(obj, path)?.map_or_else(native, Part::Image),
        "tool_use" => {
            let id = read::required_str(obj, "id", path)?;
            let name = read::required_str(obj, "name", path)?;
            let arguments = read::get(obj, "input").map_or_else(|| "{}".into(), Value::to_string);
            names.insert(id.clone(), name.clone());
            Part::ToolCall(ToolCall { id, name, arguments })
        }
        "tool_result" => Part::ToolResult(tool_result(obj, path, names, chat)?),
        "thinking" | "redacted_thinking" => {
            chat.drop_hint("thinking_blocks");
            return Ok(None);
        }
        _ => native(),
    }))
}

/// An image block's source; `None` for a source only Anthropic has (`file`).
fn image(obj: &Obj, path: &str) -> Result<Option<Image>, Invalid> {
    let spath = join(path, "source");
    let Some(source) = read::get(obj, "source") else {
        return Err(Invalid::new(spath, "`source` is required"));
    };
    let source = read::as_object(source, &spath)?;
    Ok(match read::required_str(source, "type", &spath)?.as_str() {
        "base64" => Some(Image::Base64 {
            media_type: read::required_str(source, "media_type", &spath)?,
            data: read::required_str(source, "data", &spath)?,
        }),
        "url" => {
            let url = read::required_str(source, "url", &spath)?;
            Some(read::image_url(&url, &join(&spath, "url"))?)
        }
        _ => None,
    })
}

fn tool_result(obj: &Obj, path: &str, names: &Names, chat: &mut Chat) -> Result<ToolResult, Invalid> {
    let tool_call_id = read::required_str(obj, "tool_use_id", path)?;
    let cpath = join(path, "content");
    let content = match read::get(obj, "content") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![Part::Text(s.clone())],
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (k, b) in blocks.iter().enumerate() {
                let bpath = format!("{cpath}[{k}]");
                match block(b, &bpath, &mut Names::new(), chat)? {
                    Some(p @ (Part::Text(_) | Part::Image(_) | Part::Native(_))) => parts.push(p),
                    Some(_) => return Err(Invalid::new(bpath, "a tool result holds text and images only")),
                    None => {}
                }
            }
            parts
        }
        Some(_) => return Err(Invalid::new(cpath, "must be a string or an array of content blocks")),
    };
    Ok(ToolResult {
        name: names.get(&tool_call_id).cloned(),
        tool_call_id,
        content,
        is_error: read::opt_bool(obj, "is_error").map_err(|e| Invalid::new(join(path, "is_error"), e.message))?
            == Some(true),
    })
}

/// `metadata.user_id` is the user; anything else in it is a hint.
fn metadata(obj: &Obj, chat: &mut Chat) -> Result<(), Invalid> {
    let Some(meta) = read::get(obj, "metadata") else {
        return Ok(());
    };
    let meta = read::as_object(meta, "metadata")?;
    chat.user = read::opt_str(meta, "user_id", "metadata")?;
    if meta.keys().any(|k| k != "user_id") {
        chat.drop_hint("metadata");
    }
    Ok(())
}

fn tools(obj: &Obj, chat: &mut Chat) -> Result<(), Invalid> {
    let list = read::array(obj, "tools", "")?;
    read::check_tool_count(list)?;
    for (i, t) in list.iter().enumerate() {
        let path = format!("tools[{i}]");
        let def = read::as_object(t, &path)?;
        note_cache_control(def, chat);
        let name = read::required_str(def, "name", &path)?;
        let custom = read::opt_str(def, "type", &path)?.is_none_or(|t| t == "custom");
        chat.tools.push(Tool {
            name,
            description: read::opt_str(def, "description", &path)?,
            schema: read::get(def, "input_schema").cloned().unwrap_or(Value::Null),
            // A server tool (`web_search_20250305`...) runs at Anthropic only.
            native: (!custom).then(|| Native {
                param: path.clone(),
                value: t.clone(),
            }),
        });
    }
    let Some(choice) = read::get(obj, "tool_choice") else {
        return Ok(());
    };
    let choice = read::as_object(choice, "tool_choice")?;
    chat.tool_choice = Some(match read::required_str(choice, "type", "tool_choice")?.as_str() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Named(read::required_str(choice, "name", "tool_choice")?),
        other => return Err(Invalid::new("tool_choice.type", format!("unknown type `{other}`"))),
    });
    if read::get(choice, "disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
        chat.parallel_tool_calls = Some(false);
    }
    Ok(())
}

/// Top-level members not read above: the door's own, and the rest kept in `other`.
fn rest(chat: &mut Chat, key: &str, value: &Value) -> Result<(), Invalid> {
    const READ: [&str; 12] = [
        "model",
        "messages",
        "system",
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "stream",
        "metadata",
        "tools",
        "tool_choice",
    ];
    if READ.contains(&key) || read::door_field(chat, key, value)? || value.is_null() {
        return Ok(());
    }
    chat.other.insert(key.to_string(), value.clone());
    Ok(())
}
