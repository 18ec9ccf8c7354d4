//! The request log through the real proxy: one row per request whatever happens to it, a full
//! queue that drops and counts without blocking, the ledger rebuilt from the log, and the usage
//! report agreeing with the rows.

use std::time::Duration;

use crate::harness::*;
use futures_util::StreamExt;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_leaves_exactly_one_row() {
    let ok = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let failing = Fake::always(Reply::Json(
        500,
        json!({"type": "error", "error": {"type": "api_error", "message": "boom"}}),
    ))
    .await;
    let (_held, dead) = refusing();
    let s = Logged::priced(
        &[
            ("ok", "anthropic", ok.url()),
            ("failing", "anthropic", failing.url()),
            ("dead", "anthropic", dead),
        ],
        "",
    );
    let c = client();
    let cases: [(&str, &str, u16, Option<&str>); 6] = [
        ("/ok/v1/messages", "{\"model\":\"claude-sonnet-5\"}", 200, None),
        ("/ok/v1/messages", "{not json", 400, Some("invalid_json")),
        ("/nowhere/v1/messages", "{}", 404, Some("no_route")),
        ("/failing/v1/messages", "{}", 500, None),
        ("/dead/v1/messages", "{}", 502, Some("connect_refused")),
        ("/ok/v1/messages", &"x".repeat(64), 400, Some("invalid_body")),
    ];
    for (path, body, status, _) in cases {
        let resp = c
            .post(s.proxy.url(path))
            .body(body.to_string())
            .send()
            .await
            .expect("req");
        assert_eq!(resp.status(), status, "{path}: answered {status}");
    }
    let rows = s.wait_rows(cases.len()).await;
    assert_eq!(rows.len(), cases.len(), "one row per request: {rows:#?}");
    for (row, (path, _, status, kind)) in rows.iter().zip(cases) {
        assert_eq!(row["status"], status, "{path}: the row has the status sent: {row}");
        assert_eq!(
            row["error_kind"],
            json!(kind),
            "{path}: the row names the error kind: {row}"
        );
        assert_eq!(row["path"], path, "rows in request order: {row}");
    }
    assert_eq!(rows[0]["usage_source"], "reported", "success metered");
    assert_eq!(rows[2]["route"], Value::Null, "no route, no route name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_and_an_upstream_that_cuts_each_leave_a_partial_row() {
    let mut slow = anthropic_events();
    slow.truncate(3); // message_start, ping, first content
    slow.extend((0..50).map(|_| (Duration::from_millis(100), "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n".to_string())));
    let mut cut = anthropic_events();
    cut.truncate(3);
    let up = Fake::start(move |seen, _| {
        if seen.path.contains("cut") {
            Reply::SseCut(cut.clone())
        } else {
            Reply::Sse(slow.clone())
        }
    })
    .await;
    let s = Logged::priced(&[("anthropic", "anthropic", up.url())], "");
    let c = client();

    let resp = c
        .post(s.proxy.url("/anthropic/v1/messages"))
        .json(&json!({"stream": true}))
        .send()
        .await
        .expect("req");
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.expect("some bytes").expect("chunk");
    assert!(!first.is_empty(), "the stream started before the hang-up");
    drop(stream); // the client hangs up mid-stream

    let resp = c
        .post(s.proxy.url("/anthropic/v1/messages/cut"))
        .json(&json!({"stream": true}))
        .send()
        .await
        .expect("req");
    let _ = read_all(resp).await;

    let rows = s.wait_rows(2).await;
    assert_eq!(rows.len(), 2, "one row each: {rows:#?}");
    let hangup = rows
        .iter()
        .find(|r| r["path"] == "/anthropic/v1/messages")
        .expect("hang-up row");
    let upstream_cut = rows
        .iter()
        .find(|r| r["path"] == "/anthropic/v1/messages/cut")
        .expect("cut row");
    for (what, r) in [("hang-up", hangup), ("upstream cut", upstream_cut)] {
        assert_eq!(r["status"], 200, "{what}: status as sent: {r}");
        assert_eq!(r["usage_source"], "partial", "{what}: usage marked partial: {r}");
        assert_eq!(r["input_tokens"], 1200, "{what}: input from message_start billed: {r}");
        assert_eq!(
            r["cache_read_tokens"], 5000,
            "{what}: cache reads from message_start billed: {r}"
        );
        assert!(r["error_kind"].is_string(), "{what}: the cause is recorded: {r}");
    }
    assert_eq!(
        hangup["error_kind"], "client_closed",
        "the hang-up is the client's: {hangup}"
    );
    assert_eq!(
        upstream_cut["error_kind"], "upstream_error",
        "the cut is the upstream's: {upstream_cut}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_against_a_full_queue_drops_and_counts_never_blocks() {
    let up = Fake::always(Reply::Json(200, anthropic_reply())).await;
    let s = Logged::priced(&[("anthropic", "anthropic", up.url())], ", queue: 4");
    // Another process holds the database: the writer waits, the queue fills.
    let blocker = rusqlite::Connection::open(&s.db).expect("open");
    blocker.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let c = client();
    let started = std::time::Instant::now();
    let sends = (0..40).map(|_| c.post(s.proxy.url("/anthropic/v1/messages")).body("{}").send());
    let results = futures_util::future::join_all(sends).await;
    assert!(
        results.iter().all(|r| r.as_ref().is_ok_and(|r| r.status() == 200)),
        "requests never wait for the log"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "no request blocked on the locked database"
    );
    let log = s.proxy.core.log.as_ref().expect("log");
    for _ in 0..100 {
        if log.dropped() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dropped = log.dropped();
    assert!(dropped > 0, "rows were dropped while the queue was full");
    blocker.execute_batch("COMMIT").expect("unlock");
    drop(blocker);
    // Rows of answers already sent may still be queued or dropped after `dropped` was read: the
    // wait counts both afresh.
    wait_for("every row written or dropped", || {
        s.rows().len() as u64 + log.dropped() >= 40
    })
    .await;
    assert_eq!(
        s.rows().len() as u64 + log.dropped(),
        40,
        "every request is either written or counted as dropped"
    );
    assert!(logs().contains("request log queue full"), "the drop is said in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_is_rebuilt_from_the_log_and_usage_agrees_with_the_rows() {
    let up = Fake::always(Reply::Sse(anthropic_events())).await;
    let s = Logged::priced(&[("anthropic", "anthropic", up.url())], "");
    let c = client();
    for session in ["a", "a", "b"] {
        let resp = c
            .post(s.proxy.url("/anthropic/v1/messages"))
            .header("x-session-id", session)
            .json(&json!({"stream": true}))
            .send()
            .await
            .expect("req");
        let _ = read_all(resp).await;
    }
    let rows = s.wait_rows(3).await;
    let total_cost: f64 = rows.iter().map(|r| r["cost_usd"].as_f64().expect("priced")).sum();

    // A restarted sidecar replays the week into its ledgers.
    let states = llm_sidecar::state::States::default();
    let replayed = llm_sidecar::store::rebuild_ledgers(&s.db, &states).expect("rebuild");
    assert_eq!(replayed, 3, "the three logged requests are replayed");
    let view = states
        .account("anthropic", "acct-0")
        .ledger
        .view(llm_sidecar::clock::now_ms());
    assert!(
        (view.week_cost - total_cost).abs() < 1e-9 && view.week_tokens == 3 * 6587,
        "the rebuilt week matches the rows' cost ({total_cost}) and tokens (3 x 6587): {view:?}"
    );

    let out = std::process::Command::new(BIN)
        .args(["usage", "--db"])
        .arg(&s.db)
        .args(["--since", "1h", "--by", "account", "--json"])
        .output()
        .expect("usage");
    assert!(
        out.status.success(),
        "usage --json succeeds: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let groups: Value = serde_json::from_slice(&out.stdout).expect("json");
    let g = &groups[0];
    assert_eq!(
        (g["key"].clone(), g["requests"].clone()),
        (json!("anthropic/acct-0"), json!(3)),
        "one group for the account, with its three requests: {groups}"
    );
    assert_eq!(
        (
            g["input_tokens"].clone(),
            g["output_tokens"].clone(),
            g["cache_read_tokens"].clone()
        ),
        (json!(3600), json!(261), json!(15000)),
        "the group's tokens are the sum of three streams: {g}"
    );
    assert!(
        (g["cost_usd"].as_f64().expect("cost") - total_cost).abs() < 1e-9,
        "the group's cost is the rows' total {total_cost}: {g}"
    );
    let by_session = std::process::Command::new(BIN)
        .args(["usage", "--db"])
        .arg(&s.db)
        .args(["--by", "session"])
        .output()
        .expect("usage");
    let table = String::from_utf8_lossy(&by_session.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("a ") && l.split_whitespace().nth(1) == Some("2")),
        "session a has its two requests: {table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("TOTAL") && l.split_whitespace().nth(1) == Some("3")),
        "the total counts three requests: {table}"
    );
}
