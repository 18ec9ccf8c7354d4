//! Tools across dialects: tool choice tables, tool call arguments, tool results matched by
//! name for Gemini, and Gemini's JSON output with schemas cut down to what it accepts.

use serde_json::json;

use super::requests::{encoded, refused, with};
use crate::provider::Dialect::{Anthropic, Gemini, OpenAi};

#[test]
fn tool_choice_in_each_dialect() {
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}}}}]);
    let cases = [
        (json!("auto"), json!({"type": "auto"}), json!({"mode": "AUTO"})),
        (json!("none"), json!({"type": "none"}), json!({"mode": "NONE"})),
        (json!("required"), json!({"type": "any"}), json!({"mode": "ANY"})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
            json!({"mode": "ANY", "allowedFunctionNames": ["f"]}),
        ),
    ];
    for (openai, anthropic, gemini) in cases {
        let mut body = with(OpenAi, "tools", tools.clone());
        body["tool_choice"] = openai.clone();
        assert_eq!(
            encoded(OpenAi, body.clone(), Anthropic)["tool_choice"],
            anthropic,
            "{openai} for Anthropic"
        );
        let config = &encoded(OpenAi, body, Gemini)["toolConfig"]["functionCallingConfig"];
        assert_eq!(config, &gemini, "{openai} for Gemini");
    }
    let mut body = with(OpenAi, "tools", tools.clone());
    body["parallel_tool_calls"] = json!(false);
    let choice = &encoded(OpenAi, body, Anthropic)["tool_choice"];
    assert_eq!(
        choice,
        &json!({"type": "auto", "disable_parallel_tool_use": true}),
        "one call at a time"
    );

    let mut back = with(
        Anthropic,
        "tools",
        json!([{"name": "f", "input_schema": {"type": "object"}}]),
    );
    back["tool_choice"] = json!({"type": "any", "disable_parallel_tool_use": true});
    let openai = encoded(Anthropic, back, OpenAi);
    assert_eq!(openai["tool_choice"], json!("required"), "any is required");
    assert_eq!(
        openai["parallel_tool_calls"],
        json!(false),
        "disable_parallel_tool_use is parallel_tool_calls false"
    );
    let no_tools = encoded(OpenAi, with(OpenAi, "tool_choice", json!("none")), Anthropic);
    assert!(
        no_tools.get("tool_choice").is_none(),
        "no tool choice without tools: {no_tools}"
    );
}

#[test]
fn tool_arguments() {
    let call = |arguments: &str| {
        json!([{"role": "user", "content": "a"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": "c", "content": "done"}])
    };
    let body = encoded(OpenAi, with(OpenAi, "messages", call("")), Anthropic);
    assert_eq!(
        body["messages"][1]["content"][0]["input"],
        json!({}),
        "empty arguments are {{}}"
    );
    let body = encoded(OpenAi, with(OpenAi, "messages", call("  ")), Gemini);
    assert_eq!(
        body["contents"][1]["parts"][0]["functionCall"]["args"],
        json!({}),
        "for Gemini too"
    );
    for to in [Anthropic, Gemini] {
        let param = "messages[1].tool_calls[0].function.arguments";
        refused(OpenAi, with(OpenAi, "messages", call("{\"a\":")), to, param);
    }
    let openai = encoded(OpenAi, with(OpenAi, "messages", call("")), OpenAi);
    assert_eq!(
        openai["messages"][1]["tool_calls"][0]["function"]["arguments"],
        json!("{}"),
        "OpenAI too"
    );
}

#[test]
fn gemini_answers_tool_calls_by_name() {
    let orphan = json!([{"role": "user", "content": "a"}, {"role": "tool", "tool_call_id": "nope", "content": "r"}]);
    refused(
        OpenAi,
        with(OpenAi, "messages", orphan),
        Gemini,
        "messages[1].tool_call_id",
    );
    let anthropic =
        json!([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "r"}]}]);
    refused(
        Anthropic,
        with(Anthropic, "messages", anthropic),
        Gemini,
        "messages[0].content[0].tool_use_id",
    );
    let with_image = json!([
        {"role": "user", "content": "look"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "screenshot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "text", "text": "[1, 2]"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        ]}]},
    ]);
    let body = encoded(Anthropic, with(Anthropic, "messages", with_image), Gemini);
    assert_eq!(
        body["contents"][2]["parts"],
        json!([
            {"functionResponse": {"name": "screenshot", "response": {"content": "[1, 2]"}}},
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
        ]),
        "a non-object result is wrapped; the image follows the response"
    );
}

#[test]
fn gemini_json_output_and_schema_cleaning() {
    let format = json!({"type": "json_schema", "json_schema": {"name": "out", "strict": true, "schema": {
        "$schema": "x", "type": "object", "additionalProperties": false,
        "properties": {"a": {"type": "object", "additionalProperties": {"type": "string"}, "properties": {"b": {"const": "k"}}}},
    }}});
    let body = encoded(OpenAi, with(OpenAi, "response_format", format), Gemini);
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json", "responseSchema": {
            "type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"enum": ["k"]}}}},
        }}),
        "JSON output with a schema Gemini accepts, cleaned at every depth"
    );
    let json_object = encoded(
        OpenAi,
        with(OpenAi, "response_format", json!({"type": "json_object"})),
        Gemini,
    );
    assert_eq!(
        json_object["generationConfig"],
        json!({"responseMimeType": "application/json"}),
        "json_object"
    );
}

#[test]
fn tool_ids_anthropic_refuses_are_mapped_the_same_way_on_both_sides() {
    let messages = json!([
        {"role": "user", "content": "a"},
        {"role": "assistant", "tool_calls": [{"id": "functions.get_weather:0", "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny"},
    ]);
    let body = encoded(OpenAi, with(OpenAi, "messages", messages), Anthropic);
    assert_eq!(
        body["messages"][1]["content"][0]["id"],
        json!("functions_get_weather_0"),
        "the call's id"
    );
    assert_eq!(
        body["messages"][2]["content"][0]["tool_use_id"],
        json!("functions_get_weather_0"),
        "its result's"
    );
}
