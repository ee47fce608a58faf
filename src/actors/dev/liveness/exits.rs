//! The end of an agent's pane process, learnt from the kernel: a pidfd per
//! live pane, readable once the process has exited. tmux's own news of it
//! (`pane-died`) can be lost (see `tmux/liveness.rs`), so this is what
//! makes the monitor look again; the listing that follows still decides
//! whether the pane is dead, as the kernel's news may come before tmux's.
//!
//! A pane process is no child of forgehand (the tmux server started it), so
//! only a pidfd tells of its end without asking again and again. A process
//! gone before it is watched counts as ended; a watch that cannot be made
//! (no pidfd support, no file descriptors left) leaves that pane to the
//! hooks and the safety net.

use std::collections::HashMap;

use rustix::process::{Pid, PidfdFlags, pidfd_open};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The pane processes watched, by session.
pub(super) struct Exits {
    watches: HashMap<String, Watch>,
    tx: mpsc::UnboundedSender<(String, u32)>,
    rx: mpsc::UnboundedReceiver<(String, u32)>,
}

struct Watch {
    pid: u32,
    task: JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Exits {
    pub(super) fn new() -> Exits {
        let (tx, rx) = mpsc::unbounded_channel();
        Exits {
            watches: HashMap::new(),
            tx,
            rx,
        }
    }

    /// Watches `session`'s pane process `pid` (a watch of another process
    /// for the session, from before a respawn, ends).
    pub(super) fn watch(&mut self, session: &str, pid: u32) {
        if self.watches.get(session).is_some_and(|w| w.pid == pid) {
            return;
        }
        let tx = self.tx.clone();
        let name = session.to_owned();
        let task = tokio::spawn(async move {
            match ended(pid).await {
                Ok(()) => {
                    let _ = tx.send((name, pid));
                }
                Err(e) => {
                    tracing::warn!(session = name, pid, "watching the agent's process: {e:#}");
                }
            }
        });
        self.watches.insert(session.to_owned(), Watch { pid, task });
    }

    /// Ends the watches of the sessions `keep` refuses.
    pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.watches.retain(|session, _| keep(session));
    }

    /// The next watched process that ended: its session and pid. Each
    /// watch reports once; a report for a watch since replaced is skipped.
    pub(super) async fn next(&mut self) -> (String, u32) {
        loop {
            let (session, pid) = self.rx.recv().await.expect("Exits holds a sender");
            if self.watches.get(&session).is_some_and(|w| w.pid == pid) {
                return (session, pid);
            }
        }
    }
}

/// Returns once process `pid` has ended (exited, a zombie or gone).
async fn ended(pid: u32) -> anyhow::Result<()> {
    let raw = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| anyhow::anyhow!("{pid} is not a process id"))?;
    let fd = match pidfd_open(raw, PidfdFlags::NONBLOCK) {
        Ok(fd) => fd,
        // Already gone (and reaped).
        Err(rustix::io::Errno::SRCH) => return Ok(()),
        Err(e) => return Err(anyhow::Error::new(e).context("pidfd_open")),
    };
    // SAFETY: the `OwnedFd` moves into the `AsyncFd`, which neither closes
    // nor replaces it while it is registered (it closes it on drop, after
    // deregistering).
    let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| anyhow::Error::new(e.into_parts().1).context("registering a pidfd"))?;
    let _ready = fd.readable().await?;
    Ok(())
}
