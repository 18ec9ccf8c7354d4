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

use super::admit::{Early, Refusal};
use super::ctx::Ctx;
use super::replay::Expired;
use crate::provider::{Provider, ProviderKind};

/// Why the sidecar answered or failed a request itself. The string form is the
/// `x-llm-sidecar-error` header value, the log's `error_kind` and a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NoRoute,
    MethodNotAllowed,
    InvalidPath,
    BadRequest,
    Overloaded,
    FirstTokenTimeout,
    Unauthorized,
    BodyTooLarge,
    InvalidJson,
    JsonTooDeep,
    InvalidBody,
    InvalidHeader,
    DnsError,
    ConnectRefused,
    ConnectTimeout,
    TlsError,
    FirstByteTimeout,
    IdleTimeout,
    TotalTimeout,
    UpstreamError,
    NoAccount,
    RateLimited,
    QueueFull,
    QueueTimeout,
    ClientRateLimited,
    RetryBudgetExhausted,
    InBandError,
    ClientClosed,
    ClientTimeout,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no_route",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::InvalidPath => "invalid_path",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::FirstTokenTimeout => "first_token_timeout",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::JsonTooDeep => "json_too_deep",
            ErrorKind::InvalidBody => "invalid_body",
            ErrorKind::InvalidHeader => "invalid_header",
            ErrorKind::DnsError => "dns_error",
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::TlsError => "tls_error",
            ErrorKind::FirstByteTimeout => "first_byte_timeout",
            ErrorKind::IdleTimeout => "idle_timeout",
            ErrorKind::TotalTimeout => "total_timeout",
            ErrorKind::UpstreamError => "upstream_error",
            ErrorKind::NoAccount => "no_account",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::QueueTimeout => "queue_timeout",
            ErrorKind::ClientRateLimited => "client_rate_limited",
            ErrorKind::RetryBudgetExhausted => "retry_budget_exhausted",
            ErrorKind::InBandError => "in_band_error",
            ErrorKind::ClientClosed => "client_closed",
            ErrorKind::ClientTimeout => "client_timeout",
            ErrorKind::Internal => "internal",
        }
    }

    /// What the client is told, in plain words.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorKind::DnsError => "the upstream host name could not be resolved",
            ErrorKind::ConnectRefused => "the upstream refused the connection",
            ErrorKind::ConnectTimeout => "connecting to the upstream timed out",
            ErrorKind::TlsError => "the TLS handshake with the upstream failed",
            ErrorKind::FirstByteTimeout => "the upstream sent no response within the first_byte timeout",
            ErrorKind::FirstTokenTimeout => "the upstream stream sent no content within the first_token timeout",
            ErrorKind::Overloaded => "the sidecar holds too many request bodies in memory; retry shortly",
            ErrorKind::IdleTimeout => "the upstream stream was idle for longer than the idle timeout",
            ErrorKind::TotalTimeout => "the request exceeded the total timeout",
            ErrorKind::UpstreamError => "the upstream connection failed",
            ErrorKind::NoAccount => "no account of this pool (or its fallbacks) can serve the request now",
            ErrorKind::RateLimited => "every account of this pool is rate limited",
            ErrorKind::QueueFull => "every account is at its concurrency limit and its queue is full",
            ErrorKind::QueueTimeout => "no account slot became free within the queue timeout",
            ErrorKind::ClientRateLimited => "this client is over its request rate",
            ErrorKind::InBandError => "the upstream stream reported an error",
            ErrorKind::Internal => "internal error in the sidecar",
            ErrorKind::NoRoute => "no route matches this path",
            ErrorKind::MethodNotAllowed => "this method is not forwarded",
            ErrorKind::InvalidPath => "the path is not allowed",
            ErrorKind::BadRequest => "the request is malformed",
            ErrorKind::Unauthorized => "missing or unknown sidecar token",
            ErrorKind::BodyTooLarge => "the request body is too large",
            ErrorKind::InvalidJson => "the request body is not valid JSON",
            ErrorKind::JsonTooDeep => "the request body nests too deeply",
            ErrorKind::InvalidBody => "the request body is not acceptable",
            ErrorKind::InvalidHeader => "a request header is not acceptable",
            ErrorKind::RetryBudgetExhausted => "the pool's retry budget is spent",
            ErrorKind::ClientClosed => "the client closed the connection",
            ErrorKind::ClientTimeout => "the client was too slow",
        }
    }

    /// The status the sidecar answers with for this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::NoRoute => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::InvalidPath | ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::BodyTooLarge => 413,
            ErrorKind::InvalidJson | ErrorKind::JsonTooDeep | ErrorKind::InvalidBody | ErrorKind::InvalidHeader => 400,
            ErrorKind::DnsError | ErrorKind::ConnectRefused | ErrorKind::TlsError | ErrorKind::UpstreamError => 502,
            ErrorKind::ConnectTimeout
            | ErrorKind::FirstByteTimeout
            | ErrorKind::FirstTokenTimeout
            | ErrorKind::IdleTimeout
            | ErrorKind::TotalTimeout => 504,
            ErrorKind::NoAccount
            | ErrorKind::QueueFull
            | ErrorKind::QueueTimeout
            | ErrorKind::RetryBudgetExhausted
            | ErrorKind::Overloaded
            | ErrorKind::InBandError => 503,
            ErrorKind::RateLimited | ErrorKind::ClientRateLimited => 429,
            ErrorKind::ClientClosed => 499,
            ErrorKind::ClientTimeout => 408,
            ErrorKind::Internal => 500,
        }
    }
}

/// An answer the sidecar writes itself.
pub struct Reply<'a> {
    pub status: u16,
    pub kind: ErrorKind,
    pub message: &'a str,
    /// Seconds, for `retry-after` (our 429s and 503s always carry one).
    pub retry_after: Option<u64>,
    /// `x-ratelimit-limit`, `-remaining`, `-reset` (seconds) for a client over its rate.
    pub rate_limit: Option<(u64, u64, u64)>,
    /// `access-control-allow-origin` for a browser's allowed origin.
    pub cors: Option<&'a HeaderValue>,
}

impl<'a> Reply<'a> {
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
pub fn classify(e: &Error, ctx: &Ctx) -> ErrorKind {
    if let Some(kind) = ctx.retry.failure() {
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
pub fn outcome(e: &Error, ctx: &Ctx) -> Option<ErrorKind> {
    let kind = classify(e, ctx);
    (!(kind == ErrorKind::ClientClosed && ctx.response.delivered())).then_some(kind)
}

/// Answer a request admission stopped (`request_filter`): a preflight, a `HEAD`, or a refusal.
pub async fn early(session: &mut Session, ctx: &mut Ctx, early: Early) -> pingora::Result<()> {
    match early {
        Early::Preflight => {
            let cors = ctx.snapshot().and_then(|s| s.cors.as_ref()).zip(ctx.req.cors());
            empty(session, 204, ctx.request_id(), cors).await
        }
        Early::Head => empty(session, 200, ctx.request_id(), None).await,
        Early::Refuse(r) => refusal(session, ctx, r).await,
    }
}

/// Answer a request admission refused.
pub async fn refusal(session: &mut Session, ctx: &mut Ctx, refusal: Refusal) -> pingora::Result<()> {
    ctx.retry.fail(refusal.kind, None);
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
    reply.cors = ctx.req.cors();
    send(session, ctx.client_provider(), &reply, ctx.request_id()).await
}

/// The request failed past admission (`fail_to_proxy`): answer it in the client's shape when no
/// head went out yet, or end a stream that has only its head with an error event.
pub async fn failed(session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
    let kind = classify(e, ctx);
    let recorded = outcome(e, ctx);
    ctx.retry.record(recorded);
    // Pingora closes the client connection after an error past peer selection; say so in the
    // answer (the wrapper cannot carry keep-alive settings: put the real session back).
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
        reply.retry_after = ctx.retry.retry_after().map(|d| d.as_secs_f64().ceil() as u64);
        reply.cors = ctx.req.cors();
        if let Err(write) = send(session, provider, &reply, ctx.request_id()).await {
            tracing::debug!(error = %write, "could not write the error response");
        }
    } else if ctx.retry.head_only() {
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
