//! Tests of running the CLI, against the fake `claude` of tests/fixtures/claude-cli.

use std::path::{Path, PathBuf};
use std::time::{Instant as StdInstant, SystemTime};

use serde_json::{json, Value};
use tokio::time::sleep;

use super::*;
use crate::claude_cli::events::{Outcome, Translator};
use crate::claude_cli::invocation::{build, AccountMode, BaseEnv, CliConf, SessionState};

const FAKE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/claude-cli/fake-claude");

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for sub in ["work", "record", "cfg", "home"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap_or_else(|e| panic!("mkdir {sub}: {e}"));
        }
        Setup { dir }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    fn conf(&self, binary: &Path) -> CliConf {
        CliConf {
            binary: binary.to_path_buf(),
            cwd: self.path("work"),
            allow_dirs: vec![self.path("work")],
            env: vec![(
                "FAKE_CLAUDE_RECORD".into(),
                self.path("record").to_string_lossy().into_owned(),
            )],
        }
    }

    fn invocation(&self, prompt: &str, stream: bool, session: &SessionState) -> Invocation {
        let body = json!({ "model": "claude-opus-4-8", "stream": stream, "messages": [{ "role": "user", "content": prompt }] });
        let account = AccountMode::ConfigDir(self.path("cfg"));
        let base = BaseEnv {
            path: "/usr/bin:/bin".into(),
            home: self.path("home").to_string_lossy().into_owned(),
        };
        build(&body, &self.conf(Path::new(FAKE)), &account, &base, session).unwrap_or_else(|e| panic!("build: {e}"))
    }

    fn records(&self) -> Vec<Value> {
        let entries = std::fs::read_dir(self.path("record")).unwrap_or_else(|e| panic!("record dir: {e}"));
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                serde_json::from_str(&text).unwrap_or(Value::Null)
            })
            .collect()
    }
}

fn spawn(inv: &Invocation) -> CliProcess {
    CliProcess::spawn(inv, Options::default()).unwrap_or_else(|e| panic!("spawn: {e}"))
}

/// Read a run to its end through a translator.
async fn run_through(p: &mut CliProcess, stream: bool) -> (Vec<u8>, Exit, crate::claude_cli::events::Finished) {
    let mut t = Translator::new(stream, None);
    let mut out = Vec::new();
    while let Some(line) = p.next_line().await.unwrap_or_else(|e| panic!("read: {e}")) {
        t.line(&line, &mut out);
    }
    let exit = p.wait().await.unwrap_or_else(|e| panic!("wait: {e}"));
    let fin = t.finish(&exit, SystemTime::now());
    out.extend_from_slice(&fin.tail);
    (out, exit, fin)
}

fn gone(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// The pid in a `<tag>:<pid>` line of the run's text, reading until it comes.
async fn pid_in_output(p: &mut CliProcess, tag: &str) -> i32 {
    while let Some(line) = p.next_line().await.unwrap_or_else(|e| panic!("read: {e}")) {
        let text = String::from_utf8_lossy(&line);
        if let Some(rest) = text.split(&format!("{tag}:")).nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            return digits.parse().unwrap_or_else(|e| panic!("pid in {text}: {e}"));
        }
    }
    panic!("no {tag} pid in the output")
}

#[tokio::test]
async fn a_run_streams_its_events_and_sees_only_its_argv_env_cwd_and_stdin() {
    let s = Setup::new();
    let inv = s.invocation("hello [[mode:tool]]", true, &SessionState::None);
    let mut p = spawn(&inv);
    let (out, exit, fin) = run_through(&mut p, true).await;
    assert!(exit.success(), "exit 0: {exit:?}");
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("\"text\":\"Tool \"") && text.contains("sidecar-tool-ok"),
        "token deltas: {text}"
    );
    assert!(!text.contains("tool_use"), "no tool block");
    assert!(
        matches!(fin.outcome, Outcome::Success(ref r) if r.num_turns == 2),
        "two turns: {:?}",
        fin.outcome
    );
    let records = s.records();
    assert_eq!(records.len(), 1, "one run recorded");
    let rec = &records[0];
    assert_eq!(rec["argv"], json!(inv.args), "argv as built");
    assert_eq!(rec["cwd"], json!(s.path("work")), "cwd");
    assert_eq!(
        rec["stdin"].as_str().map(str::as_bytes),
        Some(&inv.stdin[..]),
        "stdin as built"
    );
    let mut names: Vec<&str> = rec["env"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    names.sort_unstable();
    assert_eq!(
        names,
        ["CLAUDE_CONFIG_DIR", "FAKE_CLAUDE_RECORD", "HOME", "PATH"],
        "nothing inherited"
    );
}

#[tokio::test]
async fn sessions_start_resume_and_unknown_ids_fail_like_the_cli() {
    let s = Setup::new();
    let id = crate::claude_cli::sessions::new_uuid();
    let mut p = spawn(&s.invocation("first", false, &SessionState::New { id: id.clone() }));
    let (_, exit, fin) = run_through(&mut p, false).await;
    assert!(exit.success(), "new session runs: {exit:?}");
    assert_eq!(
        fin.outcome.report().and_then(|r| r.session_id.clone()),
        Some(id.clone()),
        "the id we chose"
    );
    let mut p = spawn(&s.invocation("second", false, &SessionState::Resume { id: id.clone() }));
    let (_, exit, _) = run_through(&mut p, false).await;
    assert!(exit.success(), "resume works in the same cwd and config dir: {exit:?}");
    let unknown = crate::claude_cli::sessions::new_uuid();
    let mut p = spawn(&s.invocation("third", false, &SessionState::Resume { id: unknown.clone() }));
    let (_, exit, fin) = run_through(&mut p, false).await;
    assert_eq!(exit.code, Some(1), "exit 1");
    assert!(exit.session_missing(), "recognised: {exit:?}");
    assert_eq!(
        exit.stderr,
        format!("No conversation found with session ID: {unknown}"),
        "sanitized stderr"
    );
    assert!(
        matches!(fin.outcome, Outcome::Failed { status: 502, .. }),
        "a failure: {:?}",
        fin.outcome
    );
}

#[tokio::test]
async fn stop_kills_the_whole_group_grandchild_included() {
    become_subreaper().unwrap_or_else(|e| panic!("subreaper: {e}"));
    let s = Setup::new();
    let mut p = spawn(&s.invocation("[[mode:grandchild]]", false, &SessionState::None));
    let leader = p.id().and_then(|id| i32::try_from(id).ok()).unwrap_or(0);
    let grandchild = pid_in_output(&mut p, "grandchild").await;
    assert!(!gone(grandchild), "the grandchild runs before stop");
    p.stop(Duration::from_millis(500)).await;
    assert!(gone(grandchild), "grandchild {grandchild} gone after stop");
    assert!(gone(leader), "leader {leader} gone after stop");
    let exit = p.wait().await.unwrap_or_else(|e| panic!("wait: {e}"));
    assert_eq!(exit.signal, Some(libc::SIGTERM), "ended by SIGTERM: {exit:?}");
}

#[tokio::test]
async fn sigkill_follows_when_sigterm_is_ignored() {
    become_subreaper().unwrap_or_else(|e| panic!("subreaper: {e}"));
    let s = Setup::new();
    let mut p = spawn(&s.invocation("[[mode:grandchild]] [[ignore-term]]", false, &SessionState::None));
    let grandchild = pid_in_output(&mut p, "grandchild").await;
    let began = StdInstant::now();
    p.stop(Duration::from_millis(300)).await;
    assert!(began.elapsed() >= Duration::from_millis(300), "waited the grace period");
    assert!(gone(grandchild), "grandchild gone");
    let exit = p.wait().await.unwrap_or_else(|e| panic!("wait: {e}"));
    assert_eq!(exit.signal, Some(libc::SIGKILL), "killed: {exit:?}");
}

#[tokio::test]
async fn a_leftover_holding_stdout_does_not_keep_the_run_open() {
    become_subreaper().unwrap_or_else(|e| panic!("subreaper: {e}"));
    let s = Setup::new();
    let mut p = spawn(&s.invocation("[[mode:orphan]]", false, &SessionState::None));
    let orphan = pid_in_output(&mut p, "orphan").await;
    let rest = timeout(Duration::from_secs(10), async {
        while p.next_line().await.ok().flatten().is_some() {}
        p.wait().await
    })
    .await;
    let exit = rest
        .unwrap_or_else(|_| panic!("stdout must end once the CLI exits"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(exit.success(), "the CLI itself exited 0: {exit:?}");
    let deadline = StdInstant::now() + Duration::from_secs(5);
    while !gone(orphan) && StdInstant::now() < deadline {
        sleep(Duration::from_millis(20)).await;
    }
    assert!(gone(orphan), "the leftover {orphan} was stopped");
}

#[tokio::test]
async fn dropping_a_run_stops_it() {
    let s = Setup::new();
    let p = spawn(&s.invocation("[[sleep:30]]", false, &SessionState::None));
    let pid = p.id().and_then(|id| i32::try_from(id).ok()).unwrap_or(0);
    drop(p);
    let deadline = StdInstant::now() + Duration::from_secs(5);
    while !gone(pid) && StdInstant::now() < deadline {
        sleep(Duration::from_millis(20)).await;
    }
    assert!(gone(pid), "run {pid} stopped and reaped after drop");
}

#[tokio::test]
async fn a_missing_or_non_executable_binary_is_unavailable() {
    let s = Setup::new();
    let readme = PathBuf::from(FAKE).with_file_name("README.md");
    for binary in [s.path("no-such-claude"), readme] {
        let mut inv = s.invocation("hi", false, &SessionState::None);
        inv.program = binary.clone();
        match CliProcess::spawn(&inv, Options::default()) {
            Err(ProcessError::Unavailable { message }) => {
                assert!(
                    message.contains(&binary.display().to_string()),
                    "names the binary: {message}"
                )
            }
            Err(other) => panic!("{}: expected Unavailable, got {other:?}", binary.display()),
            Ok(_) => panic!("{}: must not start", binary.display()),
        }
    }
}

#[tokio::test]
async fn a_crash_is_exited_with_sanitized_stderr() {
    let s = Setup::new();
    let mut p = spawn(&s.invocation("[[mode:crash]]", false, &SessionState::None));
    let (out, exit, _) = run_through(&mut p, false).await;
    assert!(out.is_empty(), "nothing on stdout");
    match exit.error() {
        Some(ProcessError::Exited { code, signal, stderr }) => {
            assert_eq!((code, signal), (Some(1), None), "exit 1");
            assert!(
                stderr.starts_with("fatal: the fake broke[31m on purpose x"),
                "control chars removed: {stderr:?}"
            );
            assert!(stderr.len() <= 500, "cut to 500 bytes: {}", stderr.len());
            assert!(!stderr.chars().any(char::is_control), "no control character");
        }
        other => panic!("expected Exited, got {other:?}"),
    }
}

#[tokio::test]
async fn an_over_long_line_is_refused_and_the_run_stopped() {
    let s = Setup::new();
    let opts = Options {
        max_line: 1 << 20,
        grace: Duration::from_millis(500),
    };
    let mut p = CliProcess::spawn(&s.invocation("[[mode:longline]]", false, &SessionState::None), opts)
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let err = loop {
        match p.next_line().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the 6 MiB line must be refused"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        err,
        ProcessError::LineTooLong { limit: 1 << 20 },
        "refused at the limit"
    );
    let peak = p.peak_buffer();
    assert!(
        peak <= (1 << 20) + READ_CHUNK,
        "buffer {peak} bounded by the limit plus one read"
    );
    assert!(peak >= 1 << 20, "the buffer did reach the limit: {peak}");
    let exit = p.wait().await.unwrap_or_else(|e| panic!("wait: {e}"));
    assert!(!exit.success(), "stopped, not finished: {exit:?}");
}
