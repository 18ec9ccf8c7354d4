//! Selection, run in `upstream_peer` for every attempt: give back the previous account's slot,
//! pick the next account of the walk ([`crate::alloc::pick`]: health, budgets, limits, sticky
//! sessions, queues), and build the peer it is reached by. Why no account could be had becomes
//! the request's answer (`rate_limited`, `no_account`, `queue_full`, `queue_timeout`, `dns_error`).

use std::net::SocketAddr;
use std::time::Duration;

use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use tokio::sync::OwnedSemaphorePermit;

use super::respond::ErrorKind;
use super::retry::RetryCtx;
use crate::alloc::pick::{self, NoPick, Walk};
use crate::alloc::shared::Sharing;
use crate::clock::now_ms;
use crate::config::{Account, Pool, Snapshot};
use crate::notify::Notifier;
use crate::sidecar::Sidecar;

/// What selection needs from the request beyond what retries need.
pub trait SelectCtx: RetryCtx {
    /// Selection's own part of the request's state, with the request's session (one borrow).
    fn attempt_and_session(&mut self) -> (&mut Attempt, Option<&str>);
    /// The client's key for the shared store's window, taken by the request's first attempt.
    fn take_shared_client(&mut self) -> Option<Box<str>>;
    /// The pinned snapshot itself (it outlives a borrow of the context).
    fn snapshot_arc(&self) -> Option<std::sync::Arc<Snapshot>>;
    /// The attempt goes to its target: the body and path it sends are that target's (front doors).
    fn prepare_target(&mut self);
}

/// `upstream_peer`: wait the retry's backoff, pick the next account, and build its peer; or say
/// why no account can take the attempt.
pub async fn upstream_peer(core: &Sidecar, ctx: &mut impl SelectCtx) -> pingora::Result<Box<HttpPeer>> {
    let Some(snap) = ctx.snapshot_arc() else {
        return Err(super::stop(ErrorKind::Internal));
    };
    let primary = ctx.primary().map(|p| p.retry);
    if let Some(wait) = ctx.retry_mut().backoff(primary.as_ref()) {
        tokio::time::sleep(wait).await;
    }
    let client = ctx.take_shared_client();
    let sharing = core.shared.as_deref().map(|store| Sharing {
        store,
        client: client.as_deref().zip(snap.client_rpm),
    });
    let (attempt, session) = ctx.attempt_and_session();
    match attempt.next(&core.notifier, &snap, session, sharing).await {
        Ok(destination) => {
            ctx.retry_mut().attempt_started();
            ctx.prepare_target();
            let (Some(pool), Some(account)) = (ctx.pool(), ctx.account()) else {
                return Err(super::stop(ErrorKind::Internal));
            };
            if let Some(link) = ctx.link() {
                link.attempt_started(&pool.timeouts);
            }
            match destination {
                Some(addr) => Ok(crate::peer::build(addr, &account.upstream, &pool.timeouts)),
                None => crate::peer::build_uds(core.cli_socket(), &pool.timeouts),
            }
        }
        Err(no) => {
            match no.kind {
                ErrorKind::RateLimited => core.metrics.ratelimited("pool"),
                ErrorKind::ClientRateLimited => core.metrics.ratelimited("client"),
                _ => {}
            }
            ctx.retry_mut().fail(no.kind, no.retry_after);
            Err(match no.detail {
                // Reported like a connect failure (Pingora's view), answered as `dns_error`.
                Some(m) => Error::explain(ErrorType::ConnectNoRoute, m).into_up(),
                None => super::stop(no.kind),
            })
        }
    }
}

/// Where the current attempt goes, and the walk over pools it came from.
#[derive(Default)]
pub struct Attempt {
    walk: Option<Walk>,
    pool: Option<usize>,
    account: Option<usize>,
    /// The concurrency slot held on the current account.
    permit: Option<OwnedSemaphorePermit>,
    /// The current attempt is the breaker's probe and has no outcome yet.
    probe: bool,
    /// The front-door target of the current attempt.
    target: Option<usize>,
}

/// Why an attempt could not start: the answer, and seconds for `retry-after`.
pub struct Unserved {
    /// What to answer with.
    pub kind: ErrorKind,
    /// When an account may be available again, for `retry-after` (`None`: unknown).
    pub retry_after: Option<Duration>,
    /// The resolver's error for a DNS failure, sanitized (`None`: the kind says it all).
    pub detail: Option<String>,
}

impl Attempt {
    /// Start walking from the route's pool (it names the request's pool until an attempt picks).
    pub fn start_walk(&mut self, pool: usize) {
        self.walk = Some(Walk::new(pool));
        self.pool = Some(pool);
    }

    /// Start a front door's walk over its targets' pools.
    pub fn start_plan(&mut self, walk: Walk) {
        self.pool = Some(walk.primary);
        self.walk = Some(walk);
    }

    /// The front-door target the current attempt serves.
    pub fn target(&self) -> Option<usize> {
        self.target
    }

    /// The pool of the current attempt (the route's pool until an attempt picks).
    pub fn pool(&self) -> Option<usize> {
        self.pool
    }

    /// The account of the current attempt, an index into its pool's accounts (`None`: none picked
    /// yet).
    pub fn account(&self) -> Option<usize> {
        self.account
    }

    /// The first pool of the walk, whose retry settings govern the request.
    pub fn primary(&self) -> Option<usize> {
        self.walk.as_ref().map(|w| w.primary)
    }

    /// The walk over pools: where it started and which accounts were tried.
    pub fn walk(&self) -> Option<&Walk> {
        self.walk.as_ref()
    }

    /// The account the request left as an outcome was recorded for it: no probe to give back.
    pub fn outcome_recorded(&mut self) {
        self.probe = false;
    }

    /// Give back the breaker probe the attempt holds if it got no outcome, and its slot.
    pub fn release(&mut self, snap: Option<&Snapshot>) {
        if std::mem::take(&mut self.probe) {
            if let Some(a) = snap.and_then(|s| self.account_in(s)) {
                a.state.health.release_probe();
            }
        }
        self.permit = None;
    }

    /// The current account served on a pooled connection its upstream had already closed: it
    /// is not to blame, and may be tried again.
    pub fn forget_current(&mut self) {
        if let (Some(walk), Some(ai)) = (self.walk.as_mut(), self.account) {
            walk.tried &= !(1 << ai);
        }
    }

    fn account_in<'s>(&self, snap: &'s Snapshot) -> Option<&'s Account> {
        snap.pools.get(self.pool?)?.accounts.get(self.account?)
    }

    /// Pick the account for the next attempt (waiting in a queue if that is what it takes) and
    /// the address to reach it at (`None`: the in-process claude-cli service).
    pub async fn next(
        &mut self,
        notifier: &Notifier,
        snap: &Snapshot,
        session: Option<&str>,
        sharing: Option<Sharing<'_>>,
    ) -> Result<Option<SocketAddr>, Unserved> {
        self.release(Some(snap));
        let Some(walk) = self.walk.as_mut() else {
            return Err(unserved(ErrorKind::Internal, None));
        };
        let picked = pick::pick(notifier, snap, walk, session, sharing)
            .await
            .map_err(refused)?;
        walk.tried |= 1 << picked.account;
        self.target = walk.target();
        self.pool = Some(picked.pool);
        self.account = Some(picked.account);
        self.permit = Some(picked.permit);
        self.probe = picked.probe;
        let pool = &snap.pools[picked.pool];
        let account = &pool.accounts[picked.account];
        account.state.sent.add(1, now_ms());
        if picked.probe {
            tracing::info!(target: "llm_sidecar::decision", pool = &*pool.name, account = &*account.name, "half-open: this request probes the account");
        }
        if account.cli.is_some() {
            return Ok(None);
        }
        account
            .upstream
            .addr()
            .await
            .map(Some)
            .map_err(|m| dns_failed(pool, account, m))
    }
}

fn unserved(kind: ErrorKind, retry_after: Option<Duration>) -> Unserved {
    Unserved {
        kind,
        retry_after,
        detail: None,
    }
}

fn refused(no: NoPick) -> Unserved {
    match no {
        NoPick::Unavailable {
            retry_after,
            rate_limited: true,
        } => unserved(ErrorKind::RateLimited, Some(retry_after)),
        NoPick::Unavailable { retry_after, .. } => unserved(ErrorKind::NoAccount, Some(retry_after)),
        NoPick::QueueFull => unserved(ErrorKind::QueueFull, Some(Duration::from_secs(1))),
        NoPick::QueueTimeout => unserved(ErrorKind::QueueTimeout, Some(Duration::from_secs(1))),
        NoPick::ClientOver(wait) => unserved(ErrorKind::ClientRateLimited, Some(wait)),
    }
}

fn dns_failed(pool: &Pool, account: &Account, message: String) -> Unserved {
    let message = crate::text::sanitize(&message);
    tracing::warn!(pool = &*pool.name, account = &*account.name, error = %message, "DNS");
    Unserved {
        kind: ErrorKind::DnsError,
        retry_after: None,
        detail: Some(message),
    }
}
