//! State that outlives a config snapshot, keyed by pool and account name, so an account that
//! survives a reload keeps its history: the usage ledger now; health and sessions as they land.

use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use dashmap::DashMap;

use crate::alloc::sessions::Sessions;
use crate::resilience::budget::RetryBudget;
use crate::resilience::health::Health;
use crate::resilience::limits::{Slots, Window};
use crate::usage::ledger::{Ledger, LedgerView};
use crate::usage::mirror::Mirror;

/// Everything the sidecar remembers about one account.
pub struct AccountState {
    /// Spend, tokens and requests over time (block, week, last hour).
    pub ledger: Ledger,
    /// Healthy, cooling down, open, half-open or broken key.
    pub health: Health,
    /// Concurrency slots (`max_concurrent`; effectively unlimited when not set).
    pub slots: Slots,
    /// Requests sent in the last minute (`rpm`).
    pub sent: Window,
    /// Sessions bound to this account (shared with the session table's bindings).
    pub sessions: Arc<AtomicU32>,
    /// claude-cli: CLI processes running for this account now.
    pub cli_running: AtomicU32,
    /// The account's totals across replicas, as the shared store last gave them.
    pub mirror: Mirror,
}

impl AccountState {
    /// The ledger as the allocator reads it: this process's, raised to the shared totals when
    /// `shared` is on.
    pub fn view(&self, now_ms: i64) -> LedgerView {
        self.mirror.merge(self.ledger.view(now_ms), now_ms)
    }
}

impl Default for AccountState {
    fn default() -> Self {
        AccountState {
            ledger: Ledger::default(),
            health: Health::default(),
            slots: Slots::new(UNLIMITED),
            sent: Window::default(),
            sessions: Arc::new(AtomicU32::new(0)),
            cli_running: AtomicU32::new(0),
            mirror: Mirror::default(),
        }
    }
}

/// Slots of an account without `max_concurrent`.
pub const UNLIMITED: usize = tokio::sync::Semaphore::MAX_PERMITS >> 4;

/// What the sidecar remembers about one pool.
#[derive(Default)]
pub struct PoolState {
    /// The pool's retry budget (`retry.budget`).
    pub budget: RetryBudget,
    /// The pool's sticky sessions.
    pub sessions: Sessions,
}

/// The registry: one [`AccountState`] per (pool, account) name, one [`PoolState`] per pool.
#[derive(Default)]
pub struct States {
    accounts: DashMap<(Box<str>, Box<str>), Arc<AccountState>>,
    pools: DashMap<Box<str>, Arc<PoolState>>,
}

impl States {
    /// The state of `pool`, created on first use.
    pub fn pool(&self, pool: &str) -> Arc<PoolState> {
        if let Some(s) = self.pools.get(pool) {
            return Arc::clone(&s);
        }
        Arc::clone(&self.pools.entry(pool.into()).or_default())
    }

    /// The state of `pool`/`account`, created on first use.
    pub fn account(&self, pool: &str, account: &str) -> Arc<AccountState> {
        if let Some(s) = self.accounts.get(&(pool.into(), account.into())) {
            return Arc::clone(&s);
        }
        Arc::clone(&self.accounts.entry((pool.into(), account.into())).or_default())
    }

    /// The state of an account if it has one (no creation).
    pub fn get(&self, pool: &str, account: &str) -> Option<Arc<AccountState>> {
        self.accounts
            .get(&(pool.into(), account.into()))
            .map(|s| Arc::clone(&s))
    }
}
