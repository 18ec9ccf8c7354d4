//! Active health checks: a background task sends `GET path` with each account's key every
//! `interval` for pools that configure `health_check`. Only 2xx is healthy; 401/403 marks the key
//! broken; anything else counts as a failure. A passing check brings an open or broken account
//! back (a rate-limit cooldown runs its course). Checks never run on the request path and never
//! cost tokens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::{Account, Pool, Snapshot};
use crate::outbound::Outbound;
use crate::sidecar::Sidecar;

/// The background service running active health checks: every `health_check.interval` it checks
/// every account of the pool at once, on the current snapshot.
pub struct HealthChecks {
    core: Arc<Sidecar>,
    client: Arc<Outbound>,
}

impl HealthChecks {
    /// Checks for the sidecar `core`, over their own upstream connections.
    pub fn new(core: Arc<Sidecar>) -> Self {
        HealthChecks {
            core,
            client: Arc::new(Outbound::default()),
        }
    }
}

fn request(pool: &Pool, account: &Account, path: &str) -> Result<RequestHeader, String> {
    let up = &account.upstream;
    let full = format!("{}{}", up.base_path, path);
    let mut req = RequestHeader::build("GET", full.as_bytes(), None).map_err(|e| e.to_string())?;
    let (name, value) = &account.credential;
    let e = |e: pingora::BError| e.to_string();
    req.insert_header(http::header::HOST, up.host_header.clone())
        .map_err(e)?;
    req.insert_header(name.clone(), value.clone()).map_err(e)?;
    req.insert_header(http::header::USER_AGENT, "llm-sidecar-health-check")
        .map_err(e)?;
    for (n, v) in pool.provider.check_headers() {
        req.insert_header(*n, *v).map_err(e)?;
    }
    Ok(req)
}

/// Check one account and apply the result to its health.
async fn check(core: &Sidecar, client: &Outbound, pool: &Pool, account: &Account) {
    let Some(conf) = &pool.health_check else {
        return;
    };
    let up = &account.upstream;
    let result = match (up.addr().await, request(pool, account, &conf.path)) {
        (Ok(addr), Ok(req)) => {
            let peer = crate::peer::build(addr, up, &pool.timeouts);
            client.send(&peer, req, None, conf.timeout).await.map(|r| r.status)
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    let health = &account.state.health;
    let (transition, reason) = match result {
        Ok(s) if (200..300).contains(&s) => (health.recover_if_down(), format!("health check passed ({s})")),
        Ok(s @ (401 | 403)) => (health.key_broken(), format!("health check got {s}")),
        Ok(s) => (
            health.failure(&pool.breaker, Instant::now()),
            format!("health check got {s}"),
        ),
        Err(e) => (
            health.failure(&pool.breaker, Instant::now()),
            format!("health check failed: {}", crate::text::sanitize(&e)),
        ),
    };
    match transition {
        Some(t) => core
            .notifier
            .account_changed(core.webhook_on(), &pool.name, &account.name, t, &reason),
        None => {
            tracing::debug!(pool = &*pool.name, account = &*account.name, %reason, "health check")
        }
    }
}

#[async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut due: HashMap<Arc<str>, Instant> = HashMap::new();
        loop {
            let snap: Arc<Snapshot> = self.core.snapshot();
            let now = Instant::now();
            let mut next = now + Duration::from_secs(60);
            let mut checks = tokio::task::JoinSet::new();
            for (pi, pool) in snap.pools.iter().enumerate() {
                let Some(conf) = &pool.health_check else {
                    continue;
                };
                let at = *due.entry(Arc::clone(&pool.name)).or_insert(now);
                if at > now {
                    next = next.min(at);
                    continue;
                }
                due.insert(Arc::clone(&pool.name), now + conf.interval);
                next = next.min(now + conf.interval);
                for ai in 0..pool.accounts.len() {
                    let (snap, client, core) = (Arc::clone(&snap), Arc::clone(&self.client), Arc::clone(&self.core));
                    checks.spawn(async move {
                        let pool = &snap.pools[pi];
                        check(&core, &client, pool, &pool.accounts[ai]).await;
                    });
                }
            }
            while checks.join_next().await.is_some() {}
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
