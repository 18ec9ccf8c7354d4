//! The background task that POSTs queued notifications to the configured webhook, with retries
//! and backoff; a webhook that keeps failing costs a counted drop, never a request's time.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::Webhook;
use crate::outbound::Outbound;
use crate::sidecar::Sidecar;

const TRIES: u32 = 4;

/// The background task that POSTs queued events to the configured webhook.
pub struct WebhookSender {
    core: Arc<Sidecar>,
    client: Outbound,
}

impl WebhookSender {
    /// A sender for `core`'s notifier, with its own upstream connections.
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
        let Some(mut rx) = self.core.notifier.take_receiver() else {
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
                        tracing::warn!(event = event.event.as_str(), error = %crate::text::sanitize(&e), dropped_total = n, "webhook failed; notification dropped");
                    }
                    Err(e) => {
                        tracing::debug!(event = event.event.as_str(), attempt, error = %crate::text::sanitize(&e), "webhook retry");
                        tokio::time::sleep(hook.backoff.saturating_mul(1 << (attempt - 1))).await;
                    }
                }
            }
        }
    }
}
