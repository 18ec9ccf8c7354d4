//! Tests of the stream-json translation on the recorded samples of Claude Code 2.1.197
//! (tests/fixtures/claude-cli), read in whole and in split reads.

use serde_json::{json, Value};

use super::*;
use crate::claude_cli::testkit::{fixture, names, ok_exit, streamed_text, success, translate};

const ONE_TURN: [&str; 6] = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
];

#[test]
fn run2_streams_whole_text_blocks_and_final_usage_with_cost() {
    let (events, fin) = translate(&fixture("run2.stream.jsonl"), true, 4096, &ok_exit());
    assert_eq!(names(&events), ONE_TURN, "one text block");
    let start = &events[0].1["message"];
    assert_eq!(start["model"], "claude-opus-4-8", "the API's model name");
    assert!(
        start["id"].as_str().is_some_and(|id| id.starts_with("msg_")),
        "msg_ id: {start}"
    );
    assert_eq!(streamed_text(&events), "Hello from the fake provider.", "the text");
    let delta = &events[4].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn", "stop reason");
    let want = json!({ "input_tokens": 11, "output_tokens": 5, "cache_read_input_tokens": 3,
        "cache_creation_input_tokens": 0, "cost_usd": 0.0001815 });
    assert_eq!(delta["usage"], want, "final usage with cost");
    let r = success(&fin);
    assert_eq!(
        r.session_id.as_deref(),
        Some("18bd126f-df73-4867-9c99-b001ea1db4f9"),
        "session id"
    );
    assert_eq!((r.num_turns, r.cost_usd), (1, 0.0001815), "turns and cost");
    assert!(
        r.model_usage.get("claude-opus-4-8[1m]").is_some(),
        "modelUsage keyed by model"
    );
    assert!(fin.started && fin.body.is_none(), "streamed, no JSON body");
}

#[test]
fn run5_partials_give_token_deltas_and_skip_the_whole_message() {
    let (events, _) = translate(&fixture("run5.partial.stream.jsonl"), true, 4096, &ok_exit());
    let deltas: Vec<&str> = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .filter_map(|(_, v)| v["delta"]["text"].as_str())
        .collect();
    assert_eq!(
        deltas,
        ["Hello", " from", " the", " fake", " provider."],
        "one delta per partial, no repeat"
    );
    assert_eq!(names(&events).first().copied(), Some("message_start"), "starts once");
    assert_eq!(
        names(&events).iter().filter(|n| **n == "message_stop").count(),
        1,
        "one message_stop"
    );
    assert!(
        events.iter().all(|(_, v)| v["index"].as_u64().unwrap_or(0) == 0),
        "one block, index 0"
    );
}

#[test]
fn run4_tool_turns_are_not_exposed_and_usage_covers_both_turns() {
    for stream in [true, false] {
        let (events, fin) = translate(&fixture("run4.tool.stream.jsonl"), stream, 4096, &ok_exit());
        let all = format!("{events:?}{:?}", fin.body.as_deref().map(String::from_utf8_lossy));
        assert!(
            !all.contains("tool_use") && !all.contains("sidecar-tool-ok\"}"),
            "no tool block: {all}"
        );
        let r = success(&fin);
        assert_eq!(r.usage.input_tokens, 31, "input over both turns");
        assert_eq!((r.usage.output_tokens, r.num_turns), (10, 2), "output and turns");
        assert_eq!(r.cost_usd, 0.00040650000000000007, "cost");
    }
}

#[test]
fn json_mode_builds_one_message() {
    let (events, fin) = translate(&fixture("run4.tool.stream.jsonl"), false, 4096, &ok_exit());
    assert!(events.is_empty(), "no SSE in JSON mode");
    let body: Value = serde_json::from_slice(fin.body.as_deref().unwrap_or_default()).unwrap_or(Value::Null);
    assert_eq!(body["type"], "message", "a message: {body}");
    assert_eq!(body["role"], "assistant", "assistant");
    assert_eq!(body["model"], "claude-opus-4-8", "model");
    assert_eq!(
        body["content"],
        json!([{ "type": "text", "text": "Tool said: sidecar-tool-ok" }]),
        "text only"
    );
    assert_eq!(body["stop_reason"], "end_turn", "stop");
    assert_eq!(body["usage"]["cost_usd"], 0.00040650000000000007, "cost in usage");
    assert_eq!(body["usage"]["input_tokens"], 31, "cumulative input");
}

#[test]
fn run1_and_run3_results_alone() {
    for (file, session) in [
        ("run1.json", "7de63955-34c0-419e-8c66-a64e4c5f2083"),
        ("run3.resume.json", "18bd126f-df73-4867-9c99-b001ea1db4f9"),
    ] {
        let (_, fin) = translate(&fixture(file), false, 4096, &ok_exit());
        let r = success(&fin);
        assert_eq!(r.session_id.as_deref(), Some(session), "{file}: session");
        let want = Usage {
            input_tokens: 11,
            output_tokens: 5,
            cache_read_input_tokens: 3,
            cache_creation_input_tokens: 0,
        };
        assert_eq!(r.usage, want, "{file}: usage");
        let body: Value = serde_json::from_slice(fin.body.as_deref().unwrap_or_default()).unwrap_or(Value::Null);
        assert_eq!(body["content"], json!([]), "{file}: no assistant line, no text");
        assert_eq!(
            body["model"], "requested-model",
            "{file}: no API model seen, the requested one"
        );
    }
}

#[test]
fn run9_two_turns_in_one_process_keep_the_last_result() {
    let (events, fin) = translate(&fixture("run9.inputstream.jsonl"), true, 4096, &ok_exit());
    assert_eq!(
        streamed_text(&events),
        "Hello from the fake provider.Hello from the fake provider.",
        "both turns"
    );
    assert_eq!(success(&fin).cost_usd, 0.000363, "last result's cumulative cost");
}

#[test]
fn error_results_are_failures_with_the_upstream_status() {
    let exit1 = Exit {
        code: Some(1),
        ..Exit::default()
    };
    let (events, fin) = translate(&fixture("run6.fail400.json"), false, 4096, &exit1);
    assert!(events.is_empty() && fin.body.is_none(), "no answer body");
    match &fin.outcome {
        Outcome::Failed {
            status,
            message,
            report,
        } => {
            assert_eq!(
                (*status, message.as_str()),
                (400, "API Error: 400 fake 400"),
                "status and text"
            );
            assert_eq!(report.as_ref().map(|r| r.cost_usd), Some(0.0), "report kept");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let (events, fin) = translate(&fixture("run7.fail529.stream.jsonl"), true, 4096, &exit1);
    assert!(
        events.is_empty() && !fin.started,
        "retries and the synthetic error message are not output"
    );
    assert!(
        matches!(&fin.outcome, Outcome::Failed { status: 529, .. }),
        "529: {:?}",
        fin.outcome
    );
    assert!(fin.tail.is_empty(), "nothing to write: the status is still free");
}

#[test]
fn split_reads_give_the_same_events() {
    for file in [
        "run5.partial.stream.jsonl",
        "run4.tool.stream.jsonl",
        "run9.inputstream.jsonl",
    ] {
        let bytes = fixture(file);
        let (whole, _) = translate(&bytes, true, bytes.len(), &ok_exit());
        for chunk in [1, 7, 100] {
            let (split, _) = translate(&bytes, true, chunk, &ok_exit());
            let strip = |e: &[(String, Value)]| -> Vec<(String, Value)> {
                e.iter()
                    .map(|(n, v)| (n.clone(), json!([v["delta"], v["index"], v["usage"]])))
                    .collect()
            };
            assert_eq!(strip(&split), strip(&whole), "{file} in {chunk}-byte reads");
        }
    }
}
