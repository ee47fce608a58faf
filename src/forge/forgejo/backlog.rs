//! The open issues carrying one label (the backlog), kept between polls and
//! brought up to date with the issues changed since (`since`), so that a
//! poll of a big backlog costs one request rather than a page per fifty
//! issues.
//!
//! Forgejo stamps an issue's `updated_at` on every change that matters here:
//! a label added or removed, closing and reopening, dependencies (each writes
//! a comment, which stamps the issue) and title or body edits (which write
//! the issue row). An issue that changed is in the answer whatever it became,
//! so one that lost the label or closed is dropped, one that gained it added.
//!
//! Changes are asked for from `CHANGE_SLACK` before the newest stamp seen,
//! on the forge's own clock, not from the time of the last look: a change
//! stamped a little before the newest one but stored after it is not missed.
//! The question stays the same until something changes, and is asked
//! conditionally like the full list, so an unchanged backlog costs the forge
//! a comparison. Only when that stretch holds more than a page of issues (a
//! burst of changes) and a look started `CHANGE_SLACK` after the newest one
//! has read it (so every change stamped up to then has been seen), do the
//! looks start after the newest stamp, until the next change. The whole list is read again every `FULL_EVERY`
//! looks (a deleted issue leaves no change to find), and for good once the
//! forge is seen to ignore `since` (an answer holding older issues).

use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use super::ForgejoClient;
use super::wire::WireIssue;
use crate::forge::{ForgeResult, Issue, IssueState};

/// How long a change may take to show after its stamp, at most.
const CHANGE_SLACK: TimeDelta = TimeDelta::seconds(5);
/// Looks for changes between two full listings.
const FULL_EVERY: u32 = 10;

/// The open issues with `label`, as of the newest change the forge showed.
pub(super) struct Backlog {
    label: String,
    /// In the forge's order; issues new to the list go first, as they would
    /// in a listing (newest first).
    issues: Vec<Issue>,
    /// The newest `updated_at` seen: a time on the forge's own clock.
    newest: Option<DateTime<Utc>>,
    /// When `newest` last moved, on ours.
    moved: Instant,
    /// A look started `CHANGE_SLACK` after `newest` moved has read the
    /// stretch before it, and found it long: looks start after `newest`.
    settled: bool,
    /// The `since` of the last look: its kept answer goes when it changes.
    since: Option<String>,
    /// Looks for changes since the last full listing.
    looks: u32,
}

impl Backlog {
    fn saw(&mut self, updated: Option<DateTime<Utc>>) {
        if updated > self.newest {
            self.newest = updated;
            self.moved = Instant::now();
            self.settled = false;
        }
    }
}

impl ForgejoClient {
    /// Open issues (never pull requests) carrying `label`: the kept list
    /// brought up to date, or every page of it.
    pub(super) async fn backlog(&self, label: &str) -> ForgeResult<Vec<Issue>> {
        let kept = self
            .backlog
            .lock()
            .expect("backlog poisoned")
            .take()
            .filter(|b| b.label == label);
        let since_works = !self.since_ignored.load(Ordering::Relaxed);
        let backlog = match kept {
            Some(kept) if since_works && kept.looks < FULL_EVERY => {
                match self.backlog_changes(kept).await? {
                    Some(backlog) => backlog,
                    None => self.full_backlog(label, None).await?,
                }
            }
            kept => self.full_backlog(label, kept.as_ref()).await?,
        };
        let issues = backlog.issues.clone();
        *self.backlog.lock().expect("backlog poisoned") = Some(backlog);
        Ok(issues)
    }

    /// Every page of the backlog. What `previous` (the reading it replaces)
    /// knew of the newest change still holds unless the list shows a newer one.
    async fn full_backlog(&self, label: &str, previous: Option<&Backlog>) -> ForgeResult<Backlog> {
        let query = [("state", "open"), ("type", "issues"), ("labels", label)];
        let listed: Vec<WireIssue> = self.list_all_conditional(&["issues"], &query).await?;
        let mut backlog = Backlog {
            label: label.to_string(),
            issues: Vec::with_capacity(listed.len()),
            newest: None,
            moved: Instant::now(),
            settled: false,
            since: None,
            // The first reading is followed by half the usual looks, so that
            // the later ones fall between the polls where the poller's and the
            // merge scanner's safety nets look (every ten).
            looks: if previous.is_some() {
                0
            } else {
                FULL_EVERY / 2
            },
        };
        for issue in listed.into_iter().filter(|i| !i.is_pull()) {
            backlog.saw(issue.updated_at());
            backlog.issues.push(issue.into_domain());
        }
        // The changes read before saw every issue, not only the backlog's:
        // their newest stamp stays the place to ask from.
        if let Some(previous) = previous
            && previous.newest >= backlog.newest
        {
            backlog.newest = previous.newest;
            backlog.moved = previous.moved;
            backlog.settled = previous.settled;
            backlog.since = previous.since.clone();
        }
        Ok(backlog)
    }

    /// `kept` with the issues changed since its newest change applied;
    /// `None` when that cannot be told (nothing stamped yet, or a forge
    /// that ignores `since`): then the whole list is read.
    async fn backlog_changes(&self, mut kept: Backlog) -> ForgeResult<Option<Backlog>> {
        let Some(newest) = kept.newest else {
            return Ok(None);
        };
        let started = Instant::now();
        let since = if kept.settled {
            newest + TimeDelta::seconds(1)
        } else {
            newest - CHANGE_SLACK
        };
        // Whole seconds, as Forgejo keeps them.
        let since = DateTime::from_timestamp(since.timestamp(), 0).unwrap_or(since);
        let since_s = since.to_rfc3339_opts(SecondsFormat::Secs, true);
        if kept.since.as_ref() != Some(&since_s) {
            // Only these looks ask with `since`: the answers kept for earlier
            // ones will not be asked for again.
            self.forget_pages(|url| url.contains("since="));
            kept.since = Some(since_s.clone());
        }
        let query = [
            ("state", "all"),
            ("type", "issues"),
            ("since", since_s.as_str()),
        ];
        let changed: Vec<WireIssue> = self.list_all_conditional(&["issues"], &query).await?;
        let wide = changed.len() >= super::PAGE_LIMIT;
        for issue in changed {
            let updated = issue.updated_at();
            if updated.is_some_and(|t| t < since) {
                tracing::info!(
                    "the forge ignores `since` when listing issues: every poll reads the whole list"
                );
                self.since_ignored.store(true, Ordering::Relaxed);
                return Ok(None);
            }
            if issue.is_pull() {
                continue;
            }
            kept.saw(updated);
            let issue = issue.into_domain();
            let at = kept.issues.iter().position(|i| i.number == issue.number);
            let wanted = issue.state == IssueState::Open && issue.has_label(&kept.label);
            match (at, wanted) {
                (Some(at), true) => kept.issues[at] = issue,
                (Some(at), false) => {
                    kept.issues.remove(at);
                }
                (None, true) => kept.issues.insert(0, issue),
                (None, false) => {}
            }
        }
        // Starting later saves requests only when the stretch before the
        // newest change takes more than a page (a burst of changes); else
        // the same question keeps being answered `304`.
        let waited = started.saturating_duration_since(kept.moved).as_secs_f64();
        if wide && waited >= CHANGE_SLACK.as_seconds_f64() {
            kept.settled = true;
        }
        kept.looks += 1;
        Ok(Some(kept))
    }
}
