//! The front doors with JSON answers: an OpenAI-compatible endpoint and an Anthropic-compatible
//! one serving any model of any pool. Each test asserts on the request the upstream received in
//! its own dialect and on the answer the client got in its own.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::*;

/// Doors at `/v1` (OpenAI) and `/any` (Anthropic) and the pools `(name, provider, upstream)`;
/// `models` is the `models:` list (YAML lines).
pub fn doors(pools: &[(&str, &str, String)], models: &str) -> String {
    let mut out = String::from(
        "routes:\n  - { name: unified, match: { path_prefix: /v1 }, api: openai }\n  \
         - { name: any, match: { path_prefix: /any }, api: anthropic }\n",
    );
    out.push_str(models);
    out.push_str("pools:\n");
    for (name, provider, url) in pools {
        out.push_str(&pool_yaml(
            name,
            provider,
            std::slice::from_ref(url),
            "    retry: { backoff: 1ms }\n",
        ));
    }
    out
}

pub fn gemini_reply() -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Bonjour"}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 3, "totalTokenCount": 12},
        "modelVersion": "gemini-2.5-pro"
    })
}

pub fn openai_reply() -> Value {
    json!({
        "id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": "gpt-4.1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hallo"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24, "prompt_tokens_details": {"cached_tokens": 8}}
    })
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_listed_and_pools_named_explicitly() {
    let claude = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let gpt = Fake::always(Reply::Json(200, openai_reply())).await;
    let proxy = Proxy::start(&doors(
        &[("claude", "anthropic", claude.url()), ("gpt", "openai", gpt.url())],
        SMART,
    ));
    let list: Value = client()
        .get(proxy.url("/v1/models"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(list["object"], "list", "OpenAI's list: {list}");
    assert_eq!(list["data"][0]["id"], "smart", "the configured names: {list}");
    let list: Value = client()
        .get(proxy.url("/any/v1/models"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(list["data"][0]["type"], "model", "Anthropic's list: {list}");
    let msg = json!([{"role": "user", "content": "x"}]);
    for (path, body, expect_model) in [
        (
            "/v1/gpt/chat/completions",
            json!({"model": "gpt-4.1-mini", "messages": msg}),
            "gpt-4.1-mini",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "gpt-4.1-nano", "backend": "gpt", "messages": msg}),
            "gpt-4.1-nano",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "gpt/openai/gpt-4o", "messages": msg}),
            "openai/gpt-4o",
        ),
    ] {
        let resp = client().post(proxy.url(path)).json(&body).send().await.expect("send");
        assert_eq!(resp.status(), 200, "{path} {body}");
        let sent = gpt.seen().pop().expect("forwarded").json();
        assert_eq!(
            sent["model"], expect_model,
            "same dialect: only model rewritten: {sent}"
        );
        assert!(
            sent.get("backend").is_none(),
            "the door's own field never goes upstream: {sent}"
        );
        assert_eq!(sent["messages"], msg, "the rest as the client sent it: {sent}");
    }
    assert_eq!(claude.count(), 0, "explicit pools only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_moves_to_the_next_provider_and_auth_errors_stay_ours() {
    let down = Fake::always(Reply::Json(
        503,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}),
    ))
    .await;
    let gemini = Fake::always(Reply::Json(200, gemini_reply())).await;
    let unauthorized = Fake::always(Reply::Json(
        401,
        json!({"error": {"message": "bad key", "type": "invalid_request_error"}}),
    ))
    .await;
    let models = "models:\n  - { name: smart, targets: [ { pool: claude, model: claude-sonnet-4-5 }, { pool: gem, model: gemini-2.5-pro } ] }\n  \
                  - { name: locked, targets: [ { pool: gpt, model: gpt-4.1 } ] }\n";
    let s = Logged::start(
        &doors(
            &[
                ("claude", "anthropic", down.url()),
                ("gem", "gemini", gemini.url()),
                ("gpt", "openai", unauthorized.url()),
            ],
            models,
        ),
        "",
    );
    let resp = client()
        .post(s.proxy.url("/v1/chat/completions"))
        .json(&json!({"model": "smart", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "served by the second target");
    assert_eq!(resp.headers()["x-llm-sidecar-pool"], "gem", "which pool served");
    assert_eq!(
        resp.headers()["x-llm-sidecar-model"],
        "gemini-2.5-pro",
        "which model served"
    );
    let v: Value = resp.json().await.expect("json");
    assert_eq!(
        v["choices"][0]["message"]["content"], "Bonjour",
        "Gemini's answer in OpenAI's shape: {v}"
    );
    assert_eq!(down.count(), 1, "the first target was tried once");
    let locked = client()
        .post(s.proxy.url("/v1/chat/completions"))
        .json(&json!({"model": "locked", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(locked.status(), 502, "an upstream 401 is never the client's own");
    let v: Value = locked.json().await.expect("json");
    assert!(
        v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an OpenAI-shaped error: {v}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let rows = s.wait_rows(2).await;
    assert_eq!(
        rows[0]["pool"], "gem",
        "the log row names the target that served: {:?}",
        rows[0]
    );
    assert_eq!(rows[0]["attempts"], 2, "two attempts: {:?}", rows[0]);
    assert_eq!(
        rows[0]["input_tokens"], 9,
        "the provider's own numbers are logged: {:?}",
        rows[0]
    );
    assert_eq!(rows[0]["provider"], "gemini", "{:?}", rows[0]);
}

#[test]
fn check_refuses_doors_and_models_that_cannot_work() {
    let key = secret_file("doors-check.key", "k");
    let pools = format!("pools:\n  p: {{ provider: anthropic, accounts: [{{ name: a, base_url: \"https://x\", key_file: \"{key}\" }}] }}\n");
    let cases = [
        ("routes:\n  - { name: r, match: { path_prefix: /r }, pool: p, api: openai }\n", "routes[0]: set pool (pass-through) or api"),
        ("routes:\n  - { name: r, match: { path_prefix: /r } }\n", "routes[0]: set pool (pass-through) or api"),
        ("routes:\n  - { name: r, pool: p }\nmodels:\n  - { name: m, targets: [ { pool: nope, model: x } ] }\n", "models[0].targets[0].pool: no pool named \"nope\""),
        ("routes:\n  - { name: r, pool: p }\nmodels:\n  - { name: m, targets: [] }\n", "models[0].targets: list at least one target"),
        ("routes:\n  - { name: r, pool: p }\nmodels:\n  - { name: m, strategy: cheapest, targets: [ { pool: p, model: unpriced } ] }\n", "models[0].targets[0].model: \"unpriced\" has no price"),
        ("routes:\n  - { name: r, pool: p }\nmodels:\n  - { name: a/b, targets: [ { pool: p, model: x } ] }\n", "models[0].name: use 1-128 characters"),
    ];
    for (yaml, expected) in cases {
        let problems = config_problems(&format!("{yaml}{pools}"));
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "{expected:?} among {problems:?}"
        );
    }
}
