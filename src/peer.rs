//! Building Pingora's `HttpPeer` for an account: resolved address, TLS with SNI and certificate
//! checks against the system roots, HTTP/2 when offered, and the pool's connect timeout.

use std::net::SocketAddr;
use std::time::Duration;

use pingora::upstreams::peer::HttpPeer;

use crate::config::{Timeouts, Upstream};

/// How long an idle pooled upstream connection is kept.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);

/// The peer for one attempt at `addr` (already resolved), with `up`'s TLS and SNI and deadlines
/// from `t`: the pool's connect timeout, and backstops past its first-byte and idle timeouts.
pub fn build(addr: SocketAddr, up: &Upstream, t: &Timeouts) -> Box<HttpPeer> {
    // The SNI is the host name: an empty SNI would switch certificate verification off.
    let mut peer = HttpPeer::new(addr, up.tls, up.host.to_string());
    let o = &mut peer.options;
    o.connection_timeout = Some(t.connect);
    o.total_connection_timeout = Some(t.connect.saturating_mul(2));
    // Our own deadlines (first byte, idle, total) are enforced by the session wrapper; this is
    // only a backstop that must never fire first.
    o.read_timeout = Some(t.first_byte.max(t.idle) + Duration::from_secs(1));
    o.write_timeout = Some(t.idle);
    o.idle_timeout = Some(KEEPALIVE_IDLE);
    if up.tls {
        o.set_http_version(2, 1);
    }
    Box::new(peer)
}

/// The peer for the in-process claude-cli service on its Unix socket.
pub fn build_uds(path: &std::path::Path, t: &Timeouts) -> pingora::Result<Box<HttpPeer>> {
    let mut peer = HttpPeer::new_uds(&path.to_string_lossy(), false, String::new())?;
    let o = &mut peer.options;
    o.connection_timeout = Some(t.connect);
    o.read_timeout = Some(t.first_byte.max(t.idle) + Duration::from_secs(1));
    o.write_timeout = Some(t.idle);
    Ok(Box::new(peer))
}
