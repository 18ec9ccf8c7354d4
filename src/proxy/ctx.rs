//! Per-request state carried across Pingora's hooks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::HeaderValue;

use super::session::Link;
use crate::config::{Account, Pool, Snapshot};
use crate::respond::ErrorKind;
use crate::sidecar::InflightGuard;
use crate::usage::Meter;

pub struct Ctx {
    pub start: Instant,
    /// The snapshot this request runs on, from admission to logging.
    pub snap: Option<Arc<Snapshot>>,
    pub request_id: HeaderValue,
    pub route: Option<usize>,
    pub pool: Option<usize>,
    pub account: Option<usize>,
    pub client: Option<Arc<str>>,
    /// Route-relative path and query for the upstream.
    pub upstream_path: String,
    pub body_len: usize,
    pub link: Option<Arc<Link>>,
    /// Upstream attempts so far.
    pub attempts: u32,
    /// Accounts of the pool already tried (bit per index).
    pub tried: u64,
    pub error: Option<ErrorKind>,
    pub ttfb: Option<Duration>,
    pub sse: bool,
    /// The request's `model`, when its body names one.
    pub req_model: Option<String>,
    /// The client asked for a stream.
    pub stream: bool,
    pub session: Option<String>,
    /// The sidecar added `include_usage` for the client: strip the usage-only chunk.
    pub strip_usage: bool,
    pub meter: Option<Meter>,
    pub _inflight: Option<InflightGuard>,
}

impl Ctx {
    pub fn new() -> Self {
        Ctx {
            start: Instant::now(),
            snap: None,
            request_id: HeaderValue::from_static("-"),
            route: None,
            pool: None,
            account: None,
            client: None,
            upstream_path: String::new(),
            body_len: 0,
            link: None,
            attempts: 0,
            tried: 0,
            error: None,
            ttfb: None,
            sse: false,
            req_model: None,
            stream: false,
            session: None,
            strip_usage: false,
            meter: None,
            _inflight: None,
        }
    }

    pub fn pool(&self) -> Option<&Pool> {
        Some(&self.snap.as_ref()?.pools[self.pool?])
    }

    pub fn account(&self) -> Option<&Account> {
        self.pool()?.accounts.get(self.account?)
    }
}

impl Default for Ctx {
    fn default() -> Self {
        Self::new()
    }
}
