//! The admin listener: `GET /healthz` (the process is alive) and `GET /readyz` (a config is
//! loaded and every pool has an account).

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::sidecar::Sidecar;

pub struct Admin {
    core: Arc<Sidecar>,
}

impl Admin {
    pub fn new(core: Arc<Sidecar>) -> Self {
        Admin { core }
    }

    fn ready(&self) -> (u16, serde_json::Value) {
        let snap = self.core.snapshot();
        let reasons: Vec<String> = snap
            .pools
            .iter()
            .filter(|p| p.accounts.is_empty())
            .map(|p| format!("pool {} has no account", p.name))
            .collect();
        if reasons.is_empty() {
            (200, serde_json::json!({ "status": "ready" }))
        } else {
            (503, serde_json::json!({ "status": "not_ready", "reasons": reasons }))
        }
    }
}

fn json(status: u16, body: &serde_json::Value) -> Response<Vec<u8>> {
    let bytes = body.to_string().into_bytes();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, bytes.len())
        .body(bytes)
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        match (req.method.as_str(), req.uri.path()) {
            ("GET", "/healthz") => json(200, &serde_json::json!({ "status": "ok" })),
            ("GET", "/readyz") => {
                let (status, body) = self.ready();
                json(status, &body)
            }
            (_, path) => json(
                404,
                &serde_json::json!({ "error": format!("no admin endpoint {path}") }),
            ),
        }
    }
}
