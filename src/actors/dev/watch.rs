//! The inotify watch on session folders: every completed write of a phase
//! file becomes a `PhaseFileChanged` message to its dev actor, and of an
//! agent's marker file (`agent::Signal`) an `AgentSignal`.
//!
//! All dev actors share one inotify instance: the kernel allows a user only
//! 128 instances by default (`fs.inotify.max_user_instances`), far fewer than
//! the sessions one daemon supervises, while watches on one instance are
//! plentiful.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use ractor::ActorRef;

use super::DevMsg;
use crate::agent::Signal;

/// Session folder → the dev actor to tell.
type Routes = Arc<Mutex<HashMap<PathBuf, ActorRef<DevMsg>>>>;

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
        // Only completed writes count (close after writing, or a rename into
        // place), so a half-written file is never read.
        let completed = matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(_))
        );
        if !completed {
            return;
        }
        let routes = lookup.lock().unwrap_or_else(|e| e.into_inner());
        for path in &event.paths {
            let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
                continue;
            };
            let msg = if name == "phase" {
                DevMsg::PhaseFileChanged
            } else if let Some(signal) = Signal::from_file_name(&name) {
                DevMsg::AgentSignal(signal)
            } else {
                continue;
            };
            if let Some(actor) = path.parent().and_then(|dir| routes.get(dir)) {
                // The actor may be stopping; a lost nudge then does not matter.
                let _ = actor.send_message(msg);
            }
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
}

impl Drop for PhaseWatch {
    fn drop(&mut self) {
        if let Ok(shared) = shared() {
            let mut routes = shared.routes.lock().unwrap_or_else(|e| e.into_inner());
            // A newer actor for the same session keeps its watch.
            if routes
                .get(&self.dir)
                .is_none_or(|a| a.get_id() != self.actor)
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
    shared
        .routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.clone(), actor);
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
    Ok(PhaseWatch { dir, actor: id })
}
