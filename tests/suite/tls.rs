//! HTTPS upstreams: certificates checked against the trusted roots with SNI, HTTP/2 negotiated
//! by ALPN, streaming and large bodies over h2, and TLS failures answered as 502.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::harness::{self, *};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::json;
use tokio_rustls::rustls;

struct Pki {
    good: tokio_rustls::TlsAcceptor,
    untrusted: tokio_rustls::TlsAcceptor,
}

fn acceptor(ca: &rcgen::Certificate, ca_key: &KeyPair, names: &[&str]) -> tokio_rustls::TlsAcceptor {
    let key = KeyPair::generate().expect("key");
    let params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
    let leaf = params.signed_by(&key, ca, ca_key).expect("sign leaf");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut conf = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
    conf.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(conf))
}

/// A CA the sidecar has never heard of.
fn stranger_ca() -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("ca key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (params.self_signed(&key).expect("ca cert"), key)
}

/// Certificates from the CA every sidecar of this process trusts (the harness sets it once as
/// `SSL_CERT_FILE`), and from one the sidecar has never heard of.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let (trusted, trusted_key) = harness::env::trusted_ca();
        let (other, other_key) = stranger_ca();
        Pki {
            good: acceptor(trusted, trusted_key, &["localhost"]),
            untrusted: acceptor(&other, &other_key, &["localhost"]),
        }
    })
}

fn config(upstreams: &[String], timeouts: &str) -> String {
    format!(
        "routes:\n  - {{ name: r, match: {{ path_prefix: /anthropic }}, pool: p }}\npools:\n{}",
        pool_yaml("p", "anthropic", upstreams, timeouts)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstream_speaks_h2_with_verified_certificates() {
    let pki = pki();
    let up = Fake::start_tls(pki.good.clone(), |_, _| Reply::Json(200, anthropic_reply())).await;
    // `localhost` goes through the DNS path; the certificate is only valid for that name.
    let proxy = Proxy::start(&config(&[format!("https://localhost:{}", up.addr.port())], ""));
    for i in 0..3 {
        let resp = client()
            .post(proxy.url("/anthropic/v1/messages"))
            .json(&json!({"model": "m"}))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "request {i} served over HTTPS");
    }
    let seen = up.seen();
    assert_eq!(seen.len(), 3, "all three reached the upstream");
    assert!(
        seen.iter().all(|s| s.version == http::Version::HTTP_2),
        "h2 negotiated by ALPN"
    );
    assert!(
        seen.iter().all(|s| s.header("x-api-key") == Some("REAL-KEY-p-0")),
        "key injected over h2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_name_and_unknown_issuer_are_refused_as_tls_errors() {
    let pki = pki();
    let good = Fake::start_tls(pki.good.clone(), |_, _| Reply::Json(200, anthropic_reply())).await;
    let stranger = Fake::start_tls(pki.untrusted.clone(), |_, _| Reply::Json(200, anthropic_reply())).await;
    for (what, url) in [
        (
            "certificate not valid for 127.0.0.1",
            format!("https://127.0.0.1:{}", good.addr.port()),
        ),
        (
            "issuer not trusted",
            format!("https://localhost:{}", stranger.addr.port()),
        ),
    ] {
        let proxy = Proxy::start(&config(&[url], ""));
        let resp = client()
            .post(proxy.url("/anthropic/v1/messages"))
            .json(&json!({}))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 502, "{what}: a bad gateway");
        assert_eq!(
            resp.headers()["x-llm-sidecar-error"],
            "tls_error",
            "{what}: error kind tls_error"
        );
    }
    assert_eq!(
        good.count() + stranger.count(),
        0,
        "no request was sent over an unverified connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_large_bodies_over_h2_survive_a_retry() {
    let pki = pki();
    let events = |n: usize| -> Vec<(Duration, String)> {
        (0..n)
            .map(|i| {
                (
                    Duration::from_millis(50),
                    format!("event: ping\ndata: {{\"i\":{i}}}\n\n"),
                )
            })
            .collect()
    };
    let stalled = Fake::start_tls(pki.good.clone(), move |_, _| {
        Reply::Delay(Duration::from_secs(5), Box::new(Reply::Sse(vec![])))
    })
    .await;
    let good = Fake::start_tls(pki.good.clone(), move |_, _| Reply::Sse(events(4))).await;
    let urls = [stalled.addr.port(), good.addr.port()].map(|p| format!("https://localhost:{p}"));
    let proxy = Proxy::start(&config(&urls, "    timeouts: { first_byte: 400ms, idle: 2s }\n"));
    let body = serde_json::to_vec(&json!({"stream": true, "pad": "y".repeat(1024 * 1024)})).expect("json");
    for round in 0..2 {
        let resp = client()
            .post(proxy.url("/anthropic/v1/messages"))
            .body(body.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), 200, "round {round}: served after the retry");
        let text = read_clean(resp).await;
        assert_eq!(text.matches("event: ping").count(), 4, "round {round}: whole stream");
    }
    assert_eq!(good.count(), 2, "both requests ended on the good account");
    for s in good.seen().iter().chain(stalled.seen().iter()) {
        assert_eq!(s.version, http::Version::HTTP_2, "every attempt over h2");
        assert!(s.body[..] == body[..], "the 1 MiB body arrived whole on every attempt");
    }
    assert!(stalled.count() >= 1, "the stalled account was tried");
}
