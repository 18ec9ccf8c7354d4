//! The config file as written: serde types that reject unknown keys, with the documented defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

pub use super::raw_server::{RawAdmin, RawCors, RawLimits, RawServer};
pub use super::units::{Dur, Percent};

use crate::provider::{AuthStyle, ProviderKind};

fn secs(n: u64) -> Dur {
    Dur(Duration::from_secs(n))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    #[serde(default)]
    pub pools: BTreeMap<String, RawPool>,
    #[serde(default)]
    pub clients: RawClients,
    #[serde(default)]
    pub prices: Vec<RawPrice>,
    /// What the front doors serve.
    #[serde(default)]
    pub models: Vec<RawModel>,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub notifications: RawNotifications,
    /// Browser access: which origins may call the sidecar (none when absent).
    pub cors: Option<RawCors>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: String,
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    #[serde(default = "yes")]
    pub strip_prefix: bool,
    /// Pass-through: the pool whose API the client speaks.
    pub pool: Option<String>,
    /// Front door: the API the client speaks, served by any model of `models`.
    pub api: Option<Api>,
}

/// The APIs a front door speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// OpenAI Chat Completions.
    Openai,
    /// Anthropic Messages.
    Anthropic,
}

/// A model clients name in `model`, served by its targets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: String,
    #[serde(default)]
    pub strategy: Strategy,
    /// Requests with Claude Code CLI fields may fall back to an API target without them.
    #[serde(default)]
    pub degrade: bool,
    #[serde(default)]
    pub targets: Vec<RawTarget>,
}

/// The order a model's targets are tried in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// As listed.
    #[default]
    Ordered,
    /// The lowest price-table cost for the request's input first.
    Cheapest,
}

/// One way to serve a model: a pool and the model name its provider knows.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub pool: String,
    pub model: String,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    pub path_prefix: Option<String>,
    pub header: Option<RawHeaderMatch>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMatch {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub provider: ProviderKind,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    #[serde(default)]
    pub retry: RawRetry,
    #[serde(default)]
    pub breaker: RawBreaker,
    pub health_check: Option<RawHealthCheck>,
    #[serde(default)]
    pub fallback: Vec<String>,
    #[serde(default)]
    pub session: RawSession,
    pub rebalance: Option<RawRebalance>,
    /// `max_tokens` sent to an Anthropic target when a front-door request has none (4096).
    pub default_max_tokens: Option<u64>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRebalance {
    pub every: Dur,
    pub cost_gap_usd: f64,
    #[serde(default = "three")]
    pub max_moves: u32,
}

fn three() -> u32 {
    3
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub weekly_usd: Option<f64>,
    pub block_usd: Option<f64>,
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_threshold() -> f64 {
    0.85
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    pub webhook: Option<RawWebhook>,
    #[serde(default = "default_thresholds")]
    pub thresholds: Vec<f64>,
}

impl Default for RawNotifications {
    fn default() -> Self {
        RawNotifications {
            webhook: None,
            thresholds: default_thresholds(),
        }
    }
}

fn default_thresholds() -> Vec<f64> {
    vec![0.8, 0.9]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// Environment variable holding the URL (it may carry a secret).
    pub url_env: String,
    #[serde(default = "ten_seconds")]
    pub timeout: Dur,
}

/// `attempts` = tries in total, first included.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetry {
    pub attempts: u32,
    pub backoff: Dur,
    pub max_backoff: Dur,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBreaker {
    pub failures: u32,
    pub cooldown: Dur,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    #[serde(default = "fifteen_seconds")]
    pub interval: Dur,
    #[serde(default = "ten_seconds")]
    pub timeout: Dur,
    pub path: String,
}

fn fifteen_seconds() -> Dur {
    secs(15)
}

fn ten_seconds() -> Dur {
    secs(10)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTimeouts {
    pub connect: Dur,
    pub first_byte: Dur,
    /// Time to the first content event of a stream (off when absent).
    pub first_token: Option<Dur>,
    pub idle: Dur,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub name: String,
    pub base_url: String,
    pub key_env: Option<String>,
    pub key_file: Option<String>,
    pub auth: Option<AuthStyle>,
    /// In-flight requests to this account (unlimited when absent).
    pub max_concurrent: Option<u32>,
    #[serde(default = "default_max_queue")]
    pub max_queue: u32,
    #[serde(default = "thirty_seconds")]
    pub queue_timeout: Dur,
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    #[serde(default = "one")]
    pub weight: f64,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClients {
    pub tokens: Option<Vec<RawToken>>,
    pub limit: Option<RawClientLimit>,
}

/// Per-client request rate (a client is its token's name, else its address).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientLimit {
    pub rpm: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    pub name: String,
    pub token_env: Option<String>,
    pub token_file: Option<String>,
}

/// USD per million tokens for models matching `model` (a glob).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub model: String,
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    pub cache_write_1h: Option<f64>,
}

/// The request log.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    /// SQLite file; omitted or null: no request log.
    pub sqlite: Option<String>,
    /// Rows older than this are deleted in the background.
    pub retention: Dur,
    /// Rows waiting for the writer; past this they are dropped and counted.
    pub queue: usize,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            sqlite: None,
            retention: secs(30 * 24 * 3600),
            queue: 10_000,
        }
    }
}
