//! The downstream session as the proxy phase sees it. Pingora 0.9.1 replays at most 64 KiB of a
//! request body on a retry and never forwards a body that a filter already consumed; this wrapper
//! hands Pingora our buffered body as the "retry buffer" on every attempt, whatever its size, and
//! enforces the first-byte, idle and total deadlines Pingora has no notion of. Every other call is
//! delegated to the real session, which [`Link::restore`] puts back before Pingora reuses the
//! connection.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use http::HeaderMap;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::custom::server::Session as CustomSession;
use pingora::protocols::http::custom::CustomMessageWrite;
use pingora::protocols::http::{HttpTask, ServerSession};
use pingora::protocols::l4::socket::SocketAddr;
use pingora::protocols::Digest;
use pingora::{Error, ErrorType, Result};

use crate::config::Timeouts;

const WAITING_FOR_HEAD: u64 = u64::MAX;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2)
}

/// Which of our deadlines ended the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Expired {
    FirstByte = 1,
    /// A stream's head arrived, but no content within `first_token`.
    FirstToken = 2,
    Idle = 3,
    Total = 4,
}

impl Expired {
    const ALL: [Expired; 4] = [Expired::FirstByte, Expired::FirstToken, Expired::Idle, Expired::Total];

    /// What the request is failed with.
    fn explain(self) -> &'static str {
        match self {
            Expired::FirstByte => "no response head within the first_byte timeout",
            Expired::FirstToken => "no content within the first_token timeout",
            Expired::Idle => "stream idle for longer than the idle timeout",
            Expired::Total => "request exceeded the total timeout",
        }
    }
}

/// What the proxy hooks and the wrapped session share: the clock, and the slot through which
/// the real session comes back.
pub struct Link {
    origin: Instant,
    /// The request's total limit, in nanoseconds after `origin` (a front door sets its target's).
    total: AtomicU64,
    /// Nanoseconds after `origin`.
    attempt_start: AtomicU64,
    /// Nanoseconds after `origin` of the last upstream data, or `WAITING_FOR_HEAD`.
    last_data: AtomicU64,
    /// 0, or the [`Expired`] that fired (`as u8`).
    expired: AtomicU8,
    /// The current attempt's stream must show content by this (nanoseconds after `origin`;
    /// `u64::MAX`: no such deadline).
    first_token_at: AtomicU64,
    /// The current attempt's first-byte and idle limits, in nanoseconds.
    first_byte: AtomicU64,
    idle: AtomicU64,
    /// Nanoseconds spent in earlier attempts (connecting, waiting, receiving).
    upstream_done: AtomicU64,
    /// An attempt has started.
    attempted: std::sync::atomic::AtomicBool,
    returned: Mutex<Option<ServerSession>>,
    /// The body every attempt sends (a front door replaces it per target).
    body: Mutex<Bytes>,
    /// The answer goes back in one piece: its head waits for the body's end and then carries
    /// the body's length (one write instead of a chunked head, chunk and terminator).
    whole: std::sync::atomic::AtomicBool,
}

impl Link {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Time spent in the current attempt so far: to its last data, or to now while waiting.
    fn current_attempt(&self, now: u64) -> u64 {
        if !self.attempted.load(Ordering::Relaxed) {
            return 0;
        }
        let start = self.attempt_start.load(Ordering::Relaxed);
        let end = match self.last_data.load(Ordering::Relaxed) {
            WAITING_FOR_HEAD => now,
            last => last,
        };
        end.saturating_sub(start)
    }

    /// Time the upstreams took for this request, all attempts together.
    pub fn upstream_time(&self) -> Duration {
        let now = self.nanos(Instant::now());
        Duration::from_nanos(self.upstream_done.load(Ordering::Relaxed) + self.current_attempt(now))
    }

    /// A new attempt starts waiting for a response head, under its pool's first-byte and idle
    /// limits (a fallback pool has its own); the total limit stays the request's.
    pub fn attempt_started(&self, timeouts: &Timeouts) {
        self.first_byte.store(nanos(timeouts.first_byte), Ordering::Relaxed);
        self.idle.store(nanos(timeouts.idle), Ordering::Relaxed);
        let now = self.nanos(Instant::now());
        self.upstream_done
            .fetch_add(self.current_attempt(now), Ordering::Relaxed);
        self.attempted.store(true, Ordering::Relaxed);
        self.attempt_start.store(now, Ordering::Relaxed);
        self.last_data.store(WAITING_FOR_HEAD, Ordering::Relaxed);
        self.first_token_at.store(u64::MAX, Ordering::Relaxed);
        self.expired.store(0, Ordering::Relaxed);
        self.whole.store(false, Ordering::Relaxed);
    }

    /// The answer about to go back is written whole at its end (a front door's translated JSON):
    /// its head is held until then and sent with the body's length.
    pub fn answer_whole(&self) {
        self.whole.store(true, Ordering::Relaxed);
    }

    /// The attempt's head is a stream: its first content must come within `limit` from now.
    pub fn await_first_token(&self, limit: Duration) {
        let at = self.nanos(Instant::now()).saturating_add(nanos(limit));
        self.first_token_at.store(at, Ordering::Relaxed);
    }

    /// The attempt's stream showed content: the first-token deadline is met.
    pub fn content_arrived(&self) {
        self.first_token_at.store(u64::MAX, Ordering::Relaxed);
    }

    /// The request's total time limit (a front door learns it from its first target's pool).
    pub fn set_total(&self, total: Duration) {
        self.total.store(nanos(total), Ordering::Relaxed);
    }

    /// The body the next attempt sends.
    pub fn set_body(&self, body: Bytes) {
        if let Ok(mut b) = self.body.lock() {
            *b = body;
        }
    }

    /// The body attempts send (a reference count, not a copy).
    pub fn body(&self) -> Bytes {
        self.body.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Upstream data (the head or a body chunk) arrived.
    pub fn data_arrived(&self) {
        self.last_data.store(self.nanos(Instant::now()), Ordering::Relaxed);
    }

    /// The deadline that fired, if one did.
    pub fn expired(&self) -> Option<Expired> {
        let code = self.expired.load(Ordering::Relaxed);
        Expired::ALL.into_iter().find(|e| *e as u8 == code)
    }

    /// The earliest deadline now in force and which one it is.
    fn deadline(&self) -> (Instant, Expired) {
        let total = (
            self.origin + Duration::from_nanos(self.total.load(Ordering::Relaxed)),
            Expired::Total,
        );
        let last = self.last_data.load(Ordering::Relaxed);
        let phase = if last == WAITING_FOR_HEAD {
            let start = Duration::from_nanos(self.attempt_start.load(Ordering::Relaxed));
            let limit = Duration::from_nanos(self.first_byte.load(Ordering::Relaxed));
            (self.origin + start + limit, Expired::FirstByte)
        } else {
            let limit = Duration::from_nanos(self.idle.load(Ordering::Relaxed));
            let idle = (self.origin + Duration::from_nanos(last) + limit, Expired::Idle);
            match self.first_token_at.load(Ordering::Relaxed) {
                u64::MAX => idle,
                at => {
                    let token = (self.origin + Duration::from_nanos(at), Expired::FirstToken);
                    if token.0 < idle.0 {
                        token
                    } else {
                        idle
                    }
                }
            }
        };
        if phase.0 < total.0 {
            phase
        } else {
            total
        }
    }

    /// Put the real session back into `slot` (called from `logging`, before Pingora decides on
    /// keep-alive). A no-op when the slot does not hold a wrapper.
    pub fn restore(&self, slot: &mut ServerSession) {
        if !slot.is_custom() {
            return;
        }
        let wrapper = std::mem::replace(slot, ServerSession::new_custom(Box::new(())));
        drop(wrapper); // Replay::drop hands the real session to `returned`
        let real = self
            .returned
            .lock()
            .map(|mut r| r.take())
            .unwrap_or_else(|p| p.into_inner().take());
        if let Some(real) = real {
            *slot = real;
        }
    }
}

/// Wrap `slot`'s session so the proxy phase replays `body` and observes the deadlines.
pub fn wrap(slot: &mut ServerSession, body: Bytes, timeouts: Timeouts, origin: Instant) -> Arc<Link> {
    let link = Arc::new(Link {
        origin,
        total: AtomicU64::new(nanos(timeouts.total)),
        attempt_start: AtomicU64::new(0),
        last_data: AtomicU64::new(WAITING_FOR_HEAD),
        expired: AtomicU8::new(0),
        first_token_at: AtomicU64::new(u64::MAX),
        first_byte: AtomicU64::new(nanos(timeouts.first_byte)),
        idle: AtomicU64::new(nanos(timeouts.idle)),
        upstream_done: AtomicU64::new(0),
        attempted: std::sync::atomic::AtomicBool::new(false),
        returned: Mutex::new(None),
        body: Mutex::new(body),
        whole: std::sync::atomic::AtomicBool::new(false),
    });
    let inner = std::mem::replace(slot, ServerSession::new_custom(Box::new(())));
    *slot = ServerSession::new_custom(Box::new(Replay {
        inner,
        link: Arc::clone(&link),
        held: None,
        held_body: Vec::new(),
    }));
    link
}

struct Replay {
    inner: ServerSession,
    link: Arc<Link>,
    /// A whole answer's head, waiting for its body.
    held: Option<Box<ResponseHeader>>,
    /// That answer's body so far.
    held_body: Vec<u8>,
}

impl Replay {
    /// `tasks` with a whole answer's head held back until its body ends, then sent with the
    /// body's length in place of chunked encoding. Anything else (a failure, a trailer) lets the
    /// held head go first, as it was.
    fn hold(&mut self, tasks: Vec<HttpTask>) -> Vec<HttpTask> {
        let mut out = Vec::with_capacity(tasks.len() + 1);
        for task in tasks {
            match task {
                HttpTask::Header(head, false) if self.held.is_none() && self.link.whole.load(Ordering::Relaxed) => {
                    self.held = Some(head);
                }
                HttpTask::Body(data, end) if self.held.is_some() => {
                    match data {
                        // The usual case: the whole body in its last task, taken without a copy.
                        Some(d) if end && self.held_body.is_empty() => {
                            self.release(&mut out, d);
                            continue;
                        }
                        Some(d) => self.held_body.extend_from_slice(&d),
                        None => {}
                    }
                    if end {
                        let body = self.take_body();
                        self.release(&mut out, body);
                    }
                }
                HttpTask::Done if self.held.is_some() => {
                    let body = self.take_body();
                    self.release(&mut out, body);
                    out.push(HttpTask::Done);
                }
                other => {
                    if let Some(head) = self.held.take() {
                        out.push(HttpTask::Header(head, false));
                        let body = self.take_body();
                        if !body.is_empty() {
                            out.push(HttpTask::Body(Some(body), false));
                        }
                    }
                    out.push(other);
                }
            }
        }
        out
    }

    fn take_body(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.held_body))
    }

    /// The held head, now with the body's length, and the body.
    fn release(&mut self, out: &mut Vec<HttpTask>, body: Bytes) {
        let Some(mut head) = self.held.take() else { return };
        head.remove_header(&http::header::TRANSFER_ENCODING);
        // A length is always a valid header value.
        let _ = head.insert_header(http::header::CONTENT_LENGTH, body.len());
        out.push(HttpTask::Header(head, false));
        out.push(HttpTask::Body(Some(body), true));
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        let inner = std::mem::replace(&mut self.inner, ServerSession::new_custom(Box::new(())));
        if let Ok(mut slot) = self.link.returned.lock() {
            *slot = Some(inner);
        }
    }
}

type MessageReader = Box<dyn Stream<Item = Result<Bytes>> + Unpin + Send + Sync + 'static>;

#[async_trait]
impl CustomSession for Replay {
    fn req_header(&self) -> &RequestHeader {
        self.inner.req_header()
    }
    fn req_header_mut(&mut self) -> &mut RequestHeader {
        self.inner.req_header_mut()
    }
    async fn read_body_bytes(&mut self) -> Result<Option<Bytes>> {
        self.inner.read_request_body().await
    }
    async fn drain_request_body(&mut self) -> Result<()> {
        self.inner.drain_request_body().await
    }
    async fn write_response_header(&mut self, resp: Box<ResponseHeader>, _end: bool) -> Result<()> {
        self.inner.write_response_header(resp).await
    }
    async fn write_response_header_ref(&mut self, resp: &ResponseHeader, _end: bool) -> Result<()> {
        self.inner.write_response_header_ref(resp).await
    }
    async fn write_body(&mut self, data: Bytes, end: bool) -> Result<()> {
        self.inner.write_response_body(data, end).await
    }
    async fn write_trailers(&mut self, trailers: HeaderMap) -> Result<()> {
        self.inner.write_response_trailers(trailers).await
    }
    async fn response_duplex_vec(&mut self, tasks: Vec<HttpTask>) -> Result<bool> {
        if self.held.is_none() && !self.link.whole.load(Ordering::Relaxed) {
            return self.inner.response_duplex_vec(tasks).await;
        }
        let tasks = self.hold(tasks);
        if tasks.is_empty() {
            return Ok(false); // the head waits for the body
        }
        self.inner.response_duplex_vec(tasks).await
    }
    fn proxy_tasks_enabled(&self) -> bool {
        self.inner.supports_proxy_task_api()
    }
    fn set_proxy_tasks_enabled(&mut self, enabled: bool) {
        self.inner.set_proxy_tasks_enabled(enabled)
    }
    fn send_proxy_task(&mut self, task: HttpTask) {
        self.inner.send_downstream_proxy_task(task)
    }
    fn has_pending_proxy_tasks(&self) -> bool {
        self.inner.has_pending_downstream_proxy_tasks()
    }
    async fn write_proxy_tasks(&mut self) -> Result<bool> {
        self.inner.write_downstream_proxy_tasks().await
    }
    fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.set_read_timeout(timeout)
    }
    fn get_read_timeout(&self) -> Option<Duration> {
        self.inner.get_read_timeout()
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.set_write_timeout(timeout)
    }
    fn get_write_timeout(&self) -> Option<Duration> {
        self.inner.get_write_timeout()
    }
    fn set_total_drain_timeout(&mut self, timeout: Option<Duration>) {
        self.inner.set_total_drain_timeout(timeout)
    }
    fn get_total_drain_timeout(&self) -> Option<Duration> {
        self.inner.get_total_drain_timeout()
    }
    fn request_summary(&self) -> String {
        self.inner.request_summary()
    }
    fn response_written(&self) -> Option<&ResponseHeader> {
        self.inner.response_written()
    }
    async fn shutdown(&mut self, _code: u32, _ctx: &str) {
        self.inner.shutdown().await
    }
    fn is_body_done(&mut self) -> bool {
        self.inner.is_body_done()
    }
    async fn finish(&mut self) -> Result<()> {
        self.inner.finish_body().await
    }
    /// Judged on the buffered body: a chunked or HTTP/2 request whose body turned out empty
    /// must go upstream as an empty body, not as one Pingora waits to forward.
    fn is_body_empty(&mut self) -> bool {
        self.link.body().is_empty()
    }

    /// Pingora polls this while it waits for the upstream, in both the h1 and h2 paths; it is
    /// where our deadlines are enforced.
    async fn read_body_or_idle(&mut self, no_body_expected: bool) -> Result<Option<Bytes>> {
        loop {
            let (deadline, which) = self.link.deadline();
            tokio::select! {
                r = self.inner.read_body_or_idle(no_body_expected) => return r,
                _ = tokio::time::sleep_until(deadline.into()) => {
                    // The deadline may have moved while we slept (data arrived).
                    if self.link.deadline().0 <= Instant::now() {
                        self.link.expired.store(which as u8, Ordering::Relaxed);
                        return Err(Error::explain(ErrorType::ReadTimedout, which.explain()));
                    }
                }
            }
        }
    }
    fn body_bytes_sent(&self) -> usize {
        self.inner.body_bytes_sent()
    }
    fn body_bytes_read(&self) -> usize {
        self.inner.body_bytes_read()
    }
    fn digest(&self) -> Option<&Digest> {
        self.inner.digest()
    }
    fn digest_mut(&mut self) -> Option<&mut Digest> {
        self.inner.digest_mut()
    }
    fn client_addr(&self) -> Option<&SocketAddr> {
        self.inner.client_addr()
    }
    fn server_addr(&self) -> Option<&SocketAddr> {
        self.inner.server_addr()
    }
    fn pseudo_raw_h1_request_header(&self) -> Bytes {
        self.inner.to_h1_raw()
    }
    fn enable_retry_buffering(&mut self) {}
    fn retry_buffer_truncated(&self) -> bool {
        false
    }
    /// The whole buffered body, on every attempt. `None` for an empty body, which
    /// `is_body_empty` reports, so Pingora ends the upstream request by itself.
    fn get_retry_buffer(&self) -> Option<Bytes> {
        Some(self.link.body()).filter(|b| !b.is_empty())
    }
    async fn finish_custom(&mut self) -> Result<()> {
        Ok(())
    }
    fn take_custom_message_reader(&mut self) -> Option<MessageReader> {
        None
    }
    fn restore_custom_message_reader(&mut self, _reader: MessageReader) -> Result<()> {
        Ok(())
    }
    fn take_custom_message_writer(&mut self) -> Option<Box<dyn CustomMessageWrite>> {
        None
    }
    fn restore_custom_message_writer(&mut self, _writer: Box<dyn CustomMessageWrite>) -> Result<()> {
        Ok(())
    }
    fn is_upgrade_req(&self) -> bool {
        self.inner.is_upgrade_req()
    }
    fn was_upgraded(&self) -> bool {
        self.inner.was_upgraded()
    }
}
