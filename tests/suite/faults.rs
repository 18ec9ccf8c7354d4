//! Faults found in review, each pinned by a test: empty streamed bodies, Expect: 100-continue,
//! breaker probes released when their client leaves, retried streams whose next answer is not a
//! stream, in-band errors that keep their partial usage, budgets that keep the real error, early
//! refusals that do not drain unread bodies.

use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(provider: &str, urls: &[String], extra: &str) -> String {
    format!(
        "routes:\n  - {{ name: r, match: {{ path_prefix: /a }}, pool: p }}\npools:\n{}",
        pool_yaml("p", provider, urls, extra)
    )
}

fn overloaded() -> Vec<(Duration, String)> {
    sse(
        Duration::from_millis(5),
        &[
            (
                "message_start",
                json!({"type": "message_start", "message": {"model": "claude-sonnet-5", "usage": {"input_tokens": 40, "output_tokens": 1}}}),
            ),
            (
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_chunked_body_goes_upstream_as_an_empty_body() {
    let up = Fake::always(Reply::Json(200, json!({"data": []}))).await;
    let proxy = Proxy::start(&config("openai", &[up.url()], "    timeouts: { first_byte: 3s }\n"));
    let empty: Vec<Result<Vec<u8>, std::io::Error>> = vec![];
    let started = Instant::now();
    let resp = client()
        .post(proxy.url("/a/v1/files/batch/cancel"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(empty)))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200, "answered, not timed out");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no wait for a body that never comes"
    );
    assert_eq!(up.seen()[0].body.len(), 0, "the upstream received an empty body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_is_answered_and_the_body_forwarded() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config("anthropic", &[up.url()], ""));
    let body = br#"{"model":"claude-sonnet-5","messages":[]}"#;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    let head = format!("POST /a/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).await.expect("write head");
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("an interim answer")
        .expect("read");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"),
        "the interim answer is 100 Continue: {}",
        String::from_utf8_lossy(&buf[..n])
    );
    s.write_all(body).await.expect("write body");
    let rest = read_answers(&mut s, 1).await;
    assert!(rest.starts_with("HTTP/1.1 200"), "then the final answer, 200: {rest}");
    let seen = up.seen();
    assert_eq!(&seen[0].body[..], body, "the body followed the 100");
    assert!(
        seen[0].header("expect").is_none(),
        "the upstream is not asked to continue again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_whose_client_leaves_lets_the_next_request_probe() {
    // n=0: fail (open the breaker); n=1: the probe, slow (its client gives up); then healthy.
    let up = Fake::start(|_, n| match n {
        0 => Reply::Json(503, json!({})),
        1 => Reply::Delay(Duration::from_secs(3), Box::new(Reply::Json(200, anthropic_reply()))),
        _ => Reply::Json(200, anthropic_reply()),
    })
    .await;
    let proxy = Proxy::start(&config(
        "anthropic",
        &[up.url()],
        "    retry: { attempts: 1 }\n    breaker: { failures: 1, cooldown: 200ms }\n",
    ));
    assert_eq!(
        client()
            .post(proxy.url("/a/v1/messages"))
            .body("{}")
            .send()
            .await
            .expect("req")
            .status(),
        503,
        "the first failure opens the breaker"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    assert!(
        impatient
            .post(proxy.url("/a/v1/messages"))
            .body("{}")
            .send()
            .await
            .is_err(),
        "the probe's client left"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let next = client()
        .post(proxy.url("/a/v1/messages"))
        .body("{}")
        .send()
        .await
        .expect("req");
    assert_eq!(next.status(), 200, "the next request probed and succeeded");
    assert_eq!(up.count(), 3, "failure, abandoned probe, then the next probe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_stream_whose_next_answer_is_not_a_stream_ends_with_an_error_event() {
    // The error comes 100 ms after the head, so the head has reached the client by then (when
    // both arrive together Pingora drops the batch unwritten and the client simply gets the 429).
    let mut late_error = overloaded();
    late_error[1].0 = Duration::from_millis(100);
    let first = Fake::always(Reply::Sse(late_error)).await;
    let second = Fake::always(Reply::Raw(
        429,
        vec![("content-type", "application/json".into())],
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#.into(),
    ))
    .await;
    let proxy = Proxy::start(&config(
        "anthropic",
        &[first.url(), second.url()],
        "    retry: { backoff: 1ms }\n",
    ));
    let resp = client()
        .post(proxy.url("/a/v1/messages"))
        .json(&json!({"stream": true}))
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 200, "the first attempt's head");
    let text = String::from_utf8_lossy(&resp.bytes().await.unwrap_or_default()).into_owned();
    assert!(
        text.starts_with("event: error\ndata: "),
        "an SSE error event, not raw JSON: {text:?}"
    );
    assert!(
        text.contains("429") && !text.contains("message_start"),
        "the error event carries the 429, not the first attempt's events: {text}"
    );
    assert_eq!((first.count(), second.count()), (1, 1), "one attempt on each account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_band_error_that_is_not_retried_keeps_its_partial_usage() {
    let up = Fake::always(Reply::Sse(overloaded())).await;
    let s = Logged::start(&config("anthropic", &[up.url()], ""), "");
    let resp = client()
        .post(s.proxy.url("/a/v1/messages"))
        .json(&json!({"stream": true}))
        .send()
        .await
        .expect("req");
    let text = String::from_utf8_lossy(&resp.bytes().await.unwrap_or_default()).into_owned();
    assert!(
        text.contains("message_start") && text.contains("overloaded_error"),
        "passed on as the upstream sent it"
    );
    let rows = s.wait_rows(1).await;
    let row = rows
        .first()
        .map(|r| (r["input_tokens"].clone(), r["usage_source"].clone()));
    assert_eq!(
        row,
        Some((json!(40), json!("partial"))),
        "input tokens from message_start kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_keeps_the_real_error() {
    let slow = |_: &Seen, _| Reply::Delay(Duration::from_secs(5), Box::new(Reply::Json(200, anthropic_reply())));
    let (a, b) = (Fake::start(slow).await, Fake::start(slow).await);
    let extra = "    timeouts: { first_byte: 100ms }\n    retry: { attempts: 2, backoff: 1ms, budget: 0% }\n    breaker: { failures: 1000 }\n";
    let proxy = Proxy::start(&config("anthropic", &[a.url(), b.url()], extra));
    // A client without pooled connections: hyper silently re-sends a request whose pooled
    // connection the sidecar just closed, which would count as a 17th request here.
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let sends = (0..16).map(|_| c.post(proxy.url("/a/v1/messages")).body("{}").send());
    let results = futures_util::future::join_all(sends).await;
    for r in &results {
        let r = r.as_ref().expect("answer");
        assert_eq!(r.status(), 504, "the real failure, never a generic 503");
        assert_eq!(
            r.headers()["x-llm-sidecar-error"],
            "first_byte_timeout",
            "the error kind is the real one"
        );
    }
    assert_eq!(a.count() + b.count(), 16 + 10, "the budget's floor of retries, no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_stream_whose_first_data_is_an_error_is_retried() {
    let err = Fake::always(Reply::Sse(vec![(
        Duration::ZERO,
        "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":\"rate_limit_exceeded\"}}\n\n"
            .into(),
    )]))
    .await;
    let good_events: Vec<(Duration, String)> = vec![
        (
            Duration::ZERO,
            "data: {\"id\":\"c\",\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"
                .into(),
        ),
        (Duration::ZERO, "data: [DONE]\n\n".into()),
    ];
    let expected: String = good_events.iter().map(|(_, e)| e.clone()).collect();
    let good = Fake::always(Reply::Sse(good_events)).await;
    let proxy = Proxy::start(&config(
        "openai",
        &[err.url(), good.url()],
        "    retry: { backoff: 1ms }\n",
    ));
    let resp = client()
        .post(proxy.url("/a/v1/chat/completions"))
        .json(&json!({"stream": true, "stream_options": {"include_usage": true}}))
        .send()
        .await
        .expect("req");
    let text = read_clean(resp).await;
    assert_eq!(text, expected, "one clean stream from the good account");
    assert_eq!(
        (err.count(), good.count()),
        (1, 1),
        "one attempt on the failing account, one on the good one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_529_cools_the_account_down_like_a_429() {
    let busy = Fake::always(Reply::Raw(529, vec![("retry-after", "30".into())], "{}".into())).await;
    let good = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(
        "anthropic",
        &[busy.url(), good.url()],
        "    retry: { backoff: 1ms }\n",
    ));
    for _ in 0..6 {
        assert_eq!(
            client()
                .post(proxy.url("/a/v1/messages"))
                .body("{}")
                .send()
                .await
                .expect("req")
                .status(),
            200,
            "served by the good account"
        );
    }
    assert_eq!(busy.count(), 1, "cooling down after its 529");
    let snap = proxy.core.snapshot();
    assert_eq!(
        snap.pools[0].accounts[0].state.health.state(Instant::now()).name(),
        "cooling_down",
        "the 529 account is cooling down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_refused_before_its_body_was_read_closes_the_connection() {
    let up = Fake::always(Reply::Json(200, json!({}))).await;
    let proxy = Proxy::start(&format!(
        "clients:\n  tokens: [{{ name: app, token_file: \"{}\" }}]\n{}",
        secret_file("faults-app.token", "tok"),
        config("openai", &[up.url()], "")
    ));
    let resp = client()
        .post(proxy.url("/a/v1/chat/completions"))
        .body(vec![b'x'; 1 << 20])
        .send()
        .await
        .expect("req");
    assert_eq!(resp.status(), 401, "no token: refused before the body is read");
    assert_eq!(
        resp.headers()["connection"],
        "close",
        "the unread megabyte is not drained to keep the connection"
    );
    let ok = client()
        .post(proxy.url("/a/v1/chat/completions"))
        .header("authorization", "Bearer tok")
        .body("{}")
        .send()
        .await
        .expect("req");
    assert_eq!(ok.status(), 200, "with its token the client is served");
}
