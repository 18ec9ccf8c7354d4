//! Request encoding: what each target cannot honour is refused naming the param; the facts
//! each target needs (max_tokens, roles, images, door fields, system messages). Tools: tools.rs.

use serde_json::{json, Value};

use super::{json, opts};
use crate::provider::Dialect::{self, Anthropic, Gemini, OpenAi};
use crate::translate::{decode_request, encode_request, EncodeOpts, Encoded, Invalid};

pub(super) fn decode(from: Dialect, body: Value) -> crate::translate::Chat {
    decode_request(from, body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{from:?} accepts {body}: {e}"))
}

pub(super) fn encode(from: Dialect, body: Value, to: Dialect) -> Result<Encoded, Invalid> {
    encode_request(to, &decode(from, body), "target-model", &opts())
}

pub(super) fn encoded(from: Dialect, body: Value, to: Dialect) -> Value {
    match encode(from, body.clone(), to) {
        Ok(out) => json(&out.body),
        Err(e) => panic!("{from:?} -> {to:?} refused {body}: {e}"),
    }
}

/// `body` with `key` set, on the dialect's minimal request.
pub(super) fn with(from: Dialect, key: &str, value: Value) -> Value {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    body[key] = value;
    if from == Anthropic {
        body["max_tokens"] = json!(10);
    }
    body
}

pub(super) fn refused(from: Dialect, body: Value, to: Dialect, param: &str) {
    match encode(from, body.clone(), to) {
        Err(e) => assert_eq!(
            e.param, param,
            "{from:?} -> {to:?} refuses {body} naming the param ({e})"
        ),
        Ok(out) => panic!(
            "{from:?} -> {to:?} accepted {body}: {}",
            String::from_utf8_lossy(&out.body)
        ),
    }
}

#[test]
fn what_a_target_cannot_honour_from_the_openai_door_is_refused_by_name() {
    for to in [Anthropic, Gemini] {
        refused(OpenAi, with(OpenAi, "n", json!(2)), to, "n");
        refused(OpenAi, with(OpenAi, "logprobs", json!(true)), to, "logprobs");
        refused(OpenAi, with(OpenAi, "top_logprobs", json!(3)), to, "top_logprobs");
        refused(OpenAi, with(OpenAi, "seed", json!(7)), to, "seed");
        refused(
            OpenAi,
            with(OpenAi, "presence_penalty", json!(0.5)),
            to,
            "presence_penalty",
        );
        let audio = json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]);
        refused(OpenAi, with(OpenAi, "messages", audio), to, "messages[0].content[0]");
    }
    let json_mode = json!({"type": "json_object"});
    refused(
        OpenAi,
        with(OpenAi, "response_format", json_mode.clone()),
        Anthropic,
        "response_format",
    );
    refused(
        OpenAi,
        with(OpenAi, "temperature", json!(1.5)),
        Anthropic,
        "temperature",
    );
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let mut one_call = with(OpenAi, "tools", tools);
    one_call["parallel_tool_calls"] = json!(false);
    refused(OpenAi, one_call, Gemini, "parallel_tool_calls");
}

#[test]
fn what_a_target_cannot_honour_from_the_anthropic_door_is_refused_by_name() {
    refused(Anthropic, with(Anthropic, "top_k", json!(5)), OpenAi, "top_k");
    refused(
        Anthropic,
        with(Anthropic, "mcp_servers", json!([{"type": "url"}])),
        OpenAi,
        "mcp_servers",
    );
    let server_tool = json!([{"name": "f", "input_schema": {}}, {"type": "web_search_20250305", "name": "web_search"}]);
    refused(
        Anthropic,
        with(Anthropic, "tools", server_tool.clone()),
        OpenAi,
        "tools[1]",
    );
    refused(Anthropic, with(Anthropic, "tools", server_tool), Gemini, "tools[1]");
    let document = json!([{"role": "user", "content": [{"type": "text", "text": "read"},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}}]}]);
    refused(
        Anthropic,
        with(Anthropic, "messages", document.clone()),
        OpenAi,
        "messages[0].content[1]",
    );
    refused(
        Anthropic,
        with(Anthropic, "messages", document),
        Gemini,
        "messages[0].content[1]",
    );
}

#[test]
fn image_urls_pass_where_accepted_and_are_never_fetched_for_gemini() {
    let url = "https://example.com/cat.png";
    let openai = json!([{"role": "user", "content": [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": url}}]}]);
    refused(
        OpenAi,
        with(OpenAi, "messages", openai.clone()),
        Gemini,
        "messages[0].content[1]",
    );
    let anthropic = encoded(OpenAi, with(OpenAi, "messages", openai), Anthropic);
    assert_eq!(
        anthropic["messages"][0]["content"][1],
        json!({"type": "image", "source": {"type": "url", "url": url}}),
        "a URL source for Anthropic"
    );
    let blocks = json!([{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": url}}]}]);
    refused(
        Anthropic,
        with(Anthropic, "messages", blocks.clone()),
        Gemini,
        "messages[0].content[0]",
    );
    let openai = encoded(Anthropic, with(Anthropic, "messages", blocks), OpenAi);
    assert_eq!(
        openai["messages"][0]["content"],
        json!([{"type": "image_url", "image_url": {"url": url}}]),
        "an image_url part for OpenAI"
    );
}

#[test]
fn door_fields_never_go_upstream_and_extras_only_to_the_cli() {
    let mut body = with(OpenAi, "backend", json!("pool-a"));
    body["session_id"] = json!("s-1");
    body["allowed_tools"] = json!(["Bash", "Read"]);
    body["max_turns"] = json!(3);
    let chat = decode(OpenAi, body);
    assert_eq!(chat.backend.as_deref(), Some("pool-a"), "backend read");
    assert_eq!(chat.session_id.as_deref(), Some("s-1"), "session id read");
    assert_eq!(chat.extra.len(), 2, "extras kept: {:?}", chat.extra);
    for to in [Anthropic, OpenAi, Gemini] {
        let out = encode_request(to, &chat, "t", &opts()).expect("encodes");
        let body = json(&out.body);
        for key in ["backend", "session_id", "allowed_tools", "max_turns"] {
            assert!(body.get(key).is_none(), "{to:?}: {key} not sent: {body}");
        }
        assert_eq!(
            out.dropped,
            ["allowed_tools", "max_turns"],
            "{to:?}: extras noted as dropped"
        );
    }
    let cli = EncodeOpts {
        keep_extra: true,
        ..opts()
    };
    let out = encode_request(Anthropic, &chat, "t", &cli).expect("encodes");
    let body = json(&out.body);
    assert_eq!(
        body["allowed_tools"],
        json!(["Bash", "Read"]),
        "extras written for the CLI"
    );
    assert_eq!(body["max_turns"], json!(3), "extras written for the CLI");
    assert!(
        body.get("backend").is_none() && body.get("session_id").is_none(),
        "door fields still not sent"
    );
    assert!(out.dropped.is_empty(), "nothing dropped: {:?}", out.dropped);
}

#[test]
fn anthropic_gets_max_tokens_and_alternating_roles() {
    let body = encoded(OpenAi, with(OpenAi, "stream", json!(false)), Anthropic);
    assert_eq!(body["max_tokens"], json!(4096), "the default when the client set none");
    let messages = json!([
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": "interjection"},
        {"role": "tool", "tool_call_id": "c1", "content": "r1"},
    ]);
    let body = encoded(OpenAi, with(OpenAi, "messages", messages), Anthropic);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "r1"},
                {"type": "text", "text": "interjection"},
            ]},
        ]),
        "same-role neighbours merged, tool results first in their message"
    );
}

#[test]
fn the_source_dialects_own_members_stay_with_it() {
    let body = encoded(OpenAi, with(OpenAi, "seed", json!(7)), OpenAi);
    assert_eq!(body["seed"], json!(7), "an OpenAI member kept for an OpenAI target");
    let out = encode(
        Anthropic,
        with(Anthropic, "thinking", json!({"type": "enabled", "budget_tokens": 1024})),
        Anthropic,
    )
    .expect("encodes");
    assert_eq!(
        json(&out.body)["thinking"]["budget_tokens"],
        json!(1024),
        "kept for Anthropic"
    );
    let out = encode(
        Anthropic,
        with(Anthropic, "thinking", json!({"type": "enabled"})),
        OpenAi,
    )
    .expect("encodes");
    assert_eq!(out.dropped, ["thinking"], "dropped for another target, and noted");
    let out = encode(OpenAi, with(OpenAi, "stream", json!(true)), OpenAi).expect("encodes");
    assert_eq!(
        json(&out.body)["stream_options"],
        json!({"include_usage": true}),
        "a stream always asks for usage"
    );
}

#[test]
fn system_messages_in_the_conversation() {
    let messages = json!([{"role": "system", "content": "first"}, {"role": "user", "content": "a"},
        {"role": "system", "content": "later"}, {"role": "user", "content": "b"}]);
    let out = encode(OpenAi, with(OpenAi, "messages", messages.clone()), Anthropic).expect("encodes");
    let body = json(&out.body);
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "first"}, {"type": "text", "text": "later"}]),
        "folded"
    );
    assert_eq!(out.dropped, ["system_message_position"], "the fold is noted");
    let openai = encoded(OpenAi, with(OpenAi, "messages", messages), OpenAi);
    assert_eq!(
        openai["messages"][2],
        json!({"role": "system", "content": "later"}),
        "in place for OpenAI"
    );
}

#[test]
fn gemini_model_names_cannot_change_the_path() {
    let chat = decode(OpenAi, with(OpenAi, "stream", json!(false)));
    let out = encode_request(Gemini, &chat, "models/gemini-2.5-flash", &opts()).expect("a models/ prefix is fine");
    assert_eq!(
        out.path, "/v1beta/models/gemini-2.5-flash:generateContent",
        "non-streaming path"
    );
    for bad in ["../admin", "x?key=1", "a/b", ""] {
        let e = encode_request(Gemini, &chat, bad, &opts()).expect_err("refused");
        assert_eq!(e.param, "model", "{bad:?} refused naming the model");
    }
}
