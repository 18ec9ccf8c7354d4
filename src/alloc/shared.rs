//! Selection with a shared store (`shared.redis`): this process ranks its candidates as always,
//! then one script in the store ([`crate::shared::admit`]) checks them against what every
//! replica has done (session binding, cooldowns, open breakers, broken keys, budget stops,
//! rpm/tpm, the client's window) and counts the request on the one it takes. The store down or
//! slow: the local ranking stands.

use std::time::{Duration, Instant};

use super::candidates::{Candidate, Unavailable};
use crate::config::Pool;
use crate::shared::admit::{self, Ask, Verdict};
use crate::shared::Shared;

/// The store and what the request brings to it.
pub struct Sharing<'a> {
    /// The store.
    pub store: &'a Shared,
    /// The client's key and rpm, checked with the request's first ask only.
    pub client: Option<(&'a str, u32)>,
}

/// The client is over its rpm across all replicas; it may send again after this.
pub(super) struct ClientOver(pub(super) Duration);

/// Narrow `ranked` to the one candidate the store admitted (counted there), or to none (with
/// why noted in `gone`). `first`: the pool's first attempt for this request (a retry does not
/// move the session).
pub(super) async fn narrow(
    sharing: &mut Sharing<'_>,
    pool: &Pool,
    ranked: Vec<Candidate>,
    session: Option<&str>,
    first: bool,
    gone: &mut Unavailable,
) -> Result<Vec<Candidate>, ClientOver> {
    if ranked.is_empty() || !sharing.store.is_up() {
        return Ok(ranked);
    }
    let candidates: Vec<admit::Candidate<'_>> = ranked
        .iter()
        .map(|c| {
            let a = &pool.accounts[c.index];
            admit::Candidate {
                name: &a.name,
                rpm: a.limits.rpm.unwrap_or(0),
                tpm: a.limits.tpm.unwrap_or(0),
                bindable: c.bindable,
                weekly_usd: a.budget.map_or(0.0, |b| b.weekly_usd),
            }
        })
        .collect();
    let ask = Ask {
        pool: &pool.name,
        candidates: &candidates,
        session: session.filter(|_| first).map(|s| (s, pool.session.expire_after)),
        client: sharing.client.take(),
    };
    let verdict = sharing.store.admit(&ask).await;
    match verdict {
        None => Ok(ranked),
        Some(Verdict::Take(i)) => Ok(ranked.into_iter().nth(i).into_iter().collect()),
        Some(Verdict::Unavailable { wait, rate_limited }) => {
            gone.note(wait.map(|w| Instant::now() + w), rate_limited);
            Ok(Vec::new())
        }
        Some(Verdict::ClientOver(wait)) => Err(ClientOver(wait)),
    }
}
