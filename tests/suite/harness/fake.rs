//! Fake LLM providers for the tests: real HTTP servers (hyper) on ephemeral loopback ports that
//! record every request and answer as scripted (JSON, SSE with delays, errors, slow heads, resets).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// A request as the fake upstream received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("upstream received JSON")
    }
}

/// What the fake answers.
#[derive(Clone)]
pub enum Reply {
    Json(u16, serde_json::Value),
    /// Status, extra headers, body.
    Raw(u16, Vec<(&'static str, String)>, Bytes),
    /// `text/event-stream`: each event is sent after its delay.
    Sse(Vec<(Duration, String)>),
    /// SSE that stops after the events and then breaks the connection.
    SseCut(Vec<(Duration, String)>),
    /// `text/event-stream` made of `head`, then `chunk` `times` times, then `tail`, generated as
    /// it is sent (hundreds of megabytes without holding them).
    Repeat {
        head: String,
        chunk: Bytes,
        times: usize,
        tail: String,
    },
    /// Wait before answering.
    Delay(Duration, Box<Reply>),
    /// Wait until the gate opens (30 s at most), then answer.
    Hold(Gate, Box<Reply>),
    /// Close the connection without an answer.
    Reset,
}

/// Holds [`Reply::Hold`] answers until the test opens it.
#[derive(Clone)]
pub struct Gate(Arc<tokio::sync::Semaphore>);

impl Gate {
    pub fn new() -> Gate {
        Gate(Arc::new(tokio::sync::Semaphore::new(0)))
    }

    /// Let every held answer, and every later one, go.
    pub fn open(&self) {
        self.0.close();
    }

    async fn passed(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(30), self.0.acquire()).await;
    }
}

type Script = Arc<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

pub struct Fake {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// Start a fake; `script(request, n)` decides the reply to the n-th request (0-based).
    pub async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake");
        Self::serve(listener, Arc::new(script), None)
    }

    /// A fake that always answers `reply`.
    pub async fn always(reply: Reply) -> Fake {
        Self::start(move |_, _| reply.clone()).await
    }

    /// The webhook receiver behind the URL in `var` (a variable the harness set once, see
    /// [`super::env`]), always answering `reply`.
    pub async fn webhook(var: &str, reply: Reply) -> Fake {
        let listener = super::env::webhook_listener(var);
        listener.set_nonblocking(true).expect("nonblocking webhook listener");
        let listener = TcpListener::from_std(listener).expect("webhook listener");
        Self::serve(listener, Arc::new(move |_, _| reply.clone()), None)
    }

    pub(crate) fn serve(listener: TcpListener, script: Script, tls: Option<tokio_rustls::TlsAcceptor>) -> Fake {
        super::env::init();
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (script, seen) = (Arc::clone(&script), Arc::clone(&seen2));
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req| handle(req, Arc::clone(&script), Arc::clone(&seen)));
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Fake { addr, seen, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

async fn handle(
    req: Request<Incoming>,
    script: Script,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    let s = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path_and_query().map_or("/".into(), |p| p.to_string()),
        version: parts.version,
        headers: parts.headers,
        body,
    };
    let n = {
        let mut all = seen.lock().expect("lock");
        all.push(s.clone());
        all.len() - 1
    };
    let mut reply = script(&s, n);
    loop {
        match reply {
            Reply::Delay(d, inner) => {
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            Reply::Hold(gate, inner) => {
                gate.passed().await;
                reply = *inner;
            }
            Reply::Reset => return Err(std::io::Error::other("reset")),
            Reply::Json(status, v) => {
                let bytes = Bytes::from(v.to_string());
                return Ok(full(status, vec![("content-type", "application/json".into())], bytes));
            }
            Reply::Raw(status, headers, bytes) => return Ok(full(status, headers, bytes)),
            Reply::Sse(events) => return Ok(sse(events, false)),
            Reply::SseCut(events) => return Ok(sse(events, true)),
            Reply::Repeat {
                head,
                chunk,
                times,
                tail,
            } => return Ok(repeat(head, chunk, times, tail)),
        }
    }
}

fn full(status: u16, headers: Vec<(&'static str, String)>, bytes: Bytes) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (n, v) in headers {
        b = b.header(n, v);
    }
    b.body(Full::new(bytes).map_err(|e: Infallible| match e {}).boxed())
        .expect("response")
}

fn sse(events: Vec<(Duration, String)>, cut: bool) -> Response<Body> {
    let stream = futures_util::stream::unfold((events.into_iter(), cut), |(mut it, cut)| async move {
        match it.next() {
            Some((delay, text)) => {
                tokio::time::sleep(delay).await;
                Some((Ok(Frame::data(Bytes::from(text))), (it, cut)))
            }
            None if cut => Some((Err(std::io::Error::other("cut")), (it, false))),
            None => None,
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .expect("response")
}

fn repeat(head: String, chunk: Bytes, times: usize, tail: String) -> Response<Body> {
    let parts = std::iter::once(Bytes::from(head))
        .chain(std::iter::repeat_n(chunk, times))
        .chain(std::iter::once(Bytes::from(tail)))
        .map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(parts))))
        .expect("response")
}

impl Fake {
    /// Like [`Fake::start`], over TLS with ALPN h2 and http/1.1.
    pub async fn start_tls(
        acceptor: tokio_rustls::TlsAcceptor,
        script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    ) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake");
        Self::serve(listener, Arc::new(script), Some(acceptor))
    }
}
