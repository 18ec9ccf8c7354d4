//! The Pingora `ProxyHttp` service. Each hook only delegates to a stage of the request path:
//! admission (`admit`), selection (`select`), key injection (`inject`), outcomes and retries
//! (`attempt`), the replaying session (`session`), metering (`usage`), our own answers
//! (`respond`) and the end of the request (`observe`).

mod admit;
mod attempt;
mod ctx;
mod replay;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, ProxyWarnLogContext, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType, Result};

use attempt::Failure;
pub use ctx::Ctx;
use replay::Expired;

use crate::clock::now_ms;
use crate::respond::{self, ErrorKind, Reply};
use crate::select::{self, NoPick};
use crate::sidecar::Sidecar;
use crate::{inject, observe, resilience};

/// The sidecar as a Pingora proxy service; embed it in any Pingora server with
/// `pingora::proxy::http_proxy_service(&conf, SidecarProxy::new(sidecar))`.
pub struct SidecarProxy {
    core: Arc<Sidecar>,
}

impl SidecarProxy {
    pub fn new(core: Arc<Sidecar>) -> Self {
        SidecarProxy { core }
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
            Expired::FirstToken => ErrorKind::FirstTokenTimeout,
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
        ErrorType::ReadTimedout if *e.esource() == ErrorSource::Upstream => ErrorKind::FirstByteTimeout,
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

/// Whether this error is the current account's fault (not the client's, not ours).
fn upstream_fault(e: &Error, ctx: &Ctx) -> bool {
    match ctx.link.as_ref().and_then(|l| l.expired()) {
        Some(Expired::FirstByte | Expired::FirstToken | Expired::Idle) => true,
        Some(Expired::Total) => false,
        None => *e.esource() == ErrorSource::Upstream,
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
        match admit::admit(&self.core, session, ctx).await? {
            None => Ok(false),
            Some(admit::Early::Preflight) => {
                let snap = ctx.snap.clone();
                let cors = snap.as_deref().and_then(|s| s.cors.as_ref()).zip(ctx.cors.as_ref());
                respond::empty(session, 204, ctx.request_id(), cors).await?;
                Ok(true)
            }
            Some(admit::Early::Head) => {
                respond::empty(session, 200, ctx.request_id(), None).await?;
                Ok(true)
            }
            Some(admit::Early::Refuse(refusal)) if refusal.kind == ErrorKind::ClientClosed => {
                ctx.error = Some(refusal.kind);
                session.set_keepalive(None);
                Ok(true)
            }
            Some(admit::Early::Refuse(refusal)) => {
                // Refused before its body was read: do not let Pingora drain it (of any size,
                // from anyone) to keep the connection: close it after answering.
                if !session.is_body_done() {
                    session.set_keepalive(None);
                }
                ctx.error = Some(refusal.kind);
                let provider = ctx.pool().map(|p| p.provider);
                let mut reply = Reply::new(refusal.kind, &refusal.message);
                reply.retry_after = refusal.retry_after;
                reply.rate_limit = refusal.rate_limit;
                reply.cors = ctx.cors.as_ref();
                respond::send(session, provider, &reply, ctx.request_id()).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let Some(snap) = ctx.snap.clone() else {
            return Err(Error::explain(ErrorType::InternalError, "no config"));
        };
        // A retry first gives back the previous account's slot and any probe it still holds.
        ctx.permit = None;
        attempt::release_probe(ctx);
        if ctx.attempts > 0 && !std::mem::take(&mut ctx.stale_retry) {
            if let Some(p) = ctx.primary() {
                tokio::time::sleep(resilience::backoff(p.retry.backoff, p.retry.max_backoff, ctx.attempts)).await;
            }
        }
        let pick = match select::pick(&self.core.notifier, &snap, &mut ctx.walk, ctx.session.as_deref()).await {
            Ok(p) => p,
            Err(no) => {
                let (kind, wait) = match no {
                    NoPick::Unavailable {
                        retry_after,
                        rate_limited: true,
                    } => (ErrorKind::RateLimited, retry_after),
                    NoPick::Unavailable { retry_after, .. } => (ErrorKind::NoAccount, retry_after),
                    NoPick::QueueFull => (ErrorKind::QueueFull, Duration::from_secs(1)),
                    NoPick::QueueTimeout => (ErrorKind::QueueTimeout, Duration::from_secs(1)),
                };
                if kind == ErrorKind::RateLimited {
                    self.core.metrics.ratelimited("pool");
                }
                ctx.error = Some(kind);
                ctx.retry_after = Some(wait);
                return Err(Error::explain(ErrorType::HTTPStatus(kind.status()), kind.describe()));
            }
        };
        ctx.pool = Some(pick.pool);
        ctx.account = Some(pick.account);
        ctx.walk.tried |= 1 << pick.account;
        ctx.permit = Some(pick.permit);
        ctx.probe = pick.probe;
        ctx.attempts += 1;
        if let Some(link) = &ctx.link {
            link.attempt_started(&snap.pools[pick.pool].timeouts);
        }
        let pool = &snap.pools[pick.pool];
        let account = &pool.accounts[pick.account];
        account.state.sent.add(1, now_ms());
        if pick.probe {
            tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, account = &*account.name, "half-open: this request probes the account");
        }
        let addr = match account.upstream.addr().await {
            Ok(a) => a,
            Err(m) => {
                ctx.error = Some(ErrorKind::DnsError);
                tracing::warn!(pool = &*pool.name, account = &*account.name, error = %crate::text::sanitize(&m), "DNS");
                return Err(Error::explain(ErrorType::ConnectNoRoute, m).into_up());
            }
        };
        Ok(crate::peer::build(addr, &account.upstream, &pool.timeouts))
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
        inject::rewrite(req, account, &ctx.upstream_path, ctx.body_len, ctx.request_id())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(link) = &ctx.link {
            link.data_arrived();
        }
        ctx.ttfb = Some(ctx.started().elapsed());
        attempt::on_head(ctx, resp.status.as_u16(), &resp.headers)
    }

    async fn response_filter(&self, session: &mut Session, resp: &mut ResponseHeader, ctx: &mut Ctx) -> Result<()> {
        stream::response_head(resp, session.response_written().is_some(), ctx)
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Ctx,
    ) -> Result<Option<Duration>> {
        if let Some(link) = &ctx.link {
            link.data_arrived();
        }
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

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut Ctx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing reached the upstream: always safe to try another account.
        let failure = if *e.etype() == ErrorType::ConnectTimedout {
            Failure::Timeout
        } else {
            Failure::Connect
        };
        attempt::account_failed(ctx, failure, "connect failed");
        e.set_retry(attempt::may_retry(ctx, "connect failed"));
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
        if ctx.retry_planned.take().is_some() {
            e.set_retry(true);
            return e;
        }
        let nothing_sent = session.response_written().is_none();
        // A pooled connection the upstream had already closed: the account is fine, try again.
        if e.retry() && client_reused && nothing_sent {
            if let Some(ai) = ctx.account {
                ctx.walk.tried &= !(1 << ai);
            }
            attempt::release_probe(ctx);
            ctx.stale_retry = true;
            return e;
        }
        let expired = ctx.link.as_ref().and_then(|l| l.expired());
        if expired == Some(Expired::FirstToken) && ctx.held.take().is_some() {
            // Only the head reached the client: another account may still serve this stream.
            ctx.meter = None;
            ctx.head_sent_no_body = true;
            attempt::account_failed(ctx, Failure::Timeout, "first token timeout");
            let retry = attempt::may_retry(ctx, "first token timeout");
            e.set_retry(retry);
            return e;
        }
        let retry = if upstream_fault(&e, ctx) {
            let failure = match expired {
                Some(Expired::FirstByte | Expired::FirstToken | Expired::Idle) => Failure::Timeout,
                _ => Failure::Failed,
            };
            attempt::account_failed(ctx, failure, classify(&e, ctx).as_str());
            nothing_sent && attempt::may_retry(ctx, classify(&e, ctx).as_str())
        } else {
            false
        };
        e.set_retry(retry);
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
        let message = match kind {
            ErrorKind::TlsError | ErrorKind::UpstreamError => {
                format!("{} ({})", kind.describe(), crate::text::sanitize(e.reason_str()))
            }
            _ => kind.describe().to_string(),
        };
        let provider = ctx.pool().or(ctx.primary()).map(|p| p.provider);
        if session.response_written().is_none() && kind != ErrorKind::ClientClosed {
            let mut reply = Reply::new(kind, &message);
            reply.retry_after = ctx.retry_after.map(|d| d.as_secs_f64().ceil() as u64);
            reply.cors = ctx.cors.as_ref();
            if let Err(write) = respond::send(session, provider, &reply, ctx.request_id()).await {
                tracing::debug!(error = %write, "could not write the error response");
            }
        } else if ctx.head_sent_no_body {
            // A stream retried after an in-band error found no account: end it the provider's way.
            if let Some(p) = provider {
                let event = Bytes::from(p.sse_error(kind.status(), &message));
                let _ = session.write_response_body(Some(event), true).await;
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
        // A probe that ended without an outcome (the client left first) lets another probe.
        attempt::release_probe(ctx);
        if let (Some(e), None) = (e, ctx.error) {
            ctx.error = outcome(e, ctx);
        }
        ctx.permit = None;
        observe::finish(&self.core, session, ctx);
        crate::gate::request_done(session);
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &Ctx, _error: &Error) -> bool {
        true // the access line carries the error kind
    }

    fn suppress_proxy_warn_log(&self, _s: &Session, _c: &Ctx, _e: &Error, _w: ProxyWarnLogContext) -> bool {
        true // retries are logged as decisions
    }
}
