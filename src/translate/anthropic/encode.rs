//! A [`Chat`] as an Anthropic Messages request body: one system slot, strictly alternating
//! user/assistant messages (tool results are user `tool_result` blocks, first in their message),
//! `max_tokens` always set, `tool_choice` with `disable_parallel_tool_use`. Built as the views of
//! `body.rs`, which borrow from the [`Chat`] and are written straight out ([`JsonOut`]): no
//! `Value` tree is built for the body.

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::provider::Dialect;
use crate::translate::common::{self, Obj};
use crate::translate::form::{Chat, Invalid, Part, ResponseFormat, Role, ToolChoice, ToolResult};
use crate::translate::jsonw::JsonOut;
use crate::translate::EncodeOpts;

use super::body::{Block, Body, Choice, MessageOut, ResultContent, System, ToolDef};

const TARGET: Dialect = Dialect::Anthropic;

pub(in crate::translate) fn encode(
    chat: &Chat,
    model: &str,
    opts: &EncodeOpts,
    dropped: &mut Vec<&'static str>,
) -> Result<(String, Vec<u8>), Invalid> {
    let system = match common::system_texts(chat, dropped).as_slice() {
        [] => None,
        [one] => Some(System::One(one)),
        many => Some(System::Many(many.iter().map(|t| Block::Text(t)).collect())),
    };
    let messages = messages(chat)?;
    check_sampling(chat)?;
    let (tools, tool_choice) = tools(chat)?;
    let mut body = Body {
        model,
        system,
        messages,
        max_tokens: chat.max_tokens.unwrap_or(opts.default_max_tokens),
        temperature: chat.temperature,
        top_p: chat.top_p,
        top_k: chat.top_k,
        stop_sequences: &chat.stop,
        stream: chat.stream,
        tools,
        tool_choice,
        user_id: chat.user.as_deref(),
        rest: Obj::new(),
    };
    common::single_answer(chat, TARGET)?;
    let mut rest = Obj::new();
    common::other_members(chat, TARGET, &mut rest, dropped)?;
    common::extra(chat, opts, &mut rest, dropped);
    rest.retain(|k, _| !body.writes(k));
    body.rest = rest;
    // Room for the texts and the JSON around them, so the buffer rarely grows.
    let texts: usize = chat.system.iter().map(String::len).sum::<usize>()
        + chat
            .messages
            .iter()
            .flat_map(|m| &m.parts)
            .map(|p| match p {
                Part::Text(t) => t.len(),
                _ => 64,
            })
            .sum::<usize>();
    let mut bytes = Vec::with_capacity(texts + 256);
    body.write(&mut JsonOut::new(&mut bytes));
    Ok(("/v1/messages".into(), bytes))
}

/// What Anthropic cannot take of the sampling parameters.
fn check_sampling(chat: &Chat) -> Result<(), Invalid> {
    if chat.temperature.is_some_and(|t| t > 1.0) {
        return Err(Invalid::new(
            "temperature",
            "must be at most 1 for this model's Anthropic backend",
        ));
    }
    match chat.response_format {
        None | Some(ResponseFormat::Text) => Ok(()),
        Some(_) => Err(common::refuse("response_format", TARGET)),
    }
}

/// Messages with their roles mapped, empty ones left out, neighbours of one role merged.
fn messages(chat: &Chat) -> Result<Vec<MessageOut<'_>>, Invalid> {
    let mut out: Vec<MessageOut> = Vec::with_capacity(chat.messages.len());
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
                Part::Text(t) => Block::Text(t),
                Part::Image(image) => Block::Image(image),
                Part::ToolCall(c) => {
                    calls += 1;
                    let input = common::arguments(&c.arguments, || common::arguments_param(chat, i, j, calls - 1))?;
                    Block::ToolUse {
                        id: tool_id(&c.id),
                        name: &c.name,
                        input,
                    }
                }
                Part::ToolResult(r) => tool_result(chat, r)?,
                Part::Native(n) => Block::Native(common::native(chat, TARGET, n)?),
            };
            blocks.push(block);
        }
        match out.last_mut() {
            _ if blocks.is_empty() => {}
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => out.push(MessageOut { role, content: blocks }),
        }
    }
    for m in &mut out {
        // Tool results answer the turn before: they come first (a stable sort keeps order).
        m.content.sort_by_key(|b| !matches!(b, Block::ToolResult { .. }));
    }
    Ok(out)
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

fn tool_result<'a>(chat: &'a Chat, r: &'a ToolResult) -> Result<Block<'a>, Invalid> {
    let content = match r.content.as_slice() {
        [] => None,
        [Part::Text(t)] => Some(ResultContent::Text(t)),
        parts => {
            let mut blocks = Vec::with_capacity(parts.len());
            for p in parts {
                blocks.push(match p {
                    Part::Text(t) if t.is_empty() => continue,
                    Part::Text(t) => Block::Text(t),
                    Part::Image(image) => Block::Image(image),
                    Part::Native(n) => Block::Native(common::native(chat, TARGET, n)?),
                    Part::ToolCall(_) | Part::ToolResult(_) => continue, // not in a result
                });
            }
            Some(ResultContent::Blocks(blocks))
        }
    };
    Ok(Block::ToolResult {
        tool_use_id: tool_id(&r.tool_call_id),
        content,
        is_error: r.is_error,
    })
}

/// The tool definitions and the tool choice (none without tools: a choice without tools means
/// nothing, and Anthropic refuses it).
fn tools(chat: &Chat) -> Result<(Vec<ToolDef<'_>>, Option<Choice<'_>>), Invalid> {
    if chat.tools.is_empty() {
        return Ok((Vec::new(), None));
    }
    let mut defs = Vec::with_capacity(chat.tools.len());
    for tool in &chat.tools {
        if let Some(n) = &tool.native {
            defs.push(ToolDef::Native(common::native(chat, TARGET, n)?));
            continue;
        }
        defs.push(ToolDef::Def {
            name: &tool.name,
            description: tool.description.as_deref(),
            input_schema: match &tool.schema {
                Value::Null => Cow::Owned(json!({"type": "object", "properties": {}})),
                s => Cow::Borrowed(s),
            },
        });
    }
    let (kind, name) = match &chat.tool_choice {
        None | Some(ToolChoice::Auto) => ("auto", None),
        Some(ToolChoice::None) => ("none", None),
        Some(ToolChoice::Required) => ("any", None),
        Some(ToolChoice::Named(name)) => ("tool", Some(name.as_str())),
    };
    let parallel_off = chat.parallel_tool_calls == Some(false) && chat.tool_choice != Some(ToolChoice::None);
    let choice = (chat.tool_choice.is_some() || parallel_off).then_some(Choice {
        kind,
        name,
        disable_parallel_tool_use: parallel_off,
    });
    Ok((defs, choice))
}
