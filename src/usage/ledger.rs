//! Per-account spend and tokens in time buckets: the current UTC 5-hour block (blocks start at
//! 00, 05, 10, 15 and 20 h), a rolling 7 days, and the last 60 minutes (burn rate, tokens per
//! minute). Fixed-size rings with running totals: recording and reading are O(1); the totals are
//! summed afresh from the rings only when the hour or the minute turns.

use std::sync::Mutex;

const HOURS: usize = 7 * 24;
const MINUTES: usize = 60;
const BLOCK_HOURS: i64 = 5;

#[derive(Debug, Default, Clone, Copy)]
struct Bucket {
    /// Which hour or minute (since the epoch) this slot holds; stale slots are ignored.
    epoch: i64,
    cost: f64,
    tokens: u64,
    requests: u64,
}

struct Rings {
    hours: [Bucket; HOURS],
    minutes: [Bucket; MINUTES],
    /// Totals over the hour ring as of `hour` (`None`: to be summed again).
    hour_totals: Option<HourTotals>,
    /// Cost over the minute ring as of `minute`.
    minute_totals: Option<(i64, f64)>,
}

#[derive(Clone, Copy)]
struct HourTotals {
    hour: i64,
    week_cost: f64,
    week_tokens: u64,
    block_cost: f64,
    block_tokens: u64,
    block_requests: u64,
}

impl Rings {
    fn hour_totals(&mut self, hour: i64) -> HourTotals {
        if let Some(t) = self.hour_totals.filter(|t| t.hour == hour) {
            return t;
        }
        let block = block_start(hour);
        let mut t = HourTotals {
            hour,
            week_cost: 0.0,
            week_tokens: 0,
            block_cost: 0.0,
            block_tokens: 0,
            block_requests: 0,
        };
        for b in self
            .hours
            .iter()
            .filter(|b| b.epoch > hour - HOURS as i64 && b.epoch <= hour)
        {
            t.week_cost += b.cost;
            t.week_tokens += b.tokens;
            if b.epoch >= block {
                t.block_cost += b.cost;
                t.block_tokens += b.tokens;
                t.block_requests += b.requests;
            }
        }
        self.hour_totals = Some(t);
        t
    }

    fn minute_cost(&mut self, minute: i64) -> f64 {
        if let Some((_, cost)) = self.minute_totals.filter(|(m, _)| *m == minute) {
            return cost;
        }
        let cost = self
            .minutes
            .iter()
            .filter(|b| b.epoch > minute - MINUTES as i64 && b.epoch <= minute)
            .map(|b| b.cost)
            .sum();
        self.minute_totals = Some((minute, cost));
        cost
    }

    fn minute_tokens(&self, minute: i64) -> u64 {
        let b = &self.minutes[minute.rem_euclid(MINUTES as i64) as usize];
        if b.epoch == minute {
            b.tokens
        } else {
            0
        }
    }
}

/// Spend and tokens of one account over time.
pub struct Ledger {
    rings: Mutex<Rings>,
}

/// What the allocator and the admin API read.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct LedgerView {
    /// USD spent in the current UTC 5-hour block.
    pub block_cost: f64,
    /// Tokens used in the current UTC 5-hour block.
    pub block_tokens: u64,
    /// Requests in the current UTC 5-hour block.
    pub block_requests: u64,
    /// USD spent over the rolling 7 days (168 hours, the current one included).
    pub week_cost: f64,
    /// Tokens used over the rolling 7 days.
    pub week_tokens: u64,
    /// USD per hour over the last 60 minutes.
    pub burn_rate: f64,
    /// Tokens in the last 60 seconds.
    pub tokens_last_minute: u64,
}

/// The first hour (since the epoch) of the UTC 5-hour block containing `hour`.
fn block_start(hour: i64) -> i64 {
    let day = hour.div_euclid(24) * 24;
    day + (hour - day) / BLOCK_HOURS * BLOCK_HOURS
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            rings: Mutex::new(Rings {
                hours: [Bucket {
                    epoch: -1,
                    ..Bucket::default()
                }; HOURS],
                minutes: [Bucket {
                    epoch: -1,
                    ..Bucket::default()
                }; MINUTES],
                hour_totals: None,
                minute_totals: None,
            }),
        }
    }
}

fn add(slot: &mut Bucket, epoch: i64, cost: f64, tokens: u64, requests: u64) {
    if slot.epoch != epoch {
        *slot = Bucket {
            epoch,
            ..Bucket::default()
        };
    }
    slot.cost += cost;
    slot.tokens += tokens;
    slot.requests += requests;
}

impl Ledger {
    /// Add one request (or, when rebuilding, an aggregate of `requests`) at `at_ms`.
    pub fn record(&self, at_ms: i64, cost: f64, tokens: u64, requests: u64) {
        let (minute, hour) = (at_ms.div_euclid(60_000), at_ms.div_euclid(3_600_000));
        let Ok(mut r) = self.rings.lock() else { return };
        add(
            &mut r.hours[hour.rem_euclid(HOURS as i64) as usize],
            hour,
            cost,
            tokens,
            requests,
        );
        add(
            &mut r.minutes[minute.rem_euclid(MINUTES as i64) as usize],
            minute,
            cost,
            tokens,
            requests,
        );
        // Keep the totals running when the record falls in the hour and minute they are as of
        // (the usual case); anything else (a rebuild, a clock step) has them summed again.
        match r.hour_totals.as_mut() {
            Some(t) if t.hour == hour => {
                t.week_cost += cost;
                t.week_tokens += tokens;
                t.block_cost += cost;
                t.block_tokens += tokens;
                t.block_requests += requests;
            }
            _ => r.hour_totals = None,
        }
        match r.minute_totals.as_mut() {
            Some((m, total)) if *m == minute => *total += cost,
            _ => r.minute_totals = None,
        }
    }

    /// The account's spend and tokens as of `now_ms` (unix ms).
    pub fn view(&self, now_ms: i64) -> LedgerView {
        let (minute, hour) = (now_ms.div_euclid(60_000), now_ms.div_euclid(3_600_000));
        let Ok(mut r) = self.rings.lock() else {
            return LedgerView::default();
        };
        let t = r.hour_totals(hour);
        // Sliding minute: all of this minute, the unexpired share of the previous one.
        let within_minute = (now_ms.rem_euclid(60_000)) as f64 / 60_000.0;
        let previous = (r.minute_tokens(minute - 1) as f64 * (1.0 - within_minute)) as u64;
        LedgerView {
            block_cost: t.block_cost,
            block_tokens: t.block_tokens,
            block_requests: t.block_requests,
            week_cost: t.week_cost,
            week_tokens: t.week_tokens,
            burn_rate: r.minute_cost(minute),
            tokens_last_minute: r.minute_tokens(minute) + previous,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;
    /// 2026-11-25 00:00 UTC.
    const DAY: i64 = 1_795_564_800_000;

    #[test]
    fn blocks_start_at_0_5_10_15_20_utc() {
        let h = DAY / H;
        assert_eq!(block_start(h + 4), h, "04:xx is in the 00 block");
        assert_eq!(block_start(h + 5), h + 5);
        assert_eq!(block_start(h + 14), h + 10);
        assert_eq!(block_start(h + 23), h + 20, "the last block of the day is 20-24");
    }

    #[test]
    fn block_week_and_burn_rate() {
        let l = Ledger::default();
        let now = DAY + 12 * H + 30 * M; // 12:30
        l.record(now - 8 * 24 * H, 100.0, 1, 1); // older than a week
        l.record(now - 3 * 24 * H, 5.0, 50, 1); // in the week
        l.record(DAY + 9 * H, 2.0, 20, 1); // 09:00, previous block
        l.record(DAY + 10 * H + 5 * M, 1.5, 15, 1); // 10:05, this block, >60 min ago
        l.record(now - 10 * M, 0.25, 3, 1);
        l.record(now - 30 * 1000, 0.5, 7, 1);
        let v = l.view(now);
        assert!((v.week_cost - 9.25).abs() < 1e-9, "{v:?}");
        assert_eq!(v.week_tokens, 95);
        assert!((v.block_cost - 2.25).abs() < 1e-9, "10:00 block: {v:?}");
        assert_eq!((v.block_tokens, v.block_requests), (25, 3));
        assert!((v.burn_rate - 0.75).abs() < 1e-9, "last 60 min: {v:?}");
        assert_eq!(v.tokens_last_minute, 7, "{v:?}");
    }

    /// The view summed from scratch, as the ledger did before it kept running totals.
    fn summed(l: &Ledger, now: i64) -> LedgerView {
        let (minute, hour) = (now.div_euclid(M), now.div_euclid(H));
        let block = block_start(hour);
        let r = l.rings.lock().expect("lock");
        let mut v = LedgerView::default();
        for b in r
            .hours
            .iter()
            .filter(|b| b.epoch > hour - HOURS as i64 && b.epoch <= hour)
        {
            v.week_cost += b.cost;
            v.week_tokens += b.tokens;
            if b.epoch >= block {
                v.block_cost += b.cost;
                v.block_tokens += b.tokens;
                v.block_requests += b.requests;
            }
        }
        let within = now.rem_euclid(M) as f64 / M as f64;
        for b in r
            .minutes
            .iter()
            .filter(|b| b.epoch > minute - MINUTES as i64 && b.epoch <= minute)
        {
            v.burn_rate += b.cost;
            if b.epoch == minute {
                v.tokens_last_minute += b.tokens;
            } else if b.epoch == minute - 1 {
                v.tokens_last_minute += (b.tokens as f64 * (1.0 - within)) as u64;
            }
        }
        v
    }

    #[test]
    fn running_totals_match_a_full_sum_as_time_passes() {
        let l = Ledger::default();
        let mut now = DAY + 3 * H;
        let mut seed = 7u64;
        for i in 0..20_000u64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Mostly small steps, sometimes a jump of hours; now and then a late record.
            now += match seed >> 60 {
                0 => 3 * H + (seed >> 20) as i64 % H,
                1..=3 => (seed >> 24) as i64 % (5 * M),
                _ => (seed >> 28) as i64 % 2_000,
            };
            let at = if seed % 17 == 0 { now - 90 * M } else { now };
            l.record(at, (seed % 1000) as f64 / 1000.0, seed % 500, 1);
            if i % 3 == 0 {
                let (fast, full) = (l.view(now), summed(&l, now));
                let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.abs().max(1.0);
                assert!(
                    close(fast.week_cost, full.week_cost)
                        && close(fast.block_cost, full.block_cost)
                        && close(fast.burn_rate, full.burn_rate)
                        && (
                            fast.week_tokens,
                            fast.block_tokens,
                            fast.block_requests,
                            fast.tokens_last_minute
                        ) == (
                            full.week_tokens,
                            full.block_tokens,
                            full.block_requests,
                            full.tokens_last_minute
                        ),
                    "step {i}: running {fast:?} vs summed {full:?}"
                );
            }
        }
    }

    #[test]
    fn slots_are_reused_when_time_moves_on() {
        let l = Ledger::default();
        l.record(DAY, 1.0, 1, 1);
        l.record(DAY + 7 * 24 * H, 2.0, 2, 1); // same ring slot, a week later
        let v = l.view(DAY + 7 * 24 * H);
        assert!((v.week_cost - 2.0).abs() < 1e-9, "the old hour was replaced: {v:?}");
        assert_eq!(
            Ledger::default().view(DAY),
            LedgerView::default(),
            "empty ledger reads zero"
        );
    }

    proptest::proptest! {
        /// Whatever the records (in time order, as requests end), the ledger's figures equal the
        /// sums of those records that fall in each window.
        #[test]
        fn totals_equal_the_sum_of_their_records(
            start in 0i64..(7 * 24 * H),
            steps in proptest::collection::vec((0i64..(3 * H), 0u32..10_000, 0u64..5_000), 1..200),
        ) {
            let l = Ledger::default();
            let mut at = DAY + start;
            let mut records = Vec::new();
            for (step, cents, tokens) in steps {
                at += step / 7; // mostly minutes apart, sometimes hours
                let cost = f64::from(cents) / 100.0;
                l.record(at, cost, tokens, 1);
                records.push((at, cost, tokens));
            }
            let now = at;
            let (minute, hour) = (now.div_euclid(M), now.div_euclid(H));
            let block = block_start(hour);
            let mut want = LedgerView::default();
            for &(t, cost, tokens) in &records {
                let (m, h) = (t.div_euclid(M), t.div_euclid(H));
                if h > hour - HOURS as i64 {
                    want.week_cost += cost;
                    want.week_tokens += tokens;
                }
                if h >= block {
                    want.block_cost += cost;
                    want.block_tokens += tokens;
                    want.block_requests += 1;
                }
                if m > minute - MINUTES as i64 {
                    want.burn_rate += cost;
                }
                if m == minute {
                    want.tokens_last_minute += tokens;
                }
            }
            // tpm's sliding minute: all of this one, the unexpired share of the previous one.
            let previous: u64 = records.iter().filter(|r| r.0.div_euclid(M) == minute - 1).map(|r| r.2).sum();
            let share = 1.0 - now.rem_euclid(M) as f64 / M as f64;
            want.tokens_last_minute += (previous as f64 * share) as u64;
            let got = l.view(now);
            let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.abs().max(1.0);
            proptest::prop_assert!(
                close(got.week_cost, want.week_cost) && close(got.block_cost, want.block_cost)
                    && close(got.burn_rate, want.burn_rate),
                "costs: got {:?}, want {:?}", got, want
            );
            proptest::prop_assert_eq!(
                (got.week_tokens, got.block_tokens, got.block_requests, got.tokens_last_minute),
                (want.week_tokens, want.block_tokens, want.block_requests, want.tokens_last_minute),
                "counts"
            );
        }
    }
}
