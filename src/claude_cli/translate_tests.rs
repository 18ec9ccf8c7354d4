//! Tests of the translator on lines shaped like the CLI's: usage limits, errors after output,
//! what is omitted, structured output, a run without a result.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::claude_cli::events::{Finished, Outcome};
use crate::claude_cli::testkit::{fixture, names, ok_exit, streamed_text, translate};
use crate::claude_cli::Exit;

fn lines(items: &[Value]) -> Vec<u8> {
    items.iter().flat_map(|v| format!("{v}\n").into_bytes()).collect()
}

fn result_line(is_error: bool, status: Option<u16>, text: &str) -> Value {
    json!({ "type": "result", "subtype": "success", "is_error": is_error, "api_error_status": status,
        "num_turns": 1, "result": text, "session_id": "s", "total_cost_usd": 0,
        "usage": { "input_tokens": 0, "output_tokens": 0 }, "modelUsage": {} })
}

fn limit_assistant(text: &str) -> Value {
    json!({ "type": "assistant", "error": "rate_limit", "parent_tool_use_id": null,
        "message": { "id": "x", "model": "<synthetic>", "role": "assistant", "content": [{ "type": "text", "text": text }] } })
}

fn rate_limited(fin: &Finished) -> Option<SystemTime> {
    match &fin.outcome {
        Outcome::RateLimited { reset, .. } => *reset,
        other => panic!("expected a usage limit, got {other:?}"),
    }
}

#[test]
fn usage_limits_are_recognised_with_their_reset_time() {
    let text = "You've hit your session limit · resets 2pm (Asia/Shanghai)";
    let event = json!({ "type": "rate_limit_event", "rate_limit_info": { "status": "rejected", "resetsAt": 1_795_960_800, "rateLimitType": "five_hour" } });
    let bytes = lines(&[event, limit_assistant(text), result_line(true, Some(429), text)]);
    let (events, fin) = translate(&bytes, true, 4096, &ok_exit());
    assert!(events.is_empty(), "nothing streamed: the 429 can still be sent");
    assert_eq!(
        rate_limited(&fin),
        Some(UNIX_EPOCH + Duration::from_secs(1_795_960_800)),
        "resetsAt"
    );

    let utc = "You've hit your limit · resets 2pm (UTC)";
    let (_, fin) = translate(
        &lines(&[limit_assistant(utc), result_line(true, None, utc)]),
        false,
        4096,
        &ok_exit(),
    );
    assert_eq!(
        rate_limited(&fin),
        Some(UNIX_EPOCH + Duration::from_secs(1_795_960_800)),
        "from the text"
    );

    let (_, fin) = translate(&lines(&[result_line(false, None, utc)]), false, 4096, &ok_exit());
    assert!(rate_limited(&fin).is_some(), "a 'successful' notice is a limit too");

    let stderr = Exit {
        code: Some(1),
        stderr_head: "Claude AI usage limit reached|1795960800 ".into(),
        ..Exit::default()
    };
    let (_, fin) = translate(b"", true, 4096, &stderr);
    assert_eq!(
        rate_limited(&fin),
        Some(UNIX_EPOCH + Duration::from_secs(1_795_960_800)),
        "from stderr"
    );
}

#[test]
fn a_warning_is_not_a_limit() {
    let warn = json!({ "type": "rate_limit_event", "rate_limit_info": { "status": "allowed_warning", "resetsAt": 1_795_960_800 } });
    let mut bytes = lines(&[warn]);
    bytes.extend(fixture("run2.stream.jsonl"));
    let (_, fin) = translate(&bytes, false, 4096, &ok_exit());
    assert!(matches!(fin.outcome, Outcome::Success(_)), "served: {:?}", fin.outcome);
}

#[test]
fn an_error_after_output_ends_the_stream_with_an_error_event() {
    let mut bytes = fixture("run5.partial.stream.jsonl");
    bytes.truncate(bytes.iter().rposition(|b| *b == b'\n').unwrap_or(0));
    let cut = bytes.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    bytes.truncate(cut + 1);
    bytes.extend(lines(&[result_line(true, Some(500), "API Error: 500 boom\u{1b}[0m")]));
    let (events, fin) = translate(&bytes, true, 4096, &ok_exit());
    assert!(fin.started, "text went out first");
    assert_eq!(
        names(&events).last().copied(),
        Some("error"),
        "an error event ends it: {:?}",
        names(&events)
    );
    let error = events.last().map(|(_, v)| v.clone()).unwrap_or(Value::Null);
    assert_eq!(error["error"]["message"], "API Error: 500 boom[0m", "sanitized message");
    assert!(
        !names(&events).contains(&"message_stop"),
        "no message_stop after an error"
    );
}

#[test]
fn subagents_thinking_and_tool_input_are_omitted() {
    let ev =
        |event: Value, parent: Value| json!({ "type": "stream_event", "event": event, "parent_tool_use_id": parent });
    let bytes = lines(&[
        ev(
            json!({ "type": "message_start", "message": { "id": "m1", "model": "claude-x" } }),
            Value::Null,
        ),
        ev(
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "thinking", "thinking": "" } }),
            Value::Null,
        ),
        ev(
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "thinking_delta", "thinking": "secret" } }),
            Value::Null,
        ),
        ev(json!({ "type": "content_block_stop", "index": 0 }), Value::Null),
        ev(
            json!({ "type": "content_block_start", "index": 1, "content_block": { "type": "tool_use", "id": "t", "name": "Bash", "input": {} } }),
            Value::Null,
        ),
        ev(
            json!({ "type": "content_block_delta", "index": 1, "delta": { "type": "input_json_delta", "partial_json": "{\"command\":" } }),
            Value::Null,
        ),
        ev(
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
            json!("toolu_task"),
        ),
        ev(
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "SUBAGENT" } }),
            json!("toolu_task"),
        ),
        ev(
            json!({ "type": "content_block_start", "index": 2, "content_block": { "type": "text", "text": "" } }),
            Value::Null,
        ),
        ev(
            json!({ "type": "content_block_delta", "index": 2, "delta": { "type": "text_delta", "text": "visible" } }),
            Value::Null,
        ),
        ev(json!({ "type": "content_block_stop", "index": 2 }), Value::Null),
        result_line(false, None, "visible"),
    ]);
    let (events, fin) = translate(&bytes, true, 4096, &ok_exit());
    assert_eq!(streamed_text(&events), "visible", "only top-level text");
    let all = format!("{events:?}");
    assert!(
        !all.contains("secret") && !all.contains("command") && !all.contains("SUBAGENT"),
        "omitted: {all}"
    );
    assert_eq!(
        events[0].1["message"]["model"], "claude-x",
        "model from the partial message_start"
    );
    assert!(matches!(fin.outcome, Outcome::Success(_)), "success");
}

#[test]
fn structured_output_becomes_a_text_block() {
    let mut line = result_line(false, None, "");
    line["structured_output"] = json!({ "name": "fake" });
    let (events, _) = translate(&lines(&[line.clone()]), true, 4096, &ok_exit());
    assert_eq!(streamed_text(&events), "{\"name\":\"fake\"}", "streamed as text");
    let (_, fin) = translate(&lines(&[line]), false, 4096, &ok_exit());
    let body: Value = serde_json::from_slice(fin.body.as_deref().unwrap_or_default()).unwrap_or(Value::Null);
    assert_eq!(body["content"][0]["text"], "{\"name\":\"fake\"}", "JSON body text");
}

#[test]
fn no_result_is_a_bad_gateway_with_sanitized_stderr() {
    let crash = Exit {
        code: Some(1),
        stderr: crate::text::sanitize("fatal: broke\u{1b}[31m\u{7}"),
        stderr_head: "fatal: broke [31m ".into(),
        ..Exit::default()
    };
    let (events, fin) = translate(&fixture("run2.stream.jsonl")[..100], true, 4096, &crash);
    assert!(events.is_empty(), "no output");
    match fin.outcome {
        Outcome::Failed {
            status,
            message,
            report,
        } => {
            assert_eq!(status, 502, "bad gateway");
            assert_eq!(
                message, "claude ended without a result (exit code 1): fatal: broke[31m",
                "exit and stderr"
            );
            assert!(report.is_none(), "no report");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}
