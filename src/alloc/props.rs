//! Property tests of allocation: under any sequence of sessions arriving, re-binding and
//! expiring, no account holds more than `max_per_account` sessions, and the per-account counts
//! always add up to the bindings in the table.

use std::sync::atomic::Ordering;

use proptest::prelude::*;

use super::pick::{pick, Walk};
use crate::config::Snapshot;
use crate::notify::Notifier;
use crate::state::States;

fn snapshot(accounts: usize, cap: u32) -> Snapshot {
    std::env::set_var("LLMS_ALLOC_PROPS_KEY", "k");
    let mut yaml = format!(
        "routes:\n  - {{ name: r, match: {{ path_prefix: /a }}, pool: p }}\npools:\n  p:\n    provider: anthropic\n    session: {{ max_per_account: {cap}, max_sessions: 8 }}\n    accounts:\n"
    );
    for i in 0..accounts {
        yaml.push_str(&format!(
            "      - {{ name: a{i}, base_url: \"http://127.0.0.1:9\", key_env: LLMS_ALLOC_PROPS_KEY }}\n"
        ));
    }
    match crate::config::load_str(&yaml, &States::default()) {
        Ok(s) => s,
        Err(p) => panic!("test config: {p:?}"),
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A request of session `n` (one of a few, so they come back).
    Request(u8),
    /// Time passes by this many seconds; sessions idle longer than 30 s expire.
    Wait(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![4 => (0u8..16).prop_map(Op::Request), 1 => (0u8..60).prop_map(Op::Wait)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn no_account_ever_holds_more_than_its_cap(
        accounts in 1usize..4,
        cap in 1u32..4,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let snap = snapshot(accounts, cap);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let notifier = Notifier::default();
        let pool = &snap.pools[0];
        let mut clock = 0i64;
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Request(n) => {
                    let id = format!("s{n}");
                    let mut walk = Walk::new(0);
                    let picked = rt.block_on(pick(&notifier, &snap, &mut walk, Some(&id), None));
                    prop_assert!(picked.is_ok(), "step {step}: an account always serves");
                }
                Op::Wait(s) => {
                    clock += i64::from(s) * 1000;
                    pool.state.sessions.expire(crate::clock::now_ms() + clock - 30_000);
                }
            }
            let counts: Vec<u32> = pool.accounts.iter().map(|a| a.state.sessions.load(Ordering::Acquire)).collect();
            prop_assert!(counts.iter().all(|&c| c <= cap), "step {step}: {counts:?} over the cap {cap}");
            let total: u32 = counts.iter().sum();
            prop_assert_eq!(total as usize, pool.state.sessions.len(), "step {}: counts add up to the bindings", step);
        }
    }
}
