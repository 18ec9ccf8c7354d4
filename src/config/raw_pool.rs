//! The config file as written, per pool: the pool's behaviour (timeouts, retries, breaker, health
//! checks, sessions, rebalancing) and its accounts.

use std::time::Duration;

use serde::Deserialize;

use super::units::{Dur, Percent};
use crate::provider::{AuthStyle, ProviderKind};

fn secs(n: u64) -> Dur {
    Dur(Duration::from_secs(n))
}

/// One entry of `pools`: accounts of one provider and how requests to them behave.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    /// `pools.<name>.provider`: the API the pool's accounts speak.
    pub provider: ProviderKind,
    /// `pools.<name>.timeouts`.
    #[serde(default)]
    pub timeouts: RawTimeouts,
    /// `pools.<name>.retry`.
    #[serde(default)]
    pub retry: RawRetry,
    /// `pools.<name>.breaker`.
    #[serde(default)]
    pub breaker: RawBreaker,
    /// `pools.<name>.health_check`: active checks of every account (none when absent).
    pub health_check: Option<RawHealthCheck>,
    /// `pools.<name>.fallback`: pools tried in order when no account here can serve (same API
    /// only).
    #[serde(default)]
    pub fallback: Vec<String>,
    /// `pools.<name>.session`: sticky sessions.
    #[serde(default)]
    pub session: RawSession,
    /// `pools.<name>.rebalance`: periodic moves of idle sessions between accounts (off when
    /// absent).
    pub rebalance: Option<RawRebalance>,
    /// `max_tokens` sent to an Anthropic target when a front-door request has none (4096).
    pub default_max_tokens: Option<u64>,
    /// claude-cli pools: how the CLI is run.
    pub cli: Option<super::raw_cli::RawCli>,
    /// `pools.<name>.accounts`: at least one, at most 64.
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
}

/// How a request names its session, and how sessions are bound.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSession {
    /// The header naming the session; else Anthropic `metadata.user_id`; else none.
    pub header: String,
    /// A session with no request for this long is idle (it may be rebalanced).
    pub idle_after: Dur,
    /// A session with no request for this long is forgotten.
    pub expire_after: Dur,
    /// Sessions bound to one account at most (default 15).
    pub max_per_account: u32,
    /// Sessions remembered per pool; the least recently used go first beyond it.
    pub max_sessions: usize,
}

impl Default for RawSession {
    fn default() -> Self {
        RawSession {
            header: "x-session-id".into(),
            idle_after: secs(30 * 60),
            expire_after: secs(24 * 3600),
            max_per_account: 15,
            max_sessions: 100_000,
        }
    }
}

/// `pools.<name>.rebalance`: every `every`, if the hottest and coolest accounts' 5-hour-block spend
/// differ by at least `cost_gap_usd`, up to `max_moves` idle sessions move from the hottest to the
/// coolest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRebalance {
    /// How often rebalancing runs.
    pub every: Dur,
    /// The smallest block-spend gap between the hottest and coolest account that triggers a move,
    /// in USD.
    pub cost_gap_usd: f64,
    /// Idle sessions moved per run at most (default 3).
    #[serde(default = "three")]
    pub max_moves: u32,
}

fn three() -> u32 {
    3
}

/// `accounts[].budget`: spend caps in USD, from the usage ledger.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    /// Spend allowed over a rolling 7 days, in USD; past it the account takes no requests (none or
    /// 0: no cap).
    pub weekly_usd: Option<f64>,
    /// The spend the score measures the current UTC 5-hour block against, in USD (none or 0: no
    /// score term).
    pub block_usd: Option<f64>,
    /// Share of `weekly_usd` past which the account takes no new sessions (default 0.85).
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    0.85
}

/// `attempts` = tries in total, first included.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetry {
    /// Tries in total, the first included (1-10, default 3).
    pub attempts: u32,
    /// The wait before the first retry; it doubles, with jitter, per retry (default 50ms).
    pub backoff: Dur,
    /// The longest wait between tries (default 2s).
    pub max_backoff: Dur,
    /// Retries may add at most this share of the pool's requests over 10 s, plus 10 (default 20%).
    pub budget: Percent,
}

impl Default for RawRetry {
    fn default() -> Self {
        RawRetry {
            attempts: 3,
            backoff: Dur(Duration::from_millis(50)),
            max_backoff: secs(2),
            budget: Percent(0.2),
        }
    }
}

/// `pools.<name>.breaker`: when an account's failures take it out of rotation, and for how long.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBreaker {
    /// Consecutive failures that open the breaker (default 5).
    pub failures: u32,
    /// How long the breaker stays open the first time (default 30s); it doubles on each failed
    /// probe.
    pub cooldown: Dur,
    /// The longest an open breaker, or a rate-limit cooldown, lasts (default 5m).
    pub max_cooldown: Dur,
}

impl Default for RawBreaker {
    fn default() -> Self {
        RawBreaker {
            failures: 5,
            cooldown: secs(30),
            max_cooldown: secs(300),
        }
    }
}

/// `pools.<name>.health_check`: `GET path` with each account's key every `interval`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    /// Time between checks of one account (default 15s).
    #[serde(default = "fifteen_seconds")]
    pub interval: Dur,
    /// How long one check may take (default 10s).
    #[serde(default = "ten_seconds")]
    pub timeout: Dur,
    /// The upstream path checked, e.g. `/v1/models` (must start with `/`).
    pub path: String,
}

fn fifteen_seconds() -> Dur {
    secs(15)
}

pub(super) fn ten_seconds() -> Dur {
    secs(10)
}

/// `pools.<name>.timeouts`: deadlines on each upstream attempt, and on the whole request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    /// TCP connect and TLS handshake (default 5s).
    pub connect: Dur,
    /// Until the upstream's response head (default 300s); past it 504, retried on another account.
    pub first_byte: Dur,
    /// Time to the first content event of a stream (off when absent).
    pub first_token: Option<Dur>,
    /// Silence inside a stream longer than this ends it (default 60s).
    pub idle: Dur,
    /// The whole request from its arrival, retries and stream included (default 10m).
    pub total: Dur,
}

impl Default for RawTimeouts {
    fn default() -> Self {
        RawTimeouts {
            connect: secs(5),
            first_byte: secs(300),
            first_token: None,
            idle: secs(60),
            total: secs(600),
        }
    }
}

/// One entry of `pools.<name>.accounts`: an upstream endpoint and the key used with it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    /// Used in logs, metrics and response headers (1-64 of `A-Z a-z 0-9 - _ .`; unique in the
    /// pool).
    pub name: String,
    /// `https://host[:port][/path]` (or `http://`); the path is prefixed to every forwarded path.
    /// Not used by claude-cli accounts.
    pub base_url: Option<String>,
    /// claude-cli: a logged-in Claude Code config directory (`CLAUDE_CONFIG_DIR`, a
    /// subscription); else the key (`key_env` / `key_file`) is its `ANTHROPIC_API_KEY`.
    pub config_dir: Option<String>,
    /// Environment variable holding the key (exactly one of `key_env` and `key_file`).
    pub key_env: Option<String>,
    /// File holding the key, surrounding whitespace trimmed (exactly one of `key_env` and
    /// `key_file`).
    pub key_file: Option<String>,
    /// The header the key goes in; the provider's usual one when absent.
    pub auth: Option<AuthStyle>,
    /// In-flight requests to this account (unlimited when absent).
    pub max_concurrent: Option<u32>,
    /// Requests waiting for a slot at most; past it the next account, or 503 `queue_full` (default
    /// 128).
    #[serde(default = "default_max_queue")]
    pub max_queue: u32,
    /// How long a request waits in the queue for a slot; past it 503 `queue_timeout` (default 30s).
    #[serde(default = "thirty_seconds")]
    pub queue_timeout: Dur,
    /// Requests per minute sent to this account (unlimited when absent).
    pub rpm: Option<u32>,
    /// Tokens per minute, as metered, used by this account (unlimited when absent).
    pub tpm: Option<u64>,
    /// Divides the score's penalties: an account of weight 2 looks half as loaded (default 1).
    #[serde(default = "one")]
    pub weight: f64,
    /// Spend caps (none when absent).
    pub budget: Option<RawBudget>,
}

fn one() -> f64 {
    1.0
}

fn default_max_queue() -> u32 {
    128
}

fn thirty_seconds() -> Dur {
    secs(30)
}
