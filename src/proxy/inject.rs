//! The upstream request's head: client credentials and hop-by-hop headers removed, the account's
//! key and Host set, path rewritten, body length fixed. Pure over a `RequestHeader`.

use http::header::{self, HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::Result;

use super::error::ErrorKind;
use super::view::View;
use crate::config::Account;

/// What key injection needs from the request beyond the common view.
pub trait InjectCtx: View {
    /// Route-relative path and query for the upstream.
    fn upstream_path(&self) -> &str;
    /// The length of the buffered body.
    fn body_len(&self) -> usize;
    /// The request's session key.
    fn session_key(&self) -> Option<&str>;
}

/// `upstream_request_filter`: the request head for the current attempt's account.
pub fn upstream_request(req: &mut RequestHeader, ctx: &impl InjectCtx) -> Result<()> {
    let account = ctx.account().ok_or_else(|| super::stop(ErrorKind::Internal))?;
    rewrite(req, account, ctx.upstream_path(), ctx.body_len(), ctx.request_id())?;
    if account.cli.is_some() {
        // The claude-cli service keeps the CLI's session per client session.
        if let Some(key) = ctx.session_key().and_then(|k| HeaderValue::from_str(k).ok()) {
            req.insert_header(crate::claude_cli::service::SESSION, key)?;
        }
    }
    Ok(())
}

/// Headers a client may use to carry a credential. All are removed before the account's is added.
const CLIENT_CREDENTIALS: [HeaderName; 5] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("x-goog-api-key"),
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("api-key"),
];

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus `expect`: the sidecar has already read the body.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::EXPECT,
];

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Rewrite `req` for `account`. `path` is the route-relative path and query
/// ([`crate::route::upstream_path`]); `body_len` is the length of the buffered body.
pub fn rewrite(
    req: &mut RequestHeader,
    account: &Account,
    path: &str,
    body_len: usize,
    request_id: &HeaderValue,
) -> Result<()> {
    // Headers the client nominated as hop-by-hop in `Connection` go too (the usual
    // `keep-alive` and `close` name none: no allocation then).
    let nominated: Vec<HeaderName> = req
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.eq_ignore_ascii_case(b"keep-alive") && !t.eq_ignore_ascii_case(b"close"))
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    for name in nominated.iter().chain(&HOP_BY_HOP).chain(&CLIENT_CREDENTIALS) {
        req.remove_header(name);
    }
    // Our own headers are ours to set: a client's never passes (none is sent, usually: no cost).
    let ours: Vec<HeaderName> = req
        .headers
        .keys()
        .filter(|n| n.as_str().starts_with("x-llm-sidecar-"))
        .cloned()
        .collect();
    for name in &ours {
        req.remove_header(name);
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
    // Headers already right (the client's own request id, an unchanged body length) are left
    // as they are: each insert costs a parse and two map updates.
    if req.headers.get(X_REQUEST_ID) != Some(request_id) {
        req.insert_header("x-request-id", request_id.clone())?;
    }
    // Usage is read from the response as it passes: ask for it uncompressed. (The client is on
    // loopback; compressing there would only cost CPU.)
    req.insert_header(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"))?;
    let declared = req.headers.get(header::CONTENT_LENGTH);
    let same = declared.and_then(|v| v.to_str().ok()?.parse::<usize>().ok()) == Some(body_len);
    if (body_len > 0 || declared.is_some()) && !same {
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
            cli: None,
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
