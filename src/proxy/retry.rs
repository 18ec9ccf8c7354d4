//! Every retry decision, behind one private state: attempts made, what the client has seen, the
//! budget taken, why the last attempt failed. The hooks ask it at each point an attempt can end
//! (before a pick, a connect error, a proxy error, the response head, an in-band error) and get a
//! verdict. Retries happen only before any body byte reached the client, on an account not yet
//! tried, within the pool's attempts and retry budget. It also says what each outcome means for
//! the account's health.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderMap;
use pingora::{Error, ErrorSource, ErrorType};

use super::replay::Expired;
use super::respond::{ErrorKind, RespondCtx};
use crate::alloc::pick::{self, Walk};
use crate::clock::now_ms;
use crate::metrics::Outcome;
use crate::resilience::health::Transition;
use crate::resilience::{self, Verdict, DEFAULT_COOLDOWN};
use crate::shared::record::{HealthKind, Write};

/// What the retry stage needs from the request beyond what answering needs.
pub trait RetryCtx: RespondCtx {
    /// The retry stage's own part of the request's state.
    fn retry_mut(&mut self) -> &mut Retry;
    /// The retry stage's own part of the request's state, read-only.
    fn retry_ref(&self) -> &Retry;
    /// The walk over pools (which accounts were tried).
    fn walk(&self) -> Option<&Walk>;
    /// The current attempt got its outcome: its breaker probe (if any) is answered.
    fn outcome_recorded(&mut self);
    /// The current account served on a pooled connection its upstream had already closed: it is
    /// not to blame, may be tried again, and its slot goes back.
    fn forget_attempt(&mut self);
    /// Drop a stream's held preamble (the attempt is abandoned); whether there was one.
    fn abandon_held(&mut self) -> bool;
}

/// The retry state of one request.
#[derive(Default)]
pub struct Retry {
    attempts: u32,
    /// The client has a stream's head and nothing else (a stream being retried elsewhere).
    head_only: bool,
    /// A retry was refused because the pool's retry budget was spent.
    budget_exhausted: bool,
    /// A retry was decided while handling a response (its head, or an in-band error).
    planned: bool,
    /// The next attempt replaces a pooled connection the upstream had closed: no backoff.
    stale: bool,
    /// Why the request failed, where the sidecar knows better than Pingora's error.
    failure: Option<ErrorKind>,
    /// For our own 429/503: when an account may be available.
    retry_after: Option<Duration>,
}

impl Retry {
    /// Upstream attempts so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    /// The client holds a stream's head and nothing else.
    pub fn head_only(&self) -> bool {
        self.head_only
    }
    /// Content reached the client: from now on the response is committed.
    pub fn body_sent(&mut self) {
        self.head_only = false;
    }
    /// Record why the request failed (admission refusals, no account, DNS).
    pub fn fail(&mut self, kind: ErrorKind, retry_after: Option<Duration>) {
        self.failure = Some(kind);
        self.retry_after = retry_after.or(self.retry_after);
    }
    /// Set (or clear) what the request failed with: the final word of `fail_to_proxy`/`logging`.
    pub fn record(&mut self, failure: Option<ErrorKind>) {
        self.failure = failure;
    }
    /// What the request failed with, when it is known here.
    pub fn failure(&self) -> Option<ErrorKind> {
        self.failure
    }
    /// Seconds for `retry-after`.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
    /// A retry was refused for lack of budget (the log row says so).
    pub fn budget_exhausted(&self) -> bool {
        self.budget_exhausted
    }
    /// Before a pick: the backoff to wait, if this is a retry.
    pub fn backoff(&mut self, retry: Option<&crate::config::RetryConf>) -> Option<Duration> {
        let stale = std::mem::take(&mut self.stale);
        let r = retry.filter(|_| self.attempts > 0 && !stale)?;
        Some(resilience::backoff(r.backoff, r.max_backoff, self.attempts))
    }
    /// An account was picked: one more attempt (what a failed one said is then history).
    pub fn attempt_started(&mut self) {
        self.attempts += 1;
        self.failure = None;
    }
}

/// How an attempt failed, for the account's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 5xx, an error event, a stream cut: counts toward the breaker.
    Failed,
    /// Could not connect (refused, TLS, timed out): counts toward the breaker.
    Connect,
    /// No answer in time: counts toward the breaker.
    Timeout,
    /// 429, 529, overloaded: cool down for the given time.
    RateLimited(Duration),
    /// 401/403.
    KeyBroken,
    /// A subscription's usage limit (claude-cli): cool down until the reset it states.
    UsageLimit(Duration),
}

/// Apply a failure to the current account's health (and log any change).
fn account_failed(ctx: &mut impl RetryCtx, failure: Failure, reason: &str) {
    let (Some(pool), Some(account)) = (ctx.pool(), ctx.account()) else {
        return;
    };
    let outcome = match failure {
        Failure::Failed => Outcome::Failure,
        Failure::RateLimited(_) | Failure::UsageLimit(_) => Outcome::RateLimited,
        Failure::KeyBroken => Outcome::KeyBroken,
        Failure::Connect => Outcome::ConnectError,
        Failure::Timeout => Outcome::Timeout,
    };
    if let Some(m) = account.metrics.get() {
        m.outcome(outcome).inc();
    }
    let core = ctx.core();
    if let (Failure::RateLimited(_) | Failure::UsageLimit(_), Some(core)) = (failure, core) {
        core.metrics.ratelimited("account");
    }
    let health = &account.state.health;
    let now = Instant::now();
    let t = match failure {
        Failure::Failed | Failure::Connect | Failure::Timeout => health.failure(&pool.breaker, now),
        Failure::RateLimited(d) => health.rate_limited(d, &pool.breaker, now),
        Failure::UsageLimit(d) => health.usage_limited(d, now),
        Failure::KeyBroken => health.key_broken(),
    };
    if let (Some(t), Some(core)) = (t, core) {
        core.notifier
            .account_changed(ctx.webhook_on(), &pool.name, &account.name, t, reason);
        if let (Some(shared), Some(kind)) = (&core.shared, travels(t)) {
            shared.queue(Write::Health {
                pool: Arc::clone(&pool.name),
                account: Arc::clone(&account.name),
                kind,
            });
        }
    }
    ctx.outcome_recorded();
}

/// The health other replicas should obey too (`shared`): cooldowns, open breakers, broken keys.
fn travels(t: Transition) -> Option<HealthKind> {
    match t {
        Transition::CooledDown { for_ } => Some(HealthKind::Cool(for_)),
        Transition::BreakerOpened { cooldown } | Transition::BreakerReopened { cooldown } => {
            Some(HealthKind::Open(cooldown))
        }
        Transition::KeyBroken => Some(HealthKind::Broken),
        Transition::BreakerClosed | Transition::Recovered => None,
    }
}

/// The account answered properly.
fn account_fine(ctx: &mut impl RetryCtx) {
    let (Some(pool), Some(account)) = (ctx.pool(), ctx.account()) else {
        return;
    };
    if let Some(m) = account.metrics.get() {
        m.outcome(Outcome::Ok).inc();
    }
    if let (Some(t), Some(core)) = (account.state.health.success(), ctx.core()) {
        core.notifier
            .account_changed(ctx.webhook_on(), &pool.name, &account.name, t, "request succeeded");
    }
    ctx.outcome_recorded();
}

/// May the request try again? Counts the retry against the budget when it may.
fn may_retry(ctx: &mut impl RetryCtx, reason: &str) -> bool {
    let (Some(snap), Some(primary), Some(walk)) = (ctx.snapshot(), ctx.primary(), ctx.walk()) else {
        return false;
    };
    let attempts = ctx.retry_ref().attempts;
    if attempts >= primary.retry.attempts || !pick::any_left(snap, walk) {
        return false;
    }
    let core = ctx.core();
    if !primary.state.budget.try_withdraw(primary.retry.budget, now_ms()) {
        tracing::info!(target: "llm_sidecar::decision", pool = &*primary.name, %reason, "retry budget exhausted: answering as is");
        if let Some(core) = core {
            core.metrics.budget_exhausted(&primary.name);
        }
        ctx.retry_mut().budget_exhausted = true;
        return false;
    }
    if let Some(core) = core {
        core.metrics.retry(&primary.name);
    }
    let account = ctx.account().map_or("-", |a| &*a.name);
    tracing::info!(target: "llm_sidecar::decision", pool = &*primary.name, account, attempt = attempts, %reason, "retrying on another account");
    true
}

/// Connecting failed: nothing reached the upstream, so trying another account is always safe.
pub fn connect_failed(ctx: &mut impl RetryCtx, etype: &ErrorType) -> bool {
    let failure = if *etype == ErrorType::ConnectTimedout {
        Failure::Timeout
    } else {
        Failure::Connect
    };
    account_failed(ctx, failure, "connect failed");
    may_retry(ctx, "connect failed")
}

/// The attempt failed while proxying: retry it elsewhere? `client_reused`: the upstream
/// connection came from the pool; `nothing_sent`: no response head reached the client.
pub fn proxy_failed(ctx: &mut impl RetryCtx, e: &Error, client_reused: bool, nothing_sent: bool) -> bool {
    if std::mem::take(&mut ctx.retry_mut().planned) {
        return true;
    }
    // A pooled connection the upstream had already closed: the account is fine, try again.
    if e.retry() && client_reused && nothing_sent {
        ctx.forget_attempt();
        ctx.retry_mut().stale = true;
        return true;
    }
    let expired = ctx.expired();
    if expired == Some(Expired::FirstToken) && ctx.abandon_held() {
        // Only the head reached the client: another account may still serve this stream.
        ctx.retry_mut().head_only = true;
        account_failed(ctx, Failure::Timeout, "first token timeout");
        return may_retry(ctx, "first token timeout");
    }
    let upstream_fault = match expired {
        Some(Expired::FirstByte | Expired::FirstToken | Expired::Idle) => true,
        Some(Expired::Total) => false,
        None => *e.esource() == ErrorSource::Upstream,
    };
    if !upstream_fault {
        return false;
    }
    let failure = match expired {
        Some(Expired::FirstByte | Expired::FirstToken | Expired::Idle) => Failure::Timeout,
        _ => Failure::Failed,
    };
    let kind = super::respond::classify(e, ctx);
    account_failed(ctx, failure, kind.as_str());
    nothing_sent && may_retry(ctx, kind.as_str())
}

/// The response head arrived: judge the account; `Err` means "retry elsewhere, do not answer".
pub fn response_head(ctx: &mut impl RetryCtx, status: u16, headers: &HeaderMap) -> pingora::Result<()> {
    // The claude-cli service names its failures: they are the request's, if it ends here.
    let mut cli_kind = None;
    if ctx.account().is_some_and(|a| a.cli.is_some()) {
        cli_kind = headers
            .get("x-llm-sidecar-error")
            .and_then(|v| ErrorKind::named(v.as_bytes()));
        if let Some(kind) = cli_kind {
            ctx.retry_mut().fail(kind, None);
        }
    }
    let failure = match resilience::verdict(status) {
        Verdict::Fine => {
            account_fine(ctx);
            return Ok(());
        }
        Verdict::Failure => Failure::Failed,
        Verdict::KeyBroken => Failure::KeyBroken,
        Verdict::RateLimited => {
            let provider = ctx.pool().map(|p| p.provider);
            let wait = provider.and_then(|p| p.rate_limit_wait(headers, SystemTime::now()));
            let wait = wait.unwrap_or(DEFAULT_COOLDOWN);
            if cli_kind == Some(ErrorKind::CliRateLimited) {
                Failure::UsageLimit(wait)
            } else {
                Failure::RateLimited(wait)
            }
        }
    };
    let reason = status_reason(status);
    account_failed(ctx, failure, reason);
    if may_retry(ctx, reason) {
        ctx.retry_mut().planned = true;
        return Err(Error::explain(ErrorType::HTTPStatus(status), reason).into_up());
    }
    Ok(())
}

fn status_reason(status: u16) -> &'static str {
    match status {
        401 => "upstream 401",
        403 => "upstream 403",
        429 => "upstream 429",
        529 => "upstream 529",
        500 => "upstream 500",
        502 => "upstream 502",
        503 => "upstream 503",
        504 => "upstream 504",
        _ => "upstream error status",
    }
}

/// An error inside a stream before any content (e.g. `overloaded_error` in a 200): judge the
/// account like the matching status; true when the request will try another account.
pub fn in_band_error(ctx: &mut impl RetryCtx, kind: Option<&str>) -> bool {
    let limited = kind
        .zip(ctx.pool())
        .is_some_and(|(k, p)| p.provider.in_band_rate_limited(k));
    let failure = if limited {
        Failure::RateLimited(DEFAULT_COOLDOWN)
    } else {
        Failure::Failed
    };
    let reason = "error event before content";
    account_failed(ctx, failure, reason);
    if may_retry(ctx, reason) {
        let r = ctx.retry_mut();
        r.planned = true;
        r.head_only = true;
        return true;
    }
    false
}
