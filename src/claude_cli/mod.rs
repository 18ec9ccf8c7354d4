//! The claude-cli upstream's building blocks: a pool of headless Claude Code CLI processes
//! (`claude -p`), one account per logged-in `CLAUDE_CONFIG_DIR` or per API key, served as an
//! Anthropic Messages upstream.

pub mod limit;
pub mod lines;
