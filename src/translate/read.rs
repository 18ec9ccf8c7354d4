//! Reading a client's JSON request with the front door's checks: typed getters that answer
//! [`Invalid`] naming the param path, and the pieces both request decoders share.

use serde_json::{Map, Value};

use super::form::{Chat, Image, Invalid};

pub(super) type Obj = Map<String, Value>;

/// At most this many tools in one request.
pub(super) const MAX_TOOLS: usize = 128;

/// `path.key`, or `key` at the top level.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The body as a JSON object.
pub(super) fn object(body: &[u8]) -> Result<Obj, Invalid> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(Invalid::new("", "request body must be a JSON object")),
        Err(e) => Err(Invalid::new("", format!("request body is not valid JSON: {e}"))),
    }
}

/// A JSON body read into `T`, checked as UTF-8 once: serde_json then reads the text without
/// checking each string again (callgrind: 1.9k of the 9.6k instructions a 330-byte Anthropic
/// answer took).
/// The error is formatted only by a caller that reports it (the plain-request reader declines).
pub(super) fn typed<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, serde_json::Error> {
    let text = std::str::from_utf8(body).map_err(|e| serde::de::Error::custom(format!("not UTF-8: {e}")))?;
    serde_json::from_str(text)
}

/// A member, `null` counting as absent (the APIs treat an explicit null as "not set").
pub(super) fn get<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

pub(super) fn opt_str(obj: &Obj, key: &str, path: &str) -> Result<Option<String>, Invalid> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Invalid::new(join(path, key), "must be a string")),
    }
}

pub(super) fn opt_bool(obj: &Obj, key: &str) -> Result<Option<bool>, Invalid> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Invalid::new(key, "must be a boolean")),
    }
}

/// An integer member that must be at least `min`.
pub(super) fn opt_uint(obj: &Obj, key: &str, min: u64) -> Result<Option<u64>, Invalid> {
    let Some(v) = get(obj, key) else { return Ok(None) };
    let whole = v.as_f64().filter(|x| x.fract() == 0.0);
    match (whole, v.as_u64()) {
        (None, _) => Err(Invalid::new(key, "must be an integer")),
        (Some(_), Some(n)) if n >= min => Ok(Some(n)),
        // Negative, below the minimum, or written as a float (`5.0`).
        (Some(x), _) if x >= min as f64 && x <= u64::MAX as f64 => Ok(Some(x as u64)),
        (Some(_), _) => Err(Invalid::new(key, format!("must be at least {min}"))),
    }
}

/// A number member within `[lo, hi]`.
pub(super) fn opt_num(obj: &Obj, key: &str, lo: f64, hi: f64) -> Result<Option<f64>, Invalid> {
    let Some(v) = get(obj, key) else { return Ok(None) };
    match v.as_f64() {
        Some(x) if (lo..=hi).contains(&x) => Ok(Some(x)),
        Some(_) => Err(Invalid::new(key, format!("must be between {lo} and {hi}"))),
        None => Err(Invalid::new(key, "must be a number")),
    }
}

/// A string or an array of strings (OpenAI `stop`, Anthropic `stop_sequences`).
pub(super) fn strings(obj: &Obj, key: &str) -> Result<Vec<String>, Invalid> {
    match get(obj, key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(Invalid::new(format!("{key}[{i}]"), "must be a string")),
            })
            .collect(),
        Some(_) => Err(Invalid::new(key, "must be a string or an array of strings")),
    }
}

/// An array member: absent gives an empty slice.
pub(super) fn array<'a>(obj: &'a Obj, key: &str, path: &str) -> Result<&'a [Value], Invalid> {
    match get(obj, key) {
        None => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(Invalid::new(join(path, key), "must be an array")),
    }
}

pub(super) fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Obj, Invalid> {
    v.as_object().ok_or_else(|| Invalid::new(path, "must be an object"))
}

/// A required non-empty string member.
pub(super) fn required_str(obj: &Obj, key: &str, path: &str) -> Result<String, Invalid> {
    match opt_str(obj, key, path)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(Invalid::new(join(path, key), format!("`{key}` is required"))),
    }
}

/// `data:<media type>;base64,<data>` as a base64 image, `http(s)://...` as a URL.
pub(super) fn image_url(url: &str, path: &str) -> Result<Image, Invalid> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((head, data)) = rest.split_once(',') else {
            return Err(Invalid::new(path, "data URL has no `,`"));
        };
        let Some(media_type) = head.strip_suffix(";base64") else {
            return Err(Invalid::new(path, "data URL must be base64-encoded"));
        };
        if media_type.is_empty() || data.is_empty() {
            return Err(Invalid::new(path, "data URL needs a media type and data"));
        }
        return Ok(Image::Base64 {
            media_type: media_type.to_string(),
            data: data.to_string(),
        });
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(Image::Url(url.to_string()))
    } else {
        Err(Invalid::new(path, "must be an http(s) URL or a base64 data URL"))
    }
}

/// Checks every dialect's door makes the same way: messages present, a user message among them.
pub(super) fn check_messages(messages: Option<&Value>) -> Result<&[Value], Invalid> {
    match messages {
        None => Err(Invalid::new("messages", "`messages` is required")),
        Some(Value::Array(a)) if a.is_empty() => Err(Invalid::new("messages", "must not be empty")),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(Invalid::new("messages", "must be an array")),
    }
}

/// The door fields both dialects accept: `backend`, `session_id` and the CLI's extras.
/// Returns whether `key` was one of them.
pub(super) fn door_field(chat: &mut Chat, key: &str, value: &Value) -> Result<bool, Invalid> {
    let text = || match value {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Null => Ok(None),
        _ => Err(Invalid::new(key, "must be a string")),
    };
    match key {
        "backend" => chat.backend = text()?,
        "session_id" => chat.session_id = text()?,
        _ if super::EXTRA_FIELDS.contains(&key) => {
            if !value.is_null() {
                chat.extra.insert(key.to_string(), value.clone());
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// `model`: required, a string.
pub(super) fn model(obj: &Obj) -> Result<String, Invalid> {
    required_str(obj, "model", "")
}

/// `tools` must hold at most [`MAX_TOOLS`].
pub(super) fn check_tool_count(tools: &[Value]) -> Result<(), Invalid> {
    if tools.len() > MAX_TOOLS {
        return Err(Invalid::new("tools", format!("at most {MAX_TOOLS} tools are allowed")));
    }
    Ok(())
}
