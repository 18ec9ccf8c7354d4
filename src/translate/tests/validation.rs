//! The front door's checks: every refusal names its param, as the original gateway did.

use serde_json::{json, Value};

use crate::provider::Dialect::{self, Anthropic, OpenAi};
use crate::translate::decode_request;

/// A valid request of the dialect, to be broken one field at a time.
fn base(dialect: Dialect) -> Value {
    match dialect {
        Anthropic => json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
        _ => json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    }
}

fn with(dialect: Dialect, key: &str, value: Value) -> Value {
    let mut body = base(dialect);
    body[key] = value;
    body
}

/// The param a refused body names.
fn refused(dialect: Dialect, body: &[u8]) -> String {
    match decode_request(dialect, body) {
        Err(e) => e.param,
        Ok(chat) => panic!("accepted {}: {chat:?}", String::from_utf8_lossy(body)),
    }
}

fn check(dialect: Dialect, body: Value, param: &str) {
    let got = refused(dialect, body.to_string().as_bytes());
    assert_eq!(got, param, "{dialect:?} refuses {body} naming the param");
}

#[test]
fn the_base_requests_are_valid() {
    for d in [OpenAi, Anthropic] {
        let body = base(d).to_string();
        assert!(decode_request(d, body.as_bytes()).is_ok(), "{d:?}: {body}");
    }
}

#[test]
fn body_shape() {
    for d in [OpenAi, Anthropic] {
        assert_eq!(refused(d, b"{\"model\": "), "", "{d:?}: malformed JSON names the body");
        assert_eq!(refused(d, b"[1]"), "", "{d:?}: not an object");
        assert_eq!(refused(d, b""), "", "{d:?}: empty body");
        check(d, json!({"messages": [{"role": "user", "content": "hi"}]}), "model");
        check(d, with(d, "model", json!(5)), "model");
    }
}

#[test]
fn messages() {
    for d in [OpenAi, Anthropic] {
        check(d, json!({"model": "m"}), "messages");
        check(d, with(d, "messages", json!([])), "messages");
        check(d, with(d, "messages", json!("hi")), "messages");
        check(
            d,
            with(d, "messages", json!([{"role": "assistant", "content": "hello"}])),
            "messages",
        );
        let unknown = json!([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]);
        check(d, with(d, "messages", unknown), "messages[1].role");
        check(d, with(d, "messages", json!([{"content": "a"}])), "messages[0].role");
        check(
            d,
            with(d, "messages", json!([{"role": "user", "content": ""}])),
            "messages[0].content",
        );
        check(
            d,
            with(d, "messages", json!([{"role": "user", "content": []}])),
            "messages[0].content",
        );
        check(d, with(d, "messages", json!([{"role": "user"}])), "messages[0].content");
        check(d, with(d, "messages", json!([1])), "messages[0]");
        let empty_assistant = json!([{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}]);
        check(d, with(d, "messages", empty_assistant), "messages[1].content");
    }
    // Roles only the other dialect has.
    check(
        Anthropic,
        with(Anthropic, "messages", json!([{"role": "tool", "content": "x"}])),
        "messages[0].role",
    );
    let developer = json!([{"role": "developer", "content": "x"}, {"role": "user", "content": "y"}]);
    assert!(
        decode_request(OpenAi, with(OpenAi, "messages", developer).to_string().as_bytes()).is_ok(),
        "developer"
    );
}

#[test]
fn sampling_ranges() {
    check(OpenAi, with(OpenAi, "temperature", json!(2.5)), "temperature");
    check(OpenAi, with(OpenAi, "temperature", json!(-0.1)), "temperature");
    check(OpenAi, with(OpenAi, "temperature", json!("warm")), "temperature");
    check(Anthropic, with(Anthropic, "temperature", json!(1.5)), "temperature");
    let warm = with(OpenAi, "temperature", json!(2)).to_string();
    assert!(decode_request(OpenAi, warm.as_bytes()).is_ok(), "OpenAI allows up to 2");
    for d in [OpenAi, Anthropic] {
        check(d, with(d, "top_p", json!(1.01)), "top_p");
        check(d, with(d, "top_p", json!(-1)), "top_p");
        check(d, with(d, "max_tokens", json!(0)), "max_tokens");
        check(d, with(d, "max_tokens", json!(-5)), "max_tokens");
        check(d, with(d, "max_tokens", json!(2.5)), "max_tokens");
        check(d, with(d, "max_tokens", json!("10")), "max_tokens");
        check(d, with(d, "stream", json!("yes")), "stream");
    }
    check(
        OpenAi,
        with(OpenAi, "max_completion_tokens", json!(0)),
        "max_completion_tokens",
    );
    check(OpenAi, with(OpenAi, "n", json!(0)), "n");
    check(OpenAi, with(OpenAi, "stop", json!(5)), "stop");
    check(OpenAi, with(OpenAi, "stop", json!(["a", 5])), "stop[1]");
    check(
        Anthropic,
        with(Anthropic, "stop_sequences", json!([true])),
        "stop_sequences[0]",
    );
    check(Anthropic, with(Anthropic, "top_k", json!(-1)), "top_k");
    check(
        OpenAi,
        with(OpenAi, "stream_options", json!({"include_usage": "y"})),
        "stream_options.include_usage",
    );
}

#[test]
fn tools() {
    let many_openai: Vec<Value> = (0..129)
        .map(|i| json!({"type": "function", "function": {"name": format!("f{i}")}}))
        .collect();
    check(OpenAi, with(OpenAi, "tools", json!(many_openai)), "tools");
    let many_anthropic: Vec<Value> = (0..129)
        .map(|i| json!({"name": format!("f{i}"), "input_schema": {}}))
        .collect();
    check(Anthropic, with(Anthropic, "tools", json!(many_anthropic)), "tools");
    let max = with(OpenAi, "tools", json!(many_openai[..128])).to_string();
    assert!(decode_request(OpenAi, max.as_bytes()).is_ok(), "128 tools are allowed");

    let nameless = json!([{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"description": "x"}}]);
    check(OpenAi, with(OpenAi, "tools", nameless), "tools[1].function.name");
    check(
        OpenAi,
        with(OpenAi, "tools", json!([{"type": "function"}])),
        "tools[0].function.name",
    );
    check(
        OpenAi,
        with(OpenAi, "tools", json!([{"type": "function", "function": {"name": ""}}])),
        "tools[0].function.name",
    );
    check(
        Anthropic,
        with(Anthropic, "tools", json!([{"input_schema": {}}])),
        "tools[0].name",
    );
    check(OpenAi, with(OpenAi, "tool_choice", json!("sometimes")), "tool_choice");
    check(
        OpenAi,
        with(OpenAi, "tool_choice", json!({"type": "function"})),
        "tool_choice.function.name",
    );
    check(
        Anthropic,
        with(Anthropic, "tool_choice", json!({"type": "maybe"})),
        "tool_choice.type",
    );
    check(
        Anthropic,
        with(Anthropic, "tool_choice", json!({"type": "tool"})),
        "tool_choice.name",
    );
}

#[test]
fn tool_calls_and_results() {
    let no_id = json!([{"role": "user", "content": "a"},
        {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]);
    check(OpenAi, with(OpenAi, "messages", no_id), "messages[1].tool_calls[0].id");
    let no_name = json!([{"role": "user", "content": "a"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"arguments": "{}"}}]}]);
    check(
        OpenAi,
        with(OpenAi, "messages", no_name),
        "messages[1].tool_calls[0].function.name",
    );
    let no_call_id = json!([{"role": "user", "content": "a"}, {"role": "tool", "content": "r"}]);
    check(OpenAi, with(OpenAi, "messages", no_call_id), "messages[1].tool_call_id");
    let image_in_tool = json!([{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "c",
        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]);
    check(
        OpenAi,
        with(OpenAi, "messages", image_in_tool),
        "messages[1].content[0]",
    );
    let no_use_id = json!([{"role": "user", "content": [{"type": "tool_result", "content": "r"}]}]);
    check(
        Anthropic,
        with(Anthropic, "messages", no_use_id),
        "messages[0].content[0].tool_use_id",
    );
    let no_tool_name = json!([{"role": "user", "content": "a"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]}]);
    check(
        Anthropic,
        with(Anthropic, "messages", no_tool_name),
        "messages[1].content[0].name",
    );
}

#[test]
fn content_parts() {
    let bad_url = json!([{"role": "user", "content": [{"type": "text", "text": "a"},
        {"type": "image_url", "image_url": {"url": "ftp://host/cat.png"}}]}]);
    check(
        OpenAi,
        with(OpenAi, "messages", bad_url),
        "messages[0].content[1].image_url.url",
    );
    let bad_data =
        json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]);
    check(
        OpenAi,
        with(OpenAi, "messages", bad_data),
        "messages[0].content[0].image_url.url",
    );
    let untyped = json!([{"role": "user", "content": [{"text": "a"}]}]);
    check(
        OpenAi,
        with(OpenAi, "messages", untyped.clone()),
        "messages[0].content[0].type",
    );
    check(
        Anthropic,
        with(Anthropic, "messages", untyped),
        "messages[0].content[0].type",
    );
    let no_source = json!([{"role": "user", "content": [{"type": "image"}]}]);
    check(
        Anthropic,
        with(Anthropic, "messages", no_source),
        "messages[0].content[0].source",
    );
    check(
        Anthropic,
        with(Anthropic, "system", json!([{"type": "image"}])),
        "system[0].type",
    );
    check(Anthropic, with(Anthropic, "system", json!(7)), "system");
    check(
        OpenAi,
        with(OpenAi, "response_format", json!({"type": "yaml"})),
        "response_format.type",
    );
    let schemaless = json!({"type": "json_schema"});
    check(
        OpenAi,
        with(OpenAi, "response_format", schemaless),
        "response_format.json_schema",
    );
    check(
        Anthropic,
        with(Anthropic, "metadata", json!({"user_id": 5})),
        "metadata.user_id",
    );
    check(OpenAi, with(OpenAi, "backend", json!(["a"])), "backend");
}
