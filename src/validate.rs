//! Request validation before any upstream sees the request: JSON shape and depth, NUL bytes,
//! and the ids the sidecar accepts from clients. Pure functions over bytes.

use serde::Deserialize;
use serde_json::Value;

use crate::json;

/// What was wrong with a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Not JSON (an `invalid_json` 400); the parser's message.
    NotJson(String),
    /// JSON, but not an object (an `invalid_body` 400).
    NotObject,
    /// Nested deeper than this many levels, `limits.max_json_depth` (a `json_too_deep` 400).
    TooDeep(usize),
    /// Contains NUL, raw or as `\u0000` (an `invalid_body` 400).
    Nul,
}

impl Invalid {
    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            Invalid::NotJson(e) => format!("request body is not valid JSON: {e}"),
            Invalid::NotObject => "request body must be a JSON object".into(),
            Invalid::TooDeep(max) => format!("request body nests deeper than {max} levels"),
            Invalid::Nul => "request body contains a NUL character".into(),
        }
    }
}

/// Fields of a JSON request body the sidecar acts on. Lenient: a field of an unexpected type
/// is left for the upstream to judge.
#[derive(Debug, Default, Deserialize)]
pub struct BodyInfo {
    /// `model`, when it is a string.
    #[serde(default, deserialize_with = "lenient_string")]
    pub model: Option<String>,
    /// `stream`, when it is a boolean.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub stream: Option<bool>,
    /// `metadata` (Anthropic's `metadata.user_id` can name the session).
    #[serde(default)]
    pub metadata: Option<Value>,
    /// The claude-cli upstream's session key in the body (`session_id`).
    #[serde(default, deserialize_with = "lenient_string")]
    pub session_id: Option<String>,
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(Value::deserialize(d)?.as_bool())
}

/// Validate a JSON body in two passes: a byte scan for depth and NUL (raw or `\u0000`), then a
/// full parse that reads only the fields in [`BodyInfo`].
pub fn check_json(body: &[u8], max_depth: usize) -> Result<BodyInfo, Invalid> {
    scan(body, max_depth)?;
    serde_json::from_slice::<BodyInfo>(body).map_err(|e| Invalid::NotJson(e.to_string()))
}

/// Depth and NUL scan. Also requires the document to start with `{`.
fn scan(body: &[u8], max_depth: usize) -> Result<(), Invalid> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return match first {
            None => Err(Invalid::NotJson("empty body".into())),
            Some(_) => Err(Invalid::NotObject),
        };
    }
    if memchr::memchr(0, body).is_some() || escaped_nul(body) {
        return Err(Invalid::Nul);
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        match b {
            // Strings are most of a request: cross them with memchr, not byte by byte.
            b'"' => match json::string_end(body, i) {
                Some(end) => {
                    i = end;
                    continue;
                }
                None => return Ok(()), // unterminated: the parser says so
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(Invalid::TooDeep(max_depth));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// `\u0000` written as an escape (after an even number of backslashes, so not `\\u0000`).
fn escaped_nul(body: &[u8]) -> bool {
    memchr::memmem::find_iter(body, br"\u0000").any(|at| {
        let before = body[..at].iter().rev().take_while(|b| **b == b'\\').count();
        before % 2 == 0
    })
}

/// Session and request ids: `^[A-Za-z0-9._:-]{1,128}$`.
pub fn valid_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_it_needs() {
        let b = br#"{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u1"}}"#;
        let info = check_json(b, 64).expect("valid");
        assert_eq!(info.model.as_deref(), Some("claude-x"));
        assert_eq!(info.stream, Some(true));
        assert_eq!(
            info.metadata
                .and_then(|m| m["user_id"].as_str().map(String::from))
                .as_deref(),
            Some("u1")
        );
    }

    #[test]
    fn lenient_about_field_types() {
        let info = check_json(br#"{"model":5,"stream":"yes"}"#, 64).expect("valid JSON");
        assert_eq!(
            (info.model, info.stream),
            (None, None),
            "odd types are ignored, not rejected"
        );
    }

    #[test]
    fn rejects_bad_json_with_a_reason() {
        let e = check_json(b"{\"a\":", 64).expect_err("truncated");
        assert!(matches!(&e, Invalid::NotJson(m) if m.contains("EOF")), "{e:?}");
        assert_eq!(check_json(b"[1,2]", 64).expect_err("array"), Invalid::NotObject);
        assert!(matches!(check_json(b"  ", 64), Err(Invalid::NotJson(_))), "empty");
        assert!(
            matches!(check_json(b"{} x", 64), Err(Invalid::NotJson(_))),
            "trailing garbage"
        );
    }

    #[test]
    fn depth_limit_counts_objects_and_arrays_outside_strings() {
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(63), "]".repeat(63));
        assert!(check_json(ok.as_bytes(), 64).is_ok(), "64 levels allowed");
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(64), "]".repeat(64));
        assert_eq!(
            check_json(deep.as_bytes(), 64).expect_err("65 levels"),
            Invalid::TooDeep(64)
        );
        let in_string = format!("{{\"a\":\"{}\"}}", "[".repeat(500));
        assert!(
            check_json(in_string.as_bytes(), 64).is_ok(),
            "brackets in strings do not count"
        );
        let escaped = r#"{"a":"\"[[[[","b":1}"#;
        assert!(
            check_json(escaped.as_bytes(), 2).is_ok(),
            "escaped quote keeps string state"
        );
        let backslash_then_close = r#"{"a":"x\\\\","b":[[1]]}"#;
        assert_eq!(
            check_json(backslash_then_close.as_bytes(), 2).expect_err("3 levels"),
            Invalid::TooDeep(2),
            "an escaped backslash does not escape the closing quote"
        );
    }

    #[test]
    fn rejects_nul_raw_and_escaped() {
        assert_eq!(check_json(b"{\"a\":\"x\0\"}", 64).expect_err("raw"), Invalid::Nul);
        assert_eq!(
            check_json(br#"{"a":"x\u0000"}"#, 64).expect_err("escaped"),
            Invalid::Nul
        );
        assert!(
            check_json(br#"{"a":"x\\u0000"}"#, 64).is_ok(),
            "escaped backslash then text"
        );
        assert!(check_json(br#"{"a":"\u00001"}"#, 64).is_err(), "NUL followed by text");
    }

    #[test]
    fn ids() {
        assert!(valid_id(b"sess-1:abc_DEF.9"));
        assert!(!valid_id(b""), "empty");
        assert!(!valid_id(&[b'a'; 129]), "too long");
        assert!(valid_id(&[b'a'; 128]), "128 is fine");
        assert!(
            !valid_id(b"a b") && !valid_id(b"a/b") && !valid_id(b"caf\xc3\xa9"),
            "charset"
        );
    }
}
