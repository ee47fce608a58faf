//! The inotify watch on a session folder: every completed write of the phase
//! file becomes a `PhaseFileChanged` message to the dev actor, and of an
//! agent's marker file (`agent::Signal`) an `AgentSignal`.

use std::path::Path;

use anyhow::Context;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher};
use ractor::ActorRef;

use super::DevMsg;
use crate::agent::Signal;

/// Watch `dir` for writes of its `phase` file. Only completed writes count
/// (close after writing, or a rename into place), so a half-written file is
/// never read.
pub fn watch_phase_file(
    dir: &Path,
    actor: ActorRef<DevMsg>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        let completed = matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(_))
        );
        if !completed {
            return;
        }
        for name in event.paths.iter().filter_map(|p| p.file_name()) {
            let name = name.to_string_lossy();
            let msg = if name == "phase" {
                DevMsg::PhaseFileChanged
            } else if let Some(signal) = Signal::from_file_name(&name) {
                DevMsg::AgentSignal(signal)
            } else {
                continue;
            };
            // The actor may be stopping; a lost nudge then does not matter.
            let _ = actor.send_message(msg);
        }
    })
    .context("creating an inotify watcher")?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    Ok(watcher)
}
