//! Hot reload: build the new snapshot completely (parse, validate, read keys from env and files,
//! resolve) off the proxy threads, then swap it in, which cannot fail. Triggered by a change of
//! the config file or of a key file (their directories are watched, which survives Kubernetes'
//! ConfigMap and Secret symlink swaps), by SIGHUP, or by `POST /admin/reload`. A bad file is
//! refused: the running config stays. Account state, sessions, ledgers and limits carry over by
//! name; a changed listen address or request-log file needs a restart and is reported.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::{self, Problem, Snapshot};
use crate::sidecar::{install, Sidecar};
use crate::usage::ledger::now_ms;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied {
        summary: String,
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
                    crate::observe::transition(core, &pool.name, &a.name, t, "config reloaded");
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

/// Watches the config and key files' directories, and SIGHUP.
pub struct ReloadService {
    core: Arc<Sidecar>,
}

impl ReloadService {
    pub fn new(core: Arc<Sidecar>) -> Self {
        ReloadService { core }
    }
}

/// The file names whose change means a reload, and the directories holding them.
fn watched(config: &Path, snap: &Snapshot) -> (HashSet<std::ffi::OsString>, HashSet<PathBuf>) {
    let mut names = HashSet::new();
    let mut dirs = HashSet::new();
    for f in std::iter::once(config).chain(snap.key_files.iter().map(PathBuf::as_path)) {
        if let Some(n) = f.file_name() {
            names.insert(n.to_os_string());
        }
        let dir = f
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        dirs.insert(dir.to_path_buf());
    }
    (names, dirs)
}

/// A change to one of our files, or Kubernetes' `..data` symlink swap. Reads (ours included)
/// are not changes.
fn relevant(event: &notify::Event, names: &HashSet<std::ffi::OsString>) -> bool {
    use notify::EventKind;
    let change = matches!(
        event.kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
    );
    change
        && event.paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| names.contains(n) || n.to_string_lossy().starts_with(".."))
        })
}

#[async_trait]
impl BackgroundService for ReloadService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup()).ok();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<notify::Event>(256);
        let config_path = self.core.config_path.clone();
        let watcher = config_path.as_ref().and_then(|_| {
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if let Ok(ev) = res {
                    let _ = tx.try_send(ev);
                }
            })
            .map_err(
                |e| tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP or /admin/reload"),
            )
            .ok()
        });
        let mut watcher = watcher;
        let mut watching: HashSet<PathBuf> = HashSet::new();
        let mut names = HashSet::new();
        loop {
            if let (Some(w), Some(path)) = (watcher.as_mut(), config_path.as_ref()) {
                let (n, dirs) = watched(path, &self.core.snapshot());
                names = n;
                for d in dirs.difference(&watching.clone()) {
                    match w.watch(d, RecursiveMode::NonRecursive) {
                        Ok(()) => {
                            watching.insert(d.clone());
                        }
                        Err(e) => tracing::warn!(dir = %d.display(), error = %e, "cannot watch"),
                    }
                }
            }
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(ev) = rx.recv() => {
                    if !relevant(&ev, &names) {
                        continue;
                    }
                    // Debounce: editors and Kubernetes write in several steps.
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    while rx.try_recv().is_ok() {}
                    let _ = reload(&self.core, "file change", true).await;
                }
                _ = hangup => {
                    let _ = reload(&self.core, "SIGHUP", false).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
