//! The validated, ready-to-use configuration the request path reads (behind an `ArcSwap`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};

use crate::alloc::score::Budget;
use crate::dns::DnsCache;
use crate::metrics::{AccountMetrics, RouteMetrics};
use crate::provider::Provider;
use crate::resilience::health::BreakerConf;
use crate::secret::Secret;
use crate::state::{AccountState, PoolState};
use crate::usage::price::Price;
use prometheus::IntGauge;

/// One loaded configuration. Immutable; a reload builds a new one and swaps it in.
pub struct Snapshot {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub threads: usize,
    pub shutdown_grace: Duration,
    /// Deadlines and caps on client connections.
    pub server: ServerLimits,
    pub limits: Limits,
    /// Browser access, when configured.
    pub cors: Option<crate::cors::Cors>,
    pub routes: Vec<Route>,
    pub pools: Vec<Pool>,
    /// What the front doors serve, by name.
    pub models: Vec<Model>,
    /// When non-empty, every request must carry one of these tokens.
    pub client_tokens: Vec<ClientToken>,
    pub prices: Vec<Price>,
    pub log: LogConf,
    /// Requests per minute allowed to each client.
    pub client_rpm: Option<u32>,
    pub webhook: Option<Webhook>,
    /// Shares of the weekly budget that trigger `budget_threshold`.
    pub thresholds: Vec<f64>,
    /// Bearer token for `/admin/*`.
    pub admin_token: Option<Secret>,
    /// A hash of the file's text and every secret it read: equal when nothing changed.
    pub fingerprint: u64,
    /// Files the config reads keys from (watched for rotation).
    pub key_files: Vec<std::path::PathBuf>,
}

/// Where and how the request log is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConf {
    pub sqlite: Option<PathBuf>,
    pub retention: Duration,
    pub queue: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_json_depth: usize,
    pub max_sse_event_bytes: usize,
    pub max_buffered_bytes: usize,
}

/// What a client connection may cost (`server.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    pub header_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

pub struct Route {
    pub name: Arc<str>,
    /// Matches at a path-segment boundary; `/` matches everything.
    pub path_prefix: Box<str>,
    pub header: Option<(HeaderName, HeaderValue)>,
    pub strip_prefix: bool,
    /// What serves it: a pool (pass-through) or a front door.
    pub target: RouteTarget,
    /// Metric handles, resolved when the snapshot is installed.
    pub metrics: OnceLock<RouteMetrics>,
}

/// What a route leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteTarget {
    /// Pass-through to this pool (index into [`Snapshot::pools`]); the client speaks its API.
    Pool(usize),
    /// A front door speaking this API, serving any model of [`Snapshot::models`] (or `POOL/MODEL`).
    Door(crate::provider::Dialect),
}

impl Route {
    /// The route's pool, for a pass-through route.
    pub fn pool(&self) -> Option<usize> {
        match self.target {
            RouteTarget::Pool(p) => Some(p),
            RouteTarget::Door(_) => None,
        }
    }
}

/// A model clients name on the front doors, and the targets that serve it.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: Arc<str>,
    pub strategy: super::raw::Strategy,
    /// A request with Claude Code CLI fields may be served by an API target without them.
    pub degrade: bool,
    pub targets: Vec<Target>,
}

/// One way to serve a model: a pool and the model name its provider knows.
#[derive(Debug, Clone)]
pub struct Target {
    /// Index into [`Snapshot::pools`].
    pub pool: usize,
    pub model: Arc<str>,
}

pub struct Pool {
    pub name: Arc<str>,
    /// `name` as a header value (`x-llm-sidecar-pool`).
    pub name_header: HeaderValue,
    pub provider: &'static dyn Provider,
    pub timeouts: Timeouts,
    pub accounts: Vec<Account>,
    /// Rotation counter for account choice.
    pub next: AtomicUsize,
    pub retry: RetryConf,
    pub breaker: BreakerConf,
    pub health_check: Option<HealthCheckConf>,
    /// Pools tried, in order, when no account here can serve (indices into `pools`).
    pub fallback: Vec<usize>,
    pub session: SessionConf,
    pub rebalance: Option<RebalanceConf>,
    /// What outlives this snapshot (retry budget, sessions).
    pub state: Arc<PoolState>,
    /// `inflight_requests{pool}`, resolved when the snapshot is installed.
    pub inflight: OnceLock<IntGauge>,
    /// `max_tokens` for an Anthropic target when a front-door request names none.
    pub default_max_tokens: u64,
}

#[derive(Debug, Clone)]
pub struct SessionConf {
    pub header: HeaderName,
    pub idle_after: Duration,
    pub expire_after: Duration,
    pub max_per_account: u32,
    pub max_sessions: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct RebalanceConf {
    pub every: Duration,
    pub cost_gap_usd: f64,
    pub max_moves: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct RetryConf {
    /// Tries in total, the first included.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Retries may add at most this share of the pool's recent requests (plus a small floor).
    pub budget: f64,
}

#[derive(Debug, Clone)]
pub struct HealthCheckConf {
    pub interval: Duration,
    pub timeout: Duration,
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_concurrent: Option<u32>,
    pub max_queue: u32,
    pub queue_timeout: Duration,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    /// From the response head to the first content event (`None`: off).
    pub first_token: Option<Duration>,
    pub idle: Duration,
    pub total: Duration,
}

pub struct Account {
    pub name: Arc<str>,
    /// `name` as a header value (`x-llm-sidecar-account`).
    pub name_header: HeaderValue,
    pub upstream: Upstream,
    /// The header carrying this account's key, value marked sensitive.
    pub credential: (HeaderName, HeaderValue),
    pub limits: AccountLimits,
    /// Divides the score's penalties: an account of weight 2 looks half as loaded.
    pub weight: f64,
    pub budget: Option<Budget>,
    /// What outlives this snapshot (ledger, health, limits), shared with the next one.
    pub state: Arc<AccountState>,
    /// Metric handles, resolved when the snapshot is installed.
    pub metrics: OnceLock<AccountMetrics>,
}

/// Where an account's requests go, pre-parsed from `base_url`.
pub struct Upstream {
    pub tls: bool,
    pub host: Box<str>,
    pub port: u16,
    /// Set when the host is an IP literal: no DNS needed.
    pub ip: Option<IpAddr>,
    /// Cached resolution of `host` (unused for IP literals).
    pub dns: Arc<DnsCache>,
    /// Path prefix from `base_url` without a trailing slash (`/api`, or empty).
    pub base_path: Box<str>,
    /// `host` or `host:port` when the port is not the scheme's default.
    pub host_header: HeaderValue,
}

impl Upstream {
    /// The address to connect to, resolved asynchronously and cached.
    pub async fn addr(&self) -> Result<SocketAddr, String> {
        match self.ip {
            Some(ip) => Ok(SocketAddr::new(ip, self.port)),
            None => self.dns.resolve().await,
        }
    }
}

/// Where notifications are POSTed (`notifications.webhook`).
pub struct Webhook {
    pub target: Upstream,
    /// Path and query of the URL.
    pub path: String,
    pub timeout: Duration,
}

pub struct ClientToken {
    pub name: Arc<str>,
    pub token: Secret,
}

impl Snapshot {
    /// The one-line summary `check` prints.
    pub fn summary(&self) -> String {
        let accounts: usize = self.pools.iter().map(|p| p.accounts.len()).sum();
        format!(
            "{} routes, {} pools, {} accounts; listening on {}, admin on {}",
            self.routes.len(),
            self.pools.len(),
            accounts,
            self.listen,
            self.admin_listen
        )
    }

    pub fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| &*p.name == name)
    }

    /// The model named `name` in `models`.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| &*m.name == name)
    }
}
