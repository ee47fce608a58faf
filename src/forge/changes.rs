//! What changed on the forge since the last look, so that a poll costs what
//! changed rather than the size of the backlog: the open backlog (the issues
//! carrying one label) and the open pull requests are kept between polls,
//! and one request, the issues and pull requests changed since (`since`;
//! the issue lists of Forgejo, without `type`, and of GitHub hold pull
//! requests too), brings both up to date. The forges' clients give the
//! lists (`Source`); what to ask and what the answers mean is decided here,
//! once for both. The backlog gets the changed issues applied; the pull
//! request list is read again only when that answer names a pull request
//! whose stamp moved (or when the caller asks for it: a nudge, the safety
//! net). The poller and the merge scanner share the look: whichever polls
//! first asks, the other takes that answer when it is recent enough for it
//! (`as_of`).
//!
//! Forgejo (and GitHub) stamp an issue's `updated_at` on every change that
//! matters here:
//! a label added or removed, closing and reopening, dependencies (each writes
//! a comment, which stamps the issue) and title or body edits (which write
//! the issue row); a pull request's on a push (a comment of its own), a
//! review, closing and merging. A CI status stamps nothing: the merge
//! scanner's safety net and webhooks cover those. An issue that changed is
//! in the answer whatever it became, so one that lost the label or closed
//! is dropped, one that gained it added.
//!
//! Changes are asked for from `CHANGE_SLACK` before the newest stamp seen,
//! on the forge's own clock, not from the time of the last look: a change
//! stamped a little before the newest one but stored after it is not missed.
//! Both forges keep whole seconds.
//! The question stays the same until something changes, and is asked
//! conditionally like the full lists, so an unchanged forge costs it a
//! comparison. Only when that stretch holds more than a page (a burst of
//! changes) and a look started `CHANGE_SLACK` after the newest one has read
//! it (so every change stamped up to then has been seen), do the looks start
//! after the newest stamp, until the next change. The whole backlog is read
//! again every `FULL_EVERY` looks (a deleted issue leaves no change to
//! find), and for good once the forge is seen to ignore `since` (an answer
//! holding older issues); so is the pull request list then.

use std::collections::HashMap;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use super::{ForgeResult, Issue, IssueState, PrNumber, PullRequest};

/// How long a change may take to show after its stamp, at most.
const CHANGE_SLACK: TimeDelta = TimeDelta::seconds(5);
/// Looks for changes between two full listings of the backlog.
const FULL_EVERY: u32 = 10;

/// An issue or a pull request as a look for changes lists it, with its stamp.
pub enum Change {
    Issue(Issue),
    Pull(PrNumber),
}

/// An item of a forge's issue list, as its client reads it.
pub trait Listed {
    fn is_pull(&self) -> bool;
    fn number(&self) -> u64;
    fn updated_at(&self) -> Option<DateTime<Utc>>;
    fn into_issue(self) -> Issue;
}

/// A look's answer, each item with its stamp.
pub fn changes<L: Listed>(listed: Vec<L>) -> Vec<(Change, Option<DateTime<Utc>>)> {
    listed
        .into_iter()
        .map(|item| {
            let updated = item.updated_at();
            let change = match item.is_pull() {
                true => Change::Pull(PrNumber(item.number())),
                false => Change::Issue(item.into_issue()),
            };
            (change, updated)
        })
        .collect()
}

/// The issues of a list, pull requests left out, each with its stamp.
pub fn issues<L: Listed>(listed: Vec<L>) -> Vec<(Issue, Option<DateTime<Utc>>)> {
    listed
        .into_iter()
        .filter(|item| !item.is_pull())
        .map(|item| (item.updated_at(), item))
        .map(|(updated, item)| (item.into_issue(), updated))
        .collect()
}

/// The lists a forge's client reads for `Follow`, each asked conditionally
/// where the forge allows, every page.
#[async_trait]
pub trait Source: Send + Sync {
    /// Issues and pull requests, open or not, stamped at or after `since`
    /// (RFC 3339, whole seconds).
    async fn changed_since(&self, since: &str)
    -> ForgeResult<Vec<(Change, Option<DateTime<Utc>>)>>;
    /// The open issues (never pull requests) carrying `label`.
    async fn labelled(&self, label: &str) -> ForgeResult<Vec<(Issue, Option<DateTime<Utc>>)>>;
    async fn open_pulls(&self) -> ForgeResult<Vec<PullRequest>>;
    /// Drop the kept answers to looks for changes: their `since` will not
    /// be asked again.
    fn forget_looks(&self);
    /// Items in a full page: an answer that long is a burst of changes.
    fn page_size(&self) -> usize;
}

/// The backlog and the open pull requests of one repository, followed
/// through what changed; behind one lock, held across a look, so that two
/// callers polling at once make one look, not two.
#[derive(Default)]
pub struct Follow(tokio::sync::Mutex<Changes>);

/// What is known of the forge as of the last look.
#[derive(Default)]
struct Changes {
    /// The newest `updated_at` seen: a time on the forge's own clock.
    newest: Option<DateTime<Utc>>,
    /// When `newest` last moved, on ours.
    moved: Option<Instant>,
    /// A look started `CHANGE_SLACK` after `newest` moved has read the
    /// stretch before it, and found it long: looks start after `newest`.
    settled: bool,
    /// The `since` of the last look: its kept answer goes when it changes.
    since: Option<String>,
    /// When the last look for changes started: callers that accept an
    /// answer as of then need no look of their own.
    looked: Option<Instant>,
    /// The forge was seen to ignore `since`: the lists are read whole.
    since_ignored: bool,
    backlog: Option<Backlog>,
    /// The open pull requests as last listed.
    pulls: Option<Vec<PullRequest>>,
    /// Pull requests' stamps as the looks for changes showed them: a stamp
    /// that moved is a pull request that changed.
    pull_stamps: HashMap<PrNumber, DateTime<Utc>>,
    /// A look named a pull request that changed after `pulls` was listed.
    pulls_changed: bool,
}

/// The open issues with one label, as of the newest change seen.
struct Backlog {
    label: String,
    /// In the forge's order; issues new to the list go first, as they would
    /// in a listing (newest first).
    issues: Vec<Issue>,
    /// Looks for changes since the last full listing.
    looks: u32,
}

impl Changes {
    fn saw(&mut self, updated: Option<DateTime<Utc>>) {
        if updated > self.newest {
            self.newest = updated;
            self.moved = Some(Instant::now());
            self.settled = false;
        }
    }

    /// Whether the last look started at `as_of` or later.
    fn looked_since(&self, as_of: Instant) -> bool {
        self.looked.is_some_and(|at| at >= as_of)
    }

    /// Apply one changed issue to the kept backlog.
    fn apply(&mut self, issue: Issue) {
        let Some(backlog) = self.backlog.as_mut() else {
            return;
        };
        let at = backlog.issues.iter().position(|i| i.number == issue.number);
        let wanted = issue.state == IssueState::Open && issue.has_label(&backlog.label);
        match (at, wanted) {
            (Some(at), true) => backlog.issues[at] = issue,
            (Some(at), false) => {
                backlog.issues.remove(at);
            }
            (None, true) => backlog.issues.insert(0, issue),
            (None, false) => {}
        }
    }
}

impl Follow {
    /// Open issues (never pull requests) carrying `label`, as of a look
    /// begun at `as_of` or later: the kept list brought up to date, or
    /// every page of it.
    pub async fn backlog(
        &self,
        source: &dyn Source,
        label: &str,
        as_of: Instant,
    ) -> ForgeResult<Vec<Issue>> {
        let mut changes = self.0.lock().await;
        if changes.backlog.as_ref().is_some_and(|b| b.label != label) {
            changes.backlog = None;
        }
        let due = changes
            .backlog
            .as_ref()
            .is_none_or(|b| b.looks >= FULL_EVERY);
        if !due
            && !changes.since_ignored
            && (changes.looked_since(as_of) || look(source, &mut changes).await?)
            && let Some(backlog) = &changes.backlog
        {
            return Ok(backlog.issues.clone());
        }
        full_backlog(source, &mut changes, label).await
    }

    /// The open pull requests, as of a look begun at `as_of` or later: the
    /// kept list when no look since it was read named a pull request that
    /// changed, else every page of it. `again` reads it whatever the looks said.
    pub async fn open_pulls(
        &self,
        source: &dyn Source,
        as_of: Instant,
        again: bool,
    ) -> ForgeResult<Vec<PullRequest>> {
        let mut changes = self.0.lock().await;
        let kept_usable = !again
            && changes.pulls.is_some()
            && !changes.since_ignored
            && (changes.looked_since(as_of) || look(source, &mut changes).await?)
            && !changes.pulls_changed;
        if kept_usable && let Some(pulls) = &changes.pulls {
            return Ok(pulls.clone());
        }
        let pulls = source.open_pulls().await?;
        for pull in &pulls {
            changes.saw(pull.updated_at);
        }
        changes.pulls = Some(pulls.clone());
        changes.pulls_changed = false;
        Ok(pulls)
    }
}

/// Every page of the backlog, kept. What was known of the newest change
/// still holds unless the list shows a newer one.
async fn full_backlog(
    source: &dyn Source,
    changes: &mut Changes,
    label: &str,
) -> ForgeResult<Vec<Issue>> {
    let listed = source.labelled(label).await?;
    let mut issues = Vec::with_capacity(listed.len());
    for (issue, updated) in listed {
        changes.saw(updated);
        issues.push(issue);
    }
    // The first reading is followed by half the usual looks, so that the
    // later ones fall between the polls where the poller's and the merge
    // scanner's safety nets look (every ten).
    let looks = match changes.backlog {
        Some(_) => 0,
        None => FULL_EVERY / 2,
    };
    changes.backlog = Some(Backlog {
        label: label.to_string(),
        issues: issues.clone(),
        looks,
    });
    Ok(issues)
}

/// One look at what changed since the newest change seen, applied to
/// what is kept; `false` when that cannot be told (nothing stamped yet,
/// or a forge that ignores `since`): then the lists are read whole.
async fn look(source: &dyn Source, changes: &mut Changes) -> ForgeResult<bool> {
    let Some(newest) = changes.newest else {
        return Ok(false);
    };
    let started = Instant::now();
    let since = if changes.settled {
        newest + TimeDelta::seconds(1)
    } else {
        newest - CHANGE_SLACK
    };
    // Whole seconds, as the forges keep them.
    let since = DateTime::from_timestamp(since.timestamp(), 0).unwrap_or(since);
    let since_s = since.to_rfc3339_opts(SecondsFormat::Secs, true);
    if changes.since.as_ref() != Some(&since_s) {
        // Only these looks ask with `since`: the answers kept for earlier
        // ones will not be asked for again.
        source.forget_looks();
        changes.since = Some(since_s.clone());
    }
    let changed = source.changed_since(&since_s).await?;
    let wide = changed.len() >= source.page_size();
    for (change, updated) in changed {
        if updated.is_some_and(|t| t < since) {
            tracing::info!(
                "the forge ignores `since` when listing issues: every poll reads the whole lists"
            );
            changes.since_ignored = true;
            return Ok(false);
        }
        changes.saw(updated);
        match change {
            Change::Pull(n) => {
                if let Some(t) = updated
                    && changes.pull_stamps.insert(n, t) != Some(t)
                {
                    changes.pulls_changed = true;
                }
            }
            Change::Issue(issue) => changes.apply(issue),
        }
    }
    // Stamps before this look's start cannot come back unchanged.
    changes.pull_stamps.retain(|_, t| *t >= since);
    // Starting later saves requests only when the stretch before the
    // newest change takes more than a page (a burst of changes); else
    // the same question keeps being answered `304`.
    let moved = changes.moved.unwrap_or(started);
    let waited = started.saturating_duration_since(moved).as_secs_f64();
    if wide && waited >= CHANGE_SLACK.as_seconds_f64() {
        changes.settled = true;
    }
    changes.looked = Some(started);
    if let Some(backlog) = changes.backlog.as_mut() {
        backlog.looks += 1;
    }
    Ok(true)
}
