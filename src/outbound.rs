//! Requests the sidecar makes itself (active health checks, webhooks), on Pingora's own
//! connector: the same DNS, TLS and HTTP/2 handling as proxied requests, never on a request path.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

/// At most this much of a response body is kept.
const MAX_BODY: usize = 64 * 1024;

/// A client for the sidecar's own requests, with its own connection pool.
pub struct Outbound {
    connector: Connector,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            connector: Connector::new(None),
        }
    }
}

/// A response: status and (the start of) the body.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body, at most its first 64 KiB.
    pub body: Bytes,
}

/// A response being read as it arrives.
pub struct Streaming {
    /// The HTTP status.
    pub status: u16,
    session: pingora::protocols::http::client::HttpSession,
}

impl Streaming {
    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        self.session.read_response_body().await.map_err(|e| e.to_string())
    }
}

impl Outbound {
    /// Send `req` and return as soon as the response head arrives (within `timeout`).
    pub async fn open(
        &self,
        peer: &HttpPeer,
        req: RequestHeader,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Streaming, String> {
        within(timeout, self.start(peer, req, body)).await
    }

    /// Send `req` (with `body`) to `peer`; the whole exchange is bounded by `timeout`.
    pub async fn send(
        &self,
        peer: &HttpPeer,
        req: RequestHeader,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Reply, String> {
        within(timeout, self.exchange(peer, req, body)).await
    }

    /// Write the request and read the response head.
    async fn start(&self, peer: &HttpPeer, req: RequestHeader, body: Option<Bytes>) -> Result<Streaming, String> {
        let (mut session, _reused) = self.connector.get_http_session(peer).await.map_err(|e| e.to_string())?;
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(|e| e.to_string())?;
        if let Some(b) = body {
            session.write_request_body(b, true).await.map_err(|e| e.to_string())?;
        }
        session.finish_request_body().await.map_err(|e| e.to_string())?;
        session.read_response_header().await.map_err(|e| e.to_string())?;
        let status = session.response_header().map_or(0, |h| h.status.as_u16());
        Ok(Streaming { status, session })
    }

    async fn exchange(&self, peer: &HttpPeer, req: RequestHeader, body: Option<Bytes>) -> Result<Reply, String> {
        let mut s = self.start(peer, req, body).await?;
        let mut buf = BytesMut::new();
        while let Some(chunk) = s.chunk().await? {
            if buf.len() < MAX_BODY {
                buf.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY - buf.len())]);
            }
        }
        self.connector.release_http_session(s.session, peer, None).await;
        Ok(Reply {
            status: s.status,
            body: buf.freeze(),
        })
    }
}

/// `fut`, or an error naming `timeout` once it has passed.
async fn within<T>(timeout: Duration, fut: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}", humantime::format_duration(timeout))),
    }
}
