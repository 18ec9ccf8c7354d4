#![no_main]
//! cli_stream_json: the Claude Code CLI's stdout, any bytes cut anywhere, through the line
//! splitter and the stream-json translator never panics. The splitter gives no line over its limit,
//! the same lines and refusals whatever the cuts, and never holds room for more than its limit, a
//! waiting CR and the largest read (`peak_capacity`). The translator writes well-formed Anthropic
//! SSE (each event `event: X` with JSON data of type X, `message_start` first, `message_stop` last
//! on success, an `error` event last on a failure after output) or, not streaming, one JSON
//! `message` on success and nothing else; says it started exactly when it wrote; and its outcome's
//! status and message are fit to answer with (4xx/5xx; sanitized). The usage-limit text parser
//! never panics either.
//!
//! Input: see `llm_sidecar_fuzz::Input`; empty chunks are left out (the reader never gets one).
//! Flags: bit 0, a JSON (non-streaming) answer; bits 1-2, how the process exited (0: code 0,
//! 1: code 1 with an error on stderr, 2: killed, 3: code 1 with the body's start as stderr);
//! bits 3-5, the line limit (`MAX_LINE`).

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use llm_sidecar::claude_cli::events::{Outcome, Translator};
use llm_sidecar::claude_cli::lines::{LineSplitter, TooLong};
use llm_sidecar::claude_cli::{limit, Exit};
use llm_sidecar::text::sanitize;
use llm_sidecar_fuzz::{bytewise, Input};
use serde_json::Value;

const MAX_LINE: [usize; 8] = [1 << 20, 0, 1, 2, 16, 64, 256, 4096];

type Lines = Vec<Result<Vec<u8>, TooLong>>;

/// The lines of `chunks`, read as the process reader does: a push, then lines until none is left.
fn lines(max: usize, chunks: &[&[u8]]) -> Lines {
    let mut s = LineSplitter::new(max);
    let biggest = chunks.iter().map(|c| c.len()).max().unwrap_or(0).max(1);
    let mut got = Vec::new();
    for chunk in chunks {
        s.push(chunk);
        loop {
            match s.next_line() {
                Ok(Some(line)) => {
                    assert!(line.len() <= max, "a line of {} bytes past the limit {max}", line.len());
                    got.push(Ok(line));
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(e.limit, max, "the refusal names the limit");
                    got.push(Err(e));
                }
            }
        }
        // A line of exactly the limit whose `\r` came without its `\n` is held with that `\r`
        // (the `\n` decides whether the `\r` ends the line): one byte past the limit.
        assert!(
            s.peak_capacity() <= max + 1 + biggest,
            "buffer room {} past the limit {max} + a waiting CR + the largest read {biggest}",
            s.peak_capacity()
        );
    }
    if let Some(last) = s.finish() {
        assert!(
            last.len() <= max,
            "a last line of {} bytes past the limit {max}",
            last.len()
        );
        got.push(Ok(last));
    }
    got
}

fn loggable(s: &str) -> bool {
    s.len() <= 500 && !s.chars().any(char::is_control)
}

/// The names of the SSE events in `sse`, checking each is `event: X` then `data: {"type":"X",..}`.
fn events(sse: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(sse).expect("SSE is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "SSE ends with a blank line: {text:?}"
    );
    let mut names = Vec::new();
    for frame in text.split_terminator("\n\n") {
        let (head, data) = frame
            .split_once('\n')
            .unwrap_or_else(|| panic!("one-line event {frame:?}"));
        let name = head
            .strip_prefix("event: ")
            .unwrap_or_else(|| panic!("no event line: {frame:?}"));
        let data = data
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("no data line: {frame:?}"));
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("data not JSON ({e}): {frame:?}"));
        assert_eq!(
            v["type"].as_str(),
            Some(name),
            "the data's type names the event: {frame:?}"
        );
        names.push(name.to_string());
    }
    names
}

fn exit(kind: u8, body: &[u8]) -> Exit {
    let said = String::from_utf8_lossy(&body[..body.len().min(8 << 10)]).into_owned();
    match kind & 3 {
        0 => Exit {
            code: Some(0),
            ..Exit::default()
        },
        1 => Exit {
            code: Some(1),
            signal: None,
            stderr: "Error: --resume requires a valid session ID".into(),
            stderr_head: "Error: --resume requires a valid session ID".into(),
        },
        2 => Exit {
            code: None,
            signal: Some(9),
            ..Exit::default()
        },
        _ => Exit {
            code: Some(1),
            signal: None,
            stderr: sanitize(&said),
            stderr_head: said.chars().map(|c| if c.is_control() { ' ' } else { c }).collect(),
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else {
        return;
    };
    let body = input.body;
    let stream = input.flags & 1 == 0;
    let max = MAX_LINE[usize::from((input.flags >> 3) & 7)];
    let now = UNIX_EPOCH + Duration::from_secs(1_795_948_740);

    let got = lines(max, &[body]);
    for (what, chunks) in [("cut", input.chunks(false)), ("bytewise", bytewise(body))] {
        assert!(lines(max, &chunks) == got, "other lines when {what}");
    }

    let mut t = Translator::new(stream, Some("requested-model"));
    let mut out = Vec::new();
    for line in got.iter().flatten() {
        let text = String::from_utf8_lossy(line);
        let _ = limit::is_limit_text(&text);
        let _ = limit::is_limit_notice(&text);
        let _ = limit::reset_from_text(&text, now);
        t.line(line, &mut out);
    }
    assert_eq!(
        t.started() && stream,
        !out.is_empty(),
        "started exactly when SSE was written"
    );
    let fin = t.finish(&exit(input.flags >> 1, body), now);

    match &fin.outcome {
        Outcome::Success(report) => {
            assert!(
                report.cost_usd.is_finite() && report.cost_usd >= 0.0,
                "cost {}",
                report.cost_usd
            );
        }
        Outcome::Failed { status, message, .. } => {
            assert!((400..=599).contains(status), "status {status}");
            assert!(loggable(message), "message {message:?}");
        }
        Outcome::RateLimited { message, .. } => assert!(loggable(message), "message {message:?}"),
    }
    let success = matches!(fin.outcome, Outcome::Success(_));

    if !stream {
        assert!(
            out.is_empty() && fin.tail.is_empty() && !fin.started,
            "SSE for a JSON answer"
        );
        match &fin.body {
            Some(b) => {
                assert!(success, "a body for a failed run");
                let v: Value = serde_json::from_slice(b).unwrap_or_else(|e| panic!("message not JSON: {e}"));
                assert_eq!(v["type"], "message", "a message");
            }
            None => assert!(!success, "no body for a successful run"),
        }
        return;
    }
    assert!(fin.body.is_none(), "a JSON body for a stream");
    let mut all = out;
    all.extend_from_slice(&fin.tail);
    assert_eq!(fin.started, !all.is_empty(), "started exactly when SSE was written");
    if !fin.started {
        assert!(!success, "a successful run wrote nothing");
        return;
    }
    let names = events(&all);
    assert_eq!(names.first().map(String::as_str), Some("message_start"), "{names:?}");
    let last = names.last().map(String::as_str);
    if success {
        assert_eq!(last, Some("message_stop"), "{names:?}");
    } else {
        assert_eq!(last, Some("error"), "{names:?}");
    }
});
