//! Budgets and notifications through the real proxy: thresholds, limits, and the webhook hearing
//! each event once without ever delaying a request.

use std::time::Duration;

use crate::harness::alloc::{account_of, accounts, config};
use crate::harness::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_hears_each_event_once() {
    let hook = Fake::webhook("LLMS_HOOK_EVENTS", Reply::Json(204, json!({}))).await;
    let ok = json!({"content": [], "usage": {"input_tokens": 1, "output_tokens": 1}});
    let bad_key = Fake::always(Reply::Json(
        401,
        json!({"type": "error", "error": {"type": "authentication_error", "message": "no"}}),
    ))
    .await;
    let blip = Fake::start({
        let ok = ok.clone();
        move |_, n| {
            if n == 0 {
                Reply::Json(503, json!({}))
            } else {
                Reply::Json(200, ok.clone())
            }
        }
    })
    .await;
    let backup = Fake::always(Reply::Json(200, ok.clone())).await;
    let key = |i: usize| secret_file(&format!("notify-{i}.key"), "k");
    let yaml = format!(
        "notifications:\n  webhook: {{ url_env: LLMS_HOOK_EVENTS }}\nroutes:\n  - {{ name: r, match: {{ path_prefix: /a }}, pool: p }}\n  - {{ name: b, match: {{ path_prefix: /b }}, pool: q }}\npools:\n  p:\n    provider: anthropic\n    fallback: [backup]\n    accounts:\n      - {{ name: bad, base_url: \"{}\", key_file: \"{}\" }}\n  q:\n    provider: anthropic\n    retry: {{ attempts: 1 }}\n    breaker: {{ failures: 1, cooldown: 200ms }}\n    accounts:\n      - {{ name: blip, base_url: \"{}\", key_file: \"{}\" }}\n  backup:\n    provider: anthropic\n    accounts:\n      - {{ name: spare, base_url: \"{}\", key_file: \"{}\" }}\n",
        bad_key.url(), key(0), blip.url(), key(1), backup.url(), key(2)
    );
    let proxy = Proxy::start(&yaml);
    let c = client();
    for _ in 0..3 {
        let r = c
            .post(proxy.url("/a/v1/messages"))
            .body("{}")
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 200, "served by the fallback pool");
    }
    let first = c
        .post(proxy.url("/b/v1/messages"))
        .body("{}")
        .send()
        .await
        .expect("req");
    assert_eq!(
        first.status(),
        503,
        "one try: the upstream's 503 as is; the breaker opens"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let probe = c
        .post(proxy.url("/b/v1/messages"))
        .body("{}")
        .send()
        .await
        .expect("req");
    assert_eq!(
        probe.status(),
        200,
        "the half-open probe succeeds and closes the breaker"
    );
    let want = ["key_broken", "fallback_used", "breaker_open", "breaker_closed"];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let events = || -> Vec<String> {
        hook.seen()
            .iter()
            .map(|s| s.json()["event"].as_str().unwrap_or("").to_string())
            .collect()
    };
    while !want.iter().all(|w| events().iter().any(|e| e == w)) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ev = events();
    for w in want {
        assert_eq!(
            ev.iter().filter(|e| *e == w).count(),
            1,
            "{w} heard exactly once: {ev:?}"
        );
    }
    assert_eq!(proxy.core.notifier.dropped(), 0, "no notification dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_webhook_never_delays_requests_and_its_failures_are_counted() {
    let hook = Fake::webhook(
        "LLMS_HOOK_SLOW",
        Reply::Delay(Duration::from_secs(30), Box::new(Reply::Json(200, json!({})))),
    )
    .await;
    let bad_key = Fake::always(Reply::Json(401, json!({}))).await;
    let good = Fake::always(Reply::Json(200, json!({"content": []}))).await;
    let top = "notifications:\n  webhook: { url_env: LLMS_HOOK_SLOW, timeout: 100ms, backoff: 20ms }\n";
    let proxy = Proxy::start(&config(&[bad_key.url(), good.url()], "", "", top));
    let started = std::time::Instant::now();
    for i in 0..5 {
        assert_eq!(send(&proxy, None).await.status(), 200, "request {i} served");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "requests never wait for the webhook"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while proxy.core.notifier.dropped() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        proxy.core.notifier.dropped(),
        1,
        "key_broken given up after its retries, counted"
    );
    assert_eq!(hook.count(), 4, "it was tried four times (backoff 20, 40, 80 ms)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_stop_new_sessions_at_the_threshold_and_all_traffic_at_the_limit() {
    let hook = Fake::webhook("LLMS_HOOK_BUDGET", Reply::Json(200, json!({}))).await;
    // Each request costs 3 USD (1M input tokens at $3/M); budgets of 30 USD, threshold 50%.
    let ups = accounts(2, 1_000_000).await;
    let urls: Vec<String> = ups.iter().map(Fake::url).collect();
    let top = "notifications:\n  webhook: { url_env: LLMS_HOOK_BUDGET }\n  thresholds: [0.5]\n";
    let proxy = Proxy::start(&config(&urls, "", ", budget: { weekly_usd: 30, threshold: 0.5 }", top));
    let snap = proxy.core.snapshot();
    let (acct0, acct1) = (&snap.pools[0].accounts[0], &snap.pools[0].accounts[1]);
    let now = llm_sidecar::clock::now_ms;
    acct0.state.ledger.record(now(), 18.0, 0, 6); // 60%: past its threshold
    let fresh = send(&proxy, Some("after-threshold")).await;
    assert_eq!(
        account_of(&fresh),
        "acct-1",
        "no new session on an account past its threshold"
    );
    acct0.state.ledger.record(now(), 13.0, 0, 1); // 103%: past its budget
    let before = ups[0].count();
    for _ in 0..6 {
        assert_eq!(
            account_of(&send(&proxy, None).await),
            "acct-1",
            "every request goes to the account within its budget"
        );
    }
    assert_eq!(ups[0].count(), before, "an account past its budget receives nothing");
    // acct-1 went from 3 to 21 USD through real traffic, crossing 15: the webhook hears it once.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let count = || {
        hook.seen()
            .iter()
            .filter(|s| s.json()["event"] == "budget_threshold" && s.json()["account"] == "acct-1")
            .count()
    };
    while count() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        count(),
        1,
        "budget_threshold once per threshold per week, not per request"
    );
    acct1.state.ledger.record(now(), 10.0, 0, 1);
    // Past 100% on both: nothing can serve.
    let last = send(&proxy, None).await;
    assert_eq!(
        (
            last.status().as_u16(),
            last.headers()["x-llm-sidecar-error"].to_str().ok()
        ),
        (503, Some("no_account")),
        "both accounts past their budget: no account can serve"
    );
}
