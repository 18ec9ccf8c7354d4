//! The library as an embedder uses it: the sidecar's proxy (behind its connection gate) and its
//! background services inside a Pingora server of one's own, next to one's own service. Run it
//! with a sidecar config: `cargo run --example embed -- conf/minimal.yaml` (its `listen` and
//! `admin.listen` apply; the admin API is left out here, the embedder's service stands in).

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use pingora::server::Server;
use pingora::services::listening::Service;

use llm_sidecar::{config, server, state::States, Sidecar};

/// The embedder's own service: here, one that says hello.
struct Hello;

#[async_trait]
impl ServeHttp for Hello {
    async fn response(&self, _session: &mut ServerSession) -> Response<Vec<u8>> {
        let body = b"hello from the embedding server\n".to_vec();
        Response::builder()
            .status(200)
            .header("content-length", body.len())
            .body(body)
            .unwrap_or_default()
    }
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "conf/minimal.yaml".into());
    // Account state outlives config reloads: the snapshot is built against the registry.
    let states = States::default();
    let snapshot = match config::load(path.as_ref(), &states) {
        Ok(s) => s,
        Err(problems) => {
            for p in problems {
                eprintln!("{path}: {p}");
            }
            std::process::exit(1);
        }
    };
    let core: Arc<Sidecar> = match Sidecar::new(states, snapshot, Some(path.into())) {
        Ok(core) => core,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut pingora = Server::new(None).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    pingora.bootstrap();
    // The sidecar's proxy on its `listen` address, and its background services.
    let proxy = server::proxy_service(&pingora.configuration, &core);
    pingora.add_service(proxy);
    server::add_background(&mut pingora, &core);
    // The embedder's own service beside it.
    let mut hello = Service::new("hello".to_string(), Hello);
    hello.add_tcp("127.0.0.1:8090");
    pingora.add_service(hello);
    pingora.run_forever();
}
