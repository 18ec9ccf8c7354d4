//! Tests of building a CLI run: argv, environment, validation messages, prompt folding.

use serde_json::{json, Value};

use super::*;
use crate::secret::Secret;

fn conf() -> CliConf {
    CliConf {
        binary: PathBuf::from("/opt/claude/bin/claude"),
        cwd: PathBuf::from("/srv/work"),
        allow_dirs: vec![PathBuf::from("/srv/work"), PathBuf::from("/data/shared")],
        env: vec![("DISABLE_TELEMETRY".into(), "1".into())],
    }
}

fn base() -> BaseEnv {
    BaseEnv {
        path: "/usr/bin:/bin".into(),
        home: "/home/app".into(),
    }
}

fn config_dir() -> AccountMode {
    AccountMode::ConfigDir(PathBuf::from("/accounts/a1"))
}

fn new_session() -> SessionState {
    SessionState::New {
        id: "7de63955-34c0-419e-8c66-a64e4c5f2083".into(),
    }
}

fn simple() -> Value {
    json!({ "model": "claude-sonnet-4-6", "messages": [{ "role": "user", "content": "hi" }] })
}

fn run(body: &Value) -> Result<Invocation, Invalid> {
    build(body, &conf(), &config_dir(), &base(), &new_session())
}

fn refusal(body: &Value) -> String {
    match run(body) {
        Ok(inv) => panic!("expected a refusal, got {inv:?}"),
        Err(e) => e.message,
    }
}

fn with(field: &str, value: Value) -> Value {
    let mut body = simple();
    if let Some(obj) = body.as_object_mut() {
        obj.insert(field.to_string(), value);
    }
    body
}

/// The user message written on stdin.
fn stdin_message(inv: &Invocation) -> Value {
    let line: Value = serde_json::from_slice(&inv.stdin).unwrap_or(Value::Null);
    assert_eq!(line["type"], "user", "a stream-json user message: {line}");
    assert_eq!(line["message"]["role"], "user", "role user");
    assert!(inv.stdin.ends_with(b"\n"), "one line, newline-terminated");
    line["message"]["content"].clone()
}

fn prompt_text(inv: &Invocation) -> String {
    let content = stdin_message(inv);
    let texts: Vec<&str> = content
        .as_array()
        .map(|a| a.iter().filter_map(|b| b["text"].as_str()).collect())
        .unwrap_or_default();
    texts.join("|")
}

/// The argv of the request in `argv_of_a_full_request_for_a_config_dir_account`.
#[rustfmt::skip]
const FULL_ARGV: [&str; 41] = [
    "-p", "--output-format", "stream-json", "--verbose", "--input-format", "stream-json",
    "--include-partial-messages",
    "--model", "opus",
    "--fallback-model", "sonnet",
    "--system-prompt", "Be brief.\n\nBe kind.",
    "--append-system-prompt", "Also this.",
    "--allowedTools", "Read,Bash(git log:*)",
    "--disallowedTools", "WebFetch",
    "--add-dir", "/data/shared/docs",
    "--add-dir", "/srv/work/notes",
    "--permission-mode", "plan",
    "--max-turns", "3",
    "--max-budget-usd", "0.5",
    "--json-schema", "{\"type\":\"object\"}",
    "--agents", "{\"r\":{\"description\":\"d\",\"prompt\":\"p\\nq\"}}",
    "--mcp-config", "{\"mcpServers\":{}}",
    "--mcp-config", "{\"mcpServers\":{\"x\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:1\"}}}",
    "--betas", "context-1m-2025-08-07",
    "--session-id", "7de63955-34c0-419e-8c66-a64e4c5f2083",
];

#[test]
fn argv_of_a_full_request_for_a_config_dir_account() {
    let body = json!({
        "model": "opus", "stream": true, "system": [{ "type": "text", "text": "Be brief." }, { "type": "text", "text": "Be kind." }],
        "messages": [{ "role": "user", "content": "hi" }],
        "fallback_model": "sonnet", "append_system_prompt": "Also this.",
        "allowed_tools": ["Read", "Bash(git log:*)"], "disallowed_tools": ["WebFetch"],
        "add_dirs": ["/data/shared/docs", "notes"], "permission_mode": "plan", "max_turns": 3,
        "max_budget_usd": 0.5, "json_schema": { "type": "object" }, "agents": { "r": { "description": "d", "prompt": "p\nq" } },
        "mcp_config": [{ "mcpServers": {} }, "{\"mcpServers\":{\"x\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:1\"}}}"],
        "betas": ["context-1m-2025-08-07"], "session_id": "client-conv-1",
    });
    let inv = run(&body).unwrap_or_else(|e| panic!("valid request refused: {e}"));
    assert_eq!(inv.args, FULL_ARGV, "argv in order");
    assert_eq!(
        inv.program,
        PathBuf::from("/opt/claude/bin/claude"),
        "the configured binary"
    );
    assert_eq!(inv.cwd, PathBuf::from("/srv/work"), "default cwd");
    assert!(inv.stream, "stream requested");
    let env: Vec<(&str, &str)> = inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let want_env = [
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/home/app"),
        ("CLAUDE_CONFIG_DIR", "/accounts/a1"),
        ("DISABLE_TELEMETRY", "1"),
    ];
    assert_eq!(env, want_env, "only the allowed variables");
}

#[test]
fn a_key_account_gets_only_its_key_and_nothing_prints_it() {
    let key = AccountMode::ApiKey(Secret::new("sk-ant-secret-value"));
    let body =
        json!({ "messages": [{ "role": "user", "content": "tell nobody the prompt" }], "system": "- sys-secret" });
    let inv = build(&body, &conf(), &key, &base(), &SessionState::None).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = inv.env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["PATH", "HOME", "ANTHROPIC_API_KEY", "DISABLE_TELEMETRY"],
        "key mode variables"
    );
    assert!(
        inv.env
            .contains(&("ANTHROPIC_API_KEY".into(), "sk-ant-secret-value".into())),
        "the key is passed"
    );
    assert!(
        !inv.args.iter().any(|a| a == "--model"),
        "no model flag without a model"
    );
    assert_eq!(
        inv.args.last().map(String::as_str),
        Some("--no-session-persistence"),
        "no session kept"
    );
    assert!(
        !inv.args.contains(&"--include-partial-messages".to_string()),
        "no partials without stream"
    );
    let shown = format!("{inv:?}");
    for secret in ["sk-ant-secret-value", "tell nobody", "sys-secret"] {
        assert!(!shown.contains(secret), "Debug must not show {secret}: {shown}");
    }
}

#[test]
fn operator_env_overrides_and_is_never_duplicated() {
    let mut c = conf();
    c.env = vec![("HOME".into(), "/other".into()), ("TZ".into(), "UTC".into())];
    let inv = build(&simple(), &c, &config_dir(), &base(), &new_session()).unwrap_or_else(|e| panic!("{e}"));
    let homes: Vec<&str> = inv
        .env
        .iter()
        .filter(|(k, _)| k == "HOME")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(homes, ["/other"], "one HOME, the operator's");
    assert!(
        inv.env.iter().any(|(k, v)| k == "TZ" && v == "UTC"),
        "operator variable added"
    );
}

#[test]
fn session_flags() {
    let resume = SessionState::Resume { id: "abc".into() };
    let inv = build(&simple(), &conf(), &config_dir(), &base(), &resume).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        inv.args.ends_with(&["--resume".to_string(), "abc".to_string()]),
        "resume flag: {:?}",
        inv.args
    );
    assert!(!inv.args.iter().any(|a| a == "--session-id"), "no new id when resuming");
}

#[test]
fn relative_paths_resolve_against_the_configured_cwd() {
    let body = json!({
        "messages": [{ "role": "user", "content": "q" }], "working_directory": "./proj/sub",
        "add_dirs": ["lib"], "context_files": ["proj/README.md", "/data/shared/spec.txt"],
    });
    let inv = run(&body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        inv.cwd,
        PathBuf::from("/srv/work/proj/sub"),
        "relative to cli.cwd, '.' dropped"
    );
    assert!(
        inv.args.windows(2).any(|w| w == ["--add-dir", "/srv/work/lib"]),
        "add dir resolved: {:?}",
        inv.args
    );
    let text = prompt_text(&inv);
    assert_eq!(
        text, "q\n\nContext files: @\"/srv/work/proj/README.md\" @\"/data/shared/spec.txt\"",
        "context files are @ mentions after the query"
    );
    let checked: Vec<&str> = inv.paths.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        checked,
        [
            "working_directory",
            "add_dirs[0]",
            "context_files[0]",
            "context_files[1]"
        ],
        "paths to check"
    );
}

#[tokio::test]
async fn filesystem_checks_resolve_symlinks_and_need_a_directory() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let outside = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let allowed = root.path().join("allowed");
    std::fs::create_dir_all(allowed.join("proj")).unwrap_or_else(|e| panic!("mkdir: {e}"));
    std::fs::write(allowed.join("file.txt"), "x").unwrap_or_else(|e| panic!("write: {e}"));
    std::os::unix::fs::symlink(outside.path(), allowed.join("escape")).unwrap_or_else(|e| panic!("symlink: {e}"));
    let c = CliConf {
        cwd: allowed.clone(),
        allow_dirs: vec![allowed.clone()],
        ..conf()
    };
    let check = |wd: &str| {
        let body = with("working_directory", json!(wd));
        let c = c.clone();
        async move {
            let inv = build(&body, &c, &config_dir(), &base(), &new_session()).map_err(|e| e.message)?;
            check_filesystem(&inv, &c).await.map_err(|e| e.message)
        }
    };
    assert_eq!(check("proj").await, Ok(()), "an existing directory inside");
    assert_eq!(
        check("missing").await,
        Err("working_directory: does not exist".into()),
        "missing"
    );
    assert_eq!(
        check("file.txt").await,
        Err("working_directory: is not a directory".into()),
        "a file"
    );
    assert_eq!(
        check("escape").await,
        Err("working_directory: outside the allowed directories".into()),
        "a symlink out of the allowed directory"
    );
}

#[path = "invocation_rules_tests.rs"]
mod rules;
