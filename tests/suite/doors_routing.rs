//! The front doors' routing: model lists, pools named explicitly (`/{pool}/chat/completions`,
//! `backend`, `POOL/MODEL`), the cheapest target first, failover across providers, upstream auth
//! errors kept ours, and what `check` refuses.

use serde_json::{json, Value};

use crate::harness::doors::*;
use crate::harness::*;

const SMART: &str = "models:\n  - { name: smart, targets: [ { pool: claude, model: claude-sonnet-4-5 } ] }\n";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheapest_goes_to_the_lowest_price_first_and_dropped_hints_are_named() {
    let dear = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let cheap = Fake::always(Reply::Json(200, openai_reply())).await;
    let models = "prices:\n  - { model: claude-opus-*, input: 15.0, output: 75.0 }\n  - { model: gpt-4.1-mini, input: 0.4, output: 1.6 }\n\
                  models:\n  - { name: thrifty, strategy: cheapest, targets: [ { pool: claude, model: claude-opus-4 }, { pool: gpt, model: gpt-4.1-mini } ] }\n";
    let proxy = Proxy::start(&doors(
        &[("claude", "anthropic", dear.url()), ("gpt", "openai", cheap.url())],
        models,
    ));
    let resp = client()
        .post(proxy.url("/any/v1/messages"))
        .json(&json!({"model": "thrifty", "max_tokens": 10, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "served");
    assert_eq!(
        resp.headers()["x-llm-sidecar-pool"],
        "gpt",
        "the cheaper target first, though listed second"
    );
    let dropped = resp
        .headers()
        .get("x-llm-sidecar-dropped")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        dropped.contains("thinking") && dropped.contains("cache_control"),
        "Anthropic-only hints dropped and named: {dropped}"
    );
    assert_eq!((dear.count(), cheap.count()), (0, 1), "only the cheap target was asked");
}
