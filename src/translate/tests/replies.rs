//! Complete answers: stop reasons both ways, usage exact in both directions (cache reads and
//! writes), upstream error bodies.

use serde_json::{json, Value};

use super::json;
use crate::provider::Dialect::{self, Anthropic, Gemini, OpenAi};
use crate::translate::{decode_error, decode_response, encode_response, Reply, ReplyMeta, StopReason, Usage};

fn meta() -> ReplyMeta {
    ReplyMeta {
        id: "r1".into(),
        created: 1,
        model: "front".into(),
    }
}

fn reply(stop: StopReason, usage: Usage) -> Reply {
    Reply {
        id: None,
        model: None,
        content: vec![crate::translate::Part::Text("hi".into())],
        stop,
        usage,
    }
}

/// The stop reason of an answer from `dialect` that stopped for `reason`.
fn stop_of(dialect: Dialect, reason: &str) -> StopReason {
    let body = match dialect {
        Anthropic => json!({"content": [], "stop_reason": reason, "usage": {}}),
        OpenAi => json!({"choices": [{"message": {"content": "x"}, "finish_reason": reason}]}),
        Gemini => json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}),
    };
    decode_response(dialect, body.to_string().as_bytes())
        .expect("an answer")
        .stop
}

#[test]
fn stop_reasons_both_ways() {
    use StopReason::*;
    let cases = [
        (Anthropic, "end_turn", Stop),
        (Anthropic, "stop_sequence", Stop),
        (Anthropic, "max_tokens", Length),
        (Anthropic, "tool_use", ToolCalls),
        (Anthropic, "refusal", ContentFilter),
        (Anthropic, "pause_turn", Other),
        (OpenAi, "stop", Stop),
        (OpenAi, "length", Length),
        (OpenAi, "tool_calls", ToolCalls),
        (OpenAi, "content_filter", ContentFilter),
        (Gemini, "STOP", Stop),
        (Gemini, "MAX_TOKENS", Length),
        (Gemini, "SAFETY", ContentFilter),
        (Gemini, "RECITATION", ContentFilter),
        (Gemini, "MALFORMED_FUNCTION_CALL", Other),
    ];
    for (dialect, reason, want) in cases {
        assert_eq!(stop_of(dialect, reason), want, "{dialect:?} {reason} is {want:?}");
    }
    let back = [
        (Stop, "stop", "end_turn"),
        (Length, "length", "max_tokens"),
        (ToolCalls, "tool_calls", "tool_use"),
        (ContentFilter, "content_filter", "refusal"),
        (Other, "stop", "end_turn"),
    ];
    for (stop, openai, anthropic) in back {
        let o = json(&encode_response(OpenAi, &reply(stop, Usage::default()), &meta()));
        assert_eq!(o["choices"][0]["finish_reason"], json!(openai), "{stop:?} for OpenAI");
        let a = json(&encode_response(Anthropic, &reply(stop, Usage::default()), &meta()));
        assert_eq!(a["stop_reason"], json!(anthropic), "{stop:?} for Anthropic");
    }
}

#[test]
fn gemini_function_calls_stop_for_tool_calls() {
    let body = json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
        "finishReason": "STOP"}]});
    let reply = decode_response(Gemini, body.to_string().as_bytes()).expect("an answer");
    assert_eq!(reply.stop, StopReason::ToolCalls, "STOP after a call means: run it");
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}});
    let reply = decode_response(Gemini, blocked.to_string().as_bytes()).expect("an answer");
    assert_eq!(reply.stop, StopReason::ContentFilter, "a blocked prompt");
    assert_eq!(reply.usage.input, 5, "its usage kept");
}

fn usage_of(dialect: Dialect, body: Value) -> Usage {
    decode_response(dialect, body.to_string().as_bytes())
        .expect("an answer")
        .usage
}

#[test]
fn usage_from_each_dialect_counts_all_input() {
    let anthropic = json!({"content": [], "stop_reason": "end_turn", "usage": {"input_tokens": 10,
        "cache_read_input_tokens": 300, "cache_creation_input_tokens": 50, "output_tokens": 7}});
    let want = Usage {
        input: 360,
        cache_read: 300,
        cache_write: 50,
        output: 7,
    };
    assert_eq!(
        usage_of(Anthropic, anthropic),
        want,
        "Anthropic: input + cache reads + cache writes"
    );
    let openai = json!({"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 360, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 300}}});
    let want = Usage { cache_write: 0, ..want };
    assert_eq!(
        usage_of(OpenAi, openai),
        want,
        "OpenAI: prompt_tokens already counts the cache"
    );
    let gemini = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 360, "cachedContentTokenCount": 300, "candidatesTokenCount": 4,
        "thoughtsTokenCount": 3}});
    assert_eq!(
        usage_of(Gemini, gemini),
        want,
        "Gemini: output counts the thinking tokens"
    );
}

#[test]
fn usage_for_each_client_is_exact() {
    let usage = Usage {
        input: 32_120,
        cache_read: 30_000,
        cache_write: 2_000,
        output: 85,
    };
    let openai = json(&encode_response(OpenAi, &reply(StopReason::Stop, usage), &meta()));
    assert_eq!(
        openai["usage"],
        json!({"prompt_tokens": 32_120, "completion_tokens": 85, "total_tokens": 32_205,
            "prompt_tokens_details": {"cached_tokens": 30_000, "cache_write_tokens": 2_000}}),
        "OpenAI: prompt_tokens is all input, cached_tokens the reads"
    );
    let anthropic = json(&encode_response(Anthropic, &reply(StopReason::Stop, usage), &meta()));
    assert_eq!(
        anthropic["usage"],
        json!({"input_tokens": 120, "cache_read_input_tokens": 30_000, "cache_creation_input_tokens": 2_000,
            "output_tokens": 85}),
        "Anthropic: input_tokens leaves out cache reads and writes"
    );
    // And back: each client body read as an upstream answer gives the same counts.
    assert_eq!(
        usage_of(OpenAi, openai),
        usage,
        "OpenAI body round trip (cache writes as OpenRouter writes them)"
    );
    assert_eq!(usage_of(Anthropic, anthropic), usage, "Anthropic body round trip");
    let no_cache = Usage {
        input: 40,
        cache_read: 0,
        cache_write: 0,
        output: 2,
    };
    let plain = json(&encode_response(OpenAi, &reply(StopReason::Stop, no_cache), &meta()));
    assert_eq!(
        plain["usage"]["prompt_tokens_details"],
        json!({"cached_tokens": 0}),
        "no cache_write_tokens when there are none"
    );
}

#[test]
fn answers_that_are_not_answers() {
    for d in [Anthropic, OpenAi, Gemini] {
        assert!(decode_response(d, b"<html>").is_err(), "{d:?}: not JSON");
        assert!(decode_response(d, b"{}").is_err(), "{d:?}: no content");
        let error = br#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#;
        assert!(decode_response(d, error).is_err(), "{d:?}: an error body");
    }
    let empty = json!({"choices": [{"message": {"content": null}, "finish_reason": "stop"}]});
    let reply = decode_response(OpenAi, empty.to_string().as_bytes()).expect("an empty answer is an answer");
    assert!(reply.content.is_empty(), "no parts: {:?}", reply.content);
    let openai = json(&encode_response(OpenAi, &reply, &meta()));
    assert_eq!(
        openai["choices"][0]["message"]["content"],
        json!(""),
        "empty text, not null, without calls"
    );
}

#[test]
fn an_openai_refusal_is_a_refusal() {
    let body = json!({"choices": [{"message": {"content": null, "refusal": "I can't help with that."},
        "finish_reason": "stop"}]});
    let reply = decode_response(OpenAi, body.to_string().as_bytes()).expect("an answer");
    let anthropic = json(&encode_response(Anthropic, &reply, &meta()));
    assert_eq!(anthropic["stop_reason"], json!("refusal"), "declined");
    assert_eq!(
        anthropic["content"][0]["text"],
        json!("I can't help with that."),
        "its words kept"
    );
}

#[test]
fn cut_off_tool_arguments_are_kept() {
    let body = json!({"choices": [{"message": {"content": null, "tool_calls": [{"id": "c", "type": "function",
        "function": {"name": "f", "arguments": "{\"path\": \"/tm"}}]}, "finish_reason": "length"}]});
    let reply = decode_response(OpenAi, body.to_string().as_bytes()).expect("an answer");
    let anthropic = json(&encode_response(Anthropic, &reply, &meta()));
    assert_eq!(
        anthropic["content"][0]["input"],
        json!({"_raw_arguments": "{\"path\": \"/tm"}),
        "arguments that are not an object are kept whole"
    );
}

/// (dialect, status, body, kind read, message read)
const ERROR_BODIES: [(Dialect, u16, &[u8], &str, &str); 6] = [
    (
        Anthropic,
        529,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        "overloaded_error",
        "Overloaded",
    ),
    (
        OpenAi,
        429,
        br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
        "rate_limit_exceeded",
        "Rate limit reached",
    ),
    (
        Gemini,
        400,
        br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#,
        "INVALID_ARGUMENT",
        "API key not valid.",
    ),
    (
        Gemini,
        503,
        br#"[{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}]"#,
        "UNAVAILABLE",
        "overloaded",
    ),
    (
        OpenAi,
        500,
        br#"{"error":"upstream exploded"}"#,
        "api_error",
        "upstream exploded",
    ),
    (
        Anthropic,
        502,
        b"<html>Bad\x07 Gateway\r\n</html>",
        "api_error",
        "<html>Bad Gateway</html>",
    ),
];

#[test]
fn upstream_error_bodies() {
    for (dialect, status, body, kind, message) in ERROR_BODIES {
        let e = decode_error(dialect, status, body);
        assert_eq!(
            (e.status, e.kind.as_str(), e.message.as_str()),
            (status, kind, message),
            "{dialect:?} {status}"
        );
    }
    let empty = decode_error(OpenAi, 504, b"");
    assert_eq!(empty.kind, "timeout_error", "a kind from the status");
    assert!(
        empty.message.contains("504"),
        "an empty body still says something: {}",
        empty.message
    );
    let long = "é".repeat(400);
    let cut = decode_error(OpenAi, 500, long.as_bytes()).message;
    assert!(
        cut.len() <= 500 && cut.len() >= 498,
        "cut to 500 bytes on a character boundary: {}",
        cut.len()
    );
}

#[test]
fn gemini_answers_for_completeness() {
    let usage = Usage {
        input: 10,
        cache_read: 4,
        cache_write: 0,
        output: 3,
    };
    let gemini = json(&encode_response(Gemini, &reply(StopReason::Length, usage), &meta()));
    assert_eq!(gemini["candidates"][0]["finishReason"], json!("MAX_TOKENS"), "length");
    assert_eq!(
        gemini["candidates"][0]["content"]["parts"],
        json!([{"text": "hi"}]),
        "the text"
    );
    assert_eq!(usage_of(Gemini, gemini), usage, "its usage reads back the same");
}
