//! The retry budget of a pool (after linkerd): over a sliding 10-second window, retries may add at
//! most `ratio` of the requests, plus a small floor, so an outage cannot multiply the load.

use std::sync::Mutex;

const WINDOW_SECS: i64 = 10;
/// Retries always allowed per window, so a quiet pool can still retry.
const FLOOR: f64 = 10.0;

#[derive(Default, Clone, Copy)]
struct Second {
    at: i64,
    requests: u32,
    retries: u32,
}

/// A pool's retry budget: requests and retries counted per second over the last 10 seconds.
#[derive(Default)]
pub struct RetryBudget {
    seconds: Mutex<[Second; WINDOW_SECS as usize]>,
}

impl RetryBudget {
    fn slot(secs: &mut [Second; WINDOW_SECS as usize], now_s: i64) -> &mut Second {
        let s = &mut secs[now_s.rem_euclid(WINDOW_SECS) as usize];
        if s.at != now_s {
            *s = Second {
                at: now_s,
                ..Second::default()
            };
        }
        s
    }

    /// A new request entered the pool.
    pub fn deposit(&self, now_ms: i64) {
        if let Ok(mut secs) = self.seconds.lock() {
            Self::slot(&mut secs, now_ms.div_euclid(1000)).requests += 1;
        }
    }

    /// May a retry be made now? Counts it when it may.
    pub fn try_withdraw(&self, ratio: f64, now_ms: i64) -> bool {
        let now_s = now_ms.div_euclid(1000);
        let Ok(mut secs) = self.seconds.lock() else {
            return false;
        };
        let (mut requests, mut retries) = (0u64, 0u64);
        for s in secs.iter().filter(|s| s.at > now_s - WINDOW_SECS && s.at <= now_s) {
            requests += u64::from(s.requests);
            retries += u64::from(s.retries);
        }
        if (retries as f64) < FLOOR + ratio * requests as f64 {
            Self::slot(&mut secs, now_s).retries += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_held_to_the_ratio_plus_the_floor() {
        let b = RetryBudget::default();
        let t = 1_000_000;
        for _ in 0..100 {
            b.deposit(t);
        }
        let allowed = (0..1000).filter(|_| b.try_withdraw(0.2, t)).count();
        assert_eq!(allowed, 30, "20% of 100 requests plus a floor of 10");
        assert!(!b.try_withdraw(0.2, t + 5_000), "still spent 5 s later");
        assert!(b.try_withdraw(0.2, t + 10_000), "the window slid past the burst");
    }

    #[test]
    fn a_quiet_pool_can_still_retry() {
        let b = RetryBudget::default();
        assert!(b.try_withdraw(0.2, 5_000), "the floor allows retries without traffic");
    }
}
