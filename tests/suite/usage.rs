//! Usage metering and the request log through the real proxy: exact tokens and cost per
//! provider, the include_usage rewrite seen from both sides, and one row per request whatever
//! happens to it.

use std::time::Duration;

use crate::harness::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_stream_is_logged_with_exact_tokens_and_cost() {
    let up = Fake::always(Reply::Sse(anthropic_events())).await;
    let s = Logged::priced(&[("anthropic", "anthropic", up.url())], "");
    let resp = client()
        .post(s.proxy.url("/anthropic/v1/messages"))
        .header("x-session-id", "conv-42")
        .json(&json!({"model": "claude-sonnet-5", "stream": true, "messages": []}))
        .send()
        .await
        .expect("request");
    let body = read_all(resp).await;
    assert_eq!(
        String::from_utf8_lossy(&body).matches("event:").count(),
        5,
        "stream untouched"
    );
    let rows = s.wait_rows(1).await;
    assert_eq!(rows.len(), 1, "one row for the request: {rows:?}");
    let r = &rows[0];
    assert_eq!(
        (r["input_tokens"].clone(), r["output_tokens"].clone()),
        (json!(1200), json!(87)),
        "input from message_start, output from message_delta: {r}"
    );
    assert_eq!(
        (r["cache_read_tokens"].clone(), r["cache_write_tokens"].clone()),
        (json!(5000), json!(300)),
        "cache reads and writes: {r}"
    );
    assert_eq!(r["usage_source"], "reported", "usage as reported: {r}");
    assert_eq!(r["model"], "claude-sonnet-5", "the model the upstream named: {r}");
    assert_eq!(
        (r["session"].clone(), r["stream"].clone(), r["status"].clone()),
        (json!("conv-42"), json!(1), json!(200)),
        "session, stream flag and status: {r}"
    );
    assert_eq!(
        (r["pool"].clone(), r["account"].clone(), r["provider"].clone()),
        (json!("anthropic"), json!("acct-0"), json!("anthropic")),
        "where it was served: {r}"
    );
    let expected = (1200.0 * 3.0 + 87.0 * 15.0 + 5000.0 * 0.30 + 300.0 * 3.75) / 1e6;
    assert!(
        (r["cost_usd"].as_f64().expect("cost") - expected).abs() < 1e-12,
        "cost at the Sonnet prices, {expected} USD: {r}"
    );
    let view = s.proxy.core.snapshot().pools[0].accounts[0]
        .state
        .ledger
        .view(llm_sidecar::clock::now_ms());
    assert!(
        (view.block_cost - expected).abs() < 1e-12 && view.block_tokens == 6587,
        "ledger fed: {view:?}"
    );
}

fn openai_events(with_usage: bool) -> Vec<(Duration, String)> {
    let chunk = |c: &str| {
        format!("data: {{\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{c}\"}}}}]}}\n\n")
    };
    let mut ev = vec![(Duration::ZERO, chunk("Hel")), (Duration::from_millis(5), chunk("lo"))];
    if with_usage {
        ev.push((Duration::from_millis(5), "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1-2025-04-14\",\"choices\":[],\"usage\":{\"prompt_tokens\":900,\"completion_tokens\":40,\"prompt_tokens_details\":{\"cached_tokens\":100}}}\n\n".into()));
    }
    ev.push((Duration::from_millis(5), "data: [DONE]\n\n".into()));
    ev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_stream_gets_usage_upstream_while_the_client_sees_none() {
    // The fake answers like OpenAI: the usage chunk only when the request asked for it.
    let up = Fake::start(|seen, _| {
        let asked = seen.json()["stream_options"]["include_usage"] == json!(true);
        Reply::Sse(openai_events(asked))
    })
    .await;
    let s = Logged::priced(&[("openai", "openai", up.url())], "");
    let c = client();
    let plain = read_all(
        c.post(s.proxy.url("/openai/v1/chat/completions"))
            .json(&json!({"model": "gpt-4.1", "stream": true}))
            .send()
            .await
            .expect("req"),
    )
    .await;
    let plain = String::from_utf8_lossy(&plain).into_owned();
    let expected_client: String = openai_events(false).into_iter().map(|(_, e)| e).collect();
    assert_eq!(plain, expected_client, "client sees exactly the stream it asked for");
    assert_eq!(
        up.seen()[0].json()["stream_options"]["include_usage"],
        true,
        "usage asked upstream"
    );

    let asked = read_all(
        c.post(s.proxy.url("/openai/v1/chat/completions"))
            .json(&json!({"model": "gpt-4.1", "stream": true, "stream_options": {"include_usage": true}}))
            .send()
            .await
            .expect("req"),
    )
    .await;
    assert!(
        String::from_utf8_lossy(&asked).contains("\"usage\":{"),
        "a client that asked gets its usage chunk"
    );

    let rows = s.wait_rows(2).await;
    assert_eq!(rows.len(), 2, "one row per request: {rows:?}");
    for r in &rows {
        assert_eq!(
            (
                r["input_tokens"].clone(),
                r["output_tokens"].clone(),
                r["cache_read_tokens"].clone()
            ),
            (json!(900), json!(40), json!(100)),
            "tokens from the usage chunk, whether or not the client asked for it: {r}"
        );
        assert_eq!(r["usage_source"], "reported", "usage as reported: {r}");
        let expected = (800.0 * 2.0 + 100.0 * 0.5 + 40.0 * 8.0) / 1e6;
        assert!(
            (r["cost_usd"].as_f64().expect("cost") - expected).abs() < 1e-12,
            "cost at the GPT-4.1 prices, cached input cheaper, {expected} USD: {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_json_and_unpriced_models_are_logged() {
    let up = Fake::always(Reply::Json(200, json!({"candidates": [{"finishReason": "STOP"}], "modelVersion": "gemini-9-ultra", "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 5, "thoughtsTokenCount": 7}}))).await;
    let s = Logged::priced(&[("gemini", "gemini", up.url())], "");
    let resp = client()
        .post(s.proxy.url("/gemini/v1beta/models/gemini-9-ultra:generateContent"))
        .json(&json!({"contents": []}))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 200, "the Gemini request is served");
    let rows = s.wait_rows(1).await;
    let r = &rows[0];
    assert_eq!(
        (r["input_tokens"].clone(), r["output_tokens"].clone()),
        (json!(30), json!(12)),
        "output counts thoughts too (5 + 7): {r}"
    );
    assert_eq!(r["cost_usd"], Value::Null, "no price: null, not 0");
    assert_eq!(r["model"], "gemini-9-ultra", "the model version reported: {r}");
    assert!(
        logs().contains("no price for this model"),
        "unpriced model is said in the log"
    );
}
