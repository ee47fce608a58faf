//! People's comments on local plans: one JSON file per comment in
//! `<plans>/.forgehand/comments/`, written by `forgehand reply` and read back
//! among the issue's comments, so an escalation on a local plan is answered
//! like one on a forge, and a `/forgehand` command is given like one on a
//! forge (the command's answer is waited for and shown). Files of their own, like reviews, because the daemon
//! holds `state.json` in memory and rewrites it: a CLI writing there would
//! be overwritten.

use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use notify::Watcher;
use serde::{Deserialize, Serialize};

use super::LOCAL_LOGIN;
use super::records::{read_records, record_id, write_record};
use super::state::State;
use crate::forge::Comment;

/// One comment file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentFile {
    /// Unique and increasing: the writing time in nanoseconds (far above the
    /// numbers `state.json` gives forgehand's own comments).
    pub id: u64,
    /// The plan's issue number.
    pub issue: u64,
    pub key: String,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

pub(super) fn comments_dir(plans: &Path) -> PathBuf {
    plans.join(".forgehand").join("comments")
}

/// The issue number of plan `key`, as the daemon numbered it.
pub fn plan_number(plans: &Path, key: &str) -> anyhow::Result<u64> {
    let state = State::load(plans)?;
    match state.issues.get(key) {
        Some(record) => Ok(record.number),
        None => bail!(
            "forgehand knows no plan `{key}` in {} (it numbers a plan when it first reads it)",
            plans.display()
        ),
    }
}

/// Writes `body` as the current user's comment on plan `key`; the path of
/// the comment file and what it holds.
pub fn submit_comment(
    plans: &Path,
    key: &str,
    body: &str,
) -> anyhow::Result<(PathBuf, CommentFile)> {
    let issue = plan_number(plans, key)?;
    let now = Utc::now();
    let id = record_id(now);
    // forgehand's own comments are never answers: a user who happens to be
    // called like it still is a person.
    let author = std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty() && u != LOCAL_LOGIN)
        .unwrap_or_else(|| "human".to_string());
    let comment = CommentFile {
        id,
        issue,
        key: key.to_string(),
        author,
        body: body.to_string(),
        created_at: now,
    };
    let path = write_record(&comments_dir(plans), id, key, &comment)?;
    Ok((path, comment))
}

/// forgehand's answer to `command`, a person's `/forgehand` comment: its
/// first comment on the plan since then that answers the command's author,
/// waited for up to `timeout`. The state file is watched rather than read
/// over and over: the daemon rewrites it (by rename) with every comment.
/// `None` when no answer came in time.
pub fn wait_for_answer(
    plans: &Path,
    command: &CommentFile,
    timeout: Duration,
) -> anyhow::Result<Option<String>> {
    let dir = plans.join(".forgehand");
    let (tx, changes) = std::sync::mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |_: notify::Result<notify::Event>| {
        let _ = tx.send(());
    })
    .context("starting a watch of the local forge's state")?;
    // Watching before the first look, so no answer slips in between.
    watcher
        .watch(&dir, notify::RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(answer) = answer_to(plans, command)? {
            return Ok(Some(answer));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match changes.recv_timeout(left) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => return answer_to(plans, command),
            Err(RecvTimeoutError::Disconnected) => bail!("the watch of {} ended", dir.display()),
        }
    }
}

/// forgehand's comment on the plan answering `command`, if it is there yet.
fn answer_to(plans: &Path, command: &CommentFile) -> anyhow::Result<Option<String>> {
    let state = State::load(plans)?;
    Ok(state.comments.get(&command.issue).and_then(|comments| {
        comments
            .iter()
            .find(|c| {
                c.author == LOCAL_LOGIN
                    && c.created_at >= command.created_at
                    && crate::commands::answers(&c.body, &command.author)
            })
            .map(|c| c.body.clone())
    }))
}

/// The people's comments on issue `n`. Unreadable files are skipped with a
/// warning: one bad file must not hide the others.
pub(super) fn read_comments(plans: &Path, n: u64) -> anyhow::Result<Vec<Comment>> {
    let mut comments: Vec<Comment> = read_records::<CommentFile>(&comments_dir(plans))?
        .into_iter()
        .filter(|c| c.issue == n)
        .map(|c| Comment {
            id: c.id,
            author: c.author,
            body: c.body,
            created_at: c.created_at,
        })
        .collect();
    comments.sort_by_key(|c| c.id);
    Ok(comments)
}
