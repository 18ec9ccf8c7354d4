//! The account's ledger totals across replicas, as the shared store last gave them, merged into
//! this process's own view (see [`crate::shared`]).

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::ledger::LedgerView;

/// The account's totals across all replicas as of this process's last write, merged into its
/// local view (the larger of each figure; the shared one only within the hour or minute it was
/// read in).
#[derive(Default)]
pub struct Mirror(ArcSwapOption<(i64, LedgerView)>);

impl Mirror {
    /// `local`, raised to the shared figures still current at `now_ms`.
    pub fn merge(&self, local: LedgerView, now_ms: i64) -> LedgerView {
        // A guard, not a clone: no reference count touched per candidate per request.
        let guard = self.0.load();
        let Some(&(at, shared)) = guard.as_deref() else {
            return local;
        };
        let mut v = local;
        if at.div_euclid(3_600_000) == now_ms.div_euclid(3_600_000) {
            v.week_cost = v.week_cost.max(shared.week_cost);
            v.week_tokens = v.week_tokens.max(shared.week_tokens);
            v.block_cost = v.block_cost.max(shared.block_cost);
            v.block_tokens = v.block_tokens.max(shared.block_tokens);
            v.block_requests = v.block_requests.max(shared.block_requests);
        }
        if now_ms - at < 60_000 {
            v.burn_rate = v.burn_rate.max(shared.burn_rate);
        }
        if at.div_euclid(60_000) == now_ms.div_euclid(60_000) {
            v.tokens_last_minute = v.tokens_last_minute.max(shared.tokens_last_minute);
        }
        v
    }

    /// What the store answered at `at_ms`.
    pub fn set(&self, at_ms: i64, view: LedgerView) {
        self.0.store(Some(Arc::new((at_ms, view))));
    }
}
