//! Sticky sessions at pick time: a session goes to the account it is bound to when that one has a
//! free slot; else it is (re)bound, atomically under the session table's lock, to the best
//! account with room for another session and under its budget threshold.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;

use super::candidates::{take, Candidate};
use super::sessions::{reserve, Locked};
use crate::clock::now_ms;
use crate::config::Pool;
use crate::notify::Notifier;

/// Serve `id` from its bound account, or (re)bind it atomically. `None`: serve unbound.
pub(super) fn bind(
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
    let picked = rebind(pool, ranked, bound_ix, &mut table, id, ms);
    if picked.is_none() {
        // Nothing with room to bind: a bound account still available waits for its own slot.
        if let Some(ai) = bound_ix.filter(|ai| ranked.iter().any(|c| c.index == *ai)) {
            let a = &pool.accounts[ai];
            if a.state.slots.can_queue(a.limits.max_queue as usize) {
                *queue_at = Some(ai);
            }
        }
    }
    let rebound = picked
        .as_ref()
        .zip(bound.as_ref())
        .map(|((ai, _, _), old)| (Arc::clone(&old.account), Arc::clone(&pool.accounts[*ai].name)));
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

/// Bind `id` to the best bindable account (other than `bound`) with room for another session and
/// a free slot.
fn rebind(
    pool: &Pool,
    ranked: &[Candidate],
    bound: Option<usize>,
    table: &mut Locked<'_>,
    id: &str,
    ms: i64,
) -> Option<(usize, OwnedSemaphorePermit, bool)> {
    for c in ranked.iter().filter(|c| c.bindable && Some(c.index) != bound) {
        let account = &pool.accounts[c.index];
        if !reserve(&account.state.sessions, pool.session.max_per_account) {
            continue;
        }
        match take(account) {
            Some((permit, probe)) => {
                table.bind(id, Arc::clone(&account.name), Arc::clone(&account.state.sessions), ms);
                return Some((c.index, permit, probe));
            }
            None => {
                let _ = account
                    .state
                    .sessions
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            }
        }
    }
    None
}

/// Bind a session the upstream named (the claude-cli service starts one per run) to the account
/// that served it, when it has room for another; false when it was not bound.
pub fn adopt(pool: &Pool, account: &crate::config::Account, id: &str) -> bool {
    if !reserve(&account.state.sessions, pool.session.max_per_account) {
        return false;
    }
    let mut table = pool.state.sessions.lock();
    table.bind(
        id,
        Arc::clone(&account.name),
        Arc::clone(&account.state.sessions),
        now_ms(),
    );
    true
}
