//! What the request encoders share: the system prompt for a target with one system slot, the
//! source dialect's own members and items (kept for the same dialect, refused or dropped by
//! others), the CLI's extras, tool arguments as an object, and what every encoder refuses.

use serde_json::{Map, Value};

use super::form::{Chat, Invalid, Native, Part, Role};
use super::EncodeOpts;
use crate::provider::Dialect;

pub(super) type Obj = Map<String, Value>;

/// Members of a dialect's request that change nothing about the answer's shape: another target
/// drops them and the drop is noted.
const ANTHROPIC_HINTS: [&str; 5] = [
    "cache_control",
    "context_management",
    "output_config",
    "service_tier",
    "thinking",
];
const OPENAI_HINTS: [&str; 6] = [
    "metadata",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "service_tier",
    "store",
];

/// The dialect's name as a client reads it in an error.
pub(super) fn name(d: Dialect) -> &'static str {
    match d {
        Dialect::Anthropic => "Anthropic",
        Dialect::OpenAi => "OpenAI",
        Dialect::Gemini => "Gemini",
    }
}

/// `param` cannot be sent to a `target` backend.
pub(super) fn refuse(param: impl Into<String>, target: Dialect) -> Invalid {
    Invalid::new(param, format!("not supported by this model's {} backend", name(target)))
}

/// Note a drop once.
pub(super) fn note(dropped: &mut Vec<&'static str>, what: &'static str) {
    if !dropped.contains(&what) {
        dropped.push(what);
    }
}

/// The source's own members: written as they are to the same dialect (never over what the
/// encoder wrote); another target drops the hints and refuses the rest, naming them.
pub(super) fn other_members(
    chat: &Chat,
    target: Dialect,
    body: &mut Obj,
    dropped: &mut Vec<&'static str>,
) -> Result<(), Invalid> {
    let hints: &[&'static str] = match chat.source {
        Dialect::Anthropic => &ANTHROPIC_HINTS,
        Dialect::OpenAi => &OPENAI_HINTS,
        Dialect::Gemini => &[],
    };
    for (key, value) in &chat.other {
        if chat.source == target {
            body.entry(key.clone()).or_insert_with(|| value.clone());
        } else if let Some(hint) = hints.iter().find(|h| *h == key) {
            note(dropped, hint);
        } else {
            return Err(refuse(key.clone(), target));
        }
    }
    Ok(())
}

/// The CLI's extras: written when asked, else noted as dropped.
pub(super) fn extra(chat: &Chat, opts: &EncodeOpts, body: &mut Obj, dropped: &mut Vec<&'static str>) {
    for (key, value) in &chat.extra {
        if opts.keep_extra {
            body.entry(key.clone()).or_insert_with(|| value.clone());
        } else if let Some(name) = super::EXTRA_FIELDS.iter().find(|f| *f == key) {
            note(dropped, name);
        }
    }
}

/// A source-dialect item: the same dialect takes it as it is, another refuses it by its param.
pub(super) fn native<'a>(chat: &Chat, target: Dialect, item: &'a Native) -> Result<&'a Value, Invalid> {
    if chat.source == target {
        Ok(&item.value)
    } else {
        Err(refuse(item.param.clone(), target))
    }
}

/// The system prompt for a target with one system slot: `system`, then every system message;
/// one that follows other messages is folded in, and that is noted.
pub(super) fn system_texts<'a>(chat: &'a Chat, dropped: &mut Vec<&'static str>) -> Vec<&'a str> {
    let mut texts: Vec<&str> = chat
        .system
        .iter()
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .collect();
    let mut leading = true;
    for m in &chat.messages {
        if m.role != Role::System {
            leading = false;
            continue;
        }
        if !leading {
            note(dropped, "system_message_position");
        }
        texts.extend(m.parts.iter().filter_map(|p| match p {
            Part::Text(t) if !t.is_empty() => Some(t.as_str()),
            _ => None,
        }));
    }
    texts
}

/// Tool arguments as the object a target wants: empty text is `{}`.
pub(super) fn arguments(text: &str, param: impl FnOnce() -> String) -> Result<Value, Invalid> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Obj::new()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(Invalid::new(param(), "tool call arguments must be a JSON object")),
    }
}

/// A request body as JSON bytes.
pub(super) fn to_body<T: serde::Serialize>(body: &T) -> Result<Vec<u8>, Invalid> {
    serde_json::to_vec(body).map_err(|e| Invalid::new("", format!("cannot encode the request: {e}")))
}

/// What only OpenAI can do: several answers, log probabilities.
pub(super) fn single_answer(chat: &Chat, target: Dialect) -> Result<(), Invalid> {
    if chat.n.is_some_and(|n| n > 1) {
        return Err(refuse("n", target));
    }
    if chat.logprobs {
        return Err(refuse("logprobs", target));
    }
    if chat.top_logprobs.is_some() {
        return Err(refuse("top_logprobs", target));
    }
    Ok(())
}

/// The param naming part `j` of message `i` in the client's request, where the parts of a
/// user message are its content items one for one.
pub(super) fn part_param(i: usize, j: usize) -> String {
    format!("messages[{i}].content[{j}]")
}

/// The param naming a tool call's arguments in the client's request: OpenAI lists tool calls
/// apart from the content, Anthropic has them among the content blocks.
pub(super) fn arguments_param(chat: &Chat, i: usize, j: usize, call: usize) -> String {
    match chat.source {
        Dialect::OpenAi => format!("messages[{i}].tool_calls[{call}].function.arguments"),
        _ => format!("messages[{i}].content[{j}].input"),
    }
}

/// The name of the function an earlier tool call with this id called.
pub(super) fn call_name<'a>(chat: &'a Chat, id: &str) -> Option<&'a str> {
    chat.messages.iter().flat_map(|m| &m.parts).find_map(|p| match p {
        Part::ToolCall(c) if c.id == id => Some(c.name.as_str()),
        _ => None,
    })
}
