//! The binary as an operator runs it: `check`, `run` refusing a bad file or a busy port,
//! SIGTERM draining in-flight requests then exiting 0, SIGINT stopping at once, its logs, and its
//! memory when an upstream sends one endless SSE event.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

fn write_config(dir: &tempfile::TempDir, body: &str) -> std::path::PathBuf {
    let path = dir.path().join("sidecar.yaml");
    std::fs::write(&path, body).expect("write config");
    path
}

fn good_config(upstream: &str, port: u16, admin: u16, grace: &str) -> String {
    format!(
        "listen: \"127.0.0.1:{port}\"\nadmin: {{ listen: \"127.0.0.1:{admin}\" }}\nserver: {{ shutdown_grace: {grace} }}\n\
         routes:\n  - {{ name: a, match: {{ path_prefix: /anthropic }}, pool: claude }}\n\
         pools:\n  claude:\n    provider: anthropic\n    accounts:\n      - {{ name: team-a, base_url: \"{upstream}\", key_env: LLMS_PROC_KEY }}\n"
    )
}

fn spawn_run(config: &std::path::Path, json_logs: bool) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config"])
        .arg(config)
        .env("LLMS_PROC_KEY", "sk-proc-SECRET-123");
    if json_logs {
        cmd.env("LOG_FORMAT", "json");
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn llm-sidecar")
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success(), "kill {sig}");
}

fn wait_exit(child: &mut Child, limit: Duration) -> (Option<i32>, Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return (status.code(), start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    (None, start.elapsed())
}

fn output(child: &mut Child) -> String {
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut out);
    }
    out
}

#[test]
fn check_lists_every_problem_with_its_path_and_exits_1() {
    let dir = tempfile::tempdir().expect("dir");
    let path = write_config(
        &dir,
        "routes:\n  - { name: a, pool: nope }\npools:\n  claude:\n    provider: anthropic\n    accounts:\n      - { name: a, base_url: \"https://api.anthropic.com\", key_env: ANTHROPIC_KEY_A_UNSET }\n",
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run check");
    assert_eq!(out.status.code(), Some(1), "invalid config exits 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pools.claude.accounts[0].key_env: ANTHROPIC_KEY_A_UNSET is not set"),
        "the unset key variable is named with its path: {err}"
    );
    assert!(
        err.contains("routes[0].pool: no pool named \"nope\""),
        "the unknown pool is named with its path: {err}"
    );
    assert!(err.contains("2 problems"), "the problems are counted: {err}");

    let run = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(1), "run refuses an invalid file");
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("ANTHROPIC_KEY_A_UNSET is not set"),
        "run lists the same problems as check: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn check_prints_a_summary_and_honours_the_env_var() {
    let dir = tempfile::tempdir().expect("dir");
    let path = write_config(&dir, &good_config("https://api.anthropic.com", 8080, 9901, "10s"));
    let out = Command::new(BIN)
        .arg("check")
        .env("LLM_SIDECAR_CONFIG", &path)
        .env("LLMS_PROC_KEY", "k")
        .output()
        .expect("check");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a valid config found through LLM_SIDECAR_CONFIG exits 0: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    assert!(
        stdout.contains("1 routes, 1 pools, 1 accounts"),
        "the summary counts routes, pools and accounts: {stdout}"
    );
}

#[test]
fn a_busy_listen_address_is_a_clear_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("dir");
    let path = write_config(&dir, &good_config("http://127.0.0.1:9", port, free_port(), "10s"));
    let mut child = spawn_run(&path, false);
    let (code, took) = wait_exit(&mut child, Duration::from_secs(10));
    let out = output(&mut child);
    assert_eq!(code, Some(1), "non-zero exit: {out}");
    assert!(
        took < Duration::from_secs(3),
        "fails fast, not after Pingora's 30 retries: {took:?}"
    );
    assert!(
        out.contains(&format!("cannot listen on 127.0.0.1:{port}")) && out.contains("in use"),
        "the error names the address and says it is in use: {out}"
    );
}

fn start_with_slow_upstream(
    rt: &tokio::runtime::Runtime,
    delay: Duration,
    grace: &str,
    json_logs: bool,
) -> (Child, u16, Fake, tempfile::TempDir) {
    let up = rt.block_on(Fake::always(Reply::Delay(
        delay,
        Box::new(Reply::Json(200, anthropic_reply())),
    )));
    let (port, admin) = (free_port(), free_port());
    let dir = tempfile::tempdir().expect("dir");
    let path = write_config(&dir, &good_config(&up.url(), port, admin, grace));
    let child = spawn_run(&path, json_logs);
    wait_listening(format!("127.0.0.1:{port}").parse().expect("addr"));
    (child, port, up, dir)
}

fn post_in_background(port: u16) -> std::thread::JoinHandle<Result<u16, String>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        rt.block_on(async {
            let resp = client()
                .post(format!("http://127.0.0.1:{port}/anthropic/v1/messages"))
                .header("x-api-key", "placeholder")
                .body("{\"model\":\"claude-sonnet-5\"}")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            Ok(resp.status().as_u16())
        })
    })
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_0() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (mut child, port, up, _dir) = start_with_slow_upstream(&rt, Duration::from_millis(800), "10s", true);
    let pending = post_in_background(port);
    while up.count() == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, "-TERM");
    let (code, took) = wait_exit(&mut child, Duration::from_secs(8));
    assert_eq!(
        pending.join().expect("thread"),
        Ok(200),
        "the in-flight request completed"
    );
    assert_eq!(code, Some(0), "exit 0 after draining");
    assert!(
        took < Duration::from_secs(3),
        "exits when drained, not after the 10 s grace: {took:?}"
    );
    let out = output(&mut child);
    assert!(
        !out.contains("sk-proc-SECRET-123"),
        "the key never appears in any log line"
    );
    let access: Vec<serde_json::Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "llm_sidecar::access")
        .collect();
    assert_eq!(access.len(), 1, "one JSON access line per request: {out}");
    let f = &access[0]["fields"];
    for key in [
        "request_id",
        "route",
        "pool",
        "account",
        "method",
        "path",
        "status",
        "duration_ms",
        "ttfb_ms",
    ] {
        assert!(!f[key].is_null(), "access line has {key}: {f}");
    }
    assert_eq!(f["status"], 200, "the access line has the status: {f}");
    assert_eq!(f["account"], "team-a", "the access line names the account: {f}");
}

#[test]
fn sigterm_with_nothing_in_flight_exits_promptly() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (mut child, _port, _up, _dir) = start_with_slow_upstream(&rt, Duration::ZERO, "10s", false);
    signal(&child, "-TERM");
    let (code, took) = wait_exit(&mut child, Duration::from_secs(8));
    assert_eq!(code, Some(0), "SIGTERM with nothing in flight exits 0");
    assert!(took < Duration::from_secs(2), "no pointless grace wait: {took:?}");
}

#[test]
fn sigint_stops_at_once_even_with_a_request_in_flight() {
    let rt = tokio::runtime::Runtime::new().expect("rt");
    let (mut child, port, up, _dir) = start_with_slow_upstream(&rt, Duration::from_secs(5), "10s", false);
    let pending = post_in_background(port);
    while up.count() == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, "-INT");
    let (code, took) = wait_exit(&mut child, Duration::from_secs(4));
    assert!(code.is_some(), "the process ended within 4 s of SIGINT");
    assert!(took < Duration::from_secs(1), "SIGINT does not wait: {took:?}");
    assert!(
        pending.join().expect("thread").is_err(),
        "the in-flight request was cut"
    );
}

/// Peak resident memory of a process, from /proc (kB).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_unterminated_event_stays_within_the_manifests_memory_limit() {
    const MIB: usize = 1 << 20;
    let up = Fake::always(Reply::Repeat {
        head: "event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":5}}}\n\ndata: ".into(),
        chunk: bytes::Bytes::from(vec![b'x'; MIB]),
        times: 200,
        tail: String::new(),
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let (port, admin) = (free_port(), free_port());
    let path = dir.path().join("sidecar.yaml");
    let yaml = format!(
        "listen: \"127.0.0.1:{port}\"\nadmin: {{ listen: \"127.0.0.1:{admin}\" }}\n\
         routes:\n  - {{ name: a, match: {{ path_prefix: /a }}, pool: a }}\n\
         pools:\n  a:\n    provider: anthropic\n    accounts:\n      - {{ name: x, base_url: \"{}\", key_env: LLMS_MEM_KEY }}\n",
        up.url()
    );
    std::fs::write(&path, yaml).expect("config");
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .env("LLMS_MEM_KEY", "k")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    wait_listening(addr);
    let resp = client()
        .post(format!("http://{addr}/a/v1/messages"))
        .body("{\"stream\":true}")
        .send()
        .await
        .expect("send");
    let mut stream = resp.bytes_stream();
    let mut got = 0usize;
    use futures_util::StreamExt;
    while let Some(Ok(c)) = stream.next().await {
        got += c.len();
    }
    let peak_mib = peak_rss_kb(child.id()) / 1024;
    let _ = child.kill();
    let _ = child.wait();
    assert!(got > 200 * MIB, "the whole event passed through: {got} bytes");
    assert!(
        peak_mib < 128,
        "peak RSS {peak_mib} MiB with a 200 MB event (limit 128 MiB)"
    );
    println!("peak RSS with a 200 MB unterminated event: {peak_mib} MiB");
}
