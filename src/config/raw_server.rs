//! The config file as written, process-wide sections: listeners, server behaviour (timeouts and
//! connection limits toward clients), global limits and CORS.

use std::time::Duration;

use serde::Deserialize;

use super::units::Dur;

fn secs(n: u64) -> Dur {
    Dur(Duration::from_secs(n))
}

/// `admin`: the listener for `/healthz`, `/readyz`, `/metrics` and `/admin/*`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// `admin.listen`: its address (default `127.0.0.1:9901`); a non-loopback one needs
    /// `token_env`.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// Environment variable holding the bearer token `/admin/*` requires.
    pub token_env: Option<String>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            listen: default_admin_listen(),
            token_env: None,
        }
    }
}

fn default_admin_listen() -> String {
    "127.0.0.1:9901".into()
}

/// Process settings: worker threads, the SIGTERM drain period, and what a client connection may
/// cost: deadlines on the request head, between requests and on the body, and a cap on them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// `server.threads`: Pingora worker threads for the proxy (1-256, default 1).
    pub threads: usize,
    /// `server.shutdown_grace`: after SIGTERM, in-flight requests get at most this long (default
    /// 10s).
    pub shutdown_grace: Dur,
    /// The whole request head must arrive within this.
    pub header_timeout: Dur,
    /// An idle keep-alive connection is closed after this.
    pub keepalive_timeout: Dur,
    /// The whole request body must arrive within this.
    pub body_timeout: Dur,
    /// Client connections open at once on the app listener; past it new ones are closed.
    pub max_connections: u32,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            threads: 1,
            shutdown_grace: secs(10),
            header_timeout: secs(10),
            keepalive_timeout: secs(60),
            body_timeout: secs(60),
            max_connections: 10_000,
        }
    }
}

/// `limits`: bounds on what a client may send.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    /// `limits.max_body_bytes`: the largest request body accepted, in bytes (413 past it; default
    /// 32 MiB).
    pub max_body_bytes: u64,
    /// `limits.max_json_depth`: the deepest JSON nesting accepted (400 past it; 1-128, default 64).
    pub max_json_depth: u32,
    /// One SSE event from an upstream; a longer one passes unmetered (and is counted).
    pub max_sse_event_bytes: u64,
    /// Request bodies held in memory by all requests together; past it, 503.
    pub max_buffered_bytes: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_body_bytes: 32 * 1024 * 1024,
            max_json_depth: 64,
            max_sse_event_bytes: 1024 * 1024,
            max_buffered_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Browser access (CORS). Preflights (`OPTIONS`) are always answered by the sidecar itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// Origins allowed, exactly as browsers send them (`https://app.example`), or `["*"]`.
    pub allow_origins: Vec<String>,
    /// Request headers a browser may send; the SDKs' headers when absent.
    pub allow_headers: Option<Vec<String>>,
    /// `cors.max_age`: how long a browser may cache a preflight answer (default 10m).
    #[serde(default = "ten_minutes")]
    pub max_age: Dur,
}

fn ten_minutes() -> Dur {
    secs(600)
}
