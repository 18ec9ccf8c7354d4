//! What a slow, idle, greedy or broken peer can no longer take from the sidecar: connections held
//! open by dribbled heads, idle keep-alives or trickled bodies; file descriptors past the
//! connection cap; memory in request bodies; a stream stuck before its first token. Client faults
//! are counted as the client's, and pipelining and h2c are served. (One endless SSE event is
//! measured in `process`, where the sidecar's memory is its own.)

use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config(upstreams: &[String], server: &str, pool_extra: &str) -> String {
    format!(
        "server: {{ {server} }}\nroutes:\n  - {{ name: a, match: {{ path_prefix: /a }}, pool: a }}\npools:\n{}",
        pool_yaml("a", "anthropic", upstreams, pool_extra)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_head_is_cut_at_the_header_timeout() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "header_timeout: 1s", ""));
    let started = Instant::now();
    let head = b"POST /a/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n";
    // The dribbling connection and a silent one, side by side.
    let silent = async {
        let mut silent = TcpStream::connect(proxy.addr).await.expect("connect");
        until_closed(&mut silent, Duration::from_secs(3)).await
    };
    let (answer, silent) = tokio::join!(dribble(proxy.addr, head, Duration::from_secs(3)), silent);
    let answer = answer.expect("closed by the sidecar");
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "closed near the 1 s header timeout, not per byte: {took:?}"
    );
    assert_eq!(status_of(&answer), 408, "told why: {answer}");
    assert!(
        silent.is_some(),
        "a connection that sends nothing is closed after the header timeout"
    );
    assert_eq!(up.count(), 0, "nothing reached the upstream");
    let counted = metric(&proxy, "llm_sidecar_rejected_requests_total{reason=\"header_timeout\"}").await;
    assert!(counted >= 1.0, "counted as header_timeout: {counted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_all_released_after_the_header_timeout() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "header_timeout: 1s", ""));
    let mut conns = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
        s.write_all(b"POST /a/v1/messages HTTP/1.1\r\nhost: x\r\n")
            .await
            .expect("write");
        conns.push(s);
    }
    // All closed within 2 s of the last connect: the 1 s header timeout plus 1 s.
    let closes = conns.iter_mut().map(|s| until_closed(s, Duration::from_secs(2)));
    let held = futures_util::future::join_all(closes)
        .await
        .iter()
        .filter(|c| c.is_none())
        .count();
    assert_eq!(
        held, 0,
        "connections still held by the sidecar 1 s after the header timeout"
    );
    let ok = client()
        .post(proxy.url("/a/v1/messages"))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200, "and it serves the next client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keepalive_connection_is_closed() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "keepalive_timeout: 1s", ""));
    let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
    s.write_all(b"POST /a/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        .await
        .expect("write");
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.expect("answer");
    assert_eq!(
        status_of(&String::from_utf8_lossy(&buf[..n])),
        200,
        "first request served"
    );
    let started = Instant::now();
    let closed = until_closed(&mut s, Duration::from_secs(4)).await;
    assert!(closed.is_some(), "the idle keep-alive connection is closed");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(2500),
        "after about keepalive_timeout: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_at_the_body_timeout() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "body_timeout: 1s", "    timeouts: { idle: 5s }\n"));
    let mut s = TcpStream::connect(proxy.addr).await.expect("connect");
    s.write_all(b"POST /a/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        .await
        .expect("write");
    let started = Instant::now();
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if s.write_all(b" ").await.is_err() {
                break;
            }
            let mut buf = [0u8; 1024];
            if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
                return String::from_utf8_lossy(&buf[..n]).into_owned();
            }
        }
        String::new()
    };
    let answer = tokio::time::timeout(Duration::from_secs(4), trickle)
        .await
        .expect("answered in time");
    assert_eq!(
        status_of(&answer),
        408,
        "the whole body must arrive within body_timeout: {answer}"
    );
    assert!(answer.contains("client_timeout"), "error kind client_timeout: {answer}");
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "cut at ~1 s: {:?}",
        started.elapsed()
    );
    assert_eq!(up.count(), 0, "a partial body never goes upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_newcomers_get_503_and_the_admin_listener_answers() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "max_connections: 4, header_timeout: 30s", ""));
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(proxy.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = TcpStream::connect(proxy.addr).await.expect("connect");
    let answer = until_closed(&mut fifth, Duration::from_secs(2))
        .await
        .expect("closed at once");
    assert_eq!(status_of(&answer), 503, "the listener is full: {answer}");
    assert!(
        answer.contains("retry-after: 1"),
        "the 503 says when to retry: {answer}"
    );
    let health = client()
        .get(format!("http://{}/healthz", proxy.admin))
        .send()
        .await
        .expect("admin answers");
    assert_eq!(health.status(), 200, "the admin listener keeps answering");
    let counted = metric(
        &proxy,
        "llm_sidecar_rejected_requests_total{reason=\"max_connections\"}",
    )
    .await;
    assert_eq!(counted, 1.0, "the refused connection is counted");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ok = client()
        .post(proxy.url("/a/v1/messages"))
        .body("{}")
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), 200, "room again once others left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_share_one_memory_cap() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let yaml = format!(
        "limits: {{ max_body_bytes: 1500000, max_buffered_bytes: 2000000 }}\n{}",
        config(&[up.url()], "", "")
    );
    let proxy = Proxy::start(&yaml);
    let mut holder = TcpStream::connect(proxy.addr).await.expect("connect");
    holder
        .write_all(b"POST /a/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 1500000\r\n\r\n{\"a\":\"")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = client()
        .post(proxy.url("/a/v1/messages"))
        .body(vec![b' '; 1_000_000])
        .send()
        .await
        .expect("send");
    assert_eq!(second.status(), 503, "over the global cap while the first body is held");
    assert_eq!(second.headers()["retry-after"], "1", "with retry-after");
    assert_eq!(
        second.headers()["x-llm-sidecar-error"],
        "overloaded",
        "error kind overloaded"
    );
    drop(holder);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        proxy.core.buffered(),
        0,
        "the lease is given back when the request ends"
    );
    let third = client()
        .post(proxy.url("/a/v1/messages"))
        .body(vec![b' '; 1_000_000])
        .send()
        .await
        .expect("send");
    assert_ne!(
        third.status(),
        503,
        "room again under the cap once the first body is gone"
    );
}

fn preamble_then_silence() -> Reply {
    Reply::Sse(vec![
        (
            Duration::ZERO,
            "event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":5}}}\n\n".into(),
        ),
        (Duration::ZERO, "event: ping\ndata: {}\n\n".into()),
        (
            Duration::from_secs(5),
            "event: content_block_delta\ndata: {\"delta\":{\"text\":\"late\"}}\n\n".into(),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_content_is_moved_at_the_first_token_timeout() {
    let stuck = Fake::always(preamble_then_silence()).await;
    let good = Fake::always(Reply::Sse(vec![
        (
            Duration::ZERO,
            "event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":5}}}\n\n".into(),
        ),
        (
            Duration::ZERO,
            "event: content_block_delta\ndata: {\"delta\":{\"text\":\"fresh\"}}\n\n".into(),
        ),
        (Duration::ZERO, "event: message_stop\ndata: {}\n\n".into()),
    ]))
    .await;
    let yaml = config(
        &[stuck.url(), good.url()],
        "",
        "    timeouts: { first_token: 300ms, idle: 10s }\n",
    );
    let s = Logged::start(&yaml, "");
    let started = Instant::now();
    for _ in 0..2 {
        let text = client()
            .post(s.proxy.url("/a/v1/messages"))
            .body("{\"stream\":true}")
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("body");
        assert!(
            text.contains("fresh") && !text.contains("late"),
            "served by the healthy account: {text}"
        );
        assert_eq!(text.matches("message_start").count(), 1, "one clean stream: {text}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "moved at the first-token timeout, not the idle one"
    );
    let rows = s.wait_rows(2).await;
    assert!(
        rows.iter().any(|r| r["attempts"] == 2),
        "one request took two attempts: {rows:?}"
    );
    assert!(stuck.count() >= 1, "the stuck account was tried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_faults_are_the_clients_and_pipelined_requests_are_all_answered() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let s = Logged::start(&config(&[up.url()], "", ""), "");
    let bad_chunk =
        b"POST /a/v1/messages HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    let answer = raw_answers(s.proxy.addr, bad_chunk, 1).await;
    assert_eq!(
        status_of(&answer),
        400,
        "a bad chunk size is the client's error: {answer}"
    );
    assert!(answer.contains("bad_request"), "error kind bad_request: {answer}");
    let mid_upload = "POST /a/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\n{\"a\":";
    leave_when(s.proxy.addr, mid_upload, tokio::time::sleep(Duration::from_millis(100))).await;
    let garbage = raw_answers(s.proxy.addr, b"GET /a HTTP/1.1\r\nbad header line\r\n\r\n", 1).await;
    assert_eq!(status_of(&garbage), 400, "Pingora refuses the head: {garbage}");
    let two = b"POST /a/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}\
                POST /a/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    let both = raw_answers(s.proxy.addr, two, 2).await;
    assert_eq!(
        both.matches("HTTP/1.1 200").count(),
        2,
        "both pipelined requests answered: {both}"
    );
    let rows = s.wait_rows(4).await;
    let kinds: Vec<(i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["status"].as_i64().unwrap_or(0),
                r["error_kind"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&(400, "bad_request".into())),
        "bad chunk logged as 400: {kinds:?}"
    );
    assert!(
        kinds.contains(&(499, "client_closed".into())),
        "hang-up mid-upload logged as 499: {kinds:?}"
    );
    assert!(
        !kinds.iter().any(|(s, _)| *s == 500),
        "nothing counted as ours: {kinds:?}"
    );
    let malformed = metric(&s.proxy, "llm_sidecar_rejected_requests_total{reason=\"malformed\"}").await;
    assert_eq!(malformed, 1.0, "the refused head is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_with_prior_knowledge_is_served() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "", ""));
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let resp = h2
        .post(proxy.url("/a/v1/messages"))
        .json(&json!({"model": "m"}))
        .send()
        .await
        .expect("h2c");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2, "spoken over h2c");
    assert_eq!(resp.status(), 200, "served over h2c");
    assert_eq!(up.seen()[0].json()["model"], "m", "the body went through");
}
