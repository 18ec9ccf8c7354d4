//! The config file as written: serde types that reject unknown keys, with the documented defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

pub use super::raw_pool::{
    RawAccount, RawBreaker, RawBudget, RawHealthCheck, RawPool, RawRebalance, RawRetry, RawSession, RawTimeouts,
};
pub use super::raw_server::{RawAdmin, RawCors, RawLimits, RawServer};
pub use super::raw_shared::{RawRedis, RawShared};
pub use super::units::{Dur, Percent};

fn secs(n: u64) -> Dur {
    Dur(Duration::from_secs(n))
}

/// The whole config file as parsed, before validation; keys left out take the defaults below.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `listen`: the address apps connect to (default `127.0.0.1:8080`); a non-loopback one needs
    /// `clients.tokens`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `admin`: the admin listener and its token.
    #[serde(default)]
    pub admin: RawAdmin,
    /// `server`: worker threads, drain period and client-connection limits.
    #[serde(default)]
    pub server: RawServer,
    /// `limits`: request body and JSON bounds.
    #[serde(default)]
    pub limits: RawLimits,
    /// `routes`: tried in order, first match wins.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// `pools`, by name.
    #[serde(default)]
    pub pools: BTreeMap<String, RawPool>,
    /// `clients`: virtual keys and the per-client rate limit.
    #[serde(default)]
    pub clients: RawClients,
    /// `prices`: first match on the model wins.
    #[serde(default)]
    pub prices: Vec<RawPrice>,
    /// What the front doors serve.
    #[serde(default)]
    pub models: Vec<RawModel>,
    /// `log`: the SQLite request log.
    #[serde(default)]
    pub log: RawLog,
    /// `notifications`: the event webhook and the budget shares that trigger `budget_threshold`.
    #[serde(default)]
    pub notifications: RawNotifications,
    /// Browser access: which origins may call the sidecar (none when absent).
    pub cors: Option<RawCors>,
    /// `shared`: the store replicas share state through (none: in-process state).
    #[serde(default)]
    pub shared: RawShared,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

/// One entry of `routes`: which requests go to which pool.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// `routes[].name`: used in logs, metrics and the request log (1-64 of `A-Z a-z 0-9 - _ .`).
    pub name: String,
    /// `routes[].match`: the path prefix and optional header a request must have.
    #[serde(rename = "match", default)]
    pub matcher: RawMatch,
    /// `routes[].strip_prefix`: remove the matched prefix before forwarding (default true).
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
    /// `models[].name`: what clients put in `model` (1-128 characters, no `/`).
    pub name: String,
    /// `models[].strategy`: `ordered` (default) or `cheapest`.
    #[serde(default)]
    pub strategy: Strategy,
    /// Requests with Claude Code CLI fields may fall back to an API target without them.
    #[serde(default)]
    pub degrade: bool,
    /// `models[].targets`: tried in order (with the usual retries and fallback rules).
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
    /// `targets[].pool`: the pool serving it.
    pub pool: String,
    /// `targets[].model`: the model name the pool's provider knows.
    pub model: String,
}

fn yes() -> bool {
    true
}

/// `routes[].match`: both conditions must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// `match.path_prefix`: matched at a path-segment boundary; `/` when absent (every path).
    pub path_prefix: Option<String>,
    /// `match.header`: an extra condition on one request header (none when absent).
    pub header: Option<RawHeaderMatch>,
}

/// `match.header`: a request header that must carry exactly this value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderMatch {
    /// The header's name.
    pub name: String,
    /// The value the header must have.
    pub value: String,
}

/// `clients`: who may use the sidecar, and how often.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClients {
    /// `clients.tokens`: when present, every request must carry one of these (it must not be
    /// empty).
    pub tokens: Option<Vec<RawToken>>,
    /// `clients.limit`: a per-client request rate (no limit when absent).
    pub limit: Option<RawClientLimit>,
}

/// Per-client request rate (a client is its token's name, else its address).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientLimit {
    /// Requests per client per minute, over a sliding window (at least 1).
    pub rpm: u32,
}

/// One entry of `clients.tokens`: a virtual key an app sends instead of a real one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// Names the client in logs and metrics (1-64 of `A-Z a-z 0-9 - _ .`; unique).
    pub name: String,
    /// Environment variable holding the token (exactly one of `token_env` and `token_file`).
    pub token_env: Option<String>,
    /// File holding the token, surrounding whitespace trimmed (exactly one of `token_env` and
    /// `token_file`).
    pub token_file: Option<String>,
}

/// USD per million tokens for models matching `model` (a glob).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    /// Glob on the model the response names (`*` and `?`).
    pub model: String,
    /// Uncached input tokens, USD per million.
    pub input: f64,
    /// Output tokens, USD per million.
    pub output: f64,
    /// Tokens read from a prompt cache, USD per million (none: priced as input).
    pub cache_read: Option<f64>,
    /// Tokens written to a prompt cache (Anthropic: 5-minute writes), USD per million (none: priced
    /// as input).
    pub cache_write: Option<f64>,
    /// Anthropic's 1-hour cache writes, USD per million (none: priced as `cache_write`).
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

/// `notifications`: where events go besides the log.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    /// `notifications.webhook`: where events are POSTed (log only when absent).
    pub webhook: Option<RawWebhook>,
    /// `notifications.thresholds`: shares of the weekly budget that trigger `budget_threshold`
    /// (default `[0.8, 0.9]`).
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

/// `notifications.webhook`: events are POSTed as JSON to the URL this names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// Environment variable holding the URL (it may carry a secret).
    pub url_env: String,
    /// How long one POST may take (default 10s).
    #[serde(default = "super::raw_pool::ten_seconds")]
    pub timeout: Dur,
    /// The wait before the first retry, doubled before each next one (default 500ms).
    #[serde(default = "half_a_second")]
    pub backoff: Dur,
}

fn half_a_second() -> Dur {
    Dur(std::time::Duration::from_millis(500))
}
