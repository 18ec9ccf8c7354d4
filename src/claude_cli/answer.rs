//! The CLI service's own answers: errors in Anthropic's shape, the head of a stream, a JSON body,
//! and the end of a run (its tail, its body or its error).

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;

use super::{error_body, Finished, Outcome};

/// An answer of the service's own (before any SSE went out).
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) kind: Option<&'static str>,
    pub(super) message: String,
    pub(super) retry_after: Option<u64>,
}

impl Answer {
    pub(super) fn new(status: u16, kind: Option<&'static str>, message: impl Into<String>) -> Self {
        Answer {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// The end of the answer: the stream's tail, the JSON body, or the error in Anthropic's shape.
pub(super) async fn finish(
    session: &mut ServerSession,
    id: &str,
    stream: bool,
    finished: Finished,
    head_sent: bool,
) -> Result<(), Answer> {
    if head_sent || (finished.started && stream) {
        let _ = session.write_response_body(Bytes::from(finished.tail), true).await;
        return Ok(());
    }
    match finished.outcome {
        Outcome::Success(_) if stream => {
            stream_head(session, id)
                .await
                .map_err(|_| Answer::new(502, None, "write"))?;
            let _ = session.write_response_body(Bytes::from(finished.tail), true).await;
            Ok(())
        }
        Outcome::Success(_) => {
            let body = finished.body.unwrap_or_default();
            let answer = Answer::new(200, None, String::new());
            let _ = reply(session, &answer, Some((Bytes::from(body), id))).await;
            Ok(())
        }
        Outcome::Failed { status, message, .. } => {
            let kind = (status >= 500).then_some("cli_error");
            Err(Answer::new(status, kind, message))
        }
        Outcome::RateLimited { reset, message, .. } => {
            let wait = reset
                .and_then(|r| r.duration_since(SystemTime::now()).ok())
                .map_or(60, |d| d.as_secs().max(1));
            Err(Answer {
                retry_after: Some(wait),
                ..Answer::new(429, Some("cli_rate_limited"), message)
            })
        }
    }
}

/// The head of a streamed answer, naming the session.
pub(super) async fn stream_head(session: &mut ServerSession, id: &str) -> pingora::Result<()> {
    let mut head = ResponseHeader::build(200, Some(4))?;
    head.insert_header(http::header::CONTENT_TYPE, "text/event-stream")?;
    head.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
    // Framed, so the proxy can pass it on chunked and keep its client's connection open.
    head.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    head.insert_header("x-session-id", id)?;
    session.write_response_header(Box::new(head)).await
}

/// A complete answer: `body` with the session's header, or the error in Anthropic's shape.
pub(super) async fn reply(
    session: &mut ServerSession,
    answer: &Answer,
    body: Option<(Bytes, &str)>,
) -> pingora::Result<()> {
    let (bytes, id) = match body {
        Some((b, id)) => (b, Some(id)),
        None => (Bytes::from(error_body(answer.status, &answer.message)), None),
    };
    let mut head = ResponseHeader::build(answer.status, Some(5))?;
    head.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    head.insert_header(http::header::CONTENT_LENGTH, bytes.len())?;
    if let Some(kind) = answer.kind {
        head.insert_header("x-llm-sidecar-error", kind)?;
    }
    if let Some(secs) = answer.retry_after {
        head.insert_header(http::header::RETRY_AFTER, secs)?;
    }
    if let Some(id) = id {
        head.insert_header("x-session-id", id)?;
    }
    session.write_response_header(Box::new(head)).await?;
    session.write_response_body(bytes, true).await
}

/// The request body, at most `max` bytes.
pub(super) async fn read_body(session: &mut ServerSession, max: usize) -> Result<Bytes, Answer> {
    let mut body = BytesMut::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > max {
                    return Err(Answer::new(413, None, "request body too large"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(_) => return Err(Answer::new(400, None, "could not read the request body")),
        }
    }
}
