//! Per-request state carried across Pingora's hooks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HeaderValue;
use tokio::sync::OwnedSemaphorePermit;

use super::replay::Link;
use crate::config::{Account, Pool, Snapshot};
use crate::respond::ErrorKind;
use crate::select::Walk;
use crate::sidecar::{InflightGuard, Sidecar};
use crate::usage::Meter;

#[derive(Default)]
pub struct Ctx {
    pub start: Option<Instant>,
    /// The snapshot this request runs on, from admission to logging.
    pub snap: Option<Arc<Snapshot>>,
    pub request_id: Option<HeaderValue>,
    pub route: Option<usize>,
    /// The pool serving the current attempt (the route's, or a fallback).
    pub pool: Option<usize>,
    pub account: Option<usize>,
    pub walk: Walk,
    pub client: Option<Arc<str>>,
    /// Route-relative path and query for the upstream.
    pub upstream_path: String,
    pub body_len: usize,
    pub link: Option<Arc<Link>>,
    /// Upstream attempts so far.
    pub attempts: u32,
    /// The concurrency slot held on the current account.
    pub permit: Option<OwnedSemaphorePermit>,
    /// The current attempt is the breaker's probe and has no outcome yet.
    pub probe: bool,
    /// A retry was decided while handling the response (head, or in-band error); the reason.
    pub retry_planned: Option<&'static str>,
    /// The next attempt replaces a pooled connection the upstream had closed: no backoff.
    pub stale_retry: bool,
    /// For our own 429/503: seconds until an account may be available.
    pub retry_after: Option<Duration>,
    /// The response head went out but no body yet (a stream retried after an in-band error).
    pub head_sent_no_body: bool,
    /// After such a retry the answer was not an event stream: its status, sent as an error event.
    pub replace_body: Option<u16>,
    /// A retry was refused because the pool's retry budget was spent.
    pub budget_exhausted: bool,
    /// A stream's preamble, held until its first content or error.
    pub held: Option<Vec<Bytes>>,
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
    /// `access-control-allow-origin` for an allowed browser origin.
    pub cors: Option<HeaderValue>,
    /// The request body's share of `limits.max_buffered_bytes`.
    pub buffer: Option<crate::sidecar::BufferLease>,
    pub _inflight: Option<InflightGuard>,
}

impl Ctx {
    pub fn new() -> Self {
        Ctx {
            start: Some(Instant::now()),
            ..Ctx::default()
        }
    }

    pub fn started(&self) -> Instant {
        self.start.unwrap_or_else(Instant::now)
    }

    pub fn request_id(&self) -> &HeaderValue {
        static NONE: HeaderValue = HeaderValue::from_static("-");
        self.request_id.as_ref().unwrap_or(&NONE)
    }

    pub fn pool(&self) -> Option<&Pool> {
        Some(&self.snap.as_ref()?.pools[self.pool?])
    }

    /// The route's own pool (its retry settings govern the request).
    pub fn primary(&self) -> Option<&Pool> {
        Some(&self.snap.as_ref()?.pools[self.route_pool()?])
    }

    fn route_pool(&self) -> Option<usize> {
        Some(self.snap.as_ref()?.routes[self.route?].pool)
    }

    /// The sidecar this request runs in.
    pub fn core(&self) -> Option<&Sidecar> {
        self._inflight.as_ref().map(|g| &**g.core())
    }

    pub fn account(&self) -> Option<&Account> {
        self.pool()?.accounts.get(self.account?)
    }
}
