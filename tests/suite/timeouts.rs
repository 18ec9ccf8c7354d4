//! Streaming and timeouts: SSE passes unbuffered; connect, first-byte, idle and total limits each
//! end a request the documented way, with a JSON body in the provider's shape when nothing was sent.

use std::time::{Duration, Instant};

use crate::harness::*;
use futures_util::StreamExt;
use serde_json::json;

fn config(provider: &str, upstreams: &[String], timeouts: &str) -> String {
    format!(
        "routes:\n  - {{ name: r, match: {{ path_prefix: /p }}, pool: p }}\npools:\n{}",
        pool_yaml("p", provider, upstreams, &format!("    timeouts: {{ {timeouts} }}\n"))
    )
}

fn event(i: usize) -> String {
    format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"t{i}\"}}}}\n\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_arrive_as_they_are_sent() {
    let events: Vec<(Duration, String)> = (0..5)
        .map(|i| (Duration::from_millis(if i == 0 { 0 } else { 200 }), event(i)))
        .collect();
    let up = Fake::always(Reply::Sse(events)).await;
    let proxy = Proxy::start(&config("anthropic", &[up.url()], "first_byte: 5s, idle: 2s"));
    let start = Instant::now();
    let resp = client()
        .post(proxy.url("/p/v1/messages"))
        .json(&json!({"model": "claude-sonnet-5", "stream": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200, "the stream is served");
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream",
        "the upstream's content type passes"
    );
    assert_eq!(resp.headers()["cache-control"], "no-cache", "SSE must not be cached");
    assert_eq!(
        resp.headers()["x-accel-buffering"],
        "no",
        "SSE must not be buffered by proxies"
    );
    let mut arrivals = Vec::new();
    let mut text = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        arrivals.push(start.elapsed());
        text.extend_from_slice(&chunk);
    }
    let expected: String = (0..5).map(event).collect();
    assert_eq!(String::from_utf8_lossy(&text), expected, "stream passes byte for byte");
    assert!(arrivals.len() >= 5, "one chunk per event at least: {arrivals:?}");
    assert!(
        arrivals[0] < Duration::from_millis(150),
        "first event not held back: {arrivals:?}"
    );
    for w in arrivals.windows(2).take(4) {
        let gap = w[1] - w[0];
        assert!(
            gap > Duration::from_millis(120) && gap < Duration::from_millis(400),
            "events ~200 ms apart: {arrivals:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_a_502_at_once() {
    let (_held, dead) = refusing();
    let proxy = Proxy::start(&config("openai", &[dead], "connect: 2s"));
    let start = Instant::now();
    let resp = client()
        .post(proxy.url("/p/v1/chat/completions"))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 502, "a refused connection is a bad gateway");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "no waiting on a refused connect"
    );
    assert_eq!(
        resp.headers()["x-llm-sidecar-error"],
        "connect_refused",
        "error kind connect_refused"
    );
    assert_eq!(
        resp.headers()["connection"],
        "close",
        "the connection is not reused after an error: say so"
    );
    let v: serde_json::Value = resp.json().await.expect("json");
    assert!(v["error"]["message"].is_string(), "openai shape: {v}");
    let again = client()
        .post(proxy.url("/p/v1/chat/completions"))
        .json(&json!({}))
        .send()
        .await
        .expect("no reset on reuse");
    assert_eq!(again.status(), 502, "the next request gets the same answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_is_a_504_at_the_limit() {
    // A listener whose backlog is full: further connects hang until the client gives up.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let _filler = tokio::net::TcpStream::connect(addr)
        .await
        .expect("first connect fills the backlog");
    let proxy = Proxy::start(&config("gemini", &[format!("http://{addr}")], "connect: 400ms"));
    let start = Instant::now();
    let resp = client()
        .post(proxy.url("/p/v1beta/models/m:generateContent"))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    let took = start.elapsed();
    assert_eq!(resp.status(), 504, "a connect timeout is a gateway timeout");
    assert_eq!(
        resp.headers()["x-llm-sidecar-error"],
        "connect_timeout",
        "error kind connect_timeout"
    );
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "ended by the connect timeout: {took:?}"
    );
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["status"], "DEADLINE_EXCEEDED", "gemini shape: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_is_a_504_at_the_first_byte_timeout() {
    let up = Fake::always(Reply::Delay(
        Duration::from_secs(5),
        Box::new(Reply::Json(200, anthropic_reply())),
    ))
    .await;
    let proxy = Proxy::start(&config("anthropic", &[up.url()], "first_byte: 500ms, idle: 10s"));
    let start = Instant::now();
    let resp = client()
        .post(proxy.url("/p/v1/messages"))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    let took = start.elapsed();
    assert_eq!(resp.status(), 504, "no answer in time is a gateway timeout");
    assert_eq!(
        resp.headers()["x-llm-sidecar-error"],
        "first_byte_timeout",
        "error kind first_byte_timeout"
    );
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(2500),
        "at the first-byte limit: {took:?}"
    );
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["type"], "api_error", "anthropic shape: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_is_ended_by_the_idle_timeout() {
    let events = vec![
        (Duration::ZERO, event(0)),
        (Duration::from_millis(100), event(1)),
        (Duration::from_secs(10), event(2)),
    ];
    let up = Fake::always(Reply::Sse(events)).await;
    // first_byte is longer than idle: the idle limit must still apply inside the stream.
    let proxy = Proxy::start(&config("anthropic", &[up.url()], "first_byte: 5s, idle: 400ms"));
    let start = Instant::now();
    let resp = client()
        .post(proxy.url("/p/v1/messages"))
        .header("x-request-id", "idle-timeout-test")
        .json(&json!({"stream": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200, "the stream had started");
    let mut got = Vec::new();
    let mut stream = resp.bytes_stream();
    let mut ended_with_error = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => ended_with_error = true,
        }
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "ended ~400 ms after the last event: {took:?}"
    );
    assert!(ended_with_error, "a cut stream is not a clean end");
    assert_eq!(
        String::from_utf8_lossy(&got),
        format!("{}{}", event(0), event(1)),
        "what was sent arrived"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while !logged(&["idle-timeout-test", "\"error_kind\":\"idle_timeout\""]) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        logged(&["idle-timeout-test", "\"error_kind\":\"idle_timeout\""]),
        "the access log names the idle timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_timeout_bounds_a_trickling_stream() {
    let events: Vec<(Duration, String)> = (0..40).map(|i| (Duration::from_millis(100), event(i))).collect();
    let up = Fake::always(Reply::Sse(events)).await;
    let proxy = Proxy::start(&config("anthropic", &[up.url()], "first_byte: 1s, idle: 1s, total: 1s"));
    let start = Instant::now();
    let resp = client()
        .post(proxy.url("/p/v1/messages"))
        .header("x-request-id", "total-timeout-test")
        .json(&json!({"stream": true}))
        .send()
        .await
        .expect("request");
    let mut stream = resp.bytes_stream();
    while stream.next().await.is_some() {}
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "cut at the total limit: {took:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while !logged(&["total-timeout-test", "\"error_kind\":\"total_timeout\""]) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        logged(&["total-timeout-test", "\"error_kind\":\"total_timeout\""]),
        "ended by the total limit, not another one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_reset_is_a_502() {
    let up = Fake::always(Reply::Reset).await;
    let proxy = Proxy::start(&config("openai", &[up.url()], "first_byte: 2s"));
    let resp = client()
        .post(proxy.url("/p/v1/chat/completions"))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 502, "a reset is a bad gateway");
    assert_eq!(
        resp.headers()["x-llm-sidecar-error"],
        "upstream_error",
        "error kind upstream_error"
    );
    let again = client()
        .post(proxy.url("/p/v1/chat/completions"))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), 502, "the proxy keeps serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolvable_upstream_is_a_502_dns_error() {
    let proxy = Proxy::start(&config(
        "openai",
        &["https://no-such-host.invalid".to_string()],
        "connect: 2s",
    ));
    let resp = client()
        .post(proxy.url("/p/v1/chat/completions"))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 502, "an unresolvable host is a bad gateway");
    assert_eq!(
        resp.headers()["x-llm-sidecar-error"],
        "dns_error",
        "error kind dns_error"
    );
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        v["error"]["message"], "the upstream host name could not be resolved",
        "the message says what failed: {v}"
    );
}
