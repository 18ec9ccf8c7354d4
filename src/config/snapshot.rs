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
    /// `listen`: where apps connect.
    pub listen: SocketAddr,
    /// `admin.listen`: where the admin API listens.
    pub admin_listen: SocketAddr,
    /// `server.threads`: Pingora worker threads (a change needs a restart).
    pub threads: usize,
    /// `server.shutdown_grace`: how long in-flight requests may run on after SIGTERM.
    pub shutdown_grace: Duration,
    /// Deadlines and caps on client connections.
    pub server: ServerLimits,
    /// `limits.*`, in bytes and levels.
    pub limits: Limits,
    /// Browser access, when configured.
    pub cors: Option<crate::cors::Cors>,
    /// `routes`, in the file's order: the first match wins.
    pub routes: Vec<Route>,
    /// `pools`, sorted by name; routes and fallbacks refer to them by index.
    pub pools: Vec<Pool>,
    /// What the front doors serve, by name.
    pub models: Vec<Model>,
    /// When non-empty, every request must carry one of these tokens.
    pub client_tokens: Vec<ClientToken>,
    /// `prices`, in the file's order: the first glob that matches the model wins.
    pub prices: Vec<Price>,
    /// `log`: the request log.
    pub log: LogConf,
    /// Requests per minute allowed to each client.
    pub client_rpm: Option<u32>,
    /// `notifications.webhook`: where events are POSTed (log only when `None`).
    pub webhook: Option<Webhook>,
    /// Shares of the weekly budget that trigger `budget_threshold`.
    pub thresholds: Vec<f64>,
    /// Bearer token for `/admin/*`.
    pub admin_token: Option<Secret>,
    /// A hash of the file's text and every secret it read: equal when nothing changed.
    pub fingerprint: u64,
    /// Files the config reads keys from (watched for rotation).
    pub key_files: Vec<std::path::PathBuf>,
    /// `shared.redis` (`None`: state stays in this process). Read at start-up only.
    pub shared: Option<SharedConf>,
}

/// Where and how the request log is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConf {
    /// `log.sqlite`: the SQLite file (`None`: no request log).
    pub sqlite: Option<PathBuf>,
    /// `log.retention`: rows older than this are deleted in the background.
    pub retention: Duration,
    /// `log.queue`: rows waiting for the writer at most; past it new rows are dropped and counted.
    pub queue: usize,
}

/// Global bounds on a request (`limits.*`), converted to `usize`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `limits.max_body_bytes`: the largest request body accepted, in bytes (413 past it).
    pub max_body_bytes: usize,
    /// `limits.max_json_depth`: the deepest JSON nesting accepted (400 past it).
    pub max_json_depth: usize,
    /// `limits.max_sse_event_bytes`: the longest upstream SSE event metered, in bytes; a longer one
    /// passes unmetered and is counted.
    pub max_sse_event_bytes: usize,
    /// `limits.max_buffered_bytes`: request bodies held in memory by all requests together, in
    /// bytes (503 `overloaded` past it).
    pub max_buffered_bytes: usize,
}

/// What a client connection may cost (`server.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// `server.header_timeout`: the whole request head (and a new connection's first bytes) must
    /// arrive within this (else 408).
    pub header_timeout: Duration,
    /// `server.keepalive_timeout`: an idle keep-alive connection is closed after this.
    pub keepalive_timeout: Duration,
    /// `server.body_timeout`: the whole request body must arrive within this (else 408).
    pub body_timeout: Duration,
    /// `server.max_connections`: client connections open at once on the app listener; past it new
    /// ones get 503 and are closed.
    pub max_connections: usize,
}

/// One route (`routes[]`): which requests go to which pool.
pub struct Route {
    /// `routes[].name`: the `route` label in logs and metrics.
    pub name: Arc<str>,
    /// Matches at a path-segment boundary; `/` matches everything.
    pub path_prefix: Box<str>,
    /// `match.header`: a header that must carry exactly this value (`None`: no header condition).
    pub header: Option<(HeaderName, HeaderValue)>,
    /// `routes[].strip_prefix`: remove `path_prefix` from the path before forwarding.
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
    /// What clients put in `model`.
    pub name: Arc<str>,
    /// The order its targets are tried in.
    pub strategy: super::raw::Strategy,
    /// A request with Claude Code CLI fields may be served by an API target without them.
    pub degrade: bool,
    /// The ways to serve it, in configured order.
    pub targets: Vec<Target>,
}

/// One way to serve a model: a pool and the model name its provider knows.
#[derive(Debug, Clone)]
pub struct Target {
    /// Index into [`Snapshot::pools`].
    pub pool: usize,
    /// The model name the pool's provider knows.
    pub model: Arc<str>,
}

/// One pool (`pools.<name>`): accounts of one provider, and how requests to them behave.
pub struct Pool {
    /// The pool's name, the key under `pools`.
    pub name: Arc<str>,
    /// `name` as a header value (`x-llm-sidecar-pool`).
    pub name_header: HeaderValue,
    /// `pools.<name>.provider`: everything that differs between the APIs.
    pub provider: &'static dyn Provider,
    /// `pools.<name>.timeouts`.
    pub timeouts: Timeouts,
    /// `pools.<name>.accounts`, in the file's order (at most 64).
    pub accounts: Vec<Account>,
    /// Rotation counter for account choice.
    pub next: AtomicUsize,
    /// `pools.<name>.retry`.
    pub retry: RetryConf,
    /// `pools.<name>.breaker`: when failures take an account out of rotation, and for how long.
    pub breaker: BreakerConf,
    /// `pools.<name>.health_check` (`None`: no active checks).
    pub health_check: Option<HealthCheckConf>,
    /// Pools tried, in order, when no account here can serve (indices into `pools`).
    pub fallback: Vec<usize>,
    /// `pools.<name>.session`: how requests name their session, and how sessions are bound.
    pub session: SessionConf,
    /// `pools.<name>.rebalance` (`None`: sessions are never moved by the rebalancer).
    pub rebalance: Option<RebalanceConf>,
    /// What outlives this snapshot (retry budget, sessions).
    pub state: Arc<PoolState>,
    /// `inflight_requests{pool}`, resolved when the snapshot is installed.
    pub inflight: OnceLock<IntGauge>,
    /// `max_tokens` for an Anthropic target when a front-door request names none.
    pub default_max_tokens: u64,
    /// claude-cli pools: how the CLI is run.
    pub cli: Option<Arc<crate::claude_cli::CliConf>>,
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

/// `pools.<name>.retry`: how many tries a request gets, how far apart, and how many retries the
/// pool allows in all.
#[derive(Debug, Clone, Copy)]
pub struct RetryConf {
    /// Tries in total, the first included.
    pub attempts: u32,
    /// Backoff before the first retry; it doubles per retry, with jitter, up to `max_backoff`.
    pub backoff: Duration,
    /// The longest backoff between tries.
    pub max_backoff: Duration,
    /// Retries may add at most this share of the pool's recent requests (plus a small floor).
    pub budget: f64,
}

/// `pools.<name>.health_check`: a `GET` of `path` with each account's key.
#[derive(Debug, Clone)]
pub struct HealthCheckConf {
    /// Time between checks of one account.
    pub interval: Duration,
    /// How long one check may take.
    pub timeout: Duration,
    /// The upstream path checked (starts with `/`).
    pub path: String,
}

/// An account's concurrency and rate limits (`pools.<name>.accounts[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLimits {
    /// `max_concurrent`: in-flight requests at most (`None`: unlimited).
    pub max_concurrent: Option<u32>,
    /// `max_queue`: requests waiting for a slot at most; past it the next account, or 503
    /// `queue_full`.
    pub max_queue: u32,
    /// `queue_timeout`: how long a request waits for a slot before 503 `queue_timeout`.
    pub queue_timeout: Duration,
    /// `rpm`: requests per minute (`None`: unlimited).
    pub rpm: Option<u32>,
    /// `tpm`: metered tokens per minute (`None`: unlimited).
    pub tpm: Option<u64>,
}

/// `pools.<name>.timeouts`: deadlines on each upstream attempt, and on the whole request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect and TLS handshake (refused: 502; timed out: 504).
    pub connect: Duration,
    /// Until the response head; past it 504, retried on another account.
    pub first_byte: Duration,
    /// From the response head to the first content event (`None`: off).
    pub first_token: Option<Duration>,
    /// Silence inside a stream longer than this ends it.
    pub idle: Duration,
    /// The whole request from its arrival, retries and stream included (the route's pool's).
    pub total: Duration,
}

/// One account (`pools.<name>.accounts[]`): an upstream and the key used with it.
pub struct Account {
    /// `accounts[].name`: the `account` label in logs and metrics, unique in its pool.
    pub name: Arc<str>,
    /// `name` as a header value (`x-llm-sidecar-account`).
    pub name_header: HeaderValue,
    /// `accounts[].base_url`, pre-parsed.
    pub upstream: Upstream,
    /// The header carrying this account's key, value marked sensitive.
    pub credential: (HeaderName, HeaderValue),
    /// `max_concurrent`, `max_queue`, `queue_timeout`, `rpm`, `tpm`.
    pub limits: AccountLimits,
    /// Divides the score's penalties: an account of weight 2 looks half as loaded.
    pub weight: f64,
    /// `accounts[].budget`: spend caps in USD (`None`: no caps, no budget terms in the score).
    pub budget: Option<Budget>,
    /// What outlives this snapshot (ledger, health, limits), shared with the next one.
    pub state: Arc<AccountState>,
    /// Metric handles, resolved when the snapshot is installed.
    pub metrics: OnceLock<AccountMetrics>,
    /// claude-cli accounts: a logged-in config directory, or an API key.
    pub cli: Option<crate::claude_cli::AccountMode>,
}

/// Where an account's requests go, pre-parsed from `base_url`.
pub struct Upstream {
    /// `https` (true) or `http`.
    pub tls: bool,
    /// Host name or IP literal, without brackets.
    pub host: Box<str>,
    /// The URL's port, else 443 for https and 80 for http.
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
    /// The webhook's scheme, host and port.
    pub target: Upstream,
    /// Path and query of the URL.
    pub path: String,
    /// `notifications.webhook.timeout`: how long one POST may take.
    pub timeout: Duration,
    /// `notifications.webhook.backoff`: the wait before the first retry, doubled after each.
    pub backoff: Duration,
}

/// One client token (`clients.tokens[]`): a virtual key an app sends in place of a real one.
pub struct ClientToken {
    /// `clients.tokens[].name`: names the client in logs and limits.
    pub name: Arc<str>,
    /// The token itself, from `token_env` or `token_file`, whitespace trimmed.
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

    /// The index in [`Snapshot::pools`] of the pool named `name`.
    pub fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| &*p.name == name)
    }

    /// The model named `name` in `models`.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| &*m.name == name)
    }
}

/// `shared.redis`, validated. The connection itself lives outside the snapshot
/// ([`crate::shared::Shared`]); a change here takes effect at the next start.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedConf {
    /// The URL (it may carry credentials, so it never prints).
    pub url: Secret,
    /// The password from `password_env` / `password_file`.
    pub password: Option<Secret>,
    /// Prefix of every key.
    pub prefix: Box<str>,
    /// Deadline of one operation.
    pub timeout: Duration,
}
