//! The fault matrix's client side: HTTP clients that send, leave or read, raw requests, and what a
//! client got, read without holding hundreds of megabytes.

use std::time::Duration;

use futures_util::StreamExt;

use super::status_of;

pub const BODY: &str = r#"{"model":"claude-sonnet-5"}"#;
pub const STREAM_BODY: &str = r#"{"model":"claude-sonnet-5","stream":true}"#;

/// The most body bytes a [`Got`] keeps (the rest is only counted).
const KEEP: usize = 64 * 1024;

/// What the client got.
pub struct Got {
    /// The status of the (first) answer; `None` when the client left before one.
    pub status: Option<u16>,
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes received.
    pub len: usize,
    /// The first 64 KiB of the body (for raw exchanges: of everything read).
    pub head: Vec<u8>,
    /// Whether the body ended cleanly (`None`: not read to its end).
    pub clean: Option<bool>,
}

impl Got {
    /// Nothing: the client left before any answer.
    pub fn none() -> Got {
        Got::raw(String::new())
    }

    /// A raw exchange's text.
    pub fn raw(text: String) -> Got {
        Got {
            status: (!text.is_empty()).then(|| status_of(&text)),
            headers: Default::default(),
            len: text.len(),
            head: text.into_bytes(),
            clean: None,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.head).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    async fn read(resp: reqwest::Response) -> Got {
        let status = Some(resp.status().as_u16());
        let headers = resp.headers().clone();
        let (mut len, mut head, mut clean) = (0, Vec::new(), true);
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else {
                clean = false;
                break;
            };
            len += chunk.len();
            let room = KEEP.saturating_sub(head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..room]);
        }
        Got {
            status,
            headers,
            len,
            head,
            clean: Some(clean),
        }
    }
}

/// A client without connection reuse (a pooled connection the sidecar closed would be re-sent
/// by hyper: a second log row) and without gzip decoding.
pub fn plain() -> reqwest::Client {
    super::env::init();
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .no_gzip()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn post_req(url: &str, rid: &str, body: &'static str) -> reqwest::RequestBuilder {
    plain()
        .post(url)
        .header("x-request-id", rid)
        .header("content-type", "application/json")
        .body(body)
}

/// POST `body` with request id `rid` and read the whole answer.
pub async fn post(url: &str, rid: &str, body: &'static str) -> Result<Got, String> {
    let resp = post_req(url, rid, body)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    Ok(Got::read(resp).await)
}

/// POST, read the first body chunk, then hang up.
pub async fn post_then_leave(url: &str, rid: &str, body: &'static str) -> Result<Got, String> {
    let resp = post_req(url, rid, body)
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = Some(resp.status().as_u16());
    let headers = resp.headers().clone();
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.and_then(Result::ok).unwrap_or_default();
    drop(stream);
    Ok(Got {
        status,
        headers,
        len: first.len(),
        head: first.to_vec(),
        clean: None,
    })
}

/// A POST head (and body) as raw bytes; `extra` header lines end with `\r\n`.
pub fn request(path: &str, rid: &str, body: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nx-request-id: {rid}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}
