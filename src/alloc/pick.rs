//! Account selection (the algorithm the request path's select stage runs). A request walks its
//! route's pool, then that pool's fallback pools in order (a front door's request walks its
//! model's targets, each pool with its fallbacks). In each pool the candidates are the untried accounts that are available (health), under their
//! rpm/tpm and under 100% of their weekly budget, ranked by health score. A session goes to the
//! account it is bound to when that one has a free slot; else it is (re)bound to the best account
//! with room for another session and under its budget threshold; a request that cannot be bound
//! (caps) or has no session takes the best account with a free slot; failing all that, it waits in
//! the FIFO queue of the best account whose queue has room.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use super::candidates::{rank, serveable, take, Candidate, Unavailable};
use super::shared::Sharing;
use crate::clock::now_ms;
use crate::config::{Pool, Snapshot};
use crate::notify::Notifier;
use crate::resilience::health::Availability;
use crate::resilience::limits::QueueError;

/// Where a request stands in its walk over pools.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// The first pool (its retry settings govern the request).
    pub primary: usize,
    /// Index into the walk's pools: 0 for the first, then on.
    pub step: usize,
    /// Accounts of the current pool already tried (bit per index).
    pub tried: u64,
    /// A front door's pools, each with the target it serves; `None`: the route's pool, then its
    /// fallback pools.
    plan: Option<Arc<[Step]>>,
}

/// One pool of a front door's walk, and which of the model's targets it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The pool (index into the snapshot's pools).
    pub pool: usize,
    /// The target of the model it serves (index into the door's targets).
    pub target: usize,
}

impl Walk {
    /// A pass-through route's walk: `primary`, then its fallback pools.
    pub fn new(primary: usize) -> Self {
        Walk {
            primary,
            step: 0,
            tried: 0,
            plan: None,
        }
    }

    /// A front door's walk over the pools of `steps` (not empty).
    pub fn over(steps: Vec<Step>) -> Option<Self> {
        let primary = steps.first()?.pool;
        Some(Walk {
            primary,
            step: 0,
            tried: 0,
            plan: Some(steps.into()),
        })
    }

    /// The pool at `step` of the walk.
    pub fn pool_at(&self, snap: &Snapshot, step: usize) -> Option<usize> {
        if let Some(plan) = &self.plan {
            return plan.get(step).map(|s| s.pool);
        }
        match step {
            0 => Some(self.primary),
            n => snap.pools.get(self.primary)?.fallback.get(n - 1).copied(),
        }
    }

    /// The target the current step serves (front doors only).
    pub fn target(&self) -> Option<usize> {
        self.plan.as_ref()?.get(self.step).map(|s| s.target)
    }
}

/// An account to send the attempt to.
pub struct Pick {
    /// Index of the pool in [`Snapshot::pools`] (the primary or a fallback).
    pub pool: usize,
    /// Index of the account in its pool's accounts.
    pub account: usize,
    /// The account's concurrency slot, held until the attempt ends.
    pub permit: OwnedSemaphorePermit,
    /// This attempt is the breaker's half-open probe.
    pub probe: bool,
}

/// Why no account can take the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPick {
    /// Every account is open, cooling down, broken, over budget or at its rate limit.
    /// `retry_after`: when the first may be available again; `rate_limited`: all are.
    Unavailable {
        /// How long until the first account may be available again.
        retry_after: Duration,
        /// Every account is cooling down for a rate limit (429 `rate_limited` rather than 503
        /// `no_account`).
        rate_limited: bool,
    },
    /// Every account with room was full, its queue too.
    QueueFull,
    /// Waited in a queue for `queue_timeout` without getting a slot.
    QueueTimeout,
    /// The client is over its rpm across all replicas (shared store); it may send again after
    /// this.
    ClientOver(Duration),
}

/// Choose the account for the next attempt, waiting in a queue if that is what it takes.
pub async fn pick(
    notifier: &Notifier,
    snap: &Snapshot,
    walk: &mut Walk,
    session: Option<&str>,
    mut sharing: Option<Sharing<'_>>,
) -> Result<Pick, NoPick> {
    let webhook_on = snap.webhook.is_some();
    let mut gone = Unavailable::default();
    let mut queue_full = false;
    while let Some(pi) = walk.pool_at(snap, walk.step) {
        let pool = &snap.pools[pi];
        let mut ranked = rank(pool, walk.tried, &mut gone);
        if let Some(sharing) = sharing.as_mut() {
            let first = walk.tried == 0;
            ranked = super::shared::narrow(sharing, pool, ranked, session, first, &mut gone)
                .await
                .map_err(|c| NoPick::ClientOver(c.0))?;
        }
        let mut queue_at = None;
        let taken = take_now(notifier, webhook_on, pool, &ranked, session, walk.tried, &mut queue_at);
        match taken {
            Ok((account, permit, probe)) => {
                return Ok(Pick {
                    pool: pi,
                    account,
                    permit,
                    probe,
                })
            }
            Err(full) => queue_full |= full,
        }
        if let Some(ai) = queue_at {
            match queue(pool, ai).await {
                Queued::Got(permit, probe) => {
                    return Ok(Pick {
                        pool: pi,
                        account: ai,
                        permit,
                        probe,
                    })
                }
                // It went bad while we waited: look again, without it.
                Queued::WentBad => {
                    walk.tried |= 1 << ai;
                    continue;
                }
                Queued::TimedOut => {
                    walk.tried |= 1 << ai;
                    return Err(NoPick::QueueTimeout);
                }
                Queued::Full => queue_full = true,
            }
        }
        walk.step += 1;
        walk.tried = 0;
        fall_back(notifier, snap, pool, walk.pool_at(snap, walk.step));
    }
    if queue_full && !gone.any {
        return Err(NoPick::QueueFull);
    }
    let retry_after = gone
        .earliest
        .map_or(Duration::from_secs(1), |e| e.saturating_duration_since(Instant::now()));
    Err(NoPick::Unavailable {
        retry_after,
        rate_limited: gone.any && gone.all_rate_limited,
    })
}

/// Say that the walk moves on to the fallback pool `next` (when there is one).
fn fall_back(notifier: &Notifier, snap: &Snapshot, pool: &Pool, next: Option<usize>) {
    if let Some(next) = next.and_then(|n| snap.pools.get(n)) {
        tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, fallback = &*next.name, "no account can serve; falling back");
        notifier.fallback_used(snap.webhook.is_some(), &pool.name, &next.name);
    }
}

/// An account with a free slot now: the session's (bound or newly bound), else the best ranked.
/// `Err(true)`: some account's queue was full as well; `queue_at` gets the account to wait for.
fn take_now(
    notifier: &Notifier,
    webhook_on: bool,
    pool: &Pool,
    ranked: &[Candidate],
    session: Option<&str>,
    tried: u64,
    queue_at: &mut Option<usize>,
) -> Result<(usize, OwnedSemaphorePermit, bool), bool> {
    if let Some(id) = session {
        if let Some(picked) = super::bind::bind(notifier, webhook_on, pool, ranked, id, tried, queue_at) {
            return Ok(picked);
        }
    }
    let mut full = false;
    for c in ranked {
        let account = &pool.accounts[c.index];
        if let Some((permit, probe)) = take(account) {
            return Ok((c.index, permit, probe));
        }
        if account.state.slots.can_queue(account.limits.max_queue as usize) {
            queue_at.get_or_insert(c.index);
        } else {
            full = true;
        }
    }
    Err(full)
}

/// How a wait in an account's queue ended.
enum Queued {
    Got(OwnedSemaphorePermit, bool),
    WentBad,
    TimedOut,
    Full,
}

/// Wait in the FIFO queue of `pool.accounts[ai]` for a slot, at most its `queue_timeout`.
async fn queue(pool: &Pool, ai: usize) -> Queued {
    let account = &pool.accounts[ai];
    tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, account = &*account.name, queued = account.state.slots.queued(), "waiting for a slot");
    let waited = account
        .state
        .slots
        .wait(account.limits.max_queue as usize, account.limits.queue_timeout)
        .await;
    match waited {
        Ok(permit) => match account.state.health.check(Instant::now()) {
            Availability::Available => Queued::Got(permit, false),
            Availability::Probe => Queued::Got(permit, true),
            Availability::Unavailable { .. } => Queued::WentBad,
        },
        Err(QueueError::Timeout) => {
            tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, account = &*account.name, "queue timeout");
            Queued::TimedOut
        }
        Err(QueueError::Full) => Queued::Full,
    }
}

/// Whether another attempt could find an account (no side effects): one that could serve and
/// has a free slot or room in its queue.
pub fn any_left(snap: &Snapshot, walk: &Walk) -> bool {
    let (now, ms) = (Instant::now(), now_ms());
    let mut gone = Unavailable::default();
    let mut step = walk.step;
    let mut tried = walk.tried;
    while let Some(pi) = walk.pool_at(snap, step) {
        let usable = snap.pools[pi].accounts.iter().enumerate().any(|(ai, a)| {
            tried & (1 << ai) == 0
                && serveable(a, now, ms, &mut gone)
                && (a.state.slots.in_use() < a.state.slots.capacity()
                    || a.state.slots.can_queue(a.limits.max_queue as usize))
        });
        if usable {
            return true;
        }
        step += 1;
        tried = 0;
    }
    false
}
