//! Notifications: `budget_threshold`, `key_broken`, `breaker_open`, `breaker_closed`,
//! `fallback_used`, `session_rebound`. Each goes to the log and, when a webhook is configured,
//! to a bounded queue that a background task ([`webhook`]) POSTs as `{event, pool, account, at,
//! detail}`, with retries and backoff. A slow or dead webhook never delays a request; drops are
//! counted. Account health changes are logged here too, with their reason.

pub mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::resilience::health::Transition;
use crate::text::sanitize;

const QUEUE: usize = 1024;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `budget_threshold`: an account's weekly spend reached one of `notifications.thresholds`.
    BudgetThreshold,
    /// `key_broken`: the upstream answered 401 or 403; the account is out of rotation.
    KeyBroken,
    /// `breaker_open`: failures opened (or a failed probe reopened) an account's breaker.
    BreakerOpen,
    /// `breaker_closed`: a probe succeeded and closed the breaker.
    BreakerClosed,
    /// `fallback_used`: no account of a pool could serve, so a fallback pool did (at most once a
    /// minute per pool).
    FallbackUsed,
    /// `session_rebound`: a session moved to another account (its own was unavailable or full, or
    /// the rebalancer moved it).
    SessionRebound,
    /// Logged only: an account cooled down after a rate limit, or came back.
    Cooldown,
    /// Logged only: an account came back (admin reset, reload or passing health check).
    Recovered,
}

impl Kind {
    /// The event's name, as the webhook and the log give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BudgetThreshold => "budget_threshold",
            Kind::KeyBroken => "key_broken",
            Kind::BreakerOpen => "breaker_open",
            Kind::BreakerClosed => "breaker_closed",
            Kind::FallbackUsed => "fallback_used",
            Kind::SessionRebound => "session_rebound",
            Kind::Cooldown => "cooldown",
            Kind::Recovered => "recovered",
        }
    }

    /// Whether an operator should look (logged as a warning).
    fn warns(self) -> bool {
        matches!(self, Kind::BudgetThreshold | Kind::KeyBroken | Kind::BreakerOpen)
    }
}

/// One notification, the JSON body POSTed to the webhook.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// What happened.
    pub event: Kind,
    /// The pool it happened in.
    pub pool: String,
    /// The account concerned (`None`: the pool as a whole).
    pub account: Option<String>,
    /// RFC 3339, UTC.
    pub at: String,
    /// Plain words on what happened and why.
    pub detail: String,
}

/// Logs events and queues them (at most 1024) for the webhook sender; never waits.
pub struct Notifier {
    tx: mpsc::Sender<Event>,
    rx: Mutex<Option<mpsc::Receiver<Event>>>,
    dropped: AtomicU64,
    sent: AtomicU64,
    /// Last `fallback_used` per pool (ms).
    fallback_at: DashMap<Box<str>, i64>,
    /// (pool, account, threshold in basis points) -> week number it was last sent in.
    budget_sent: DashMap<(Box<str>, Box<str>, u32), i64>,
}

impl Default for Notifier {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Notifier {
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            fallback_at: DashMap::new(),
            budget_sent: DashMap::new(),
        }
    }
}

impl Notifier {
    /// Log the event and queue it for the webhook (never waits).
    pub fn emit(&self, webhook_on: bool, event: Kind, pool: &str, account: Option<&str>, detail: String) {
        let name = event.as_str();
        if event.warns() {
            tracing::warn!(target: "llm_sidecar::notify", event = name, pool, account, %detail, "notification");
        } else {
            tracing::info!(target: "llm_sidecar::notify", event = name, pool, account, %detail, "notification");
        }
        if !webhook_on {
            return;
        }
        let at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let e = Event {
            event,
            pool: pool.into(),
            account: account.map(Into::into),
            at,
            detail,
        };
        if self.tx.try_send(e).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(dropped_total = n, "notification queue full: dropped");
        }
    }

    /// `fallback_used`, at most once a minute per pool.
    pub fn fallback_used(&self, webhook_on: bool, pool: &str, fallback: &str) {
        let now = now_ms();
        let mut due = false;
        self.fallback_at
            .entry(pool.into())
            .and_modify(|t| {
                if now - *t >= 60_000 {
                    *t = now;
                    due = true;
                }
            })
            .or_insert_with(|| {
                due = true;
                now
            });
        if due {
            self.emit(
                webhook_on,
                Kind::FallbackUsed,
                pool,
                None,
                format!("no account could serve; using {fallback}"),
            );
        }
    }

    /// `budget_threshold` for each threshold `used` has reached, once per threshold per week.
    pub fn budget(&self, webhook_on: bool, pool: &str, account: &str, used: f64, thresholds: &[f64]) {
        let week = now_ms().div_euclid(7 * 24 * 3_600_000);
        for &t in thresholds.iter().filter(|&&t| used >= t) {
            let key = (pool.into(), account.into(), (t * 10_000.0).round() as u32);
            let fresh = self.budget_sent.insert(key, week).is_none_or(|prev| prev != week);
            if fresh {
                let detail = format!(
                    "{:.1}% of the weekly budget used (threshold {:.0}%)",
                    used * 100.0,
                    t * 100.0
                );
                self.emit(webhook_on, Kind::BudgetThreshold, pool, Some(account), detail);
            }
        }
    }

    /// Events dropped: the queue was full, or the webhook kept failing.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events the webhook accepted (2xx).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The queue's receiving end, for the one webhook sender (`None` once taken).
    pub(crate) fn take_receiver(&self) -> Option<mpsc::Receiver<Event>> {
        self.rx.lock().ok().and_then(|mut r| r.take())
    }

    /// One info line for a change of an account's health, with its reason; breaker and key
    /// changes are also notifications.
    pub fn account_changed(&self, webhook_on: bool, pool: &str, account: &str, t: Transition, reason: &str) {
        let (event, detail) = match t {
            Transition::BreakerOpened { cooldown } => (
                Kind::BreakerOpen,
                format!("open for {}", humantime::format_duration(cooldown)),
            ),
            Transition::BreakerReopened { cooldown } => (
                Kind::BreakerOpen,
                format!("probe failed; open for {}", humantime::format_duration(cooldown)),
            ),
            Transition::BreakerClosed => (Kind::BreakerClosed, "probe succeeded".to_string()),
            Transition::CooledDown { for_ } => (
                Kind::Cooldown,
                format!("no traffic for {}", humantime::format_duration(round_ms(for_))),
            ),
            Transition::KeyBroken => (
                Kind::KeyBroken,
                "out of rotation until reload or a passing health check".to_string(),
            ),
            Transition::Recovered => (Kind::Recovered, "back in rotation".to_string()),
        };
        let reason = sanitize(reason);
        tracing::info!(target: "llm_sidecar::decision", pool, account, event = event.as_str(), detail, %reason, "account state");
        if matches!(event, Kind::BreakerOpen | Kind::BreakerClosed | Kind::KeyBroken) {
            self.emit(webhook_on, event, pool, Some(account), format!("{detail} ({reason})"));
        }
    }
}

fn round_ms(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_thresholds_fire_once_each_per_week() {
        let n = Notifier::default();
        n.budget(true, "p", "a", 0.85, &[0.8, 0.9]);
        n.budget(true, "p", "a", 0.86, &[0.8, 0.9]);
        n.budget(true, "p", "a", 0.95, &[0.8, 0.9]);
        n.budget(true, "p", "b", 0.95, &[0.8, 0.9]);
        let mut rx = n.take_receiver().expect("receiver");
        let mut got = Vec::new();
        while let Ok(e) = rx.try_recv() {
            got.push((e.account.unwrap_or_default(), e.detail));
        }
        assert_eq!(got.len(), 4, "a: 80% then 90%; b: both at once: {got:?}");
        assert!(
            got[0].1.contains("threshold 80%") && got[1].1.contains("threshold 90%"),
            "{got:?}"
        );
    }

    #[test]
    fn fallback_used_at_most_once_a_minute_per_pool_and_nothing_queued_without_a_webhook() {
        let n = Notifier::default();
        for _ in 0..5 {
            n.fallback_used(true, "p", "backup");
            n.fallback_used(true, "q", "backup");
        }
        n.emit(false, Kind::KeyBroken, "p", Some("a"), "x".into());
        let mut rx = n.take_receiver().expect("receiver");
        let mut pools = Vec::new();
        while let Ok(e) = rx.try_recv() {
            pools.push(e.pool);
        }
        assert_eq!(
            pools,
            ["p", "q"],
            "once per pool; the webhook-less event is only logged"
        );
    }
}
