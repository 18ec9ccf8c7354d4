//! Background upkeep of sessions: every `rebalance.every`, if the hottest and coolest accounts'
//! current-block spend differ by at least `cost_gap_usd`, up to `max_moves` idle sessions move
//! from the hottest to the coolest; and sessions unseen for `expire_after` are forgotten.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use super::sessions::reserve;
use crate::clock::now_ms;
use crate::config::Pool;
use crate::sidecar::Sidecar;

/// The background service that rebalances each pool's sessions every `rebalance.every` and forgets
/// sessions unseen for `session.expire_after`.
pub struct Rebalancer {
    core: Arc<Sidecar>,
}

impl Rebalancer {
    /// A rebalancer for the sidecar `core`, working on whatever snapshot is current.
    pub fn new(core: Arc<Sidecar>) -> Self {
        Rebalancer { core }
    }
}

/// Move idle sessions from the hottest to the coolest account; returns the moves made.
pub fn rebalance(core: &Sidecar, pool: &Pool) -> usize {
    let Some(conf) = pool.rebalance else { return 0 };
    let (now, ms) = (Instant::now(), now_ms());
    let spend: Vec<(usize, f64)> = pool
        .accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.state.health.could_serve(now))
        .map(|(i, a)| (i, a.state.view(ms).block_cost))
        .collect();
    let hottest = spend.iter().max_by(|a, b| a.1.total_cmp(&b.1));
    let coolest = spend.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    let (Some(&(hot, hot_cost)), Some(&(cool, cool_cost))) = (hottest, coolest) else {
        return 0;
    };
    if hot == cool || hot_cost - cool_cost < conf.cost_gap_usd {
        return 0;
    }
    let (from, to) = (&pool.accounts[hot], &pool.accounts[cool]);
    let idle_before = ms - i64::try_from(pool.session.idle_after.as_millis()).unwrap_or(i64::MAX);
    let mut table = pool.state.sessions.lock();
    let mut moved = 0;
    for id in table.idle_of(&from.name, idle_before, conf.max_moves as usize) {
        if !reserve(&to.state.sessions, pool.session.max_per_account) {
            break;
        }
        if table.rebind_quietly(&id, Arc::clone(&to.name), Arc::clone(&to.state.sessions)) {
            moved += 1;
            let detail = format!(
                "idle session moved from {} (block ${hot_cost:.2}) to {} (block ${cool_cost:.2})",
                from.name, to.name
            );
            tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, from = &*from.name, to = &*to.name, "rebalanced an idle session");
            core.notifier.emit(
                core.webhook_on(),
                crate::notify::Kind::SessionRebound,
                &pool.name,
                Some(&to.name),
                detail,
            );
        }
    }
    moved
}

#[async_trait]
impl BackgroundService for Rebalancer {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut due: HashMap<Arc<str>, Instant> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let snap = self.core.snapshot();
            let now = Instant::now();
            for pool in &snap.pools {
                let expire_before = now_ms() - i64::try_from(pool.session.expire_after.as_millis()).unwrap_or(i64::MAX);
                pool.state.sessions.expire(expire_before);
                let Some(conf) = pool.rebalance else { continue };
                let at = due.entry(Arc::clone(&pool.name)).or_insert(now + conf.every);
                if *at <= now {
                    *at = now + conf.every;
                    rebalance(&self.core, pool);
                }
            }
        }
    }
}
