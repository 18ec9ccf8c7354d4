//! The front doors with streams: translated event by event as the upstream sends them, usage
//! exact, tool calls as deltas, errors in the client's dialect, and a stream whose first target
//! fails before content moved to the next target unseen.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::doors::doors;
use crate::harness::*;

/// The `data:` payloads of an SSE body, as JSON where they are JSON.
fn datas(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or(Value::String(d.to_string())))
        .collect()
}

/// The event names of an SSE body.
fn names(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(String::from)
        .collect()
}

fn gemini_chunks() -> Vec<(Duration, String)> {
    let chunk = |v: Value| (Duration::from_millis(5), format!("data: {v}\r\n\r\n"));
    vec![
        chunk(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Bon"}]}, "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "gemini-2.5-pro"}),
        ),
        chunk(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "jour"}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12}, "modelVersion": "gemini-2.5-pro"}),
        ),
    ]
}

fn openai_chunks() -> Vec<(Duration, String)> {
    let chunk = |v: Value| (Duration::from_millis(5), format!("data: {v}\n\n"));
    vec![
        chunk(
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4.1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        ),
        chunk(
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4.1", "choices": [{"index": 0, "delta": {"content": "Hal"}}]}),
        ),
        chunk(
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4.1", "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]}),
        ),
        chunk(
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4.1", "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 8}}}),
        ),
        (Duration::from_millis(5), "data: [DONE]\n\n".into()),
    ]
}

async fn post(proxy: &Proxy, path: &str, body: Value) -> (reqwest::StatusCode, String) {
    let resp = client().post(proxy.url(path)).json(&body).send().await.expect("send");
    (
        resp.status(),
        String::from_utf8_lossy(&read_all(resp).await).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_streams_come_from_anthropic_and_gemini_with_exact_usage() {
    let claude = Fake::always(Reply::Sse(anthropic_events())).await;
    let gemini = Fake::always(Reply::Sse(gemini_chunks())).await;
    let models = "models:\n  - { name: smart, targets: [ { pool: claude, model: claude-sonnet-4-5 } ] }\n";
    let s = Logged::start(
        &doors(
            &[("claude", "anthropic", claude.url()), ("gem", "gemini", gemini.url())],
            models,
        ),
        "",
    );
    let ask = |model: &str| {
        json!({"model": model, "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Hi"}]})
    };
    let (status, body) = post(&s.proxy, "/v1/chat/completions", ask("smart")).await;
    assert_eq!(status, 200, "served: {body}");
    let chunks = datas(&body);
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["role"], "assistant",
        "the first delta names the role: {body}"
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hi", "the text: {body}");
    assert!(
        chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "stop"),
        "a finish chunk: {body}"
    );
    let usage = chunks.iter().find(|c| c["usage"].is_object()).expect("a usage chunk");
    assert_eq!(
        usage["usage"]["prompt_tokens"], 6500,
        "all input: 1200 + 5000 read + 300 written: {body}"
    );
    assert_eq!(
        usage["usage"]["prompt_tokens_details"]["cached_tokens"], 5000,
        "cache reads: {body}"
    );
    assert_eq!(usage["usage"]["completion_tokens"], 87, "output: {body}");
    assert_eq!(
        chunks.last(),
        Some(&Value::String("[DONE]".into())),
        "ends with [DONE]: {body}"
    );
    assert!(
        chunks.iter().filter(|c| c.is_object()).all(|c| c["model"] == "smart"),
        "every chunk names the client's model: {body}"
    );
    let sent = claude.seen()[0].json();
    assert_eq!(sent["stream"], true, "the upstream is asked for a stream: {sent}");
    let (status, body) = post(&s.proxy, "/v1/chat/completions", ask("gem/gemini-2.5-pro")).await;
    assert_eq!(status, 200, "served: {body}");
    let text: String = datas(&body)
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Bonjour", "Gemini's text streamed: {body}");
    assert!(
        gemini.seen()[0].path.contains(":streamGenerateContent?alt=sse"),
        "Gemini's stream endpoint: {}",
        gemini.seen()[0].path
    );
    let rows = s.wait_rows(2).await;
    assert_eq!(
        (
            rows[0]["input_tokens"].clone(),
            rows[0]["cache_read_tokens"].clone(),
            rows[0]["output_tokens"].clone()
        ),
        (json!(1200), json!(5000), json!(87)),
        "the log keeps Anthropic's own numbers: {:?}",
        rows[0]
    );
    assert_eq!(rows[1]["output_tokens"], 3, "Gemini metered: {:?}", rows[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_streams_come_from_openai() {
    let gpt = Fake::always(Reply::Sse(openai_chunks())).await;
    let proxy = Proxy::start(&doors(&[("gpt", "openai", gpt.url())], ""));
    let (status, body) = post(
        &proxy,
        "/any/v1/messages",
        json!({"model": "gpt/gpt-4.1", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "served: {body}");
    let events = names(&body);
    assert_eq!(events.first().map(String::as_str), Some("message_start"), "{body}");
    assert_eq!(events.last().map(String::as_str), Some("message_stop"), "{body}");
    assert!(
        events.iter().any(|e| e == "content_block_start") && events.iter().any(|e| e == "content_block_stop"),
        "{body}"
    );
    let data = datas(&body);
    let text: String = data.iter().filter_map(|d| d["delta"]["text"].as_str()).collect();
    assert_eq!(text, "Hallo", "the text: {body}");
    let delta = data
        .iter()
        .find(|d| d["type"] == "message_delta")
        .expect("message_delta");
    assert_eq!(delta["delta"]["stop_reason"], "end_turn", "{body}");
    assert_eq!(delta["usage"]["output_tokens"], 4, "output tokens: {body}");
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 8, "cache reads: {body}");
    assert_eq!(delta["usage"]["input_tokens"], 12, "uncached input: 20 - 8: {body}");
    let sent = gpt.seen()[0].json();
    assert_eq!(
        sent["stream_options"]["include_usage"], true,
        "usage asked for upstream: {sent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_tool_calls_become_openai_deltas() {
    let events = sse(
        Duration::from_millis(3),
        &[
            (
                "message_start",
                json!({"type": "message_start", "message": {"id": "m", "model": "claude-sonnet-4-5", "usage": {"input_tokens": 30, "output_tokens": 1}}}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {}}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
            ),
            ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ],
    );
    let claude = Fake::always(Reply::Sse(events)).await;
    let proxy = Proxy::start(&doors(&[("claude", "anthropic", claude.url())], ""));
    let (status, body) = post(
        &proxy,
        "/v1/chat/completions",
        json!({"model": "claude/claude-sonnet-4-5", "stream": true, "messages": [{"role": "user", "content": "Weather?"}],
               "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]}),
    )
    .await;
    assert_eq!(status, 200, "served: {body}");
    let data = datas(&body);
    let deltas: Vec<&Value> = data
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(deltas[0]["id"], "toolu_9", "the call's id in its first delta: {body}");
    assert_eq!(deltas[0]["function"]["name"], "weather", "its name once: {body}");
    assert!(
        deltas.iter().all(|d| d["index"] == 0),
        "the call's index on every delta: {body}"
    );
    let args: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, r#"{"city":"Paris"}"#, "argument fragments add up: {body}");
    assert!(
        data.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"),
        "finish reason tool_calls: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_before_content_moves_the_stream_to_the_next_target_unseen() {
    let overloaded = sse(
        Duration::from_millis(3),
        &[
            (
                "message_start",
                json!({"type": "message_start", "message": {"usage": {"input_tokens": 3}}}),
            ),
            (
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ),
        ],
    );
    let claude = Fake::always(Reply::Sse(overloaded)).await;
    let gpt = Fake::always(Reply::Sse(openai_chunks())).await;
    let models = "models:\n  - { name: smart, targets: [ { pool: claude, model: claude-sonnet-4-5 }, { pool: gpt, model: gpt-4.1 } ] }\n";
    let proxy = Proxy::start(&doors(
        &[("claude", "anthropic", claude.url()), ("gpt", "openai", gpt.url())],
        models,
    ));
    let (status, body) = post(
        &proxy,
        "/v1/chat/completions",
        json!({"model": "smart", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "served: {body}");
    let data = datas(&body);
    let text: String = data
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hallo", "the second target's text: {body}");
    assert!(
        !body.contains("overloaded"),
        "the first target's error never reached the client: {body}"
    );
    assert_eq!(
        data.iter()
            .filter(|c| c["choices"][0]["delta"]["role"] == "assistant")
            .count(),
        1,
        "one clean stream: {body}"
    );
    assert!(
        !data.iter().any(|c| c["usage"].is_object()),
        "no usage chunk the client did not ask for: {body}"
    );
    assert_eq!(claude.count(), 1, "the first target tried once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_mid_way_ends_with_an_error_in_the_clients_shape() {
    // Spaced out, so the bytes are read before the reset (a reset discards unread data).
    let cut = vec![
        (Duration::from_millis(20), "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n".to_string()),
        (Duration::from_millis(20), "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"par\"}}\n\n".to_string()),
        (Duration::from_millis(50), ": pause\n\n".to_string()),
    ];
    let claude = Fake::always(Reply::SseCut(cut)).await;
    let proxy = Proxy::start(&doors(&[("claude", "anthropic", claude.url())], ""));
    let resp = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(&json!({"model": "claude/claude-sonnet-4-5", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "the stream had started");
    let body = String::from_utf8_lossy(&read_all(resp).await).into_owned();
    assert!(
        body.contains("\"content\":\"par\""),
        "what came before the cut was delivered: {body}"
    );
    assert!(!body.contains("[DONE]"), "a cut stream never ends cleanly: {body}");
    let last = datas(&body).pop().unwrap_or_default();
    assert!(
        last["error"]["message"].is_string(),
        "it ends with an error in OpenAI's shape: {body}"
    );
}
