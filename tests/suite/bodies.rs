//! Request validation and bodies: bad input is answered at once in the provider's shape and never
//! reaches an upstream; bodies of any size up to the limit arrive intact, also on a retry.

use std::time::Duration;

use crate::harness::*;
use serde_json::json;

fn config(upstreams: &[String], limits: &str, timeouts: &str) -> String {
    format!(
        "{limits}routes:\n  - {{ name: anthropic, match: {{ path_prefix: /anthropic }}, pool: claude }}\npools:\n{}",
        pool_yaml("claude", "anthropic", upstreams, timeouts)
    )
}

async fn post(proxy: &Proxy, body: impl Into<reqwest::Body>) -> reqwest::Response {
    client()
        .post(proxy.url("/anthropic/v1/messages"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_is_a_400_in_anthropic_shape_and_never_forwarded() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "limits: { max_json_depth: 8 }\n", ""));
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(8), "]".repeat(8));
    let cases: [(&str, String, &str); 5] = [
        ("malformed", "{\"model\": \"claude\",".into(), "invalid_json"),
        ("too deep", deep, "json_too_deep"),
        ("escaped NUL", r#"{"model":"a\u0000b"}"#.into(), "invalid_body"),
        ("raw NUL", "{\"model\":\"a\0b\"}".into(), "invalid_body"),
        ("not an object", "[1,2,3]".into(), "invalid_body"),
    ];
    for (what, body, kind) in cases {
        let resp = post(&proxy, body).await;
        assert_eq!(resp.status(), 400, "{what}: refused as a bad request");
        assert_eq!(
            resp.headers()["x-llm-sidecar-error"],
            kind,
            "{what}: the error kind says why"
        );
        assert!(
            resp.headers().contains_key("x-request-id"),
            "{what}: request id on our errors"
        );
        let v: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(v["type"], "error", "{what}: anthropic shape {v}");
        assert_eq!(
            v["error"]["type"], "invalid_request_error",
            "{what}: Anthropic's error type for bad input: {v}"
        );
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: the error has a message: {v}"
        );
    }
    let ok = post(&proxy, r#"{"model":"claude-sonnet-5","messages":[]}"#).await;
    assert_eq!(ok.status(), 200, "the proxy keeps serving after bad input");
    assert_eq!(up.count(), 1, "only the valid request reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_session_ids_are_refused() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "", ""));
    for bad in ["has space", "slash/no", &"x".repeat(129)] {
        let resp = client()
            .post(proxy.url("/anthropic/v1/messages"))
            .header("x-session-id", bad)
            .body("{}")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 400, "session id {bad:?} is refused");
        assert_eq!(
            resp.headers()["x-llm-sidecar-error"],
            "invalid_header",
            "session id {bad:?}: named an invalid header"
        );
    }
    assert_eq!(up.count(), 0, "nothing forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_declared_or_chunked() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "limits: { max_body_bytes: 4096 }\n", ""));
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000));
    let resp = post(&proxy, big.clone()).await;
    assert_eq!(resp.status(), 413, "declared length over the limit");
    assert_eq!(
        resp.headers()["x-llm-sidecar-error"],
        "body_too_large",
        "declared length: error kind"
    );
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        v["error"]["type"], "request_too_large",
        "Anthropic's error type for a body too large: {v}"
    );

    // Chunked: no length announced, counted as it arrives.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.as_bytes().chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let resp = post(&proxy, reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))).await;
    assert_eq!(resp.status(), 413, "chunked body over the limit");

    let small: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(b"{\"a\":".to_vec()), Ok(b"1}".to_vec())];
    let resp = post(&proxy, reqwest::Body::wrap_stream(futures_util::stream::iter(small))).await;
    assert_eq!(resp.status(), 200, "chunked body under the limit passes");
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "only the small body reached the upstream");
    assert_eq!(&seen[0].body[..], b"{\"a\":1}", "chunks joined");
    assert_eq!(
        seen[0].header("content-length"),
        Some("7"),
        "sent upstream with a length"
    );
    assert_eq!(seen[0].header("transfer-encoding"), None, "not chunked upstream");
}

fn big_body(mib: usize) -> Vec<u8> {
    let filler: String = (0..mib * 1024 * 1024 / 16).map(|i| format!("{:015x},", i)).collect();
    serde_json::to_vec(&json!({"model": "claude-sonnet-5", "messages": [{"role": "user", "content": filler}]}))
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_and_five_mib_bodies_arrive_intact() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "", ""));
    for mib in [1, 5] {
        let body = big_body(mib);
        let resp = post(&proxy, body.clone()).await;
        assert_eq!(resp.status(), 200, "{mib} MiB body: served");
        let seen = up.seen();
        let last = seen.last().expect("received");
        assert_eq!(last.body.len(), body.len(), "{mib} MiB: length");
        assert!(last.body[..] == body[..], "{mib} MiB: bytes identical");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_resent_intact_on_a_retry() {
    // Account 0 never answers in time (first-byte timeout); account 1 answers.
    let slow = Fake::always(Reply::Delay(
        Duration::from_secs(5),
        Box::new(Reply::Json(200, anthropic_reply())),
    ))
    .await;
    let good = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let (_held, dead) = refusing();
    let timeouts = "    timeouts: { connect: 1s, first_byte: 300ms, idle: 1s, total: 30s }\n";
    let proxy = Proxy::start(&config(&[slow.url(), dead, good.url()], "", timeouts));
    let body = big_body(5);
    for round in 0..3 {
        let resp = post(&proxy, body.clone()).await;
        assert_eq!(resp.status(), 200, "round {round}: served by the healthy account");
    }
    assert_eq!(good.count(), 3, "every request ended on the healthy account");
    for s in good.seen().iter().chain(slow.seen().iter()) {
        assert!(s.body[..] == body[..], "every attempt carried the whole 5 MiB body");
    }
    assert!(slow.count() >= 1, "the slow account was tried at least once (rotation)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_is_validated_whatever_the_content_type_except_uploads() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&config(&[up.url()], "", ""));
    let c = client();
    let form = c
        .post(proxy.url("/anthropic/v1/messages"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("{\"x\":")
        .send()
        .await
        .expect("request");
    assert_eq!(form.status(), 400, "curl -d style content type is still checked");
    let upload = c
        .post(proxy.url("/anthropic/v1/files"))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\ncontent-disposition: form-data; name=\"file\"\r\n\r\nnot json\r\n--x--\r\n")
        .send()
        .await
        .expect("request");
    assert_eq!(upload.status(), 200, "uploads pass without JSON validation");
    assert_eq!(up.count(), 1, "only the upload was forwarded");
}
