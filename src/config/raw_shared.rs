//! The config file as written, `shared:`: the Redis (or Valkey) store that replicas share their
//! budgets, limits, sessions and account health through.

use std::time::Duration;

use serde::Deserialize;

use super::units::Dur;

/// `shared`: state agreed by every sidecar of a deployment (none: each keeps its own).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShared {
    /// `shared.redis`: the store.
    pub redis: Option<RawRedis>,
}

/// `shared.redis`: where the store is and how long one operation may take.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// Environment variable holding the URL (`redis://host:6379/0`, `rediss://` for TLS).
    pub url_env: Option<String>,
    /// The URL itself (no password in it: use `password_env` or `password_file`).
    pub url: Option<String>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password (a mounted secret).
    pub password_file: Option<String>,
    /// Prefix of every key (default `llm-sidecar`): several deployments may share one store.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Per operation (default 50ms): past it the request goes on with local state.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn default_prefix() -> String {
    "llm-sidecar".into()
}

fn default_timeout() -> Dur {
    Dur(Duration::from_millis(50))
}
