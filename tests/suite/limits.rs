//! Limits through the real proxy: per-account concurrency slots and their FIFO queue, per-account
//! rpm, and per-client windows under concurrent load.

use std::time::Duration;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_and_a_queue_timeout_are_503s() {
    let gate = Gate::new();
    let slow = Fake::always(Reply::Hold(gate.clone(), Box::new(Reply::Json(200, anthropic_reply())))).await;
    let proxy = Proxy::start(&format!(
        "routes:\n  - {{ name: r, match: {{ path_prefix: /a }}, pool: queue-p }}\npools:\n  queue-p:\n    provider: anthropic\n    accounts:\n      - {{ name: only, base_url: \"{}\", key_file: \"{}\", max_concurrent: 1, max_queue: 1, queue_timeout: 400ms }}\n",
        slow.url(),
        secret_file("limits-queue.key", "k")
    ));
    let c = client();
    let first = tokio::spawn({
        let (c, url) = (c.clone(), proxy.url("/a/v1/messages"));
        async move { c.post(url).body("{}").send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued = tokio::spawn({
        let (c, url) = (c.clone(), proxy.url("/a/v1/messages"));
        async move {
            let r = c.post(url).body("{}").send().await.expect("request");
            (
                r.status().as_u16(),
                r.headers()
                    .get("x-llm-sidecar-error")
                    .map(|v| v.to_str().unwrap_or("").to_string()),
                r.headers().contains_key("retry-after"),
            )
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let full = c
        .post(proxy.url("/a/v1/messages"))
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(full.status(), 503, "queue of one already taken");
    assert_eq!(
        full.headers()["x-llm-sidecar-error"],
        "queue_full",
        "error kind queue_full"
    );
    assert!(full.headers().contains_key("retry-after"), "the 503 says when to retry");
    let (status, kind, retry_after) = queued.await.expect("join");
    assert_eq!(
        (status, kind.as_deref(), retry_after),
        (503, Some("queue_timeout"), true),
        "waited 400 ms, no slot"
    );
    gate.open();
    assert_eq!(
        first.await.expect("join").expect("first"),
        200,
        "the one in flight finishes"
    );
    assert_eq!(slow.count(), 1, "only one request reached the upstream");
    assert!(
        logged(&["waiting for a slot", "\"pool\":\"queue-p\""]),
        "queue waits are logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_has_its_own_window_under_concurrent_load() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let yaml = format!(
        "clients:\n  tokens:\n    - {{ name: svc-a, token_file: \"{}\" }}\n    - {{ name: svc-b, token_file: \"{}\" }}\n  limit: {{ rpm: 5 }}\n{}",
        secret_file("limits-svc-a.token", "tok-a"),
        secret_file("limits-svc-b.token", "tok-b"),
        pools_at_a(&[("p", "anthropic", vec![up.url()], "")])
    );
    let proxy = Proxy::start(&yaml);
    let c = client();
    let sends = (0..20).map(|i| {
        let token = if i % 2 == 0 { "tok-a" } else { "tok-b" };
        c.post(proxy.url("/a/v1/messages"))
            .header("x-api-key", token)
            .body("{}")
            .send()
    });
    let results: Vec<reqwest::Response> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.expect("request"))
        .collect();
    for (client, parity) in [("svc-a", 0), ("svc-b", 1)] {
        let mine: Vec<&reqwest::Response> = results
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, r)| r)
            .collect();
        let ok = mine.iter().filter(|r| r.status() == 200).count();
        assert_eq!(ok, 5, "{client}: exactly its 5 per minute");
        for r in mine.iter().filter(|r| r.status() == 429) {
            assert_eq!(
                r.headers()["x-llm-sidecar-error"],
                "client_rate_limited",
                "{client}: the 429 is the client's limit"
            );
            assert_eq!(r.headers()["x-ratelimit-limit"], "5", "{client}: its limit");
            assert_eq!(
                r.headers()["x-ratelimit-remaining"],
                "0",
                "{client}: nothing left in this window"
            );
            let reset: u64 = r.headers()["x-ratelimit-reset"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("n");
            let after: u64 = r.headers()["retry-after"].to_str().expect("ascii").parse().expect("n");
            // The burst's first second leaves the window 61 seconds after it began (the window
            // counts the current second and the 60 before it, so no 60 s span ever holds more
            // than the limit): 60 or 61 s from a refusal within that burst.
            assert!(
                (60..=61).contains(&reset) && after == reset,
                "reset {reset}, retry-after {after}: when the burst's first second leaves the window"
            );
        }
    }
    assert_eq!(up.count(), 10, "limited requests never reach an upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_at_its_rpm_is_skipped() {
    let limited = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let spare = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let key = secret_file("limits-rpm.key", "k");
    let yaml = format!(
        "routes:\n  - {{ name: r, match: {{ path_prefix: /a }}, pool: p }}\npools:\n  p:\n    provider: anthropic\n    accounts:\n      - {{ name: limited, base_url: \"{}\", key_file: \"{key}\", rpm: 2 }}\n      - {{ name: spare, base_url: \"{}\", key_file: \"{key}\" }}\n",
        limited.url(),
        spare.url()
    );
    let proxy = Proxy::start(&yaml);
    for i in 0..10 {
        assert_eq!(send(&proxy, None).await.status(), 200, "request {i} served");
    }
    assert_eq!(limited.count(), 2, "two requests per minute, no more");
    assert_eq!(spare.count(), 8, "the spare account takes the rest");
}
