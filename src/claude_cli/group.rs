//! Stopping a run's process group: SIGTERM, a grace period, SIGKILL, reaping.
//!
//! A grandchild whose parent died is re-parented to the nearest subreaper, else to PID 1, and
//! only its parent can reap it. So the sidecar reaps a group's leftovers (`waitpid(-pgid)`) when
//! it is PID 1 or called [`become_subreaper`]; otherwise they are killed and reaping them is
//! their new parent's job (a PID 1 that does not reap keeps them as zombies).

use std::collections::BTreeSet;
use std::io;
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::process::Child;
use tokio::time::{sleep, timeout, Instant};

const POLL: Duration = Duration::from_millis(20);

/// Make this process the reaper of its orphaned descendants (Linux `PR_SET_CHILD_SUBREAPER`),
/// so the leftovers of a run's process group can be reaped by [`super::CliProcess`]. Process-wide.
#[cfg(target_os = "linux")]
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integers and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere there is no subreaper: an init process (or the container runtime's) reaps orphans.
#[cfg(not(target_os = "linux"))]
pub fn become_subreaper() -> io::Result<()> {
    Ok(())
}

/// The process groups of one owner (a sidecar's CLI service) not yet known to be gone: what
/// [`Groups::kill_all`] stops when the owner exits before stopping them one by one (a fast
/// shutdown drops the tasks that would have).
#[derive(Debug, Default)]
pub struct Groups(Mutex<BTreeSet<i32>>);

impl Groups {
    pub(super) fn track(&self, pgid: i32) {
        self.lock().insert(pgid);
    }

    pub(super) fn untrack(&self, pgid: i32) {
        self.lock().remove(&pgid);
    }

    /// SIGKILL every group still tracked; how many there were.
    pub fn kill_all(&self) -> usize {
        let all = std::mem::take(&mut *self.lock());
        for pgid in &all {
            signal_group(*pgid, libc::SIGKILL);
        }
        all.len()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeSet<i32>> {
        // The set stays consistent whatever panicked while holding it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// SIGTERM the group; wait up to `grace` for the leader to exit and the group to empty; SIGKILL
/// what is left; reap; stop tracking it. Returns the leader's exit status when known.
pub(super) async fn terminate(
    groups: &Groups,
    pgid: i32,
    child: Option<&mut Child>,
    status: Option<ExitStatus>,
    grace: Duration,
) -> Option<ExitStatus> {
    let status = stop_group(pgid, child, status, grace).await;
    groups.untrack(pgid);
    status
}

async fn stop_group(
    pgid: i32,
    child: Option<&mut Child>,
    mut status: Option<ExitStatus>,
    grace: Duration,
) -> Option<ExitStatus> {
    if !signal_group(pgid, libc::SIGTERM) && status.is_some() {
        return status;
    }
    let deadline = Instant::now() + grace;
    if let Some(child) = child {
        if status.is_none() {
            status = timeout(grace, child.wait()).await.ok().and_then(Result::ok);
        }
        if status.is_none() {
            signal_group(pgid, libc::SIGKILL);
            status = timeout(Duration::from_secs(1), child.wait())
                .await
                .ok()
                .and_then(Result::ok);
        }
    }
    if status.is_none() {
        // The leader is not ours to wait for: the group's other members cannot be reaped safely.
        signal_group(pgid, libc::SIGKILL);
        return status;
    }
    while group_alive(pgid) && Instant::now() < deadline {
        reap_group(pgid);
        sleep(POLL).await;
    }
    if signal_group(pgid, libc::SIGKILL) {
        let until = Instant::now() + Duration::from_millis(500);
        while group_alive(pgid) && Instant::now() < until {
            reap_group(pgid);
            sleep(POLL).await;
        }
    }
    reap_group(pgid);
    status
}

/// Send `sig` to every process of group `pgid`; false when the group is gone.
pub(super) fn signal_group(pgid: i32, sig: i32) -> bool {
    // SAFETY: kill takes plain integers; a negative pid names a process group.
    pgid > 1 && unsafe { libc::kill(-pgid, sig) } == 0
}

fn group_alive(pgid: i32) -> bool {
    signal_group(pgid, 0)
}

/// Reap members of the group that are our children (leftovers re-parented to us as subreaper or
/// PID 1). Called only once the leader itself was reaped, so tokio's wait on it is not raced.
fn reap_group(pgid: i32) {
    loop {
        let mut st = 0;
        // SAFETY: waitpid writes only to `st`, a local integer; WNOHANG never blocks.
        let r = unsafe { libc::waitpid(-pgid, &mut st, libc::WNOHANG) };
        if r <= 0 {
            return;
        }
    }
}
