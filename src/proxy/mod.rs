//! The Pingora `ProxyHttp` service. Each hook only delegates to a stage of the request path:
//! admission (`admit`), selection (`select`), key injection (`inject`), the replaying session
//! (`session`), our own answers (`respond`) and the access log (`observe`).

mod admit;
mod ctx;
mod peer;
pub mod session;

use std::sync::Arc;

use async_trait::async_trait;
use http::header::HeaderValue;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, ProxyWarnLogContext, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType, Result};

pub use ctx::Ctx;
use session::Expired;

use crate::respond::{self, ErrorKind, Reply};
use crate::sidecar::Sidecar;
use crate::usage::Meter;
use crate::{inject, observe, select};

/// The sidecar as a Pingora proxy service; embed it in any Pingora server with
/// `pingora::proxy::http_proxy_service(&conf, SidecarProxy::new(sidecar))`.
pub struct SidecarProxy {
    core: Arc<Sidecar>,
}

impl SidecarProxy {
    pub fn new(core: Arc<Sidecar>) -> Self {
        SidecarProxy { core }
    }

    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        kind: ErrorKind,
        message: &str,
    ) -> Result<()> {
        ctx.error = Some(kind);
        let provider = ctx.pool().map(|p| p.provider);
        respond::send(
            session,
            provider,
            &Reply::new(kind, message),
            &ctx.request_id,
        )
        .await
    }
}

/// What went wrong, from Pingora's error and what the request recorded on the way.
fn classify(e: &Error, ctx: &Ctx) -> ErrorKind {
    if let Some(kind) = ctx.error {
        return kind;
    }
    if let Some(expired) = ctx.link.as_ref().and_then(|l| l.expired()) {
        return match expired {
            Expired::FirstByte => ErrorKind::FirstByteTimeout,
            Expired::Idle => ErrorKind::IdleTimeout,
            Expired::Total => ErrorKind::TotalTimeout,
        };
    }
    match e.etype() {
        ErrorType::ConnectRefused | ErrorType::ConnectNoRoute => ErrorKind::ConnectRefused,
        ErrorType::ConnectTimedout => ErrorKind::ConnectTimeout,
        ErrorType::TLSHandshakeFailure
        | ErrorType::TLSHandshakeTimedout
        | ErrorType::InvalidCert
        | ErrorType::TLSWantX509Lookup
        | ErrorType::HandshakeError => ErrorKind::TlsError,
        ErrorType::ReadTimedout if *e.esource() == ErrorSource::Upstream => {
            ErrorKind::FirstByteTimeout
        }
        _ => match e.esource() {
            ErrorSource::Upstream => ErrorKind::UpstreamError,
            ErrorSource::Downstream => ErrorKind::ClientClosed,
            ErrorSource::Internal | ErrorSource::Unset => ErrorKind::Internal,
        },
    }
}

/// The error kind to record: none when the client hung up after the provider's end-of-stream
/// marker had gone out (SDKs close as soon as they read `[DONE]`): it got everything.
fn outcome(e: &Error, ctx: &Ctx) -> Option<ErrorKind> {
    let kind = classify(e, ctx);
    let delivered = ctx.meter.as_ref().is_some_and(|m| m.saw_done);
    (!(kind == ErrorKind::ClientClosed && delivered)).then_some(kind)
}

#[async_trait]
impl ProxyHttp for SidecarProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::new()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        match admit::admit(&self.core, session, ctx).await? {
            None => Ok(false),
            Some((kind, message)) => {
                self.refuse(session, ctx, kind, &message).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let (Some(snap), Some(pi)) = (ctx.snap.clone(), ctx.pool) else {
            return Err(Error::explain(ErrorType::InternalError, "no pool chosen"));
        };
        let pool = &snap.pools[pi];
        let Some(ai) = select::pick(pool, ctx.tried) else {
            ctx.error = Some(ErrorKind::NoAccount);
            return Err(Error::explain(
                ErrorType::HTTPStatus(503),
                "no account available",
            ));
        };
        ctx.account = Some(ai);
        ctx.attempts += 1;
        ctx.tried |= 1 << ai;
        if let Some(link) = &ctx.link {
            link.attempt_started();
        }
        let account = &pool.accounts[ai];
        let addr = match account.upstream.addr().await {
            Ok(a) => a,
            Err(m) => {
                ctx.error = Some(ErrorKind::DnsError);
                tracing::warn!(pool = &*pool.name, account = &*account.name, error = %observe::sanitize(&m), "DNS");
                return Err(Error::explain(ErrorType::ConnectNoRoute, m).into_up());
            }
        };
        Ok(peer::build(addr, &account.upstream, &pool.timeouts))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let account = ctx
            .account()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no account chosen"))?;
        inject::rewrite(
            req,
            account,
            &ctx.upstream_path,
            ctx.body_len,
            &ctx.request_id,
        )
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        _resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(link) = &ctx.link {
            link.data_arrived();
        }
        ctx.ttfb = Some(ctx.start.elapsed());
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        resp.insert_header("x-request-id", ctx.request_id.clone())?;
        ctx.sse = resp
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if ctx.sse {
            resp.insert_header(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            )?;
            resp.insert_header("x-accel-buffering", HeaderValue::from_static("no"))?;
        }
        if let Some(pool) = ctx.pool() {
            // Removing an event changes the length: let Pingora frame the stream itself.
            if ctx.strip_usage && ctx.sse {
                resp.remove_header(&http::header::CONTENT_LENGTH);
            }
            ctx.meter = Some(Meter::new(
                pool.provider,
                ctx.sse,
                ctx.strip_usage && ctx.sse,
            ));
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(meter) = ctx.meter.as_mut() {
            meter.feed(body);
            if end_of_stream {
                if let Some(rest) = meter.take_pending() {
                    *body = Some(match body.take() {
                        Some(b) if !b.is_empty() => [b, rest].concat().into(),
                        _ => rest,
                    });
                }
            }
        }
        Ok(None)
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<std::time::Duration>> {
        if let Some(link) = &ctx.link {
            link.data_arrived();
        }
        Ok(None)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing reached the upstream: always safe to try another account.
        if ctx
            .pool()
            .is_some_and(|p| select::any_untried(p, ctx.tried))
        {
            e.set_retry(true);
        }
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
        // A pooled connection the upstream had already closed: the account is fine, try again.
        let stale_connection = e.retry() && client_reused;
        let first_byte = ctx.link.as_ref().and_then(|l| l.expired()) == Some(Expired::FirstByte);
        let untried = ctx
            .pool()
            .is_some_and(|p| select::any_untried(p, ctx.tried));
        if stale_connection && nothing_sent {
            if let Some(ai) = ctx.account {
                ctx.tried &= !(1 << ai);
            }
            e.set_retry(true);
        } else {
            e.set_retry(nothing_sent && first_byte && untried);
        }
        e
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let kind = classify(e, ctx);
        ctx.error = outcome(e, ctx);
        // Pingora closes the client connection after an error past peer selection; say so in
        // the answer (the wrapper cannot carry keep-alive settings: put the real session back).
        if let Some(link) = &ctx.link {
            link.restore(&mut session.downstream_session);
        }
        session.set_keepalive(None);
        if session.response_written().is_none() && kind != ErrorKind::ClientClosed {
            let message = match kind {
                ErrorKind::TlsError | ErrorKind::UpstreamError => {
                    format!(
                        "{} ({})",
                        kind.describe(),
                        observe::sanitize(e.reason_str())
                    )
                }
                _ => kind.describe().to_string(),
            };
            let provider = ctx.pool().map(|p| p.provider);
            if let Err(write) = respond::send(
                session,
                provider,
                &Reply::new(kind, &message),
                &ctx.request_id,
            )
            .await
            {
                tracing::debug!(error = %write, "could not write the error response");
            }
        }
        FailToProxy {
            error_code: kind.status(),
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        if let Some(link) = &ctx.link {
            link.restore(&mut session.downstream_session);
        }
        if let (Some(e), None) = (e, ctx.error) {
            ctx.error = outcome(e, ctx);
        }
        observe::finish(&self.core, session, ctx);
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, _error: &Error) -> bool {
        true // the access line carries the error kind
    }

    fn suppress_proxy_warn_log(
        &self,
        _s: &Session,
        _c: &Ctx,
        _e: &Error,
        _w: ProxyWarnLogContext,
    ) -> bool {
        true
    }
}
