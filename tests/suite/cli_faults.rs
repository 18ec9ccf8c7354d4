//! claude-cli pools under faults: usage limits cool an account and another serves, CLI failures
//! become clear errors with their kinds, bad fields are refused before any process starts, and a
//! timeout, a client that leaves or a shutdown leaves no process behind.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::harness::cli::{alive, ask, gone, CliRig};
use crate::harness::{admin_pools, client, metric, Proxy};

async fn post(proxy: &Proxy, body: &Value) -> (u16, Option<String>, Value) {
    let resp = client()
        .post(proxy.url("/code/v1/messages"))
        .json(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("x-llm-sidecar-error")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, kind, body)
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_usage_limit_cools_the_account_until_its_reset_and_another_serves() {
    let rig = CliRig::new();
    let limited = rig.config_dir("max-1");
    std::fs::write(limited.join("fake-mode"), "limit").expect("script max-1");
    let accounts = format!("{}{}", rig.subscription("max-1", ""), rig.subscription("max-2", ""));
    let proxy = Proxy::start(&rig.yaml("    retry: { backoff: 1ms }\n", &accounts));
    let from_limited = |runs: &[crate::harness::cli::Run]| {
        runs.iter()
            .filter(|r| r.var("CLAUDE_CONFIG_DIR") == Some(limited.to_str().unwrap_or_default()))
            .count()
    };
    // Until the limited account has been tried once: every request is still served.
    for i in 0..8 {
        let (status, _, body) = post(&proxy, &ask(&format!("q{i} [[reply:ok]]"), false)).await;
        assert_eq!(status, 200, "request {i} is served by the other account: {body}");
        assert_eq!(body["content"][0]["text"], "ok", "the other account's answer: {body}");
        if from_limited(&rig.runs()) > 0 {
            break;
        }
    }
    assert_eq!(from_limited(&rig.runs()), 1, "the limited account was tried once");
    let pools = admin_pools(&proxy).await;
    let account = &pools["pools"][0]["accounts"][0];
    assert_eq!(account["state"], "cooling_down", "max-1 cools down: {account}");
    let until = account["until"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .expect("until");
    let left = until.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    assert!(
        left > Duration::from_secs(50 * 60),
        "until the reset the CLI stated (over an hour away): {left:?}"
    );
    for i in 0..4 {
        let (status, _, _) = post(&proxy, &ask(&format!("after {i}"), false)).await;
        assert_eq!(status, 200, "served while max-1 cools");
    }
    assert_eq!(from_limited(&rig.runs()), 1, "a cooling account gets no requests");
    let limited_exits = metric(
        &proxy,
        "llm_sidecar_cli_exits_total{pool=\"code\",reason=\"rate_limited\"}",
    )
    .await;
    assert_eq!(limited_exits, 1.0, "the limit is counted as an exit reason");
}

#[tokio::test]
async fn a_limit_on_every_account_is_a_429_with_the_reset() {
    let rig = CliRig::new();
    let proxy = Proxy::start(&rig.yaml("", &rig.api_key("api-1", "")));
    let (status, kind, body) = post(&proxy, &ask("[[mode:limit-stderr]]", false)).await;
    assert_eq!(status, 429, "the usage limit reaches the client: {body}");
    assert_eq!(kind.as_deref(), Some("cli_rate_limited"), "named as a CLI limit");
    assert_eq!(body["error"]["type"], "rate_limit_error", "Anthropic's shape: {body}");
    assert!(message(&body).contains("usage limit"), "the CLI's words: {body}");
}

#[tokio::test]
async fn cli_failures_are_clear_errors_with_their_kinds() {
    let rig = CliRig::new();
    let proxy = Proxy::start(&rig.yaml("", &rig.api_key("api-1", "")));

    let (status, _, body) = post(&proxy, &ask("[[mode:error400]]", false)).await;
    assert_eq!(
        status, 400,
        "an is_error result with status 400 is the client's error: {body}"
    );
    assert!(message(&body).contains("fake 400"), "the CLI's message: {body}");

    let (status, _, body) = post(&proxy, &ask("[[mode:maxturns]]", false)).await;
    assert!(status >= 400, "an is_error result is not a success ({status}): {body}");

    let (status, kind, body) = post(&proxy, &ask("[[mode:crash]]", false)).await;
    assert_eq!(status, 502, "a non-zero exit: {body}");
    assert_eq!(kind.as_deref(), Some("cli_error"), "named cli_error");
    let text = message(&body);
    assert!(text.contains("fatal: the fake broke"), "the CLI's stderr: {text}");
    assert!(
        !text.chars().any(|c| c.is_control()),
        "control characters stripped: {text:?}"
    );
    assert!(text.len() <= 600, "stderr cut to 500 bytes ({} bytes)", text.len());

    let (status, _, body) = post(&proxy, &ask("[[mode:overloaded]]", true)).await;
    assert!(status >= 500, "an overloaded CLI is a server error ({status}): {body}");
}

#[tokio::test]
async fn bad_fields_are_refused_before_any_process_starts() {
    let rig = CliRig::new();
    let proxy = Proxy::start(&rig.yaml("", &rig.api_key("api-1", "")));
    let with = |field: &str, value: Value| {
        let mut b = ask("hello", false);
        b[field] = value;
        b
    };
    let deep = (0..12).fold(json!(1), |v, _| json!({ "a": v }));
    let missing = rig.work.join("missing").display().to_string();
    let cases = [
        (with("working_directory", json!("../etc")), "path traversal"),
        (
            with("working_directory", json!("/etc")),
            "outside the allowed directories",
        ),
        (with("working_directory", json!(missing)), "does not exist"),
        (with("add_dirs", json!(["a\u{0}b"])), "NUL"),
        (with("context_files", json!(vec!["f"; 101])), "context_files"),
        (with("allowed_tools", json!(vec!["Bash"; 51])), "allowed_tools"),
        (with("permission_mode", json!("yolo")), "permission_mode"),
        (with("json_schema", deep), "exceeds maximum depth of 10"),
        (
            with("agents", json!({"a": "x".repeat(11_000)})),
            "exceeds maximum size of 10240",
        ),
        (ask("   \n ", false), "query cannot be empty"),
    ];
    for (body, needle) in cases {
        let (status, _, answer) = post(&proxy, &body).await;
        assert_eq!(status, 400, "{needle}: refused with 400: {answer}");
        assert!(
            message(&answer).contains(needle),
            "{needle}: the message says so: {answer}"
        );
    }
    assert!(rig.runs().is_empty(), "no process ran for a refused request");
}

#[tokio::test]
async fn a_missing_binary_is_a_503_cli_unavailable() {
    let rig = CliRig::new();
    let proxy = Proxy::start(&rig.yaml("", &rig.api_key("api-1", "")));
    std::fs::remove_file(&rig.binary).expect("remove the binary after start");
    let (status, kind, body) = post(&proxy, &ask("hello", false)).await;
    assert_eq!(status, 503, "the CLI cannot run: {body}");
    assert_eq!(kind.as_deref(), Some("cli_unavailable"), "named cli_unavailable");
    assert!(message(&body).contains("claude"), "says what is missing: {body}");
}

#[tokio::test]
async fn a_timeout_is_a_504_cli_timeout_and_ends_the_process() {
    let rig = CliRig::new();
    let timeouts = "    timeouts: { first_byte: 1s, total: 30s }\n";
    let proxy = Proxy::start(&rig.yaml(timeouts, &rig.api_key("api-1", "")));
    let (status, kind, body) = post(&proxy, &ask("[[sleep:30]] slow", false)).await;
    assert_eq!(status, 504, "a CLI that says nothing in time: {body}");
    assert_eq!(kind.as_deref(), Some("cli_timeout"), "named cli_timeout");
    let text = message(&body);
    assert!(
        !text.is_empty() && !text.contains("143"),
        "a timeout message, not an exit code: {body}"
    );
    let runs = rig.runs();
    assert_eq!(runs.len(), 1, "one run (one account, nothing to retry on)");
    assert!(
        gone(runs[0].pid, Duration::from_secs(5)).await,
        "the timed-out process is gone"
    );
}

#[tokio::test]
async fn a_client_that_leaves_or_an_idle_cli_ends_the_process_group() {
    let rig = CliRig::new();
    let timeouts = "    timeouts: { first_byte: 5s, idle: 1s, total: 30s }\n";
    let proxy = Proxy::start(&rig.yaml(timeouts, &rig.api_key("api-1", "")));
    for leave in [true, false] {
        let resp = client()
            .post(proxy.url("/code/v1/messages"))
            .json(&ask("[[mode:grandchild]]", true))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "the stream starts");
        let mut stream = resp.bytes_stream();
        let mut seen = String::new();
        while !seen.contains("grandchild:") {
            let chunk = stream.next().await.expect("more of the stream").expect("chunk");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let grandchild: i32 = seen
            .split("grandchild:")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
            .expect("the grandchild's pid");
        let runs = rig.wait_runs(if leave { 1 } else { 2 }).await;
        let pid = runs.last().expect("a run").pid;
        assert!(alive(pid) && alive(grandchild), "both run while the stream is open");
        if leave {
            drop(stream);
        } else {
            while stream.next().await.is_some() {} // the idle timeout ends it
        }
        let how = if leave { "the client left" } else { "the CLI went idle" };
        assert!(gone(pid, Duration::from_secs(5)).await, "{how}: the CLI is gone");
        assert!(
            gone(grandchild, Duration::from_secs(5)).await,
            "{how}: its group is gone"
        );
    }
}

#[tokio::test]
async fn shutdown_leaves_no_cli_process_behind() {
    let rig = CliRig::new();
    let proxy = Proxy::start(&rig.yaml("", &rig.api_key("api-1", "")));
    let url = proxy.url("/code/v1/messages");
    let pending = tokio::spawn(async move { client().post(url).json(&ask("[[sleep:60]] long", false)).send().await });
    let runs = rig.wait_runs(1).await;
    let pid = runs.first().expect("the process started").pid;
    assert!(alive(pid), "running before the shutdown");
    tokio::task::spawn_blocking(move || drop(proxy))
        .await
        .expect("stop the sidecar");
    assert!(
        gone(pid, Duration::from_secs(5)).await,
        "no CLI process survives the sidecar"
    );
    let _ = pending.await;
}

#[test]
fn check_verifies_the_binary_and_the_directories() {
    let rig = CliRig::new();
    let routes = "routes:\n  - { name: code, match: { path_prefix: /code }, pool: code }\npools:\n";
    let bad = format!(
        "{routes}  code:\n    provider: claude-cli\n    cli: {{ binary: /nonexistent/claude, cwd: relative/dir, allow_dirs: [work, \"{}\"] }}\n    accounts:\n      - {{ name: max-1, config_dir: /nonexistent/config }}\n      - {{ name: both, config_dir: \"{}\", key_env: SOME_KEY }}\n      - {{ name: url, base_url: \"https://x\", config_dir: \"{}\" }}\n",
        rig.work.display(),
        rig.config_dir("both").display(),
        rig.config_dir("url").display()
    );
    let problems = crate::harness::config_problems(&bad);
    for (path, what) in [
        ("pools.code.cli.binary", "not an executable file"),
        ("pools.code.cli.cwd", "absolute"),
        ("pools.code.cli.allow_dirs[0]", "absolute"),
        ("pools.code.accounts[0].config_dir", "not a directory"),
        ("pools.code.accounts[1]", "not both"),
        ("pools.code.accounts[2].base_url", "not base_url"),
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(path) && p.contains(what)),
            "{path}: {what}: {problems:?}"
        );
    }
    let good = format!("{routes}{}", rig.pool("", &rig.subscription("max-1", "")));
    assert!(
        crate::harness::load_config(&good).is_ok(),
        "a complete claude-cli pool loads"
    );
}
