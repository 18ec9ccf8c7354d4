//! Answers the sidecar makes itself (`request_filter` refusals, `fail_to_proxy`): a status, the
//! client's error shape, a clear message, `x-llm-sidecar-error: <kind>`, the request id and CORS;
//! and [`ErrorKind`], the one enum of what a request can fail with.

use bytes::Bytes;
use http::header::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use pingora::proxy::FailToProxy;
use pingora::{Error, ErrorSource, ErrorType};

use std::time::Duration;

use pingora::protocols::http::ServerSession;

pub use super::error::ErrorKind;
use super::replay::Expired;
use super::view::View;
use crate::provider::{Provider, ProviderKind};

/// A request the sidecar answers itself.
pub enum Early {
    /// A refusal: an error answer in the client's shape.
    Refuse(Refusal),
    /// `OPTIONS`: never forwarded; `204`, with CORS headers for an allowed origin.
    Preflight,
    /// `HEAD` (Claude Code's credential-less probe of the base URL): `200`, never forwarded.
    Head,
    /// A JSON answer of the sidecar's own (a front door's model list).
    Json(u16, Bytes),
}

/// Why a request is answered by the sidecar itself.
pub struct Refusal {
    /// What went wrong; it sets the status.
    pub kind: ErrorKind,
    /// What the client is told.
    pub message: String,
    /// Seconds, for `retry-after` (`None`: 1 on a 429 or 503, else no header).
    pub retry_after: Option<u64>,
    /// `x-ratelimit-limit`, `-remaining`, `-reset` (seconds), for a client over its rate.
    pub rate_limit: Option<(u64, u64, u64)>,
}

impl Refusal {
    /// A refusal of `kind` with `message`, no `retry-after` and no rate-limit headers.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Refusal {
            kind,
            message: message.into(),
            retry_after: None,
            rate_limit: None,
        }
    }
}

/// What answering needs from the request beyond the common view.
pub trait RespondCtx: View {
    /// What the request failed with, as recorded on the way.
    fn failure(&self) -> Option<ErrorKind>;
    /// Set (or clear) what the request failed with.
    fn record_failure(&mut self, failure: Option<ErrorKind>);
    /// When an account may be available (our own 429/503's `retry-after`).
    fn retry_after(&self) -> Option<Duration>;
    /// The client holds a stream's head and nothing else.
    fn head_only(&self) -> bool;
    /// Which of the request's deadlines fired, if one did.
    fn expired(&self) -> Option<Expired>;
    /// The provider's end-of-stream marker reached the client.
    fn delivered(&self) -> bool;
    /// Put the real downstream session back into `slot` (it was wrapped for the proxy phase).
    fn restore_session(&self, slot: &mut ServerSession);
    /// A translated stream cut short: what ends it in the client's dialect.
    fn stream_tail(&mut self) -> Option<Bytes>;
}

/// An answer the sidecar writes itself.
pub struct Reply<'a> {
    /// The HTTP status; `kind`'s unless set otherwise.
    pub status: u16,
    /// The `x-llm-sidecar-error` value.
    pub kind: ErrorKind,
    /// What the client is told.
    pub message: &'a str,
    /// Seconds, for `retry-after` (our 429s and 503s always carry one).
    pub retry_after: Option<u64>,
    /// `x-ratelimit-limit`, `-remaining`, `-reset` (seconds) for a client over its rate.
    pub rate_limit: Option<(u64, u64, u64)>,
    /// `access-control-allow-origin` for a browser's allowed origin.
    pub cors: Option<&'a HeaderValue>,
}

impl<'a> Reply<'a> {
    /// An answer for `kind` with its status, no `retry-after`, rate-limit or CORS headers.
    pub fn new(kind: ErrorKind, message: &'a str) -> Self {
        Reply {
            status: kind.status(),
            kind,
            message,
            retry_after: None,
            rate_limit: None,
            cors: None,
        }
    }
}

/// Methods the sidecar forwards, plus the two it answers itself.
const ALLOW: &str = "GET, POST, DELETE, HEAD, OPTIONS";

/// An empty answer of the sidecar's own (`204` to a preflight, `200` to `HEAD`).
pub async fn empty(
    session: &mut Session,
    status: u16,
    request_id: &HeaderValue,
    cors: Option<(&crate::cors::Cors, &HeaderValue)>,
) -> Result<()> {
    let mut head = ResponseHeader::build(status, Some(4))?;
    head.insert_header(http::header::CONTENT_LENGTH, 0)?;
    head.insert_header("x-request-id", request_id.clone())?;
    if status == 204 {
        head.insert_header(http::header::ALLOW, ALLOW)?;
    }
    if let Some((cors, origin)) = cors {
        cors.preflight(origin, &mut head)?;
    }
    session.write_response_header(Box::new(head), true).await?;
    Ok(())
}

/// Write `reply` as a complete response. With no provider known (no route matched) the
/// OpenAI shape is used, the most widely understood.
pub async fn send(
    session: &mut Session,
    provider: Option<&dyn Provider>,
    reply: &Reply<'_>,
    request_id: &HeaderValue,
) -> Result<()> {
    let provider = provider.unwrap_or(ProviderKind::Openai.get());
    let body = Bytes::from(provider.error_body(reply.status, reply.message));
    let mut head = ResponseHeader::build(reply.status, Some(5))?;
    head.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    head.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    head.insert_header("x-llm-sidecar-error", reply.kind.as_str())?;
    head.insert_header("x-request-id", request_id.clone())?;
    let retry_after = match reply.status {
        429 | 503 => Some(reply.retry_after.unwrap_or(1).max(1)),
        _ => reply.retry_after,
    };
    if let Some(secs) = retry_after {
        head.insert_header(http::header::RETRY_AFTER, secs)?;
    }
    if reply.kind == ErrorKind::MethodNotAllowed {
        head.insert_header(http::header::ALLOW, ALLOW)?;
    }
    if let Some(origin) = reply.cors {
        crate::cors::add_response_headers(origin, &mut head)?;
    }
    if let Some((limit, remaining, reset)) = reply.rate_limit {
        head.insert_header("x-ratelimit-limit", limit)?;
        head.insert_header("x-ratelimit-remaining", remaining)?;
        head.insert_header("x-ratelimit-reset", reset)?;
    }
    session.write_response_header(Box::new(head), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

/// What went wrong, from Pingora's error and what the request recorded on the way.
pub fn classify(e: &Error, ctx: &impl RespondCtx) -> ErrorKind {
    if let Some(kind) = ctx.failure() {
        return kind;
    }
    if let Some(expired) = ctx.expired() {
        if ctx.account().is_some_and(|a| a.cli.is_some()) && expired != Expired::FirstToken {
            return ErrorKind::CliTimeout;
        }
        return match expired {
            Expired::FirstByte => ErrorKind::FirstByteTimeout,
            Expired::FirstToken => ErrorKind::FirstTokenTimeout,
            Expired::Idle => ErrorKind::IdleTimeout,
            Expired::Total => ErrorKind::TotalTimeout,
        };
    }
    // Pingora's error types are many and open-ended: the source decides the rest.
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
pub fn outcome(e: &Error, ctx: &impl RespondCtx) -> Option<ErrorKind> {
    let kind = classify(e, ctx);
    (!(kind == ErrorKind::ClientClosed && ctx.delivered())).then_some(kind)
}

/// Answer a request admission stopped (`request_filter`): a preflight, a `HEAD`, or a refusal.
pub async fn early(session: &mut Session, ctx: &mut impl RespondCtx, early: Early) -> pingora::Result<()> {
    match early {
        Early::Preflight => {
            let cors = ctx.snapshot().and_then(|s| s.cors.as_ref()).zip(ctx.cors());
            empty(session, 204, ctx.request_id(), cors).await
        }
        Early::Head => empty(session, 200, ctx.request_id(), None).await,
        Early::Json(status, body) => json(session, status, body, ctx).await,
        Early::Refuse(r) => refusal(session, ctx, r).await,
    }
}

/// A JSON answer of the sidecar's own.
async fn json(session: &mut Session, status: u16, body: Bytes, ctx: &impl RespondCtx) -> pingora::Result<()> {
    let mut head = ResponseHeader::build(status, Some(4))?;
    head.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    head.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    head.insert_header("x-request-id", ctx.request_id().clone())?;
    if let Some(origin) = ctx.cors() {
        crate::cors::add_response_headers(origin, &mut head)?;
    }
    session.write_response_header(Box::new(head), false).await?;
    session.write_response_body(Some(body), true).await
}

/// Answer a request admission refused.
pub async fn refusal(session: &mut Session, ctx: &mut impl RespondCtx, refusal: Refusal) -> pingora::Result<()> {
    ctx.record_failure(Some(refusal.kind));
    // Refused before its body was read: do not let Pingora drain it (of any size, from anyone)
    // to keep the connection: close it after answering. A client that left gets nothing.
    if !session.is_body_done() || refusal.kind == ErrorKind::ClientClosed {
        session.set_keepalive(None);
    }
    if refusal.kind == ErrorKind::ClientClosed {
        return Ok(());
    }
    let mut reply = Reply::new(refusal.kind, &refusal.message);
    reply.retry_after = refusal.retry_after;
    reply.rate_limit = refusal.rate_limit;
    reply.cors = ctx.cors();
    send(session, ctx.client_provider(), &reply, ctx.request_id()).await
}

/// The request failed past admission (`fail_to_proxy`): answer it in the client's shape when no
/// head went out yet, or end a stream that has only its head with an error event.
pub async fn failed(session: &mut Session, e: &Error, ctx: &mut impl RespondCtx) -> FailToProxy {
    let kind = classify(e, ctx);
    let recorded = outcome(e, ctx);
    ctx.record_failure(recorded);
    // Pingora closes the client connection after an error past peer selection; say so in the
    // answer (the wrapper cannot carry keep-alive settings: put the real session back).
    ctx.restore_session(&mut session.downstream_session);
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
        reply.retry_after = ctx.retry_after().map(|d| d.as_secs_f64().ceil() as u64);
        reply.cors = ctx.cors();
        if let Err(write) = send(session, provider, &reply, ctx.request_id()).await {
            tracing::debug!(error = %write, "could not write the error response");
        }
    } else if ctx.head_only() {
        // A stream retried after an in-band error found no account: end it the provider's way.
        if let Some(p) = ctx.client_provider().or(provider) {
            let event = Bytes::from(p.sse_error(kind.status(), &message));
            let _ = session.write_response_body(Some(event), true).await;
        }
    } else if let Some(tail) = ctx.stream_tail() {
        // A front door's translated stream cut short: the client's dialect says so.
        let _ = session.write_response_body(Some(tail), true).await;
    }
    FailToProxy {
        error_code: kind.status(),
        can_reuse_downstream: false,
    }
}
