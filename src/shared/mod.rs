//! State shared across replicas through Redis (or Valkey): account rpm/tpm windows, client
//! windows, the per-account ledger, the weekly-budget stop and its notifications, sticky session
//! bindings and account health that travels (cooldowns, open breakers, broken keys).
//!
//! A request costs one round trip before it goes upstream ([`admit`]: one Lua script checks and
//! counts atomically) and one fire-and-forget write after it ends ([`record`]). Every operation
//! has a deadline (`shared.redis.timeout`); past it, or with the store down, the request goes on
//! with this process's own state, the failure is counted, the transition is logged once, and the
//! background service ([`service`]) reconnects with backoff. Concurrency slots and queues stay
//! local: they are about this process.

pub mod admit;
pub mod record;
pub mod service;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};
use tokio::sync::{mpsc, Notify};

use crate::config::SharedConf;
use crate::metrics::Metrics;

/// Writes queued for the store before they are dropped (and counted).
const QUEUE: usize = 4096;

/// Where the link to the store stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Link {
    /// Not connected yet (start-up).
    Starting = 0,
    /// Connected: requests share.
    Up = 1,
    /// Lost or never reached: requests use local state.
    Down = 2,
}

/// The operation that failed, for `shared_state_errors_total{op}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The check-and-count before a request goes upstream.
    Admit,
    /// A write after a request (usage, health).
    Record,
    /// Connecting (or reconnecting).
    Connect,
    /// A write found the queue full and was dropped.
    Queue,
}

impl Op {
    /// The `op` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Admit => "admit",
            Op::Record => "record",
            Op::Connect => "connect",
            Op::Queue => "queue",
        }
    }
}

thread_local! {
    /// Per thread: the connection [`Shared::near`] made for each store (by its address) and its
    /// generation. A few entries at most (one per sidecar in the process).
    static NEAR: std::cell::RefCell<Vec<(usize, u64, MultiplexedConnection)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The store's client, the current connection and the queue of writes.
pub struct Shared {
    client: redis::Client,
    prefix: Box<str>,
    timeout: Duration,
    /// The connection, and its generation (a failure on an older one is not this one's).
    conn: ArcSwapOption<(u64, MultiplexedConnection)>,
    generation: std::sync::atomic::AtomicU64,
    link: AtomicU8,
    /// Wakes the service when a connection is lost.
    lost: Notify,
    writes: mpsc::Sender<record::Write>,
    queued: Mutex<Option<mpsc::Receiver<record::Write>>>,
    metrics: Arc<Metrics>,
    admit_script: redis::Script,
    record_script: redis::Script,
    health_script: redis::Script,
}

impl Shared {
    /// A client for `conf` (no connection yet: [`service::SharedService`] makes it).
    pub fn new(conf: &SharedConf, metrics: &Arc<Metrics>) -> Result<Arc<Self>, String> {
        let client = client(conf)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        Ok(Arc::new(Shared {
            client,
            prefix: conf.prefix.clone(),
            timeout: conf.timeout,
            conn: ArcSwapOption::empty(),
            generation: std::sync::atomic::AtomicU64::new(0),
            link: AtomicU8::new(Link::Starting as u8),
            lost: Notify::new(),
            writes: tx,
            queued: Mutex::new(Some(rx)),
            metrics: Arc::clone(metrics),
            admit_script: redis::Script::new(admit::SCRIPT),
            record_script: redis::Script::new(record::SCRIPT),
            health_script: redis::Script::new(record::HEALTH),
        }))
    }

    /// Whether requests share now (connected).
    pub fn is_up(&self) -> bool {
        self.link.load(Ordering::Acquire) == Link::Up as u8
    }

    /// Connect once and `PING` (for `check --connect`).
    pub async fn ping(&self) -> Result<(), String> {
        let mut c = self.connect().await?;
        let pong: Result<String, _> = redis::cmd("PING").query_async(&mut c).await;
        pong.map(drop).map_err(|e| describe(&e))
    }

    async fn connect(&self) -> Result<MultiplexedConnection, String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout.max(Duration::from_millis(500))))
            .set_response_timeout(Some(self.timeout));
        let c = self.client.get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(self.timeout.max(Duration::from_secs(1)), c).await {
            Ok(r) => r.map_err(|e| describe(&e)),
            Err(_) => Err("timed out".into()),
        }
    }

    /// The connection to use now and its generation (`None`: down; use local state).
    fn conn(&self) -> Option<(u64, MultiplexedConnection)> {
        self.conn.load().as_deref().cloned()
    }

    /// A connection of the current generation whose driver runs on this thread's runtime (made
    /// on first use, within `timeout`): a request's round trip then needs no wake-up of another
    /// thread, which on a sidecar pinned to one core costs two context switches per request.
    async fn near(&self) -> Option<(u64, MultiplexedConnection)> {
        let gen = self.conn.load().as_deref()?.0;
        let me = self as *const Shared as usize;
        let found = NEAR.with(|n| {
            n.borrow()
                .iter()
                .find(|(id, g, _)| *id == me && *g == gen)
                .map(|(_, _, c)| c.clone())
        });
        if let Some(c) = found {
            return Some((gen, c));
        }
        let config = AsyncConnectionConfig::new().set_response_timeout(Some(self.timeout));
        let made = self.client.get_multiplexed_async_connection_with_config(&config);
        let made = tokio::time::timeout(self.timeout, made).await;
        let c = self.answer(Op::Admit, gen, made)?;
        NEAR.with(|n| {
            let mut n = n.borrow_mut();
            n.retain(|(id, _, _)| *id != me);
            n.push((me, gen, c.clone()));
        });
        Some((gen, c))
    }

    /// What an operation on connection `gen` gave: its value, or `None` with the failure
    /// counted. A timeout or a broken connection drops the connection (logged once, and the
    /// service reconnects); an error reply from the store (a script error, OOM) does not.
    fn answer<T>(&self, op: Op, gen: u64, r: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>) -> Option<T> {
        let error = match r {
            Ok(Ok(v)) => return Some(v),
            Ok(Err(e)) if e.code().is_some() => {
                self.metrics.shared_errors.with_label_values(&[op.as_str()]).inc();
                tracing::debug!(target: "llm_sidecar::shared", op = op.as_str(), error = %describe(&e), "store refused an operation");
                return None;
            }
            Ok(Err(e)) => describe(&e),
            Err(_) => "timed out".to_string(),
        };
        self.failed(op, gen, &error);
        None
    }

    /// An operation failed: count it; the first failure of the current connection drops it,
    /// logs once and wakes the service to reconnect.
    fn failed(&self, op: Op, gen: u64, error: &str) {
        self.metrics.shared_errors.with_label_values(&[op.as_str()]).inc();
        if op == Op::Queue || gen != self.generation.load(Ordering::Acquire) {
            return;
        }
        let was = self.link.swap(Link::Down as u8, Ordering::AcqRel);
        if was == Link::Up as u8 {
            self.conn.store(None);
            self.metrics.shared_up.set(0);
            tracing::warn!(target: "llm_sidecar::shared", prefix = &*self.prefix, op = op.as_str(), error, "shared state unavailable: using local state until it is back");
            self.lost.notify_one();
        }
    }

    /// A connection was made: requests share again.
    fn connected(&self, c: MultiplexedConnection) {
        let gen = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.conn.store(Some(Arc::new((gen, c))));
        let was = self.link.swap(Link::Up as u8, Ordering::AcqRel);
        self.metrics.shared_up.set(1);
        if was == Link::Down as u8 {
            tracing::info!(target: "llm_sidecar::shared", prefix = &*self.prefix, "shared state is back: sharing again");
        } else {
            tracing::info!(target: "llm_sidecar::shared", prefix = &*self.prefix, "shared state connected");
        }
    }

    /// Connecting failed: counted, and logged once when it leaves start-up.
    fn unreachable(&self, error: &str) {
        self.metrics
            .shared_errors
            .with_label_values(&[Op::Connect.as_str()])
            .inc();
        let was = self.link.swap(Link::Down as u8, Ordering::AcqRel);
        if was == Link::Starting as u8 {
            tracing::warn!(target: "llm_sidecar::shared", prefix = &*self.prefix, error, "shared state unreachable: using local state until it is reached");
        }
    }

    /// `prefix:kind:...`: every key the sidecar writes starts with the prefix.
    fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// The client for `conf`, its password set apart from the URL.
fn client(conf: &SharedConf) -> Result<redis::Client, String> {
    let mut info = conf
        .url
        .expose()
        .into_connection_info()
        .map_err(|e| format!("shared.redis: not a valid Redis URL ({:?})", e.kind()))?;
    if let Some(pw) = &conf.password {
        let settings = info.redis_settings().clone().set_password(pw.expose().trim_end());
        info = info.set_redis_settings(settings);
    }
    redis::Client::open(info).map_err(|e| format!("shared.redis: {}", describe(&e)))
}

/// A store error for a log line: its kind and the server's code, never the URL.
fn describe(e: &redis::RedisError) -> String {
    match e.code() {
        Some(code) => format!("{:?} ({code})", e.kind()),
        None if e.is_timeout() => "timed out".into(),
        None if e.is_connection_refusal() => "connection refused".into(),
        None if e.is_io_error() || e.is_connection_dropped() => "connection lost".into(),
        None => format!("{:?}", e.kind()),
    }
}

/// A duration in whole milliseconds for the store, at least 1 and at most 30 days.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, 30 * 24 * 3_600_000)
}
