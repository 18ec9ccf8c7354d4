//! The claude-cli upstream's building blocks: a pool of headless Claude Code CLI processes
//! (`claude -p`), one account per logged-in `CLAUDE_CONFIG_DIR` or per API key, served as an
//! Anthropic Messages upstream.
//!
//! - [`invocation`]: a Messages request -> one CLI run (argv, environment, cwd, stdin), or a 400.
//! - [`events`]: the CLI's stream-json stdout -> Anthropic SSE or one Messages JSON body, plus
//!   the run's [`events::Outcome`] (usage, cost, session, errors, usage limits).
//! - [`process`]: spawning a run in its own process group, reading it line by line, stopping it.
//! - [`sessions`]: client conversation -> CLI session id, per pool and account.
//!
//! One run per request. What the service does with them:
//! 1. Session: `fields::client_session(body)` gives the client's key (none: `SessionState::None`);
//!    `sessions.begin(key, &working_dir(body, conf)?, message_count, now)` gives a [`sessions::Lease`]
//!    whose `state()` says New, Resume or None.
//! 2. `build(body, conf, account, base, lease.state())`, then `check_filesystem(&inv, conf).await`:
//!    an [`Invalid`] is a 400 with its message.
//! 3. `CliProcess::spawn(&inv, Options::default())` (`Unavailable`: 503) and
//!    `Translator::new(inv.stream, inv.model.as_deref())`; each `next_line()` goes to `line()`,
//!    whose output is written at once. A client that leaves: drop the process (its group stops).
//! 4. `wait()`, then `finish(&exit, now)`: write `tail` or send `body`; when nothing was `started`
//!    and the outcome is not a success, answer `error_body` with its status (`RateLimited`: 429,
//!    the account cooling until `reset`).
//! 5. `lease.succeeded()` on success, else `lease.failed(exit.session_missing())` (a missing
//!    session can be retried once as New with the history folded).

mod answer;
pub mod conf;
pub mod events;
pub mod fields;
mod group;
pub mod invocation;
pub mod limit;
pub mod lines;
pub mod process;
mod prompt;
pub mod service;
pub mod sessions;
pub mod socket;
#[cfg(test)]
mod testkit;
pub mod token;

pub use events::{error_body, Finished, Outcome, Report, Translator, Usage};
pub use fields::Invalid;
pub use group::Groups;
pub use invocation::{build, check_filesystem, working_dir, AccountMode, BaseEnv, CliConf, Invocation, SessionState};
pub use process::{become_subreaper, CliProcess, Exit, Options, ProcessError};
pub use sessions::{CliSessions, Lease, SessionKey};
