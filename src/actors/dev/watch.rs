//! The inotify watch on session folders: every completed write of a session's
//! phase file becomes a `PhaseFileChanged` message to its dev actor.
//!
//! One inotify instance serves every session of the daemon. The kernel allows
//! 128 instances per user by default (`fs.inotify.max_user_instances`), shared
//! with every other program of that user; one per session stopped the 129th
//! session from starting (found by `scripts/bench` with 200 sessions).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use anyhow::Context;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use ractor::ActorRef;

use super::DevMsg;

/// Watched session folder → (registration id, its dev actor).
type Routes = HashMap<PathBuf, (u64, ActorRef<DevMsg>)>;

/// The daemon's one watcher and where its events go.
struct PhaseWatcher {
    /// Held across `watch`/`unwatch` and the route change that goes with them,
    /// so a stopping actor cannot unwatch a folder its successor just watched.
    /// The event callback never takes this lock: notify's `watch` waits for its
    /// event thread, which may be inside the callback.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    routes: Arc<Mutex<Routes>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not stop every session's phase changes.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn shared() -> &'static PhaseWatcher {
    static SHARED: OnceLock<PhaseWatcher> = OnceLock::new();
    SHARED.get_or_init(|| PhaseWatcher {
        watcher: Mutex::new(None),
        routes: Arc::new(Mutex::new(HashMap::new())),
        next_id: AtomicU64::new(1),
    })
}

fn new_watcher(routes: Arc<Mutex<Routes>>) -> notify::Result<notify::RecommendedWatcher> {
    notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
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
        for path in &event.paths {
            if path.file_name().is_none_or(|n| n != "phase") {
                continue;
            }
            let actor = path
                .parent()
                .and_then(|dir| lock(&routes).get(dir).map(|(_, a)| a.clone()));
            if let Some(actor) = actor {
                // The actor may be stopping; a lost nudge then does not matter.
                let _ = actor.send_message(DevMsg::PhaseFileChanged);
            }
        }
    })
}

/// A session folder's watch; dropping it stops the watch.
pub struct PhaseWatch {
    dir: PathBuf,
    id: u64,
}

/// Watch `dir` for writes of its `phase` file, reported to `actor`.
pub fn watch_phase_file(dir: &Path, actor: ActorRef<DevMsg>) -> anyhow::Result<PhaseWatch> {
    let shared = shared();
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let mut watcher = lock(&shared.watcher);
    if watcher.is_none() {
        *watcher =
            Some(new_watcher(shared.routes.clone()).context("creating the inotify watcher")?);
    }
    let watcher = watcher.as_mut().expect("created above");
    lock(&shared.routes).insert(dir.to_path_buf(), (id, actor));
    if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
        lock(&shared.routes).remove(dir);
        return Err(e).with_context(|| format!("watching {}", dir.display()));
    }
    Ok(PhaseWatch {
        dir: dir.to_path_buf(),
        id,
    })
}

impl Drop for PhaseWatch {
    fn drop(&mut self) {
        let shared = shared();
        let mut watcher = lock(&shared.watcher);
        let mine = {
            let mut routes = lock(&shared.routes);
            let mine = routes.get(&self.dir).is_some_and(|(id, _)| *id == self.id);
            if mine {
                routes.remove(&self.dir);
            }
            mine
        };
        if mine && let Some(w) = watcher.as_mut() {
            // Gone already when the folder was removed; nothing left to undo.
            let _ = w.unwatch(&self.dir);
        }
    }
}
