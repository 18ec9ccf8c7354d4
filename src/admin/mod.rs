//! The admin listener: `GET /healthz`, `GET /readyz`, `GET /metrics`, and under `/admin/` (a
//! bearer token is required when `admin.token_env` is set): `GET /admin/pools`,
//! `GET /admin/sessions?pool=`, `POST /admin/reload`,
//! `POST /admin/pools/{pool}/accounts/{account}/reset`.

pub mod metrics;
mod views;

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};

use crate::reload::{self, Outcome};
use crate::sidecar::Sidecar;

/// The admin listener's HTTP app (`/healthz`, `/readyz`, `/metrics`, `/admin/*`).
pub struct Admin {
    core: Arc<Sidecar>,
}

impl Admin {
    /// The admin app for the sidecar `core`.
    pub fn new(core: Arc<Sidecar>) -> Self {
        Admin { core }
    }

    fn authorized(&self, session: &ServerSession) -> bool {
        let snap = self.core.snapshot();
        let Some(token) = &snap.admin_token else { return true };
        let given = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        given
            .and_then(|g| g.strip_prefix(b"Bearer "))
            .is_some_and(|g| token.matches(g))
    }

    async fn admin(&self, method: &str, path: &str, query: Option<&str>) -> (u16, Value) {
        let snap = self.core.snapshot();
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", ["admin", "pools"]) => (200, views::pools(&snap)),
            ("GET", ["admin", "sessions"]) => {
                let pool = query
                    .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("pool=")))
                    .unwrap_or("");
                match views::sessions(&snap, pool) {
                    Some(v) => (200, v),
                    None => (404, json!({ "error": format!("no pool named {pool:?}") })),
                }
            }
            ("POST", ["admin", "reload"]) => match reload::reload(&self.core, "admin API", false).await {
                Ok(Outcome::Applied {
                    summary,
                    restart_needed,
                }) => (
                    200,
                    json!({ "status": "reloaded", "summary": summary, "restart_needed": restart_needed }),
                ),
                Ok(Outcome::Unchanged) => (200, json!({ "status": "unchanged" })),
                Err(problems) => {
                    let errors: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    (400, json!({ "status": "refused", "errors": errors }))
                }
            },
            ("POST", ["admin", "pools", pool, "accounts", account, "reset"]) => {
                let found = snap.pools.iter().find(|p| &*p.name == *pool).and_then(|p| {
                    let a = p.accounts.iter().find(|a| &*a.name == *account)?;
                    Some((p, a))
                });
                match found {
                    Some((p, a)) => {
                        if let Some(t) = a.state.health.reset() {
                            self.core.notifier.account_changed(
                                snap.webhook.is_some(),
                                &p.name,
                                &a.name,
                                t,
                                "reset by the admin API",
                            );
                        }
                        (200, json!({ "status": "reset", "pool": *pool, "account": *account }))
                    }
                    None => (
                        404,
                        json!({ "error": format!("no account {account:?} in pool {pool:?}") }),
                    ),
                }
            }
            _ => (404, json!({ "error": format!("no admin endpoint {method} {path}") })),
        }
    }
}

fn reply(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)
        .unwrap_or_default()
}

fn json_reply(status: u16, body: &Value) -> Response<Vec<u8>> {
    reply(status, "application/json", body.to_string().into_bytes())
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let (method, path) = (req.method.as_str().to_string(), req.uri.path().to_string());
        let query = req.uri.query().map(str::to_string);
        match (method.as_str(), path.as_str()) {
            ("GET", "/healthz") => json_reply(200, &json!({ "status": "ok" })),
            ("GET", "/readyz") => {
                // Ready: config loaded and listeners up (both true once this answers), not
                // draining. Upstream trouble never fails it: in a pod the sidecar's readiness is
                // the app's, and an upstream hiccup must not take the app out of its Service.
                let mut body = if self.core.draining() {
                    json!({ "status": "not_ready", "reasons": ["draining: SIGTERM received"] })
                } else {
                    json!({ "status": "ready" })
                };
                if query
                    .as_deref()
                    .is_some_and(|q| q.split('&').any(|p| p == "verbose" || p.starts_with("verbose=")))
                {
                    body["upstreams"] = json!(views::not_ready(&self.core.snapshot()));
                }
                json_reply(if self.core.draining() { 503 } else { 200 }, &body)
            }
            ("GET", "/metrics") => {
                let log_dropped = self.core.log.as_ref().map_or(0, |l| l.dropped());
                let body = metrics::render(
                    &self.core.metrics,
                    &self.core.snapshot(),
                    log_dropped,
                    self.core.notifier.dropped(),
                );
                reply(200, "text/plain; version=0.0.4", body)
            }
            (_, p) if p == "/admin" || p.starts_with("/admin/") => {
                if !self.authorized(session) {
                    return json_reply(
                        401,
                        &json!({ "error": "admin token required: authorization: Bearer <token>" }),
                    );
                }
                let (status, body) = self.admin(&method, &path, query.as_deref()).await;
                json_reply(status, &body)
            }
            _ => json_reply(404, &json!({ "error": format!("no admin endpoint {method} {path}") })),
        }
    }
}
