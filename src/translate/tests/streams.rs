//! Streams beyond the golden transcripts: an upstream cut short, errors before any content,
//! nothing after the end, usage merged and never lost, block indices, bounded memory.

use serde_json::{json, Value};

use super::{events, fixture, translate};
use crate::provider::Dialect::{self, Anthropic, Gemini, OpenAi};
use crate::translate::{StreamMeta, StreamTranslator};

const ANTHROPIC_START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":9,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n";
const ANTHROPIC_TEXT: &str = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";
const OPENAI_TEXT: &str =
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n";
const GEMINI_TEXT: &str = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}],\"usageMetadata\":{\"promptTokenCount\":3}}\n\n";

fn out(from: Dialect, to: Dialect, input: &str) -> Vec<Value> {
    match events(&translate(from, to, true, &[input.as_bytes()])) {
        Value::Array(events) => events,
        other => panic!("events are a list: {other}"),
    }
}

fn last(events: &[Value]) -> &Value {
    events.last().expect("some output")
}

#[test]
fn an_upstream_cut_short_ends_with_an_error_not_a_clean_stop() {
    let cut = [
        (Anthropic, format!("{ANTHROPIC_START}{ANTHROPIC_TEXT}")),
        (OpenAi, OPENAI_TEXT.to_string()),
        (Gemini, GEMINI_TEXT.to_string()),
    ];
    for (from, input) in &cut {
        let anthropic = out(*from, Anthropic, input);
        assert_eq!(
            last(&anthropic)["event"],
            json!("error"),
            "{from:?} -> Anthropic: {anthropic:?}"
        );
        assert_eq!(
            last(&anthropic)["data"]["error"]["type"],
            json!("api_error"),
            "{from:?}: a 502 kind"
        );
        assert!(
            !anthropic.iter().any(|e| e["event"] == json!("message_stop")),
            "{from:?}: no clean stop"
        );
        let openai = out(*from, OpenAi, input);
        assert!(
            last(&openai)["data"]["error"]["message"].is_string(),
            "{from:?} -> OpenAI: {openai:?}"
        );
        assert!(
            !openai.iter().any(|e| e["data"] == json!("[DONE]")),
            "{from:?}: no [DONE]"
        );
    }
}

#[test]
fn a_gemini_stream_is_complete_after_its_finish_reason() {
    let done = format!(
        "{GEMINI_TEXT}data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"!\"}}]}},\"finishReason\":\"MAX_TOKENS\"}}],\"usageMetadata\":{{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}}}\n\n"
    );
    let openai = out(Gemini, OpenAi, &done);
    assert_eq!(last(&openai)["data"], json!("[DONE]"), "clean end: {openai:?}");
    let finish = &openai[openai.len() - 3]["data"]["choices"][0]["finish_reason"];
    assert_eq!(finish, &json!("length"), "MAX_TOKENS is length");
}

#[test]
fn an_error_before_any_content() {
    let input = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}\n\n";
    let openai = out(Anthropic, OpenAi, input);
    assert_eq!(openai.len(), 1, "only the error, no role chunk: {openai:?}");
    assert_eq!(
        openai[0]["data"]["error"],
        json!({"message": "slow down", "type": "rate_limit_exceeded", "param": null, "code": "rate_limit_exceeded"}),
        "rate limited, in OpenAI's words"
    );
    let gemini = "data: {\"error\":{\"code\":429,\"message\":\"quota\",\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n";
    let anthropic = out(Gemini, Anthropic, gemini);
    assert_eq!(
        anthropic,
        [
            json!({"event": "error", "data": {"type": "error", "error": {"type": "rate_limit_error", "message": "quota"}}})
        ],
        "Gemini's 429 in Anthropic's words"
    );
}

#[test]
fn nothing_is_written_after_the_end() {
    let stop = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let input = format!("{ANTHROPIC_START}{ANTHROPIC_TEXT}{stop}{ANTHROPIC_TEXT}{stop}");
    let openai = out(Anthropic, OpenAi, &input);
    assert_eq!(last(&openai)["data"], json!("[DONE]"), "ends with [DONE]");
    assert_eq!(
        openai.iter().filter(|e| e["data"] == json!("[DONE]")).count(),
        1,
        "once: {openai:?}"
    );
    let texts = openai
        .iter()
        .filter(|e| e["data"]["choices"][0]["delta"]["content"] == json!("Hi"))
        .count();
    assert_eq!(texts, 1, "the text after message_stop is not sent");
}

#[test]
fn usage_is_merged_and_never_lost() {
    // message_delta repeats the input (newer API) or omits it (older): either way all is kept.
    let deltas = [
        "{\"output_tokens\":30}",
        "{\"input_tokens\":9,\"cache_read_input_tokens\":4,\"cache_creation_input_tokens\":0,\"output_tokens\":30}",
    ];
    for usage in deltas {
        let input = format!(
            "{ANTHROPIC_START}event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\"}},\"usage\":{usage}}}\n\nevent: message_stop\ndata: {{}}\n\n"
        );
        let openai = out(Anthropic, OpenAi, &input);
        let chunk = &openai[openai.len() - 2]["data"];
        assert_eq!(
            chunk["usage"],
            json!({"prompt_tokens": 13, "completion_tokens": 30, "total_tokens": 43,
                "prompt_tokens_details": {"cached_tokens": 4}}),
            "input from message_start, output from message_delta ({usage})"
        );
        assert_eq!(chunk["choices"], json!([]), "the usage chunk has no choices");
    }
    // Some OpenAI-compatible servers put the usage on the finish chunk.
    let input = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n";
    let anthropic = out(OpenAi, Anthropic, input);
    let delta = &anthropic[anthropic.len() - 2]["data"];
    assert_eq!(
        delta["usage"]["input_tokens"],
        json!(5),
        "usage on the finish chunk: {delta}"
    );
    assert_eq!(delta["delta"]["stop_reason"], json!("end_turn"), "stop is end_turn");
}

#[test]
fn the_usage_chunk_only_when_asked() {
    let input = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let asked = events(&translate(OpenAi, OpenAi, true, &[input.as_bytes()]));
    let not_asked = events(&translate(OpenAi, OpenAi, false, &[input.as_bytes()]));
    let usage_chunks = |v: &Value| {
        v.as_array()
            .map_or(0, |a| a.iter().filter(|e| e["data"].get("usage").is_some()).count())
    };
    assert_eq!(usage_chunks(&asked), 1, "include_usage: one usage chunk");
    assert_eq!(usage_chunks(&not_asked), 0, "otherwise none");
    assert_eq!(
        not_asked[not_asked.as_array().map_or(0, Vec::len) - 1]["data"],
        json!("[DONE]"),
        "still [DONE]"
    );
}

/// An Anthropic content block: start, one delta, stop.
fn block(i: usize, start: &str, delta: &str) -> String {
    format!(
        "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{i},\"content_block\":{start}}}\n\nevent: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{i},\"delta\":{delta}}}\n\nevent: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{i}}}\n\n"
    )
}

fn text_block(i: usize, t: &str) -> String {
    block(
        i,
        r#"{"type":"text","text":""}"#,
        &format!(r#"{{"type":"text_delta","text":"{t}"}}"#),
    )
}

fn tool_block(i: usize, id: &str) -> String {
    let start = format!(r#"{{"type":"tool_use","id":"{id}","name":"f","input":{{}}}}"#);
    block(i, &start, r#"{"type":"input_json_delta","partial_json":"{}"}"#)
}

#[test]
fn text_and_tool_blocks_interleave_with_their_own_indices() {
    let input = format!(
        "{ANTHROPIC_START}{}{}{}{}event: message_stop\ndata: {{}}\n\n",
        text_block(0, "a"),
        tool_block(1, "t1"),
        text_block(2, "b"),
        tool_block(3, "t2")
    );
    let anthropic = out(Anthropic, Anthropic, &input);
    let starts: Vec<(Value, Value)> = anthropic
        .iter()
        .filter(|e| e["event"] == json!("content_block_start"))
        .map(|e| (e["data"]["index"].clone(), e["data"]["content_block"]["type"].clone()))
        .collect();
    assert_eq!(
        starts,
        [
            (json!(0), json!("text")),
            (json!(1), json!("tool_use")),
            (json!(2), json!("text")),
            (json!(3), json!("tool_use"))
        ],
        "blocks keep their order and indices"
    );
    let openai = out(Anthropic, OpenAi, &input);
    let calls: Vec<Value> = openai
        .iter()
        .filter_map(|e| {
            e["data"]["choices"][0]["delta"]["tool_calls"][0]
                .get("id")
                .map(|_| e.clone())
        })
        .map(|e| e["data"]["choices"][0]["delta"]["tool_calls"][0]["index"].clone())
        .collect();
    assert_eq!(
        calls,
        [json!(0), json!(1)],
        "OpenAI tool call indices are ordinals among the calls"
    );
    let finish = &openai[openai.len() - 3]["data"]["choices"][0]["finish_reason"];
    assert_eq!(
        finish,
        &json!("tool_calls"),
        "no stop reason from upstream, but calls were made"
    );
}

#[test]
fn memory_does_not_grow_with_the_stream() {
    let meta = StreamMeta {
        id: "i".into(),
        created: 0,
        model: "m".into(),
        include_usage: false,
    };
    let mut t = StreamTranslator::new(Anthropic, OpenAi, meta);
    let mut out = Vec::new();
    t.feed(format!("{ANTHROPIC_START}{ANTHROPIC_TEXT}").as_bytes(), &mut out);
    let delta = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"0123456789\"}}\n\n";
    let mut written = 0;
    for _ in 0..10_000 {
        out.clear();
        t.feed(delta.as_bytes(), &mut out);
        written += out.len();
        assert!(t.held_events() <= 8, "the event buffer holds one event's worth");
    }
    assert!(written > 10_000 * 10, "every delta was written through");
}

#[test]
fn a_blocked_gemini_prompt_ends_cleanly_as_filtered() {
    let input = "data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},\"usageMetadata\":{\"promptTokenCount\":7}}\n\n";
    let anthropic = out(Gemini, Anthropic, input);
    let delta = &anthropic[anthropic.len() - 2]["data"];
    assert_eq!(
        delta["delta"]["stop_reason"],
        json!("refusal"),
        "filtered: {anthropic:?}"
    );
    assert_eq!(delta["usage"]["input_tokens"], json!(7), "the prompt's usage kept");
    assert_eq!(
        last(&anthropic)["event"],
        json!("message_stop"),
        "a clean end, not an error"
    );
}

#[test]
fn gemini_out_for_completeness() {
    let input = fixture!("anthropic_stream.sse");
    let gemini = out(Anthropic, Gemini, input);
    let parts: Vec<&Value> = gemini
        .iter()
        .map(|e| &e["data"]["candidates"][0]["content"]["parts"])
        .collect();
    assert_eq!(
        parts[0],
        &json!([{"text": "Let me check "}]),
        "text as it comes: {gemini:?}"
    );
    assert_eq!(
        parts[2],
        &json!([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]),
        "a call whole, once its block stops"
    );
    let last = &last(&gemini)["data"];
    assert_eq!(last["candidates"][0]["finishReason"], json!("STOP"), "the finish");
    assert_eq!(
        last["usageMetadata"],
        json!({"promptTokenCount": 21_025, "candidatesTokenCount": 48, "cachedContentTokenCount": 20_000,
            "totalTokenCount": 21_073}),
        "usage with the finish"
    );
}
