//! What every stage may read of a request: the narrow interface the stages share. Each stage
//! adds its own (`AdmitCtx`, `SelectCtx`, `RetryCtx`, ...) next to the part of the request's
//! state it owns; [`super::ctx::Ctx`] implements them all, so no stage depends on the context
//! type and imports point one way (stages down to this file, the context up to the stages).

use std::time::Instant;

use http::header::HeaderValue;

use super::replay::Link;
use crate::config::{Account, Pool, Route, Snapshot};
use crate::provider::Provider;
use crate::sidecar::Sidecar;

/// The request as every stage sees it.
pub trait View {
    /// When the request arrived.
    fn started(&self) -> Instant;
    /// The request id (`-` before admission set one).
    fn request_id(&self) -> &HeaderValue;
    /// The snapshot this request runs on, from admission to its log row.
    fn snapshot(&self) -> Option<&Snapshot>;
    /// The sidecar this request runs in.
    fn core(&self) -> Option<&Sidecar>;
    /// The route it took.
    fn route(&self) -> Option<&Route>;
    /// The pool serving the current attempt (the route's, or a fallback).
    fn pool(&self) -> Option<&Pool>;
    /// The account of the current attempt.
    fn account(&self) -> Option<&Account>;
    /// The pool whose retry settings govern the request (the first of its walk).
    fn primary(&self) -> Option<&Pool>;
    /// `access-control-allow-origin` for an allowed browser origin.
    fn cors(&self) -> Option<&HeaderValue>;
    /// The replaying session's clock and deadlines, once the proxy phase started.
    fn link(&self) -> Option<&Link>;
    /// The provider whose shape the client expects for our own answers.
    fn client_provider(&self) -> Option<&'static dyn Provider> {
        self.primary().map(|p| p.provider)
    }
    /// Whether the request's snapshot sends notifications to a webhook.
    fn webhook_on(&self) -> bool {
        self.snapshot().is_some_and(|s| s.webhook.is_some())
    }
}
