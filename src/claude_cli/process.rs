//! Running one [`Invocation`]: `tokio::process` with a cleared environment, its own process
//! group, piped stdio and no shell. stdout is read line by line as it is written (bounded);
//! stderr is kept to its first 8 KiB. Stopping signals the whole group (SIGTERM, then SIGKILL
//! after a grace period) and reaps it, so no process of the run survives it, grandchildren
//! included. Dropping a [`CliProcess`] stops it in the background.
//!
//! Reaping grandchildren: see `group.rs` (and [`become_subreaper`]).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::task::JoinHandle;
use tokio::time::timeout;

pub use super::group::become_subreaper;
use super::group::{signal_group, terminate, Groups};
use super::invocation::Invocation;
use super::lines::{LineSplitter, TooLong};
use crate::text::sanitize;

/// The default [`Options::grace`]: 2 s between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);
/// The default [`Options::max_line`]: 4 MiB.
pub const DEFAULT_MAX_LINE: usize = 4 << 20;
/// stderr kept at most; the rest is read and dropped.
pub const STDERR_KEEP: usize = 8 << 10;
const READ_CHUNK: usize = 64 << 10;

/// Limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The longest stdout line accepted, in bytes; a longer one stops the run.
    pub max_line: usize,
    /// Time between SIGTERM and SIGKILL when the run is stopped.
    pub grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_line: DEFAULT_MAX_LINE,
            grace: DEFAULT_GRACE,
        }
    }
}

/// Why a run could not be read to its end. Child text in it is sanitized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessError {
    /// The binary is missing or cannot be executed.
    Unavailable {
        /// Why it could not be started, naming the program.
        message: String,
    },
    /// A stdout line passed the limit: it was dropped and the run stopped.
    LineTooLong {
        /// The line limit, in bytes ([`Options::max_line`]).
        limit: usize,
    },
    /// The run ended by a signal or a non-zero exit code.
    Exited {
        /// The exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// The signal that ended it (`None`: it exited).
        signal: Option<i32>,
        /// stderr, sanitized, at most 500 bytes.
        stderr: String,
    },
    /// Starting the child, reading its output or waiting for it failed some other way.
    Io {
        /// The I/O error, in words.
        message: String,
    },
}

impl std::fmt::Display for ProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessError::Unavailable { message } => write!(f, "claude unavailable: {message}"),
            ProcessError::LineTooLong { limit } => write!(f, "claude wrote a line longer than {limit} bytes"),
            ProcessError::Exited { code, signal, stderr } => {
                write!(f, "claude exited (code {code:?}, signal {signal:?}): {stderr}")
            }
            ProcessError::Io { message } => write!(f, "claude i/o: {message}"),
        }
    }
}

impl std::error::Error for ProcessError {}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exit {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// The signal that ended the process (`None`: it exited).
    pub signal: Option<i32>,
    /// stderr for messages and logs: control characters removed, at most 500 bytes.
    pub stderr: String,
    /// The first 8 KiB of stderr, control characters turned into spaces: for recognising known
    /// messages only, never to be logged or returned.
    pub stderr_head: String,
}

impl Exit {
    /// Whether the CLI exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `Exited` unless the run exited 0.
    pub fn error(&self) -> Option<ProcessError> {
        (!self.success()).then(|| ProcessError::Exited {
            code: self.code,
            signal: self.signal,
            stderr: self.stderr.clone(),
        })
    }

    /// The CLI refused `--resume` of a session it does not hold.
    pub fn session_missing(&self) -> bool {
        self.stderr_head.contains("No conversation found with session ID")
    }
}

enum Step {
    Read(io::Result<usize>),
    Exited(io::Result<ExitStatus>),
}

/// A running CLI process.
pub struct CliProcess {
    child: Option<Child>,
    pgid: Option<i32>,
    status: Option<ExitStatus>,
    stdout: Option<ChildStdout>,
    lines: LineSplitter,
    buf: Vec<u8>,
    eof: bool,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_task: Option<JoinHandle<()>>,
    opts: Options,
    /// The group was (or is being) stopped and reaped: nothing left for `Drop`.
    cleaned: bool,
    /// Where the group is tracked until it is gone.
    groups: Arc<Groups>,
}

impl CliProcess {
    /// Start `inv`. A missing or non-executable binary is [`ProcessError::Unavailable`].
    pub fn spawn(inv: &Invocation, opts: Options) -> Result<CliProcess, ProcessError> {
        Self::spawn_in(inv, opts, Arc::default())
    }

    /// [`CliProcess::spawn`], tracking the group in `groups` until it is gone.
    pub fn spawn_in(inv: &Invocation, opts: Options, groups: Arc<Groups>) -> Result<CliProcess, ProcessError> {
        let mut cmd = Command::new(&inv.program);
        cmd.args(&inv.args)
            .env_clear()
            .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&inv.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|e| spawn_error(inv, &e))?;
        let pgid = child.id().and_then(|p| i32::try_from(p).ok());
        if let Some(pgid) = pgid {
            groups.track(pgid);
        }
        if let Some(mut stdin) = child.stdin.take() {
            let bytes = inv.stdin.clone();
            // Errors (the child exiting before it read everything) show in its exit instead.
            tokio::spawn(async move {
                let _ = stdin.write_all(&bytes).await;
                let _ = stdin.shutdown().await;
            });
        }
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_task = child
            .stderr
            .take()
            .map(|s| tokio::spawn(keep_stderr(s, Arc::clone(&stderr))));
        Ok(CliProcess {
            stdout: child.stdout.take(),
            child: Some(child),
            pgid,
            status: None,
            lines: LineSplitter::new(opts.max_line),
            buf: vec![0; READ_CHUNK],
            eof: false,
            stderr,
            stderr_task,
            opts,
            cleaned: false,
            groups,
        })
    }

    /// The process id of the CLI (also its process group id).
    pub fn id(&self) -> Option<u32> {
        self.pgid.and_then(|p| u32::try_from(p).ok())
    }

    /// The most bytes ever held for a partial stdout line (bounded by the line limit plus one read).
    pub fn peak_buffer(&self) -> usize {
        self.lines.peak_capacity()
    }

    /// The next stdout line, as soon as it is written; `None` at the end of stdout. A line past
    /// the limit stops the run and is [`ProcessError::LineTooLong`]. When the CLI exits, what it
    /// left running in its group is stopped, so stdout ends even if a grandchild holds it.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>, ProcessError> {
        loop {
            match self.lines.next_line() {
                Ok(Some(line)) => return Ok(Some(line)),
                Ok(None) => {}
                Err(TooLong { limit }) => {
                    self.stop(self.opts.grace).await;
                    return Err(ProcessError::LineTooLong { limit });
                }
            }
            if self.eof {
                return Ok(self.lines.finish());
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> Result<(), ProcessError> {
        let Some(stdout) = self.stdout.as_mut() else {
            self.eof = true;
            return Ok(());
        };
        let buf = &mut self.buf;
        let step = match self.child.as_mut().filter(|_| self.status.is_none()) {
            Some(child) => tokio::select! {
                r = stdout.read(buf) => Step::Read(r),
                s = child.wait() => Step::Exited(s),
            },
            None => Step::Read(stdout.read(buf).await),
        };
        match step {
            Step::Exited(s) => {
                self.status = Some(s.map_err(io_error)?);
                self.clean_up_leftovers();
            }
            Step::Read(r) => match r.map_err(io_error)? {
                0 => {
                    self.eof = true;
                    self.stdout = None;
                }
                n => self.lines.push(self.buf.get(..n).unwrap_or_default()),
            },
        }
        Ok(())
    }

    /// The CLI exited on its own: stop whatever it left in its group, in the background.
    fn clean_up_leftovers(&mut self) {
        if let (Some(pgid), false) = (self.pgid, self.cleaned) {
            self.cleaned = true;
            let (grace, status, groups) = (self.opts.grace, self.status, Arc::clone(&self.groups));
            tokio::spawn(async move { terminate(&groups, pgid, None, status, grace).await });
        }
    }

    /// Wait for the end of the run (call after `next_line` gave `None`): its exit status and
    /// stderr. stdout not read by then is dropped.
    pub async fn wait(&mut self) -> Result<Exit, ProcessError> {
        self.stdout = None;
        if self.status.is_none() {
            let child = self
                .child
                .as_mut()
                .ok_or_else(|| io_error(io::ErrorKind::NotFound.into()))?;
            self.status = Some(child.wait().await.map_err(io_error)?);
        }
        self.clean_up_leftovers();
        if let Some(task) = self.stderr_task.take() {
            // A leftover holding stderr open is stopped within the grace period.
            let _ = timeout(self.opts.grace + Duration::from_secs(1), task).await;
        }
        let head = self.stderr.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&head);
        let status = self.status.unwrap_or_else(|| ExitStatus::from_raw(0));
        Ok(Exit {
            code: status.code(),
            signal: status.signal(),
            stderr: sanitize(&text),
            stderr_head: text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect(),
        })
    }

    /// Stop the run: SIGTERM to its group, SIGKILL to what is left after `grace`, everything
    /// reaped that can be. Returns once the group is gone (or no longer ours to wait for).
    pub async fn stop(&mut self, grace: Duration) {
        self.stdout = None;
        let Some(pgid) = self.pgid else { return };
        self.status = terminate(&self.groups, pgid, self.child.as_mut(), self.status, grace).await;
        // Only now: a stop cancelled half-way (its future dropped) leaves the rest to `Drop`.
        self.cleaned = true;
    }
}

impl Drop for CliProcess {
    fn drop(&mut self) {
        let Some(pgid) = self.pgid.filter(|_| !self.cleaned) else {
            return;
        };
        let (mut child, status, grace) = (self.child.take(), self.status, self.opts.grace);
        // Now, in case the task below never runs (a runtime shutting down drops it): the group
        // stays tracked, and its owner kills what is left at exit.
        signal_group(pgid, libc::SIGTERM);
        let groups = Arc::clone(&self.groups);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move { terminate(&groups, pgid, child.as_mut(), status, grace).await });
            }
            Err(_) => {
                signal_group(pgid, libc::SIGKILL);
                self.groups.untrack(pgid);
            }
        }
    }
}

async fn keep_stderr(mut from: ChildStderr, keep: Arc<Mutex<Vec<u8>>>) {
    let mut buf = vec![0; 4096];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let Ok(mut kept) = keep.lock() else { return };
                let room = STDERR_KEEP.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(buf.get(..room).unwrap_or_default());
            }
        }
    }
}

fn spawn_error(inv: &Invocation, e: &io::Error) -> ProcessError {
    let unavailable = matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied)
        || matches!(
            e.raw_os_error(),
            Some(libc::ENOEXEC | libc::ENOTDIR | libc::EACCES | libc::ENOENT)
        );
    let message = format!("cannot run {} in {}: {e}", inv.program.display(), inv.cwd.display());
    if unavailable {
        ProcessError::Unavailable { message }
    } else {
        ProcessError::Io { message }
    }
}

fn io_error(e: io::Error) -> ProcessError {
    ProcessError::Io { message: e.to_string() }
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
