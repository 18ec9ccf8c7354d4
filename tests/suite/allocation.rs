//! Allocation through the real proxy: sticky sessions spread by score, caps and budgets that
//! hold under concurrency, sessions that move when their account fails, rebalancing, and the
//! webhook hearing each event once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::harness::alloc::{account_of, accounts, config};
use crate::harness::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_sessions_stick_to_one_account_each_and_spread_evenly() {
    let ups = accounts(3, 10).await;
    let urls: Vec<String> = ups.iter().map(Fake::url).collect();
    let proxy = Proxy::start(&config(&urls, "", "", ""));
    let mut placed: HashMap<String, HashSet<String>> = HashMap::new();
    for round in 0..5 {
        for s in 0..12 {
            let id = format!("sess-{s}");
            let resp = send(&proxy, Some(&id)).await;
            assert_eq!(resp.status(), 200, "round {round}: {id} served");
            placed.entry(id).or_default().insert(account_of(&resp));
        }
    }
    for (id, accts) in &placed {
        assert_eq!(accts.len(), 1, "{id}: all 5 requests on one account, got {accts:?}");
    }
    let mut per_account: HashMap<String, usize> = HashMap::new();
    for accts in placed.values() {
        for a in accts {
            *per_account.entry(a.clone()).or_default() += 1;
        }
    }
    let mut counts: Vec<usize> = per_account.values().copied().collect();
    counts.sort();
    assert_eq!(counts, [4, 4, 4], "sessions spread 4/4/4: {per_account:?}");
    for (i, up) in ups.iter().enumerate() {
        assert_eq!(up.count(), 20, "acct-{i}: 4 sessions x 5 requests");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_new_sessions_never_exceed_the_cap_and_the_seventh_is_still_served() {
    let ups = accounts(3, 10).await;
    let urls: Vec<String> = ups.iter().map(Fake::url).collect();
    let proxy = Proxy::start(&config(&urls, "    session: { max_per_account: 2 }\n", "", ""));
    let sends = (0..7).map(|s| {
        let id = format!("new-{s}");
        let proxy = &proxy;
        async move { (id.clone(), send(proxy, Some(&id)).await) }
    });
    let results = futures_util::future::join_all(sends).await;
    assert!(results.iter().all(|(_, r)| r.status() == 200), "all seven are served");
    let snap = proxy.core.snapshot();
    let pool = &snap.pools[0];
    for a in &pool.accounts {
        let n = a.state.sessions.load(std::sync::atomic::Ordering::Acquire);
        assert!(n <= 2, "{}: {n} sessions bound, cap is 2", a.name);
    }
    assert_eq!(
        pool.state.sessions.len(),
        6,
        "six bound, the seventh served without binding"
    );
    // The unbound session is not bound by its next request either while caps are full.
    let bound: HashSet<String> = pool.state.sessions.list().into_iter().map(|(id, _, _)| id).collect();
    let unbound = (0..7)
        .map(|s| format!("new-{s}"))
        .find(|id| !bound.contains(id))
        .expect("one unbound");
    assert_eq!(
        send(&proxy, Some(&unbound)).await.status(),
        200,
        "{unbound}: served again while every account is at its cap"
    );
    assert_eq!(
        pool.state.sessions.len(),
        6,
        "{unbound} still unbound: no binding past the caps"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_first_requests_of_one_session_bind_it_once() {
    let ups = accounts(3, 10).await;
    let urls: Vec<String> = ups.iter().map(Fake::url).collect();
    let proxy = Proxy::start(&config(&urls, "", "", ""));
    let sends = (0..24).map(|_| send(&proxy, Some("one-conversation")));
    let results = futures_util::future::join_all(sends).await;
    let used: HashSet<String> = results.iter().map(account_of).collect();
    assert_eq!(used.len(), 1, "one binding, one account: {used:?}");
    let snap = proxy.core.snapshot();
    let total: u32 = snap.pools[0]
        .accounts
        .iter()
        .map(|a| a.state.sessions.load(std::sync::atomic::Ordering::Acquire))
        .sum();
    assert_eq!(total, 1, "the one binding is counted once across accounts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_account_fails_continues_elsewhere_and_the_move_is_heard() {
    let hook = Fake::webhook("LLMS_HOOK_REBOUND", Reply::Json(200, json!({}))).await;
    let flaky = Fake::start(|_, n| {
        if n < 2 {
            Reply::Json(
                200,
                json!({"content": [], "usage": {"input_tokens": 1, "output_tokens": 1}}),
            )
        } else {
            Reply::Json(
                503,
                json!({"type": "error", "error": {"type": "api_error", "message": "down"}}),
            )
        }
    })
    .await;
    let steady = Fake::always(Reply::Json(
        200,
        json!({"content": [], "usage": {"input_tokens": 1, "output_tokens": 1}}),
    ))
    .await;
    let top = "notifications:\n  webhook: { url_env: LLMS_HOOK_REBOUND, timeout: 2s }\n";
    let proxy = Proxy::start(&config(
        &[flaky.url(), steady.url()],
        "    breaker: { failures: 1, cooldown: 60s }\n",
        "",
        top,
    ));
    // Find a session that lands on the flaky account.
    let mut sid = String::new();
    for s in 0..10 {
        let id = format!("conv-{s}");
        if account_of(&send(&proxy, Some(&id)).await) == "acct-0" {
            sid = id;
            break;
        }
    }
    assert!(!sid.is_empty(), "a session bound to acct-0");
    for _ in 0..4 {
        let resp = send(&proxy, Some(&sid)).await;
        assert_eq!(resp.status(), 200, "the session continues");
    }
    let last = send(&proxy, Some(&sid)).await;
    assert_eq!(account_of(&last), "acct-1", "re-bound to the healthy account");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let events = || -> Vec<Value> { hook.seen().iter().map(Seen::json).collect() };
    while !events().iter().any(|e| e["event"] == "session_rebound") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ev = events();
    let opened: Vec<&Value> = ev.iter().filter(|e| e["event"] == "breaker_open").collect();
    assert_eq!(opened.len(), 1, "breaker_open heard once: {ev:#?}");
    assert_eq!(
        (opened[0]["pool"].clone(), opened[0]["account"].clone()),
        (json!("p"), json!("acct-0")),
        "breaker_open names the flaky account and its pool: {:?}",
        opened[0]
    );
    assert!(
        opened[0]["at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "RFC 3339 time"
    );
    assert_eq!(
        ev.iter().filter(|e| e["event"] == "session_rebound").count(),
        1,
        "the move heard once: {ev:#?}"
    );
    assert_eq!(hook.seen()[0].path, "/hooks/llm", "posted to the URL's path");
    assert_eq!(
        hook.seen()[0].header("content-type"),
        Some("application/json"),
        "the event is sent as JSON"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalancing_moves_idle_sessions_from_the_hottest_to_the_coolest() {
    let ups = accounts(2, 10).await;
    let urls: Vec<String> = ups.iter().map(Fake::url).collect();
    let pool_extra = "    session: { idle_after: 1s }\n    rebalance: { every: 1h, cost_gap_usd: 5, max_moves: 2 }\n";
    let proxy = Proxy::start(&config(&urls, pool_extra, "", ""));
    for s in 0..6 {
        let _ = send(&proxy, Some(&format!("r-{s}"))).await;
    }
    let snap = proxy.core.snapshot();
    let pool = &snap.pools[0];
    let on = |name: &str| {
        pool.state
            .sessions
            .list()
            .iter()
            .filter(|(_, a, _)| &**a == name)
            .count()
    };
    let (hot0, cool0) = (on("acct-0"), on("acct-1"));
    assert_eq!(hot0 + cool0, 6, "all six sessions bound: {hot0} + {cool0}");
    pool.accounts[0]
        .state
        .ledger
        .record(llm_sidecar::clock::now_ms(), 9.0, 0, 1);
    assert_eq!(
        llm_sidecar::alloc::rebalance::rebalance(&proxy.core, pool),
        0,
        "sessions are not idle yet"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        llm_sidecar::alloc::rebalance::rebalance(&proxy.core, pool),
        2,
        "max_moves idle sessions move"
    );
    assert_eq!(
        (on("acct-0"), on("acct-1")),
        (hot0 - 2, cool0 + 2),
        "two sessions moved from acct-0 (had {hot0}) to acct-1 (had {cool0})"
    );
    let counts: Vec<u32> = pool
        .accounts
        .iter()
        .map(|a| a.state.sessions.load(std::sync::atomic::Ordering::Acquire))
        .collect();
    assert_eq!(
        counts,
        [(hot0 - 2) as u32, (cool0 + 2) as u32],
        "bound-session counts follow the moves"
    );
    pool.accounts[1]
        .state
        .ledger
        .record(llm_sidecar::clock::now_ms(), 8.0, 0, 1);
    assert_eq!(
        llm_sidecar::alloc::rebalance::rebalance(&proxy.core, pool),
        0,
        "a gap under cost_gap_usd moves nothing"
    );
}
