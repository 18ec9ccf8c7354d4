//! The state shared by the proxy, the admin listener and background tasks. The config snapshot
//! sits behind an `ArcSwap`: requests load it without a lock and keep the one they started with.
//! Account state and the request log live here, outside any snapshot.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::Snapshot;
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::resilience::limits::ClientLimiter;
use crate::state::States;
use crate::store::{self, RequestLog};

/// Distinct clients tracked by the per-client limiter before they share one window.
const CLIENT_CAP: usize = 10_000;

pub struct Sidecar {
    config: ArcSwap<Snapshot>,
    /// The file the config came from, when it came from one (reloads read it again).
    pub config_path: Option<PathBuf>,
    /// Per-account state; `config::load` must be given this registry.
    pub states: States,
    /// The request log, when `log.sqlite` is set.
    pub log: Option<Arc<RequestLog>>,
    /// Per-client request windows (`clients.limit`).
    pub clients: ClientLimiter,
    pub notifier: Notifier,
    pub metrics: Arc<Metrics>,
    /// One reload at a time.
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    inflight: AtomicUsize,
}

impl Sidecar {
    /// `snapshot` must have been built with `states`. Opens the request log, if configured, and
    /// replays its last 7 days into the account ledgers.
    pub fn new(states: States, snapshot: Snapshot, config_path: Option<PathBuf>) -> Result<Arc<Self>, String> {
        let log = match &snapshot.log.sqlite {
            Some(path) => {
                let log = RequestLog::open(path, snapshot.log.retention, snapshot.log.queue)?;
                let replayed = store::rebuild_ledgers(path, &states)?;
                tracing::info!(path = %path.display(), replayed, "request log open; ledgers rebuilt");
                Some(log)
            }
            None => None,
        };
        let metrics = Metrics::new().map_err(|e| format!("metrics: {e}"))?;
        install(&snapshot, &metrics);
        Ok(Arc::new(Sidecar {
            config: ArcSwap::from_pointee(snapshot),
            config_path,
            states,
            log,
            clients: ClientLimiter::new(CLIENT_CAP),
            notifier: Notifier::default(),
            metrics,
            reload_lock: tokio::sync::Mutex::new(()),
            inflight: AtomicUsize::new(0),
        }))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.config.load_full()
    }

    /// Put a new, installed snapshot in service. Requests in flight keep the one they started with.
    pub(crate) fn swap(&self, snapshot: Snapshot) {
        self.config.store(Arc::new(snapshot));
    }

    /// Requests between `request_filter` and `logging`.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }

    pub(crate) fn enter(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        InflightGuard(Arc::clone(self), None)
    }

    /// Whether notifications go to a webhook.
    pub fn webhook_on(&self) -> bool {
        self.config.load().webhook.is_some()
    }

    /// Write out what is queued (request log). Called on the way out.
    pub fn flush(&self) {
        if let Some(log) = &self.log {
            if !log.flush(Duration::from_secs(5)) {
                tracing::warn!("request log not fully flushed at shutdown");
            }
        }
    }
}

/// Make a snapshot ready to serve: metric handles resolved, long-lived state (session table
/// capacity, concurrency slots) in line with it.
pub(crate) fn install(snapshot: &Snapshot, metrics: &Metrics) {
    for route in &snapshot.routes {
        let _ = route
            .metrics
            .set(metrics.route(&route.name, &snapshot.pools[route.pool].name));
    }
    for pool in &snapshot.pools {
        let _ = pool.inflight.set(metrics.pool_inflight(&pool.name));
        for a in &pool.accounts {
            let _ = a.metrics.set(metrics.account(&pool.name, &a.name));
        }
    }
    for pool in &snapshot.pools {
        pool.state.sessions.set_capacity(pool.session.max_sessions);
    }
    for account in snapshot.pools.iter().flat_map(|p| &p.accounts) {
        let slots = account
            .limits
            .max_concurrent
            .map_or(crate::state::UNLIMITED, |n| n as usize);
        account.state.slots.resize(slots);
    }
}

/// Counts a request as in flight until dropped (also when Pingora drops the context early):
/// for the drain on SIGTERM, and in its pool's `inflight_requests` once routed.
pub struct InflightGuard(Arc<Sidecar>, Option<prometheus::IntGauge>);

impl InflightGuard {
    pub fn core(&self) -> &Arc<Sidecar> {
        &self.0
    }

    /// Count the request in its pool's gauge too.
    pub fn count_in(&mut self, gauge: Option<&prometheus::IntGauge>) {
        if let Some(g) = gauge {
            g.inc();
            self.1 = Some(g.clone());
        }
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
        if let Some(g) = &self.1 {
            g.dec();
        }
    }
}
