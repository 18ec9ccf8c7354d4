//! The plain chat request (text messages and the common scalars: no tools, parts or hints)
//! read straight into a [`Chat`] through a typed view that borrows from the body, without the
//! `Value` tree the general reader ([`super::request::decode`]) builds: most requests at the
//! OpenAI door are this shape. Anything else, or anything the door refuses, is `None`, and the
//! general reader reads the body and names what is wrong; for what this accepts both give the
//! same [`Chat`] (the unit tests and the `translate_request` fuzz target check it).

use std::borrow::Cow;

use serde::Deserialize;

use super::request::{TEMPERATURE, TOP_P};
use crate::provider::Dialect;
use crate::translate::form::{Chat, Message, Part, Role};
use crate::translate::read;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Plain<'a> {
    #[serde(borrow)]
    model: Cow<'a, str>,
    #[serde(borrow)]
    messages: Vec<PlainMessage<'a>>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    n: Option<u64>,
    #[serde(borrow)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    backend: Option<Cow<'a, str>>,
    #[serde(borrow)]
    session_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainMessage<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: Cow<'a, str>,
}

/// `body` as a [`Chat`] when it is a plain request the door accepts as it is.
pub(in crate::translate) fn decode(body: &[u8]) -> Option<Chat> {
    let p: Plain = read::typed(body).ok()?;
    let within = |x: Option<f64>, (lo, hi): (f64, f64)| x.is_none_or(|x| (lo..=hi).contains(&x));
    let positive = |n: Option<u64>| n.is_none_or(|n| n >= 1);
    let fine = !p.model.is_empty()
        && within(p.temperature, TEMPERATURE)
        && within(p.top_p, TOP_P)
        && positive(p.max_tokens)
        && positive(p.max_completion_tokens)
        && positive(p.n);
    if !fine {
        return None;
    }
    let mut chat = Chat::new(Dialect::OpenAi, &p.model);
    chat.messages.reserve(p.messages.len());
    for m in p.messages {
        let role = match &*m.role {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => return None,
        };
        if m.content.is_empty() {
            return None;
        }
        chat.messages.push(Message {
            role,
            parts: vec![Part::Text(m.content.into_owned())],
        });
    }
    if !chat.messages.iter().any(|m| m.role == Role::User) {
        return None;
    }
    chat.max_tokens = p.max_completion_tokens.or(p.max_tokens);
    chat.temperature = p.temperature;
    chat.top_p = p.top_p;
    chat.stream = p.stream.unwrap_or(false);
    chat.include_usage = p.stream_options.and_then(|o| o.include_usage).unwrap_or(false);
    chat.n = p.n;
    chat.user = p.user.map(Cow::into_owned);
    chat.backend = p.backend.map(Cow::into_owned);
    chat.session_id = p.session_id.map(Cow::into_owned);
    Some(chat)
}
