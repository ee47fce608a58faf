//! People's comments on local plans: one JSON file per comment in
//! `<plans>/.forgehand/comments/`, written by `forgehand reply` and read back
//! among the issue's comments, so an escalation on a local plan is answered
//! like one on a forge. Files of their own, like reviews, because the daemon
//! holds `state.json` in memory and rewrites it: a CLI writing there would
//! be overwritten.

use std::path::{Path, PathBuf};

use anyhow::bail;
use chrono::{DateTime, Utc};
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
/// the comment file.
pub fn submit_comment(plans: &Path, key: &str, body: &str) -> anyhow::Result<PathBuf> {
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
    write_record(&comments_dir(plans), id, key, &comment)
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
