//! The claude-cli upstream's building blocks: a pool of headless Claude Code CLI processes
//! (`claude -p`), one account per logged-in `CLAUDE_CONFIG_DIR` or per API key, served as an
//! Anthropic Messages upstream.

pub mod fields;
pub mod invocation;
pub mod limit;
pub mod lines;
mod prompt;
pub mod sessions;

pub use fields::Invalid;
pub use invocation::{
    build, check_filesystem, working_dir, AccountMode, BaseEnv, CliConf, Invocation, SessionState,
};
pub use sessions::{CliSessions, Lease, SessionKey};
