//! Limits: per-account concurrency with a bounded FIFO queue, per-minute sliding windows (account
//! rpm, client rpm), and a per-client limiter whose memory is bounded.

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Concurrency slots of one account, waited for in FIFO order.
pub struct Slots {
    sem: Arc<Semaphore>,
    capacity: AtomicUsize,
    waiting: AtomicUsize,
}

/// Why no slot was had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// `max_queue` requests were already waiting (503 `queue_full`).
    Full,
    /// No slot came free within `queue_timeout` (503 `queue_timeout`).
    Timeout,
}

impl Slots {
    /// `capacity` slots (the account's `max_concurrent`), nobody queued.
    pub fn new(capacity: usize) -> Self {
        Slots {
            sem: Arc::new(Semaphore::new(capacity)),
            capacity: AtomicUsize::new(capacity),
            waiting: AtomicUsize::new(0),
        }
    }

    /// A free slot now, if there is one (and nobody is queued ahead).
    pub fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        if self.waiting.load(Ordering::Acquire) > 0 {
            return None;
        }
        Arc::clone(&self.sem).try_acquire_owned().ok()
    }

    /// Whether the queue has room.
    pub fn can_queue(&self, max_queue: usize) -> bool {
        self.waiting.load(Ordering::Acquire) < max_queue
    }

    /// Wait in line for a slot, at most `timeout`; refused at once when `max_queue` are waiting.
    pub async fn wait(&self, max_queue: usize, timeout: Duration) -> Result<OwnedSemaphorePermit, QueueError> {
        /// Leaves the queue however the wait ends (also when the request is dropped).
        struct InQueue<'a>(&'a AtomicUsize);
        impl Drop for InQueue<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _in_queue = InQueue(&self.waiting);
        if queued >= max_queue {
            return Err(QueueError::Full);
        }
        let got = tokio::time::timeout(timeout, Arc::clone(&self.sem).acquire_owned()).await;
        match got {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(QueueError::Timeout),
        }
    }

    /// Slots held by requests in flight.
    pub fn in_use(&self) -> usize {
        self.capacity
            .load(Ordering::Acquire)
            .saturating_sub(self.sem.available_permits())
    }

    /// Slots in all (the current `max_concurrent`).
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Acquire)
    }

    /// Requests waiting for a slot.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Follow a changed `max_concurrent` (config reload).
    pub fn resize(&self, capacity: usize) {
        let old = self.capacity.swap(capacity, Ordering::AcqRel);
        if capacity > old {
            self.sem.add_permits(capacity - old);
        } else if capacity < old {
            // Slots in use are taken back as they are released.
            let mut left = old - capacity;
            left -= self.sem.forget_permits(left);
            if left > 0 {
                let sem = Arc::clone(&self.sem);
                tokio::spawn(async move {
                    if let Ok(p) = sem.acquire_many_owned(left as u32).await {
                        p.forget();
                    }
                });
            }
        }
    }
}

/// Seconds a window counts: the current one and the 60 before it, so that no span of 60 seconds
/// (aligned to a second or not) ever holds more than the limit; the price is at most one second
/// of extra strictness.
const SPAN: usize = 61;

/// A sliding one-minute count in one-second buckets (260 bytes, whatever the rate).
#[derive(Debug, Default)]
pub struct Window {
    inner: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    /// The latest second counted into (unix seconds); older buckets are cleared on the way.
    second: i64,
    counts: [u32; SPAN],
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            second: i64::MIN,
            counts: [0; SPAN],
        }
    }
}

impl Buckets {
    /// Move to `second`, clearing the buckets that fell out of the window. A clock that steps
    /// back counts into the latest second.
    fn roll(&mut self, second: i64) {
        if second <= self.second {
            return;
        }
        let gap = second.saturating_sub(self.second);
        if gap >= SPAN as i64 {
            self.counts = [0; SPAN];
        } else {
            for s in self.second + 1..=second {
                self.counts[s.rem_euclid(SPAN as i64) as usize] = 0;
            }
        }
        self.second = second;
    }

    fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// Milliseconds from `now_ms` until the oldest counted request leaves the window.
    fn until_oldest_leaves(&self, now_ms: i64) -> u64 {
        let oldest = (self.second - SPAN as i64 + 1..=self.second)
            .find(|s| self.counts[s.rem_euclid(SPAN as i64) as usize] > 0)
            .unwrap_or(self.second);
        u64::try_from((oldest + SPAN as i64) * 1000 - now_ms)
            .unwrap_or(0)
            .max(1)
    }
}

impl Window {
    /// Count `n` at `now_ms`.
    pub fn add(&self, n: u64, now_ms: i64) {
        if let Ok(mut b) = self.inner.lock() {
            b.roll(now_ms.div_euclid(1000));
            let i = b.second.rem_euclid(SPAN as i64) as usize;
            b.counts[i] = b.counts[i].saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        }
    }

    /// The count over the last minute.
    pub fn count(&self, now_ms: i64) -> f64 {
        let Ok(mut b) = self.inner.lock() else {
            return 0.0;
        };
        b.roll(now_ms.div_euclid(1000));
        b.total() as f64
    }

    /// Count one if that stays within `limit`; else the milliseconds until it would.
    pub fn try_take(&self, limit: u64, now_ms: i64) -> Result<u64, u64> {
        let Ok(mut b) = self.inner.lock() else {
            return Err(1000);
        };
        b.roll(now_ms.div_euclid(1000));
        let used = b.total();
        if used < limit {
            let i = b.second.rem_euclid(SPAN as i64) as usize;
            b.counts[i] = b.counts[i].saturating_add(1);
            return Ok(limit - used - 1);
        }
        Err(b.until_oldest_leaves(now_ms))
    }
}

/// Who a client is: its token's name, else its address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A client that sent a token: the token's name.
    Named(Arc<str>),
    /// A client without a token: its IP address.
    Addr(IpAddr),
    /// Everyone past the cap on distinct clients shares this one.
    Overflow,
}

/// Per-client windows, at most `cap` of them.
pub struct ClientLimiter<K: Eq + Hash = ClientKey> {
    windows: DashMap<K, Window>,
    cap: usize,
}

/// A limited client's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The request may go on.
    pub allowed: bool,
    /// Requests per minute allowed (`clients.limit.rpm`), for `x-ratelimit-limit`.
    pub limit: u64,
    /// Requests left in the current window, for `x-ratelimit-remaining`.
    pub remaining: u64,
    /// Milliseconds until a request would be allowed (0 when allowed).
    pub retry_after_ms: u64,
}

impl ClientLimiter<ClientKey> {
    /// A limiter that tracks at most `cap` distinct clients; those past it share
    /// [`ClientKey::Overflow`].
    pub fn new(cap: usize) -> Self {
        ClientLimiter {
            windows: DashMap::new(),
            cap,
        }
    }

    /// Count one request of `key` against `limit` per minute at `now_ms` (unix ms), unless it is
    /// over.
    pub fn check(&self, key: ClientKey, limit: u64, now_ms: i64) -> Verdict {
        let key = if self.windows.contains_key(&key) || self.room(now_ms) {
            key
        } else {
            ClientKey::Overflow
        };
        let w = self.windows.entry(key).or_default();
        match w.try_take(limit, now_ms) {
            Ok(remaining) => Verdict {
                allowed: true,
                limit,
                remaining,
                retry_after_ms: 0,
            },
            Err(wait) => Verdict {
                allowed: false,
                limit,
                remaining: 0,
                retry_after_ms: wait,
            },
        }
    }

    /// Room for one more client, evicting idle ones (nothing counted in two minutes) if needed.
    fn room(&self, now_ms: i64) -> bool {
        if self.windows.len() < self.cap {
            return true;
        }
        self.windows.retain(|_, w| w.count(now_ms) > 0.0);
        self.windows.len() < self.cap
    }

    /// Clients tracked now.
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_564_800_000; // a whole minute

    #[test]
    fn the_window_slides_by_the_second() {
        let w = Window::default();
        w.add(60, T);
        assert_eq!(w.count(T + 59_000), 60.0, "within the minute");
        assert_eq!(w.count(T + 60_999), 60.0, "the 61st second still counts (conservative)");
        assert_eq!(w.count(T + 61_000), 0.0, "gone once its second left the window");
    }

    #[test]
    fn try_take_refuses_at_the_limit_and_says_when() {
        let w = Window::default();
        for i in 0..10 {
            assert_eq!(w.try_take(10, T + i), Ok(9 - i as u64), "remaining after {i}");
        }
        let wait = w.try_take(10, T + 10).expect_err("at the limit");
        assert_eq!(wait, 60_990, "until the first second's requests leave the window");
        assert!(w.try_take(10, T + 10 + 60_989).is_err(), "not a millisecond earlier");
        assert!(w.try_take(10, T + 10 + 60_990).is_ok(), "and then it is allowed");
    }

    proptest::proptest! {
        /// In no span of 60 seconds does the window admit more than its limit, and a refusal's
        /// wait is exact: asking again after it is admitted.
        #[test]
        fn never_more_than_the_limit_in_any_minute(
            limit in 1u64..20,
            steps in proptest::collection::vec((0i64..4_000, proptest::bool::ANY), 1..400),
        ) {
            let w = Window::default();
            let mut now = T + 123;
            let mut admitted: Vec<i64> = Vec::new();
            for (step, retry_at_wait) in steps {
                now += step;
                match w.try_take(limit, now) {
                    Ok(_) => admitted.push(now),
                    Err(wait) => {
                        proptest::prop_assert!(wait >= 1, "a refusal waits");
                        if retry_at_wait {
                            now += wait as i64;
                            proptest::prop_assert!(w.try_take(limit, now).is_ok(), "admitted after its wait");
                            admitted.push(now);
                        }
                    }
                }
                let last = *admitted.last().unwrap_or(&now);
                let in_minute = admitted.iter().filter(|&&t| t > last - 60_000).count() as u64;
                proptest::prop_assert!(in_minute <= limit, "{in_minute} admitted within 60 s of {last}, limit {limit}");
            }
        }
    }

    #[test]
    fn a_flood_of_clients_cannot_grow_the_limiter() {
        let l = ClientLimiter::new(100);
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            l.check(ClientKey::Addr(ip), 1000, T);
        }
        assert!(l.len() <= 101, "bounded: {}", l.len());
        let late = l.check(ClientKey::Named("late".into()), 1000, T);
        assert!(
            !late.allowed,
            "past the cap, newcomers share one window, which the flood has used up"
        );
        assert!(l.len() <= 101);
        let later = T + 3 * 60_000;
        assert!(l.check(ClientKey::Named("fresh".into()), 5, later).allowed);
        assert!(l.len() <= 3, "idle clients evicted: {}", l.len());
    }

    #[tokio::test]
    async fn slots_queue_in_order_and_time_out() {
        let s = Arc::new(Slots::new(1));
        let held = s.try_take().expect("free slot");
        assert!(s.try_take().is_none(), "full");
        let waiter = {
            let s = Arc::clone(&s);
            tokio::spawn(async move { s.wait(1, Duration::from_secs(5)).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(s.queued(), 1);
        assert_eq!(
            s.wait(1, Duration::from_secs(5)).await.err(),
            Some(QueueError::Full),
            "queue of one is full"
        );
        drop(held);
        assert_eq!(waiter.await.ok(), Some(Ok(())), "the queued request gets the slot");
        let _held = s.try_take().expect("free again");
        assert_eq!(
            s.wait(1, Duration::from_millis(30)).await.err(),
            Some(QueueError::Timeout)
        );
        let abandoned = tokio::time::timeout(Duration::from_millis(10), s.wait(5, Duration::from_secs(5))).await;
        assert!(
            abandoned.is_err() && s.queued() == 0,
            "a dropped waiter leaves the queue"
        );
        s.resize(3);
        assert_eq!(s.in_use(), 1, "one of three in use");
        assert!(s.try_take().is_some(), "resized up");
    }
}
