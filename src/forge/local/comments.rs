//! People's comments on local plans: one JSON file per comment in
//! `<plans>/.forgehand/comments/`, written by `forgehand reply` and read back
//! among the issue's comments, so an escalation on a local plan is answered
//! like one on a forge. Files of their own, like reviews, because the daemon
//! holds `state.json` in memory and rewrites it: a CLI writing there would
//! be overwritten.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::LOCAL_LOGIN;
use super::review::is_review_file;
use super::state::{State, write_atomically};
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
/// the comment file.
pub fn submit_comment(plans: &Path, key: &str, body: &str) -> anyhow::Result<PathBuf> {
    let issue = plan_number(plans, key)?;
    let now = Utc::now();
    let id = now
        .timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or_default();
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
    let path = comments_dir(plans).join(format!("{id}-{key}.json"));
    let bytes = serde_json::to_vec_pretty(&comment).context("encoding the comment")?;
    write_atomically(&path, &bytes)?;
    Ok(path)
}

pub(super) fn read_comment(path: &Path) -> anyhow::Result<CommentFile> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))
}

/// The people's comments on issue `n`. Unreadable files are skipped with a
/// warning: one bad file must not hide the others.
pub(super) fn read_comments(plans: &Path, n: u64) -> anyhow::Result<Vec<Comment>> {
    let dir = comments_dir(plans);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut comments = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if !is_review_file(&path) {
            continue;
        }
        match read_comment(&path) {
            Ok(c) if c.issue == n => comments.push(Comment {
                id: c.id,
                author: c.author,
                body: c.body,
                created_at: c.created_at,
            }),
            Ok(_) => {}
            Err(e) => tracing::warn!("skipping a comment file: {e:#}"),
        }
    }
    comments.sort_by_key(|c| c.id);
    Ok(comments)
}
