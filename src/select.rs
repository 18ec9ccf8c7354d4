//! Account selection: which account of a pool serves the next attempt. Each account is tried at
//! most once per request; among the untried ones the choice rotates.

use std::sync::atomic::Ordering;

use crate::config::Pool;

/// The next untried account, or `None` when every account has been tried.
pub fn pick(pool: &Pool, tried: u64) -> Option<usize> {
    let n = pool.accounts.len();
    if n == 0 {
        return None;
    }
    let start = pool.next.fetch_add(1, Ordering::Relaxed) % n;
    (0..n)
        .map(|i| (start + i) % n)
        .find(|&i| tried & (1 << i) == 0)
}

/// Whether any account is left to try.
pub fn any_untried(pool: &Pool, tried: u64) -> bool {
    (0..pool.accounts.len()).any(|i| tried & (1 << i) == 0)
}
