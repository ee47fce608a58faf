//! `<key>.report.md`: what became of a plan, written beside it. Merged and
//! blocked plans get theirs in `done/` or `blocked/`; a plan that cannot be used,
//! or whose merge is refused, gets one in the top folder saying what to fix.
//! Titles, comments and errors are written with their control characters
//! escaped: a report is read with `cat` as often as in an editor.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;

use super::state::{Location, write_atomically};
use super::{Inner, LOCAL_LOGIN, git, review};
use crate::forge::ReviewState;
use crate::text::{escape_line, escape_lines};

/// `<plans>[/<folder>]/<key>.report.md`.
pub(super) fn report_path(plans: &Path, key: &str, location: Location) -> PathBuf {
    let dir = match location.folder() {
        Some(folder) => plans.join(folder),
        None => plans.to_path_buf(),
    };
    dir.join(format!("{key}.report.md"))
}

/// The file name (without `.md`) a plan moved into `location`'s folder gets:
/// `<key>`, or `<key>~2`, `<key>~3`, … when an earlier plan with the same key
/// (or its report) lies there already, so nothing there is ever overwritten.
/// `~` is not allowed in a key, so no plan's own name is ever taken.
pub(super) fn free_stem(plans: &Path, key: &str, location: Location) -> String {
    let dir = match location.folder() {
        Some(folder) => plans.join(folder),
        None => plans.to_path_buf(),
    };
    let taken = |stem: &str| {
        dir.join(format!("{stem}.md")).exists() || dir.join(format!("{stem}.report.md")).exists()
    };
    if !taken(key) {
        return key.to_string();
    }
    (2u64..)
        .map(|n| format!("{key}~{n}"))
        .find(|stem| !taken(stem))
        .expect("some number is free")
}

/// The report of a plan forgehand cannot use; the plan itself stays where it is.
pub(super) fn write_invalid(plans: &Path, key: &str, error: &str) -> anyhow::Result<()> {
    let (shown, error) = (escape_line(key), escape_lines(error));
    let text = format!(
        "# {shown}: invalid\n\n\
         - status: invalid\n\
         - checked: {}\n\n\
         forgehand cannot use this plan and does not pick it:\n\n    {error}\n\n\
         Fix the plan file; this report goes away once it reads correctly.\n",
        Utc::now().to_rfc3339()
    );
    write_atomically(&report_path(plans, key, Location::Top), text.as_bytes())
}

/// A merge the repository refused for now; the plan stays open and is merged on a
/// later attempt.
pub(super) fn write_merge_refused(plans: &Path, key: &str, error: &str) -> anyhow::Result<()> {
    let (shown, error) = (escape_line(key), escape_lines(error));
    let text = format!(
        "# {shown}: waiting to merge\n\n\
         - status: merge refused\n\
         - at: {}\n\n\
         The merge was refused; forgehand tries again later:\n\n    {error}\n",
        Utc::now().to_rfc3339()
    );
    write_atomically(&report_path(plans, key, Location::Top), text.as_bytes())
}

/// Drops a top-folder report that no longer applies (the plan reads again, or moved).
pub(super) fn remove_top(plans: &Path, key: &str) {
    let path = report_path(plans, key, Location::Top);
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("removing {}: {e}", path.display());
    }
}

impl Inner {
    /// Writes the outcome report of plan `key` into the folder it was moved
    /// to, beside it: `<stem>.report.md` for the plan moved to `<stem>.md`.
    pub(super) async fn write_outcome(
        &self,
        key: &str,
        stem: &str,
        number: u64,
        title: &str,
        location: Location,
    ) -> anyhow::Result<()> {
        let branch = crate::paths::branch_name(key);
        let (pull, last_comment) = {
            let state = self.state();
            let pull = state
                .pulls
                .values()
                .filter(|p| p.head == branch)
                .max_by_key(|p| p.number)
                .cloned();
            let last_comment = state
                .comments
                .get(&number)
                .and_then(|cs| cs.iter().rev().find(|c| c.author == LOCAL_LOGIN))
                .map(|c| c.body.clone());
            (pull, last_comment)
        };
        let status = match (location, &pull) {
            (Location::Blocked, _) => "blocked",
            (_, Some(p)) if p.merged => "merged",
            _ => "closed without a merge",
        };
        let mut text = format!(
            "# {}\n\n- plan: {}\n- status: {status}\n",
            escape_line(title),
            escape_line(key)
        );
        let _ = writeln!(text, "- branch: {}", escape_line(&branch));
        match &pull {
            Some(p) => {
                let rounds = review::read_reviews(&self.plans, p.number)
                    .unwrap_or_default()
                    .iter()
                    .filter(|r| r.state == ReviewState::ChangesRequested)
                    .count();
                let _ = writeln!(text, "- pull request: #{}", p.number);
                let _ = writeln!(
                    text,
                    "- merge commit: {}",
                    p.merge_commit.as_deref().unwrap_or("none")
                );
                let _ = writeln!(text, "- CI attempts: {}", p.ci_attempts);
                let _ = writeln!(text, "- review rounds: {rounds}");
            }
            None => text.push_str("- pull request: none\n"),
        }
        let _ = writeln!(text, "- at: {}", Utc::now().to_rfc3339());
        let stat = match &pull {
            Some(p) => match &p.merge_commit {
                Some(merge) => {
                    let parent = format!("{merge}^1");
                    git(&self.repo, ["diff", "--stat", &parent, merge]).await
                }
                None => {
                    let range = format!("{}...refs/heads/{branch}", self.primary);
                    git(&self.repo, ["diff", "--stat", &range]).await
                }
            },
            None => Ok(String::new()),
        };
        let stat = stat.unwrap_or_else(|e| format!("(unknown: {e:#})"));
        // File names in the diff are the agent's choice.
        let stat = escape_lines(&stat);
        if !stat.is_empty() {
            let _ = write!(text, "\n## Files changed\n\n```\n{stat}\n```\n");
        }
        if let Some(p) = &pull {
            let summary = escape_lines(p.body.trim());
            let _ = write!(text, "\n## The agent's summary\n\n{summary}\n");
        }
        if location == Location::Blocked
            && let Some(comment) = last_comment
        {
            let why = escape_lines(comment.trim());
            let _ = write!(text, "\n## Why it is blocked\n\n{why}\n");
        }
        let path = report_path(&self.plans, stem, location);
        write_atomically(&path, text.as_bytes())
            .with_context(|| format!("writing the report of plan {key}"))
    }
}
