//! Per-request state carried across Pingora's hooks: one part per stage, each with fields private
//! to the stage that owns it, and the narrow interface each stage declares (`AdmitCtx`,
//! `SelectCtx`, ...) implemented here, so the stages never depend on this type.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::HeaderValue;
use pingora::protocols::http::ServerSession;

use super::admit::{AdmitCtx, Request};
use super::finish::FinishCtx;
use super::inject::InjectCtx;
use super::replay::{Expired, Link};
use super::respond::{ErrorKind, RespondCtx};
use super::retry::{Retry, RetryCtx};
use super::select::{Attempt, SelectCtx};
use super::stream::{Response, StreamCtx};
use super::translate::{TranslateCtx, Translation};
use super::view::View;
use crate::alloc::pick::Walk;
use crate::config::{Account, Pool, Route, Snapshot};
use crate::sidecar::Sidecar;
use crate::usage::Meter;

/// The state of one request, from its head to its log row.
pub struct Ctx {
    started: Instant,
    /// What admission learnt: snapshot, route, client, session, body facts.
    req: Request,
    /// The seam between the client's dialect and the target's (none for pass-through routes).
    translation: Translation,
    /// Where the current attempt goes: pool, account, slot, and the walk over pools.
    attempt: Attempt,
    /// Every retry decision and its state: attempts, what the client has seen, why it failed.
    retry: Retry,
    /// The response on its way to the client: meter, held preamble.
    response: Response,
    /// The replaying session's clock and deadlines, once the proxy phase starts.
    link: Option<Arc<Link>>,
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
}

impl View for Ctx {
    fn started(&self) -> Instant {
        self.started
    }
    fn request_id(&self) -> &HeaderValue {
        self.req.request_id()
    }
    fn snapshot(&self) -> Option<&Snapshot> {
        self.req.snap()
    }
    fn core(&self) -> Option<&Sidecar> {
        self.req.core()
    }
    fn route(&self) -> Option<&Route> {
        self.req.route()
    }
    fn pool(&self) -> Option<&Pool> {
        self.snapshot()?.pools.get(self.attempt.pool()?)
    }
    fn account(&self) -> Option<&Account> {
        self.pool()?.accounts.get(self.attempt.account()?)
    }
    fn primary(&self) -> Option<&Pool> {
        self.snapshot()?.pools.get(self.attempt.primary()?)
    }
    fn cors(&self) -> Option<&HeaderValue> {
        self.req.cors()
    }
    fn link(&self) -> Option<&Link> {
        self.link.as_deref()
    }
    fn client_provider(&self) -> Option<&'static dyn crate::provider::Provider> {
        match self.req.route().map(|r| r.target) {
            Some(crate::config::RouteTarget::Door(d)) => Some(crate::provider::ProviderKind::for_dialect(d).get()),
            _ => self.primary().map(|p| p.provider),
        }
    }
}

impl TranslateCtx for Ctx {
    fn translation_mut(&mut self) -> &mut Translation {
        &mut self.translation
    }
    fn route_path(&self) -> &str {
        self.req.upstream_path()
    }
    fn admitted_body(&self) -> bytes::Bytes {
        self.link.as_ref().map(|l| l.body()).unwrap_or_default()
    }
    fn planned(&mut self, walk: Walk, stream: bool, model: String, session: Option<String>) {
        self.attempt.start_plan(walk);
        let snap = self.req.snap_arc();
        let primary = snap.as_deref().and_then(|s| s.pools.get(self.attempt.primary()?));
        if let (Some(p), Some(link)) = (primary, &self.link) {
            link.set_total(p.timeouts.total);
        }
        self.req.planned(stream, model, session, primary);
    }
}

impl AdmitCtx for Ctx {
    fn request_mut(&mut self) -> &mut Request {
        &mut self.req
    }
    fn start_walk(&mut self, pool: usize) {
        self.attempt.start_walk(pool);
    }
    fn set_link(&mut self, link: Arc<Link>) {
        self.link = Some(link);
    }
}

impl RespondCtx for Ctx {
    fn failure(&self) -> Option<ErrorKind> {
        self.retry.failure()
    }
    fn record_failure(&mut self, failure: Option<ErrorKind>) {
        self.retry.record(failure);
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry.retry_after()
    }
    fn head_only(&self) -> bool {
        self.retry.head_only()
    }
    fn expired(&self) -> Option<Expired> {
        self.link.as_ref().and_then(|l| l.expired())
    }
    fn delivered(&self) -> bool {
        self.response.delivered()
    }
    fn restore_session(&self, slot: &mut ServerSession) {
        if let Some(link) = &self.link {
            link.restore(slot);
        }
    }
    fn stream_tail(&mut self) -> Option<bytes::Bytes> {
        self.translation.stream_tail()
    }
}

impl RetryCtx for Ctx {
    fn retry_mut(&mut self) -> &mut Retry {
        &mut self.retry
    }
    fn retry_ref(&self) -> &Retry {
        &self.retry
    }
    fn walk(&self) -> Option<&Walk> {
        self.attempt.walk()
    }
    fn outcome_recorded(&mut self) {
        self.attempt.outcome_recorded();
    }
    fn forget_attempt(&mut self) {
        self.attempt.forget_current();
        self.attempt.release(self.req.snap());
    }
    fn abandon_held(&mut self) -> bool {
        self.response.release_held()
    }
}

impl SelectCtx for Ctx {
    fn attempt_and_session(&mut self) -> (&mut Attempt, Option<&str>) {
        (&mut self.attempt, self.req.session())
    }
    fn take_shared_client(&mut self) -> Option<Box<str>> {
        self.req.take_shared_client()
    }
    fn prepare_target(&mut self) {
        if let Some((_, body)) = self.translation.attempt(self.attempt.target()) {
            if let Some(link) = &self.link {
                link.set_body(body);
            }
        }
    }
    fn snapshot_arc(&self) -> Option<Arc<Snapshot>> {
        self.req.snap_arc()
    }
}

impl StreamCtx for Ctx {
    fn response_mut(&mut self) -> &mut Response {
        &mut self.response
    }
    fn response_ref(&self) -> &Response {
        &self.response
    }
    fn strip_usage(&self) -> bool {
        self.translation.strip_usage().unwrap_or_else(|| self.req.strip_usage())
    }
    fn translation_mut(&mut self) -> &mut Translation {
        &mut self.translation
    }
    fn adopt_session(&mut self, id: &str) {
        if self.req.session().is_some() || !crate::validate::valid_id(id.as_bytes()) {
            return;
        }
        if let (Some(pool), Some(account)) = (self.pool(), self.account()) {
            crate::alloc::bind::adopt(pool, account, id);
        }
        self.req.set_session(id.to_string());
    }
}

impl InjectCtx for Ctx {
    fn upstream_path(&self) -> &str {
        self.translation
            .current()
            .map_or(self.req.upstream_path(), |(path, _)| path)
    }
    fn body_len(&self) -> usize {
        self.translation.current().map_or(self.req.body_len(), |(_, len)| len)
    }
    fn session_key(&self) -> Option<&str> {
        self.req.session()
    }
}

impl FinishCtx for Ctx {
    fn attempts(&self) -> u32 {
        self.retry.attempts()
    }
    fn budget_exhausted(&self) -> bool {
        self.retry.budget_exhausted()
    }
    fn release_attempt(&mut self) {
        self.attempt.release(self.req.snap());
    }
    fn meter_mut(&mut self) -> Option<&mut Meter> {
        self.response.meter_mut()
    }
    fn sse(&self) -> bool {
        self.response.sse()
    }
    fn ttfb(&self) -> Option<Duration> {
        self.response.ttfb()
    }
    fn take_model(&mut self) -> Option<String> {
        self.req.take_model()
    }
    fn take_session(&mut self) -> Option<String> {
        self.req.take_session()
    }
    fn client(&self) -> Option<&Arc<str>> {
        self.req.client()
    }
    fn streamed(&self) -> bool {
        self.req.streamed()
    }
    fn note(&self) -> Option<&'static str> {
        self.translation.degraded().then_some(crate::proxy::reply::DEGRADED)
    }
}
