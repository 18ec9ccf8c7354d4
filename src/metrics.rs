//! Prometheus metrics (prefix `llm_sidecar_`, base units, labels from small fixed sets: route,
//! pool, account, status class, outcome, kind, state, scope, result). Per-request counters use
//! handles resolved once per route and per account; gauges describing accounts are computed when
//! scraped, from the current snapshot.

use std::sync::{Arc, OnceLock};

use prometheus::{
    Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry,
};

/// Buckets from 1 ms to 10 min.
const SECONDS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 180.0, 600.0,
];
/// The sidecar's own time: 10 µs to 1 s.
const OVERHEAD: [f64; 12] = [
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1, 1.0,
];

/// How an upstream attempt ended, for `upstream_attempts_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `ok`: the account answered properly (2xx, or a 4xx that is the request's fault).
    Ok,
    /// `failure`: 500/502/503/504, an upstream error while proxying, or a stream cut.
    Failure,
    /// `rate_limited`: 429, 529 or an overloaded error.
    RateLimited,
    /// `key_broken`: 401 or 403.
    KeyBroken,
    /// `connect_error`: the connection was refused or failed (TLS included).
    ConnectError,
    /// `timeout`: connect, first-byte, first-token or idle timeout.
    Timeout,
}

impl Outcome {
    /// Every outcome, in the order of the per-account handles.
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Failure,
        Outcome::RateLimited,
        Outcome::KeyBroken,
        Outcome::ConnectError,
        Outcome::Timeout,
    ];

    /// The `outcome` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failure => "failure",
            Outcome::RateLimited => "rate_limited",
            Outcome::KeyBroken => "key_broken",
            Outcome::ConnectError => "connect_error",
            Outcome::Timeout => "timeout",
        }
    }
}
/// The `state` label values of `account_state`, as [`crate::resilience::health::State::name`] gives
/// them.
pub const STATES: [&str; 5] = ["healthy", "cooling_down", "open", "half_open", "broken_key"];

/// Every metric of the sidecar, registered in one registry that `/metrics` renders.
pub struct Metrics {
    /// The registry `GET /metrics` renders.
    pub registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    ttfb: HistogramVec,
    overhead: HistogramVec,
    attempts: IntCounterVec,
    tokens: IntCounterVec,
    cost: CounterVec,
    inflight: IntGaugeVec,
    retries: IntCounterVec,
    budget_exhausted: IntCounterVec,
    ratelimited: IntCounterVec,
    /// `config_reloads_total{result}`: `success` or `error`.
    pub reloads: IntCounterVec,
    /// `config_last_reload_success_timestamp_seconds`: unix time of the last load that succeeded.
    pub last_reload: Gauge,
    pub(crate) queue: IntGaugeVec,
    pub(crate) state: IntGaugeVec,
    pub(crate) score: GaugeVec,
    pub(crate) budget_used: GaugeVec,
    pub(crate) sessions: IntGaugeVec,
    pub(crate) log_dropped: IntCounter,
    pub(crate) notify_dropped: IntCounter,
    /// Connections and request heads refused before any hook saw them, by reason.
    pub rejected: IntCounterVec,
    /// SSE events longer than `limits.max_sse_event_bytes`, passed through unmetered.
    pub oversized_events: IntCounter,
    /// Responses whose usage could not be read, by reason (`encoding`, `too_large`).
    pub unmetered: IntCounterVec,
    /// claude-cli: processes running and requests queued, by pool, account and state.
    pub(crate) cli_processes: IntGaugeVec,
    /// claude-cli: how CLI processes ended, by pool and reason.
    cli_exits: IntCounterVec,
    /// Handles for requests that matched no route.
    pub unrouted: OnceLock<RouteMetrics>,
    /// `shared_state_errors_total{op}`: store operations that failed or timed out.
    pub(crate) shared_errors: IntCounterVec,
    /// `shared_state_up`: 1 while the store is connected and requests share.
    pub(crate) shared_up: prometheus::IntGauge,
}

fn help(name: &str, text: &str) -> Opts {
    Opts::new(format!("llm_sidecar_{name}"), text)
}

fn hist(name: &str, text: &str, buckets: &[f64]) -> HistogramOpts {
    HistogramOpts::new(format!("llm_sidecar_{name}"), text).buckets(buckets.to_vec())
}

/// Why a connection or a request head was refused before any hook saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// `server.max_connections` were already open.
    MaxConnections,
    /// The head did not arrive within `server.header_timeout`.
    HeaderTimeout,
    /// Pingora answered 400: a malformed request line, headers, length or encoding.
    Malformed,
    /// Pingora answered 405 to `CONNECT`.
    Connect,
    /// The client closed the connection (or it failed) in the middle of a head.
    Incomplete,
}

impl Rejected {
    /// Every reason, so each label shows 0 from the start.
    pub const ALL: [Rejected; 5] = [
        Rejected::MaxConnections,
        Rejected::HeaderTimeout,
        Rejected::Malformed,
        Rejected::Connect,
        Rejected::Incomplete,
    ];

    /// The `reason` label value of `rejected_requests_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::MaxConnections => "max_connections",
            Rejected::HeaderTimeout => "header_timeout",
            Rejected::Malformed => "malformed",
            Rejected::Connect => "connect_method",
            Rejected::Incomplete => "incomplete",
        }
    }
}

/// Per-request handles for one route (its own pool).
pub struct RouteMetrics {
    /// 1xx..5xx, and 0 for requests that got no answer.
    pub by_class: [IntCounter; 6],
    /// `request_duration_seconds`: from the request's arrival to the end of its answer.
    pub duration: Histogram,
    /// `upstream_ttfb_seconds`: from the request's arrival to the upstream's response head.
    pub ttfb: Histogram,
    /// `overhead_seconds`: the request's duration minus the time upstreams took.
    pub overhead: Histogram,
}

/// Per-request handles for one account.
pub struct AccountMetrics {
    /// In the order of [`Outcome::ALL`].
    outcomes: [IntCounter; 6],
    /// input, output, cache_read, cache_write.
    pub tokens: [IntCounter; 4],
    /// `cost_usd_total`: USD of the account's priced requests.
    pub cost: Counter,
}

impl Metrics {
    /// Create and register every metric, with the fixed label values at 0.
    pub fn new() -> Result<Arc<Self>, prometheus::Error> {
        let registry = Registry::new();
        let m = Metrics {
            requests: IntCounterVec::new(help("requests_total", "Requests answered, by route, pool and status class (0: no answer)."), &["route", "pool", "status_class"])?,
            duration: HistogramVec::new(hist("request_duration_seconds", "Time from the request's arrival to the end of its answer.", &SECONDS), &["route", "pool"])?,
            ttfb: HistogramVec::new(hist("upstream_ttfb_seconds", "Time from the request's arrival to the upstream's response head.", &SECONDS), &["route", "pool"])?,
            overhead: HistogramVec::new(hist("overhead_seconds", "Time spent in the sidecar itself: the request's duration minus the time upstreams took.", &OVERHEAD), &["route", "pool"])?,
            attempts: IntCounterVec::new(help("upstream_attempts_total", "Upstream attempts, by account and outcome."), &["pool", "account", "outcome"])?,
            tokens: IntCounterVec::new(help("tokens_total", "Tokens reported by the providers, by account and kind."), &["pool", "account", "kind"])?,
            cost: CounterVec::new(help("cost_usd_total", "Cost in US dollars of the priced requests, by account."), &["pool", "account"])?,
            inflight: IntGaugeVec::new(help("inflight_requests", "Requests being handled, by the route's pool."), &["pool"])?,
            retries: IntCounterVec::new(help("retries_total", "Attempts on another account after a failed one, by the route's pool."), &["pool"])?,
            budget_exhausted: IntCounterVec::new(help("retry_budget_exhausted_total", "Retries refused because the pool's retry budget was spent."), &["pool"])?,
            ratelimited: IntCounterVec::new(help("ratelimited_total", "Rate limiting, by scope: client (our per-client limit), account (upstream 429/529) or pool (every account limited)."), &["scope"])?,
            reloads: IntCounterVec::new(help("config_reloads_total", "Configuration reloads, by result."), &["result"])?,
            last_reload: Gauge::with_opts(help("config_last_reload_success_timestamp_seconds", "Unix time of the last configuration load that succeeded."))?,
            queue: IntGaugeVec::new(help("queue_depth", "Requests waiting for a concurrency slot of the account."), &["pool", "account"])?,
            state: IntGaugeVec::new(help("account_state", "The account's state: 1 for the current one."), &["pool", "account", "state"])?,
            score: GaugeVec::new(help("account_health_score", "The account's health score, 0 to 100."), &["pool", "account"])?,
            budget_used: GaugeVec::new(help("account_budget_used_ratio", "Share of the account's weekly budget used (0 without a budget)."), &["pool", "account"])?,
            sessions: IntGaugeVec::new(help("sessions", "Sessions bound to the account."), &["pool", "account"])?,
            log_dropped: IntCounter::with_opts(help("request_log_dropped_total", "Request-log rows dropped because the writer's queue was full."))?,
            notify_dropped: IntCounter::with_opts(help("notifications_dropped_total", "Notifications dropped: queue full or webhook failing after retries."))?,
            rejected: IntCounterVec::new(help("rejected_requests_total", "Connections and request heads refused before routing, by reason."), &["reason"])?,
            oversized_events: IntCounter::with_opts(help("sse_oversized_events_total", "Upstream SSE events longer than limits.max_sse_event_bytes, passed through unmetered."))?,
            unmetered: IntCounterVec::new(help("unmetered_responses_total", "Responses whose usage could not be read, by reason."), &["reason"])?,
            cli_processes: IntGaugeVec::new(help("cli_processes", "claude-cli: CLI processes running and requests queued, by account."), &["pool", "account", "state"])?,
            cli_exits: IntCounterVec::new(help("cli_exits_total", "claude-cli: how CLI processes ended, by pool and reason."), &["pool", "reason"])?,
            unrouted: OnceLock::new(),
            shared_errors: IntCounterVec::new(help("shared_state_errors_total", "Shared-store operations that failed or timed out (the request went on with local state), by op."), &["op"])?,
            shared_up: prometheus::IntGauge::with_opts(help("shared_state_up", "1 while the shared store is connected and requests share state through it."))?,
            registry,
        };
        let r = &m.registry;
        r.register(Box::new(m.requests.clone()))?;
        r.register(Box::new(m.duration.clone()))?;
        r.register(Box::new(m.ttfb.clone()))?;
        r.register(Box::new(m.overhead.clone()))?;
        r.register(Box::new(m.attempts.clone()))?;
        r.register(Box::new(m.tokens.clone()))?;
        r.register(Box::new(m.cost.clone()))?;
        r.register(Box::new(m.inflight.clone()))?;
        r.register(Box::new(m.retries.clone()))?;
        r.register(Box::new(m.budget_exhausted.clone()))?;
        r.register(Box::new(m.ratelimited.clone()))?;
        r.register(Box::new(m.reloads.clone()))?;
        r.register(Box::new(m.last_reload.clone()))?;
        r.register(Box::new(m.queue.clone()))?;
        r.register(Box::new(m.state.clone()))?;
        r.register(Box::new(m.score.clone()))?;
        r.register(Box::new(m.budget_used.clone()))?;
        r.register(Box::new(m.sessions.clone()))?;
        r.register(Box::new(m.log_dropped.clone()))?;
        r.register(Box::new(m.notify_dropped.clone()))?;
        r.register(Box::new(m.rejected.clone()))?;
        r.register(Box::new(m.oversized_events.clone()))?;
        r.register(Box::new(m.unmetered.clone()))?;
        r.register(Box::new(m.cli_processes.clone()))?;
        r.register(Box::new(m.cli_exits.clone()))?;
        r.register(Box::new(m.shared_errors.clone()))?;
        r.register(Box::new(m.shared_up.clone()))?;
        for op in ["admit", "record", "connect", "queue"] {
            m.shared_errors.with_label_values(&[op]);
        }
        for reason in Rejected::ALL {
            m.rejected.with_label_values(&[reason.as_str()]);
        }
        for reason in ["encoding", "too_large"] {
            m.unmetered.with_label_values(&[reason]);
        }
        for result in ["success", "error"] {
            m.reloads.with_label_values(&[result]);
        }
        let _ = m.unrouted.set(m.route("-", "-"));
        for scope in ["client", "account", "pool"] {
            m.ratelimited.with_label_values(&[scope]);
        }
        Ok(Arc::new(m))
    }

    /// Resolve the per-request handles of `route` (served by `pool`).
    pub fn route(&self, route: &str, pool: &str) -> RouteMetrics {
        let c = |class| self.requests.with_label_values(&[route, pool, class]);
        RouteMetrics {
            by_class: [c("0"), c("1xx"), c("2xx"), c("3xx"), c("4xx"), c("5xx")],
            duration: self.duration.with_label_values(&[route, pool]),
            ttfb: self.ttfb.with_label_values(&[route, pool]),
            overhead: self.overhead.with_label_values(&[route, pool]),
        }
    }

    /// Resolve the per-request handles of `account` in `pool`.
    pub fn account(&self, pool: &str, account: &str) -> AccountMetrics {
        AccountMetrics {
            outcomes: Outcome::ALL.map(|o| self.attempts.with_label_values(&[pool, account, o.as_str()])),
            tokens: ["input", "output", "cache_read", "cache_write"]
                .map(|k| self.tokens.with_label_values(&[pool, account, k])),
            cost: self.cost.with_label_values(&[pool, account]),
        }
    }

    /// The pool's handles; its counters show 0 from the start.
    pub fn pool_inflight(&self, pool: &str) -> prometheus::IntGauge {
        self.retries.with_label_values(&[pool]);
        self.budget_exhausted.with_label_values(&[pool]);
        self.inflight.with_label_values(&[pool])
    }

    /// Count a retry of a request routed to `pool` (`retries_total`).
    pub fn retry(&self, pool: &str) {
        self.retries.with_label_values(&[pool]).inc();
    }

    /// Count a retry refused for lack of `pool`'s retry budget (`retry_budget_exhausted_total`).
    pub fn budget_exhausted(&self, pool: &str) {
        self.budget_exhausted.with_label_values(&[pool]).inc();
    }

    /// Count a rate limit hit in `scope`: `client`, `account` or `pool` (`ratelimited_total`).
    pub fn ratelimited(&self, scope: &'static str) {
        self.ratelimited.with_label_values(&[scope]).inc();
    }

    /// How a claude-cli process ended (`ok`, `refused`, `error`, `rate_limited`, `unavailable`).
    pub fn cli_exit(&self, pool: &str, reason: &'static str) {
        self.cli_exits.with_label_values(&[pool, reason]).inc();
    }
}

impl AccountMetrics {
    /// The counter of attempts that ended with `outcome`.
    pub fn outcome(&self, outcome: Outcome) -> &IntCounter {
        &self.outcomes[outcome as usize]
    }
}

/// The label of a status code's class.
pub fn class_index(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100),
        _ => 0,
    }
}
