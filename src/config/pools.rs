//! Validation and building of pools and accounts: timeouts, retry, breaker, health checks,
//! fallback pools, per-account limits and keys.

use std::collections::BTreeMap;
use std::time::Duration;

use super::check::{parse_base_url, read_secret, valid_name, Problems, MAX_ACCOUNTS, NAME_RULE};
use super::raw::{RawAccount, RawPool};
use super::snapshot::{Account, AccountLimits, HealthCheckConf, Pool, RebalanceConf, RetryConf, SessionConf, Timeouts};
use crate::alloc::score::Budget;
use crate::provider::{AuthStyle, ProviderKind};
use crate::resilience::health::BreakerConf;
use crate::state::States;

/// Build every pool, then resolve and check their fallbacks.
pub(super) fn build_all(raw: &BTreeMap<String, RawPool>, states: &States, p: &mut Problems) -> Vec<Pool> {
    let names: Vec<&str> = raw.keys().map(String::as_str).collect();
    let mut pools: Vec<Pool> = raw
        .iter()
        .filter_map(|(name, pool)| build_pool(name, pool, states, p))
        .collect();
    if pools.len() != raw.len() {
        return pools; // indices would not line up; the problems are already reported
    }
    for (pi, (name, pool)) in raw.iter().enumerate() {
        let mut fallback = Vec::with_capacity(pool.fallback.len());
        for (i, target) in pool.fallback.iter().enumerate() {
            let path = format!("pools.{name}.fallback[{i}]");
            match names.iter().position(|n| n == target) {
                None => p.add(path, format!("no pool named {target:?}")),
                Some(ti) if ti == pi => p.add(path, "a pool cannot fall back to itself"),
                Some(ti) if pools[ti].provider.dialect() != pools[pi].provider.dialect() => p.add(
                    path,
                    format!(
                        "{target:?} speaks the {} API, this pool the {} API: fallback pools must speak the same one",
                        pools[ti].provider.kind().name(),
                        pools[pi].provider.kind().name()
                    ),
                ),
                Some(ti) => fallback.push(ti),
            }
        }
        pools[pi].fallback = fallback;
    }
    pools
}

fn build_pool(name: &str, raw: &RawPool, states: &States, p: &mut Problems) -> Option<Pool> {
    let start = p.0.len();
    let path = format!("pools.{name}");
    if !valid_name(name) {
        p.add(&path, format!("pool name: {NAME_RULE}"));
    }
    let t = &raw.timeouts;
    let positive = |p: &mut Problems, key: String, d: Duration| {
        if d.is_zero() {
            p.add(key, "must be greater than 0");
        }
    };
    for (key, d) in [
        ("connect", t.connect),
        ("first_byte", t.first_byte),
        ("idle", t.idle),
        ("total", t.total),
    ] {
        positive(p, format!("{path}.timeouts.{key}"), d.0);
    }
    if let Some(ft) = t.first_token {
        positive(p, format!("{path}.timeouts.first_token"), ft.0);
        if ft.0 > t.total.0 {
            p.add(format!("{path}.timeouts.first_token"), "is longer than timeouts.total");
        }
    }
    if t.first_byte.0 > t.total.0 {
        p.add(format!("{path}.timeouts.first_byte"), "is longer than timeouts.total");
    }
    let r = &raw.retry;
    if !(1..=10).contains(&r.attempts) {
        p.add(
            format!("{path}.retry.attempts"),
            "must be between 1 and 10 (tries in total)",
        );
    }
    if r.backoff.0 > r.max_backoff.0 {
        p.add(format!("{path}.retry.backoff"), "is longer than retry.max_backoff");
    }
    if !(0.0..=10.0).contains(&r.budget.0) {
        p.add(format!("{path}.retry.budget"), "must be between 0% and 1000%");
    }
    let b = &raw.breaker;
    if b.failures == 0 {
        p.add(format!("{path}.breaker.failures"), "must be at least 1");
    }
    positive(p, format!("{path}.breaker.cooldown"), b.cooldown.0);
    if b.cooldown.0 > b.max_cooldown.0 {
        p.add(
            format!("{path}.breaker.cooldown"),
            "is longer than breaker.max_cooldown",
        );
    }
    let health_check = raw.health_check.as_ref().map(|h| {
        if !h.path.starts_with('/') {
            p.add(format!("{path}.health_check.path"), "must start with /");
        }
        positive(p, format!("{path}.health_check.interval"), h.interval.0);
        positive(p, format!("{path}.health_check.timeout"), h.timeout.0);
        HealthCheckConf {
            interval: h.interval.0,
            timeout: h.timeout.0,
            path: h.path.clone(),
        }
    });
    let s = &raw.session;
    let header = http::HeaderName::from_bytes(s.header.as_bytes())
        .map_err(|_| p.add(format!("{path}.session.header"), "not a valid header name"))
        .ok();
    positive(p, format!("{path}.session.idle_after"), s.idle_after.0);
    if s.expire_after.0 < s.idle_after.0 {
        p.add(
            format!("{path}.session.expire_after"),
            "is shorter than session.idle_after",
        );
    }
    if s.max_per_account == 0 || s.max_sessions == 0 {
        p.add(
            format!("{path}.session"),
            "max_per_account and max_sessions must be at least 1",
        );
    }
    let session = SessionConf {
        header: header.unwrap_or(http::HeaderName::from_static("x-session-id")),
        idle_after: s.idle_after.0,
        expire_after: s.expire_after.0,
        max_per_account: s.max_per_account,
        max_sessions: s.max_sessions,
    };
    let rebalance = raw.rebalance.as_ref().map(|r| {
        positive(p, format!("{path}.rebalance.every"), r.every.0);
        if !(r.cost_gap_usd.is_finite() && r.cost_gap_usd >= 0.0) {
            p.add(
                format!("{path}.rebalance.cost_gap_usd"),
                "must be a non-negative number",
            );
        }
        RebalanceConf {
            every: r.every.0,
            cost_gap_usd: r.cost_gap_usd,
            max_moves: r.max_moves,
        }
    });
    if raw.default_max_tokens == Some(0) {
        p.add(format!("{path}.default_max_tokens"), "must be at least 1");
    }
    if raw.accounts.is_empty() {
        p.add(format!("{path}.accounts"), "at least one account is required");
    }
    if raw.accounts.len() > MAX_ACCOUNTS {
        p.add(
            format!("{path}.accounts"),
            format!("at most {MAX_ACCOUNTS} accounts per pool"),
        );
    }
    let provider = raw.provider.get();
    let is_cli = raw.provider == ProviderKind::ClaudeCli;
    let cli = if is_cli {
        super::cli::build_conf(&path, raw, p)
    } else {
        if raw.cli.is_some() {
            p.add(format!("{path}.cli"), "only claude-cli pools run the CLI");
        }
        None
    };
    let mut accounts = Vec::with_capacity(raw.accounts.len());
    for (i, a) in raw.accounts.iter().enumerate() {
        let apath = format!("{path}.accounts[{i}]");
        if raw.accounts[..i].iter().any(|o| o.name == a.name) {
            p.add(format!("{apath}.name"), format!("duplicate account name {:?}", a.name));
        }
        let auth = a.auth.unwrap_or_else(|| provider.default_auth());
        let account = if is_cli {
            cli_account(name, &apath, a, p)
        } else {
            build_account(&apath, a, auth, p)
        };
        if let Some(mut acc) = account {
            acc.state = states.account(name, &a.name);
            accounts.push(acc);
        }
    }
    (p.0.len() == start).then(|| Pool {
        name: name.into(),
        name_header: http::HeaderValue::from_str(name).unwrap_or_else(|_| http::HeaderValue::from_static("-")),
        provider,
        timeouts: Timeouts {
            connect: t.connect.0,
            first_byte: t.first_byte.0,
            first_token: t.first_token.map(|d| d.0),
            idle: t.idle.0,
            total: t.total.0,
        },
        accounts,
        next: Default::default(),
        retry: RetryConf {
            attempts: r.attempts,
            backoff: r.backoff.0,
            max_backoff: r.max_backoff.0,
            budget: r.budget.0,
        },
        breaker: BreakerConf {
            failures: b.failures,
            cooldown: b.cooldown.0,
            max_cooldown: b.max_cooldown.0,
        },
        health_check,
        fallback: Vec::new(),
        session,
        rebalance,
        state: states.pool(name),
        inflight: Default::default(),
        default_max_tokens: raw.default_max_tokens.unwrap_or(4096),
        cli,
    })
}

/// A claude-cli account: served by the in-process CLI service; its credential names it there.
fn cli_account(pool: &str, path: &str, a: &RawAccount, p: &mut Problems) -> Option<Account> {
    let start = p.0.len();
    let mode = super::cli::account_mode(path, a, p);
    let credential = crate::claude_cli::token::credential(pool, &a.name);
    // Reached over a Unix socket: the address is never used; Host says what it is.
    let upstream = parse_base_url("http://claude-cli.invalid").ok();
    let mut account = account_with(path, a, upstream, credential, p)?;
    account.cli = mode;
    (p.0.len() == start && account.cli.is_some()).then_some(account)
}

fn build_account(path: &str, a: &RawAccount, auth: AuthStyle, p: &mut Problems) -> Option<Account> {
    if a.config_dir.is_some() {
        p.add(
            format!("{path}.config_dir"),
            "only claude-cli accounts have a config_dir",
        );
    }
    let upstream = match a.base_url.as_deref() {
        Some(url) => parse_base_url(url)
            .map_err(|m| p.add(format!("{path}.base_url"), m))
            .ok(),
        None => {
            p.add(format!("{path}.base_url"), "is required");
            None
        }
    };
    let key = read_secret(path, "key", a.key_env.as_deref(), a.key_file.as_deref(), p);
    let credential = key.and_then(|k| auth.header(&k).map_err(|m| p.add(format!("{path}.key"), m)).ok());
    account_with(path, a, upstream, credential, p)
}

/// The account's limits, weight and budget checked, around its upstream and credential.
fn account_with(
    path: &str,
    a: &RawAccount,
    upstream: Option<crate::config::Upstream>,
    credential: Option<(http::HeaderName, http::HeaderValue)>,
    p: &mut Problems,
) -> Option<Account> {
    let start = p.0.len();
    if !valid_name(&a.name) {
        p.add(format!("{path}.name"), NAME_RULE);
    }
    if a.max_concurrent == Some(0) {
        p.add(
            format!("{path}.max_concurrent"),
            "must be at least 1 (omit it for no limit)",
        );
    }
    if a.queue_timeout.0.is_zero() {
        p.add(format!("{path}.queue_timeout"), "must be greater than 0");
    }
    for (key, v) in [("rpm", a.rpm.map(u64::from)), ("tpm", a.tpm)] {
        if v == Some(0) {
            p.add(format!("{path}.{key}"), "must be at least 1 (omit it for no limit)");
        }
    }
    if !(a.weight.is_finite() && a.weight > 0.0) {
        p.add(format!("{path}.weight"), "must be a positive number");
    }
    let budget = a.budget.as_ref().map(|b| {
        for (key, v) in [("weekly_usd", b.weekly_usd), ("block_usd", b.block_usd)] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                p.add(format!("{path}.budget.{key}"), "must be a non-negative number of USD");
            }
        }
        if !(b.threshold > 0.0 && b.threshold <= 1.0) {
            p.add(
                format!("{path}.budget.threshold"),
                "must be a share of the weekly budget, above 0 and at most 1",
            );
        }
        Budget {
            weekly_usd: b.weekly_usd.unwrap_or(0.0),
            block_usd: b.block_usd.unwrap_or(0.0),
            threshold: b.threshold,
        }
    });
    match (upstream, credential, p.0.len() == start) {
        (Some(upstream), Some(credential), true) => Some(Account {
            name: a.name.as_str().into(),
            name_header: http::HeaderValue::from_str(&a.name).unwrap_or_else(|_| http::HeaderValue::from_static("-")),
            upstream,
            credential,
            limits: AccountLimits {
                max_concurrent: a.max_concurrent,
                max_queue: a.max_queue,
                queue_timeout: a.queue_timeout.0,
                rpm: a.rpm,
                tpm: a.tpm,
            },
            weight: a.weight,
            budget,
            state: Default::default(),
            metrics: Default::default(),
            cli: None,
        }),
        _ => None,
    }
}
