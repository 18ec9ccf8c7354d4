//! Admission, run in `request_filter` before any upstream is involved: request id and snapshot
//! pinned, the path routed ([`super::route`]), the method, CORS preflights and `HEAD` answered
//! here, client token and rate, session id, and the body read ([`super::body`]) and validated.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use pingora::proxy::Session;
use pingora::Result;

use super::replay::{self, Link};
use super::respond::{Early, ErrorKind, Refusal};
use super::view::View;
use super::{body, route};
use crate::clock::now_ms;
use crate::config::{ClientToken, Pool, Route, Snapshot};
use crate::resilience::limits::ClientKey;
use crate::sidecar::{BufferLease, InflightGuard, Sidecar};
use crate::validate::{self, Invalid};

fn refuse(kind: ErrorKind, message: impl Into<String>) -> Option<Early> {
    Some(Early::Refuse(Refusal::new(kind, message)))
}

/// What admission needs from the request beyond the common view.
pub trait AdmitCtx: View {
    /// Admission's own part of the request's state.
    fn request_mut(&mut self) -> &mut Request;
    /// Start the walk over pools at the route's pool.
    fn start_walk(&mut self, pool: usize);
    /// The replaying session's link, once the body is read.
    fn set_link(&mut self, link: Arc<Link>);
}

/// What admission learnt about the request; read by the later stages through its methods.
#[derive(Default)]
pub struct Request {
    snap: Option<Arc<Snapshot>>,
    request_id: Option<HeaderValue>,
    inflight: Option<InflightGuard>,
    route: Option<usize>,
    client: Option<Arc<str>>,
    /// The client's key in the shared store, until the request's first ask takes it.
    shared_client: Option<Box<str>>,
    session: Option<String>,
    stream: bool,
    model: Option<String>,
    upstream_path: String,
    body_len: usize,
    strip_usage: bool,
    cors: Option<HeaderValue>,
    buffer: Option<BufferLease>,
}

impl Request {
    /// The snapshot pinned for the request's whole life (`None` before admission pinned one).
    pub fn snap(&self) -> Option<&Snapshot> {
        self.snap.as_deref()
    }
    /// The pinned snapshot itself (for what outlives a borrow of the context).
    pub fn snap_arc(&self) -> Option<Arc<Snapshot>> {
        self.snap.clone()
    }
    /// The client's key for the shared store's window (once: retries are the same request).
    pub fn take_shared_client(&mut self) -> Option<Box<str>> {
        self.shared_client.take()
    }
    /// The sidecar the request runs in (`None` before admission counted it in flight).
    pub fn core(&self) -> Option<&Sidecar> {
        self.inflight.as_ref().map(|g| &**g.core())
    }
    /// `x-request-id`: the client's when well-formed, else generated; `-` before it is known.
    pub fn request_id(&self) -> &HeaderValue {
        static NONE: HeaderValue = HeaderValue::from_static("-");
        self.request_id.as_ref().unwrap_or(&NONE)
    }
    /// The route taken (`None` before routing).
    pub fn route(&self) -> Option<&Route> {
        self.snap()?.routes.get(self.route?)
    }
    /// The client's token name (`None` when no `clients.tokens` are configured).
    pub fn client(&self) -> Option<&Arc<str>> {
        self.client.as_ref()
    }
    /// The session id from the pool's session header, or Claude Code's, or the body (`None`: no
    /// session).
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }
    /// Take the session id for the request log row, leaving `None`.
    pub fn take_session(&mut self) -> Option<String> {
        self.session.take()
    }
    /// The session an upstream named for this request.
    pub fn set_session(&mut self, id: String) {
        self.session = Some(id);
    }
    /// The client asked for a stream (in its body, or by the path).
    pub fn streamed(&self) -> bool {
        self.stream
    }
    /// The `model` the body names.
    pub fn take_model(&mut self) -> Option<String> {
        self.model.take()
    }
    /// Route-relative path and query for the upstream.
    pub fn upstream_path(&self) -> &str {
        &self.upstream_path
    }
    /// The request body's length, in bytes.
    pub fn body_len(&self) -> usize {
        self.body_len
    }
    /// The sidecar asked an OpenAI stream for usage on the client's behalf: strip that chunk.
    pub fn strip_usage(&self) -> bool {
        self.strip_usage
    }
    /// `access-control-allow-origin` for an allowed browser origin.
    pub fn cors(&self) -> Option<&HeaderValue> {
        self.cors.as_ref()
    }
    /// A front door planned the request: its facts, and its first pool's gauge and budget.
    pub fn planned(&mut self, stream: bool, model: String, session: Option<String>, primary: Option<&Pool>) {
        self.stream = stream;
        self.model = Some(model);
        if self.session.is_none() {
            self.session = session;
        }
        if let Some(pool) = primary {
            if let Some(g) = self.inflight.as_mut() {
                g.count_in(pool.inflight.get());
            }
            pool.state.budget.deposit(now_ms());
        }
    }
}

/// Admit the request into the proxy phase, or say why not. `Err` is an I/O failure with the
/// client (it went away), not a refusal.
pub async fn admit(core: &Arc<Sidecar>, session: &mut Session, ctx: &mut impl AdmitCtx) -> Result<Option<Early>> {
    let snap = core.snapshot();
    let r = ctx.request_mut();
    let req = session.req_header();
    r.request_id = Some(request_id(req.headers.get("x-request-id")));
    r.inflight = Some(core.enter());
    r.snap = Some(Arc::clone(&snap));
    r.cors = snap
        .cors
        .as_ref()
        .and_then(|c| c.allowed(req.headers.get(header::ORIGIN)));
    let routed = match route::resolve(&snap.routes, req.uri.path(), &req.headers) {
        Ok(routed) => routed,
        Err((kind, msg)) => return Ok(refuse(kind, msg)),
    };
    let Some(route) = snap.routes.get(routed.index) else {
        return Ok(refuse(ErrorKind::NoRoute, "no route"));
    };
    r.route = Some(routed.index);
    if let Some(early) = by_method(&req.method) {
        return Ok(Some(early));
    }
    let Some(pool_index) = route.pool() else {
        let path = route::upstream_path(route, &routed.path, session.req_header().uri.query());
        return admit_to_door(core, session, ctx, &snap, path).await;
    };
    ctx.start_walk(pool_index);
    let Some(pool) = snap.pools.get(pool_index) else {
        return Ok(refuse(ErrorKind::Internal, "route without a pool"));
    };
    let r = ctx.request_mut();
    if let Some(g) = r.inflight.as_mut() {
        g.count_in(pool.inflight.get());
    }
    if let Some(refused) = client(core, session, r, &snap) {
        return Ok(Some(Early::Refuse(refused)));
    }
    if let Err(refused) = session_id(session, r, pool) {
        return Ok(Some(Early::Refuse(refused)));
    }
    let req = session.req_header();
    r.stream = pool.provider.streams_by_path(&routed.path);
    r.upstream_path = route::upstream_path(route, &routed.path, req.uri.query());
    let body = match body::read(core, session, &mut r.buffer, &snap, pool.timeouts.idle).await? {
        Ok(b) => b,
        Err(refusal) => return Ok(Some(Early::Refuse(refusal))),
    };
    let body = match validate_body(session, r, pool, &snap, body) {
        Ok(b) => b,
        Err(refusal) => return Ok(Some(Early::Refuse(refusal))),
    };
    r.body_len = body.len();
    pool.state.budget.deposit(now_ms());
    let link = replay::wrap(&mut session.downstream_session, body, pool.timeouts, ctx.started());
    ctx.set_link(link);
    Ok(None)
}

/// A front door's request: what admission checks without a pool (the door plans the rest).
async fn admit_to_door(
    core: &Arc<Sidecar>,
    session: &mut Session,
    ctx: &mut impl AdmitCtx,
    snap: &Snapshot,
    path: String,
) -> Result<Option<Early>> {
    let r = ctx.request_mut();
    if let Some(refused) = client(core, session, r, snap) {
        return Ok(Some(Early::Refuse(refused)));
    }
    let headers = &session.req_header().headers;
    if let Some(sid) = headers
        .get("x-session-id")
        .or_else(|| headers.get("x-claude-code-session-id"))
    {
        if !validate::valid_id(sid.as_bytes()) {
            let msg = "x-session-id must match ^[A-Za-z0-9._:-]{1,128}$";
            return Ok(refuse(ErrorKind::InvalidHeader, msg));
        }
        r.session = sid.to_str().ok().map(String::from);
    }
    r.upstream_path = path;
    let idle = snap.server.body_timeout;
    let body = match body::read(core, session, &mut r.buffer, snap, idle).await? {
        Ok(b) => b,
        Err(refusal) => return Ok(Some(Early::Refuse(refusal))),
    };
    if !body.is_empty() {
        if let Err(e) = validate::check_json(&body, snap.limits.max_json_depth) {
            let kind = match e {
                Invalid::TooDeep(_) => ErrorKind::JsonTooDeep,
                Invalid::Nul | Invalid::NotObject => ErrorKind::InvalidBody,
                Invalid::NotJson(_) => ErrorKind::InvalidJson,
            };
            return Ok(refuse(kind, e.message()));
        }
    }
    // A door's timeouts are its targets' pools': the replay starts with the server's and each
    // attempt sets its pool's.
    let timeouts = crate::config::Timeouts {
        connect: snap.server.body_timeout,
        first_byte: snap.server.body_timeout,
        first_token: None,
        idle: snap.server.body_timeout,
        total: std::time::Duration::from_secs(3600),
    };
    let link = replay::wrap(&mut session.downstream_session, body, timeouts, ctx.started());
    ctx.set_link(link);
    Ok(None)
}

/// Methods a provider API uses go on; `OPTIONS` and `HEAD` are answered here; others refused.
fn by_method(method: &http::Method) -> Option<Early> {
    match *method {
        http::Method::GET | http::Method::POST | http::Method::DELETE => None,
        http::Method::OPTIONS => Some(Early::Preflight),
        http::Method::HEAD => Some(Early::Head),
        ref m => refuse(
            ErrorKind::MethodNotAllowed,
            format!("method {m} is not allowed: the sidecar forwards GET, POST and DELETE"),
        ),
    }
}

/// The client's token (when tokens are configured) and its request rate.
fn client(core: &Sidecar, session: &Session, r: &mut Request, snap: &Snapshot) -> Option<Refusal> {
    let req = session.req_header();
    if !snap.client_tokens.is_empty() {
        match client_name(&snap.client_tokens, req) {
            Some(name) => r.client = Some(name),
            None => {
                let msg = "missing or unknown sidecar token: send your client token as the API key";
                return Some(Refusal::new(ErrorKind::Unauthorized, msg));
            }
        }
    }
    let rpm = snap.client_rpm?;
    let key = match (&r.client, session.client_addr().and_then(|a| a.as_inet())) {
        (Some(name), _) => ClientKey::Named(Arc::clone(name)),
        (None, Some(addr)) => ClientKey::Addr(addr.ip()),
        (None, None) => ClientKey::Overflow,
    };
    if core.shared.is_some() {
        r.shared_client = Some(match &key {
            ClientKey::Named(name) => format!("n:{name}").into(),
            ClientKey::Addr(ip) => format!("ip:{ip}").into(),
            ClientKey::Overflow => "overflow".into(),
        });
    }
    let v = core.clients.check(key, u64::from(rpm), now_ms());
    if v.allowed {
        return None;
    }
    core.metrics.ratelimited("client");
    let wait = v.retry_after_ms.div_ceil(1000).max(1);
    tracing::info!(target: "llm_sidecar::decision", client = r.client.as_deref().unwrap_or("-"), rpm, "client over its rate");
    Some(Refusal {
        retry_after: Some(wait),
        rate_limit: Some((v.limit, 0, wait)),
        ..Refusal::new(
            ErrorKind::ClientRateLimited,
            format!("this client is over its limit of {rpm} requests per minute"),
        )
    })
}

/// The session named by the pool's header, else by Claude Code's `x-claude-code-session-id`.
fn session_id(session: &Session, r: &mut Request, pool: &Pool) -> std::result::Result<(), Refusal> {
    let headers = &session.req_header().headers;
    let name = &pool.session.header;
    if let Some(sid) = headers.get(name) {
        if !validate::valid_id(sid.as_bytes()) {
            let msg = format!("{name} must match ^[A-Za-z0-9._:-]{{1,128}}$");
            return Err(Refusal::new(ErrorKind::InvalidHeader, msg));
        }
        r.session = sid.to_str().ok().map(String::from);
    } else if let Some(sid) = headers.get("x-claude-code-session-id") {
        r.session = Some(sid.as_bytes())
            .filter(|s| validate::valid_id(s))
            .and_then(|s| std::str::from_utf8(s).ok())
            .map(String::from);
    }
    Ok(())
}

/// A JSON body validated (shape, depth, NUL), its facts noted (stream, model, session), and
/// prepared for the upstream (OpenAI streams asked for usage).
fn validate_body(
    session: &Session,
    r: &mut Request,
    pool: &Pool,
    snap: &Snapshot,
    body: Bytes,
) -> std::result::Result<Bytes, Refusal> {
    if body.is_empty() || !body::is_json(session.req_header()) {
        return Ok(body);
    }
    let info = validate::check_json(&body, snap.limits.max_json_depth).map_err(|e| {
        let kind = match e {
            Invalid::TooDeep(_) => ErrorKind::JsonTooDeep,
            Invalid::Nul | Invalid::NotObject => ErrorKind::InvalidBody,
            Invalid::NotJson(_) => ErrorKind::InvalidJson,
        };
        Refusal::new(kind, e.message())
    })?;
    r.stream |= info.stream == Some(true);
    if r.session.is_none() {
        r.session = pool
            .provider
            .body_session(&info)
            .filter(|s| validate::valid_id(s.as_bytes()));
    }
    let (body, strip) = pool.provider.prepare_body(&r.upstream_path, &info, body);
    r.strip_usage = strip;
    r.model = info.model;
    Ok(body)
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
