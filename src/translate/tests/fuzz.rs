//! Robustness properties: arbitrary bytes, and arbitrary JSON shaped enough like requests,
//! answers and stream events to get past the first checks, never make a decoder, an encoder
//! or a stream translator panic.

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

use super::{opts, translate};
use crate::provider::Dialect::{Anthropic, Gemini, OpenAi};
use crate::translate::{decode_error, decode_request, decode_response, encode_request, StreamTranslator};

/// JSON biased towards the names and values the decoders look for.
fn any_json() -> impl Strategy<Value = Value> {
    let words = [
        "user",
        "assistant",
        "tool",
        "system",
        "text",
        "image_url",
        "tool_use",
        "tool_result",
        "function",
        "base64",
        "data:image/png;base64,AAAA",
        "https://x/y.png",
        "text_delta",
        "input_json_delta",
        "STOP",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0.0..=1.0f64).prop_map(Value::from),
        select(words.to_vec()).prop_map(Value::from),
        "[a-z]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    let known = [
        "role",
        "content",
        "type",
        "text",
        "tool_calls",
        "function",
        "name",
        "arguments",
        "id",
        "tool_call_id",
        "image_url",
        "url",
        "source",
        "input",
        "tool_use_id",
        "is_error",
        "parameters",
        "input_schema",
        "index",
        "delta",
        "choices",
        "candidates",
        "parts",
        "functionCall",
        "args",
        "usage",
        "error",
        "message",
        "content_block",
        "partial_json",
        "finish_reason",
        "finishReason",
        "stop_reason",
        "media_type",
        "data",
    ];
    prop_oneof![select(known.to_vec()).prop_map(String::from), "[a-z_]{1,8}"]
}

/// A content part or block of some kind, with plausible fields of every kind.
fn part() -> impl Strategy<Value = Value> {
    let kinds = [
        "text",
        "image_url",
        "image",
        "tool_use",
        "tool_result",
        "thinking",
        "document",
        "refusal",
        "x",
    ];
    let urls = ["data:image/png;base64,AAAA", "https://x/y.png", "ftp://x", "data:,", ""];
    (select(kinds.to_vec()), "[a-z {}\":]{0,8}", select(urls.to_vec()), any_json(), any::<bool>()).prop_map(
        |(kind, text, url, input, flag)| {
            json!({
                "type": kind, "text": text, "refusal": text, "thinking": text, "image_url": {"url": url},
                "source": {"type": if flag { "base64" } else { "url" }, "media_type": "image/png", "data": "AAAA", "url": url},
                "id": "call_1", "name": "f", "input": input, "tool_use_id": if flag { "call_1" } else { "nope" },
                "content": if flag { Value::from(text) } else { input }, "is_error": flag,
            })
        },
    )
}

fn content() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => "[a-z ]{1,8}".prop_map(Value::from),
        3 => vec(part(), 1..4).prop_map(Value::Array),
        1 => any_json(),
    ]
}

fn tool_calls() -> impl Strategy<Value = Value> {
    let call = (
        "call_[0-2]",
        "[a-z_]{0,4}",
        prop_oneof![Just("{}".to_string()), Just(String::new()), "[{}\":a-z0-9]{0,10}"],
    )
        .prop_map(
            |(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}),
        );
    prop_oneof![vec(call, 0..3).prop_map(Value::Array), any_json()]
}

fn tools() -> impl Strategy<Value = Value> {
    let tool = ("[a-z_]{0,4}", any_json(), any::<bool>()).prop_map(|(name, schema, openai)| {
        if openai {
            json!({"type": "function", "function": {"name": name, "parameters": schema}})
        } else {
            json!({"name": name, "input_schema": schema, "type": if name.len() > 2 { "web_search" } else { "custom" }})
        }
    });
    prop_oneof![vec(tool, 0..3).prop_map(Value::Array), any_json()]
}

/// Mostly a valid value, sometimes anything.
fn mostly(valid: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![4 => valid, 1 => any_json()].boxed()
}

/// A request body for the OpenAI door (or the Anthropic door): messages that look like
/// messages, the other fields mostly valid.
fn body(anthropic: bool) -> impl Strategy<Value = Value> {
    let roles = if anthropic {
        vec!["user", "user", "assistant", "assistant", "system"]
    } else {
        vec!["user", "user", "assistant", "assistant", "tool", "system", "developer"]
    };
    let message =
        (select(roles), content(), option::of(tool_calls()), "call_[0-2]").prop_map(|(role, content, calls, id)| {
            let mut m = json!({"role": role, "content": content, "tool_call_id": id});
            if let (Some(calls), Some(o)) = (calls, m.as_object_mut()) {
                o.insert("tool_calls".into(), calls);
            }
            m
        });
    let choices = [
        json!("auto"),
        json!("required"),
        json!({"type": "any"}),
        json!({"type": "tool", "name": "f"}),
    ];
    let formats = [json!({"type": "json_object"}), json!({"type": "text"})];
    let fields = (
        option::of(mostly(select(choices.to_vec()))),
        option::of(mostly((0.0..=1.0f64).prop_map(Value::from))),
        option::of(mostly((1..100u64).prop_map(Value::from))),
        option::of(mostly(select(formats.to_vec()))),
        option::of(mostly((0..3u64).prop_map(Value::from))),
        option::of(mostly(Just(json!([{"type": "text", "text": "s"}])))),
    );
    (fields, vec(message, 1..4), tools()).prop_map(|(f, messages, tools)| {
        let mut body = json!({"model": "m", "messages": messages, "tools": tools});
        let named = [
            "tool_choice",
            "temperature",
            "max_tokens",
            "response_format",
            "n",
            "system",
        ];
        for (key, value) in named.into_iter().zip([f.0, f.1, f.2, f.3, f.4, f.5]) {
            if let (Some(v), Some(o)) = (value, body.as_object_mut()) {
                o.insert(key.into(), v);
            }
        }
        body
    })
}

fn event_name() -> impl Strategy<Value = &'static str> {
    let names = [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "error",
        "ping",
        "",
    ];
    select(names.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        for door in [OpenAi, Anthropic, Gemini] {
            let _ = decode_request(door, &bytes);
            let _ = decode_response(door, &bytes);
            let _ = decode_error(door, 500, &bytes);
        }
        let _ = crate::translate::passthrough(&bytes, "m", &["backend"]);
        for (from, to) in [(Anthropic, OpenAi), (OpenAi, Anthropic), (Gemini, OpenAi), (Gemini, Anthropic)] {
            let mut t = StreamTranslator::new(from, to, super::meta(true));
            let mut out = Vec::new();
            for chunk in bytes.chunks(7) {
                t.feed(chunk, &mut out);
            }
            t.finish(&mut out);
        }
    }

    #[test]
    fn arbitrary_requests_never_panic(openai in body(false), anthropic in body(true)) {
        for (door, body) in [(OpenAi, openai), (Anthropic, anthropic)] {
            let text = body.to_string();
            if let Ok(chat) = decode_request(door, text.as_bytes()) {
                for target in [OpenAi, Anthropic, Gemini] {
                    let _ = encode_request(target, &chat, "m", &opts());
                }
            }
        }
    }

    #[test]
    fn arbitrary_answers_and_events_never_panic(events in vec((event_name(), any_json()), 0..12)) {
        let mut stream = String::new();
        for (name, data) in &events {
            stream.push_str(&format!("event: {name}\ndata: {data}\n\n"));
            let _ = decode_response(Anthropic, data.to_string().as_bytes());
            let _ = decode_response(OpenAi, data.to_string().as_bytes());
            let _ = decode_response(Gemini, data.to_string().as_bytes());
        }
        for from in [Anthropic, OpenAi, Gemini] {
            for to in [Anthropic, OpenAi, Gemini] {
                let _ = translate(from, to, true, &[stream.as_bytes()]);
            }
        }
    }
}
