//! Hot reload through the real sidecar: a valid change applied without restart, an invalid
//! file refused while the old config serves, a long stream finishing across a reload, zero
//! failed requests while the file is rewritten, rotated key files picked up, state carried over.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::harness::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

fn pool(urls: &[(&str, String)], timeouts: &str) -> String {
    let mut out = format!("routes:\n  - {{ name: r, match: {{ path_prefix: /a }}, pool: p }}\npools:\n  p:\n    provider: anthropic\n    timeouts: {{ {timeouts} }}\n    accounts:\n");
    for (name, url) in urls {
        let key = secret_file(&format!("reload-{name}.key"), &format!("KEY-{name}"));
        out.push_str(&format!(
            "      - {{ name: {name}, base_url: \"{url}\", key_file: \"{key}\" }}\n"
        ));
    }
    out
}

fn reloads(proxy: &Proxy, result: &str) -> f64 {
    let text = llm_sidecar::admin::metrics::render(&proxy.core.metrics, &proxy.core.snapshot(), 0, 0);
    let text = String::from_utf8_lossy(&text).into_owned();
    let line = format!("llm_sidecar_config_reloads_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_change_applies_without_restart_and_state_carries_over() {
    let slow = Fake::always(Reply::Delay(
        Duration::from_millis(800),
        Box::new(Reply::Json(200, anthropic_reply())),
    ))
    .await;
    let fresh = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let dir = tempfile::tempdir().expect("dir");
    let proxy = Proxy::start_file(dir.path(), &pool(&[("one", slow.url())], "first_byte: 5s"), "");
    let c = client();
    assert_eq!(
        c.post(proxy.url("/a/v1/messages"))
            .header("x-session-id", "keep-me")
            .body("{}")
            .send()
            .await
            .expect("req")
            .status(),
        200,
        "slow but within 5 s"
    );
    let before = proxy.core.snapshot();
    proxy.rewrite(&pool(&[("one", slow.url()), ("two", fresh.url())], "first_byte: 300ms"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while proxy.core.snapshot().pools[0].accounts.len() != 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let problems: Vec<String> = logs()
        .lines()
        .filter(|l| l.contains("reload"))
        .map(String::from)
        .collect();
    assert_eq!(
        proxy.core.snapshot().pools[0].accounts.len(),
        2,
        "the new account is in force within 5 s; reload log lines: {problems:#?}"
    );
    let after = proxy.core.snapshot();
    assert!(
        Arc::ptr_eq(&before.pools[0].accounts[0].state, &after.pools[0].accounts[0].state),
        "account state carried over"
    );
    assert_eq!(after.pools[0].state.sessions.len(), 1, "sessions carried over");
    let r = c
        .post(proxy.url("/a/v1/messages"))
        .body("{}")
        .send()
        .await
        .expect("req");
    assert_eq!(
        r.status(),
        200,
        "the slow account now times out at 300 ms and the new account serves"
    );
    assert!(fresh.count() >= 1, "the new account gets traffic");
    assert_eq!(reloads(&proxy, "success"), 1.0, "one successful reload counted");
    assert!(logged(&["config reloaded", "file change"]), "the reload is logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_file_is_refused_and_the_running_config_stays() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let dir = tempfile::tempdir().expect("dir");
    let proxy = Proxy::start_file(
        dir.path(),
        &pool(&[("one", up.url())], "connect: 2s"),
        // Set once by the harness (the admin token has no `token_file`).
        ", token_env: LLMS_RELOAD_ADMIN",
    );
    proxy.rewrite("routes: [ { name: r, pool: missing } ]\npools: {}\nbogus_key: 1\n");
    let c = client();
    let refused = c
        .post(format!("http://{}/admin/reload", proxy.admin))
        .bearer_auth("adm")
        .send()
        .await
        .expect("reload");
    assert_eq!(refused.status(), 400, "refused with the problems");
    let v: Value = refused.json().await.expect("json");
    assert!(
        v["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("unknown field `bogus_key`")),
        "the same list check prints: {v}"
    );
    assert_eq!(
        c.post(proxy.url("/a/v1/messages"))
            .body("{}")
            .send()
            .await
            .expect("req")
            .status(),
        200,
        "the old config serves"
    );
    assert!(
        reloads(&proxy, "error") >= 1.0,
        "the refused reload is counted as an error"
    );
    proxy.rewrite(&pool(&[("one", up.url())], "connect: 3s"));
    let ok = c
        .post(format!("http://{}/admin/reload", proxy.admin))
        .bearer_auth("adm")
        .send()
        .await
        .expect("reload");
    assert_eq!(ok.status(), 200, "a valid file is accepted");
    let v: Value = ok.json().await.expect("json");
    assert!(
        v["status"] == "reloaded" || v["status"] == "unchanged",
        "applied, by this call or already by the file watcher: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_in_flight_finishes_intact_across_a_reload() {
    let events: Vec<(Duration, String)> = (0..10)
        .map(|i| {
            (
                Duration::from_millis(100),
                format!("event: content_block_delta\ndata: {{\"i\":{i}}}\n\n"),
            )
        })
        .collect();
    let expected: String = events.iter().map(|(_, e)| e.clone()).collect();
    let up = Fake::always(Reply::Sse(events)).await;
    let other = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let dir = tempfile::tempdir().expect("dir");
    let proxy = Proxy::start_file(dir.path(), &pool(&[("one", up.url())], "idle: 2s"), "");
    let resp = client()
        .post(proxy.url("/a/v1/messages"))
        .json(&json!({"stream": true}))
        .send()
        .await
        .expect("req");
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    got.extend_from_slice(&stream.next().await.expect("first").expect("chunk"));
    proxy.rewrite(&pool(&[("other", other.url())], "idle: 1s"));
    wait_for("the reload", || {
        &*proxy.core.snapshot().pools[0].accounts[0].name == "other"
    })
    .await;
    while let Some(c) = stream.next().await {
        got.extend_from_slice(&c.expect("no cut"));
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        expected,
        "the stream finished on the snapshot it started with"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_loop_sees_no_failure_while_the_file_is_rewritten_five_times() {
    let a = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let b = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let dir = tempfile::tempdir().expect("dir");
    let proxy = Arc::new(Proxy::start_file(
        dir.path(),
        &pool(&[("a", a.url())], "connect: 2s"),
        "",
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let (proxy, stop, ok, failed) = (
                Arc::clone(&proxy),
                Arc::clone(&stop),
                Arc::clone(&ok),
                Arc::clone(&failed),
            );
            tokio::spawn(async move {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    match c.post(proxy.url("/a/v1/messages")).body("{}").send().await {
                        Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let versions = [
        pool(&[("a", a.url()), ("b", b.url())], "connect: 2s"),
        "pools: { p: { provider: anthropic, accounts: [] } }\nroutes: [ { name: r, pool: p } ]\n".to_string(),
        pool(&[("b", b.url())], "connect: 1s"),
        "this is: [not yaml\n".to_string(),
        pool(&[("a", a.url()), ("b", b.url())], "connect: 3s"),
    ];
    // Each version is judged (applied or refused) before the next is written, and the loop runs
    // against it for a while.
    for (i, v) in versions.iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(150)).await;
        proxy.rewrite(v);
        let judged = (i + 1) as f64;
        wait_for(&format!("version {} judged", i + 1), || {
            reloads(&proxy, "success") + reloads(&proxy, "error") >= judged
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.expect("loop");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "zero failed requests");
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "the loop really ran: {}",
        ok.load(Ordering::Relaxed)
    );
    let problems: Vec<String> = logs()
        .lines()
        .filter(|l| l.contains("refused"))
        .map(|l| l.chars().take(400).collect())
        .collect();
    assert_eq!(
        (reloads(&proxy, "success"), reloads(&proxy, "error")),
        (3.0, 2.0),
        "three applied, two refused: {problems:#?}"
    );
    assert_eq!(
        proxy.core.snapshot().pools[0].accounts.len(),
        2,
        "the last valid file is in force"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_file_is_picked_up() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let dir = tempfile::tempdir().expect("dir");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("dir");
    let key = secrets.join("team-a");
    std::fs::write(&key, "sk-old\n").expect("key");
    let yaml = format!(
        "routes:\n  - {{ name: r, match: {{ path_prefix: /a }}, pool: p }}\npools:\n  p:\n    provider: anthropic\n    accounts:\n      - {{ name: team-a, base_url: \"{}\", key_file: {} }}\n",
        up.url(),
        key.display()
    );
    let proxy = Proxy::start_file(dir.path(), &yaml, "");
    let c = client();
    let _ = c
        .post(proxy.url("/a/v1/messages"))
        .body("{}")
        .send()
        .await
        .expect("req");
    assert_eq!(
        up.seen()[0].header("x-api-key"),
        Some("sk-old"),
        "the key file's first content is used"
    );
    // The Kubernetes way: a new file swapped in under the same name.
    std::fs::write(secrets.join(".team-a.new"), "sk-new\n").expect("key");
    std::fs::rename(secrets.join(".team-a.new"), &key).expect("rotate");
    wait_for("the new key", || {
        proxy.core.snapshot().pools[0].accounts[0].credential.1.as_bytes() == b"sk-new"
    })
    .await;
    let _ = c
        .post(proxy.url("/a/v1/messages"))
        .body("{}")
        .send()
        .await
        .expect("req");
    assert_eq!(up.seen()[1].header("x-api-key"), Some("sk-new"), "no restart needed");
}
