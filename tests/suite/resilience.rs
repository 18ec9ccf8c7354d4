//! Resilience through the real proxy: failing accounts stop receiving traffic at once and come
//! back by themselves; retries go to another account, within a budget; fallback pools; our own
//! 503/429 always carry retry-after.

use std::time::{Duration, Instant};

use crate::harness::*;
use serde_json::json;

fn error_json(kind: &str) -> serde_json::Value {
    json!({"type": "error", "error": {"type": kind, "message": kind}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_throttled_accounts_stop_receiving_traffic_and_come_back() {
    let broken = Fake::always(Reply::Json(503, error_json("api_error"))).await;
    let throttled = Fake::always(Reply::Raw(
        429,
        vec![("retry-after", "2".into()), ("content-type", "application/json".into())],
        error_json("rate_limit_error").to_string().into(),
    ))
    .await;
    let healthy = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let extra =
        "    retry: { attempts: 3, backoff: 1ms, max_backoff: 5ms }\n    breaker: { failures: 2, cooldown: 30s }\n";
    let proxy = Proxy::start(&pools_at_a(&[(
        "mix",
        "anthropic",
        vec![broken.url(), throttled.url(), healthy.url()],
        extra,
    )]));
    let start = Instant::now();
    for i in 0..12 {
        let resp = send(&proxy, None).await;
        assert_eq!(resp.status(), 200, "request {i} succeeds on the healthy account");
        assert_eq!(
            resp.headers()["x-llm-sidecar-account"],
            "acct-2",
            "request {i}: served by acct-2"
        );
        assert_eq!(resp.headers()["x-llm-sidecar-pool"], "mix", "request {i}: pool named");
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the batch ran inside the cooldown"
    );
    assert_eq!(healthy.count(), 12, "the healthy account took everything");
    assert!(
        broken.count() <= 2,
        "the 503 account is dropped after its breaker opens: {}",
        broken.count()
    );
    assert_eq!(
        throttled.count(),
        1,
        "the 429 account gets no traffic while it cools down"
    );
    while start.elapsed() < Duration::from_millis(2100) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..6 {
        let _ = send(&proxy, None).await;
    }
    assert!(
        throttled.count() >= 2,
        "after ~2 s the 429 account receives traffic again"
    );
    assert!(
        logged(&["\"event\":\"cooldown\"", "\"pool\":\"mix\""]),
        "the cooldown is logged"
    );
    assert!(
        logged(&["\"event\":\"breaker_open\"", "\"pool\":\"mix\""]),
        "the breaker opening is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_answering_401_never_gets_a_second_request() {
    let bad_key = Fake::always(Reply::Json(401, error_json("authentication_error"))).await;
    let good = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&pools_at_a(&[(
        "keyb",
        "anthropic",
        vec![bad_key.url(), good.url()],
        "    retry: { backoff: 1ms }\n",
    )]));
    for i in 0..10 {
        assert_eq!(send(&proxy, None).await.status(), 200, "request {i} served");
    }
    assert_eq!(bad_key.count(), 1, "broken key: out of rotation after one 401");
    assert_eq!(good.count(), 10, "the good account served all ten");
    assert!(
        logged(&["\"event\":\"key_broken\"", "\"pool\":\"keyb\""]),
        "logged when the key broke"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_account_fails_the_client_gets_503_with_retry_after() {
    let a = Fake::always(Reply::Json(503, error_json("api_error"))).await;
    let b = Fake::always(Reply::Json(500, error_json("api_error"))).await;
    let extra = "    retry: { attempts: 3, backoff: 1ms }\n    breaker: { failures: 1, cooldown: 7s }\n";
    let proxy = Proxy::start(&pools_at_a(&[("p", "anthropic", vec![a.url(), b.url()], extra)]));
    let first = send(&proxy, None).await;
    assert!(
        first.status() == 503 || first.status() == 500,
        "the last upstream answer passes as is: {}",
        first.status()
    );
    assert_eq!((a.count(), b.count()), (1, 1), "each account tried once");
    let second = send(&proxy, None).await;
    assert_eq!(second.status(), 503, "nothing can serve");
    assert_eq!(
        second.headers()["x-llm-sidecar-error"],
        "no_account",
        "error kind no_account"
    );
    let wait: u64 = second.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        (6..=7).contains(&wait),
        "retry-after says when the first breaker half-opens: {wait}"
    );
    let body: serde_json::Value = second.json().await.expect("json");
    assert_eq!(body["type"], "error", "anthropic shape");
    assert_eq!((a.count(), b.count()), (1, 1), "open breakers: no traffic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_accounts_rate_limited_is_a_429_with_retry_after() {
    let a = Fake::always(Reply::Raw(429, vec![("retry-after", "30".into())], "{}".into())).await;
    let proxy = Proxy::start(&pools_at_a(&[("p", "anthropic", vec![a.url()], "")]));
    let first = send(&proxy, None).await;
    assert_eq!(first.status(), 429, "the upstream's own 429 passes on the last attempt");
    let second = send(&proxy, None).await;
    assert_eq!(second.status(), 429, "the only account is cooling down: our own 429");
    assert_eq!(
        second.headers()["x-llm-sidecar-error"],
        "rate_limited",
        "error kind rate_limited"
    );
    let wait: u64 = second.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        (29..=30).contains(&wait),
        "retry-after says when the 30 s cooldown ends: {wait}"
    );
    assert_eq!(a.count(), 1, "the cooling account got no second request");
}

/// Events 10 ms apart.
const GAP: Duration = Duration::from_millis(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_error_before_content_is_completed_by_another_account() {
    let start = (
        "message_start",
        json!({"type": "message_start", "message": {"model": "claude-sonnet-5", "usage": {"input_tokens": 10, "output_tokens": 1}}}),
    );
    let overloaded = Fake::always(Reply::Sse(sse(
        GAP,
        &[
            start.clone(),
            ("ping", json!({"type": "ping"})),
            (
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ),
        ],
    )))
    .await;
    let good_events = sse(
        GAP,
        &[
            start,
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "from the good one"}}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "usage": {"output_tokens": 4}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ],
    );
    let expected: String = good_events.iter().map(|(_, e)| e.clone()).collect();
    let good = Fake::always(Reply::Sse(good_events)).await;
    let proxy = Proxy::start(&pools_at_a(&[(
        "p",
        "anthropic",
        vec![overloaded.url(), good.url()],
        "    retry: { backoff: 1ms }\n",
    )]));
    for round in 0..2 {
        let resp = client()
            .post(proxy.url("/a/v1/messages"))
            .json(&json!({"stream": true}))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "round {round}: served");
        let text = read_clean(resp).await;
        assert_eq!(
            text, expected,
            "round {round}: one clean stream, from the good account only"
        );
    }
    assert_eq!(overloaded.count(), 1, "overloaded: cooled down after its first error");
    assert_eq!(good.count(), 2, "the good account completed both");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_stops_an_outage_from_multiplying_load() {
    let a = Fake::always(Reply::Json(503, error_json("api_error"))).await;
    let b = Fake::always(Reply::Json(503, error_json("api_error"))).await;
    let extra = "    retry: { attempts: 2, backoff: 1ms, budget: 0% }\n    breaker: { failures: 1000 }\n";
    let proxy = Proxy::start(&pools_at_a(&[("budget", "anthropic", vec![a.url(), b.url()], extra)]));
    for _ in 0..40 {
        assert_eq!(send(&proxy, None).await.status(), 503, "the upstream's error, as is");
    }
    let upstream = a.count() + b.count();
    assert_eq!(
        upstream,
        40 + 10,
        "40 requests plus the budget's floor of 10 retries, not 80"
    );
    assert!(
        logged(&["retry budget exhausted", "\"pool\":\"budget\""]),
        "the exhausted budget is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_no_usable_account_falls_back_and_says_so() {
    let dead = Fake::always(Reply::Json(401, error_json("authentication_error"))).await;
    let backup = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let proxy = Proxy::start(&pools_at_a(&[
        (
            "claude",
            "anthropic",
            vec![dead.url()],
            "    fallback: [backup]\n    retry: { backoff: 1ms }\n",
        ),
        ("backup", "anthropic", vec![backup.url()], ""),
    ]));
    for i in 0..3 {
        let resp = send(&proxy, None).await;
        assert_eq!(resp.status(), 200, "request {i}: served");
        assert_eq!(
            resp.headers()["x-llm-sidecar-pool"],
            "backup",
            "served by the fallback pool"
        );
    }
    assert_eq!(
        (dead.count(), backup.count()),
        (1, 3),
        "one 401 on the dead pool, then the backup serves all three"
    );
    assert!(
        logged(&["falling back", "\"pool\":\"claude\""]),
        "the fallback is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_health_check_brings_a_broken_account_back() {
    // The first message request gets a 401 (key broken); the key "works" afterwards, which
    // only the health check can notice.
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flaky = Fake::start({
        let refused = std::sync::Arc::clone(&refused);
        move |seen, _| {
            if seen.path.starts_with("/v1/models") {
                Reply::Json(200, json!({"data": []}))
            } else if !refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
                Reply::Json(401, error_json("authentication_error"))
            } else {
                Reply::Json(200, anthropic_reply())
            }
        }
    })
    .await;
    let other = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let extra = "    retry: { backoff: 1ms }\n    health_check: { interval: 1500ms, timeout: 1s, path: /v1/models }\n";
    let proxy = Proxy::start(&pools_at_a(&[(
        "hc",
        "anthropic",
        vec![flaky.url(), other.url()],
        extra,
    )]));
    let messages = || flaky.seen().iter().filter(|s| s.path == "/v1/messages").count();
    let checks = || flaky.seen().iter().filter(|s| s.path == "/v1/models").count();
    let started = Instant::now();
    while messages() == 0 {
        assert_eq!(send(&proxy, None).await.status(), 200, "retried on the other account");
    }
    let checks_at_break = checks();
    for i in 0..6 {
        assert_eq!(
            send(&proxy, None).await.status(),
            200,
            "request {i} after the break: served by the other account"
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "still before the next check"
    );
    assert_eq!(messages(), 1, "broken key: no message request until a check passes");
    let deadline = Instant::now() + Duration::from_secs(5);
    while checks() <= checks_at_break && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let check = flaky
        .seen()
        .into_iter()
        .find(|s| s.path == "/v1/models")
        .expect("checked");
    assert_eq!(check.method, "GET", "the health check is a GET");
    assert_eq!(
        check.header("x-api-key"),
        Some("REAL-KEY-hc-0"),
        "checks carry the account's key"
    );
    for i in 0..6 {
        assert_eq!(
            send(&proxy, None).await.status(),
            200,
            "request {i} after the check: served"
        );
    }
    assert!(messages() > 1, "back in rotation after a passing check");
    assert!(
        logged(&["health check passed", "\"pool\":\"hc\""]),
        "the recovery is logged with its reason"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_never_switched_after_content_went_out() {
    let content = (
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial"}}),
    );
    let err = (
        "error",
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    );
    let cut = Fake::always(Reply::Sse(sse(GAP, &[content, err]))).await;
    let other = Fake::always(Reply::Json(200, anthropic_reply())).await;
    // A fresh pool's first request goes to its first account (equal scores keep the rotation).
    let proxy = Proxy::start(&pools_at_a(&[(
        "p",
        "anthropic",
        vec![cut.url(), other.url()],
        "    retry: { backoff: 1ms }\n",
    )]));
    let resp = client()
        .post(proxy.url("/a/v1/messages"))
        .json(&json!({"stream": true}))
        .send()
        .await
        .expect("request");
    let got = String::from_utf8_lossy(&resp.bytes().await.unwrap_or_default()).into_owned();
    assert_eq!(cut.count(), 1, "the first account streamed");
    assert!(
        got.contains("partial") && got.contains("overloaded_error"),
        "the client sees what was streamed, error included: {got}"
    );
    assert_eq!(other.count(), 0, "no retry once content went out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_row_records_attempts_and_the_account_that_served() {
    let bad = Fake::always(Reply::Json(503, error_json("api_error"))).await;
    let good = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let s = Logged::start(
        &pools_at_a(&[(
            "p",
            "anthropic",
            vec![bad.url(), good.url()],
            "    retry: { backoff: 1ms }\n",
        )]),
        "",
    );
    let mut sent = 0;
    while bad.count() == 0 {
        assert_eq!(send(&s.proxy, None).await.status(), 200, "request {sent} served");
        sent += 1;
    }
    let rows = s.wait_rows(sent).await;
    let most = rows.iter().max_by_key(|r| r["attempts"].as_i64()).expect("a row");
    assert_eq!(
        (
            most["attempts"].clone(),
            most["account"].clone(),
            most["status"].clone()
        ),
        (json!(2), json!("acct-1"), json!(200)),
        "retried once, served by the good account: {rows:?}"
    );
}
