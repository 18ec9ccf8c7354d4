//! The wrapper Pingora's proxy phase talks to in place of the downstream session: it replays the
//! buffered request body on every attempt, watches the [`Link`]'s deadlines while waiting for
//! upstream data, and holds a whole answer's head ([`Held`]); everything else goes to the real
//! session, which it hands back through the link when dropped.

use std::sync::atomic::Ordering;
use std::sync::Arc;
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

use super::held::Held;
use super::Link;

pub(super) struct Replay {
    inner: ServerSession,
    link: Arc<Link>,
    /// A whole answer's head, waiting for its body.
    held: Held,
}

impl Replay {
    pub(super) fn new(inner: ServerSession, link: Arc<Link>) -> Replay {
        Replay {
            inner,
            link,
            held: Held::default(),
        }
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
        let whole = self.link.whole.load(Ordering::Relaxed);
        if !self.held.holding() && !whole {
            return self.inner.response_duplex_vec(tasks).await;
        }
        let tasks = self.held.hold(whole, tasks);
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
