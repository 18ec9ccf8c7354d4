//! State that outlives a config snapshot, keyed by pool and account name, so an account that
//! survives a reload keeps its history: the usage ledger now; health and sessions as they land.

use std::sync::Arc;

use dashmap::DashMap;

use crate::usage::ledger::Ledger;

/// Everything the sidecar remembers about one account.
#[derive(Default)]
pub struct AccountState {
    pub ledger: Ledger,
}

/// The registry: one [`AccountState`] per (pool, account) name.
#[derive(Default)]
pub struct States {
    accounts: DashMap<(Box<str>, Box<str>), Arc<AccountState>>,
}

impl States {
    /// The state of `pool`/`account`, created on first use.
    pub fn account(&self, pool: &str, account: &str) -> Arc<AccountState> {
        if let Some(s) = self.accounts.get(&(pool.into(), account.into())) {
            return Arc::clone(&s);
        }
        Arc::clone(
            &self
                .accounts
                .entry((pool.into(), account.into()))
                .or_default(),
        )
    }

    /// The state of an account if it has one (no creation).
    pub fn get(&self, pool: &str, account: &str) -> Option<Arc<AccountState>> {
        self.accounts
            .get(&(pool.into(), account.into()))
            .map(|s| Arc::clone(&s))
    }
}
