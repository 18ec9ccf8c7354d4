//! The plain settings a run is built from: the pool's CLI settings, an account's mode, the base
//! environment, and the session a run belongs to.

use std::path::PathBuf;

use crate::secret::Secret;

/// How the sidecar runs the CLI for a pool.
#[derive(Debug, Clone)]
pub struct CliConf {
    /// The `claude` executable to run (never through a shell).
    pub binary: PathBuf,
    /// The default working directory; relative client paths are resolved against it.
    pub cwd: PathBuf,
    /// Client-chosen directories and files must lie inside one of these.
    pub allow_dirs: Vec<PathBuf>,
    /// Set last, over everything else (operator settings such as `DISABLE_TELEMETRY`).
    pub env: Vec<(String, String)>,
}

/// What an account is: a logged-in config directory, or an API key.
#[derive(Debug, Clone)]
pub enum AccountMode {
    /// A directory the account is logged in to, passed as `CLAUDE_CONFIG_DIR` (a subscription).
    ConfigDir(PathBuf),
    /// An API key, passed as `ANTHROPIC_API_KEY`.
    ApiKey(Secret),
}

/// The variables every run gets from the sidecar.
#[derive(Debug, Clone)]
pub struct BaseEnv {
    /// `PATH` for the child.
    pub path: String,
    /// `HOME` for the child.
    pub home: String,
}

/// The CLI session a run belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// Start a session with this id (a UUID).
    New {
        /// The id, passed as `--session-id`.
        id: String,
    },
    /// Continue this session: only the latest user turn is sent.
    Resume {
        /// The id, passed as `--resume`.
        id: String,
    },
    /// No session: the history is folded into the prompt and nothing is kept.
    None,
}
