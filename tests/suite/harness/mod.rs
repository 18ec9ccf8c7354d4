//! Test harness: the real sidecar started in-process on ephemeral loopback ports, fake
//! providers, and a capture of every log line the process writes.

pub mod alloc;
pub mod cli;
pub mod doors;
pub mod env;
pub mod fake;
pub mod log;
pub mod matrix;
pub mod matrix_client;
pub mod redis;
pub mod stream;
pub mod wire;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use llm_sidecar::{config, server, Sidecar};
use pingora::server::{RunArgs, ShutdownSignal, ShutdownSignalWatch};

pub use env::{config_problems, load_config, secret_file};
pub use fake::{Fake, Gate, Reply, Seen};
pub use log::Logged;
pub use stream::{anthropic_events, read_all, read_clean, sse};
pub use wire::{dribble, leave_when, raw, raw_answers, read_answers, status_of, until_closed};

/// The sidecar binary, for tests that run it as a process.
pub const BIN: &str = env!("CARGO_BIN_EXE_llm-sidecar");

/// A loopback port for a server a test starts later (a sidecar's listeners, redis-server): free,
/// unique in this process, and below the kernel's ephemeral range, so no `bind(0)` (the fakes)
/// and no outgoing connection is given it before its server binds it. (A port that `bind(0)`
/// found free and released was handed out again by one of the next 30 `bind(0)` calls in 7 of
/// 2,000 trials here: a sidecar's listen and admin ports could be the same, or another test's.)
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    static RANGE: OnceLock<(u32, u32)> = OnceLock::new();
    let &(low, span) = RANGE.get_or_init(|| {
        let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<u32>().ok())
            .unwrap_or(32768);
        let low = ephemeral_low.saturating_sub(16384).max(1024);
        let span = ephemeral_low.saturating_sub(low).max(1);
        // Another test process at the same time starts elsewhere in the range.
        NEXT.store(
            std::process::id().wrapping_mul(2_654_435_761) % span,
            std::sync::atomic::Ordering::Relaxed,
        );
        (low, span)
    });
    for _ in 0..span {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % span;
        let port = u16::try_from(low + n).expect("a port number");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {low}..{}", low + span)
}

/// An upstream that refuses connections: a loopback port bound and never listening, held while
/// the first value lives (a port only found free could be taken by another test's server, which
/// would then answer in its place).
pub fn refusing() -> (tokio::net::TcpSocket, String) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let port = socket.local_addr().expect("addr").port();
    (socket, format!("http://127.0.0.1:{port}"))
}

/// Poll `done` every 20 ms until it holds; fail the test after 10 s.
pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether one log line contains all of `needles` (tests of one binary share the log, so a
/// check names something only its own test produces: a pool, a request id).
pub fn logged(needles: &[&str]) -> bool {
    logs().lines().any(|l| needles.iter().all(|n| l.contains(n)))
}

/// Every log line written by this test process (tracing and Pingora's `log`).
pub fn logs() -> String {
    String::from_utf8_lossy(&LOG.get_or_init(Default::default).lock().expect("log lock")).into_owned()
}

static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let buf = Arc::clone(LOG.get_or_init(Default::default));
        let _ = tracing_subscriber::fmt()
            .json()
            // What the sidecar writes at RUST_LOG=debug (Pingora held at info).
            .with_env_filter(llm_sidecar::observe::filter(
                "debug,h2=info,hyper=info,reqwest=info,rustls=info",
            ))
            .with_writer(move || Capture(Arc::clone(&buf)))
            .try_init();
    });
}

struct Stop(tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>);

#[async_trait]
impl ShutdownSignalWatch for Stop {
    async fn recv(&self) -> ShutdownSignal {
        if let Some(rx) = self.0.lock().await.take() {
            let _ = rx.await;
        }
        ShutdownSignal::FastShutdown
    }
}

/// A running sidecar. Stopped when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub core: Arc<Sidecar>,
    /// The config file, for sidecars started from one (reload tests rewrite it).
    pub file: Option<std::path::PathBuf>,
    /// The file's first lines (listen and admin), to keep when rewriting it.
    pub head: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Start the sidecar with `yaml` (its `listen` and `admin` are chosen here).
    pub fn start(yaml: &str) -> Proxy {
        Self::launch(yaml, None, "")
    }

    /// Like [`Proxy::start`], from a file in `dir` (so it can be reloaded); `admin_extra` goes
    /// into the `admin:` mapping (e.g. `, token_env: X`).
    pub fn start_file(dir: &std::path::Path, yaml: &str, admin_extra: &str) -> Proxy {
        Self::launch(yaml, Some(dir.join("sidecar.yaml")), admin_extra)
    }

    /// Replace the config file's body (its listen and admin lines are kept).
    pub fn rewrite(&self, yaml: &str) {
        let file = self.file.as_ref().expect("started from a file");
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, format!("{}{yaml}", self.head)).expect("write config");
        std::fs::rename(&tmp, file).expect("replace config");
    }

    fn launch(yaml: &str, file: Option<std::path::PathBuf>, admin_extra: &str) -> Proxy {
        env::init();
        init_logs();
        let (port, admin_port) = (free_port(), free_port());
        let head =
            format!("listen: \"127.0.0.1:{port}\"\nadmin: {{ listen: \"127.0.0.1:{admin_port}\"{admin_extra} }}\n");
        let yaml = format!("{head}{yaml}");
        let states = llm_sidecar::state::States::default();
        if let Some(f) = &file {
            std::fs::write(f, &yaml).expect("write config");
        }
        let snap = match &file {
            Some(f) => config::load(f, &states),
            None => config::load_str(&yaml, &states),
        };
        let snap = match snap {
            Ok(s) => s,
            Err(p) => panic!("test config invalid: {p:#?}\n{yaml}"),
        };
        let core = Sidecar::new(states, snap, file.clone()).expect("sidecar");
        let server = server::build(&core).expect("build server");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let stopped = Arc::clone(&core);
        let thread = std::thread::spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(Stop(tokio::sync::Mutex::new(Some(rx)))),
            });
            // As `server::run` does on the way out.
            stopped.flush();
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let admin: SocketAddr = format!("127.0.0.1:{admin_port}").parse().expect("addr");
        wait_listening(addr);
        wait_listening(admin);
        Proxy {
            addr,
            admin,
            core,
            file,
            head,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        assert!(Instant::now() < deadline, "{addr} did not start listening within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A client without connection pooling surprises: plain HTTP/1.1 to the sidecar.
pub fn client() -> reqwest::Client {
    env::init();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// One pool of `provider` (`extra` in its mapping) whose accounts `acct-i` point at `upstreams`,
/// account `i` keyed `REAL-KEY-{pool}-{i}` from a key file.
pub fn pool_yaml(pool: &str, provider: &str, upstreams: &[String], extra: &str) -> String {
    let mut out = format!("  {pool}:\n    provider: {provider}\n{extra}    accounts:\n");
    for (i, url) in upstreams.iter().enumerate() {
        let key = secret_file(&format!("{pool}-{i}.key"), &format!("REAL-KEY-{pool}-{i}"));
        out.push_str(&format!(
            "      - {{ name: acct-{i}, base_url: \"{url}\", key_file: \"{key}\" }}\n"
        ));
    }
    out
}

/// The route `/a` to the first of `pools`, and each `(name, provider, upstreams, extra)` as in
/// [`pool_yaml`].
pub fn pools_at_a(pools: &[(&str, &str, Vec<String>, &str)]) -> String {
    let mut out = format!(
        "routes:\n  - {{ name: r, match: {{ path_prefix: /a }}, pool: {} }}\npools:\n",
        pools[0].0
    );
    for (name, provider, urls, extra) in pools {
        out.push_str(&pool_yaml(name, provider, urls, extra));
    }
    out
}

/// Claude prices ($3 and $15 per million tokens), and for each `(name, upstreams)` an Anthropic
/// pool `name` as in [`pool_yaml`] (retrying after 1 ms) behind the route `name-route` at `/name`.
pub fn claude_pools(pools: &[(&str, Vec<String>)]) -> String {
    let mut out = String::from("prices:\n  - { model: \"claude-*\", input: 3.0, output: 15.0 }\nroutes:\n");
    for (name, _) in pools {
        out.push_str(&format!(
            "  - {{ name: {name}-route, match: {{ path_prefix: /{name} }}, pool: {name} }}\n"
        ));
    }
    out.push_str("pools:\n");
    for (name, urls) in pools {
        out.push_str(&pool_yaml(name, "anthropic", urls, "    retry: { backoff: 1ms }\n"));
    }
    out
}

/// POST a Claude message to `/a`, in `session` if given.
pub async fn send(proxy: &Proxy, session: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .post(proxy.url("/a/v1/messages"))
        .json(&serde_json::json!({"model": "claude-sonnet-5"}));
    if let Some(s) = session {
        req = req.header("x-session-id", s);
    }
    req.send().await.expect("request")
}

/// A non-streamed Claude answer: 12 input and 5 output tokens.
pub fn anthropic_reply() -> serde_json::Value {
    serde_json::json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-5",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 5, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    })
}

/// The admin listener's metrics exposition.
async fn metrics_text(proxy: &Proxy) -> String {
    client()
        .get(format!("http://{}/metrics", proxy.admin))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// A metric's value in the admin listener's exposition (0 when absent).
pub async fn metric(proxy: &Proxy, line_prefix: &str) -> f64 {
    let text = metrics_text(proxy).await;
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The sum of every series starting with `line_prefix` whose line contains `with` (all labels
/// together when `with` is empty).
pub async fn metric_sum(proxy: &Proxy, line_prefix: &str, with: &str) -> f64 {
    let text = metrics_text(proxy).await;
    text.lines()
        .filter(|l| l.starts_with(line_prefix) && l.contains(with))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `/admin/pools` of a sidecar without an admin token, as JSON.
pub async fn admin_pools(proxy: &Proxy) -> serde_json::Value {
    client()
        .get(format!("http://{}/admin/pools", proxy.admin))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("admin JSON")
}
