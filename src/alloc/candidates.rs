//! The candidates of a pool for an attempt: the untried accounts that could serve now (health,
//! rpm/tpm, weekly budget), ranked by health score, and a slot taken on one of them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use crate::alloc::score::{score, weekly_used};
use crate::clock::now_ms;
use crate::config::{Account, Pool};
use crate::resilience::health::Availability;

/// What is known about the unavailable accounts met on the walk.
#[derive(Default)]
pub(super) struct Unavailable {
    pub(super) earliest: Option<Instant>,
    pub(super) all_rate_limited: bool,
    pub(super) any: bool,
}

impl Unavailable {
    pub(super) fn note(&mut self, until: Option<Instant>, rate_limited: bool) {
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
        || l.tpm.is_some_and(|tpm| s.view(ms).tokens_last_minute >= tpm)
}

/// Past 100% of its weekly budget: no requests at all.
fn over_budget(account: &Account, view: &crate::usage::ledger::LedgerView) -> bool {
    account.budget.is_some_and(|b| b.weekly_usd > 0.0) && weekly_used(view, account.budget.as_ref()) >= 1.0
}

/// Whether `account` could take an attempt now, and if not, until when (the one predicate both
/// ranking and retry decisions use).
pub(super) fn serveable(account: &Account, now: Instant, ms: i64, gone: &mut Unavailable) -> bool {
    if over_rate(account, ms) {
        gone.note(Some(now + Duration::from_secs(1)), true);
        return false;
    }
    if let Availability::Unavailable { until, rate_limited } = account.state.health.peek(now) {
        gone.note(until, rate_limited);
        return false;
    }
    if over_budget(account, &account.state.view(ms)) {
        gone.note(None, false);
        return false;
    }
    true
}

/// A ranked candidate.
pub(super) struct Candidate {
    pub(super) index: usize,
    score: f64,
    /// Under its budget threshold: may take a new session.
    pub(super) bindable: bool,
}

/// Untried accounts that could serve now, best first (ties rotate).
pub(super) fn rank(pool: &Pool, tried: u64, gone: &mut Unavailable) -> Vec<Candidate> {
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
        let view = a.state.view(ms);
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
pub(super) fn take(account: &Account) -> Option<(OwnedSemaphorePermit, bool)> {
    let permit = account.state.slots.try_take()?;
    match account.state.health.check(Instant::now()) {
        Availability::Available => Some((permit, false)),
        Availability::Probe => Some((permit, true)),
        Availability::Unavailable { .. } => None,
    }
}
