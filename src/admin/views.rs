//! What the admin API shows: pools and accounts (state, cooldown end, score, sessions, budget,
//! in-flight, queue), sessions, and readiness. Names and numbers only, never a key.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};

use crate::alloc::score::{score, weekly_used};
use crate::clock::now_ms;
use crate::config::{Account, Snapshot};
use crate::resilience::health::State;

fn rfc3339(at: Instant, now: Instant) -> String {
    let when = SystemTime::now() + at.saturating_duration_since(now);
    humantime::format_rfc3339_seconds(when).to_string()
}

fn account(a: &Account, now: Instant, ms: i64) -> Value {
    let s = &a.state;
    let state = s.health.state(now);
    let until = match state {
        State::CoolingDown { until } | State::Open { until } => Some(rfc3339(until, now)),
        _ => None,
    };
    let view = s.view(ms);
    let sessions = s.sessions.load(std::sync::atomic::Ordering::Acquire);
    let mut out = json!({
        "name": &*a.name,
        "state": state.name(),
        "until": until,
        "score": (score(&view, a.budget.as_ref(), sessions, a.weight) * 10.0).round() / 10.0,
        "sessions": sessions,
        "budget_used": weekly_used(&view, a.budget.as_ref()),
        "week_usd": view.week_cost,
        "block_usd": view.block_cost,
        "burn_usd_per_hour": view.burn_rate + 0.0, // -0.0 (no spend yet) shows as 0.0
        "inflight": s.slots.in_use(),
        "queue": s.slots.queued(),
        "max_concurrent": a.limits.max_concurrent,
        "weight": a.weight,
    });
    if a.cli.is_some() {
        // claude-cli accounts: CLI processes running, and requests waiting for one.
        out["processes"] = json!({
            "running": s.cli_running.load(std::sync::atomic::Ordering::Acquire),
            "queued": s.slots.queued(),
        });
    }
    out
}

pub fn pools(snap: &Snapshot) -> Value {
    let (now, ms) = (Instant::now(), now_ms());
    let pools: Vec<Value> = snap
        .pools
        .iter()
        .map(|p| {
            json!({
                "name": &*p.name,
                "provider": p.provider.kind().name(),
                "fallback": p.fallback.iter().map(|i| &*snap.pools[*i].name).collect::<Vec<_>>(),
                "inflight": p.inflight.get().map_or(0, |g| g.get()),
                "sessions": p.state.sessions.len(),
                "accounts": p.accounts.iter().map(|a| account(a, now, ms)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "pools": pools })
}

pub fn sessions(snap: &Snapshot, pool: &str) -> Option<Value> {
    let p = snap.pools.iter().find(|p| &*p.name == pool)?;
    let list: Vec<Value> = p
        .state
        .sessions
        .list()
        .into_iter()
        .map(|(id, account, seen)| {
            let ago = Duration::from_millis(u64::try_from(now_ms() - seen).unwrap_or(0));
            let at = humantime::format_rfc3339_seconds(SystemTime::now() - ago).to_string();
            json!({ "id": id, "account": &*account, "last_seen": at })
        })
        .collect();
    Some(json!({ "pool": pool, "sessions": list }))
}

/// Why the sidecar cannot serve some pool now (empty: ready).
pub fn not_ready(snap: &Snapshot) -> Vec<String> {
    let now = Instant::now();
    snap.pools
        .iter()
        .filter(|p| !p.accounts.iter().any(|a| a.state.health.could_serve(now)))
        .map(|p| {
            let states: Vec<String> = p
                .accounts
                .iter()
                .map(|a| format!("{} {}", a.name, a.state.health.state(now).name()))
                .collect();
            format!("pool {} has no account that can serve ({})", p.name, states.join(", "))
        })
        .collect()
}
