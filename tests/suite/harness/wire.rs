//! Raw HTTP/1.1 exchanges: bytes written as given, answers read until the server closes, stays
//! silent, or (with [`read_answers`]) until the expected number of answers is complete.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest a [`raw_answers`] exchange waits for its answers.
const ANSWERS_WITHIN: Duration = Duration::from_secs(10);

/// Connect to `addr` and send `bytes`.
async fn send(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("write request");
    s
}

/// Read from `r` until it closes, `enough` says the bytes so far suffice, `deadline` passes, or
/// it stays silent for `quiet`; what it sent, and whether it closed.
async fn read_until(
    r: &mut (impl AsyncRead + Unpin),
    enough: impl Fn(&[u8]) -> bool,
    deadline: Instant,
    quiet: Duration,
) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while !enough(&out) {
        let left = deadline.saturating_duration_since(Instant::now()).min(quiet);
        match tokio::time::timeout(left, r.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    (out, false)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Send `request` as raw bytes and read until the server closes or stays silent for `quiet`.
pub async fn raw(addr: SocketAddr, request: &[u8], quiet: Duration) -> String {
    let mut s = send(addr, request).await;
    let far = Instant::now() + Duration::from_secs(3600);
    text(read_until(&mut s, |_| false, far, quiet).await.0)
}

/// Send `request` as raw bytes and read until `n` final answers are complete, the server closes,
/// or 10 s pass; the connection stays open meanwhile (keep-alive is what some tests check).
pub async fn raw_answers(addr: SocketAddr, request: &[u8], n: usize) -> String {
    let mut s = send(addr, request).await;
    read_answers(&mut s, n).await
}

/// Read from `s` until `n` final answers are complete, it closes, or 10 s pass.
pub async fn read_answers(s: &mut TcpStream, n: usize) -> String {
    let deadline = Instant::now() + ANSWERS_WITHIN;
    text(
        read_until(s, |b| complete_answers(b) >= n, deadline, ANSWERS_WITHIN)
            .await
            .0,
    )
}

/// Read from `r` until it closes: what it sent (`None`: still open after `limit`).
pub async fn until_closed(r: &mut (impl AsyncRead + Unpin), limit: Duration) -> Option<String> {
    let (out, closed) = read_until(r, |_| false, Instant::now() + limit, limit).await;
    closed.then(|| text(out))
}

/// Send `bytes`, then hang up without reading once `until` is done.
pub async fn leave_when(addr: SocketAddr, bytes: &str, until: impl std::future::Future<Output = ()>) {
    let _s = send(addr, bytes.as_bytes()).await;
    until.await;
}

/// Dribble `head` one byte per 100 ms (a slowloris) while reading: what the server sent once it
/// closed the connection (`None`: still open after `limit`).
pub async fn dribble(addr: SocketAddr, head: &[u8], limit: Duration) -> Option<String> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = s.split();
    let write = async {
        for b in head {
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        out = until_closed(&mut rd, limit) => out,
        () = write => unreachable!("the writer never ends"),
    }
}

/// How many final (not 1xx) answers `bytes` holds whole: framed by `content-length` or chunked
/// (without trailers); an answer framed by the connection's close never counts as complete.
fn complete_answers(bytes: &[u8]) -> usize {
    let (mut at, mut done) = (0, 0);
    while let Some(head_len) = find(&bytes[at..], b"\r\n\r\n").map(|i| i + 4) {
        let head = String::from_utf8_lossy(&bytes[at..at + head_len]).to_ascii_lowercase();
        let body = at + head_len;
        let status = status_of(&head);
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        if (100..200).contains(&status) {
            at = body;
            continue;
        }
        let end = if status == 204 || status == 304 {
            Some(body)
        } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            chunked_end(bytes, body)
        } else {
            header("content-length:")
                .and_then(|v| v.parse::<usize>().ok())
                .map(|len| body + len)
                .filter(|end| *end <= bytes.len())
        };
        let Some(end) = end else { break };
        done += 1;
        at = end;
    }
    done
}

/// Where the chunked body starting at `at` ends, if it is whole.
fn chunked_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let line = find(&bytes[at..], b"\r\n")?;
        let size_text = String::from_utf8_lossy(&bytes[at..at + line]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at += line + 2;
        if size == 0 {
            return bytes[at..].starts_with(b"\r\n").then_some(at + 2);
        }
        at += size + 2;
        if at > bytes.len() {
            return None;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The status code of the first response in `raw` text (0 when there is none).
pub fn status_of(raw: &str) -> u16 {
    raw.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn answers_are_complete_only_when_their_framing_says_so() {
    let two = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
    assert_eq!(
        complete_answers(two),
        2,
        "an interim answer, a sized one and a chunked one"
    );
    assert_eq!(
        complete_answers(&two[..two.len() - 2]),
        1,
        "the chunked one lacks its end"
    );
    assert_eq!(
        complete_answers(&two[..64]),
        0,
        "the sized one lacks a byte of its body"
    );
    assert_eq!(complete_answers(&two[..60]), 0, "its head is cut short");
    assert_eq!(complete_answers(&two[..65]), 1, "the sized one whole");
    assert_eq!(
        complete_answers(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nbody"),
        0,
        "an answer ended by the close is never complete"
    );
}
