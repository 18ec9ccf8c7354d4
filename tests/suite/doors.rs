//! The front doors with JSON answers: an OpenAI-compatible endpoint and an Anthropic-compatible
//! one serving any model of any pool. Each test asserts on the request the upstream received in
//! its own dialect and on the answer the client got in its own.

use serde_json::{json, Value};

use crate::harness::doors::*;
use crate::harness::*;

const SMART: &str = "models:\n  - { name: smart, targets: [ { pool: claude, model: claude-sonnet-4-5 } ] }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_clients_are_served_by_an_anthropic_pool() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&doors(&[("claude", "anthropic", up.url())], SMART));
    let resp = client()
        .post(proxy.url("/v1/chat/completions"))
        .header("authorization", "Bearer placeholder")
        .json(&json!({
            "model": "smart",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "temperature": 0.5,
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "served");
    assert_eq!(resp.headers()["x-llm-sidecar-pool"], "claude", "the pool that served");
    assert_eq!(
        resp.headers()["x-llm-sidecar-model"],
        "claude-sonnet-4-5",
        "the target's model"
    );
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["object"], "chat.completion", "OpenAI shape: {v}");
    assert_eq!(v["model"], "smart", "the model the client asked for: {v}");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello!", "the text: {v}");
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "end_turn is stop: {v}");
    assert_eq!(v["usage"]["prompt_tokens"], 12, "usage mapped: {v}");
    assert_eq!(v["usage"]["completion_tokens"], 5, "usage mapped: {v}");
    let seen = up.seen();
    assert_eq!(seen[0].path, "/v1/messages", "Anthropic's endpoint");
    assert_eq!(
        seen[0].header("x-api-key"),
        Some("REAL-KEY-claude-0"),
        "the account's key"
    );
    assert!(
        seen[0].header("authorization").is_none(),
        "the client's credential is gone"
    );
    let sent = seen[0].json();
    assert_eq!(
        sent["model"], "claude-sonnet-4-5",
        "the target's model upstream: {sent}"
    );
    assert_eq!(
        sent["max_tokens"], 4096,
        "Anthropic needs max_tokens: the pool's default: {sent}"
    );
    assert_eq!(
        sent["system"], "Be brief.",
        "the system message moved to system: {sent}"
    );
    assert_eq!(
        sent["messages"].as_array().map(Vec::len),
        Some(1),
        "one turn, the system moved out: {sent}"
    );
    assert_eq!(sent["messages"][0]["role"], "user", "a user turn: {sent}");
    let text = &sent["messages"][0]["content"];
    assert!(text == "Hi" || text[0]["text"] == "Hi", "its text: {sent}");
    assert_eq!(sent["temperature"], 0.5, "temperature kept: {sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_clients_are_served_by_openai_and_gemini_pools() {
    let openai = Fake::always(Reply::Json(200, openai_reply())).await;
    let gemini = Fake::always(Reply::Json(200, gemini_reply())).await;
    let proxy = Proxy::start(&doors(
        &[("gpt", "openai", openai.url()), ("gem", "gemini", gemini.url())],
        "models:\n  - { name: fast, targets: [ { pool: gpt, model: gpt-4.1 } ] }\n",
    ));
    let ask = |model: &str| {
        json!({"model": model, "max_tokens": 100, "system": "Be brief.",
               "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]})
    };
    for (model, upstream_path, text, input, output) in [
        ("fast", "/v1/chat/completions", "Hallo", 12, 4),
        (
            "gem/gemini-2.5-pro",
            "/v1beta/models/gemini-2.5-pro:generateContent",
            "Bonjour",
            9,
            3,
        ),
    ] {
        let resp = client()
            .post(proxy.url("/any/v1/messages"))
            .header("x-api-key", "placeholder")
            .header("anthropic-version", "2023-06-01")
            .json(&ask(model))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "{model}: served");
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["type"], "message", "{model}: Anthropic shape: {v}");
        assert_eq!(v["role"], "assistant", "{model}: {v}");
        assert_eq!(v["content"][0]["text"], text, "{model}: the text: {v}");
        assert_eq!(v["stop_reason"], "end_turn", "{model}: stop is end_turn: {v}");
        assert_eq!(v["usage"]["input_tokens"], input, "{model}: uncached input: {v}");
        assert_eq!(v["usage"]["output_tokens"], output, "{model}: output: {v}");
        let fake = if model == "fast" { &openai } else { &gemini };
        let seen = fake.seen().pop().expect("forwarded");
        assert_eq!(
            seen.path.split('?').next(),
            Some(upstream_path),
            "{model}: the target's endpoint"
        );
        let sent = seen.json();
        if model == "fast" {
            assert_eq!(sent["model"], "gpt-4.1", "target model: {sent}");
            assert_eq!(
                sent["messages"][0],
                json!({"role": "system", "content": "Be brief."}),
                "{sent}"
            );
            assert_eq!(sent["max_completion_tokens"], 100, "{sent}");
        } else {
            assert_eq!(sent["systemInstruction"]["parts"][0]["text"], "Be brief.", "{sent}");
            assert_eq!(sent["generationConfig"]["maxOutputTokens"], 100, "{sent}");
        }
    }
    let cached = openai.seen();
    assert_eq!(cached.len(), 1, "one OpenAI call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_round_trip_and_an_image_cross_the_door() {
    let tool_use = json!({
        "id": "msg_t", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 30, "output_tokens": 10}
    });
    let up = Fake::start(move |_, n| {
        if n == 0 {
            Reply::Json(200, tool_use.clone())
        } else {
            Reply::Json(200, anthropic_reply())
        }
    })
    .await;
    let proxy = Proxy::start(&doors(&[("claude", "anthropic", up.url())], SMART));
    let tools = json!([{"type": "function", "function": {"name": "weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let first: Value = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(&json!({"model": "smart", "tools": tools, "tool_choice": "required",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let call = &first["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_1", "the call's id kept: {first}");
    assert_eq!(call["function"]["name"], "weather", "{first}");
    assert_eq!(
        call["function"]["arguments"], r#"{"city":"Paris"}"#,
        "arguments as a JSON string: {first}"
    );
    assert_eq!(
        first["choices"][0]["finish_reason"], "tool_calls",
        "tool_use is tool_calls: {first}"
    );
    let sent = up.seen()[0].json();
    assert_eq!(sent["tool_choice"], json!({"type": "any"}), "required is any: {sent}");
    assert_eq!(sent["tools"][0]["input_schema"]["type"], "object", "schema: {sent}");
    let image = &sent["messages"][0]["content"][1];
    assert_eq!(
        image["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}),
        "{sent}"
    );
    let second = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(&json!({"model": "smart", "tools": tools, "messages": [
            {"role": "user", "content": "Weather here?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, sunny"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(second.status(), 200, "the round trip's second leg is served");
    let sent = up.seen()[1].json();
    let result = &sent["messages"][2]["content"][0];
    assert_eq!(
        sent["messages"][2]["role"], "user",
        "tool results are a user turn: {sent}"
    );
    assert_eq!(result["type"], "tool_result", "{sent}");
    assert_eq!(result["tool_use_id"], "toolu_1", "matched by id: {sent}");
    assert_eq!(
        sent["messages"][1]["content"][0]["type"], "tool_use",
        "the call replayed: {sent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_in_the_door_shape_before_any_upstream() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&doors(&[("claude", "anthropic", up.url())], SMART));
    let many: Vec<Value> = (0..129)
        .map(|i| json!({"type": "function", "function": {"name": format!("t{i}")}}))
        .collect();
    for (body, path_in_message) in [
        (json!({"model": "smart"}), "messages"),
        (json!({"model": "smart", "messages": []}), "messages"),
        (
            json!({"model": "smart", "messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "smart", "messages": [{"role": "user", "content": ""}]}),
            "messages[0].content",
        ),
        (
            json!({"model": "smart", "messages": [{"role": "user", "content": "x"}], "temperature": 3}),
            "temperature",
        ),
        (
            json!({"model": "smart", "messages": [{"role": "user", "content": "x"}], "top_p": 1.5}),
            "top_p",
        ),
        (
            json!({"model": "smart", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
            "max_tokens",
        ),
        (
            json!({"model": "smart", "messages": [{"role": "user", "content": "x"}], "tools": many}),
            "tools",
        ),
        (
            json!({"model": "smart", "messages": [{"role": "user", "content": "x"}], "n": 2}),
            "n",
        ),
    ] {
        let resp = client()
            .post(proxy.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 400, "{body} is refused");
        assert_eq!(resp.headers()["x-llm-sidecar-error"], "invalid_request", "{body}");
        let v: Value = resp.json().await.expect("json");
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains(path_in_message),
            "the message names {path_in_message}: {v}"
        );
    }
    let anthropic = client()
        .post(proxy.url("/any/v1/messages"))
        .json(&json!({"model": "smart", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}], "temperature": 1.5}))
        .send()
        .await
        .expect("send");
    assert_eq!(anthropic.status(), 400, "temperature above 1 on the Anthropic door");
    let v: Value = anthropic.json().await.expect("json");
    assert_eq!(v["type"], "error", "Anthropic's error shape: {v}");
    assert!(
        v["error"]["message"].as_str().unwrap_or("").contains("temperature"),
        "{v}"
    );
    let unknown = client()
        .post(proxy.url("/v1/chat/completions"))
        .json(&json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(unknown.status(), 404, "an unknown model");
    let v: Value = unknown.json().await.expect("json");
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("\"nope\"") && message.contains("smart") && message.contains("claude"),
        "names it and lists what is configured: {v}"
    );
    assert_eq!(up.count(), 0, "nothing reached the upstream");
}

#[tokio::test]
async fn translated_answers_keep_the_connection_open() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&doors(&[("claude", "anthropic", up.url())], SMART));
    let body = r#"{"model": "smart", "messages": [{"role": "user", "content": "Hi"}]}"#;
    let one = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // Two requests back to back on one connection: both are answered only if the first answer
    // is framed. A translated JSON answer is written whole at its end, its head held until then
    // and sent with the body's length (one write, not a chunked head, chunk and terminator).
    let out = raw_answers(proxy.addr, format!("{one}{one}").as_bytes(), 2).await;
    let lower = out.to_ascii_lowercase();
    assert!(
        !lower.contains("transfer-encoding"),
        "a translated JSON answer is not chunked: {out}"
    );
    for answer in lower.split("http/1.1 200").skip(1) {
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|n| n.trim().parse::<usize>().ok());
        let body_end = body.find("http/1.1").unwrap_or(body.len());
        assert_eq!(length, Some(body_end), "the answer's length is its body's: {answer}");
    }
    assert_eq!(
        out.matches("HTTP/1.1 200").count(),
        2,
        "both requests answered on one connection: {out}"
    );
    assert_eq!(
        out.matches("\"chat.completion\"").count(),
        2,
        "two complete answers: {out}"
    );
}
