//! Upstream errors in any dialect, as a body or inside a stream, read into [`ErrorInfo`]; and a
//! stream error written in the client's dialect (the proxy's own error shapes).

use crate::text::sanitize;
use serde_json::Value;

use super::form::ErrorInfo;
use crate::provider::{Dialect, ProviderKind};

/// Read an upstream's error answer (`status`, `body`): any dialect's error JSON (the keys of
/// `dialect` are preferred for the kind), or text, sanitized.
pub fn decode_error(dialect: Dialect, status: u16, body: &[u8]) -> ErrorInfo {
    let parsed = match serde_json::from_slice::<Value>(body) {
        // Gemini sometimes wraps its error in an array.
        Ok(Value::Array(items)) => items.into_iter().next(),
        Ok(v) => Some(v),
        Err(_) => None,
    };
    if let Some((kind, message)) = parsed.as_ref().and_then(|v| error_object(dialect, v)) {
        return ErrorInfo {
            status,
            kind: kind.unwrap_or_else(|| kind_for_status(status).into()),
            message: sanitize(&message),
        };
    }
    let text = String::from_utf8_lossy(body);
    let message = match text.trim() {
        "" => format!("upstream answered {status} with an empty body"),
        t => sanitize(t),
    };
    ErrorInfo {
        status,
        kind: kind_for_status(status).into(),
        message,
    }
}

/// An error reported inside a stream (Anthropic `event: error`, an OpenAI chunk with `error`,
/// a Gemini error chunk); the status comes from the error's own code or kind.
pub(super) fn in_band(dialect: Dialect, data: &[u8]) -> ErrorInfo {
    let v = serde_json::from_slice::<Value>(data).unwrap_or(Value::Null);
    let (kind, message) = error_object(dialect, &v).unwrap_or((None, String::from_utf8_lossy(data).into()));
    let code = v
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..=599).contains(c));
    let status = code.unwrap_or_else(|| status_for_kind(kind.as_deref().unwrap_or("")));
    ErrorInfo {
        status,
        kind: kind.unwrap_or_else(|| kind_for_status(status).into()),
        message: sanitize(&message),
    }
}

/// The kind and message of an `{"error": ...}` object.
fn error_object(dialect: Dialect, v: &Value) -> Option<(Option<String>, String)> {
    let e = v.get("error").filter(|e| !e.is_null())?;
    if let Value::String(s) = e {
        return Some((None, s.clone()));
    }
    let keys: [&str; 3] = match dialect {
        Dialect::Anthropic => ["type", "code", "status"],
        Dialect::OpenAi => ["code", "type", "status"],
        Dialect::Gemini => ["status", "code", "type"],
    };
    let kind = keys.iter().find_map(|k| match e.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(sanitize(s)),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    });
    let message = match e.get("message") {
        Some(Value::String(m)) => m.clone(),
        _ => e.to_string(),
    };
    Some((kind, message))
}

/// A kind for an error that named none (Anthropic's words: the most descriptive set).
fn kind_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The HTTP status an in-band error kind stands for, in any dialect's words.
fn status_for_kind(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" | "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => 400,
        "authentication_error" | "invalid_api_key" | "UNAUTHENTICATED" => 401,
        "permission_error" | "PERMISSION_DENIED" => 403,
        "not_found_error" | "NOT_FOUND" => 404,
        "request_too_large" => 413,
        "rate_limit_error" | "rate_limit_exceeded" | "insufficient_quota" | "RESOURCE_EXHAUSTED" => 429,
        "overloaded_error" => 529,
        "UNAVAILABLE" => 503,
        "timeout_error" | "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    }
}

/// An error event in the client's dialect, ending its stream: the shapes the proxy itself uses.
pub(super) fn write_stream_error(to: Dialect, info: &ErrorInfo, out: &mut Vec<u8>) {
    let provider = match to {
        Dialect::Anthropic => ProviderKind::Anthropic,
        Dialect::OpenAi => ProviderKind::Openai,
        Dialect::Gemini => ProviderKind::Gemini,
    };
    out.extend_from_slice(&provider.get().sse_error(info.status, &info.message));
}
