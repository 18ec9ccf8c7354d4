//! Properties: any valid conversation encodes to every target and decodes back from each
//! client dialect; text and tool calls survive OpenAI -> internal -> Anthropic -> internal;
//! the generated conversations are what a client of the OpenAI door might send.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::Value;

use super::opts;
use crate::provider::Dialect::{Anthropic, Gemini, OpenAi};
use crate::translate::ToolResult;
use crate::translate::{decode_request, encode_request, Chat, Image, Message, Part, Role, Tool, ToolCall, ToolChoice};

/// Text with quotes, escapes, newlines and characters beyond ASCII.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.!?'\"\\\\\n\u{e9}\u{4e2d}\u{1F600}]{1,24}"
}

fn image() -> impl Strategy<Value = Part> {
    ("(png|jpeg|webp)", "[A-Za-z0-9+/]{4,32}").prop_map(|(kind, data)| {
        Part::Image(Image::Base64 {
            media_type: format!("image/{kind}"),
            data,
        })
    })
}

fn user() -> impl Strategy<Value = Message> {
    (vec(text(), 1..3), option::of(image())).prop_map(|(texts, image)| Message {
        role: Role::User,
        parts: texts.into_iter().map(Part::Text).chain(image).collect(),
    })
}

/// Tool call arguments: a JSON object as text, or nothing at all.
fn arguments() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        btree_map(
            "[a-z]{1,6}",
            prop_oneof![any::<i32>().prop_map(Value::from), text().prop_map(Value::from)],
            0..4
        )
        .prop_map(|m| Value::Object(m.into_iter().collect()).to_string()),
    ]
}

/// An assistant turn: text and/or calls, then a tool message answering each call.
fn assistant(turn: usize) -> impl Strategy<Value = Vec<Message>> {
    let call = ("tool_[0-2]", arguments(), "[a-z ]{0,12}", any::<bool>());
    (option::of(text()), vec(call, 0..3)).prop_map(move |(said, calls)| {
        let said = if said.is_none() && calls.is_empty() {
            Some("ok".to_string())
        } else {
            said
        };
        let mut parts: Vec<Part> = said.into_iter().map(Part::Text).collect();
        let mut results = Vec::new();
        for (k, (name, arguments, answer, is_error)) in calls.into_iter().enumerate() {
            let id = format!("call_{turn}_{k}");
            parts.push(Part::ToolCall(ToolCall {
                id: id.clone(),
                name: name.clone(),
                arguments,
            }));
            let result = ToolResult {
                tool_call_id: id,
                name: Some(name),
                content: vec![Part::Text(answer)],
                is_error,
            };
            results.push(Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult(result)],
            });
        }
        let mut messages = vec![Message {
            role: Role::Assistant,
            parts,
        }];
        messages.extend(results);
        messages
    })
}

fn conversation() -> impl Strategy<Value = Vec<Message>> {
    (1..4usize).prop_flat_map(|turns| {
        let pairs: Vec<_> = (0..turns).map(|t| (user(), assistant(t))).collect();
        (pairs, user()).prop_map(|(pairs, last)| {
            let mut messages: Vec<Message> = pairs
                .into_iter()
                .flat_map(|(u, a)| std::iter::once(u).chain(a))
                .collect();
            messages.push(last);
            messages
        })
    })
}

fn tools() -> impl Strategy<Value = (Vec<Tool>, Option<ToolChoice>)> {
    (0..3usize).prop_flat_map(|n| {
        let tools: Vec<Tool> = (0..n)
            .map(|i| Tool {
                name: format!("tool_{i}"),
                description: Some(format!("tool number {i}")),
                schema: serde_json::json!({"type": "object", "properties": {"q": {"type": "string"}}}),
                native: None,
            })
            .collect();
        let choice = if n == 0 {
            Just(None).boxed()
        } else {
            prop_oneof![
                Just(None),
                Just(Some(ToolChoice::Auto)),
                Just(Some(ToolChoice::None)),
                Just(Some(ToolChoice::Required)),
                Just(Some(ToolChoice::Named("tool_0".into()))),
            ]
            .boxed()
        };
        (Just(tools), choice)
    })
}

/// A request every target can take, as a client of the OpenAI door might send it.
fn chat() -> impl Strategy<Value = Chat> {
    let sampling = (
        option::of(1..100_000u64),
        option::of(0.0..=1.0f64),
        option::of(0.0..=1.0f64),
        vec(text(), 0..3),
        any::<bool>(),
        option::of("[a-z0-9-]{1,12}"),
    );
    (vec(text(), 0..3), conversation(), tools(), sampling).prop_map(|(system, messages, (tools, choice), s)| {
        let mut chat = Chat::new(OpenAi, "gpt-test");
        chat.system = system;
        chat.messages = messages;
        chat.tools = tools;
        chat.tool_choice = choice;
        (
            chat.max_tokens,
            chat.temperature,
            chat.top_p,
            chat.stop,
            chat.stream,
            chat.user,
        ) = s;
        chat
    })
}

/// The system prompt, then every text and tool call in order, whatever the message layout.
fn contents(chat: &Chat) -> (String, Vec<String>) {
    let leading = chat.messages.iter().take_while(|m| m.role == Role::System);
    let mut prompt: Vec<String> = chat.system.clone();
    prompt.extend(leading.flat_map(|m| texts(&m.parts)));
    let mut rest = Vec::new();
    for m in chat.messages.iter().skip_while(|m| m.role == Role::System) {
        for part in &m.parts {
            match part {
                Part::ToolCall(c) => {
                    let args: Value = serde_json::from_str(&c.arguments).unwrap_or(Value::Object(Default::default()));
                    rest.push(format!("call {} {} {args}", c.id, c.name));
                }
                Part::ToolResult(r) => rest.extend(texts(&r.content).into_iter().map(|t| format!("result {t}"))),
                other => rest.extend(texts(std::slice::from_ref(other))),
            }
        }
    }
    (prompt.join("\n\n"), rest)
}

fn texts(parts: &[Part]) -> Vec<String> {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) if !t.is_empty() => Some(t.clone()),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_valid_chat_encodes_everywhere_and_decodes_back(chat in chat()) {
        for target in [OpenAi, Anthropic, Gemini] {
            let out = encode_request(target, &chat, "target-model", &opts());
            prop_assert!(out.is_ok(), "{:?} refused a valid chat: {:?}", target, out.err());
        }
        for door in [OpenAi, Anthropic] {
            let body = encode_request(door, &chat, "m", &opts()).map(|e| e.body).unwrap_or_default();
            let back = decode_request(door, &body);
            prop_assert!(back.is_ok(), "{:?} door refused its own dialect: {:?}\n{}", door, back.err(),
                String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn text_survives_openai_to_anthropic(chat in chat()) {
        let openai = encode_request(OpenAi, &chat, "m", &opts()).expect("an OpenAI body");
        let first = decode_request(OpenAi, &openai.body).expect("read by the OpenAI door");
        let anthropic = encode_request(Anthropic, &first, "m", &opts()).expect("an Anthropic body");
        let second = decode_request(Anthropic, &anthropic.body).expect("read by the Anthropic door");
        prop_assert_eq!(contents(&first), contents(&second), "texts and tool calls in order");
        prop_assert_eq!(contents(&chat).1, contents(&first).1, "nothing lost on the way in");
    }
}
