//! The one round trip before a request goes upstream: the pool's candidates (ranked by this
//! process, best first) go to one Lua script that, atomically, checks the client's window, the
//! session's binding, each candidate's shared health, budget stop, rpm and tpm, and counts the
//! request on the account it takes (binding the session to it).

use std::time::Duration;

use super::{Op, Shared};

/// The script (loaded once per connection; run by its SHA).
pub(super) const SCRIPT: &str = include_str!("admit.lua");

/// A candidate account, as the script sees it.
pub struct Candidate<'a> {
    /// Its name in the pool.
    pub name: &'a str,
    /// Its `rpm` (0: none).
    pub rpm: u32,
    /// Its `tpm` (0: none).
    pub tpm: u64,
    /// Under its budget threshold: may take a new session.
    pub bindable: bool,
    /// Its weekly budget in USD (0: none): past it, no replica sends it anything.
    pub weekly_usd: f64,
}

/// What one request asks of the store.
pub struct Ask<'a> {
    /// The pool's name.
    pub pool: &'a str,
    /// Best first.
    pub candidates: &'a [Candidate<'a>],
    /// The request's session and how long an idle binding lives.
    pub session: Option<(&'a str, Duration)>,
    /// The client's key and its rpm (first attempt only: retries are the same request).
    pub client: Option<(&'a str, u32)>,
}

/// The store's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The candidate at this index took the request (counted there).
    Take(usize),
    /// No candidate may take it now: until when one may (`None`: unknown), and whether all are
    /// rate limited.
    Unavailable {
        /// Until one may be free.
        wait: Option<Duration>,
        /// Every one is cooling down or at its rate.
        rate_limited: bool,
    },
    /// The client is over its rpm across all replicas; it may send again after this.
    ClientOver(Duration),
}

impl Shared {
    /// Check and count `ask` atomically. `None`: the store is down or slow (the failure is
    /// counted); the local decision stands.
    pub async fn admit(&self, ask: &Ask<'_>) -> Option<Verdict> {
        let (gen, mut conn) = self.near().await?;
        let mut call = self.admit_script.prepare_invoke();
        let (sid, ttl) = ask.session.unwrap_or(("", Duration::ZERO));
        let (client, crpm) = ask.client.unwrap_or(("", 0));
        call.arg(self.prefix())
            .arg(ask.pool)
            .arg(sid)
            .arg(super::millis(ttl))
            .arg(client)
            .arg(crpm);
        for c in ask.candidates {
            call.arg(c.name)
                .arg(c.rpm)
                .arg(c.tpm)
                .arg(u8::from(c.bindable))
                .arg(c.weekly_usd.max(0.0));
        }
        let answer = tokio::time::timeout(self.timeout, call.invoke_async::<Vec<i64>>(&mut conn)).await;
        let v = self.answer(Op::Admit, gen, answer)?;
        verdict(&v, ask.candidates.len())
    }
}

fn verdict(v: &[i64], candidates: usize) -> Option<Verdict> {
    let (&i, &wait, &limited) = (v.first()?, v.get(1)?, v.get(2)?);
    let ms = |w: i64| Duration::from_millis(u64::try_from(w).unwrap_or(0));
    match i {
        -1 => Some(Verdict::ClientOver(ms(wait).max(Duration::from_secs(1)))),
        0 => Some(Verdict::Unavailable {
            wait: (wait >= 0).then(|| ms(wait)),
            rate_limited: limited == 1,
        }),
        i => {
            let ix = usize::try_from(i).ok()?.checked_sub(1)?;
            (ix < candidates).then_some(Verdict::Take(ix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_strictly() {
        assert_eq!(verdict(&[2, 0, 0], 3), Some(Verdict::Take(1)), "1-based index");
        assert_eq!(verdict(&[4, 0, 0], 3), None, "an index past the candidates is refused");
        assert_eq!(verdict(&[1, 0], 3), None, "a short answer is refused");
        assert_eq!(
            verdict(&[0, -1, 0], 3),
            Some(Verdict::Unavailable {
                wait: None,
                rate_limited: false
            }),
            "unknown wait"
        );
        assert_eq!(
            verdict(&[-1, 10, 1], 3),
            Some(Verdict::ClientOver(Duration::from_secs(1))),
            "a client wait is at least a second"
        );
    }
}
