//! The inotify watch on session folders: every completed write of a phase
//! file becomes a `PhaseFileChanged` message to its dev actor, and of an
//! agent's marker file (`agent::Signal`) an `AgentSignal`. Output in the pane
//! log becomes one `PaneOutput` when the actor asked for it (while it waits
//! for the agent's prompt), so a busy agent's output costs no messages.
//!
//! All dev actors share one inotify instance: the kernel allows a user only
//! 128 instances by default (`fs.inotify.max_user_instances`), far fewer than
//! the sessions one daemon supervises, while watches on one instance are
//! plentiful.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use ractor::ActorRef;

use super::DevMsg;
use crate::agent::Signal;

/// Session folder → the dev actor to tell.
type Routes = Arc<Mutex<HashMap<PathBuf, Route>>>;

struct Route {
    actor: ActorRef<DevMsg>,
    /// Set by the actor, cleared by the next write to the pane log, which
    /// then sends one `PaneOutput`.
    wants_output: Arc<AtomicBool>,
}

struct Shared {
    watcher: Mutex<RecommendedWatcher>,
    routes: Routes,
}

/// The process's one watcher, made on first use.
fn shared() -> anyhow::Result<&'static Shared> {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    if let Some(shared) = SHARED.get() {
        return Ok(shared);
    }
    let routes: Routes = Arc::default();
    let lookup = routes.clone();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        let routes = lookup.lock().unwrap_or_else(|e| e.into_inner());
        for path in &event.paths {
            let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
                continue;
            };
            let Some(route) = path.parent().and_then(|dir| routes.get(dir)) else {
                continue;
            };
            // The actor may be stopping; a lost message then does not matter.
            if name == crate::paths::PANE_LOG {
                let output = matches!(
                    event.kind,
                    EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
                );
                if output && route.wants_output.swap(false, Ordering::AcqRel) {
                    let _ = route.actor.send_message(DevMsg::PaneOutput);
                }
                continue;
            }
            // Only completed writes count (close after writing, or a rename
            // into place), so a half-written file is never read.
            let completed = matches!(
                event.kind,
                EventKind::Access(AccessKind::Close(AccessMode::Write))
                    | EventKind::Modify(ModifyKind::Name(_))
            );
            if !completed {
                continue;
            }
            let msg = if name == "phase" {
                DevMsg::PhaseFileChanged
            } else if let Some(signal) = Signal::from_file_name(&name) {
                DevMsg::AgentSignal(signal)
            } else {
                continue;
            };
            let _ = route.actor.send_message(msg);
        }
    })
    .context("creating the inotify watcher")?;
    let made = Shared {
        watcher: Mutex::new(watcher),
        routes,
    };
    // Two first uses at once: one wins, the other's watcher is dropped.
    Ok(SHARED.get_or_init(|| made))
}

/// A watched session folder; dropping it ends the watch.
pub struct PhaseWatch {
    dir: PathBuf,
    actor: ractor::ActorId,
    wants_output: Arc<AtomicBool>,
}

impl PhaseWatch {
    /// Send one `PaneOutput` at the pane log's next write.
    pub fn want_output(&self) {
        self.wants_output.store(true, Ordering::Release);
    }
}

impl Drop for PhaseWatch {
    fn drop(&mut self) {
        if let Ok(shared) = shared() {
            let mut routes = shared.routes.lock().unwrap_or_else(|e| e.into_inner());
            // A newer actor for the same session keeps its watch.
            if routes
                .get(&self.dir)
                .is_none_or(|r| r.actor.get_id() != self.actor)
            {
                return;
            }
            routes.remove(&self.dir);
            drop(routes);
            let mut watcher = shared.watcher.lock().unwrap_or_else(|e| e.into_inner());
            // The folder may be gone already, which ended the watch.
            let _ = watcher.unwatch(&self.dir);
        }
    }
}

/// Watch `dir` for completed writes of its `phase` file and the agent's
/// marker files, telling `actor`.
pub fn watch_phase_file(dir: &Path, actor: ActorRef<DevMsg>) -> anyhow::Result<PhaseWatch> {
    let shared = shared()?;
    let dir = dir.to_path_buf();
    let id = actor.get_id();
    let wants_output = Arc::new(AtomicBool::new(false));
    shared
        .routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            dir.clone(),
            Route {
                actor,
                wants_output: wants_output.clone(),
            },
        );
    let watched = shared
        .watcher
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .watch(&dir, RecursiveMode::NonRecursive);
    if let Err(e) = watched {
        shared
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&dir);
        return Err(e).with_context(|| format!("watching {}", dir.display()));
    }
    Ok(PhaseWatch {
        dir,
        actor: id,
        wants_output,
    })
}
