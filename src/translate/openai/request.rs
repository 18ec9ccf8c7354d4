//! OpenAI Chat Completions request bodies from a client, read into a [`Chat`] with the front
//! door's checks. System and developer messages stay in place as [`Role::System`] messages.

use std::collections::HashMap;

use serde_json::Value;

use crate::provider::Dialect;
use crate::translate::form::{
    Chat, Invalid, Message, Native, Part, ResponseFormat, Role, Tool, ToolCall, ToolChoice, ToolResult,
};
use crate::translate::read::{self, join, Obj};

/// The range of `temperature` at the OpenAI door.
pub(super) const TEMPERATURE: (f64, f64) = (0.0, 2.0);
/// The range of `top_p`.
pub(super) const TOP_P: (f64, f64) = (0.0, 1.0);

/// Tool call ids seen so far, with their function names (a tool message names neither).
type Names = HashMap<String, String>;

pub(in crate::translate) fn decode(body: &[u8]) -> Result<Chat, Invalid> {
    let obj = read::object(body)?;
    let mut chat = Chat::new(Dialect::OpenAi, &read::model(&obj)?);
    let messages = read::check_messages(obj.get("messages"))?;
    let mut names = Names::new();
    for (i, m) in messages.iter().enumerate() {
        chat.messages.push(message(m, i, &mut names)?);
    }
    if !chat.messages.iter().any(|m| m.role == Role::User) {
        return Err(Invalid::new("messages", "must contain at least one user message"));
    }
    sampling(&obj, &mut chat)?;
    tools(&obj, &mut chat)?;
    for (key, value) in &obj {
        rest(&mut chat, key, value)?;
    }
    Ok(chat)
}

fn message(m: &Value, i: usize, names: &mut Names) -> Result<Message, Invalid> {
    let path = format!("messages[{i}]");
    let obj = read::as_object(m, &path)?;
    let Some(role) = read::opt_str(obj, "role", &path)? else {
        return Err(Invalid::new(join(&path, "role"), "`role` is required"));
    };
    let (role, parts) = match role.as_str() {
        "system" | "developer" => (Role::System, text_only(obj, &path, false)?),
        "user" => (Role::User, required_content(obj, &path)?),
        "assistant" => (Role::Assistant, assistant(obj, &path, names)?),
        "tool" => (Role::Tool, vec![tool_result(obj, &path, names)?]),
        other => return Err(Invalid::new(join(&path, "role"), format!("unknown role `{other}`"))),
    };
    Ok(Message { role, parts })
}

/// `content`: a string or an array of parts; `None` when absent. An empty one is refused.
fn content(obj: &Obj, path: &str) -> Result<Option<Vec<Part>>, Invalid> {
    let cpath = join(path, "content");
    match read::get(obj, "content") {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(Invalid::new(cpath, "must not be empty")),
        Some(Value::String(s)) => Ok(Some(vec![Part::Text(s.clone())])),
        Some(Value::Array(items)) if items.is_empty() => Err(Invalid::new(cpath, "must not be empty")),
        Some(Value::Array(items)) => {
            let parts = items
                .iter()
                .enumerate()
                .map(|(j, item)| part(item, &format!("{cpath}[{j}]")));
            Ok(Some(parts.collect::<Result<_, _>>()?))
        }
        Some(_) => Err(Invalid::new(cpath, "must be a string or an array of content parts")),
    }
}

fn required_content(obj: &Obj, path: &str) -> Result<Vec<Part>, Invalid> {
    content(obj, path)?.ok_or_else(|| Invalid::new(join(path, "content"), "`content` is required"))
}

/// Content that may only be text (system and tool messages). `empty_ok`: `""` is an answer.
fn text_only(obj: &Obj, path: &str, empty_ok: bool) -> Result<Vec<Part>, Invalid> {
    if empty_ok && read::get(obj, "content").and_then(Value::as_str) == Some("") {
        return Ok(vec![Part::Text(String::new())]);
    }
    let parts = required_content(obj, path)?;
    if let Some(j) = parts.iter().position(|p| !matches!(p, Part::Text(_))) {
        return Err(Invalid::new(
            format!("{path}.content[{j}]"),
            "only text parts are allowed here",
        ));
    }
    Ok(parts)
}

fn part(item: &Value, path: &str) -> Result<Part, Invalid> {
    let obj = read::as_object(item, path)?;
    let Some(kind) = read::opt_str(obj, "type", path)? else {
        return Err(Invalid::new(join(path, "type"), "`type` is required"));
    };
    match kind.as_str() {
        "text" => Ok(Part::Text(read::required_str(obj, "text", path)?)),
        "refusal" => Ok(Part::Text(read::required_str(obj, "refusal", path)?)),
        "image_url" => {
            let ipath = join(path, "image_url");
            let url = match read::get(obj, "image_url") {
                Some(Value::String(u)) => u.clone(),
                Some(Value::Object(o)) => read::required_str(o, "url", &ipath)?,
                _ => return Err(Invalid::new(ipath, "`image_url.url` is required")),
            };
            Ok(Part::Image(read::image_url(&url, &join(&ipath, "url"))?))
        }
        _ => Ok(Part::Native(Native {
            param: path.to_string(),
            value: item.clone(),
        })),
    }
}

fn assistant(obj: &Obj, path: &str, names: &mut Names) -> Result<Vec<Part>, Invalid> {
    let calls = read::array(obj, "tool_calls", path)?;
    let mut parts = match (read::get(obj, "content"), calls.is_empty()) {
        (Some(Value::String(s)), false) if s.is_empty() => Vec::new(),
        (None, false) => Vec::new(),
        _ => required_content(obj, path)?,
    };
    for (j, call) in calls.iter().enumerate() {
        let cpath = format!("{path}.tool_calls[{j}]");
        let call = tool_call(call, &cpath)?;
        if let Part::ToolCall(c) = &call {
            names.insert(c.id.clone(), c.name.clone());
        }
        parts.push(call);
    }
    Ok(parts)
}

fn tool_call(value: &Value, path: &str) -> Result<Part, Invalid> {
    let obj = read::as_object(value, path)?;
    if read::opt_str(obj, "type", path)?.is_some_and(|t| t != "function") {
        return Ok(Part::Native(Native {
            param: path.to_string(),
            value: value.clone(),
        }));
    }
    let id = read::required_str(obj, "id", path)?;
    let fpath = join(path, "function");
    let Some(function) = read::get(obj, "function") else {
        return Err(Invalid::new(fpath, "`function` is required"));
    };
    let function = read::as_object(function, &fpath)?;
    let name = read::required_str(function, "name", &fpath)?;
    let arguments = match read::get(function, "arguments") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        // Some clients send the object itself; it is the same JSON.
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => return Err(Invalid::new(join(&fpath, "arguments"), "must be a JSON string")),
    };
    Ok(Part::ToolCall(ToolCall { id, name, arguments }))
}

fn tool_result(obj: &Obj, path: &str, names: &Names) -> Result<Part, Invalid> {
    let tool_call_id = read::required_str(obj, "tool_call_id", path)?;
    let name = match read::opt_str(obj, "name", path)? {
        Some(n) => Some(n),
        None => names.get(&tool_call_id).cloned(),
    };
    Ok(Part::ToolResult(ToolResult {
        tool_call_id,
        name,
        content: text_only(obj, path, true)?,
        is_error: false,
    }))
}

/// Sampling and length parameters, with the OpenAI ranges.
fn sampling(obj: &Obj, chat: &mut Chat) -> Result<(), Invalid> {
    chat.temperature = read::opt_num(obj, "temperature", TEMPERATURE.0, TEMPERATURE.1)?;
    chat.top_p = read::opt_num(obj, "top_p", TOP_P.0, TOP_P.1)?;
    let max_tokens = read::opt_uint(obj, "max_tokens", 1)?;
    chat.max_tokens = read::opt_uint(obj, "max_completion_tokens", 1)?.or(max_tokens);
    chat.stop = read::strings(obj, "stop")?;
    chat.stream = read::opt_bool(obj, "stream")?.unwrap_or(false);
    chat.n = read::opt_uint(obj, "n", 1)?;
    chat.logprobs = read::opt_bool(obj, "logprobs")?.unwrap_or(false);
    chat.top_logprobs = read::opt_uint(obj, "top_logprobs", 0)?;
    chat.user = read::opt_str(obj, "user", "")?;
    if let Some(options) = read::get(obj, "stream_options") {
        let options = read::as_object(options, "stream_options")?;
        chat.include_usage = match read::get(options, "include_usage") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(Invalid::new("stream_options.include_usage", "must be a boolean")),
        };
    }
    chat.response_format = read::get(obj, "response_format").map(response_format).transpose()?;
    Ok(())
}

fn response_format(value: &Value) -> Result<ResponseFormat, Invalid> {
    let obj = read::as_object(value, "response_format")?;
    match read::required_str(obj, "type", "response_format")?.as_str() {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(ResponseFormat::JsonObject),
        "json_schema" => {
            let path = "response_format.json_schema";
            let Some(spec) = read::get(obj, "json_schema") else {
                return Err(Invalid::new(path, "`json_schema` is required"));
            };
            let spec = read::as_object(spec, path)?;
            Ok(ResponseFormat::JsonSchema {
                name: read::required_str(spec, "name", path)?,
                schema: read::get(spec, "schema")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Obj::new())),
                strict: read::get(spec, "strict").and_then(Value::as_bool),
            })
        }
        other => Err(Invalid::new("response_format.type", format!("unknown type `{other}`"))),
    }
}

fn tools(obj: &Obj, chat: &mut Chat) -> Result<(), Invalid> {
    let list = read::array(obj, "tools", "")?;
    read::check_tool_count(list)?;
    for (i, t) in list.iter().enumerate() {
        chat.tools.push(tool(t, &format!("tools[{i}]"))?);
        // Strict schema adherence is OpenAI's promise; the internal form does not carry it.
        if t.pointer("/function/strict").and_then(Value::as_bool) == Some(true) {
            chat.drop_hint("strict");
        }
    }
    chat.parallel_tool_calls = read::opt_bool(obj, "parallel_tool_calls")?;
    chat.tool_choice = match read::get(obj, "tool_choice") {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return Err(Invalid::new("tool_choice", format!("unknown value `{other}`"))),
        }),
        Some(Value::Object(o)) => {
            let function = read::get(o, "function").and_then(Value::as_object);
            let name = function.map(|f| read::required_str(f, "name", "tool_choice.function"));
            match name {
                Some(name) => Some(ToolChoice::Named(name?)),
                None => return Err(Invalid::new("tool_choice.function.name", "`name` is required")),
            }
        }
        Some(_) => return Err(Invalid::new("tool_choice", "must be a string or an object")),
    };
    Ok(())
}

fn tool(value: &Value, path: &str) -> Result<Tool, Invalid> {
    let obj = read::as_object(value, path)?;
    let kind = read::opt_str(obj, "type", path)?.unwrap_or_else(|| "function".into());
    let fpath = join(path, "function");
    if kind != "function" {
        // Another kind of tool (`custom`...): only an OpenAI target runs it.
        return Ok(Tool {
            name: read::opt_str(obj, "name", path)?.unwrap_or(kind),
            description: None,
            schema: Value::Null,
            native: Some(Native {
                param: path.to_string(),
                value: value.clone(),
            }),
        });
    }
    let Some(function) = read::get(obj, "function") else {
        return Err(Invalid::new(join(&fpath, "name"), "`function.name` is required"));
    };
    let function = read::as_object(function, &fpath)?;
    Ok(Tool {
        name: read::required_str(function, "name", &fpath)?,
        description: read::opt_str(function, "description", &fpath)?,
        schema: read::get(function, "parameters")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        native: None,
    })
}

/// Top-level members not read above: the door's own, defaults spelled out (the same as absent),
/// and the rest, kept in `other` for the encoder to judge.
fn rest(chat: &mut Chat, key: &str, value: &Value) -> Result<(), Invalid> {
    const READ: [&str; 17] = [
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "n",
        "logprobs",
        "top_logprobs",
        "user",
        "response_format",
    ];
    if READ.contains(&key) || read::door_field(chat, key, value)? || value.is_null() {
        return Ok(());
    }
    let default = match key {
        "presence_penalty" | "frequency_penalty" => value.as_f64() == Some(0.0),
        "logit_bias" => value.as_object().is_some_and(|o| o.is_empty()),
        "modalities" => value
            .as_array()
            .is_some_and(|m| matches!(m.as_slice(), [only] if only == "text")),
        _ => false,
    };
    if !default {
        chat.other.insert(key.to_string(), value.clone());
    }
    Ok(())
}
