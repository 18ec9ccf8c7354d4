//! The background service of the shared store: it connects (and reconnects with backoff after
//! a loss), loads the scripts, and sends the queued writes, many at once on the one multiplexed
//! connection, acting on their answers (the mirror of an account's totals, budget notifications).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use tokio::sync::{mpsc, Semaphore};

use super::record::{Recorded, Write};
use super::{describe, Shared};
use crate::sidecar::Sidecar;

/// Writes in flight at once.
const IN_FLIGHT: usize = 256;
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Keeps the store connected and drains the write queue (idles without `shared`).
pub struct SharedService {
    core: Arc<Sidecar>,
}

impl SharedService {
    /// The service for `core`.
    pub fn new(core: Arc<Sidecar>) -> Self {
        SharedService { core }
    }
}

#[async_trait]
impl BackgroundService for SharedService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(shared) = self.core.shared.clone() else {
            return;
        };
        let Some(rx) = shared.queued.lock().ok().and_then(|mut q| q.take()) else {
            return;
        };
        tokio::select! {
            _ = keep_connected(&shared) => {}
            _ = drain(rx, &self.core, &shared) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Connect, then wait for a loss and connect again, backing off from 100 ms to 5 s.
/// The backoff starts over only after a connection lasted this long (a store that answers
/// PING but then times out does not make the link flap at 100 ms).
const STEADY: Duration = Duration::from_secs(10);

async fn keep_connected(shared: &Shared) {
    let mut delay = FIRST_RETRY;
    loop {
        loop {
            match connect(shared).await {
                Ok(c) => {
                    shared.connected(c);
                    break;
                }
                Err(e) => {
                    shared.unreachable(&e);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        }
        let up = std::time::Instant::now();
        shared.lost.notified().await;
        if up.elapsed() >= STEADY {
            delay = FIRST_RETRY;
        } else {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY);
        }
    }
}

/// A connection with both scripts loaded (so the first request runs them by SHA).
async fn connect(shared: &Shared) -> Result<redis::aio::MultiplexedConnection, String> {
    let mut c = shared.connect().await?;
    for script in [&shared.admit_script, &shared.record_script, &shared.health_script] {
        let load = script.load_async(&mut c);
        match tokio::time::timeout(shared.timeout.max(Duration::from_secs(1)), load).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(describe(&e)),
            Err(_) => return Err("timed out loading scripts".into()),
        }
    }
    // Up only when the store answers within the operation timeout: a store slower than that
    // would only make every request wait for it and fall back.
    let cmd = redis::cmd("PING");
    let ping = cmd.query_async::<String>(&mut c);
    match tokio::time::timeout(shared.timeout, ping).await {
        Ok(Ok(_)) => Ok(c),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err("PING slower than shared.redis.timeout".into()),
    }
}

/// Usage is summed per account for this long before it is written: one write per account per
/// batch instead of one per request (the store's CPU, and ours), at the price of the shared
/// figures lagging by as much.
const BATCH: Duration = Duration::from_millis(10);

/// One account's usage in the current batch.
#[derive(Default)]
struct Summed {
    cost: f64,
    tokens: u64,
    requests: u64,
}

/// Send the queued writes (at most [`IN_FLIGHT`] at once): health at once, usage summed per
/// account over [`BATCH`]; act on the answers.
async fn drain(mut rx: mpsc::Receiver<Write>, core: &Arc<Sidecar>, shared: &Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    // Bounded by the accounts of the config (emptied every batch).
    let mut batch: HashMap<(Arc<str>, Arc<str>), Summed> = HashMap::new();
    let mut tick = tokio::time::interval(BATCH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let job = tokio::select! {
            w = rx.recv() => match w {
                None => return,
                Some(Write::Usage { pool, account, cost, tokens }) => {
                    let e = batch.entry((pool, account)).or_default();
                    e.cost += cost;
                    e.tokens += tokens;
                    e.requests += 1;
                    continue;
                }
                Some(w @ Write::Health { .. }) => vec![Job::Health(w)],
            },
            _ = tick.tick(), if !batch.is_empty() => batch.drain().map(Job::Usage).collect(),
        };
        for job in job {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let (core, shared) = (Arc::clone(core), Arc::clone(shared));
            tokio::spawn(async move {
                match job {
                    Job::Health(Write::Health { pool, account, kind }) => shared.health(&pool, &account, kind).await,
                    Job::Health(Write::Usage { .. }) => {}
                    Job::Usage(((pool, account), sum)) => usage(&core, &shared, &pool, &account, sum).await,
                }
                drop(slot);
            });
        }
    }
}

enum Job {
    Health(Write),
    Usage(((Arc<str>, Arc<str>), Summed)),
}

/// Write one account's batch and act on the answer: its mirror, and the thresholds it reached
/// first across replicas (or, not shared this time, this replica's own view decides).
async fn usage(core: &Sidecar, shared: &Shared, pool: &str, account: &str, sum: Summed) {
    let snap = core.snapshot();
    let Some(acct) = snap
        .pools
        .iter()
        .find(|p| &*p.name == pool)
        .and_then(|p| p.accounts.iter().find(|a| &*a.name == account))
    else {
        return;
    };
    let weekly = acct.budget.map_or(0.0, |b| b.weekly_usd);
    let usage = (pool, account, sum.cost, sum.tokens, sum.requests);
    let answer = shared.usage(usage, weekly, &snap.thresholds).await;
    let webhook_on = snap.webhook.is_some();
    let now = crate::clock::now_ms();
    match answer {
        Some(Recorded { view, fired }) => {
            acct.state.mirror.set(now, view);
            if weekly > 0.0 && !fired.is_empty() {
                core.notifier
                    .budget(webhook_on, pool, account, view.week_cost / weekly, &fired);
            }
        }
        None if weekly > 0.0 && sum.cost > 0.0 => {
            let used = acct.state.view(now).week_cost / weekly;
            core.notifier.budget(webhook_on, pool, account, used, &snap.thresholds);
        }
        None => {}
    }
}
