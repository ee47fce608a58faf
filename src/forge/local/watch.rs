//! Watching the plans folder (inotify through `notify`), so a new plan is picked
//! within a second and a new review acted on at once instead of at the next poll.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use super::Inner;
use super::comments::{CommentFile, comments_dir};
use super::records::{is_record_file, read_record};
use super::review::{ReviewFile, reviews_dir};
use crate::forge::{IssueNumber, Nudge, PrNumber};

impl Inner {
    pub(super) fn start_watching(
        self: &Arc<Self>,
        nudges: UnboundedSender<Nudge>,
    ) -> anyhow::Result<()> {
        let reviews = reviews_dir(&self.plans);
        let comments = comments_dir(&self.plans);
        for dir in [&reviews, &comments] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        *self.nudges.lock().unwrap_or_else(|e| e.into_inner()) = Some(nudges.clone());
        let plans = self.plans.clone();
        let reviews_at = reviews.clone();
        let comments_at = comments.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let event = match event {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::warn!("watching {}: {e}", plans.display());
                        // Something may have been missed: look at everything.
                        let _ = nudges.send(Nudge::Repo);
                        return;
                    }
                };
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                for path in &event.paths {
                    if let Some(nudge) = nudge_for(path, &plans, &reviews_at, &comments_at) {
                        let _ = nudges.send(nudge);
                    }
                }
            })
            .context("starting the plans folder watcher")?;
        watcher
            .watch(&self.plans, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", self.plans.display()))?;
        for dir in [&reviews, &comments] {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .with_context(|| format!("watching {}", dir.display()))?;
        }
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
        Ok(())
    }
}

/// What a changed path means: a plan in the top folder is news for the poller,
/// a review file for the dev actor of its pull request, a comment file for
/// the dev actor of its issue.
fn nudge_for(path: &Path, plans: &Path, reviews: &Path, comments: &Path) -> Option<Nudge> {
    let parent = path.parent()?;
    let name = path.file_name()?.to_string_lossy();
    if parent == comments {
        if !is_record_file(path) || !path.is_file() {
            return None;
        }
        return read_record::<CommentFile>(path)
            .ok()
            .map(|c| Nudge::Issue(IssueNumber(c.issue)));
    }
    if parent == reviews {
        if !is_record_file(path) || !path.is_file() {
            return None;
        }
        // A file still being written does not parse yet; its last write
        // (or the rename of an atomic write) brings the nudge.
        return read_record::<ReviewFile>(path)
            .ok()
            .map(|review| Nudge::Pull(PrNumber(review.pr)));
    }
    let plan = parent == plans
        && name.ends_with(".md")
        && !name.ends_with(".report.md")
        && !name.starts_with('.');
    plan.then_some(Nudge::Repo)
}
