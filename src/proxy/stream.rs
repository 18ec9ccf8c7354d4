//! The response as it goes to the client (`response_filter`, `response_body_filter`): our
//! headers, the usage meter on the upstream's bytes, and a stream's preamble held back until its
//! first content, so an error event (or silence, `first_token`) before content can still be
//! retried on another account, the client seeing one clean stream.

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use pingora::http::ResponseHeader;
use pingora::{Error, ErrorType, Result};

use super::reply;
use super::retry::{self, RetryCtx};
use super::translate::Translation;
use crate::usage::Meter;

/// The most bytes of a stream's preamble held back before its first content.
const MAX_HELD: usize = 256 * 1024;

/// What the response stage needs from the request beyond what retries need.
pub trait StreamCtx: RetryCtx {
    /// The response stage's own part of the request's state.
    fn response_mut(&mut self) -> &mut Response;
    /// The response stage's own part of the request's state, read-only.
    fn response_ref(&self) -> &Response;
    /// The sidecar asked an OpenAI stream for usage on the client's behalf.
    fn strip_usage(&self) -> bool;
    /// The front door's translation (its way back).
    fn translation_mut(&mut self) -> &mut Translation;
    /// The upstream named the request's session (claude-cli): it sticks to this account.
    fn adopt_session(&mut self, id: &str);
}

/// The response part of a request's state.
#[derive(Default)]
pub struct Response {
    /// The answer is an event stream.
    sse: bool,
    meter: Option<Meter>,
    /// A stream's preamble, held until its first content or error.
    held: Option<Vec<Bytes>>,
    /// After a retry the answer was not an event stream: its status, sent as an error event.
    replace_body: Option<u16>,
    /// From the request's arrival to the (last) upstream response head.
    ttfb: Option<std::time::Duration>,
}

impl Response {
    /// The answer was an event stream.
    pub fn sse(&self) -> bool {
        self.sse
    }
    /// The provider's end-of-stream marker passed (the client got everything).
    pub fn delivered(&self) -> bool {
        self.meter.as_ref().is_some_and(|m| m.saw_done)
    }
    /// An upstream response head arrived.
    pub fn head_arrived(&mut self, started: std::time::Instant) {
        self.ttfb = Some(started.elapsed());
    }
    /// Time to the upstream's response head.
    pub fn ttfb(&self) -> Option<std::time::Duration> {
        self.ttfb
    }
    /// The meter, for the end of the request.
    pub fn meter_mut(&mut self) -> Option<&mut Meter> {
        self.meter.as_mut()
    }
    /// Drop a held preamble (and its meter) because the attempt is abandoned; true if there was one.
    pub fn release_held(&mut self) -> bool {
        let had = self.held.take().is_some();
        if had {
            self.meter = None;
        }
        had
    }
}

/// `upstream_response_filter`: the upstream's head arrived; judge the account (`Err`: retry
/// elsewhere, do not answer).
pub fn upstream_head(resp: &ResponseHeader, ctx: &mut impl StreamCtx) -> Result<()> {
    upstream_data(ctx);
    let started = ctx.started();
    ctx.response_mut().head_arrived(started);
    retry::response_head(ctx, resp.status.as_u16(), &resp.headers)
}

/// Upstream data (a head or a body chunk) arrived: the idle clock restarts.
pub fn upstream_data(ctx: &impl StreamCtx) {
    if let Some(link) = ctx.link() {
        link.data_arrived();
    }
}

/// The response head of an attempt. `written`: a head already reached the client (after an
/// in-band error the first attempt's head may or may not have been written: Pingora drops a
/// batch of upstream events, head included, when a filter in it fails).
pub fn response_head(resp: &mut ResponseHeader, written: bool, ctx: &mut impl StreamCtx) -> Result<()> {
    our_headers(resp, ctx)?;
    if ctx.account().is_some_and(|a| a.cli.is_some()) {
        if let Some(id) = resp.headers.get("x-session-id").and_then(|v| v.to_str().ok()) {
            ctx.adopt_session(id);
        }
    }
    let sse = resp
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if ctx.head_only() && written && !(sse && resp.status.is_success()) {
        // The client already has a 200 event stream from the first attempt: this answer cannot
        // be passed as it is; it becomes an error event in the provider's stream format.
        ctx.response_mut().replace_body = Some(resp.status.as_u16());
        return Ok(());
    }
    ctx.response_mut().sse = sse;
    let encoding = encoding(resp, ctx);
    let max_event = ctx.snapshot().map_or(1 << 20, |s| s.limits.max_sse_event_bytes);
    translate_head(resp, ctx, max_event)?;
    let Some(gzip) = encoding else {
        let out = ctx.response_mut();
        out.meter = None;
        out.held = None;
        return Ok(());
    };
    let strip = sse && ctx.strip_usage() && !gzip; // the usage chunk cannot be cut out of gzip
    if sse {
        resp.insert_header(CACHE_CONTROL, HeaderValue::from_static("no-cache"))?;
        resp.insert_header("x-accel-buffering", HeaderValue::from_static("no"))?;
        if strip {
            // Removing an event changes the length: let Pingora frame the stream itself.
            resp.remove_header(&CONTENT_LENGTH);
        }
    }
    let meter = ctx.pool().map(|p| {
        let meter = Meter::new(p.provider, sse, strip, max_event);
        if gzip {
            meter.gunzip()
        } else {
            meter
        }
    });
    // Hold a successful stream's preamble while another account could still take over.
    let retry_left = ctx
        .primary()
        .is_some_and(|p| ctx.retry_ref().attempts() < p.retry.attempts);
    let stream_ok = sse && resp.status.is_success();
    let first_token = ctx.pool().and_then(|p| p.timeouts.first_token);
    if let (Some(limit), Some(link), true) = (first_token, ctx.link(), stream_ok) {
        link.await_first_token(limit);
    }
    let out = ctx.response_mut();
    out.meter = meter;
    out.held = (stream_ok && retry_left).then(Vec::new);
    Ok(())
}

/// A front door's answer: how it goes back to the client, and its headers.
fn translate_head(resp: &mut ResponseHeader, ctx: &mut impl StreamCtx, max_event: usize) -> Result<()> {
    let from = ctx.pool().map(|p| p.provider.dialect());
    let rid = ctx.request_id().clone();
    let whole = match (ctx.translation_mut().reply_parts(), from) {
        (Some(parts), Some(from)) => reply::head(parts, from, resp, max_event, rid.to_str().unwrap_or("-"))?,
        _ => return Ok(()),
    };
    if let (true, Some(link)) = (whole, ctx.link()) {
        link.answer_whole();
    }
    Ok(())
}

/// `x-request-id`, CORS, and the pool and account that answered.
fn our_headers(resp: &mut ResponseHeader, ctx: &impl StreamCtx) -> Result<()> {
    resp.insert_header("x-request-id", ctx.request_id().clone())?;
    if let Some(origin) = ctx.cors() {
        crate::cors::add_response_headers(origin, resp)?;
    }
    if let (Some(pool), Some(account)) = (ctx.pool(), ctx.account()) {
        resp.insert_header("x-llm-sidecar-pool", pool.name_header.clone())?;
        resp.insert_header("x-llm-sidecar-account", account.name_header.clone())?;
    }
    Ok(())
}

/// Whether the body is gzipped (metered through inflation); `None` for another encoding, which
/// passes as sent, unmetered and counted.
fn encoding(resp: &ResponseHeader, ctx: &impl StreamCtx) -> Option<bool> {
    match resp.headers.get(CONTENT_ENCODING).map(|v| v.as_bytes()) {
        None => Some(false),
        Some(e) if e.eq_ignore_ascii_case(b"identity") => Some(false),
        Some(e) if e.eq_ignore_ascii_case(b"gzip") || e.eq_ignore_ascii_case(b"x-gzip") => Some(true),
        Some(_) => {
            if let Some(core) = ctx.core() {
                core.metrics.unmetered.with_label_values(&["encoding"]).inc();
            }
            None
        }
    }
}

/// One body chunk on its way to the client.
pub fn response_body(body: &mut Option<Bytes>, end: bool, ctx: &mut impl StreamCtx) -> Result<()> {
    if let Some(status) = ctx.response_ref().replace_body {
        *body = end.then(|| {
            let p = ctx.client_provider();
            let message = format!("the upstream answered {status} after a retry");
            Bytes::from(p.map(|p| p.sse_error(status, &message)).unwrap_or_default())
        });
        return Ok(());
    }
    let flags = ctx.response_mut().meter.as_mut().map(|meter| {
        meter.feed(body);
        if end {
            if let Some(rest) = meter.take_pending() {
                append(body, rest);
            }
        }
        (meter.saw_content, meter.error_before_content)
    });
    if let Some(parts) = ctx.translation_mut().reply_parts() {
        reply::body(parts, body, end);
    }
    let Some((content, error)) = flags else {
        return Ok(());
    };
    if content {
        if let Some(link) = ctx.link() {
            link.content_arrived();
        }
    }
    if ctx.response_ref().held.is_none() {
        if content {
            ctx.retry_mut().body_sent();
        }
        return Ok(());
    }
    if error {
        let kind = ctx.response_ref().meter.as_ref().and_then(Meter::in_band_error);
        if retry::in_band_error(ctx, kind.as_deref()) {
            let out = ctx.response_mut();
            out.held = None;
            out.meter = None;
            *body = None;
            return Err(Error::explain(ErrorType::HTTPStatus(503), "error event before content").into_up());
        }
    } else if !content && !end && hold(body, ctx) {
        return Ok(());
    }
    // Content (or the end, or an error we pass on): release what was held, in order.
    ctx.retry_mut().body_sent();
    if let Some(mut held) = ctx.response_mut().held.take().filter(|h| !h.is_empty()) {
        if let Some(b) = body.take() {
            held.push(b);
        }
        *body = Some(held.concat().into());
    }
    Ok(())
}

/// Hold a preamble chunk back; false when the preamble grew past `MAX_HELD` (it is then passed
/// on, and with it the chance to retry this stream elsewhere).
fn hold(body: &mut Option<Bytes>, ctx: &mut impl StreamCtx) -> bool {
    let Some(held) = ctx.response_mut().held.as_mut() else {
        return false;
    };
    let size: usize = held.iter().map(Bytes::len).sum::<usize>() + body.as_ref().map_or(0, Bytes::len);
    if size <= MAX_HELD {
        if let Some(b) = body.take().filter(|b| !b.is_empty()) {
            held.push(b);
        }
        *body = Some(Bytes::new());
        return true;
    }
    let pool = ctx.pool().map_or("-", |p| &*p.name);
    tracing::info!(target: "llm_sidecar::decision", pool, held = size, "stream preamble over 256 KiB: passed on, no in-band failover");
    false
}

fn append(body: &mut Option<Bytes>, rest: Bytes) {
    *body = Some(match body.take() {
        Some(b) if !b.is_empty() => [b, rest].concat().into(),
        _ => rest,
    });
}
