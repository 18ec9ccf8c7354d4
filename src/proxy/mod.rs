//! The request path. [`SidecarProxy`] is Pingora's `ProxyHttp`; each hook is glue that calls one
//! stage, in the order a request meets them: [`route`] and [`admit`] (`request_filter`),
//! [`translate`] (between admission and the upstream; `reply` on the way back), [`select`] (`upstream_peer`), [`inject`]
//! (`upstream_request_filter`), [`retry`] (wherever an attempt can end), [`stream`] (the response
//! filters), [`respond`] (our own answers), [`finish`] (`logging`). `replay` is the downstream
//! session through which Pingora re-sends the buffered body and our deadlines are kept.

pub mod admit;
mod body;
mod ctx;
pub mod error;
pub mod finish;
pub mod inject;
mod replay;
mod reply;
pub mod respond;
pub mod retry;
pub mod route;
pub mod select;
pub mod stream;
pub mod translate;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, ProxyWarnLogContext, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};

pub use ctx::Ctx;

use crate::sidecar::Sidecar;

/// The sidecar as a Pingora proxy service; embed it in any Pingora server (see
/// `examples/embed.rs`).
pub struct SidecarProxy {
    core: Arc<Sidecar>,
}

impl SidecarProxy {
    /// The proxy of `core` (config, account state, request log, metrics).
    pub fn new(core: Arc<Sidecar>) -> Self {
        SidecarProxy { core }
    }
}

#[async_trait]
impl ProxyHttp for SidecarProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::new()
    }

    async fn early_request_filter(&self, session: &mut Session, _ctx: &mut Ctx) -> Result<()> {
        crate::gate::head_parsed(session);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let early = match admit::admit(&self.core, session, ctx).await? {
            None => translate::plan(ctx),
            early => early,
        };
        match early {
            None => Ok(false),
            Some(early) => respond::early(session, ctx, early).await.map(|()| true),
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        select::upstream_peer(&self.core, ctx).await
    }

    async fn upstream_request_filter(&self, _s: &mut Session, req: &mut RequestHeader, ctx: &mut Ctx) -> Result<()> {
        inject::upstream_request(req, ctx)
    }

    async fn upstream_response_filter(&self, _s: &mut Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        stream::upstream_head(resp, ctx)
    }

    async fn response_filter(&self, session: &mut Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        stream::response_head(resp, session.response_written().is_some(), ctx)
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        stream::upstream_data(ctx);
        Ok(None)
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        stream::response_body(body, end, ctx)?;
        Ok(None)
    }

    fn fail_to_connect(&self, _s: &mut Session, _p: &HttpPeer, ctx: &mut Ctx, mut e: Box<Error>) -> Box<Error> {
        let retry = retry::connect_failed(ctx, e.etype());
        e.set_retry(retry);
        e
    }

    fn error_while_proxy(
        &self,
        _peer: &HttpPeer,
        session: &mut Session,
        mut e: Box<Error>,
        ctx: &mut Ctx,
        client_reused: bool,
    ) -> Box<Error> {
        e.retry.decide_reuse(client_reused);
        let nothing_sent = session.response_written().is_none();
        let retry = retry::proxy_failed(ctx, &e, client_reused, nothing_sent);
        e.set_retry(retry);
        e
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        respond::failed(session, e, ctx).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        finish::logging(&self.core, session, e, ctx);
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, _error: &Error) -> bool {
        true // the access line carries the error kind
    }

    fn suppress_proxy_warn_log(&self, _s: &Session, _c: &Ctx, _e: &Error, _w: ProxyWarnLogContext) -> bool {
        true // retries are logged as decisions
    }
}

/// A Pingora error for a request that cannot go on (its kind is recorded in the context).
fn stop(kind: respond::ErrorKind) -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(kind.status()), kind.describe())
}
