//! Shared state through a real redis-server: three sidecars sharing two accounts agree on rpm,
//! sessions, cooldowns and budgets; an outage fails no request and sharing resumes after it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::harness::alloc::{account_of, accounts, config};
use crate::harness::redis::Redis;
use crate::harness::*;
use serde_json::json;

/// The `shared:` block for `redis` under `prefix` (a generous timeout: the suite runs tests in
/// parallel on two cores, and a timeout would fall back to local state by design).
fn shared(redis: &Redis, prefix: &str) -> String {
    format!(
        "shared:\n  redis: {{ url: \"{}\", prefix: {prefix}, timeout: 2s }}\n",
        redis.url()
    )
}

/// Every key under `prefix` carries a TTL: nothing the sidecars write grows without bound.
fn all_keys_expire(redis: &Redis, prefix: &str) {
    let keys = redis.cmd(&["KEYS", &format!("{prefix}:*")]).expect("KEYS");
    let keys: Vec<&str> = keys.split_whitespace().collect();
    assert!(!keys.is_empty(), "the sidecars wrote keys under {prefix}");
    for k in keys {
        let ttl: i64 = redis.cmd(&["PTTL", k]).expect("PTTL").parse().expect("integer");
        assert!(ttl > 0, "{k} has a TTL (PTTL {ttl})");
    }
}

/// Start `n` sidecars with `yaml` and wait until each shares (when `shared` is configured).
async fn sidecars(n: usize, yaml: &str) -> Vec<Proxy> {
    let proxies: Vec<Proxy> = (0..n).map(|_| Proxy::start(yaml)).collect();
    for (i, p) in proxies.iter().enumerate() {
        if let Some(s) = &p.core.shared {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !s.is_up() {
                assert!(
                    Instant::now() < deadline,
                    "sidecar {i} connected to the store within 10 s"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    proxies
}

/// 30 concurrent requests spread over three sidecars whose pool has two accounts of rpm 10:
/// (answered 200, answered 429 with retry-after, reached the upstreams).
async fn rpm_round(top: &str) -> (usize, usize, usize) {
    let ups = accounts(2, 10).await;
    let urls: Vec<String> = ups.iter().map(Fake::url).collect();
    let proxies = sidecars(3, &config(&urls, "", ", rpm: 10", top)).await;
    let sends = (0..30).map(|i| send(&proxies[i % 3], None));
    let results = futures_util::future::join_all(sends).await;
    let ok = results.iter().filter(|r| r.status() == 200).count();
    let limited = results
        .iter()
        .filter(|r| r.status() == 429 && r.headers().contains_key("retry-after"))
        .count();
    (ok, limited, ups.iter().map(Fake::count).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_rpm_holds_across_three_sidecars() {
    let redis = Redis::start();
    let (ok, limited, upstream) = rpm_round(&shared(&redis, "rpm")).await;
    assert_eq!(
        upstream, 20,
        "two accounts of rpm 10: 20 requests reach the upstreams in all"
    );
    assert_eq!(ok, 20, "20 answered 200");
    assert_eq!(limited, 10, "the other 10 get 429 with retry-after");
    all_keys_expire(&redis, "rpm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_shared_each_sidecar_admits_its_own_rpm() {
    let (ok, limited, upstream) = rpm_round("").await;
    assert_eq!(
        upstream, 30,
        "each sidecar counts only its own 10 requests: all 30 go upstream"
    );
    assert_eq!((ok, limited), (30, 0), "nothing refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_rate_limit_holds_across_sidecars() {
    let redis = Redis::start();
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let yaml = format!(
        "clients:\n  tokens:\n    - {{ name: svc, token_file: \"{}\" }}\n  limit: {{ rpm: 4 }}\n{}{}",
        secret_file("shared-svc.token", "tok-svc"),
        shared(&redis, "client"),
        pools_at_a(&[("p", "anthropic", vec![up.url()], "")])
    );
    let proxies = sidecars(3, &yaml).await;
    let sends = (0..9).map(|i| {
        client()
            .post(proxies[i % 3].url("/a/v1/messages"))
            .header("x-api-key", "tok-svc")
            .body("{}")
            .send()
    });
    let results: Vec<reqwest::Response> = futures_util::future::join_all(sends)
        .await
        .into_iter()
        .map(|r| r.expect("request"))
        .collect();
    let ok = results.iter().filter(|r| r.status() == 200).count();
    let limited = results
        .iter()
        .filter(|r| r.status() == 429 && r.headers().contains_key("retry-after"))
        .count();
    assert_eq!(
        (ok, limited),
        (4, 5),
        "rpm 4 for the client across three sidecars: 4 served, 5 refused"
    );
    assert_eq!(up.count(), 4, "4 reached the upstream");
    assert!(
        redis.cmd(&["EXISTS", "client:c:n:svc"]).as_deref() == Some("1"),
        "the client's window is in the store"
    );
    all_keys_expire(&redis, "client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_bound_through_one_sidecar_is_served_by_the_same_account_through_the_others() {
    let redis = Redis::start();
    let ups = accounts(2, 10).await;
    let urls: Vec<String> = ups.iter().map(Fake::url).collect();
    let proxies = sidecars(3, &config(&urls, "", "", &shared(&redis, "sess"))).await;
    let mut bound = Vec::new();
    for s in 0..6 {
        let id = format!("conv-{s}");
        let r = send(&proxies[0], Some(&id)).await;
        assert_eq!(r.status(), 200, "{id} served through sidecar 1");
        bound.push((id, account_of(&r)));
    }
    let used: std::collections::HashSet<&str> = bound.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(used.len(), 2, "the six sessions spread over both accounts: {bound:?}");
    for (id, account) in &bound {
        let key = format!("sess:s:p:{id}");
        assert_eq!(
            redis.cmd(&["GET", &key]).as_deref(),
            Some(account.as_str()),
            "{id} is bound in the store"
        );
    }
    // Asked in reverse order: the other sidecars' own ranking would place them differently.
    for (id, account) in bound.iter().rev() {
        for (i, p) in proxies.iter().enumerate().skip(1) {
            for _ in 0..2 {
                let r = send(p, Some(id)).await;
                assert_eq!(r.status(), 200, "{id} served through sidecar {}", i + 1);
                assert_eq!(
                    &account_of(&r),
                    account,
                    "{id} stays on {account} through sidecar {}",
                    i + 1
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooldown_seen_by_one_sidecar_is_obeyed_by_the_others() {
    let redis = Redis::start();
    let error = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}});
    let throttled = Fake::always(Reply::Raw(
        429,
        vec![
            ("retry-after", "30".into()),
            ("content-type", "application/json".into()),
        ],
        error.to_string().into(),
    ))
    .await;
    let healthy = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let urls = [throttled.url(), healthy.url()];
    let proxies = sidecars(3, &config(&urls, "", "", &shared(&redis, "cool"))).await;
    for n in 0..10 {
        let r = send(&proxies[0], None).await;
        assert_eq!(
            r.status(),
            200,
            "request {n} through sidecar 1 is served (retried elsewhere on 429)"
        );
        if throttled.count() > 0 {
            break;
        }
    }
    assert_eq!(
        throttled.count(),
        1,
        "the throttled account answered 429 once through sidecar 1"
    );
    redis.wait_for(&["EXISTS", "cool:a:p:acct-0:health"], "1");
    let ttl: i64 = redis.cmd(&["PTTL", "cool:a:p:acct-0:health"]).unwrap().parse().unwrap();
    assert!(
        ttl > 20_000 && ttl <= 30_000,
        "the cooldown travels with its retry-after of 30 s: {ttl} ms left"
    );
    for (i, p) in proxies.iter().enumerate().skip(1) {
        for n in 0..10 {
            let r = send(p, None).await;
            assert_eq!(r.status(), 200, "request {n} through sidecar {} served", i + 1);
            assert_eq!(
                account_of(&r),
                "acct-1",
                "sidecar {} sends nothing to the cooling account",
                i + 1
            );
        }
    }
    assert_eq!(
        throttled.count(),
        1,
        "sidecars 2 and 3 sent nothing to the cooling account"
    );
    all_keys_expire(&redis, "cool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_budget_reached_through_several_sidecars_stops_all_and_notifies_once() {
    let redis = Redis::start();
    let hook = Fake::webhook("LLMS_HOOK_SHARED", Reply::Json(200, json!({}))).await;
    // 100k input tokens at $3/M: $0.30 a request; a weekly budget of $1 is past at the 4th.
    let ups = accounts(1, 100_000).await;
    let top = format!(
        "notifications:\n  webhook: {{ url_env: LLMS_HOOK_SHARED, timeout: 2s }}\n{}",
        shared(&redis, "budget")
    );
    let yaml = config(&[ups[0].url()], "", ", budget: { weekly_usd: 1.0 }", &top);
    let proxies = sidecars(3, &yaml).await;
    let key = "budget:a:p:acct-0:ledger";
    for n in 0..4 {
        let r = send(&proxies[n % 3], None).await;
        assert_eq!(r.status(), 200, "request {n} is within the budget");
        // Its usage is written after it ends: wait until the store has it (all four in one
        // hour's field unless the hour turns meanwhile: then the new hour's has the rest).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let hour = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() / 3600;
            let count = |h: u64| -> usize {
                redis
                    .cmd(&["HGET", key, &format!("n{h}")])
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            if count(hour) + count(hour - 1) == n + 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "request {n}'s usage reached the store within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for (i, p) in proxies.iter().enumerate() {
        let r = send(p, None).await;
        assert_eq!(r.status(), 503, "sidecar {} takes no request past the budget", i + 1);
    }
    assert_eq!(ups[0].count(), 4, "nothing reached the account past its budget");
    let deadline = Instant::now() + Duration::from_secs(10);
    let notes = || {
        hook.seen()
            .iter()
            .filter(|s| s.json()["event"] == "budget_threshold")
            .count()
    };
    while notes() < 2 {
        assert!(
            Instant::now() < deadline,
            "both thresholds (80%, 90%) notified within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(notes(), 2, "each threshold notified once across the three sidecars");
    all_keys_expire(&redis, "budget");
}

/// Sum of every `llm_sidecar_shared_state_errors_total` series of `proxy`.
async fn shared_errors(proxy: &Proxy) -> f64 {
    metric_sum(proxy, "llm_sidecar_shared_state_errors_total{", "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_fails_no_request_and_sharing_resumes_after_it() {
    let mut redis = Redis::start();
    let steady = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let limited = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let key = secret_file("shared-outage.key", "k");
    let yaml = format!(
        "{}routes:\n  - {{ name: a, match: {{ path_prefix: /a }}, pool: p }}\n  - {{ name: b, match: {{ path_prefix: /b }}, pool: q }}\npools:\n  p:\n    provider: anthropic\n    accounts:\n      - {{ name: steady, base_url: \"{}\", key_file: \"{key}\" }}\n  q:\n    provider: anthropic\n    accounts:\n      - {{ name: limited, base_url: \"{}\", key_file: \"{key}\", rpm: 5 }}\n",
        shared(&redis, "outage").replace("timeout: 2s", "timeout: 500ms"),
        steady.url(),
        limited.url()
    );
    let proxies = sidecars(2, &yaml).await;
    // Steady load before, during and for 300 ms after the outage.
    let restarted = std::sync::OnceLock::new();
    let load = async {
        let mut statuses = Vec::new();
        while restarted
            .get()
            .is_none_or(|t: &Instant| t.elapsed() < Duration::from_millis(300))
        {
            for p in &proxies {
                statuses.push(send(p, None).await.status().as_u16());
            }
        }
        statuses
    };
    let outage = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        redis.stop();
        // Down until both sidecars saw it, then 300 ms more.
        let all_down = || proxies.iter().all(|p| !p.core.shared.as_ref().unwrap().is_up());
        wait_for("both sidecars to see the store go", all_down).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let down = all_down();
        redis.restart();
        let _ = restarted.set(Instant::now());
        down
    };
    let (statuses, down) = tokio::join!(load, outage);
    assert!(down, "both sidecars saw the store go away");
    assert!(statuses.len() >= 20, "steady load ran: {} requests", statuses.len());
    assert!(
        statuses.iter().all(|s| *s == 200),
        "no request failed during the outage: {statuses:?}"
    );
    for (i, p) in proxies.iter().enumerate() {
        assert!(
            shared_errors(p).await >= 1.0,
            "sidecar {} counted the store's failures",
            i + 1
        );
    }
    let lost = logs()
        .lines()
        .filter(|l| l.contains("shared state unavailable") && l.contains("\"prefix\":\"outage\""))
        .count();
    assert_eq!(lost, 2, "one log line per sidecar for the outage, not one per request");
    // Sharing resumes: the rpm of 5 holds across both sidecars again.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !proxies.iter().all(|p| p.core.shared.as_ref().unwrap().is_up()) {
        assert!(Instant::now() < deadline, "both sidecars reconnected within 15 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sends = (0..10).map(|i| {
        let url = proxies[i % 2].url("/b/v1/messages");
        async move {
            client()
                .post(url)
                .json(&json!({"model": "claude-sonnet-5"}))
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    });
    let results = futures_util::future::join_all(sends).await;
    assert_eq!(
        results.iter().filter(|s| **s == 200).count(),
        5,
        "after the outage the shared rpm of 5 holds again: {results:?}"
    );
    assert_eq!(limited.count(), 5, "5 reached the limited account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_store_delays_no_request_past_its_timeout() {
    let redis = Redis::start();
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let yaml = format!(
        "{}{}",
        shared(&redis, "frozen").replace("timeout: 2s", "timeout: 100ms"),
        pools_at_a(&[("p", "anthropic", vec![up.url()], "")])
    );
    let proxies = sidecars(1, &yaml).await;
    let proxy = &proxies[0];
    redis.pause();
    for n in 0..10 {
        let start = Instant::now();
        let r = send(proxy, None).await;
        let took = start.elapsed();
        assert_eq!(r.status(), 200, "request {n} is served while the store is frozen");
        // A deadline, not a speed figure: only the first request may wait for the store
        // (100 ms), and none waits for it twice.
        assert!(
            took < Duration::from_secs(2),
            "request {n} took {took:?} with a frozen store"
        );
    }
    assert!(
        !proxy.core.shared.as_ref().unwrap().is_up(),
        "the frozen store was given up"
    );
    assert!(shared_errors(proxy).await >= 1.0, "the timeout was counted");
    redis.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !proxy.core.shared.as_ref().unwrap().is_up() {
        assert!(
            Instant::now() < deadline,
            "sharing resumed within 15 s of the store thawing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
