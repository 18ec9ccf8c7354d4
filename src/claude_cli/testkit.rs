//! Helpers shared by the claude_cli tests: recorded samples and a translation harness.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::events::{Finished, Report, Translator};
use super::lines::LineSplitter;
use super::{Exit, Outcome};

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/claude-cli/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

pub fn ok_exit() -> Exit {
    Exit {
        code: Some(0),
        ..Exit::default()
    }
}

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_948_740)
}

/// Feed `bytes` in `chunk`-byte reads through a line splitter into a translator.
pub fn translate(bytes: &[u8], stream: bool, chunk: usize, exit: &Exit) -> (Vec<(String, Value)>, Finished) {
    let mut t = Translator::new(stream, Some("requested-model"));
    let mut lines = LineSplitter::new(1 << 20);
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk) {
        lines.push(piece);
        while let Ok(Some(line)) = lines.next_line() {
            t.line(&line, &mut out);
        }
    }
    if let Some(last) = lines.finish() {
        t.line(&last, &mut out);
    }
    let fin = t.finish(exit, now());
    out.extend_from_slice(&fin.tail);
    (sse_events(&out), fin)
}

pub fn sse_events(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = String::from_utf8_lossy(bytes);
    let mut events = Vec::new();
    for frame in text.split("\n\n").filter(|f| !f.is_empty()) {
        let name = frame
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap_or_default();
        let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or_default();
        let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("bad SSE data {data:?}: {e}"));
        assert_eq!(v["type"].as_str(), Some(name), "event name matches its type: {frame}");
        events.push((name.to_string(), v));
    }
    events
}

pub fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

pub fn streamed_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .filter_map(|(_, v)| v["delta"]["text"].as_str())
        .collect()
}

pub fn success(fin: &Finished) -> &Report {
    match &fin.outcome {
        Outcome::Success(r) => r,
        other => panic!("expected success, got {other:?}"),
    }
}
