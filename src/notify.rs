//! Notifications: `budget_threshold`, `key_broken`, `breaker_open`, `breaker_closed`,
//! `fallback_used`, `session_rebound`. Each goes to the log and, when a webhook is configured,
//! to a bounded queue that a background task POSTs as `{event, pool, account, at, detail}`, with
//! retries and backoff. A slow or dead webhook never delays a request; drops are counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use dashmap::DashMap;
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::Upstream;
use crate::outbound::Outbound;
use crate::sidecar::Sidecar;
use crate::clock::now_ms;

const QUEUE: usize = 1024;
const TRIES: u32 = 4;

/// Where notifications are POSTed (`notifications.webhook`).
pub struct Webhook {
    pub target: Upstream,
    /// Path and query of the URL.
    pub path: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub event: &'static str,
    pub pool: String,
    pub account: Option<String>,
    /// RFC 3339, UTC.
    pub at: String,
    pub detail: String,
}

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
    pub fn emit(&self, webhook_on: bool, event: &'static str, pool: &str, account: Option<&str>, detail: String) {
        let warn = matches!(event, "budget_threshold" | "key_broken" | "breaker_open");
        if warn {
            tracing::warn!(target: "llm_sidecar::notify", event, pool, account, %detail, "notification");
        } else {
            tracing::info!(target: "llm_sidecar::notify", event, pool, account, %detail, "notification");
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
                "fallback_used",
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
                self.emit(webhook_on, "budget_threshold", pool, Some(account), detail);
            }
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// The background task that POSTs queued events to the configured webhook.
pub struct WebhookSender {
    core: Arc<Sidecar>,
    client: Outbound,
}

impl WebhookSender {
    pub fn new(core: Arc<Sidecar>) -> Self {
        WebhookSender {
            core,
            client: Outbound::default(),
        }
    }

    async fn deliver(&self, hook: &Webhook, body: &Bytes) -> Result<(), String> {
        let addr = hook.target.addr().await?;
        let timeouts = crate::config::Timeouts {
            connect: hook.timeout,
            first_byte: hook.timeout,
            first_token: None,
            idle: hook.timeout,
            total: hook.timeout,
        };
        let peer = crate::peer::build(addr, &hook.target, &timeouts);
        let mut req = RequestHeader::build("POST", hook.path.as_bytes(), None).map_err(|e| e.to_string())?;
        for (n, v) in [("content-type", "application/json"), ("user-agent", "llm-sidecar")] {
            req.insert_header(n, v).map_err(|e| e.to_string())?;
        }
        req.insert_header(http::header::HOST, hook.target.host_header.clone())
            .map_err(|e| e.to_string())?;
        req.insert_header(http::header::CONTENT_LENGTH, body.len())
            .map_err(|e| e.to_string())?;
        let reply = self.client.send(&peer, req, Some(body.clone()), hook.timeout).await?;
        if (200..300).contains(&reply.status) {
            Ok(())
        } else {
            Err(format!("webhook answered {}", reply.status))
        }
    }
}

#[async_trait]
impl BackgroundService for WebhookSender {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut rx) = self.core.notifier.rx.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        loop {
            let event = tokio::select! {
                e = rx.recv() => match e { Some(e) => e, None => return },
                _ = shutdown.changed() => return,
            };
            let snap = self.core.snapshot();
            let Some(hook) = snap.webhook.as_ref() else { continue };
            let body = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
            for attempt in 1..=TRIES {
                match self.deliver(hook, &body).await {
                    Ok(()) => {
                        self.core.notifier.sent.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err(e) if attempt == TRIES => {
                        let n = self.core.notifier.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::warn!(event = event.event, error = %crate::text::sanitize(&e), dropped_total = n, "webhook failed; notification dropped");
                    }
                    Err(e) => {
                        tracing::debug!(event = event.event, attempt, error = %crate::text::sanitize(&e), "webhook retry");
                        tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                    }
                }
            }
        }
    }
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
        let mut rx = n.rx.lock().ok().and_then(|mut r| r.take()).expect("receiver");
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
        n.emit(false, "key_broken", "p", Some("a"), "x".into());
        let mut rx = n.rx.lock().ok().and_then(|mut r| r.take()).expect("receiver");
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
