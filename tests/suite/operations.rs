//! Operations through the real sidecar: metrics families after real traffic, the admin API and
//! its token, and `llm-sidecar status`.

use std::collections::HashMap;
use std::time::Duration;

use crate::harness::*;
use serde_json::{json, Value};

/// `family{labels} value` lines of a Prometheus text exposition.
fn samples(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                .collect();
            Some((name.to_string(), labels, value.parse().ok()?))
        })
        .collect()
}

fn value(all: &[(String, HashMap<String, String>, f64)], name: &str, want: &[(&str, &str)]) -> f64 {
    all.iter()
        .filter(|(n, l, _)| n == name && want.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, _, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_family_is_exposed_with_the_traffic_it_saw() {
    let usage = json!({"model": "claude-sonnet-5", "content": [], "usage": {"input_tokens": 1000, "output_tokens": 100, "cache_read_input_tokens": 50}});
    let good = Fake::always(Reply::Json(200, usage)).await;
    let bad = Fake::always(Reply::Raw(429, vec![("retry-after", "60".into())], "{}".into())).await;
    let proxy = Proxy::start(&claude_pools(&[("m", vec![bad.url(), good.url()])]));
    let c = client();
    for i in 0..5 {
        let r = c
            .post(proxy.url("/m/v1/messages"))
            .header("x-session-id", format!("secret-session-{i}"))
            .body("{}")
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 200, "request {i} served (after a retry off the 429)");
    }
    let _ = c.post(proxy.url("/nowhere")).body("{}").send().await;
    // A request is counted in `logging`, just after its answer went out: the client can be
    // faster than that, so look until the last one shows (or give up after 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = c
            .get(format!("http://{}/metrics", proxy.admin))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let unrouted = value(
            &samples(&text),
            "llm_sidecar_requests_total",
            &[("route", "-"), ("status_class", "4xx")],
        );
        if unrouted > 0.0 || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for family in [
        "requests_total",
        "request_duration_seconds",
        "upstream_ttfb_seconds",
        "upstream_attempts_total",
        "tokens_total",
        "cost_usd_total",
        "inflight_requests",
        "queue_depth",
        "account_state",
        "account_health_score",
        "account_budget_used_ratio",
        "sessions",
        "retries_total",
        "retry_budget_exhausted_total",
        "ratelimited_total",
        "config_reloads_total",
        "config_last_reload_success_timestamp_seconds",
        "request_log_dropped_total",
        "notifications_dropped_total",
        "overhead_seconds",
    ] {
        let name = format!("llm_sidecar_{family}");
        assert!(
            text.contains(&format!("# HELP {name} ")) && text.contains(&format!("# TYPE {name} ")),
            "{name} is exposed with help and type"
        );
    }
    let all = samples(&text);
    let s = |n: &str, l: &[(&str, &str)]| value(&all, &format!("llm_sidecar_{n}"), l);
    assert_eq!(
        s(
            "requests_total",
            &[("route", "m-route"), ("pool", "m"), ("status_class", "2xx")]
        ),
        5.0,
        "the five successes are counted by route, pool and status class"
    );
    assert_eq!(
        s("requests_total", &[("route", "-"), ("status_class", "4xx")]),
        1.0,
        "unrouted requests are counted too"
    );
    assert_eq!(
        s("request_duration_seconds_count", &[("route", "m-route")]),
        5.0,
        "one duration observed per request"
    );
    assert_eq!(
        s("overhead_seconds_count", &[("route", "m-route")]),
        5.0,
        "one overhead observed per request"
    );
    assert_eq!(
        s("tokens_total", &[("account", "acct-1"), ("kind", "input")]),
        5000.0,
        "input tokens exactly"
    );
    assert_eq!(
        s("tokens_total", &[("account", "acct-1"), ("kind", "cache_read")]),
        250.0,
        "cache-read tokens exactly"
    );
    assert!(
        (s("cost_usd_total", &[("account", "acct-1")]) - 5.0 * (1000.0 * 3.0 + 100.0 * 15.0 + 50.0 * 3.0) / 1e6).abs()
            < 1e-9,
        "cost follows the prices (cache reads at the input price when none is set)"
    );
    assert_eq!(
        s(
            "upstream_attempts_total",
            &[("account", "acct-0"), ("outcome", "rate_limited")]
        ),
        1.0,
        "the one 429 attempt is counted as rate_limited"
    );
    assert_eq!(
        s("upstream_attempts_total", &[("account", "acct-1"), ("outcome", "ok")]),
        5.0,
        "five successful attempts on the good account"
    );
    assert_eq!(
        s("ratelimited_total", &[("scope", "account")]),
        1.0,
        "one account-level rate limit"
    );
    assert_eq!(s("retries_total", &[("pool", "m")]), 1.0, "one retry, after the 429");
    assert_eq!(
        s("account_state", &[("account", "acct-0"), ("state", "cooling_down")]),
        1.0,
        "the 429 account is shown cooling down"
    );
    assert_eq!(
        s("account_state", &[("account", "acct-1"), ("state", "healthy")]),
        1.0,
        "the good account is shown healthy"
    );
    assert_eq!(s("sessions", &[("pool", "m")]), 5.0, "five sessions bound");
    assert_eq!(s("inflight_requests", &[("pool", "m")]), 0.0, "nothing left in flight");
    assert!(!text.contains("secret-session"), "never a session id as a label");
    let max_quantile = all
        .iter()
        .filter(|(n, l, _)| {
            n == "llm_sidecar_overhead_seconds_bucket"
                && l.get("le").map(String::as_str) == Some("0.01")
                && l.get("route").map(String::as_str) == Some("m-route")
        })
        .map(|x| x.2)
        .sum::<f64>();
    assert!(
        max_quantile >= 4.0,
        "the sidecar's own time stays under 10 ms for these requests: {max_quantile}"
    );
}

/// GET an admin URL with the test's admin token; the answer as JSON.
async fn admin_json(c: &reqwest::Client, url: String) -> Value {
    let resp = c
        .get(&url)
        .bearer_auth("adm-secret")
        .send()
        .await
        .expect("admin request");
    resp.json().await.expect("admin JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_shows_pools_and_sessions_and_resets_accounts_behind_its_token() {
    let bad_key = Fake::always(Reply::Json(401, json!({}))).await;
    let good = Fake::always(Reply::Json(200, json!({"content": []}))).await;
    let dir = tempfile::tempdir().expect("dir");
    let proxy = Proxy::start_file(
        dir.path(),
        &claude_pools(&[("a", vec![bad_key.url(), good.url()])]),
        // Set once by the harness (the admin token has no `token_file`).
        ", token_env: LLMS_ADMIN_TOKEN_1",
    );
    let c = client();
    for s in ["conv-1", "conv-2"] {
        assert_eq!(
            c.post(proxy.url("/a/v1/messages"))
                .header("x-session-id", s)
                .body("{}")
                .send()
                .await
                .expect("req")
                .status(),
            200,
            "{s}: served by the good account"
        );
    }
    let admin = |p: &str| format!("http://{}{p}", proxy.admin);
    assert_eq!(
        c.get(admin("/healthz")).send().await.expect("h").status(),
        200,
        "probes need no token"
    );
    assert_eq!(
        c.get(admin("/admin/pools")).send().await.expect("p").status(),
        401,
        "no token, no admin"
    );
    assert_eq!(
        c.get(admin("/admin/pools"))
            .bearer_auth("wrong")
            .send()
            .await
            .expect("p")
            .status(),
        401,
        "a wrong token, no admin"
    );
    let pools: Value = admin_json(&c, admin("/admin/pools")).await;
    let accounts = &pools["pools"][0]["accounts"];
    assert_eq!(
        accounts[0]["state"], "broken_key",
        "the 401 account is shown with a broken key: {pools}"
    );
    assert_eq!(accounts[1]["state"], "healthy", "the good account: {pools}");
    assert_eq!(accounts[1]["sessions"], 2, "both sessions on the good account: {pools}");
    assert!(
        accounts[1]["score"].as_f64().is_some_and(|s| s > 80.0),
        "the good account scores above 80: {pools}"
    );
    assert!(!pools.to_string().contains("REAL-KEY"), "no key in any answer");
    let sessions: Value = admin_json(&c, admin("/admin/sessions?pool=a")).await;
    let ids: Vec<&str> = sessions["sessions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"conv-1") && ids.contains(&"conv-2"),
        "both sessions are listed: {sessions}"
    );
    assert_eq!(
        sessions["sessions"][0]["account"], "acct-1",
        "a listed session shows its account, the good one: {sessions}"
    );
    let ready = c.get(admin("/readyz")).send().await.expect("r");
    assert_eq!(ready.status(), 200, "one account can still serve");
    let reset = c
        .post(admin("/admin/pools/a/accounts/acct-0/reset"))
        .bearer_auth("adm-secret")
        .send()
        .await
        .expect("reset");
    assert_eq!(reset.status(), 200, "the reset is accepted");
    let pools: Value = admin_json(&c, admin("/admin/pools")).await;
    assert_eq!(
        pools["pools"][0]["accounts"][0]["state"], "healthy",
        "reset clears the broken key"
    );
    let missing = c
        .post(admin("/admin/pools/a/accounts/nope/reset"))
        .bearer_auth("adm-secret")
        .send()
        .await
        .expect("reset");
    assert_eq!(missing.status(), 404, "resetting an unknown account: not found");

    let status = |token: Option<&'static str>| {
        let admin = format!("http://{}", proxy.admin);
        tokio::task::spawn_blocking(move || {
            let mut cmd = std::process::Command::new(BIN);
            cmd.args(["status", "--admin", &admin])
                .env_remove("LLM_SIDECAR_ADMIN_TOKEN");
            if let Some(t) = token {
                cmd.env("LLM_SIDECAR_ADMIN_TOKEN", t);
            }
            cmd.output().expect("status")
        })
    };
    let out = status(Some("adm-secret")).await.expect("join");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status with the token succeeds: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("acct-0") && l.contains("healthy")),
        "status shows acct-0 healthy after its reset: {table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("acct-1") && l.contains(" 2 ")),
        "status shows acct-1 with its 2 sessions: {table}"
    );
    let denied = status(None).await.expect("join");
    assert!(
        !denied.status.success() && String::from_utf8_lossy(&denied.stderr).contains("LLM_SIDECAR_ADMIN_TOKEN"),
        "says which token it needs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_stays_ready_when_upstreams_fail_and_verbose_says_why() {
    let bad = Fake::always(Reply::Json(401, json!({}))).await;
    let proxy = Proxy::start(&claude_pools(&[("r", vec![bad.url()])]));
    let _ = client().post(proxy.url("/r/v1/messages")).body("{}").send().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ready = client()
        .get(format!("http://{}/readyz", proxy.admin))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        200,
        "an upstream's broken key must not take the pod out of its Service"
    );
    let verbose = client()
        .get(format!("http://{}/readyz?verbose", proxy.admin))
        .send()
        .await
        .expect("readyz");
    assert_eq!(verbose.status(), 200, "verbose lists upstream state without failing");
    let v: Value = verbose.json().await.expect("json");
    assert!(
        v["upstreams"][0]
            .as_str()
            .is_some_and(|r| r.contains("pool r") && r.contains("broken_key")),
        "verbose names the pool and its accounts' states: {v}"
    );
    proxy.core.start_draining();
    let draining = client()
        .get(format!("http://{}/readyz", proxy.admin))
        .send()
        .await
        .expect("readyz");
    assert_eq!(draining.status(), 503, "draining after SIGTERM: not ready");
}
