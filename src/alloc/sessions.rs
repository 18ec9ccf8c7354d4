//! The session table of a pool: session id -> the account it is bound to. Bounded (least
//! recently used sessions are evicted beyond the cap), idle after `idle_after`, dropped after
//! `expire_after`. All changes happen under one short lock, so binding is atomic: concurrent
//! first requests of a session bind it once, and concurrent new sessions never put more than
//! `max_per_account` on an account. Each account's count of bound sessions is kept with it.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

/// Where a session is bound.
#[derive(Clone)]
pub struct Binding {
    /// The account's name.
    pub account: Arc<str>,
    /// The account's count of bound sessions (it identifies the account's state too).
    pub count: Arc<AtomicU32>,
    /// When the session last had a request, unix ms.
    pub last_seen_ms: i64,
}

/// A pool's session table: session id to the account it is bound to, least recently used first out
/// past `max_sessions`.
pub struct Sessions {
    table: Mutex<LruCache<Box<str>, Binding>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            table: Mutex::new(LruCache::sparse(cap(100_000))),
        }
    }
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n.max(1)).unwrap_or(NonZeroUsize::MIN)
}

fn release(b: &Binding) {
    let _ = b
        .count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
}

/// The table, locked. Every binding change goes through here.
pub struct Locked<'a> {
    table: MutexGuard<'a, LruCache<Box<str>, Binding>>,
}

/// Count one more session on `count` if that stays within `max`.
pub fn reserve(count: &AtomicU32, max: u32) -> bool {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
        .is_ok()
}

impl Sessions {
    /// Lock the table: every binding change goes through the returned guard.
    pub fn lock(&self) -> Locked<'_> {
        Locked {
            table: self.table.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Follow a changed `max_sessions`.
    pub fn set_capacity(&self, n: usize) {
        let mut l = self.lock();
        while l.table.len() > n.max(1) {
            if let Some((_, b)) = l.table.pop_lru() {
                release(&b);
            }
        }
        l.table.resize(cap(n));
    }

    /// Drop sessions not seen since `before_ms`.
    pub fn expire(&self, before_ms: i64) -> usize {
        let mut l = self.lock();
        let mut dropped = 0;
        while l.table.peek_lru().is_some_and(|(_, b)| b.last_seen_ms < before_ms) {
            if let Some((_, b)) = l.table.pop_lru() {
                release(&b);
                dropped += 1;
            }
        }
        dropped
    }

    /// Sessions remembered now.
    pub fn len(&self) -> usize {
        self.lock().table.len()
    }

    /// Whether no session is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (id, account, last seen) of every session, most recent first.
    pub fn list(&self) -> Vec<(String, Arc<str>, i64)> {
        self.lock()
            .table
            .iter()
            .map(|(k, b)| (k.to_string(), Arc::clone(&b.account), b.last_seen_ms))
            .collect()
    }
}

impl Locked<'_> {
    /// The binding of `id`, marked as seen now.
    pub fn touch(&mut self, id: &str, now_ms: i64) -> Option<Binding> {
        let b = self.table.get_mut(id)?;
        b.last_seen_ms = now_ms;
        Some(b.clone())
    }

    /// Bind `id` to an account whose count the caller already reserved; a previous binding is
    /// released, and so is a session evicted to make room.
    pub fn bind(&mut self, id: &str, account: Arc<str>, count: Arc<AtomicU32>, now_ms: i64) {
        let binding = Binding {
            account,
            count,
            last_seen_ms: now_ms,
        };
        if let Some(old) = self.table.get_mut(id) {
            release(old);
            *old = binding;
            return;
        }
        if let Some((_, evicted)) = self.table.push(id.into(), binding) {
            release(&evicted);
        }
    }

    /// Idle sessions of `account` (not seen since `idle_before_ms`), least recent first.
    pub fn idle_of(&self, account: &str, idle_before_ms: i64, max: usize) -> Vec<String> {
        self.table
            .iter()
            .rev()
            .filter(|(_, b)| &*b.account == account && b.last_seen_ms < idle_before_ms)
            .take(max)
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// Move a session to another account without touching its recency.
    pub fn rebind_quietly(&mut self, id: &str, account: Arc<str>, count: Arc<AtomicU32>) -> bool {
        let Some(b) = self.table.peek_mut(id) else { return false };
        release(b);
        b.account = account;
        b.count = count;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Account {
        sessions: Arc<AtomicU32>,
    }

    fn account() -> Account {
        Account {
            sessions: Arc::new(AtomicU32::new(0)),
        }
    }

    #[test]
    fn binding_counts_follow_rebinds_evictions_and_expiry() {
        let s = Sessions::default();
        s.set_capacity(2);
        let (a, b) = (account(), account());
        let mut l = s.lock();
        for (id, who) in [("s1", &a), ("s2", &a)] {
            assert!(reserve(&who.sessions, 15));
            l.bind(id, "a".into(), Arc::clone(&who.sessions), 1);
        }
        assert_eq!(a.sessions.load(Ordering::Acquire), 2);
        assert!(reserve(&b.sessions, 15));
        l.bind("s1", "b".into(), Arc::clone(&b.sessions), 2);
        assert_eq!(
            (a.sessions.load(Ordering::Acquire), b.sessions.load(Ordering::Acquire)),
            (1, 1),
            "rebind moves the count"
        );
        assert!(reserve(&b.sessions, 15));
        l.bind("s3", "b".into(), Arc::clone(&b.sessions), 3);
        assert!(
            l.touch("s2", 4).is_none(),
            "s2 was least recently used: evicted at the cap"
        );
        assert_eq!(
            (a.sessions.load(Ordering::Acquire), b.sessions.load(Ordering::Acquire)),
            (0, 2),
            "evicted session released"
        );
        drop(l);
        assert_eq!(s.expire(3), 1, "s1 last seen at 2 expires");
        assert_eq!(b.sessions.load(Ordering::Acquire), 1);
    }

    #[test]
    fn reserve_never_passes_the_cap_under_contention() {
        let count = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = Arc::clone(&count);
                std::thread::spawn(move || (0..1000).filter(|_| reserve(&c, 15)).count())
            })
            .collect();
        let granted: usize = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        assert_eq!((granted, count.load(Ordering::Acquire)), (15, 15));
    }
}
