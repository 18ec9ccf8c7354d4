//! Assembling the Pingora server: the proxy service, the admin listener, and process behaviour
//! (listen addresses checked up front, SIGTERM drains and exits as soon as nothing is in flight).

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::listeners::ListenerConfig;
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::admin::Admin;
use crate::alloc::rebalance::Rebalancer;
use crate::gate::Gate;
use crate::notify::webhook::WebhookSender;
use crate::proxy::SidecarProxy;
use crate::reload::ReloadService;
use crate::resilience::check::HealthChecks;
use crate::sidecar::Sidecar;

/// Fail early and clearly when an address cannot be bound (Pingora would retry for 30 s and then
/// panic in a service thread while the process stays alive).
fn check_bindable(what: &str, addr: SocketAddr) -> Result<(), String> {
    TcpListener::bind(addr)
        .map(drop)
        .map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))
}

/// Build the Pingora server for `core`'s current config: the proxy behind its gate, the admin
/// listener and the background services.
pub fn build(core: &Arc<Sidecar>) -> Result<Server, String> {
    let snap = core.snapshot();
    check_bindable("listen", snap.listen)?;
    check_bindable("admin.listen", snap.admin_listen)?;
    let conf = ServerConf {
        threads: snap.threads,
        grace_period_seconds: Some(snap.shutdown_grace.as_secs().max(1)),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let proxy = proxy_service(&server.configuration, core);
    let mut admin = Service::new("llm-sidecar admin".to_string(), Admin::new(Arc::clone(core)));
    admin.threads = Some(1);
    admin.add_tcp(&snap.admin_listen.to_string());
    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(cli_service(core));
    add_background(&mut server, core);
    Ok(server)
}

/// The claude-cli service on its private Unix socket (it idles without claude-cli pools).
pub fn cli_service(core: &Arc<Sidecar>) -> Service<crate::claude_cli::service::CliService> {
    use std::os::unix::fs::PermissionsExt;
    let mut cli = Service::new(
        "llm-sidecar claude-cli".to_string(),
        crate::claude_cli::service::CliService::new(Arc::clone(core)),
    );
    let path = core.cli_socket().to_string_lossy().into_owned();
    cli.add_uds(&path, Some(std::fs::Permissions::from_mode(0o600)));
    cli
}

/// The proxy as a Pingora service on `listen`: [`SidecarProxy`] behind the connection [`Gate`]
/// (deadlines, connection cap, refusals counted), HTTP/1.1 and h2c on one listener.
pub fn proxy_service(conf: &Arc<ServerConf>, core: &Arc<Sidecar>) -> Service<Gate<SidecarProxy>> {
    let snap = core.snapshot();
    let mut logic = pingora::proxy::http_proxy(conf, SidecarProxy::new(Arc::clone(core)));
    let mut options = HttpServerOptions::default();
    options.h2c = true; // HTTP/2 with prior knowledge beside HTTP/1.1 (told apart by the preface)
    options.h2_idle_timeout = Some(snap.server.keepalive_timeout);
    logic.server_options = Some(options);
    let mut proxy = Service::new("llm-sidecar proxy".to_string(), Gate::new(logic, Arc::clone(core)));
    // No L4 read buffer on the app side: it is plain HTTP on loopback, Pingora's own header and
    // body buffers already read in large pieces, and its default 64 KiB buffer (zero-filled per
    // connection) would cost 64 KiB of RSS for every open stream.
    let app = ListenerConfig::tcp(snap.listen.to_string()).l4_buffer(L4BufferSettings::default().read(0));
    proxy.add_listener(app);
    proxy
}

/// The sidecar's background services: active health checks, session rebalancing and expiry, the
/// webhook sender and the config reloader. Each idles when its part of the config is off.
pub fn add_background(server: &mut Server, core: &Arc<Sidecar>) {
    // Always present (it idles without checks), so a reload that adds checks is picked up.
    let checks = HealthChecks::new(Arc::clone(core));
    server.add_service(background_service("llm-sidecar health checks", checks));
    let sessions = Rebalancer::new(Arc::clone(core));
    server.add_service(background_service("llm-sidecar sessions", sessions));
    let webhook = WebhookSender::new(Arc::clone(core));
    server.add_service(background_service("llm-sidecar webhook", webhook));
    let reload = ReloadService::new(Arc::clone(core));
    server.add_service(background_service("llm-sidecar reload", reload));
    let shared = crate::shared::service::SharedService::new(Arc::clone(core));
    server.add_service(background_service("llm-sidecar shared state", shared));
}

/// Run until a signal: SIGINT stops at once; SIGTERM stops accepting, lets in-flight requests
/// finish for up to `server.shutdown_grace`, and exits 0 as soon as none is left.
pub fn run(core: Arc<Sidecar>) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    raise_fd_limit();
    // Orphans a CLI run leaves behind (its own background jobs) are re-parented here and reaped.
    if let Err(e) = crate::claude_cli::become_subreaper() {
        tracing::warn!(error = %e, "cannot become the reaper of orphaned CLI processes");
    }
    let server = build(&core)?;
    tracing::info!(listen = %core.snapshot().listen, admin = %core.snapshot().admin_listen, "llm-sidecar started");
    server.run(RunArgs {
        shutdown_signal: Box::new(Signals {
            core: Arc::clone(&core),
        }),
    });
    core.flush();
    Ok(())
}

/// Every connection costs a descriptor (two while proxied): take all the process may have, so
/// `server.max_connections`, not the default soft limit of 1024, decides when clients are refused.
#[cfg(target_os = "linux")]
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the plain struct we pass; no other memory.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && {
            let before = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            before == lim.rlim_max || libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0
        }
    };
    if raised {
        tracing::info!(open_files = lim.rlim_cur, "open-file limit");
    } else {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not raise the open-file limit");
    }
}

struct Signals {
    core: Arc<Sidecar>,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::error!("cannot install signal handlers; stopping");
            return ShutdownSignal::FastShutdown;
        };
        tokio::select! {
            _ = term.recv() => {
                self.core.start_draining();
                let grace = self.core.snapshot().shutdown_grace;
                tracing::info!(inflight = self.core.inflight(), grace_s = grace.as_secs_f64(), "SIGTERM: draining");
                drain_then_exit(Arc::clone(&self.core), grace);
                ShutdownSignal::GracefulTerminate
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: stopping now");
                ShutdownSignal::FastShutdown
            }
        }
    }
}

/// Pingora sleeps the whole grace period after SIGTERM, even with nothing in flight, and ignores
/// SIGINT meanwhile. This watcher ends the process as soon as the drain is complete, or at once
/// on SIGINT; past the grace period Pingora's own shutdown takes over.
fn drain_then_exit(core: Arc<Sidecar>, grace: Duration) {
    let started = Instant::now();
    let spawned = std::thread::Builder::new().name("drain".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let mut int = signal(SignalKind::interrupt()).ok();
            // Let Pingora close its listeners and idle connections first.
            tokio::time::sleep(Duration::from_millis(50)).await;
            loop {
                if core.inflight() == 0 {
                    tracing::info!(drained_in_ms = started.elapsed().as_millis() as u64, "drained; exiting");
                    core.flush();
                    crate::observe::flush_logs();
                    std::process::exit(0);
                }
                if started.elapsed() > grace {
                    return;
                }
                let tick = tokio::time::sleep(Duration::from_millis(20));
                match int.as_mut() {
                    Some(int) => tokio::select! {
                        _ = tick => {},
                        _ = int.recv() => {
                            core.flush();
                            crate::observe::flush_logs();
                            std::process::exit(0)
                        }
                    },
                    None => tick.await,
                }
            }
        });
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the drain watcher; waiting the full grace period");
    }
}
