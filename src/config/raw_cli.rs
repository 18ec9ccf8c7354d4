//! The config of a claude-cli pool as written (`pools.<name>.cli`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// How a claude-cli pool runs `claude -p`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCli {
    /// `cli.binary`: a path, or a name looked up on `PATH` (default `claude`).
    #[serde(default = "claude")]
    pub binary: String,
    /// `cli.cwd`: the default working directory of each process (absolute; default: the first
    /// of `allow_dirs`, else the sidecar's own).
    pub cwd: Option<String>,
    /// `cli.allow_dirs`: `working_directory`, `add_dirs` and `context_files` must lie under these
    /// (absolute paths; none: only `cwd`).
    #[serde(default)]
    pub allow_dirs: Vec<String>,
    /// `cli.env`: extra variables for the child; nothing else of the sidecar's is inherited.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn claude() -> String {
    "claude".into()
}
