//! A front door's way back: the target's answer in the client's dialect. A stream is translated
//! event by event as it arrives; a JSON answer is gathered (bounded) and translated at its end;
//! an error is re-told in the client's shape (an upstream 401/403 becomes our 502: the client
//! never sees an upstream's auth error as its own). Metering has already read the upstream's
//! bytes; this only changes what the client gets. A target speaking the client's dialect passes.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use pingora::http::ResponseHeader;

use crate::provider::{Dialect, ProviderKind};
use crate::translate::{self, ReplyMeta, StreamMeta, StreamTranslator};

/// A JSON answer larger than this is not translated (the client gets an error in its shape).
/// `x-llm-sidecar-degraded` and the log row's note: CLI-only fields were dropped.
pub const DEGRADED: &str = "cli-fields-dropped";

const MAX_JSON: usize = 8 * 1024 * 1024;

/// How the current attempt's answer goes back.
#[derive(Default)]
pub enum Reply {
    /// As sent (same dialect, or not a front door).
    #[default]
    Pass,
    /// A stream, translated event by event.
    Stream(Box<StreamTranslator>),
    /// A JSON answer, gathered until its end; the session it belongs to (claude-cli) is added to
    /// an OpenAI body as `session_id`.
    Json {
        from: Dialect,
        buf: Vec<u8>,
        id: String,
        session: Option<String>,
    },
    /// An error answer (status after mapping), gathered until its end.
    Error { from: Dialect, status: u16, buf: Vec<u8> },
    /// Cannot be translated (compressed): the client gets this error at the end.
    Broken(String),
}

impl Reply {
    /// The client's body is written at the answer's end, in one piece (so its length can go in
    /// the head, which waits for it).
    pub fn whole(&self) -> bool {
        matches!(self, Reply::Json { .. } | Reply::Error { .. } | Reply::Broken(_))
    }
}

/// What the way back needs of the door's state.
pub struct ReplyParts<'a> {
    /// The client's dialect.
    pub client: Dialect,
    /// The model the client asked for (answers carry it).
    pub client_model: &'a str,
    /// The model the current target was asked for (`x-llm-sidecar-model`).
    pub target_model: &'a str,
    /// The target speaks the client's dialect: its answer passes as it is.
    pub same: bool,
    /// What the client sent that the target did not get (`x-llm-sidecar-dropped`).
    pub dropped: &'a [&'static str],
    /// The client's CLI fields were dropped (`x-llm-sidecar-degraded`).
    pub degraded: bool,
    /// An OpenAI client asked for the usage chunk.
    pub include_usage: bool,
    /// How the current answer goes back.
    pub reply: &'a mut Reply,
}

/// The head of the target's answer: choose how it goes back and set the headers for it; whether
/// the answer is written whole at its end ([`Reply::whole`]).
pub fn head(
    parts: ReplyParts<'_>,
    from: Dialect,
    resp: &mut ResponseHeader,
    max_event: usize,
    request_id: &str,
) -> pingora::Result<bool> {
    resp.insert_header("x-llm-sidecar-model", header_value(parts.target_model))?;
    if !parts.dropped.is_empty() {
        resp.insert_header("x-llm-sidecar-dropped", header_value(&parts.dropped.join(",")))?;
    }
    if parts.degraded {
        resp.insert_header("x-llm-sidecar-degraded", DEGRADED)?;
    }
    if parts.same {
        *parts.reply = Reply::Pass;
        // The client never sees an upstream's authentication failure as its own.
        if matches!(resp.status.as_u16(), 401 | 403) {
            resp.set_status(502)?;
        }
        return Ok(false);
    }
    let status = resp.status.as_u16();
    let sse = resp
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let reply = choose(&parts, from, resp, max_event, request_id)?;
    let whole = reply.whole();
    *parts.reply = reply;
    resp.remove_header(&CONTENT_LENGTH);
    resp.remove_header(&CONTENT_ENCODING);
    // The translated body's length is not known yet: chunked, so the connection stays open
    // (neither header would mean "until close" on HTTP/1.1; HTTP/2 drops this one). A whole
    // answer's head is held until its end and goes with the length instead (`replay::Link::answer_whole`).
    resp.insert_header(TRANSFER_ENCODING, "chunked")?;
    let ctype = if sse && status < 400 {
        "text/event-stream"
    } else {
        "application/json"
    };
    resp.insert_header(CONTENT_TYPE, ctype)?;
    Ok(whole)
}

/// How a translated answer goes back, from its head (status set for errors).
fn choose(
    parts: &ReplyParts<'_>,
    from: Dialect,
    resp: &mut ResponseHeader,
    max_event: usize,
    request_id: &str,
) -> pingora::Result<Reply> {
    let status = resp.status.as_u16();
    let header = |name| resp.headers.get(name).map(HeaderValue::as_bytes);
    let sse = header(CONTENT_TYPE).is_some_and(|v| v.starts_with(b"text/event-stream"));
    let encoded = header(CONTENT_ENCODING).is_some_and(|v| !v.eq_ignore_ascii_case(b"identity"));
    let session = header(http::header::HeaderName::from_static("x-session-id"))
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(String::from);
    let id = match parts.client {
        Dialect::OpenAi => format!("chatcmpl-{request_id}"),
        _ => format!("msg_{request_id}"),
    };
    Ok(if encoded {
        resp.set_status(502)?;
        Reply::Broken(
            "the upstream compressed its answer despite accept-encoding: identity; it cannot be translated".into(),
        )
    } else if status >= 400 {
        // The client never sees an upstream's authentication failure as its own.
        let mapped = if matches!(status, 401 | 403) { 502 } else { status };
        resp.set_status(mapped)?;
        Reply::Error {
            from,
            status: mapped,
            buf: Vec::new(),
        }
    } else if sse {
        let meta = StreamMeta {
            id,
            created: now_secs(),
            model: parts.client_model.to_string(),
            include_usage: parts.include_usage,
        };
        Reply::Stream(Box::new(
            StreamTranslator::new(from, parts.client, meta).with_event_limit(max_event),
        ))
    } else {
        Reply::Json {
            from,
            buf: Vec::new(),
            id,
            session,
        }
    })
}

/// One chunk of the target's answer (already metered) becomes what the client gets.
pub fn body(parts: ReplyParts<'_>, body: &mut Option<Bytes>, end: bool) {
    let client = parts.client;
    match parts.reply {
        Reply::Pass => {}
        Reply::Stream(t) => {
            let mut out = Vec::new();
            if let Some(chunk) = body.as_deref() {
                t.feed(chunk, &mut out);
            }
            if end {
                t.finish(&mut out);
            }
            *body = Some(Bytes::from(out));
        }
        Reply::Json { from, buf, id, session } => {
            gather(buf, body);
            if end {
                let meta = ReplyMeta {
                    id: std::mem::take(id),
                    created: now_secs(),
                    model: parts.client_model.to_string(),
                };
                let out = translate::decode_response(*from, buf)
                    .map(|reply| translate::encode_response(client, &reply, &meta))
                    .map(|out| with_session(out, client, session.as_deref()))
                    .unwrap_or_else(|e| {
                        error_body(client, 502, &format!("the upstream's answer could not be read: {e}"))
                    });
                *body = Some(Bytes::from(out));
            }
        }
        Reply::Error { from, status, buf } => {
            gather(buf, body);
            if end {
                let info = translate::decode_error(*from, *status, buf);
                *body = Some(Bytes::from(error_body(client, *status, &info.message)));
            }
        }
        Reply::Broken(message) => {
            *body = end.then(|| Bytes::from(error_body(client, 502, message)));
        }
    }
}

/// The upstream failed mid-answer: what ends a translated stream for the client (an error
/// event in its dialect), once.
pub fn tail(reply: &mut Reply) -> Option<Bytes> {
    let Reply::Stream(t) = std::mem::take(reply) else {
        return None;
    };
    let mut t = t;
    let mut out = Vec::new();
    t.finish(&mut out);
    (!out.is_empty()).then(|| Bytes::from(out))
}

/// An OpenAI body with `session_id` (the claude-cli session the answer belongs to).
fn with_session(out: Vec<u8>, client: Dialect, session: Option<&str>) -> Vec<u8> {
    let (Dialect::OpenAi, Some(id)) = (client, session) else {
        return out;
    };
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&out) else {
        return out;
    };
    match v.as_object_mut() {
        Some(map) => {
            map.insert("session_id".into(), serde_json::Value::String(id.into()));
            serde_json::to_vec(&v).unwrap_or(out)
        }
        None => out,
    }
}

/// Keep the chunk (up to `MAX_JSON`) and send nothing yet.
fn gather(buf: &mut Vec<u8>, body: &mut Option<Bytes>) {
    if let Some(chunk) = body.take() {
        if buf.len() + chunk.len() <= MAX_JSON {
            buf.extend_from_slice(&chunk);
        } else {
            buf.clear();
            buf.extend_from_slice(b"-");
        }
    }
    *body = Some(Bytes::new());
}

fn error_body(client: Dialect, status: u16, message: &str) -> Vec<u8> {
    let provider = match client {
        Dialect::OpenAi => ProviderKind::Openai,
        Dialect::Anthropic => ProviderKind::Anthropic,
        Dialect::Gemini => ProviderKind::Gemini,
    };
    provider.get().error_body(status, message)
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(&crate::text::sanitize(text)).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn now_secs() -> u64 {
    u64::try_from(crate::clock::now_ms() / 1000).unwrap_or(0)
}
