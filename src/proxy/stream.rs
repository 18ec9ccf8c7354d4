//! The response as it goes to the client: our headers, the usage meter, and a stream's preamble
//! held back until its first content (so an error event before content can still be retried on
//! another account, the client seeing one clean stream).

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use pingora::http::ResponseHeader;
use pingora::{Error, ErrorType, Result};

use super::attempt;
use super::ctx::Ctx;
use crate::usage::Meter;

/// The most bytes of a stream's preamble held back before its first content.
const MAX_HELD: usize = 256 * 1024;

/// The response head of an attempt. `written`: a head already reached the client (after an
/// in-band error the first attempt's head may or may not have been written: Pingora drops a
/// batch of upstream events, head included, when a filter in it fails).
pub fn response_head(resp: &mut ResponseHeader, written: bool, ctx: &mut Ctx) -> Result<()> {
    resp.insert_header("x-request-id", ctx.request_id().clone())?;
    if let Some(origin) = &ctx.cors {
        crate::cors::add_response_headers(origin, resp)?;
    }
    if let (Some(pool), Some(account)) = (ctx.pool(), ctx.account()) {
        resp.insert_header("x-llm-sidecar-pool", pool.name_header.clone())?;
        resp.insert_header("x-llm-sidecar-account", account.name_header.clone())?;
    }
    let sse = resp
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if ctx.head_sent_no_body && written && !(sse && resp.status.is_success()) {
        // The client already has a 200 event stream from the first attempt: this answer cannot
        // be passed as it is; it becomes an error event in the provider's stream format.
        ctx.replace_body = Some(resp.status.as_u16());
        return Ok(());
    }
    ctx.sse = sse;
    if ctx.sse {
        resp.insert_header(CACHE_CONTROL, HeaderValue::from_static("no-cache"))?;
        resp.insert_header("x-accel-buffering", HeaderValue::from_static("no"))?;
        if ctx.strip_usage {
            // Removing an event changes the length: let Pingora frame the stream itself.
            resp.remove_header(&CONTENT_LENGTH);
        }
    }
    let provider = ctx.pool().map(|p| p.provider);
    let max_event = ctx.snap.as_ref().map_or(1 << 20, |s| s.limits.max_sse_event_bytes);
    let encoding = resp.headers.get(http::header::CONTENT_ENCODING).map(|v| v.as_bytes());
    let gzip = match encoding {
        None => false,
        Some(e) if e.eq_ignore_ascii_case(b"identity") => false,
        Some(e) if e.eq_ignore_ascii_case(b"gzip") || e.eq_ignore_ascii_case(b"x-gzip") => true,
        Some(_) => {
            // br, zstd, deflate...: passed on as sent, its usage unknown; counted.
            if let Some(core) = ctx.core() {
                core.metrics.unmetered.with_label_values(&["encoding"]).inc();
            }
            ctx.meter = None;
            ctx.held = None;
            return Ok(());
        }
    };
    if gzip && ctx.strip_usage {
        // The usage chunk cannot be cut out of a compressed stream: the client gets it.
        ctx.strip_usage = false;
    }
    if let Some(provider) = provider {
        let meter = Meter::new(provider, ctx.sse, ctx.strip_usage && ctx.sse, max_event);
        ctx.meter = Some(if gzip { meter.gunzip() } else { meter });
    }
    // Hold a successful stream's preamble while another account could still take over.
    let retry_left = ctx.primary().is_some_and(|p| ctx.attempts < p.retry.attempts);
    let stream_ok = ctx.sse && resp.status.is_success();
    ctx.held = (stream_ok && retry_left).then(Vec::new);
    let first_token = ctx.pool().and_then(|p| p.timeouts.first_token);
    if let (Some(limit), Some(link), true) = (first_token, &ctx.link, stream_ok) {
        link.await_first_token(limit);
    }
    Ok(())
}

/// One body chunk on its way to the client.
pub fn response_body(body: &mut Option<Bytes>, end: bool, ctx: &mut Ctx) -> Result<()> {
    if let Some(status) = ctx.replace_body {
        *body = end.then(|| {
            let p = ctx.pool().map(|p| p.provider);
            let message = format!("the upstream answered {status} after a retry");
            Bytes::from(p.map(|p| p.sse_error(status, &message)).unwrap_or_default())
        });
        return Ok(());
    }
    let Some(meter) = ctx.meter.as_mut() else { return Ok(()) };
    meter.feed(body);
    if end {
        if let Some(rest) = meter.take_pending() {
            append(body, rest);
        }
    }
    let (content, error) = (meter.saw_content, meter.error_before_content);
    if content {
        if let Some(link) = &ctx.link {
            link.content_arrived();
        }
    }
    let Some(held) = ctx.held.as_mut() else {
        if content {
            ctx.head_sent_no_body = false;
        }
        return Ok(());
    };
    if error {
        let kind = ctx.meter.as_ref().and_then(Meter::in_band_error);
        if attempt::on_in_band_error(ctx, kind.as_deref()) {
            ctx.held = None;
            ctx.meter = None;
            *body = None;
            return Err(Error::explain(ErrorType::HTTPStatus(503), "error event before content").into_up());
        }
    } else if !content && !end {
        let size: usize = held.iter().map(Bytes::len).sum::<usize>() + body.as_ref().map_or(0, Bytes::len);
        if size <= MAX_HELD {
            if let Some(b) = body.take().filter(|b| !b.is_empty()) {
                held.push(b);
            }
            *body = Some(Bytes::new());
            return Ok(());
        }
        // A preamble this long is not a preamble: release it, and with it the chance to retry
        // this stream elsewhere after an error event.
        let pool = ctx.pool().map_or("-", |p| &*p.name);
        tracing::info!(target: "llm_sidecar::decision", pool, held = size, "stream preamble over 256 KiB: passed on, no in-band failover");
    }
    // Content (or the end, or an error we pass on): release what was held, in order.
    ctx.head_sent_no_body = false;
    if let Some(mut held) = ctx.held.take().filter(|h| !h.is_empty()) {
        if let Some(b) = body.take() {
            held.push(b);
        }
        *body = Some(held.concat().into());
    }
    Ok(())
}

fn append(body: &mut Option<Bytes>, rest: Bytes) {
    *body = Some(match body.take() {
        Some(b) if !b.is_empty() => [b, rest].concat().into(),
        _ => rest,
    });
}
