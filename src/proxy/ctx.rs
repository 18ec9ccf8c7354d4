//! Per-request state carried across Pingora's hooks: one part per stage, each with fields private
//! to the stage that owns it, and the few views every stage needs (the pinned snapshot, the
//! route's and the current attempt's pool and account).

use std::sync::Arc;
use std::time::Instant;

use http::header::HeaderValue;

use super::admit::Request;
use super::replay::Link;
use super::retry::Retry;
use super::select::Attempt;
use super::stream::Response;
use super::translate::Translation;
use crate::config::{Account, Pool, Snapshot};
use crate::provider::Provider;
use crate::sidecar::Sidecar;

/// The state of one request, from its head to its log row.
pub struct Ctx {
    started: Instant,
    /// What admission learnt: snapshot, route, client, session, body facts.
    pub(super) req: Request,
    /// The seam between the client's dialect and the target's (identity for pass-through routes).
    #[allow(dead_code)] // the front doors fill it in
    pub(super) translation: Translation,
    /// Where the current attempt goes: pool, account, slot, and the walk over pools.
    pub(super) attempt: Attempt,
    /// Every retry decision and its state: attempts, what the client has seen, why it failed.
    pub(super) retry: Retry,
    /// The response on its way to the client: meter, held preamble.
    pub(super) response: Response,
    /// The replaying session's clock and deadlines, once the proxy phase starts.
    pub(super) link: Option<Arc<Link>>,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx::new()
    }
}

impl Ctx {
    /// A request that just arrived.
    pub fn new() -> Self {
        Ctx {
            started: Instant::now(),
            req: Request::default(),
            translation: Translation::default(),
            attempt: Attempt::default(),
            retry: Retry::default(),
            response: Response::default(),
            link: None,
        }
    }

    /// When the request arrived.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The request id (`-` before admission set one).
    pub fn request_id(&self) -> &HeaderValue {
        self.req.request_id()
    }

    /// The snapshot this request runs on, from admission to its log row.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.req.snap()
    }

    /// The sidecar this request runs in.
    pub fn core(&self) -> Option<&Sidecar> {
        self.req.core()
    }

    /// The pool serving the current attempt (the route's, or a fallback).
    pub fn pool(&self) -> Option<&Pool> {
        self.snapshot()?.pools.get(self.attempt.pool()?)
    }

    /// The account of the current attempt.
    pub fn account(&self) -> Option<&Account> {
        self.pool()?.accounts.get(self.attempt.account()?)
    }

    /// The pool whose retry settings govern the request (the first of its walk).
    pub fn primary(&self) -> Option<&Pool> {
        self.snapshot()?.pools.get(self.attempt.primary()?)
    }

    /// The provider whose shape the client expects for our own answers: the route's pool's.
    pub(super) fn client_provider(&self) -> Option<&'static dyn Provider> {
        self.primary().map(|p| p.provider)
    }
}
