//! The upstream request's head: client credentials and hop-by-hop headers removed, the account's
//! key and Host set, path rewritten, body length fixed. Pure over a `RequestHeader`.

use http::header::{self, HeaderValue};
use pingora::http::RequestHeader;
use pingora::Result;

use crate::config::Account;

/// Headers a client may use to carry a credential. All are removed before the account's is added.
pub const CLIENT_CREDENTIALS: [&str; 5] = [
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "proxy-authorization",
    "api-key",
];

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus `expect`: the sidecar has already read the body.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// Rewrite `req` for `account`. `path` is the route-relative path and query
/// ([`crate::route::upstream_path`]); `body_len` is the length of the buffered body.
pub fn rewrite(
    req: &mut RequestHeader,
    account: &Account,
    path: &str,
    body_len: usize,
    request_id: &HeaderValue,
) -> Result<()> {
    // Headers the client nominated as hop-by-hop in `Connection` go too.
    let nominated: Vec<String> = req
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    for name in &nominated {
        req.remove_header(name.as_str());
    }
    for name in HOP_BY_HOP.iter().chain(CLIENT_CREDENTIALS.iter()) {
        req.remove_header(*name);
    }

    let up = &account.upstream;
    if up.base_path.is_empty() {
        req.set_raw_path(path.as_bytes())?;
    } else {
        let mut full = String::with_capacity(up.base_path.len() + path.len());
        full.push_str(&up.base_path);
        full.push_str(path);
        req.set_raw_path(full.as_bytes())?;
    }
    req.insert_header(header::HOST, up.host_header.clone())?;
    let (name, value) = &account.credential;
    req.insert_header(name.clone(), value.clone())?;
    req.insert_header("x-request-id", request_id.clone())?;
    // Usage is read from the response as it passes: ask for it uncompressed. (The client is on
    // loopback; compressing there would only cost CPU.)
    req.insert_header(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"))?;
    if body_len > 0 || req.headers.contains_key(header::CONTENT_LENGTH) {
        req.insert_header(header::CONTENT_LENGTH, body_len)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_base_url;
    use crate::provider::AuthStyle;
    use crate::secret::Secret;

    fn account(base: &str, auth: AuthStyle) -> Account {
        Account {
            name: "a".into(),
            name_header: HeaderValue::from_static("a"),
            limits: crate::config::AccountLimits {
                max_concurrent: None,
                max_queue: 1,
                queue_timeout: std::time::Duration::from_secs(1),
                rpm: None,
                tpm: None,
            },
            weight: 1.0,
            budget: None,
            upstream: parse_base_url(base).expect("url"),
            credential: auth.header(&Secret::new("REAL")).expect("header"),
            state: Default::default(),
            metrics: Default::default(),
        }
    }

    fn client_request() -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/anthropic/v1/messages?key=x", None).expect("req");
        for (n, v) in [
            ("host", "127.0.0.1:8080"),
            ("authorization", "Bearer placeholder"),
            ("x-api-key", "placeholder"),
            ("x-goog-api-key", "placeholder"),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "prompt-caching-2024-07-31"),
            ("connection", "keep-alive, x-drop-me"),
            ("x-drop-me", "1"),
            ("transfer-encoding", "chunked"),
            ("expect", "100-continue"),
            ("openai-organization", "org-1"),
        ] {
            req.append_header(n, v).expect("header");
        }
        req
    }

    #[test]
    fn strips_client_credentials_and_injects_the_account_key() {
        let mut req = client_request();
        let rid = HeaderValue::from_static("rid-1");
        rewrite(
            &mut req,
            &account("https://api.anthropic.com", AuthStyle::XApiKey),
            "/v1/messages",
            42,
            &rid,
        )
        .expect("rewrite");
        let h = &req.headers;
        assert_eq!(
            h.get("x-api-key").map(|v| v.as_bytes()),
            Some(&b"REAL"[..]),
            "injected key"
        );
        assert!(
            h.get("authorization").is_none() && h.get("x-goog-api-key").is_none(),
            "client creds gone"
        );
        assert_eq!(
            h.get("host").map(|v| v.as_bytes()),
            Some(&b"api.anthropic.com"[..]),
            "host rewritten"
        );
        assert_eq!(
            h.get("content-length").map(|v| v.as_bytes()),
            Some(&b"42"[..]),
            "length of buffered body"
        );
        for gone in ["transfer-encoding", "connection", "x-drop-me", "expect"] {
            assert!(h.get(gone).is_none(), "{gone} must not reach the upstream");
        }
        for kept in ["anthropic-version", "anthropic-beta", "openai-organization"] {
            assert!(h.get(kept).is_some(), "{kept} passes untouched");
        }
        assert_eq!(req.uri.path(), "/v1/messages", "path from the route");
        assert_eq!(h.get("x-request-id").map(|v| v.as_bytes()), Some(&b"rid-1"[..]));
    }

    #[test]
    fn base_path_and_bearer() {
        let mut req = client_request();
        let rid = HeaderValue::from_static("r");
        rewrite(
            &mut req,
            &account("https://openrouter.ai/api", AuthStyle::Bearer),
            "/v1/chat/completions?x=1",
            0,
            &rid,
        )
        .expect("rewrite");
        assert_eq!(req.uri.path(), "/api/v1/chat/completions", "base path prefixed");
        assert_eq!(req.uri.query(), Some("x=1"));
        assert_eq!(
            req.headers.get("authorization").map(|v| v.as_bytes()),
            Some(&b"Bearer REAL"[..])
        );
        assert!(req.headers.get("x-api-key").is_none(), "client x-api-key removed");
    }
}
