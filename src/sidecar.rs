//! The state shared by the proxy, the admin listener and background tasks. The config snapshot
//! sits behind an `ArcSwap`: requests load it without a lock and keep the one they started with.
//! Account state and the request log live here, outside any snapshot.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// The sidecar's shared core: the current config snapshot, account state, the request log, the
/// client limiter, notifications and metrics. One per process, behind an `Arc`.
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
    /// Logs events and queues them for the webhook.
    pub notifier: Notifier,
    /// Every Prometheus metric.
    pub metrics: Arc<Metrics>,
    /// One reload at a time.
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    inflight: AtomicUsize,
    /// Request-body bytes held by all requests together (`limits.max_buffered_bytes`).
    buffered: AtomicUsize,
    /// SIGTERM arrived: finishing what is in flight, not ready for more.
    draining: AtomicBool,
    /// The claude-cli service's Unix socket (in a private directory).
    cli_socket: PathBuf,
    /// The CLI process groups running, killed at exit if anything is left.
    pub cli_groups: Arc<crate::claude_cli::Groups>,
    /// The store replicas share state through (`shared.redis`, read at start-up).
    pub shared: Option<Arc<crate::shared::Shared>>,
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
        let cli_socket = crate::claude_cli::socket::socket_path()
            .map_err(|e| format!("cannot create the claude-cli socket directory: {e}"))?;
        install(&snapshot, &metrics);
        let shared = match &snapshot.shared {
            Some(conf) => Some(crate::shared::Shared::new(conf, &metrics)?),
            None => None,
        };
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
            buffered: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            cli_socket,
            cli_groups: Arc::default(),
            shared,
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

    /// Where the claude-cli service listens.
    pub fn cli_socket(&self) -> &std::path::Path {
        &self.cli_socket
    }

    /// Request-body bytes held in memory by all requests now.
    pub fn buffered(&self) -> usize {
        self.buffered.load(Ordering::Acquire)
    }

    /// A lease on `n` bytes of the global body budget `cap`, or `None` when it would overflow.
    pub(crate) fn lease(self: &Arc<Self>, n: usize, cap: usize) -> Option<BufferLease> {
        let mut lease = BufferLease(Arc::clone(self), 0);
        lease.grow(n, cap).then_some(lease)
    }

    /// Stop being ready (SIGTERM): in-flight requests finish, the pod leaves its Service.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether SIGTERM arrived (`/readyz` then fails while in-flight requests finish).
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// A connection or request head refused before any hook saw it: counted, and logged (at most
    /// 20 lines a second; the count says how many there were).
    pub fn rejected(&self, reason: crate::metrics::Rejected, peer: Option<&str>) {
        self.metrics.rejected.with_label_values(&[reason.as_str()]).inc();
        static WINDOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let second = crate::clock::now_ms().div_euclid(1000) as u64;
        let seen = WINDOW.load(Ordering::Relaxed);
        let (at, n) = (seen >> 16, seen & 0xffff);
        let n = if at == second { n + 1 } else { 1 };
        WINDOW.store((second << 16) | n.min(0xffff), Ordering::Relaxed);
        if n <= 20 {
            tracing::info!(target: "llm_sidecar::access", reason = reason.as_str(), peer = peer.unwrap_or("-"), "request refused before routing");
        } else if n == 21 {
            tracing::warn!(target: "llm_sidecar::access", reason = reason.as_str(), "more refusals this second: counted in llm_sidecar_rejected_requests_total, not logged");
        }
    }

    /// Whether notifications go to a webhook.
    pub fn webhook_on(&self) -> bool {
        self.config.load().webhook.is_some()
    }

    /// Kill any CLI process group still running, write out what is queued (request log) and
    /// remove the socket directory. Called on the way out.
    pub fn flush(&self) {
        let killed = self.cli_groups.kill_all();
        if killed > 0 {
            tracing::warn!(killed, "CLI processes still running at exit were killed");
        }
        crate::claude_cli::socket::remove_socket(&self.cli_socket);
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
        let pool = route
            .pool()
            .and_then(|i| snapshot.pools.get(i))
            .map_or("-", |p| &*p.name);
        let _ = route.metrics.set(metrics.route(&route.name, pool));
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
    /// The sidecar the request is counted in.
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

/// Bytes of request body a request holds against `limits.max_buffered_bytes`, given back when
/// dropped.
pub struct BufferLease(Arc<Sidecar>, usize);

impl BufferLease {
    /// Hold `n` more bytes if the total stays within `cap`.
    pub fn grow(&mut self, n: usize, cap: usize) -> bool {
        let ok = self
            .0
            .buffered
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                b.checked_add(n).filter(|t| *t <= cap)
            })
            .is_ok();
        if ok {
            self.1 += n;
        }
        ok
    }
}

impl Drop for BufferLease {
    fn drop(&mut self) {
        self.0.buffered.fetch_sub(self.1, Ordering::AcqRel);
    }
}
