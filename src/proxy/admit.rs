//! Admission, run in `request_filter` before any upstream is involved: request id, the path
//! normalised and routed, the method, CORS preflights and `HEAD` answered here, client token,
//! ids, and the body read in full (size-, time- and memory-limited) and validated.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use pingora::proxy::Session;
use pingora::Result;

use super::ctx::Ctx;
use super::replay;
use crate::clock::now_ms;
use crate::config::{ClientToken, Snapshot};
use crate::resilience::limits::ClientKey;
use crate::respond::ErrorKind;
use crate::route;
use crate::select::Walk;
use crate::sidecar::Sidecar;
use crate::validate::{self, Invalid};

/// A request the sidecar answers itself.
pub enum Early {
    Refuse(Refusal),
    /// `OPTIONS`: never forwarded; `204`, with CORS headers for an allowed origin.
    Preflight,
    /// `HEAD` (Claude Code's credential-less probe of the base URL): `200`, never forwarded.
    Head,
}

/// Why a request is answered by the sidecar itself.
pub struct Refusal {
    pub kind: ErrorKind,
    pub message: String,
    pub retry_after: Option<u64>,
    pub rate_limit: Option<(u64, u64, u64)>,
}

fn refuse(kind: ErrorKind, message: impl Into<String>) -> Option<Early> {
    Some(Early::Refuse(refusal(kind, message)))
}

fn refusal(kind: ErrorKind, message: impl Into<String>) -> Refusal {
    Refusal {
        kind,
        message: message.into(),
        retry_after: None,
        rate_limit: None,
    }
}

/// Methods a provider API uses; anything else never reaches an upstream.
fn forwarded(method: &http::Method) -> bool {
    matches!(*method, http::Method::GET | http::Method::POST | http::Method::DELETE)
}

/// Admit the request into the proxy phase, or say why not. `Err` is an I/O failure with the
/// client (it went away), not a refusal.
pub async fn admit(core: &Arc<Sidecar>, session: &mut Session, ctx: &mut Ctx) -> Result<Option<Early>> {
    let snap = core.snapshot();
    ctx.request_id = Some(request_id(session.req_header().headers.get("x-request-id")));
    ctx._inflight = Some(core.enter());
    ctx.snap = Some(Arc::clone(&snap));

    let req = session.req_header();
    ctx.cors = snap
        .cors
        .as_ref()
        .and_then(|c| c.allowed(req.headers.get(header::ORIGIN)));
    let normal = match route::normalize(req.uri.path()) {
        Ok(n) => n,
        Err(why) => return Ok(refuse(ErrorKind::InvalidPath, format!("invalid path: {why}"))),
    };
    // Climbing out of the route the path entered by (`/anthropic/../openai/...`).
    let entered = normal
        .entry
        .as_deref()
        .and_then(|e| route::find(&snap.routes, e, &req.headers));
    if let Some(entry) = entered
        .map(|i| &snap.routes[i])
        .filter(|r| normal.escapes(&r.path_prefix))
    {
        let msg = format!("invalid path: it climbs above the route's prefix {}", entry.path_prefix);
        return Ok(refuse(ErrorKind::InvalidPath, msg));
    }
    let Some(ri) = route::find(&snap.routes, &normal.path, &req.headers) else {
        let msg = format!("no route for {}", normal.path);
        return Ok(refuse(ErrorKind::NoRoute, msg));
    };
    let route = &snap.routes[ri];
    ctx.route = Some(ri);
    if normal.escapes(&route.path_prefix) {
        let msg = format!("invalid path: it climbs above the route's prefix {}", route.path_prefix);
        return Ok(refuse(ErrorKind::InvalidPath, msg));
    }
    match req.method {
        http::Method::OPTIONS => return Ok(Some(Early::Preflight)),
        http::Method::HEAD => return Ok(Some(Early::Head)),
        ref m if !forwarded(m) => {
            let msg = format!("method {m} is not allowed: the sidecar forwards GET, POST and DELETE");
            return Ok(refuse(ErrorKind::MethodNotAllowed, msg));
        }
        _ => {}
    }
    ctx.pool = Some(route.pool);
    ctx.walk = Walk::new(route.pool);
    let pool = &snap.pools[route.pool];
    if let Some(g) = ctx._inflight.as_mut() {
        g.count_in(pool.inflight.get());
    }

    if !snap.client_tokens.is_empty() {
        match client_name(&snap.client_tokens, req) {
            Some(name) => ctx.client = Some(name),
            None => {
                let msg = "missing or unknown sidecar token: send your client token as the API key";
                return Ok(refuse(ErrorKind::Unauthorized, msg));
            }
        }
    }
    if let Some(rpm) = snap.client_rpm {
        let key = match (&ctx.client, session.client_addr().and_then(|a| a.as_inet())) {
            (Some(name), _) => ClientKey::Named(Arc::clone(name)),
            (None, Some(addr)) => ClientKey::Addr(addr.ip()),
            (None, None) => ClientKey::Overflow,
        };
        let v = core.clients.check(key, u64::from(rpm), now_ms());
        if !v.allowed {
            core.metrics.ratelimited("client");
            let wait = v.retry_after_ms.div_ceil(1000).max(1);
            tracing::info!(target: "llm_sidecar::decision", client = ctx.client.as_deref().unwrap_or("-"), rpm, "client over its rate");
            return Ok(Some(Early::Refuse(Refusal {
                kind: ErrorKind::ClientRateLimited,
                message: format!("this client is over its limit of {rpm} requests per minute"),
                retry_after: Some(wait),
                rate_limit: Some((v.limit, 0, wait)),
            })));
        }
    }
    let req = session.req_header();
    let session_header = &pool.session.header;
    if let Some(sid) = req.headers.get(session_header) {
        if !validate::valid_id(sid.as_bytes()) {
            let msg = format!("{session_header} must match ^[A-Za-z0-9._:-]{{1,128}}$");
            return Ok(refuse(ErrorKind::InvalidHeader, msg));
        }
        ctx.session = sid.to_str().ok().map(String::from);
    } else if let Some(sid) = req.headers.get("x-claude-code-session-id") {
        // Claude Code names its session here on every request.
        ctx.session = Some(sid.as_bytes())
            .filter(|s| validate::valid_id(s))
            .and_then(|s| std::str::from_utf8(s).ok())
            .map(String::from);
    }
    ctx.stream = pool.provider.streams_by_path(&normal.path);
    ctx.upstream_path = route::upstream_path(route, &normal.path, req.uri.query());

    let mut body = match read_body(core, session, ctx, &snap, pool.timeouts.idle).await? {
        Ok(b) => b,
        Err(refusal) => return Ok(Some(Early::Refuse(refusal))),
    };
    if !body.is_empty() && is_json(session.req_header()) {
        let info = match validate::check_json(&body, snap.limits.max_json_depth) {
            Ok(info) => info,
            Err(e) => {
                let kind = match e {
                    Invalid::TooDeep(_) => ErrorKind::JsonTooDeep,
                    Invalid::Nul | Invalid::NotObject => ErrorKind::InvalidBody,
                    Invalid::NotJson(_) => ErrorKind::InvalidJson,
                };
                return Ok(refuse(kind, e.message()));
            }
        };
        ctx.stream |= info.stream == Some(true);
        if ctx.session.is_none() {
            ctx.session = pool
                .provider
                .body_session(&info)
                .filter(|s| validate::valid_id(s.as_bytes()));
        }
        (body, ctx.strip_usage) = pool.provider.prepare_body(&ctx.upstream_path, &info, body);
        ctx.req_model = info.model;
    }
    ctx.body_len = body.len();
    pool.state.budget.deposit(now_ms());
    ctx.link = Some(replay::wrap(
        &mut session.downstream_session,
        body,
        pool.timeouts,
        ctx.started(),
    ));
    Ok(None)
}

/// `x-request-id` when well-formed, else a fresh random one.
fn request_id(given: Option<&HeaderValue>) -> HeaderValue {
    if let Some(v) = given.filter(|v| validate::valid_id(v.as_bytes())) {
        return v.clone();
    }
    let id = format!("{:032x}", rand::random::<u128>());
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The client named by the token it sent where an API key goes. Every token is compared, so
/// timing does not tell which one matched.
fn client_name(tokens: &[ClientToken], req: &pingora::http::RequestHeader) -> Option<Arc<str>> {
    let h = &req.headers;
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let candidates = [
        h.get("x-api-key").map(HeaderValue::as_bytes),
        bearer,
        h.get("x-goog-api-key").map(HeaderValue::as_bytes),
        route::query_key(req.uri.query()).map(str::as_bytes),
    ];
    let mut found = None;
    for candidate in candidates.into_iter().flatten() {
        for t in tokens {
            if t.token.matches(candidate) {
                found = Some(Arc::clone(&t.name));
            }
        }
    }
    found
}

/// LLM APIs take JSON bodies; only uploads (files, audio, batches as JSON lines) are exempt.
/// A missing or form content type is still validated: curl's `-d` sends form encoding.
fn is_json(req: &pingora::http::RequestHeader) -> bool {
    let Some(ct) = req.headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let ct = ct.as_bytes().to_ascii_lowercase();
    let essence = ct.split(|b| *b == b';').next().unwrap_or(&ct).trim_ascii();
    let upload = essence.starts_with(b"multipart/")
        || essence.starts_with(b"audio/")
        || essence.starts_with(b"image/")
        || essence.starts_with(b"video/")
        || essence == b"application/octet-stream"
        || essence.ends_with(b"jsonl")
        || essence.ends_with(b"ndjson");
    !upload
}

/// Read the whole body, refusing it past `max_body_bytes` (declared or counted as it arrives),
/// when all requests together would hold more than `max_buffered_bytes`, when a read waits longer
/// than `idle` or the whole body takes longer than `server.body_timeout`.
async fn read_body(
    core: &Arc<Sidecar>,
    session: &mut Session,
    ctx: &mut Ctx,
    snap: &Snapshot,
    idle: std::time::Duration,
) -> Result<std::result::Result<Bytes, Refusal>> {
    let max = snap.limits.max_body_bytes;
    if session.is_body_empty() {
        return Ok(Ok(Bytes::new()));
    }
    let declared = session
        .req_header()
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    // Whatever happens next, a body we stop reading is not drained to keep the connection.
    let keepalive = session.get_keepalive();
    session.set_keepalive(None);
    if declared.is_some_and(|n| n > max) {
        return Ok(Err(refusal(
            ErrorKind::BodyTooLarge,
            format!("request body is larger than {max} bytes"),
        )));
    }
    let cap = snap.limits.max_buffered_bytes;
    let Some(lease) = core.lease(declared.unwrap_or(0), cap) else {
        return Ok(Err(overloaded(core)));
    };
    let lease = ctx.buffer.insert(lease);
    let expects_continue = session
        .req_header()
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        session.write_continue_response().await?;
    }
    session.set_read_timeout(Some(idle));
    let whole = snap.server.body_timeout;
    let read = tokio::time::timeout(whole, read_chunks(session, lease, core, declared, max, cap)).await;
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(refused)) => return Ok(Err(refused)),
        Err(_) => {
            let msg = format!(
                "the request body did not arrive within {}",
                humantime::format_duration(whole)
            );
            return Ok(Err(refusal(ErrorKind::ClientTimeout, msg)));
        }
    };
    session.set_read_timeout(None);
    session.set_keepalive(keepalive); // read in full: the connection may be reused
    Ok(Ok(body))
}

/// The chunks of the body, joined. Most bodies arrive in one chunk: that one is kept without a
/// copy; a copy is made only when a second comes.
async fn read_chunks(
    session: &mut Session,
    lease: &mut crate::sidecar::BufferLease,
    core: &Sidecar,
    declared: Option<usize>,
    max: usize,
    cap: usize,
) -> std::result::Result<Bytes, Refusal> {
    let mut single: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    loop {
        let chunk = match session.read_request_body().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(client_fault(&e)),
        };
        let seen = single.as_ref().map_or(0, Bytes::len) + joined.len() + chunk.len();
        if seen > max {
            return Err(refusal(
                ErrorKind::BodyTooLarge,
                format!("request body is larger than {max} bytes"),
            ));
        }
        if seen > declared.unwrap_or(0) && !lease.grow(chunk.len(), cap) {
            return Err(overloaded(core));
        }
        if single.is_none() && joined.is_empty() {
            single = Some(chunk);
            continue;
        }
        if let Some(first) = single.take() {
            joined.reserve(declared.unwrap_or(seen).min(max));
            joined.extend_from_slice(&first);
        }
        joined.extend_from_slice(&chunk);
    }
    Ok(single.unwrap_or_else(|| joined.freeze()))
}

/// What a failed body read was: the client went quiet, left, or sent a malformed body.
fn client_fault(e: &pingora::Error) -> Refusal {
    use pingora::ErrorType as T;
    match e.etype() {
        T::ReadTimedout => refusal(ErrorKind::ClientTimeout, "timed out reading the request body"),
        T::ConnectionClosed | T::ReadError | T::WriteError => refusal(
            ErrorKind::ClientClosed,
            "the client closed the connection during the upload",
        ),
        _ => refusal(
            ErrorKind::BadRequest,
            format!("malformed request body: {}", crate::text::sanitize(e.reason_str())),
        ),
    }
}

fn overloaded(core: &Sidecar) -> Refusal {
    tracing::warn!(
        buffered = core.buffered(),
        "request bodies in memory at limits.max_buffered_bytes: refusing"
    );
    Refusal {
        kind: ErrorKind::Overloaded,
        message: ErrorKind::Overloaded.describe().into(),
        retry_after: Some(1),
        rate_limit: None,
    }
}
