//! Hot reload: build the new snapshot completely (parse, validate, read keys from env and files,
//! resolve) off the proxy threads, then swap it in, which cannot fail. Triggered by a change of
//! the config file or of a key file (looked at ten times a second, which also sees Kubernetes'
//! ConfigMap and Secret symlink swaps), by SIGHUP, or by `POST /admin/reload`. A bad file is
//! refused: the running config stays. Account state, sessions, ledgers and limits carry over by
//! name; a changed listen address or request-log file needs a restart and is reported.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::clock::now_ms;
use crate::config::{self, Problem, Snapshot};
use crate::sidecar::{install, Sidecar};

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The new snapshot is in service.
    Applied {
        /// The new config's one-line summary (as `check` prints it).
        summary: String,
        /// Changes the running process cannot apply, in words (`listen`, `admin.listen`,
        /// `server.threads`, `log.sqlite`, `log.queue`).
        restart_needed: Vec<String>,
    },
    /// The file and its keys are as they were (a watcher event with no change).
    Unchanged,
}

fn problem(message: String) -> Vec<Problem> {
    vec![Problem {
        path: String::new(),
        message,
    }]
}

/// Settings a running process cannot change.
fn needs_restart(old: &Snapshot, new: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if old.listen != new.listen {
        out.push(format!("listen: {} -> {} (restart to apply)", old.listen, new.listen));
    }
    if old.admin_listen != new.admin_listen {
        out.push(format!(
            "admin.listen: {} -> {} (restart to apply)",
            old.admin_listen, new.admin_listen
        ));
    }
    if old.threads != new.threads {
        out.push("server.threads changed (restart to apply)".into());
    }
    if old.log.sqlite != new.log.sqlite || old.log.queue != new.log.queue {
        out.push("log.sqlite / log.queue changed (restart to apply)".into());
    }
    if old.shared != new.shared {
        out.push("shared changed (restart to apply)".into());
    }
    out
}

/// Reload from the config file. With `only_if_changed`, a file whose text and keys are unchanged
/// is left alone (watcher events fire for unrelated writes too).
pub async fn reload(
    core: &Arc<Sidecar>,
    trigger: &'static str,
    only_if_changed: bool,
) -> Result<Outcome, Vec<Problem>> {
    let _one_at_a_time = core.reload_lock.lock().await;
    let path = core
        .config_path
        .clone()
        .ok_or_else(|| problem("this sidecar was not started from a file".into()))?;
    let c = Arc::clone(core);
    let built = tokio::task::spawn_blocking(move || config::load(&path, &c.states))
        .await
        .map_err(|e| problem(format!("reload task failed: {e}")))?;
    let new = match built {
        Ok(s) => s,
        Err(problems) => {
            core.metrics.reloads.with_label_values(&["error"]).inc();
            for p in &problems {
                tracing::warn!(trigger, problem = %p, "config reload refused; the running config stays");
            }
            return Err(problems);
        }
    };
    let old = core.snapshot();
    if only_if_changed && new.fingerprint == old.fingerprint {
        return Ok(Outcome::Unchanged);
    }
    let restart_needed = needs_restart(&old, &new);
    for r in &restart_needed {
        tracing::warn!(trigger, change = %r, "config change needs a restart; ignored until then");
    }
    install(&new, &core.metrics);
    // A reload may carry a new key: broken keys get another chance.
    for pool in &new.pools {
        for a in &pool.accounts {
            if a.state.health.state(std::time::Instant::now()) == crate::resilience::health::State::BrokenKey {
                if let Some(t) = a.state.health.reset() {
                    core.notifier
                        .account_changed(core.webhook_on(), &pool.name, &a.name, t, "config reloaded");
                }
                if let Some(shared) = &core.shared {
                    shared.queue(crate::shared::record::Write::Health {
                        pool: Arc::clone(&pool.name),
                        account: Arc::clone(&a.name),
                        kind: crate::shared::record::HealthKind::Clear,
                    });
                }
            }
        }
    }
    let summary = new.summary();
    core.swap(new);
    core.metrics.reloads.with_label_values(&["success"]).inc();
    core.metrics.last_reload.set(now_ms() as f64 / 1000.0);
    tracing::info!(trigger, %summary, "config reloaded");
    Ok(Outcome::Applied {
        summary,
        restart_needed,
    })
}

/// Watches the config and key files, and SIGHUP.
pub struct ReloadService {
    core: Arc<Sidecar>,
}

impl ReloadService {
    /// The reload watcher for the sidecar `core`.
    pub fn new(core: Arc<Sidecar>) -> Self {
        ReloadService { core }
    }
}

/// What identifies a file's content cheaply: a rewrite, an atomic replace or Kubernetes'
/// `..data` symlink swap (metadata follows symlinks) all change it. `None`: missing.
type Stamp = Option<(u64, u64, u64, i64, i64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

/// The config file and every key file it names, with their stamps.
fn stamps(config: &Path, snap: &Snapshot) -> Vec<(PathBuf, Stamp)> {
    std::iter::once(config)
        .chain(snap.key_files.iter().map(PathBuf::as_path))
        .map(|p| (p.to_path_buf(), stamp(p)))
        .collect()
}

/// How often the files are looked at. Ten stats a second cost a few microseconds, work on every
/// filesystem, and, unlike inotify on their directories, are not woken by every write of other
/// files there (a request log beside the config writes thousands of times a second).
const POLL: Duration = Duration::from_millis(100);
/// A changed file must look the same this much later before it is read: editors and Kubernetes
/// write in several steps.
const SETTLE: Duration = Duration::from_millis(100);

#[async_trait]
impl BackgroundService for ReloadService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup()).ok();
        let config_path = self.core.config_path.clone();
        let mut seen = config_path
            .as_deref()
            .map(|p| stamps(p, &self.core.snapshot()))
            .unwrap_or_default();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => {
                    let Some(path) = config_path.as_deref() else { continue };
                    let now = stamps(path, &self.core.snapshot());
                    if now == seen {
                        continue;
                    }
                    tokio::time::sleep(SETTLE).await;
                    let settled = stamps(path, &self.core.snapshot());
                    if settled != now {
                        continue; // still being written: look again at the next tick
                    }
                    let _ = reload(&self.core, "file change", true).await;
                    // Key files may have been added or dropped: stamp what the config names now.
                    seen = stamps(path, &self.core.snapshot());
                }
                _ = hangup => {
                    let _ = reload(&self.core, "SIGHUP", false).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
