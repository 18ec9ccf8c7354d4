//! The downstream session as the proxy phase sees it. Pingora 0.9.1 replays at most 64 KiB of a
//! request body on a retry and never forwards a body that a filter already consumed; this wrapper
//! hands Pingora our buffered body as the "retry buffer" on every attempt, whatever its size, and
//! enforces the first-byte, idle and total deadlines Pingora has no notion of. Every other call is
//! delegated to the real session, which [`Link::restore`] puts back before Pingora reuses the
//! connection.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora::protocols::http::ServerSession;

use crate::config::Timeouts;
use session::Replay;

mod held;
mod session;

const WAITING_FOR_HEAD: u64 = u64::MAX;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2)
}

/// Which of our deadlines ended the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Expired {
    FirstByte = 1,
    /// A stream's head arrived, but no content within `first_token`.
    FirstToken = 2,
    Idle = 3,
    Total = 4,
}

impl Expired {
    const ALL: [Expired; 4] = [Expired::FirstByte, Expired::FirstToken, Expired::Idle, Expired::Total];

    /// What the request is failed with.
    fn explain(self) -> &'static str {
        match self {
            Expired::FirstByte => "no response head within the first_byte timeout",
            Expired::FirstToken => "no content within the first_token timeout",
            Expired::Idle => "stream idle for longer than the idle timeout",
            Expired::Total => "request exceeded the total timeout",
        }
    }
}

/// What the proxy hooks and the wrapped session share: the clock, and the slot through which
/// the real session comes back.
pub struct Link {
    origin: Instant,
    /// The request's total limit, in nanoseconds after `origin` (a front door sets its target's).
    total: AtomicU64,
    /// Nanoseconds after `origin`.
    attempt_start: AtomicU64,
    /// Nanoseconds after `origin` of the last upstream data, or `WAITING_FOR_HEAD`.
    last_data: AtomicU64,
    /// 0, or the [`Expired`] that fired (`as u8`).
    expired: AtomicU8,
    /// The current attempt's stream must show content by this (nanoseconds after `origin`;
    /// `u64::MAX`: no such deadline).
    first_token_at: AtomicU64,
    /// The current attempt's first-byte and idle limits, in nanoseconds.
    first_byte: AtomicU64,
    idle: AtomicU64,
    /// Nanoseconds spent in earlier attempts (connecting, waiting, receiving).
    upstream_done: AtomicU64,
    /// An attempt has started.
    attempted: std::sync::atomic::AtomicBool,
    returned: Mutex<Option<ServerSession>>,
    /// The body every attempt sends (a front door replaces it per target).
    body: Mutex<Bytes>,
    /// The answer goes back in one piece: its head waits for the body's end and then carries
    /// the body's length (one write instead of a chunked head, chunk and terminator).
    whole: std::sync::atomic::AtomicBool,
}

impl Link {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Time spent in the current attempt so far: to its last data, or to now while waiting.
    fn current_attempt(&self, now: u64) -> u64 {
        if !self.attempted.load(Ordering::Relaxed) {
            return 0;
        }
        let start = self.attempt_start.load(Ordering::Relaxed);
        let end = match self.last_data.load(Ordering::Relaxed) {
            WAITING_FOR_HEAD => now,
            last => last,
        };
        end.saturating_sub(start)
    }

    /// Time the upstreams took for this request, all attempts together.
    pub fn upstream_time(&self) -> Duration {
        let now = self.nanos(Instant::now());
        Duration::from_nanos(self.upstream_done.load(Ordering::Relaxed) + self.current_attempt(now))
    }

    /// A new attempt starts waiting for a response head, under its pool's first-byte and idle
    /// limits (a fallback pool has its own); the total limit stays the request's.
    pub fn attempt_started(&self, timeouts: &Timeouts) {
        self.first_byte.store(nanos(timeouts.first_byte), Ordering::Relaxed);
        self.idle.store(nanos(timeouts.idle), Ordering::Relaxed);
        let now = self.nanos(Instant::now());
        self.upstream_done
            .fetch_add(self.current_attempt(now), Ordering::Relaxed);
        self.attempted.store(true, Ordering::Relaxed);
        self.attempt_start.store(now, Ordering::Relaxed);
        self.last_data.store(WAITING_FOR_HEAD, Ordering::Relaxed);
        self.first_token_at.store(u64::MAX, Ordering::Relaxed);
        self.expired.store(0, Ordering::Relaxed);
        self.whole.store(false, Ordering::Relaxed);
    }

    /// The answer about to go back is written whole at its end (a front door's translated JSON):
    /// its head is held until then and sent with the body's length.
    pub fn answer_whole(&self) {
        self.whole.store(true, Ordering::Relaxed);
    }

    /// The attempt's head is a stream: its first content must come within `limit` from now.
    pub fn await_first_token(&self, limit: Duration) {
        let at = self.nanos(Instant::now()).saturating_add(nanos(limit));
        self.first_token_at.store(at, Ordering::Relaxed);
    }

    /// The attempt's stream showed content: the first-token deadline is met.
    pub fn content_arrived(&self) {
        self.first_token_at.store(u64::MAX, Ordering::Relaxed);
    }

    /// The request's total time limit (a front door learns it from its first target's pool).
    pub fn set_total(&self, total: Duration) {
        self.total.store(nanos(total), Ordering::Relaxed);
    }

    /// The body the next attempt sends.
    pub fn set_body(&self, body: Bytes) {
        if let Ok(mut b) = self.body.lock() {
            *b = body;
        }
    }

    /// The body attempts send (a reference count, not a copy).
    pub fn body(&self) -> Bytes {
        self.body.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Upstream data (the head or a body chunk) arrived.
    pub fn data_arrived(&self) {
        self.last_data.store(self.nanos(Instant::now()), Ordering::Relaxed);
    }

    /// The deadline that fired, if one did.
    pub fn expired(&self) -> Option<Expired> {
        let code = self.expired.load(Ordering::Relaxed);
        Expired::ALL.into_iter().find(|e| *e as u8 == code)
    }

    /// The earliest deadline now in force and which one it is.
    fn deadline(&self) -> (Instant, Expired) {
        let total = (
            self.origin + Duration::from_nanos(self.total.load(Ordering::Relaxed)),
            Expired::Total,
        );
        let last = self.last_data.load(Ordering::Relaxed);
        let phase = if last == WAITING_FOR_HEAD {
            let start = Duration::from_nanos(self.attempt_start.load(Ordering::Relaxed));
            let limit = Duration::from_nanos(self.first_byte.load(Ordering::Relaxed));
            (self.origin + start + limit, Expired::FirstByte)
        } else {
            let limit = Duration::from_nanos(self.idle.load(Ordering::Relaxed));
            let idle = (self.origin + Duration::from_nanos(last) + limit, Expired::Idle);
            match self.first_token_at.load(Ordering::Relaxed) {
                u64::MAX => idle,
                at => {
                    let token = (self.origin + Duration::from_nanos(at), Expired::FirstToken);
                    if token.0 < idle.0 {
                        token
                    } else {
                        idle
                    }
                }
            }
        };
        if phase.0 < total.0 {
            phase
        } else {
            total
        }
    }

    /// Put the real session back into `slot` (called from `logging`, before Pingora decides on
    /// keep-alive). A no-op when the slot does not hold a wrapper.
    pub fn restore(&self, slot: &mut ServerSession) {
        if !slot.is_custom() {
            return;
        }
        let wrapper = std::mem::replace(slot, ServerSession::new_custom(Box::new(())));
        drop(wrapper); // Replay::drop hands the real session to `returned`
        let real = self
            .returned
            .lock()
            .map(|mut r| r.take())
            .unwrap_or_else(|p| p.into_inner().take());
        if let Some(real) = real {
            *slot = real;
        }
    }
}

/// Wrap `slot`'s session so the proxy phase replays `body` and observes the deadlines.
pub fn wrap(slot: &mut ServerSession, body: Bytes, timeouts: Timeouts, origin: Instant) -> Arc<Link> {
    let link = Arc::new(Link {
        origin,
        total: AtomicU64::new(nanos(timeouts.total)),
        attempt_start: AtomicU64::new(0),
        last_data: AtomicU64::new(WAITING_FOR_HEAD),
        expired: AtomicU8::new(0),
        first_token_at: AtomicU64::new(u64::MAX),
        first_byte: AtomicU64::new(nanos(timeouts.first_byte)),
        idle: AtomicU64::new(nanos(timeouts.idle)),
        upstream_done: AtomicU64::new(0),
        attempted: std::sync::atomic::AtomicBool::new(false),
        returned: Mutex::new(None),
        body: Mutex::new(body),
        whole: std::sync::atomic::AtomicBool::new(false),
    });
    let inner = std::mem::replace(slot, ServerSession::new_custom(Box::new(())));
    *slot = ServerSession::new_custom(Box::new(Replay::new(inner, Arc::clone(&link))));
    link
}
