//! `GET /metrics`: the account gauges computed from the current snapshot, then the registry's
//! text exposition.

use std::time::Instant;

use prometheus::{Encoder, TextEncoder};

use crate::alloc::score::{score, weekly_used};
use crate::clock::now_ms;
use crate::config::Snapshot;
use crate::metrics::{Metrics, STATES};

/// The text exposition, with the account gauges brought up to date first.
pub fn render(m: &Metrics, snap: &Snapshot, log_dropped: u64, notify_dropped: u64) -> Vec<u8> {
    for g in [&m.queue, &m.state, &m.sessions, &m.cli_processes] {
        g.reset();
    }
    m.score.reset();
    m.budget_used.reset();
    let (now, ms) = (Instant::now(), now_ms());
    for pool in &snap.pools {
        for a in &pool.accounts {
            let labels = [&*pool.name, &*a.name];
            let s = &a.state;
            m.queue.with_label_values(&labels).set(s.slots.queued() as i64);
            if a.cli.is_some() {
                let running = s.cli_running.load(std::sync::atomic::Ordering::Acquire);
                for (state, n) in [("running", i64::from(running)), ("queued", s.slots.queued() as i64)] {
                    m.cli_processes
                        .with_label_values(&[&*pool.name, &*a.name, state])
                        .set(n);
                }
            }
            let current = s.health.state(now).name();
            for st in STATES {
                m.state
                    .with_label_values(&[&*pool.name, &*a.name, st])
                    .set(i64::from(st == current));
            }
            let sessions = s.sessions.load(std::sync::atomic::Ordering::Acquire);
            m.sessions.with_label_values(&labels).set(i64::from(sessions));
            let view = s.view(ms);
            m.score
                .with_label_values(&labels)
                .set(score(&view, a.budget.as_ref(), sessions, a.weight));
            m.budget_used
                .with_label_values(&labels)
                .set(weekly_used(&view, a.budget.as_ref()));
        }
    }
    // Counted where they happen; brought here as counters.
    m.log_dropped.inc_by(log_dropped.saturating_sub(m.log_dropped.get()));
    m.notify_dropped
        .inc_by(notify_dropped.saturating_sub(m.notify_dropped.get()));
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&m.registry.gather(), &mut out) {
        tracing::warn!(error = %e, "metrics encoding failed");
    }
    out
}
