//! Server-sent events for the fakes to send, and streamed answers read whole.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

/// `event: name` / `data: json` events, each sent `delay` after the one before.
pub fn sse(delay: Duration, events: &[(&str, Value)]) -> Vec<(Duration, String)> {
    events
        .iter()
        .map(|(name, data)| (delay, format!("event: {name}\ndata: {data}\n\n")))
        .collect()
}

/// A complete Anthropic stream (5 ms apart): 1200 input tokens, 5000 read from the cache and 300
/// written to it, 87 output tokens.
pub fn anthropic_events() -> Vec<(Duration, String)> {
    sse(
        Duration::from_millis(5),
        &[
            (
                "message_start",
                json!({"type": "message_start", "message": {"model": "claude-sonnet-5", "usage": {"input_tokens": 1200, "cache_read_input_tokens": 5000, "cache_creation_input_tokens": 300, "output_tokens": 1}}}),
            ),
            ("ping", json!({"type": "ping"})),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 87}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ],
    )
}

/// The body of a streamed answer up to its end or its first error (a cut stream is read as far
/// as it went).
pub async fn read_all(resp: reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(Ok(c)) = s.next().await {
        out.extend_from_slice(&c);
    }
    out
}

/// The whole body of a streamed answer as text; panics if the stream breaks.
pub async fn read_clean(resp: reqwest::Response) -> String {
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.expect("the stream ends cleanly"));
    }
    String::from_utf8_lossy(&out).into_owned()
}
