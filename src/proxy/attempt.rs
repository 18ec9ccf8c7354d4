//! What an attempt's outcome means for its account (health) and for the request (try another
//! account, or pass the answer on). Retries happen only before any body byte reached the client,
//! on an account not yet tried, within the pool's attempts and retry budget.

use std::time::{Instant, SystemTime};

use http::HeaderMap;
use pingora::{Error, ErrorType};

use super::ctx::Ctx;
use crate::clock::now_ms;
use crate::resilience::{self, Verdict, DEFAULT_COOLDOWN};
use crate::select;

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
    RateLimited(std::time::Duration),
    /// 401/403.
    KeyBroken,
}

/// Apply a failure to the current account's health (and log any change).
pub fn account_failed(ctx: &mut Ctx, failure: Failure, reason: &str) {
    let (Some(pool), Some(account)) = (ctx.pool(), ctx.account()) else {
        return;
    };
    let health = &account.state.health;
    let now = Instant::now();
    if let Some(m) = account.metrics.get() {
        let i = match failure {
            Failure::Failed => 1,
            Failure::RateLimited(_) => 2,
            Failure::KeyBroken => 3,
            Failure::Connect => 4,
            Failure::Timeout => 5,
        };
        m.outcomes[i].inc();
    }
    if matches!(failure, Failure::RateLimited(_)) {
        if let Some(core) = ctx.core() {
            core.metrics.ratelimited("account");
        }
    }
    let t = match failure {
        Failure::Failed | Failure::Connect | Failure::Timeout => health.failure(&pool.breaker, now),
        Failure::RateLimited(d) => health.rate_limited(d, &pool.breaker, now),
        Failure::KeyBroken => health.key_broken(),
    };
    if let (Some(t), Some(core)) = (t, ctx.core()) {
        core.notifier
            .account_changed(webhook_on(ctx), &pool.name, &account.name, t, reason);
    }
    ctx.probe = false;
}

/// The account answered properly.
pub fn account_fine(ctx: &mut Ctx) {
    let (Some(pool), Some(account)) = (ctx.pool(), ctx.account()) else {
        return;
    };
    if let Some(m) = account.metrics.get() {
        m.outcomes[0].inc();
    }
    if let (Some(t), Some(core)) = (account.state.health.success(), ctx.core()) {
        core.notifier
            .account_changed(webhook_on(ctx), &pool.name, &account.name, t, "request succeeded");
    }
    ctx.probe = false;
}

/// Give back the breaker probe the current attempt holds, if it got no outcome.
pub fn release_probe(ctx: &mut Ctx) {
    if std::mem::take(&mut ctx.probe) {
        if let Some(a) = ctx.account() {
            a.state.health.release_probe();
        }
    }
}

/// May the request try again? Counts the retry against the budget when it may.
pub fn may_retry(ctx: &mut Ctx, reason: &str) -> bool {
    let (Some(snap), Some(primary)) = (ctx.snap.as_deref(), ctx.primary()) else {
        return false;
    };
    if ctx.attempts >= primary.retry.attempts || !select::any_left(snap, &ctx.walk) {
        return false;
    }
    if !primary.state.budget.try_withdraw(primary.retry.budget, now_ms()) {
        tracing::info!(target: "llm_sidecar::decision", pool = &*primary.name, %reason, "retry budget exhausted: answering as is");
        if let Some(core) = ctx.core() {
            core.metrics.budget_exhausted(&primary.name);
        }
        ctx.budget_exhausted = true;
        return false;
    }
    if let Some(core) = ctx.core() {
        core.metrics.retry(&primary.name);
    }
    let account = ctx.account().map_or("-", |a| &*a.name);
    tracing::info!(target: "llm_sidecar::decision", pool = &*primary.name, account, attempt = ctx.attempts, %reason, "retrying on another account");
    true
}

/// The response head arrived: judge the account; `Err` means "retry elsewhere, do not answer".
pub fn on_head(ctx: &mut Ctx, status: u16, headers: &HeaderMap) -> pingora::Result<()> {
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
            Failure::RateLimited(wait.unwrap_or(DEFAULT_COOLDOWN))
        }
    };
    let reason = status_reason(status);
    account_failed(ctx, failure, reason);
    if may_retry(ctx, reason) {
        ctx.retry_planned = Some(reason);
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
pub fn on_in_band_error(ctx: &mut Ctx, kind: Option<&str>) -> bool {
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
        ctx.retry_planned = Some(reason);
        ctx.head_sent_no_body = true;
        return true;
    }
    false
}

/// Whether the request's snapshot sends notifications to a webhook.
fn webhook_on(ctx: &Ctx) -> bool {
    ctx.snap.as_ref().is_some_and(|s| s.webhook.is_some())
}
