//! The state shared by the proxy, the admin listener and background tasks. The config snapshot
//! sits behind an `ArcSwap`: requests load it without a lock and keep the one they started with.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::Snapshot;

pub struct Sidecar {
    config: ArcSwap<Snapshot>,
    /// The file the config came from, when it came from one (reloads read it again).
    pub config_path: Option<PathBuf>,
    inflight: AtomicUsize,
}

impl Sidecar {
    pub fn new(snapshot: Snapshot, config_path: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Sidecar {
            config: ArcSwap::from_pointee(snapshot),
            config_path,
            inflight: AtomicUsize::new(0),
        })
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.config.load_full()
    }

    /// Requests between `request_filter` and `logging`.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Acquire)
    }

    pub(crate) fn enter(self: &Arc<Self>) -> InflightGuard {
        self.inflight.fetch_add(1, Ordering::AcqRel);
        InflightGuard(Arc::clone(self))
    }
}

/// Counts a request as in flight until dropped (also when Pingora drops the context early).
pub struct InflightGuard(Arc<Sidecar>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}
