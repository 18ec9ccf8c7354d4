//! Which CLI session continues a client's conversation: (pool, account, client session key) ->
//! the CLI session UUID. Bounded like the proxy's session table (least recently used entries go
//! beyond the cap) and forgotten after `expire_after`.
//!
//! The CLI keeps a session in `$CLAUDE_CONFIG_DIR/projects/<cwd-slug>/<id>.jsonl`, so it resumes
//! only on the same account and in the same working directory: both are part of the match, and
//! a request routed to another account starts a new session with the history folded in.
//!
//! A run holds its entry through a [`Lease`]. Resume is chosen when the session exists (a run on
//! it succeeded), no other run holds it, the working directory is the same, and the request
//! either continues the conversation the session saw (two more messages: its reply and the new
//! query) or sends only the new query (a client leaving the history to the server). Any other
//! history (an edit, a regeneration) starts a new session. A request arriving while another run
//! holds the session runs without one.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lru::LruCache;

use super::invocation::SessionState;

/// Whose conversation: the pool, the account, and the client's session key.
#[derive(Debug, Clone, Copy)]
pub struct SessionKey<'a> {
    /// The pool's name.
    pub pool: &'a str,
    /// The account's name (the CLI keeps sessions per config directory).
    pub account: &'a str,
    /// The client's session key (already checked: no NUL).
    pub client: &'a str,
}

impl SessionKey<'_> {
    fn joined(&self) -> Box<str> {
        // NUL cannot occur in any part (names from the config; client keys are checked).
        format!("{}\0{}\0{}", self.pool, self.account, self.client).into()
    }
}

struct Entry {
    id: String,
    cwd: PathBuf,
    /// The message count of a request continuing this session.
    next_messages: usize,
    last_seen_ms: i64,
    /// A run on this session succeeded: the CLI holds it.
    ready: bool,
    /// A run holds it now.
    busy: bool,
}

/// The table of CLI sessions: (pool, account, client session key) to the CLI session UUID, its
/// working directory and where the conversation stands.
pub struct CliSessions {
    table: Mutex<LruCache<Box<str>, Entry>>,
    expire_after_ms: i64,
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN)
}

/// A random (version 4) UUID, formatted.
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let part = |r: std::ops::Range<usize>| hex.get(r).unwrap_or_default().to_string();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

impl CliSessions {
    /// A table of at most `capacity` entries, each forgotten `expire_after` after it was last used.
    pub fn new(capacity: usize, expire_after: Duration) -> Arc<Self> {
        Arc::new(CliSessions {
            table: Mutex::new(LruCache::new(cap(capacity))),
            expire_after_ms: i64::try_from(expire_after.as_millis()).unwrap_or(i64::MAX),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<Box<str>, Entry>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session for a request with `messages` messages, to run in `cwd`.
    pub fn begin(self: &Arc<Self>, key: SessionKey<'_>, cwd: &Path, messages: usize, now_ms: i64) -> Lease {
        let joined = key.joined();
        let mut table = self.lock();
        let fresh = table
            .get(&joined)
            .filter(|e| now_ms.saturating_sub(e.last_seen_ms) < self.expire_after_ms);
        let state = match fresh {
            Some(e) if e.busy => SessionState::None,
            Some(e) if e.ready && e.cwd == cwd && (messages == 1 || messages == e.next_messages) => {
                SessionState::Resume { id: e.id.clone() }
            }
            _ => SessionState::New { id: new_uuid() },
        };
        match &state {
            SessionState::None => {}
            SessionState::Resume { .. } => {
                if let Some(e) = table.get_mut(&joined) {
                    e.busy = true;
                    e.last_seen_ms = now_ms;
                }
            }
            SessionState::New { id } => {
                let entry = Entry {
                    id: id.clone(),
                    cwd: cwd.to_path_buf(),
                    next_messages: 0,
                    last_seen_ms: now_ms,
                    ready: false,
                    busy: true,
                };
                table.put(joined.clone(), entry);
            }
        }
        Lease {
            sessions: Arc::clone(self),
            key: joined,
            state,
            messages,
            done: false,
        }
    }

    /// Drop entries not seen for `expire_after`; how many went.
    pub fn expire(&self, now_ms: i64) -> usize {
        let mut table = self.lock();
        let mut dropped = 0;
        while table
            .peek_lru()
            .is_some_and(|(_, e)| now_ms.saturating_sub(e.last_seen_ms) >= self.expire_after_ms)
        {
            table.pop_lru();
            dropped += 1;
        }
        dropped
    }

    /// Follow a changed cap on entries; the least recently used go first.
    pub fn set_capacity(&self, n: usize) {
        self.lock().resize(cap(n));
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn settle(&self, key: &str, state: &SessionState, outcome: Settle) {
        let id = match state {
            SessionState::New { id } | SessionState::Resume { id } => id,
            SessionState::None => return,
        };
        let mut table = self.lock();
        let Some(e) = table.peek_mut(key).filter(|e| &e.id == id) else {
            return;
        };
        e.busy = false;
        match outcome {
            Settle::Succeeded { next_messages } => {
                e.ready = true;
                e.next_messages = next_messages;
            }
            // A new session may not exist; a resumed one the CLI no longer holds is gone.
            Settle::Failed { missing } if missing || !e.ready => {
                table.pop(key);
            }
            Settle::Failed { .. } => {}
        }
    }
}

enum Settle {
    Succeeded { next_messages: usize },
    Failed { missing: bool },
}

/// A run's hold on its session entry. Dropped without [`Lease::succeeded`], the run counts as
/// failed (a cancelled request included).
pub struct Lease {
    sessions: Arc<CliSessions>,
    key: Box<str>,
    state: SessionState,
    messages: usize,
    done: bool,
}

impl Lease {
    /// What to run with.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// The run succeeded: the CLI now holds the session with this turn.
    pub fn succeeded(mut self) {
        self.done = true;
        // A continuing request carries what this one had, the reply, and a new query.
        let next_messages = self.messages.saturating_add(2);
        self.sessions
            .settle(&self.key, &self.state, Settle::Succeeded { next_messages });
    }

    /// The run failed; `session_missing`: the CLI said it holds no such session.
    pub fn failed(mut self, session_missing: bool) {
        self.done = true;
        let missing = session_missing;
        self.sessions.settle(&self.key, &self.state, Settle::Failed { missing });
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.done {
            self.sessions
                .settle(&self.key, &self.state, Settle::Failed { missing: false });
        }
    }
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
