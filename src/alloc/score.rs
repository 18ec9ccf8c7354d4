//! The health score of an account, 0-100, from its ledger: start at 100; minus 0.5 x weekly
//! budget used (%); minus 0.3 x current 5-hour block spend as % of `block_usd`; minus 5 per bound
//! session; minus 2 x (burn rate in USD/h above 3); plus 10 when the current block has no spend;
//! clamped. A budget of 0 or none makes its term 0, never NaN. Weight divides the penalties.

use crate::usage::ledger::LedgerView;

/// An account's budget (`budget:` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// `budget.weekly_usd`: spend allowed over a rolling 7 days, in USD (0: no cap).
    pub weekly_usd: f64,
    /// `budget.block_usd`: the spend the score weighs the current 5-hour block against, in USD (0:
    /// no score term).
    pub block_usd: f64,
    /// Share of the weekly budget past which the account takes no new sessions.
    pub threshold: f64,
}

/// Burn rate (USD/h) above which the score drops.
const BURN_BASELINE: f64 = 3.0;

/// `part / whole` in percent, 0 when there is no whole.
fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 && whole.is_finite() && part.is_finite() {
        part / whole * 100.0
    } else {
        0.0
    }
}

/// Share of the weekly budget used (0 without a budget).
pub fn weekly_used(view: &LedgerView, budget: Option<&Budget>) -> f64 {
    budget.map_or(0.0, |b| pct(view.week_cost, b.weekly_usd) / 100.0)
}

/// The account's health score, 0-100 (see the module's formula), from its ledger `view`, its
/// `budget`, the `sessions` bound to it and its `weight`.
pub fn score(view: &LedgerView, budget: Option<&Budget>, sessions: u32, weight: f64) -> f64 {
    let (weekly, block) = budget.map_or((0.0, 0.0), |b| {
        (pct(view.week_cost, b.weekly_usd), pct(view.block_cost, b.block_usd))
    });
    let burn = (view.burn_rate - BURN_BASELINE).max(0.0);
    let penalties = 0.5 * weekly + 0.3 * block + 5.0 * f64::from(sessions) + 2.0 * burn;
    let weight = if weight > 0.0 && weight.is_finite() {
        weight
    } else {
        1.0
    };
    let bonus = if view.block_cost <= 0.0 { 10.0 } else { 0.0 };
    let s = 100.0 - penalties / weight + bonus;
    if s.is_nan() {
        0.0
    } else {
        s.clamp(0.0, 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(week: f64, block: f64, burn: f64) -> LedgerView {
        LedgerView {
            week_cost: week,
            block_cost: block,
            burn_rate: burn,
            ..LedgerView::default()
        }
    }

    const B: Budget = Budget {
        weekly_usd: 450.0,
        block_usd: 25.0,
        threshold: 0.85,
    };

    #[test]
    fn the_formula_term_by_term() {
        assert_eq!(
            score(&view(0.0, 0.0, 0.0), Some(&B), 0, 1.0),
            100.0,
            "idle account: 100 + 10, clamped"
        );
        // 45 of 450 weekly = 10% -> -5; 5 of 25 block = 20% -> -6; 2 sessions -> -10; burn 4 -> -2.
        let s = score(&view(45.0, 5.0, 4.0), Some(&B), 2, 1.0);
        assert!((s - 77.0).abs() < 1e-9, "{s}");
        let halved = score(&view(45.0, 5.0, 4.0), Some(&B), 2, 2.0);
        assert!((halved - 88.5).abs() < 1e-9, "weight 2 halves the penalties: {halved}");
        assert!(
            (score(&view(0.0, 0.0, 0.0), None, 3, 1.0) - 95.0).abs() < 1e-9,
            "sessions and bonus without a budget"
        );
    }

    #[test]
    fn no_budget_zero_budget_and_bad_numbers_never_give_nan() {
        let zero = Budget {
            weekly_usd: 0.0,
            block_usd: 0.0,
            threshold: 0.85,
        };
        for b in [None, Some(&zero)] {
            let s = score(&view(1e9, 1e9, 0.0), b, 0, 1.0);
            assert!((s - 100.0).abs() < 1e-9, "budget terms are 0: {s}");
        }
        let s = score(&view(f64::NAN, f64::INFINITY, f64::NAN), Some(&B), 0, 0.0);
        assert!(!s.is_nan() && (0.0..=100.0).contains(&s), "{s}");
        assert_eq!(score(&view(900.0, 100.0, 50.0), Some(&B), 30, 1.0), 0.0, "clamped at 0");
        assert_eq!(weekly_used(&view(1e9, 0.0, 0.0), Some(&zero)), 0.0);
        assert!((weekly_used(&view(225.0, 0.0, 0.0), Some(&B)) - 0.5).abs() < 1e-12);
    }
}
