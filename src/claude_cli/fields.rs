//! Checks of the client-supplied fields of a claude-cli request. Each refusal names its field.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::conf::CliConf;

/// A request the CLI must not be run for (a 400). The message names the field and never quotes
/// a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// What is wrong, starting with the field's name.
    pub message: String,
}

impl Invalid {
    /// A refusal saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Invalid {
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Invalid {}

/// The longest single argument Linux passes to a program (`MAX_ARG_STRLEN` less the NUL).
pub const MAX_ARG: usize = 128 * 1024 - 1;
/// The deepest nesting of a JSON value passed as one argument (`agents`, `mcp_config`, ...).
pub const MAX_JSON_DEPTH: usize = 10;
/// The longest JSON value passed as one argument, serialized, in bytes.
pub const MAX_JSON_BYTES: usize = 10_240;

/// A boolean field, or nothing (absent or null).
pub fn opt_bool(body: &Value, field: &str) -> Result<Option<bool>, Invalid> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Invalid::new(format!("{field}: must be a boolean"))),
    }
}

/// A string field (no NUL), or nothing.
pub fn opt_str<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, Invalid> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.contains('\0') => Err(Invalid::new(format!("{field}: must not contain NUL"))),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Invalid::new(format!("{field}: must be a string"))),
    }
}

/// A name passed as one argument (a model, a tool): non-empty, at most 256 bytes, no control
/// character or whitespace at its ends, not starting with `-`.
fn check_name(field: &str, s: &str) -> Result<(), Invalid> {
    if s.is_empty() || s.len() > 256 {
        return Err(Invalid::new(format!("{field}: must be 1 to 256 bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(Invalid::new(format!(
            "{field}: must not contain NUL or control characters"
        )));
    }
    if s.starts_with('-') || s.trim() != s {
        return Err(Invalid::new(format!("{field}: must not start with '-' or a space")));
    }
    Ok(())
}

/// A name passed as one argument (a model, a tool), or nothing: 1-256 bytes, no control character,
/// not starting with `-` or a space.
pub fn opt_name(body: &Value, field: &str) -> Result<Option<String>, Invalid> {
    let Some(s) = opt_str(body, field)? else {
        return Ok(None);
    };
    check_name(field, s)?;
    Ok(Some(s.to_string()))
}

/// Prompt text passed as one argument: newlines and tabs allowed, NUL not, at most [`MAX_ARG`].
pub fn opt_text(body: &Value, field: &str) -> Result<Option<String>, Invalid> {
    let Some(s) = opt_str(body, field)? else {
        return Ok(None);
    };
    check_text(field, s)?;
    Ok((!s.is_empty()).then(|| s.to_string()))
}

fn check_text(field: &str, s: &str) -> Result<(), Invalid> {
    if s.len() > MAX_ARG {
        return Err(Invalid::new(format!(
            "{field}: exceeds maximum size of {MAX_ARG} bytes"
        )));
    }
    if s.contains('\0') {
        return Err(Invalid::new(format!("{field}: must not contain NUL")));
    }
    Ok(())
}

/// `system`: a string or text blocks, joined by a blank line.
pub fn system_text(system: Option<&Value>) -> Result<Option<String>, Invalid> {
    let text = match system {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                match (
                    b.get("type").and_then(Value::as_str),
                    b.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => parts.push(t),
                    _ => return Err(Invalid::new(format!("system[{i}]: only text blocks are supported"))),
                }
            }
            parts.join("\n\n")
        }
        Some(_) => return Err(Invalid::new("system: must be a string or an array of text blocks")),
    };
    check_text("system", &text)?;
    Ok((!text.trim().is_empty()).then_some(text))
}

fn array<'a>(body: &'a Value, field: &str, max: usize) -> Result<&'a [Value], Invalid> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) if items.len() > max => Err(Invalid::new(format!("{field}: at most {max} entries"))),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Invalid::new(format!("{field}: must be an array of strings"))),
    }
}

/// An array of strings (no NUL), at most `max` of them.
pub fn str_list<'a>(body: &'a Value, field: &str, max: usize) -> Result<Vec<&'a str>, Invalid> {
    let mut out = Vec::new();
    for (i, item) in array(body, field, max)?.iter().enumerate() {
        match item.as_str() {
            Some(s) if s.contains('\0') => return Err(Invalid::new(format!("{field}[{i}]: must not contain NUL"))),
            Some(s) => out.push(s),
            None => return Err(Invalid::new(format!("{field}[{i}]: must be a string"))),
        }
    }
    Ok(out)
}

/// An array of names (see `check_name`), at most `max` of them.
pub fn name_list<'a>(body: &'a Value, field: &str, max: usize) -> Result<Vec<&'a str>, Invalid> {
    let names = str_list(body, field, max)?;
    for (i, n) in names.iter().enumerate() {
        check_name(&format!("{field}[{i}]"), n)?;
    }
    Ok(names)
}

/// A client-named path: no NUL, no `..`, absolute or relative to `conf.cwd`, and (lexically)
/// inside one of `conf.allow_dirs`. Symlinks are resolved later, by `check_filesystem`.
pub fn allowed_path(field: &str, raw: &str, conf: &CliConf) -> Result<PathBuf, Invalid> {
    if raw.is_empty() {
        return Err(Invalid::new(format!("{field}: must not be empty")));
    }
    if raw.chars().any(char::is_control) {
        return Err(Invalid::new(format!(
            "{field}: must not contain NUL or control characters"
        )));
    }
    let given = Path::new(raw);
    if given.components().any(|c| c == Component::ParentDir) {
        return Err(Invalid::new(format!("{field}: path traversal ('..') is not allowed")));
    }
    let joined = if given.is_absolute() {
        given.to_path_buf()
    } else {
        conf.cwd.join(given)
    };
    let path = lexical(&joined);
    if path.components().any(|c| c == Component::ParentDir) || !path.is_absolute() {
        return Err(Invalid::new(format!("{field}: path traversal ('..') is not allowed")));
    }
    if !conf.allow_dirs.iter().any(|d| path.starts_with(lexical(d))) {
        return Err(Invalid::new(format!("{field}: outside the allowed directories")));
    }
    Ok(path)
}

/// The path without `.` components.
fn lexical(p: &Path) -> PathBuf {
    p.components().filter(|c| *c != Component::CurDir).collect()
}

/// A JSON value passed as one argument: nesting at most 10, no NUL or control character in
/// any string (tab, newline and carriage return excepted: agent prompts are text), at most
/// 10,240 bytes serialized.
pub fn bounded_json(field: &str, v: &Value) -> Result<String, Invalid> {
    if depth(v) > MAX_JSON_DEPTH {
        return Err(Invalid::new(format!(
            "{field}: exceeds maximum depth of {MAX_JSON_DEPTH}"
        )));
    }
    if has_control(v) {
        return Err(Invalid::new(format!("{field}: contains a NUL or control character")));
    }
    let text = v.to_string();
    if text.len() > MAX_JSON_BYTES {
        return Err(Invalid::new(format!(
            "{field}: exceeds maximum size of {MAX_JSON_BYTES} bytes"
        )));
    }
    Ok(text)
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn has_control(v: &Value) -> bool {
    let bad = |s: &str| s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
    match v {
        Value::String(s) => bad(s),
        Value::Array(items) => items.iter().any(has_control),
        Value::Object(map) => map.iter().any(|(k, v)| bad(k) || has_control(v)),
        _ => false,
    }
}

/// `mcp_config`: one JSON object, or up to 20 of them (objects, or strings holding one). File
/// paths are refused: the CLI would read whatever path the client named.
pub fn mcp_configs(v: Option<&Value>) -> Result<Vec<String>, Invalid> {
    let one = |field: &str, item: &Value| -> Result<String, Invalid> {
        let parsed;
        let obj = match item {
            Value::Object(_) => item,
            Value::String(s) => {
                parsed = serde_json::from_str::<Value>(s).ok().filter(Value::is_object);
                parsed.as_ref().ok_or_else(|| Invalid::new(not_object(field)))?
            }
            _ => return Err(Invalid::new(not_object(field))),
        };
        bounded_json(field, obj)
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() > 20 => Err(Invalid::new("mcp_config: at most 20 entries")),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| one(&format!("mcp_config[{i}]"), item))
            .collect(),
        Some(item) => Ok(vec![one("mcp_config", item)?]),
    }
}

fn not_object(field: &str) -> String {
    format!("{field}: must be a JSON object (file paths are not accepted)")
}

/// `session_id`: the client's name for its conversation (the key of the session table, never
/// passed to the CLI). At most 256 bytes, no control character.
pub fn client_session(body: &Value) -> Result<Option<&str>, Invalid> {
    let Some(s) = opt_str(body, "session_id")? else {
        return Ok(None);
    };
    if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
        return Err(Invalid::new(
            "session_id: must be 1 to 256 bytes without control characters",
        ));
    }
    Ok(Some(s))
}
