//! The request body, read in full during admission: refused past `limits.max_body_bytes`
//! (declared or counted), when all requests together would hold more than
//! `limits.max_buffered_bytes`, when a read waits longer than the pool's idle timeout or the whole
//! body takes longer than `server.body_timeout`; a malformed body or a client that leaves is the
//! client's fault, not ours.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header;
use pingora::proxy::Session;
use pingora::Result;

use super::respond::{ErrorKind, Refusal};
use crate::config::Snapshot;
use crate::sidecar::{BufferLease, Sidecar};

/// Read the whole body; its share of the global budget goes to `lease`.
pub(super) async fn read(
    core: &Arc<Sidecar>,
    session: &mut Session,
    lease: &mut Option<BufferLease>,
    snap: &Snapshot,
    idle: Duration,
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
        return Ok(Err(too_large(max)));
    }
    let cap = snap.limits.max_buffered_bytes;
    let Some(taken) = core.lease(declared.unwrap_or(0), cap) else {
        return Ok(Err(overloaded(core)));
    };
    let lease = lease.insert(taken);
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
    let chunks = read_chunks(session, lease, core, declared, max, cap);
    let body = match tokio::time::timeout(whole, chunks).await {
        Ok(Ok(body)) => body,
        Ok(Err(refused)) => return Ok(Err(refused)),
        Err(_) => {
            let msg = format!(
                "the request body did not arrive within {}",
                humantime::format_duration(whole)
            );
            return Ok(Err(Refusal::new(ErrorKind::ClientTimeout, msg)));
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
    lease: &mut BufferLease,
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
            return Err(too_large(max));
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

fn too_large(max: usize) -> Refusal {
    Refusal::new(
        ErrorKind::BodyTooLarge,
        format!("request body is larger than {max} bytes"),
    )
}

/// What a failed body read was: the client went quiet, left, or sent a malformed body.
fn client_fault(e: &pingora::Error) -> Refusal {
    use pingora::ErrorType as T;
    match e.etype() {
        T::ReadTimedout => Refusal::new(ErrorKind::ClientTimeout, "timed out reading the request body"),
        T::ConnectionClosed | T::ReadError | T::WriteError => Refusal::new(
            ErrorKind::ClientClosed,
            "the client closed the connection during the upload",
        ),
        _ => Refusal::new(
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
        retry_after: Some(1),
        ..Refusal::new(ErrorKind::Overloaded, ErrorKind::Overloaded.describe())
    }
}

/// LLM APIs take JSON bodies; only uploads (files, audio, batches as JSON lines) are exempt.
/// A missing or form content type is still validated: curl's `-d` sends form encoding.
pub(super) fn is_json(req: &pingora::http::RequestHeader) -> bool {
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
