//! Validation of claude-cli pools and accounts: the binary exists and is executable (found on
//! `PATH` when named bare), directories are absolute and exist, each account is a config
//! directory or a key, and no HTTP-only setting is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::check::{read_secret, Problems};
use super::raw::{RawAccount, RawPool};
use crate::claude_cli::{AccountMode, CliConf};

/// The pool's CLI settings (`None` with problems reported when they do not hold).
pub(super) fn build_conf(path: &str, raw: &RawPool, p: &mut Problems) -> Option<Arc<CliConf>> {
    let Some(cli) = raw.cli.as_ref() else {
        p.add(
            format!("{path}.cli"),
            "a claude-cli pool needs cli: { binary, cwd, allow_dirs, env }",
        );
        return None;
    };
    let start = p.0.len();
    let binary = find_binary(&cli.binary)
        .map_err(|m| p.add(format!("{path}.cli.binary"), m))
        .ok();
    let mut allow_dirs = Vec::with_capacity(cli.allow_dirs.len());
    for (i, d) in cli.allow_dirs.iter().enumerate() {
        match absolute_dir(d) {
            Ok(dir) => allow_dirs.push(dir),
            Err(m) => p.add(format!("{path}.cli.allow_dirs[{i}]"), m),
        }
    }
    let cwd = match &cli.cwd {
        Some(c) => absolute_dir(c).map_err(|m| p.add(format!("{path}.cli.cwd"), m)).ok(),
        None => allow_dirs.first().cloned().or_else(|| std::env::current_dir().ok()),
    };
    for key in cli.env.keys() {
        if key.is_empty() || key.contains(['=', '\0']) {
            p.add(format!("{path}.cli.env"), format!("{key:?} is not a variable name"));
        }
    }
    if p.0.len() != start {
        return None;
    }
    let cwd = cwd.unwrap_or_else(|| PathBuf::from("/"));
    let allow_dirs = if allow_dirs.is_empty() {
        vec![cwd.clone()]
    } else {
        allow_dirs
    };
    Some(Arc::new(CliConf {
        binary: binary.unwrap_or_default(),
        cwd,
        allow_dirs,
        env: cli.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }))
}

/// A claude-cli account: its config directory, or its key as `ANTHROPIC_API_KEY`.
pub(super) fn account_mode(path: &str, a: &RawAccount, p: &mut Problems) -> Option<AccountMode> {
    if a.base_url.is_some() {
        p.add(
            format!("{path}.base_url"),
            "claude-cli accounts run the CLI: set config_dir or a key, not base_url",
        );
    }
    if a.auth.is_some() {
        p.add(format!("{path}.auth"), "claude-cli accounts have no auth style");
    }
    match (&a.config_dir, a.key_env.is_some() || a.key_file.is_some()) {
        (Some(dir), false) => match absolute_dir(dir) {
            Ok(d) => Some(AccountMode::ConfigDir(d)),
            Err(m) => {
                p.add(format!("{path}.config_dir"), m);
                None
            }
        },
        (None, true) => {
            read_secret(path, "key", a.key_env.as_deref(), a.key_file.as_deref(), p).map(AccountMode::ApiKey)
        }
        (Some(_), true) => {
            p.add(
                path,
                "set config_dir (a logged-in subscription) or a key (key_env / key_file), not both",
            );
            None
        }
        (None, false) => {
            p.add(
                path,
                "set config_dir (a logged-in subscription) or a key (key_env / key_file)",
            );
            None
        }
    }
}

/// An absolute path to an existing directory.
fn absolute_dir(text: &str) -> Result<PathBuf, String> {
    let dir = Path::new(text);
    if !dir.is_absolute() {
        return Err(format!("{text:?} must be an absolute path"));
    }
    if !dir.is_dir() {
        return Err(format!("{text:?} is not a directory"));
    }
    Ok(dir.to_path_buf())
}

/// `name` as an executable file: a path as given, a bare name looked up on `PATH`.
fn find_binary(name: &str) -> Result<PathBuf, String> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return if executable(&p) {
            Ok(p)
        } else {
            Err(format!("{name:?} is not an executable file"))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| executable(p))
        .ok_or_else(|| format!("{name:?} is not on PATH (install @anthropic-ai/claude-code, or give a path)"))
}
