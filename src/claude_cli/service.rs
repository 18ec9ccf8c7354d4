//! The in-process service that serves claude-cli pools: Anthropic's Messages API on a private Unix
//! socket, one `claude -p` process per request. The proxy reaches it like any upstream (so
//! selection, slots and queues, retries, metering, translation and logging apply unchanged) and
//! names the account with [`super::token`]. A process ends with its request: when the answer is
//! complete, when the proxy hangs up (client gone, timeout), when a reload removes its account,
//! and when the sidecar exits (a SIGTERM drain lets runs finish: the proxy waits for them); its
//! whole process group goes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::apps::{HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use serde_json::Value;

use super::answer::{finish, read_body, reply, stream_head, Answer};
use super::{build, check_filesystem, working_dir, BaseEnv, CliProcess, CliSessions, Options, Outcome};
use super::{AccountMode, CliConf, Invocation, Lease, ProcessError, SessionKey, Translator};
use crate::sidecar::Sidecar;

/// The header the proxy passes the request's session key in.
pub const SESSION: &str = "x-llm-sidecar-session";

/// How long a stopped process gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How long a run may live on after closing its stdout.
const EXIT_WAIT: Duration = Duration::from_secs(10);
/// A streamed answer silent this long gets a `ping` event (well under the default idle timeout).
const PING_EVERY: Duration = Duration::from_secs(15);
const PING: &[u8] = b"event: ping\ndata: {\"type\": \"ping\"}\n\n";

/// The CLI service of one sidecar.
pub struct CliService {
    core: Arc<Sidecar>,
    sessions: Arc<CliSessions>,
    base: BaseEnv,
}

impl CliService {
    /// The service of `core`, giving its children the sidecar's own `PATH` and `HOME`.
    pub fn new(core: Arc<Sidecar>) -> Self {
        let var = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_string());
        CliService {
            sessions: CliSessions::new(100_000, Duration::from_secs(24 * 3600)),
            base: BaseEnv {
                path: var("PATH", "/usr/local/bin:/usr/bin:/bin"),
                home: var("HOME", "/"),
            },
            core,
        }
    }
}

/// What a request runs with.
struct Run {
    pool: Arc<str>,
    account: Arc<str>,
    conf: Arc<CliConf>,
    mode: AccountMode,
    body: Value,
    session: String,
    /// The account's state (its running-process count).
    state: Arc<crate::state::AccountState>,
}

#[async_trait]
impl HttpServerApp for CliService {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        _shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        if !matches!(session.read_request().await, Ok(true)) {
            return None;
        }
        session.set_keepalive(None); // one request per connection: a process is costlier anyway
        if let Err(answer) = self.serve(&mut session).await {
            let _ = reply(&mut session, &answer, None).await;
        }
        let _ = session.finish().await;
        None
    }
}

impl CliService {
    async fn serve(&self, session: &mut ServerSession) -> Result<(), Answer> {
        let run = self.admit(session).await?;
        let cwd = working_dir(&run.body, &run.conf).map_err(|e| Answer::new(400, None, e.message))?;
        let messages = run.body.get("messages").and_then(Value::as_array).map_or(0, Vec::len);
        let key = SessionKey {
            pool: &run.pool,
            account: &run.account,
            client: &run.session,
        };
        // A session the CLI no longer has is started afresh once, with the history folded in.
        for _ in 0..2 {
            let lease = self.sessions.begin(key, &cwd, messages, crate::clock::now_ms());
            match self.run_once(session, &run, lease).await? {
                Ran::Done => return Ok(()),
                Ran::SessionMissing => continue,
            }
        }
        Err(Answer::new(502, Some("cli_error"), "the CLI lost the session twice"))
    }

    /// The request: `POST /v1/messages` from the proxy, naming an account of this snapshot.
    async fn admit(&self, session: &mut ServerSession) -> Result<Run, Answer> {
        let req = session.req_header();
        if req.method != http::Method::POST || req.uri.path() != "/v1/messages" {
            let msg = format!(
                "the claude-cli upstream serves POST /v1/messages, not {} {}",
                req.method,
                req.uri.path()
            );
            return Err(Answer::new(404, None, msg));
        }
        let named = req
            .headers
            .get(super::token::HEADER)
            .and_then(|v| super::token::verify(v.as_bytes()));
        let Some((pool_name, account_name)) = named else {
            return Err(Answer::new(401, None, "not called by this sidecar"));
        };
        let client_session = req.headers.get(SESSION).and_then(|v| v.to_str().ok()).map(String::from);
        let snap = self.core.snapshot();
        let found = snap.pools.iter().find(|p| &*p.name == pool_name).and_then(|p| {
            let a = p.accounts.iter().find(|a| &*a.name == account_name)?;
            Some((p, a))
        });
        let Some((pool, account)) = found else {
            return Err(Answer::new(
                503,
                Some("cli_unavailable"),
                "the account is no longer configured",
            ));
        };
        let (Some(conf), Some(mode)) = (pool.cli.clone(), account.cli.clone()) else {
            return Err(Answer::new(503, Some("cli_unavailable"), "not a claude-cli account"));
        };
        let (pool, account, state) = (
            Arc::clone(&pool.name),
            Arc::clone(&account.name),
            Arc::clone(&account.state),
        );
        let max_body = snap.limits.max_body_bytes;
        drop(snap); // not held while a slow body arrives
        let raw = read_body(session, max_body).await?;
        let body: Value =
            serde_json::from_slice(&raw).map_err(|e| Answer::new(400, None, format!("invalid JSON: {e}")))?;
        let from_body = super::fields::client_session(&body).map_err(|e| Answer::new(400, None, e.message))?;
        let session_key = client_session
            .or_else(|| from_body.map(String::from))
            .unwrap_or_else(super::sessions::new_uuid);
        Ok(Run {
            pool,
            account,
            conf,
            mode,
            body,
            session: session_key,
            state,
        })
    }
}

/// How one run ended.
enum Ran {
    Done,
    /// `--resume` found no such session before any output: start it anew.
    SessionMissing,
}

impl CliService {
    async fn run_once(&self, session: &mut ServerSession, run: &Run, lease: Lease) -> Result<Ran, Answer> {
        let inv = build(&run.body, &run.conf, &run.mode, &self.base, lease.state())
            .map_err(|e| Answer::new(400, None, e.message))?;
        check_filesystem(&inv, &run.conf)
            .await
            .map_err(|e| Answer::new(400, None, e.message))?;
        let mut process = match CliProcess::spawn_in(&inv, Options::default(), Arc::clone(&self.core.cli_groups)) {
            Ok(p) => p,
            Err(e) => {
                self.exit(&run.pool, "unavailable");
                return Err(Answer::new(503, Some("cli_unavailable"), describe(&e)));
            }
        };
        let running = Running::enter(&run.state);
        let mut translator = Translator::new(inv.stream, inv.model.as_deref());
        let mut head_sent = false;
        let ended = self
            .pump(session, run, &mut process, &mut translator, &mut head_sent)
            .await;
        let Some(exit) = ended else {
            process.stop(GRACE).await;
            drop(running);
            lease.failed(false);
            return Ok(Ran::Done); // the proxy left, or a reload removed the account
        };
        drop(running);
        let missing = exit.session_missing() && !translator.started();
        let finished = translator.finish(&exit, SystemTime::now());
        self.exit(&run.pool, reason(&finished.outcome));
        match finished.outcome {
            Outcome::Success(_) => lease.succeeded(),
            _ => lease.failed(missing),
        }
        if missing && resumed(&inv) {
            return Ok(Ran::SessionMissing);
        }
        finish(session, &run.session, inv.stream, finished, head_sent).await?;
        Ok(Ran::Done)
    }

    /// Read the process's lines into the client's answer until it ends (`None`: the proxy hung up,
    /// or a reload removed the account). A stream silent for [`PING_EVERY`] gets a `ping` event,
    /// so a long tool run is not taken for an idle upstream.
    async fn pump(
        &self,
        session: &mut ServerSession,
        run: &Run,
        process: &mut CliProcess,
        translator: &mut Translator,
        head_sent: &mut bool,
    ) -> Option<super::Exit> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_write = tokio::time::Instant::now();
        loop {
            tokio::select! {
                line = process.next_line() => match line {
                    Ok(Some(line)) => {
                        let mut out = Vec::new();
                        translator.line(&line, &mut out);
                        if !out.is_empty() {
                            if !*head_sent {
                                stream_head(session, &run.session).await.ok()?;
                                *head_sent = true;
                            }
                            session.write_response_body(Bytes::from(out), false).await.ok()?;
                            last_write = tokio::time::Instant::now();
                        }
                    }
                    Ok(None) | Err(_) => return reap(process).await,
                },
                _ = session.read_body_or_idle(true) => return None,
                _ = tick.tick() => {
                    if *head_sent && last_write.elapsed() >= PING_EVERY {
                        session.write_response_body(Bytes::from_static(PING), false).await.ok()?;
                        last_write = tokio::time::Instant::now();
                    }
                    if !still_configured(&self.core, &run.pool, &run.account) {
                        tracing::info!(target: "llm_sidecar::decision", pool = &*run.pool, account = &*run.account, "account removed by a reload: its CLI process is stopped");
                        return None;
                    }
                }
            }
        }
    }

    fn exit(&self, pool: &str, reason: &'static str) {
        self.core.metrics.cli_exit(pool, reason);
    }
}

/// The exit of a run whose stdout ended: it normally follows at once; one that lingers is stopped.
async fn reap(process: &mut CliProcess) -> Option<super::Exit> {
    if let Ok(exit) = tokio::time::timeout(EXIT_WAIT, process.wait()).await {
        return exit.ok();
    }
    process.stop(GRACE).await;
    process.wait().await.ok()
}

/// Whether the run resumed a session.
fn resumed(inv: &Invocation) -> bool {
    inv.args.iter().any(|a| a == "--resume")
}

fn still_configured(core: &Sidecar, pool: &str, account: &str) -> bool {
    let snap = core.snapshot();
    snap.pools
        .iter()
        .any(|p| &*p.name == pool && p.accounts.iter().any(|a| &*a.name == account && a.cli.is_some()))
}

fn reason(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Success(_) => "ok",
        Outcome::Failed { status, .. } if *status < 500 => "refused",
        Outcome::Failed { .. } => "error",
        Outcome::RateLimited { .. } => "rate_limited",
    }
}

fn describe(e: &ProcessError) -> String {
    match e {
        ProcessError::Unavailable { message } => format!("the claude CLI cannot be run: {message}"),
        other => format!("{other}"),
    }
}

/// Counts a running process in its account's gauge until dropped.
struct Running(Arc<crate::state::AccountState>);

impl Running {
    fn enter(state: &Arc<crate::state::AccountState>) -> Running {
        state.cli_running.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Running(Arc::clone(state))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cli_running.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}
