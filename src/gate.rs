//! The app listener's gate: every client connection passes through it. It caps the connections
//! open at once (`server.max_connections`), puts deadlines where Pingora 0.9.1 has none (the whole
//! request head, the first bytes of a connection, the idle time between keep-alive requests) by
//! wrapping the connection's stream, and counts the requests Pingora refuses while parsing their
//! head, which reach no proxy hook.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID, UniqueIDType,
};
use pingora::proxy::{HttpProxy, ProxyHttp, Session};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::metrics::Rejected;
use crate::sidecar::Sidecar;

/// A proxy service behind the gate (the sidecar's, or any `ProxyHttp` an embedder builds).
pub struct Gate<SV> {
    proxy: Arc<HttpProxy<SV>>,
    core: Arc<Sidecar>,
    live: AtomicUsize,
}

impl<SV> Gate<SV> {
    /// Gate `proxy` with `core`'s `server.*` limits.
    pub fn new(proxy: HttpProxy<SV>, core: Arc<Sidecar>) -> Self {
        Gate {
            proxy: Arc::new(proxy),
            core,
            live: AtomicUsize::new(0),
        }
    }
}

/// Counts a connection as open until dropped.
struct Live<'a>(&'a AtomicUsize);

impl Drop for Live<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a client is told when the listener is full (best effort: it may be gone).
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 121\r\nretry-after: 1\r\nx-llm-sidecar-error: max_connections\r\nconnection: close\r\n\r\n\
{\"error\":{\"message\":\"the sidecar has server.max_connections connections open\",\"type\":\"server_error\",\"code\":\"overloaded\"}}";

/// What a client whose head took too long is told (best effort).
const TIMED_OUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: 132\r\n\
x-llm-sidecar-error: header_timeout\r\nconnection: close\r\n\r\n\
{\"error\":{\"message\":\"the request head did not arrive within server.header_timeout\",\"type\":\"invalid_request_error\",\"code\":\"timeout\"}}";

#[async_trait]
impl<SV> ServerApp for Gate<SV>
where
    SV: ProxyHttp + Send + Sync + 'static,
    SV::CTX: Send + Sync,
{
    async fn process_new(self: &Arc<Self>, mut stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let limits = self.core.snapshot().server;
        let live = Live(&self.live);
        if self.live.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            drop(live);
            let peer = peer_of(&*stream);
            let _ = tokio::time::timeout(Duration::from_millis(100), async {
                let _ = stream.write_all(FULL).await;
                let _ = stream.flush().await;
            })
            .await;
            Shutdown::shutdown(&mut *stream).await;
            self.core.rejected(Rejected::MaxConnections, peer.as_deref());
            return None;
        }
        let state = Arc::new(ConnState::new(limits.header_timeout, limits.keepalive_timeout));
        // The peer is formatted only for a rejection (rare), not for every connection.
        let digest = stream.get_socket_digest();
        let wrapped: Stream = Box::new(DeadlineStream::new(stream, Arc::clone(&state)));
        let _ = ServerApp::process_new(&self.proxy, wrapped, shutdown).await;
        if let Some(reason) = state.rejection() {
            let peer = digest.and_then(|d| d.peer_addr().map(|a| a.to_string()));
            self.core.rejected(reason, peer.as_deref());
        }
        drop(live);
        None
    }

    async fn cleanup(&self) {
        ServerApp::cleanup(&*self.proxy).await;
    }
}

fn peer_of(stream: &dyn pingora::protocols::IO) -> Option<String> {
    let digest = stream.get_socket_digest()?;
    digest.peer_addr().map(|a| a.to_string())
}

/// A request's head was parsed: no deadline until it is answered; pipelined requests are served
/// in order (Pingora drops them otherwise). Called from `early_request_filter`.
pub fn head_parsed(session: &mut Session) {
    session.downstream_session.set_pipelining_enabled(true);
    if let Some(state) = conn_state(session) {
        state.set_phase(Phase::Open, None);
    }
}

/// The request is answered: the connection waits for the next one, at most
/// `server.keepalive_timeout`. Called from `logging`, with the real session in place.
pub fn request_done(session: &Session) {
    if let Some(state) = conn_state(session) {
        state.set_phase(Phase::Idle, Some(state.keepalive));
    }
}

fn conn_state(session: &Session) -> Option<&ConnState> {
    let stream = session.downstream_session.stream()?;
    let ours = (**stream).as_any().downcast_ref::<DeadlineStream>()?;
    Some(&ours.state)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// Waiting for (the rest of) a request head: `header_timeout` from its first byte.
    Head = 0,
    /// A request is being handled: the proxy's own deadlines apply.
    Open = 1,
    /// Between requests: `keepalive_timeout`.
    Idle = 2,
}

/// One connection's deadline state, shared by its stream and the hooks.
#[derive(Debug)]
struct ConnState {
    origin: Instant,
    header: Duration,
    keepalive: Duration,
    phase: AtomicU8,
    /// Nanoseconds after `origin` at which the current phase's deadline falls.
    deadline: AtomicU64,
    /// Bytes of a head arrived in the current head phase.
    head_bytes: AtomicBool,
    /// The deadline fired (during a head).
    fired: AtomicBool,
    /// The status of a response written before any head was parsed (Pingora's own 400 / 405).
    early_status: AtomicU16,
}

impl ConnState {
    fn new(header: Duration, keepalive: Duration) -> Self {
        let s = ConnState {
            origin: Instant::now(),
            header,
            keepalive,
            phase: AtomicU8::new(Phase::Head as u8),
            deadline: AtomicU64::new(0),
            head_bytes: AtomicBool::new(false),
            fired: AtomicBool::new(false),
            early_status: AtomicU16::new(0),
        };
        s.set_phase(Phase::Head, Some(header));
        s
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Head,
            1 => Phase::Open,
            _ => Phase::Idle,
        }
    }

    /// Enter `phase`, with a deadline `within` from now.
    fn set_phase(&self, phase: Phase, within: Option<Duration>) {
        if let Some(d) = within {
            let at = self.origin.elapsed().saturating_add(d);
            self.deadline
                .store(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX), Ordering::Release);
        }
        if phase != Phase::Head {
            self.head_bytes.store(false, Ordering::Release);
            self.early_status.store(0, Ordering::Release);
        }
        self.phase.store(phase as u8, Ordering::Release);
    }

    fn deadline(&self) -> Instant {
        self.origin + Duration::from_nanos(self.deadline.load(Ordering::Acquire))
    }

    /// Why the connection ended in the middle of a head, if it did.
    fn rejection(&self) -> Option<Rejected> {
        if self.phase() != Phase::Head {
            return None;
        }
        match self.early_status.load(Ordering::Acquire) {
            400 => return Some(Rejected::Malformed),
            405 => return Some(Rejected::Connect),
            _ => {}
        }
        if self.fired.load(Ordering::Acquire) {
            return Some(Rejected::HeaderTimeout);
        }
        self.head_bytes.load(Ordering::Acquire).then_some(Rejected::Incomplete)
    }
}

/// The client's stream, with the connection's deadlines on reads.
#[derive(Debug)]
struct DeadlineStream {
    inner: Stream,
    state: Arc<ConnState>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineStream {
    fn new(inner: Stream, state: Arc<ConnState>) -> Self {
        let sleep = Box::pin(tokio::time::sleep_until(state.deadline().into()));
        DeadlineStream { inner, state, sleep }
    }

    /// Whether the current deadline has passed (registering a wake-up for it when not).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = self.state.deadline();
        if self.sleep.deadline() != deadline.into() {
            self.sleep.as_mut().reset(deadline.into());
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.state
                .fired
                .store(self.state.phase() == Phase::Head, Ordering::Release);
            return true;
        }
        false
    }
}

use std::future::Future;

impl AsyncRead for DeadlineStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let phase = self.state.phase();
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                match phase {
                    Phase::Idle => self.state.set_phase(Phase::Head, Some(self.state.header)),
                    Phase::Head => {}
                    Phase::Open => return Poll::Ready(Ok(())),
                }
                self.state.head_bytes.store(true, Ordering::Release);
                Poll::Ready(Ok(()))
            }
            Poll::Pending if phase != Phase::Open && self.expired(cx) => {
                if phase == Phase::Head && self.state.head_bytes.load(Ordering::Acquire) {
                    // Tell the client why (best effort, never waited for), then end the connection.
                    let _ = Pin::new(&mut self.inner).poll_write(cx, TIMED_OUT);
                    let _ = Pin::new(&mut self.inner).poll_flush(cx);
                }
                Poll::Ready(Ok(())) // end of stream: Pingora closes the connection
            }
            other => other,
        }
    }
}

impl AsyncWrite for DeadlineStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.state.phase() == Phase::Head && self.state.early_status.load(Ordering::Acquire) == 0 {
            // "HTTP/1.1 400 ...": Pingora answering a head it refused.
            let status = data.get(9..12).and_then(|s| std::str::from_utf8(s).ok()?.parse().ok());
            self.state.early_status.store(status.unwrap_or(1), Ordering::Release);
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for DeadlineStream {
    async fn shutdown(&mut self) {
        Shutdown::shutdown(&mut *self.inner).await
    }
}

impl UniqueID for DeadlineStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for DeadlineStream {}

impl GetTimingDigest for DeadlineStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for DeadlineStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for DeadlineStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }
}

#[async_trait]
impl Peek for DeadlineStream {
    /// Pingora peeks for the HTTP/2 preface (h2c) before anything else: under the head deadline,
    /// and a connection that turns out to be HTTP/2 leaves the gate's deadlines to the h2 layer.
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        let deadline = self.state.deadline();
        match tokio::time::timeout_at(deadline.into(), self.inner.try_peek(buf)).await {
            Ok(Ok(peeked)) => {
                if peeked && buf.starts_with(b"PRI * HTTP/2.0") {
                    self.state.set_phase(Phase::Open, None);
                } else if peeked {
                    self.state.head_bytes.store(true, Ordering::Release);
                }
                Ok(peeked)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                self.state.fired.store(true, Ordering::Release);
                let _ = tokio::time::timeout(Duration::from_millis(100), self.inner.write_all(TIMED_OUT)).await;
                Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "header timeout"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_answers_declare_their_length() {
        for answer in [FULL, TIMED_OUT] {
            let text = std::str::from_utf8(answer).expect("ascii");
            let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
            let declared: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|n| n.parse().ok())
                .expect("content-length");
            assert_eq!(declared, body.len(), "content-length of {head:?}");
            assert!(
                serde_json::from_str::<serde_json::Value>(body).is_ok(),
                "JSON body: {body}"
            );
        }
    }

    #[tokio::test]
    async fn phases_move_deadlines_and_classify_rejections() {
        let s = ConnState::new(Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(
            s.rejection(),
            None,
            "a connection that sent nothing and ended is not a rejection"
        );
        s.head_bytes.store(true, Ordering::Release);
        assert_eq!(s.rejection(), Some(Rejected::Incomplete), "bytes of a head, then gone");
        s.early_status.store(400, Ordering::Release);
        assert_eq!(s.rejection(), Some(Rejected::Malformed), "Pingora answered 400");
        s.set_phase(Phase::Open, None);
        assert_eq!(s.rejection(), None, "a parsed head is the proxy's to count");
        s.set_phase(Phase::Idle, Some(s.keepalive));
        let left = s.deadline().saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(59), "keep-alive deadline: {left:?}");
        assert_eq!(
            s.rejection(),
            None,
            "an idle keep-alive connection closing is no rejection"
        );
    }
}
