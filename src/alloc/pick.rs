//! Account selection (the algorithm the request path's select stage runs). A request walks its route's pool, then that pool's fallback pools in order.
//! In each pool the candidates are the untried accounts that are available (health), under their
//! rpm/tpm and under 100% of their weekly budget, ranked by health score. A session goes to the
//! account it is bound to when that one has a free slot; else it is (re)bound to the best account
//! with room for another session and under its budget threshold; a request that cannot be bound
//! (caps) or has no session takes the best account with a free slot; failing all that, it waits in
//! the FIFO queue of the best account whose queue has room.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use crate::alloc::score::{score, weekly_used};
use crate::alloc::sessions::reserve;
use crate::clock::now_ms;
use crate::config::{Account, Pool, Snapshot};
use crate::notify::Notifier;
use crate::resilience::health::Availability;
use crate::resilience::limits::QueueError;

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
            n => snap.pools.get(self.primary)?.fallback.get(n - 1).copied(),
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
}

/// Why no account can take the attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPick {
    /// Every account is open, cooling down, broken, over budget or at its rate limit.
    /// `retry_after`: when the first may be available again; `rate_limited`: all are.
    Unavailable { retry_after: Duration, rate_limited: bool },
    /// Every account with room was full, its queue too.
    QueueFull,
    /// Waited in a queue for `queue_timeout` without getting a slot.
    QueueTimeout,
}

/// What is known about the unavailable accounts met on the walk.
#[derive(Default)]
struct Unavailable {
    earliest: Option<Instant>,
    all_rate_limited: bool,
    any: bool,
}

impl Unavailable {
    fn note(&mut self, until: Option<Instant>, rate_limited: bool) {
        self.all_rate_limited = if self.any {
            self.all_rate_limited && rate_limited
        } else {
            rate_limited
        };
        self.any = true;
        if let Some(u) = until {
            self.earliest = Some(self.earliest.map_or(u, |e| e.min(u)));
        }
    }
}

fn over_rate(account: &Account, ms: i64) -> bool {
    let (l, s) = (&account.limits, &account.state);
    l.rpm.is_some_and(|rpm| s.sent.count(ms) >= f64::from(rpm))
        || l.tpm.is_some_and(|tpm| s.ledger.view(ms).tokens_last_minute >= tpm)
}

/// Past 100% of its weekly budget: no requests at all.
fn over_budget(account: &Account, view: &crate::usage::ledger::LedgerView) -> bool {
    account.budget.is_some_and(|b| b.weekly_usd > 0.0) && weekly_used(view, account.budget.as_ref()) >= 1.0
}

/// Whether `account` could take an attempt now, and if not, until when (the one predicate both
/// ranking and retry decisions use).
fn serveable(account: &Account, now: Instant, ms: i64, gone: &mut Unavailable) -> bool {
    if over_rate(account, ms) {
        gone.note(Some(now + Duration::from_secs(1)), true);
        return false;
    }
    if let Availability::Unavailable { until, rate_limited } = account.state.health.peek(now) {
        gone.note(until, rate_limited);
        return false;
    }
    if over_budget(account, &account.state.ledger.view(ms)) {
        gone.note(None, false);
        return false;
    }
    true
}

/// A ranked candidate.
struct Candidate {
    index: usize,
    score: f64,
    /// Under its budget threshold: may take a new session.
    bindable: bool,
}

/// Untried accounts that could serve now, best first (ties rotate).
fn rank(pool: &Pool, tried: u64, gone: &mut Unavailable) -> Vec<Candidate> {
    let (now, ms) = (Instant::now(), now_ms());
    let n = pool.accounts.len();
    let start = if n == 0 {
        0
    } else {
        pool.next.fetch_add(1, Ordering::Relaxed) % n
    };
    let mut out = Vec::with_capacity(n);
    for i in (0..n).map(|i| (start + i) % n).filter(|i| tried & (1 << i) == 0) {
        let a = &pool.accounts[i];
        if !serveable(a, now, ms, gone) {
            continue;
        }
        let view = a.state.ledger.view(ms);
        let sessions = a.state.sessions.load(Ordering::Acquire);
        let bindable = a.budget.is_none_or(|b| weekly_used(&view, Some(&b)) < b.threshold);
        out.push(Candidate {
            index: i,
            score: score(&view, a.budget.as_ref(), sessions, a.weight),
            bindable,
        });
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score)); // stable: equal scores keep the rotation
    out
}

/// A free slot on `account`, and its health claimed (the probe when half-open).
fn take(account: &Account) -> Option<(OwnedSemaphorePermit, bool)> {
    let permit = account.state.slots.try_take()?;
    match account.state.health.check(Instant::now()) {
        Availability::Available => Some((permit, false)),
        Availability::Probe => Some((permit, true)),
        Availability::Unavailable { .. } => None,
    }
}

/// Choose the account for the next attempt, waiting in a queue if that is what it takes.
pub async fn pick(
    notifier: &Notifier,
    snap: &Snapshot,
    walk: &mut Walk,
    session: Option<&str>,
) -> Result<Pick, NoPick> {
    let webhook_on = snap.webhook.is_some();
    let mut gone = Unavailable::default();
    let mut queue_full = false;
    while let Some(pi) = walk.pool_at(snap, walk.step) {
        let pool = &snap.pools[pi];
        let ranked = rank(pool, walk.tried, &mut gone);
        let mut queue_at = None;
        if let Some(id) = session {
            if let Some((ai, permit, probe)) = bind(notifier, webhook_on, pool, &ranked, id, walk.tried, &mut queue_at)
            {
                return Ok(Pick {
                    pool: pi,
                    account: ai,
                    permit,
                    probe,
                });
            }
        }
        for c in &ranked {
            let account = &pool.accounts[c.index];
            if let Some((permit, probe)) = take(account) {
                return Ok(Pick {
                    pool: pi,
                    account: c.index,
                    permit,
                    probe,
                });
            }
            if account.state.slots.can_queue(account.limits.max_queue as usize) {
                queue_at.get_or_insert(c.index);
            } else {
                queue_full = true;
            }
        }
        if let Some(ai) = queue_at {
            let account = &pool.accounts[ai];
            tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, account = &*account.name, queued = account.state.slots.queued(), "waiting for a slot");
            match account
                .state
                .slots
                .wait(account.limits.max_queue as usize, account.limits.queue_timeout)
                .await
            {
                Ok(permit) => match account.state.health.check(Instant::now()) {
                    Availability::Available => {
                        return Ok(Pick {
                            pool: pi,
                            account: ai,
                            permit,
                            probe: false,
                        })
                    }
                    Availability::Probe => {
                        return Ok(Pick {
                            pool: pi,
                            account: ai,
                            permit,
                            probe: true,
                        })
                    }
                    // It went bad while we waited: look again, without it.
                    Availability::Unavailable { .. } => {
                        walk.tried |= 1 << ai;
                        continue;
                    }
                },
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
            notifier.fallback_used(webhook_on, &pool.name, &snap.pools[next].name);
        }
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

/// Serve `id` from its bound account, or (re)bind it atomically. `None`: serve unbound.
fn bind(
    notifier: &Notifier,
    webhook_on: bool,
    pool: &Pool,
    ranked: &[Candidate],
    id: &str,
    tried: u64,
    queue_at: &mut Option<usize>,
) -> Option<(usize, OwnedSemaphorePermit, bool)> {
    let ms = now_ms();
    let mut table = pool.state.sessions.lock();
    let bound = table.touch(id, ms);
    let bound_ix = bound.as_ref().and_then(|b| {
        pool.accounts
            .iter()
            .position(|a| Arc::ptr_eq(&a.state.sessions, &b.count))
    });
    if let Some(ai) = bound_ix {
        if ranked.iter().any(|c| c.index == ai) {
            if let Some((permit, probe)) = take(&pool.accounts[ai]) {
                return Some((ai, permit, probe));
            }
        } else if tried & (1 << ai) != 0 && pool.accounts[ai].state.health.could_serve(Instant::now()) {
            // This request's earlier attempt failed there, but the account still serves: a
            // retry goes elsewhere without moving the session.
            return None;
        }
    }
    let mut rebound = None;
    let mut picked = None;
    for c in ranked.iter().filter(|c| c.bindable && Some(c.index) != bound_ix) {
        let account = &pool.accounts[c.index];
        if !reserve(&account.state.sessions, pool.session.max_per_account) {
            continue;
        }
        match take(account) {
            Some((permit, probe)) => {
                table.bind(id, Arc::clone(&account.name), Arc::clone(&account.state.sessions), ms);
                rebound = bound
                    .as_ref()
                    .map(|old| (Arc::clone(&old.account), Arc::clone(&account.name)));
                picked = Some((c.index, permit, probe));
                break;
            }
            None => {
                let _ = account
                    .state
                    .sessions
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            }
        }
    }
    if picked.is_none() {
        // Nothing with room to bind: a bound account still available waits for its own slot.
        if let Some(ai) = bound_ix.filter(|ai| ranked.iter().any(|c| c.index == *ai)) {
            let a = &pool.accounts[ai];
            if a.state.slots.can_queue(a.limits.max_queue as usize) {
                *queue_at = Some(ai);
            }
        }
    }
    drop(table);
    if let Some((from, to)) = rebound {
        tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, from = &*from, to = &*to, "session re-bound");
        notifier.emit(
            webhook_on,
            crate::notify::Kind::SessionRebound,
            &pool.name,
            Some(&to),
            format!("from {from} (unavailable or full)"),
        );
    }
    picked
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
