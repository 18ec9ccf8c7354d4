//! From an Anthropic Messages request to one `claude -p` run: the argv (never a shell), the
//! environment (built from nothing), the working directory and the stream-json written on stdin.
//! Every client-supplied field is checked here; a refusal is an [`Invalid`] (a 400).

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::fields::{self, Invalid};
use super::prompt;

pub use super::conf::{AccountMode, BaseEnv, CliConf, SessionState};

/// One run of the CLI. `Debug` shows no environment value, no prompt and no flag value.
pub struct Invocation {
    /// The executable ([`CliConf::binary`]).
    pub program: PathBuf,
    /// The arguments, flags and their values, without the program.
    pub args: Vec<String>,
    /// The whole environment of the child (it inherits nothing).
    pub env: Vec<(String, String)>,
    /// The directory the run starts in.
    pub cwd: PathBuf,
    /// The stream-json user message(s) written to the child's stdin.
    pub stdin: Vec<u8>,
    /// The client asked for SSE.
    pub stream: bool,
    /// The model the client named, if any.
    pub model: Option<String>,
    /// Client-named paths, checked on the filesystem by [`check_filesystem`].
    pub paths: Vec<(String, PathBuf)>,
}

impl fmt::Debug for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags: Vec<&str> = self
            .args
            .iter()
            .map(String::as_str)
            .filter(|a| FLAGS.contains(a))
            .collect();
        let env: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Invocation")
            .field("program", &self.program)
            .field("flags", &flags)
            .field("env", &env)
            .field("cwd", &self.cwd)
            .field("stdin_bytes", &self.stdin.len())
            .finish()
    }
}

/// The flags a run may have: `Debug` shows these and no argument value.
const FLAGS: [&str; 22] = [
    "-p",
    "--output-format",
    "--verbose",
    "--input-format",
    "--include-partial-messages",
    "--model",
    "--fallback-model",
    "--system-prompt",
    "--append-system-prompt",
    "--allowedTools",
    "--disallowedTools",
    "--add-dir",
    "--permission-mode",
    "--max-turns",
    "--max-budget-usd",
    "--json-schema",
    "--agents",
    "--mcp-config",
    "--betas",
    "--session-id",
    "--resume",
    "--no-session-persistence",
];

const PERMISSION_MODES: [&str; 5] = ["default", "plan", "acceptEdits", "bypassPermissions", "dontAsk"];

/// Build the run for `body` (an Anthropic Messages request with the claude-cli extra fields).
pub fn build(
    body: &Value,
    conf: &CliConf,
    account: &AccountMode,
    base: &BaseEnv,
    session: &SessionState,
) -> Result<Invocation, Invalid> {
    if !body.is_object() {
        return Err(Invalid::new("body: must be a JSON object"));
    }
    let stream = fields::opt_bool(body, "stream")?.unwrap_or(false);
    let model = fields::opt_name(body, "model")?;
    let cwd = working_dir(body, conf)?;
    let mut paths = Vec::new();
    if body.get("working_directory").is_some() {
        paths.push(("working_directory".to_string(), cwd.clone()));
    }
    let mut args = base_args(stream);
    flags(body, conf, model.as_deref(), &mut args, &mut paths)?;
    session_args(session, &mut args);
    let context = context_mentions(body, conf, &mut paths)?;
    let stdin = prompt::stdin(body.get("messages"), session, &context)?;
    Ok(Invocation {
        program: conf.binary.clone(),
        args,
        env: environment(conf, account, base),
        cwd,
        stdin,
        stream,
        model,
        paths,
    })
}

/// The directory a request runs in: its `working_directory` (checked, relative to `conf.cwd`),
/// else `conf.cwd`. Sessions are kept per directory, so the session lookup needs it first.
pub fn working_dir(body: &Value, conf: &CliConf) -> Result<PathBuf, Invalid> {
    match fields::opt_str(body, "working_directory")? {
        Some(p) => fields::allowed_path("working_directory", p, conf),
        None => Ok(conf.cwd.clone()),
    }
}

fn base_args(stream: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--input-format",
        "stream-json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if stream {
        args.push("--include-partial-messages".into());
    }
    args
}

fn push(args: &mut Vec<String>, flag: &str, value: impl Into<String>) {
    args.push(flag.to_string());
    args.push(value.into());
}

/// The flags for every field the request sets, in a fixed order.
fn flags(
    body: &Value,
    conf: &CliConf,
    model: Option<&str>,
    args: &mut Vec<String>,
    paths: &mut Vec<(String, PathBuf)>,
) -> Result<(), Invalid> {
    if let Some(m) = model {
        push(args, "--model", m);
    }
    if let Some(f) = fields::opt_name(body, "fallback_model")? {
        if Some(f.as_str()) == model {
            return Err(Invalid::new("fallback_model: must differ from model"));
        }
        push(args, "--fallback-model", f);
    }
    if let Some(s) = fields::system_text(body.get("system"))? {
        push(args, "--system-prompt", s);
    }
    if let Some(s) = fields::opt_text(body, "append_system_prompt")? {
        push(args, "--append-system-prompt", s);
    }
    for (field, flag) in [
        ("allowed_tools", "--allowedTools"),
        ("disallowed_tools", "--disallowedTools"),
    ] {
        let tools = fields::name_list(body, field, 50)?;
        if !tools.is_empty() {
            push(args, flag, tools.join(","));
        }
    }
    for (i, dir) in fields::str_list(body, "add_dirs", 20)?.into_iter().enumerate() {
        let field = format!("add_dirs[{i}]");
        let path = fields::allowed_path(&field, dir, conf)?;
        push(args, "--add-dir", path_arg(&field, &path)?);
        paths.push((field, path));
    }
    if let Some(mode) = fields::opt_str(body, "permission_mode")? {
        if !PERMISSION_MODES.contains(&mode) {
            let list = PERMISSION_MODES.join(", ");
            return Err(Invalid::new(format!("permission_mode: must be one of {list}")));
        }
        push(args, "--permission-mode", mode);
    }
    numeric_flags(body, args)?;
    json_flags(body, args)?;
    let betas = fields::name_list(body, "betas", 10)?;
    if !betas.is_empty() {
        push(args, "--betas", betas.join(","));
    }
    fields::client_session(body)?;
    Ok(())
}

fn numeric_flags(body: &Value, args: &mut Vec<String>) -> Result<(), Invalid> {
    if let Some(v) = body.get("max_turns") {
        let n = v
            .as_u64()
            .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
            .ok_or_else(|| Invalid::new("max_turns: must be a positive integer"))?;
        push(args, "--max-turns", n.to_string());
    }
    if let Some(v) = body.get("max_budget_usd") {
        let x = v
            .as_f64()
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| Invalid::new("max_budget_usd: must be a number greater than 0"))?;
        push(args, "--max-budget-usd", x.to_string());
    }
    Ok(())
}

fn json_flags(body: &Value, args: &mut Vec<String>) -> Result<(), Invalid> {
    for (field, flag) in [("json_schema", "--json-schema"), ("agents", "--agents")] {
        if let Some(v) = body.get(field) {
            if !v.is_object() {
                return Err(Invalid::new(format!("{field}: must be a JSON object")));
            }
            push(args, flag, fields::bounded_json(field, v)?);
        }
    }
    for config in fields::mcp_configs(body.get("mcp_config"))? {
        push(args, "--mcp-config", config);
    }
    Ok(())
}

fn session_args(session: &SessionState, args: &mut Vec<String>) {
    match session {
        SessionState::New { id } => push(args, "--session-id", id.clone()),
        SessionState::Resume { id } => push(args, "--resume", id.clone()),
        SessionState::None => args.push("--no-session-persistence".into()),
    }
}

fn path_arg(field: &str, path: &Path) -> Result<String, Invalid> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| Invalid::new(format!("{field}: must be valid UTF-8")))
}

/// `context_files` become `@"path"` mentions after the query: the CLI reads each file itself and
/// attaches its text to the turn (what `@` does in Claude Code), so no directory is opened to its
/// tools for them.
fn context_mentions(body: &Value, conf: &CliConf, paths: &mut Vec<(String, PathBuf)>) -> Result<String, Invalid> {
    let mut mentions = String::new();
    for (i, file) in fields::str_list(body, "context_files", 100)?.into_iter().enumerate() {
        let field = format!("context_files[{i}]");
        let path = fields::allowed_path(&field, file, conf)?;
        let text = path_arg(&field, &path)?;
        if text.contains('"') {
            return Err(Invalid::new(format!("{field}: must not contain a double quote")));
        }
        mentions.push_str(if mentions.is_empty() { "Context files:" } else { "" });
        mentions.push_str(&format!(" @\"{text}\""));
        paths.push((field, path));
    }
    Ok(mentions)
}

/// PATH, HOME, the account's variable, then the operator's list (later entries win). Nothing
/// of the sidecar's own environment is inherited.
fn environment(conf: &CliConf, account: &AccountMode, base: &BaseEnv) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![("PATH".into(), base.path.clone()), ("HOME".into(), base.home.clone())];
    match account {
        AccountMode::ConfigDir(dir) => env.push(("CLAUDE_CONFIG_DIR".into(), dir.to_string_lossy().into_owned())),
        AccountMode::ApiKey(key) => env.push(("ANTHROPIC_API_KEY".into(), key.expose().to_string())),
    }
    for (k, v) in &conf.env {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// The filesystem checks of a built run, for the service (the blocking calls run on tokio's
/// blocking pool): the working directory exists and is a directory, and every client-named
/// path, with symlinks resolved, still lies inside an allowed directory.
pub async fn check_filesystem(inv: &Invocation, conf: &CliConf) -> Result<(), Invalid> {
    let paths = inv.paths.clone();
    let allow = conf.allow_dirs.clone();
    tokio::task::spawn_blocking(move || check_paths(&paths, &allow))
        .await
        .unwrap_or_else(|_| Err(Invalid::new("working_directory: could not be checked")))
}

fn check_paths(paths: &[(String, PathBuf)], allow_dirs: &[PathBuf]) -> Result<(), Invalid> {
    let allowed: Vec<PathBuf> = allow_dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .collect();
    for (field, path) in paths {
        let real = std::fs::canonicalize(path).map_err(|_| Invalid::new(format!("{field}: does not exist")))?;
        if !allowed.iter().any(|a| real.starts_with(a)) {
            return Err(Invalid::new(format!("{field}: outside the allowed directories")));
        }
        if !field.starts_with("context_files") && !real.is_dir() {
            return Err(Invalid::new(format!("{field}: is not a directory")));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "invocation_tests.rs"]
mod tests;
