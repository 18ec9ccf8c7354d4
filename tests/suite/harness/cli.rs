//! claude-cli set-ups: a pool running the fake `claude` (tests/fixtures/claude-cli/fake-claude) in
//! a temporary working directory, the runs it recorded (argv, environment, cwd, stdin, pid), and
//! process checks by pid.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::secret_file;

/// The fake CLI, as an executable `claude` in `dir` whose first line names the Python interpreter
/// itself (a version manager's shim on PATH would add its own variables to the recorded
/// environment).
pub fn fake_claude(dir: &Path) -> String {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let python = PYTHON.get_or_init(|| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs");
        String::from_utf8(out.stdout).expect("utf-8").trim().to_string()
    });
    let source = format!("{}/tests/fixtures/claude-cli/fake-claude", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&source).expect("read fake-claude");
    let body = text.split_once('\n').map_or("", |(_, rest)| rest);
    let path = dir.join("claude");
    std::fs::write(&path, format!("#!{python}\n{body}")).expect("write fake claude");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

/// A temporary tree for one claude-cli pool: `work/` (its cwd and allowed directory), `record/`
/// (the fake's records) and one config directory per subscription account.
pub struct CliRig {
    dir: tempfile::TempDir,
    pub work: PathBuf,
    pub record: PathBuf,
    pub binary: String,
}

/// One run of the fake CLI, as it recorded it.
#[derive(Debug, Clone)]
pub struct Run {
    pub pid: i32,
    pub argv: Vec<String>,
    pub env: serde_json::Map<String, Value>,
    pub cwd: String,
    pub stdin: String,
}

impl Run {
    /// The value after `flag` in argv.
    pub fn flag(&self, flag: &str) -> Option<&str> {
        let i = self.argv.iter().position(|a| a == flag)?;
        self.argv.get(i + 1).map(String::as_str)
    }
    pub fn has(&self, flag: &str) -> bool {
        self.argv.iter().any(|a| a == flag)
    }
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).and_then(Value::as_str)
    }
}

impl CliRig {
    pub fn new() -> CliRig {
        super::env::init();
        let dir = tempfile::Builder::new()
            .prefix("llm-sidecar-cli-")
            .tempdir()
            .expect("temp dir");
        let (work, record, bin) = (
            dir.path().join("work"),
            dir.path().join("record"),
            dir.path().join("bin"),
        );
        for d in [&work, &record, &bin] {
            std::fs::create_dir(d).expect("create dir");
        }
        let binary = fake_claude(&bin);
        CliRig {
            dir,
            work,
            record,
            binary,
        }
    }

    /// A config directory for a subscription account named `name` (created once).
    pub fn config_dir(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(format!("config-{name}"));
        std::fs::create_dir_all(&d).expect("config dir");
        d
    }

    /// An account line for a subscription account (`extra` inside its mapping, e.g.
    /// `, max_concurrent: 1`).
    pub fn subscription(&self, name: &str, extra: &str) -> String {
        let dir = self.config_dir(name);
        format!("      - {{ name: {name}, config_dir: \"{}\"{extra} }}\n", dir.display())
    }

    /// An account line for an API-key account (its key: `REAL-CLI-KEY-{name}`).
    pub fn api_key(&self, name: &str, extra: &str) -> String {
        let key = secret_file(&format!("cli-{name}.key"), &format!("REAL-CLI-KEY-{name}"));
        format!("      - {{ name: {name}, key_file: \"{key}\"{extra} }}\n")
    }

    /// The pool `code` (provider claude-cli) with `accounts` (lines from [`CliRig::subscription`]
    /// and [`CliRig::api_key`]), `extra` lines in its mapping (e.g. timeouts).
    pub fn pool(&self, extra: &str, accounts: &str) -> String {
        format!(
            "  code:\n    provider: claude-cli\n    cli: {{ binary: \"{}\", cwd: \"{}\", allow_dirs: [\"{}\"], \
             env: {{ FAKE_CLAUDE_RECORD: \"{}\", DISABLE_TELEMETRY: \"1\" }} }}\n{extra}    accounts:\n{accounts}",
            self.binary,
            self.work.display(),
            self.work.display(),
            self.record.display()
        )
    }

    /// Routes `/code` (Anthropic Messages to the pool) and the OpenAI door at `/v1` with the model
    /// `claude-code` (the pool's `sonnet`), then `models` lines, then the pools.
    pub fn yaml(&self, extra: &str, accounts: &str) -> String {
        format!(
            "routes:\n  - {{ name: code, match: {{ path_prefix: /code }}, strip_prefix: true, pool: code }}\n  \
             - {{ name: unified, match: {{ path_prefix: /v1 }}, api: openai }}\n\
             models:\n  - {{ name: claude-code, targets: [ {{ pool: code, model: sonnet }} ] }}\n\
             pools:\n{}",
            self.pool(extra, accounts)
        )
    }

    /// Let every run held by a `[[hold]]` marker answer.
    pub fn release(&self) {
        std::fs::write(self.record.join("release"), "").expect("write release");
    }

    /// Every recorded run, oldest first.
    pub fn runs(&self) -> Vec<Run> {
        let mut files: Vec<(u128, PathBuf)> = std::fs::read_dir(&self.record)
            .expect("record dir")
            .filter_map(|e| {
                let path = e.ok()?.path();
                let name = path.file_name()?.to_str()?.to_string();
                let ns = name.strip_suffix(".json")?.rsplit('-').next()?.parse().ok()?;
                Some((ns, path))
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| read_run(&p)).collect()
    }

    /// Wait (up to 10 s, else fail) until at least `n` runs are recorded.
    pub async fn wait_runs(&self, n: usize) -> Vec<Run> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let runs = self.runs();
            if runs.len() >= n {
                return runs;
            }
            assert!(
                Instant::now() < deadline,
                "{n} CLI runs within 10 s, got {}",
                runs.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn read_run(path: &Path) -> Run {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let pid = name
        .split('-')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("pid in the record's name");
    let doc: Value = serde_json::from_slice(&std::fs::read(path).expect("read record")).expect("record JSON");
    Run {
        pid,
        argv: doc["argv"]
            .as_array()
            .expect("argv")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect(),
        env: doc["env"].as_object().cloned().unwrap_or_default(),
        cwd: doc["cwd"].as_str().unwrap_or_default().to_string(),
        stdin: doc["stdin"].as_str().unwrap_or_default().to_string(),
    }
}

/// Whether `pid` is a live process (a zombie is dead).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Wait up to `within` for `pid` to be gone; true when it is.
pub async fn gone(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    !alive(pid)
}

/// A Messages request body with one user turn `text`.
pub fn ask(text: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": "sonnet",
        "max_tokens": 100,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    })
}
