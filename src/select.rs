//! Account selection. A request walks its route's pool, then that pool's fallback pools in order;
//! in each pool it takes the first untried account that is available (health), under its
//! rpm/tpm and has a free concurrency slot, else waits in the FIFO queue of the first one whose
//! queue has room. Each account is tried at most once per request.

use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use crate::config::{Account, Pool, Snapshot};
use crate::resilience::health::Availability;
use crate::resilience::limits::QueueError;
use crate::usage::ledger::now_ms;

/// Where a request stands in its walk over pools.
#[derive(Debug, Clone, Copy, Default)]
pub struct Walk {
    /// The route's pool.
    pub primary: usize,
    /// 0 for the primary pool, then 1.. for its fallbacks.
    pub step: usize,
    /// Accounts of the current pool already tried (bit per index).
    pub tried: u64,
}

impl Walk {
    pub fn new(primary: usize) -> Self {
        Walk {
            primary,
            step: 0,
            tried: 0,
        }
    }

    /// The pool at `step` of the walk.
    pub fn pool_at(&self, snap: &Snapshot, step: usize) -> Option<usize> {
        match step {
            0 => Some(self.primary),
            n => snap.pools[self.primary].fallback.get(n - 1).copied(),
        }
    }
}

/// An account to send the attempt to.
pub struct Pick {
    pub pool: usize,
    pub account: usize,
    pub permit: OwnedSemaphorePermit,
    /// This attempt is the breaker's half-open probe.
    pub probe: bool,
    /// Waited this long in the account's queue.
    pub queued: Option<Duration>,
}

/// Why no account can take the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPick {
    /// Every account is open, cooling down, broken or at its rate limit. `retry_after` is when
    /// the first one may be available again; `rate_limited` when all of them are rate limited.
    Unavailable {
        retry_after: Duration,
        rate_limited: bool,
    },
    /// Every account with room was full, its queue too.
    QueueFull,
    /// Waited in a queue for `queue_timeout` without getting a slot.
    QueueTimeout,
}

/// Why an account is skipped.
enum Skip {
    Until(Option<Instant>, bool),
}

fn rate_limited(account: &Account, now_ms: i64) -> Option<Duration> {
    let l = &account.limits;
    let s = &account.state;
    if let Some(rpm) = l.rpm {
        if s.sent.count(now_ms) >= f64::from(rpm) {
            return Some(Duration::from_secs(1));
        }
    }
    if let Some(tpm) = l.tpm {
        if s.ledger.view(now_ms).tokens_last_minute >= tpm {
            return Some(Duration::from_secs(1));
        }
    }
    None
}

/// Untried accounts of `pool`, in the order they are preferred.
fn candidates(pool: &Pool, tried: u64) -> impl Iterator<Item = usize> + '_ {
    let n = pool.accounts.len();
    let start = if n == 0 {
        0
    } else {
        pool.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n
    };
    (0..n)
        .map(move |i| (start + i) % n)
        .filter(move |i| tried & (1 << i) == 0)
}

/// Choose the account for the next attempt, waiting in a queue if that is what it takes.
pub async fn pick(snap: &Snapshot, walk: &mut Walk) -> Result<Pick, NoPick> {
    let (mut earliest, mut all_rate_limited, mut any_skipped) = (None::<Instant>, true, false);
    let mut queue_full = false;
    while let Some(pi) = walk.pool_at(snap, walk.step) {
        let pool = &snap.pools[pi];
        let now = Instant::now();
        let ms = now_ms();
        let mut queue_at = None;
        for ai in candidates(pool, walk.tried) {
            let account = &pool.accounts[ai];
            let skip = if let Some(wait) = rate_limited(account, ms) {
                Some(Skip::Until(Some(now + wait), true))
            } else {
                match account.state.health.check(now) {
                    Availability::Unavailable {
                        until,
                        rate_limited,
                    } => Some(Skip::Until(until, rate_limited)),
                    avail => {
                        let probe = avail == Availability::Probe;
                        if let Some(permit) = account.state.slots.try_take() {
                            return Ok(Pick {
                                pool: pi,
                                account: ai,
                                permit,
                                probe,
                                queued: None,
                            });
                        }
                        if probe {
                            account.state.health.release_probe();
                        }
                        if account
                            .state
                            .slots
                            .can_queue(account.limits.max_queue as usize)
                        {
                            queue_at.get_or_insert(ai);
                        } else {
                            queue_full = true;
                        }
                        None
                    }
                }
            };
            if let Some(Skip::Until(until, limited)) = skip {
                any_skipped = true;
                all_rate_limited &= limited;
                if let Some(u) = until {
                    earliest = Some(earliest.map_or(u, |e| e.min(u)));
                }
            }
        }
        if let Some(ai) = queue_at {
            let account = &pool.accounts[ai];
            let started = Instant::now();
            tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, account = &*account.name, queued = account.state.slots.queued(), "waiting for a slot");
            match account
                .state
                .slots
                .wait(
                    account.limits.max_queue as usize,
                    account.limits.queue_timeout,
                )
                .await
            {
                Ok(permit) => {
                    let probe = account.state.health.check(Instant::now()) == Availability::Probe;
                    return Ok(Pick {
                        pool: pi,
                        account: ai,
                        permit,
                        probe,
                        queued: Some(started.elapsed()),
                    });
                }
                Err(QueueError::Timeout) => {
                    tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, account = &*account.name, "queue timeout");
                    walk.tried |= 1 << ai;
                    return Err(NoPick::QueueTimeout);
                }
                Err(QueueError::Full) => queue_full = true,
            }
        }
        walk.step += 1;
        walk.tried = 0;
        if let Some(next) = walk.pool_at(snap, walk.step) {
            tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, fallback = &*snap.pools[next].name, "no account can serve; falling back");
        }
    }
    if queue_full && !any_skipped {
        return Err(NoPick::QueueFull);
    }
    let retry_after = earliest.map_or(Duration::from_secs(1), |e| {
        e.saturating_duration_since(Instant::now())
    });
    Err(NoPick::Unavailable {
        retry_after,
        rate_limited: any_skipped && all_rate_limited,
    })
}

/// Whether another attempt could find an account (no side effects).
pub fn any_left(snap: &Snapshot, walk: &Walk) -> bool {
    let now = Instant::now();
    let ms = now_ms();
    let mut step = walk.step;
    let mut tried = walk.tried;
    while let Some(pi) = walk.pool_at(snap, step) {
        let pool = &snap.pools[pi];
        let usable = pool.accounts.iter().enumerate().any(|(ai, a)| {
            tried & (1 << ai) == 0
                && rate_limited(a, ms).is_none()
                && a.state.health.could_serve(now)
        });
        if usable {
            return true;
        }
        step += 1;
        tried = 0;
    }
    false
}
