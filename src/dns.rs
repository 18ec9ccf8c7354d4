//! Upstream address resolution: asynchronous (getaddrinfo on tokio's blocking pool, never on a
//! proxy thread), cached per upstream, refreshed in the background, stale answers kept on failure.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

/// How long an answer is used before a background refresh is started.
const FRESH_FOR: Duration = Duration::from_secs(30);

/// One upstream host's cached address. Lives in the config snapshot, shared by all requests.
pub struct DnsCache {
    host: Arc<str>,
    port: u16,
    cached: ArcSwapOption<(SocketAddr, Instant)>,
    refreshing: AtomicBool,
}

impl DnsCache {
    /// An empty cache for `host:port`; the first [`DnsCache::resolve`] looks it up.
    pub fn new(host: &str, port: u16) -> Arc<Self> {
        Arc::new(DnsCache {
            host: host.into(),
            port,
            cached: ArcSwapOption::empty(),
            refreshing: AtomicBool::new(false),
        })
    }

    /// The upstream's address. Waits for DNS only on the first use; afterwards a stale answer
    /// is returned at once while a refresh runs in the background.
    pub async fn resolve(self: &Arc<Self>) -> Result<SocketAddr, String> {
        if let Some(entry) = self.cached.load().as_ref() {
            let (addr, at) = **entry;
            if at.elapsed() > FRESH_FOR && !self.refreshing.swap(true, Ordering::AcqRel) {
                let me = Arc::clone(self);
                tokio::spawn(async move {
                    // On failure the old answer stays: a DNS blip must not fail requests.
                    let _ = me.lookup().await;
                    me.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(addr);
        }
        self.lookup().await
    }

    async fn lookup(&self) -> Result<SocketAddr, String> {
        let found = tokio::net::lookup_host((&*self.host, self.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{} has no address", self.host))?;
        self.cached.store(Some(Arc::new((found, Instant::now()))));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_and_caches_localhost() {
        let cache = DnsCache::new("localhost", 8443);
        let addr = cache.resolve().await.expect("localhost resolves");
        assert!(addr.ip().is_loopback() && addr.port() == 8443, "{addr}");
        assert!(cache.cached.load().is_some(), "answer cached");
    }

    #[tokio::test]
    async fn unknown_host_is_an_error_with_the_name() {
        let cache = DnsCache::new("no-such-host.invalid", 443);
        let err = cache.resolve().await.expect_err("must fail");
        assert!(err.contains("no-such-host.invalid"), "{err}");
    }
}
