//! The writes after a request, queued and sent by the background service without holding the
//! request: its usage on the account's shared ledger (which answers with the account's totals
//! across all replicas and the budget thresholds this request reached first), and account
//! health that travels (a cooldown, an open breaker, a broken key).

use std::sync::Arc;
use std::time::Duration;

use super::{Op, Shared};
use crate::usage::ledger::LedgerView;

/// The script (loaded once per connection; run by its SHA).
pub(super) const SCRIPT: &str = include_str!("record.lua");

/// Health that travels: set the account's mark, unless one that lasts longer is already there
/// (a short cooldown never shortens an open breaker or a broken key). KEYS[1] the mark; ARGV
/// the value and its lifetime in ms, or no ARGV to clear it (a reload with a new key).
pub(super) const HEALTH: &str = "if #ARGV == 0 then return redis.call('DEL', KEYS[1]) end \
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then \
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 0";

/// How long a broken key stays out of every replica's rotation (a replica that sees it again
/// sets it again; a reload with a new key clears it locally).
const BROKEN_FOR: Duration = Duration::from_secs(300);

/// A write for the store.
#[derive(Debug)]
pub enum Write {
    /// One request's usage on an account.
    Usage {
        /// Pool name.
        pool: Arc<str>,
        /// Account name.
        account: Arc<str>,
        /// Its cost in USD.
        cost: f64,
        /// Its tokens.
        tokens: u64,
    },
    /// An account's health changed in a way every replica should obey.
    Health {
        /// Pool name.
        pool: Arc<str>,
        /// Account name.
        account: Arc<str>,
        /// What happened.
        kind: HealthKind,
    },
}

/// Health that travels to the other replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthKind {
    /// Cooling down for a rate limit for this long.
    Cool(Duration),
    /// The breaker opened for this long.
    Open(Duration),
    /// The key was refused.
    Broken,
    /// The account was given another chance (a reload with a new key): clear its mark.
    Clear,
}

/// What a usage write answered.
pub struct Recorded {
    /// The account's totals across replicas.
    pub view: LedgerView,
    /// Thresholds this write reached first (each fires once across replicas per week).
    pub fired: Vec<f64>,
}

impl Shared {
    /// Queue `w` (never waits). False: not queued (the store is down, or the queue is full,
    /// counted); the caller acts on local state alone.
    pub fn queue(&self, w: Write) -> bool {
        if !self.is_up() {
            return false;
        }
        match self.writes.try_send(w) {
            Ok(()) => true,
            Err(_) => {
                self.failed(Op::Queue, 0, "queue full");
                false
            }
        }
    }

    /// Send one account's summed usage (`w`: pool, account, cost, tokens, requests): the account's totals and the thresholds it reached first, or
    /// `None` (counted) when the store did not answer in time.
    pub(super) async fn usage(
        &self,
        w: (&str, &str, f64, u64, u64),
        weekly_usd: f64,
        thresholds: &[f64],
    ) -> Option<Recorded> {
        let (pool, account, cost, tokens, requests) = w;
        let (gen, mut conn) = self.conn()?;
        let mut call = self.record_script.prepare_invoke();
        call.arg(self.prefix())
            .arg(pool)
            .arg(account)
            .arg(cost.max(0.0))
            .arg(tokens)
            .arg(requests)
            .arg(weekly_usd.max(0.0));
        for t in thresholds {
            call.arg(*t);
        }
        let answer = tokio::time::timeout(self.timeout, call.invoke_async::<Vec<String>>(&mut conn)).await;
        let v = self.answer(Op::Record, gen, answer)?;
        let f = |i: usize| v.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        let view = LedgerView {
            week_cost: f(0),
            week_tokens: f(1) as u64,
            block_cost: f(2),
            block_tokens: f(3) as u64,
            block_requests: f(4) as u64,
            burn_rate: f(5),
            tokens_last_minute: f(6) as u64,
        };
        let fired = v.iter().skip(7).filter_map(|s| s.parse().ok()).collect();
        Some(Recorded { view, fired })
    }

    /// Send one health write.
    pub(super) async fn health(&self, pool: &str, account: &str, kind: HealthKind) {
        let Some((gen, mut conn)) = self.conn() else { return };
        let key = format!("{}:a:{pool}:{account}:health", self.prefix());
        let mut call = self.health_script.key(key);
        let mark = match kind {
            HealthKind::Cool(d) => Some(("cool", d)),
            HealthKind::Open(d) => Some(("open", d)),
            HealthKind::Broken => Some(("broken", BROKEN_FOR)),
            HealthKind::Clear => None,
        };
        if let Some((value, for_)) = mark {
            call.arg(value).arg(super::millis(for_));
        }
        let answer = tokio::time::timeout(self.timeout, call.invoke_async::<i64>(&mut conn)).await;
        self.answer(Op::Record, gen, answer);
    }
}
