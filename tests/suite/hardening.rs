//! What a hostile or careless client can no longer do: send methods or paths that carry the real
//! key somewhere it should not go, use the sidecar from a browser without CORS, switch metering
//! off, or have a gzipped answer lose its usage. Raw sockets where an SDK would tidy the request.

use std::time::Duration;

use crate::harness::*;
use serde_json::{json, Value};

const QUIET: Duration = Duration::from_millis(1500);

fn routes_and_pools(anthropic: &str, openai: &str, extra: &str) -> String {
    format!(
        "{extra}routes:\n  - {{ name: anthropic, match: {{ path_prefix: /anthropic }}, pool: claude }}\n  \
         - {{ name: openai, match: {{ path_prefix: /openai }}, pool: gpt }}\n  \
         - {{ name: openrouter, match: {{ path_prefix: /openrouter }}, pool: router }}\npools:\n{}{}{}",
        pool_yaml("claude", "anthropic", &[anthropic.to_string()], ""),
        pool_yaml("gpt", "openai", &[openai.to_string()], ""),
        pool_yaml("router", "openrouter", &[format!("{openai}/api")], ""),
    )
}

fn request(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_methods_providers_use_reach_an_upstream() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let s = Logged::start(&routes_and_pools(&up.url(), &up.url(), ""), "");
    for method in ["TRACE", "FOO", "post", "PUT", "PATCH", "CONNECT"] {
        let path = if method == "CONNECT" {
            "x:443"
        } else {
            "/anthropic/v1/messages"
        };
        let answer = raw(s.proxy.addr, &request(method, path, "{}"), QUIET).await;
        assert_eq!(
            status_of(&answer),
            405,
            "{method} is answered 405 by the sidecar: {answer}"
        );
        if method != "CONNECT" {
            assert!(
                answer
                    .to_ascii_lowercase()
                    .contains("allow: get, post, delete, head, options"),
                "{method}: the answer says what is allowed: {answer}"
            );
            assert!(answer.contains("method_not_allowed"), "{method}: error kind: {answer}");
        }
    }
    assert_eq!(
        up.count(),
        0,
        "no refused method reached the upstream with the real key"
    );
    for method in ["GET", "POST", "DELETE"] {
        let answer = raw(s.proxy.addr, &request(method, "/anthropic/v1/messages", "{}"), QUIET).await;
        assert_eq!(status_of(&answer), 200, "{method} is forwarded: {answer}");
    }
    let seen: Vec<String> = up.seen().iter().map(|r| r.method.clone()).collect();
    assert_eq!(seen, ["GET", "POST", "DELETE"], "what the upstream received");
    let rows = s.wait_rows(8).await;
    let refused = rows.iter().filter(|r| r["status"] == 405).count();
    assert_eq!(refused, 5, "every refusal Pingora let through has a log row: {rows:?}");
    assert!(
        rows.iter()
            .filter(|r| r["status"] == 405)
            .all(|r| r["error_kind"] == "method_not_allowed"),
        "rows name the kind: {rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_are_normalised_before_routing_and_never_climb_out() {
    let anthropic = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let openai = Fake::always(Reply::Json(200, json!({"choices": []}))).await;
    let proxy = Proxy::start(&routes_and_pools(&anthropic.url(), &openai.url(), ""));
    for bad in [
        "/anthropic/../openai/v1/chat/completions",
        "/anthropic/%2e%2e/admin",
        "/anthropic/v1/%2E%2e/%2e%2e/x",
        "/openrouter/../v1/models",
        "/anthropic/v1%2fmessages",
        "/anthropic/v1%5cmessages",
        "/anthropic/v1%00",
        "/..",
    ] {
        let answer = raw(proxy.addr, &request("POST", bad, "{}"), QUIET).await;
        assert_eq!(status_of(&answer), 400, "{bad} is refused: {answer}");
        assert!(answer.contains("invalid_path"), "{bad}: kind invalid_path: {answer}");
    }
    assert_eq!(anthropic.count() + openai.count(), 0, "no escape reached any upstream");
    for (path, upstream) in [
        ("/anthropic//v1///messages", "/v1/messages"),
        ("/anthropic/v1/./x/../messages", "/v1/messages"),
        ("/anthropic/v1/%2e/messages?beta=true", "/v1/messages?beta=true"),
    ] {
        let answer = raw(proxy.addr, &request("POST", path, "{}"), QUIET).await;
        assert_eq!(status_of(&answer), 200, "{path} is served: {answer}");
        let last = anthropic.seen().pop().expect("forwarded");
        assert_eq!(last.path, upstream, "{path} arrives normalised");
    }
    let answer = raw(
        proxy.addr,
        &request("POST", "/openrouter/v1/x/../chat/completions", "{}"),
        QUIET,
    )
    .await;
    assert_eq!(
        status_of(&answer),
        200,
        "a dot segment inside the route is fine: {answer}"
    );
    assert_eq!(
        openai.seen().pop().expect("forwarded").path,
        "/api/v1/chat/completions",
        "the account's base path is kept and nothing climbs out of it"
    );
    for r in anthropic.seen().iter().chain(openai.seen().iter()) {
        assert!(
            !r.path.contains("..") && !r.path.to_ascii_lowercase().contains("%2e"),
            "no upstream ever sees .. or %2e: {}",
            r.path
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_get_cors_from_the_sidecar_and_preflights_are_never_forwarded() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let extra = format!(
        "clients:\n  tokens: [{{ name: web, token_file: \"{}\" }}]\n\
         cors: {{ allow_origins: [\"https://app.example\"], max_age: 5m }}\n",
        secret_file("hardening-web.token", "tok")
    );
    let s = Logged::start(&routes_and_pools(&up.url(), &up.url(), &extra), "");
    let preflight = |origin: &str| {
        format!(
            "OPTIONS /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\norigin: {origin}\r\n\
             access-control-request-method: POST\r\naccess-control-request-headers: x-api-key, content-type\r\n\
             connection: close\r\n\r\n"
        )
        .into_bytes()
    };
    let ok = raw(s.proxy.addr, &preflight("https://app.example"), QUIET).await;
    let lower = ok.to_ascii_lowercase();
    assert_eq!(
        status_of(&ok),
        204,
        "the preflight needs no token and is answered here: {ok}"
    );
    for h in [
        "access-control-allow-origin: https://app.example",
        "access-control-allow-methods: get, post, delete, options",
        "access-control-max-age: 300",
        "access-control-allow-headers:",
    ] {
        assert!(lower.contains(h), "preflight carries {h}: {ok}");
    }
    assert!(lower.contains("x-api-key"), "the SDKs' headers are allowed: {ok}");
    let evil = raw(s.proxy.addr, &preflight("https://evil.example"), QUIET).await;
    assert_eq!(status_of(&evil), 204, "other origins are answered too: {evil}");
    assert!(
        !evil.to_ascii_lowercase().contains("access-control"),
        "but get no CORS header: {evil}"
    );
    assert_eq!(up.count(), 0, "no preflight was forwarded");

    let c = client();
    let denied = c
        .post(s.proxy.url("/anthropic/v1/messages"))
        .header("origin", "https://app.example")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(denied.status(), 401, "no token: refused");
    let h = denied.headers();
    assert_eq!(
        h["access-control-allow-origin"], "https://app.example",
        "errors carry CORS too"
    );
    let expose = h["access-control-expose-headers"].to_str().unwrap_or("");
    for name in ["x-request-id", "retry-after", "x-ratelimit-remaining"] {
        assert!(expose.contains(name), "{name} is exposed: {expose}");
    }
    let served = c
        .post(s.proxy.url("/anthropic/v1/messages"))
        .header("origin", "https://app.example")
        .header("x-api-key", "tok")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(served.status(), 200, "with its token the browser is served");
    assert_eq!(
        served.headers()["access-control-allow-origin"],
        "https://app.example",
        "success carries CORS"
    );
    assert_eq!(served.headers()["vary"], "origin", "an echoed origin varies by origin");
    let other = c
        .post(s.proxy.url("/anthropic/v1/messages"))
        .header("origin", "https://evil.example")
        .header("x-api-key", "tok")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "unlisted origin: no CORS"
    );
    let rows = s.wait_rows(5).await;
    assert_eq!(
        rows.iter().filter(|r| r["status"] == 204).count(),
        2,
        "each preflight is logged once: {rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cors_options_is_still_answered_here() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&routes_and_pools(&up.url(), &up.url(), ""));
    let answer = raw(
        proxy.addr,
        &request("OPTIONS", "/openai/v1/chat/completions", ""),
        QUIET,
    )
    .await;
    assert_eq!(status_of(&answer), 204, "OPTIONS answered here with 204: {answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("access-control"),
        "no CORS configured: {answer}"
    );
    assert_eq!(up.count(), 0, "never forwarded");
}

fn openai_stream() -> Vec<(Duration, String)> {
    let chunk = |v: Value| (Duration::ZERO, format!("data: {v}\n\n"));
    vec![
        chunk(json!({"model": "gpt-4.1", "choices": [{"index": 0, "delta": {"content": "Hi"}}]})),
        chunk(json!({"model": "gpt-4.1", "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7}})),
        (Duration::ZERO, "data: [DONE]\n\n".to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_serde_cannot_reserialise_is_still_metered() {
    let up = Fake::always(Reply::Sse(openai_stream())).await;
    let s = Logged::start(&routes_and_pools(&up.url(), &up.url(), ""), "");
    for odd in [r#""\ud800""#, "1e999999"] {
        let body = format!(
            r#"{{"model":"gpt-4.1","stream":true,"stream_options":{{"include_usage":false}},"messages":[],"x":{odd}}}"#
        );
        let answer = raw(
            s.proxy.addr,
            &request("POST", "/openai/v1/chat/completions", &body),
            QUIET,
        )
        .await;
        assert_eq!(status_of(&answer), 200, "a body with {odd} is served: {answer}");
        assert!(
            !answer.contains("prompt_tokens"),
            "the usage chunk the client did not ask for is removed: {answer}"
        );
        let sent = up.seen().pop().expect("forwarded");
        let text = String::from_utf8_lossy(&sent.body).into_owned();
        assert!(
            text.contains(r#""stream_options":{"include_usage":true}"#) && text.contains(odd),
            "the upstream is asked for usage, the rest untouched: {text}"
        );
    }
    let rows = s.wait_rows(2).await;
    assert_eq!(rows.len(), 2, "one row per request: {rows:?}");
    for r in &rows {
        assert_eq!(
            (r["input_tokens"].clone(), r["output_tokens"].clone()),
            (json!(11), json!(7)),
            "metered: {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_sessions_stick_and_its_head_probe_is_answered_here() {
    let a = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let b = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let yaml = format!(
        "clients:\n  tokens: [{{ name: cc, token_file: \"{}\" }}]\nroutes:\n  - {{ name: cc, match: {{ path_prefix: /cc }}, pool: cc }}\npools:\n{}",
        secret_file("hardening-cc.token", "tok"),
        pool_yaml("cc", "anthropic", &[a.url(), b.url()], "")
    );
    let proxy = Proxy::start(&yaml);
    let head = raw(
        proxy.addr,
        b"HEAD /cc HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        QUIET,
    )
    .await;
    assert_eq!(
        status_of(&head),
        200,
        "credential-less HEAD to the route's root: {head}"
    );
    assert_eq!(a.count() + b.count(), 0, "HEAD never goes upstream");
    let c = client();
    let user_id = json!({"device_id": "d1", "account_uuid": "", "session_id": "7de63955-34c0-419e-8c66-a64e4c5f2083"});
    for (header, body) in [
        (Some("7de63955-34c0-419e-8c66-a64e4c5f2083"), json!({"model": "m"})),
        (
            None,
            json!({"model": "m", "metadata": {"user_id": user_id.to_string()}}),
        ),
    ] {
        let (before_a, before_b) = (a.count(), b.count());
        for _ in 0..6 {
            let mut req = c
                .post(proxy.url("/cc/v1/messages"))
                .header("x-api-key", "tok")
                .json(&body);
            if let Some(h) = header {
                req = req.header("x-claude-code-session-id", h);
            }
            assert_eq!(
                req.send().await.expect("send").status(),
                200,
                "served with the session from {}",
                if header.is_some() { "the header" } else { "the metadata" }
            );
        }
        let (da, db) = (a.count() - before_a, b.count() - before_b);
        assert!(
            da == 6 || db == 6,
            "all six on one account (header {header:?}): {da} / {db}"
        );
    }
    let sessions = proxy.core.snapshot().pools[0].state.sessions.len();
    assert_eq!(sessions, 1, "header and metadata name the same session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzipped_answer_keeps_its_usage() {
    use std::io::Write;
    let gz = |text: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text).expect("gzip");
        e.finish().expect("gzip")
    };
    let body = gz(anthropic_reply().to_string().as_bytes());
    let events = "event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":40}}}\n\n\
                  event: content_block_delta\ndata: {\"delta\":{\"text\":\"x\"}}\n\n\
                  event: message_delta\ndata: {\"usage\":{\"output_tokens\":9}}\n\n";
    let stream = gz(events.as_bytes());
    let (b1, b2) = (body.clone(), stream.clone());
    let up = Fake::start(move |_, n| {
        let (ct, bytes) = if n == 0 {
            ("application/json", b1.clone())
        } else {
            ("text/event-stream", b2.clone())
        };
        Reply::Raw(
            200,
            vec![("content-type", ct.into()), ("content-encoding", "gzip".into())],
            bytes.into(),
        )
    })
    .await;
    let s = Logged::start(&routes_and_pools(&up.url(), &up.url(), ""), "");
    let c = reqwest::Client::builder().no_gzip().build().expect("client");
    for expected in [&body, &stream] {
        let resp = c
            .post(s.proxy.url("/anthropic/v1/messages"))
            .body("{}")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.headers()["content-encoding"], "gzip", "passed as sent");
        let got = resp.bytes().await.expect("body");
        assert_eq!(
            &got[..],
            &expected[..],
            "the client gets the upstream's bytes unchanged"
        );
    }
    assert_eq!(
        up.seen()[0].header("accept-encoding"),
        Some("identity"),
        "identity was asked for"
    );
    let rows = s.wait_rows(2).await;
    assert_eq!(
        (rows[0]["input_tokens"].clone(), rows[0]["output_tokens"].clone()),
        (json!(12), json!(5)),
        "JSON usage read through gzip: {:?}",
        rows[0]
    );
    assert_eq!(
        (rows[1]["input_tokens"].clone(), rows[1]["output_tokens"].clone()),
        (json!(40), json!(9)),
        "stream usage read through gzip: {:?}",
        rows[1]
    );
}
