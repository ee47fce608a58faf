//! CI on GitHub comes two ways: GitHub Actions and other apps report **check
//! runs**, older integrations post **commit statuses**. `fold` makes one
//! `CombinedStatus` of both, the roll-up every forge gives forgehand:
//!
//! - nothing reported yet: no state (`None`), like a commit without statuses;
//! - pending while any check run is not completed, or a status is pending;
//! - green only when every check run concluded success, neutral or skipped and
//!   the combined status is success, or there are no statuses at all (GitHub
//!   calls a commit without statuses "pending", which here it is not when
//!   check runs report);
//! - failure otherwise, each failing check run becoming a status of its own
//!   (context = its name, description = its output's title or summary, link =
//!   its page), so the agent is told which check failed.

use serde::Deserialize;

use super::{GithubClient, PER_PAGE};
use crate::forge::{CombinedStatus, CommitSha, CommitStatus, ForgeResult, StatusState};

#[derive(Debug, Deserialize)]
struct WireCheckRuns {
    #[serde(default)]
    check_runs: Vec<WireCheckRun>,
}

#[derive(Debug, Deserialize)]
struct WireCheckRun {
    #[serde(default)]
    name: String,
    /// `queued`, `in_progress`, `completed` (and `waiting`, `requested`,
    /// `pending` for Actions jobs not started yet).
    status: Option<String>,
    /// Set once completed: `success`, `failure`, `neutral`, `cancelled`,
    /// `skipped`, `timed_out`, `action_required`, `stale`.
    conclusion: Option<String>,
    html_url: Option<String>,
    details_url: Option<String>,
    output: Option<WireOutput>,
}

#[derive(Debug, Default, Deserialize)]
struct WireOutput {
    title: Option<String>,
    summary: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireCombinedStatus {
    /// `success`, `pending` or `failure`; `pending` also when there are no statuses.
    state: Option<String>,
    total_count: Option<u64>,
    #[serde(default)]
    statuses: Vec<WireStatus>,
}

#[derive(Debug, Deserialize)]
struct WireStatus {
    context: Option<String>,
    state: Option<String>,
    description: Option<String>,
    target_url: Option<String>,
}

/// Check run conclusions that let a head merge.
const PASSING: [&str; 3] = ["success", "neutral", "skipped"];

impl WireCheckRun {
    fn completed(&self) -> bool {
        self.status.as_deref() == Some("completed")
    }

    fn passed(&self) -> bool {
        self.conclusion
            .as_deref()
            .is_some_and(|c| PASSING.contains(&c))
    }

    fn into_status(self) -> CommitStatus {
        let state = if !self.completed() {
            StatusState::Pending
        } else if self.passed() {
            StatusState::Success
        } else {
            match self.conclusion.as_deref() {
                // The check itself could not run to the end.
                Some("cancelled" | "timed_out" | "stale") => StatusState::Error,
                _ => StatusState::Failure,
            }
        };
        let output = self.output.unwrap_or_default();
        let description = [output.title, output.summary]
            .into_iter()
            .flatten()
            .find(|t| !t.trim().is_empty())
            .unwrap_or_else(|| match (&self.status, &self.conclusion) {
                (_, Some(conclusion)) => conclusion.clone(),
                (Some(status), None) => status.clone(),
                (None, None) => String::new(),
            });
        CommitStatus {
            context: self.name,
            state,
            description,
            target_url: self.html_url.or(self.details_url).unwrap_or_default(),
        }
    }
}

/// The roll-up of a head's check runs (every page) and its combined commit
/// status (`statuses` from every page, `state` and `total_count` from the first).
fn fold(
    check_runs: Vec<WireCheckRun>,
    combined: Option<&WireCombinedStatus>,
    statuses: Vec<WireStatus>,
) -> CombinedStatus {
    let has_statuses = combined.is_some_and(|c| c.total_count.unwrap_or(statuses.len() as u64) > 0)
        || !statuses.is_empty();
    let runs_pending = check_runs.iter().any(|r| !r.completed());
    let runs_failed = check_runs.iter().any(|r| r.completed() && !r.passed());
    let status_state = combined.and_then(|c| c.state.as_deref());
    let state = if check_runs.is_empty() && !has_statuses {
        None
    } else if runs_pending || (has_statuses && status_state == Some("pending")) {
        Some(StatusState::Pending)
    } else if !runs_failed && (!has_statuses || status_state == Some("success")) {
        Some(StatusState::Success)
    } else {
        Some(StatusState::Failure)
    };
    let mut all: Vec<CommitStatus> = check_runs
        .into_iter()
        .map(WireCheckRun::into_status)
        .collect();
    all.extend(statuses.into_iter().map(|s| CommitStatus {
        context: s.context.unwrap_or_default(),
        state: status_state_of(s.state.as_deref().unwrap_or_default()),
        description: s.description.unwrap_or_default(),
        target_url: s.target_url.unwrap_or_default(),
    }));
    CombinedStatus {
        state,
        statuses: all,
    }
}

/// An unknown state reads as pending: forgehand must never merge on a status it
/// does not understand, and waiting runs into the CI timeout visibly.
fn status_state_of(s: &str) -> StatusState {
    match s {
        "success" => StatusState::Success,
        "error" => StatusState::Error,
        "failure" => StatusState::Failure,
        _ => StatusState::Pending,
    }
}

impl GithubClient {
    /// Check runs (every page) and the combined commit status (every page) of
    /// `sha`, asked for at once, folded into one roll-up.
    pub(super) async fn fold_status(&self, sha: &CommitSha) -> ForgeResult<CombinedStatus> {
        let runs_url = self.api.repo_url(
            &["commits", &sha.0, "check-runs"],
            &[("per_page", PER_PAGE)],
        );
        let status_url = self
            .api
            .repo_url(&["commits", &sha.0, "status"], &[("per_page", PER_PAGE)]);
        let runs = self.api.list(runs_url, false, |bytes| {
            serde_json::from_slice::<WireCheckRuns>(bytes).map(|page| page.check_runs)
        });
        // The roll-up's `state` and `total_count` come with every page; the first
        // page's are kept, the statuses of all of them.
        let pages = self.api.list(status_url, false, |bytes| {
            serde_json::from_slice::<WireCombinedStatus>(bytes).map(|page| vec![page])
        });
        let (runs, pages) = tokio::try_join!(runs, pages)?;
        let mut pages = pages.into_iter();
        let first = pages.next();
        let mut statuses = Vec::new();
        let first = first.map(|mut page| {
            statuses.append(&mut page.statuses);
            page
        });
        for mut page in pages {
            statuses.append(&mut page.statuses);
        }
        Ok(fold(runs, first.as_ref(), statuses))
    }
}
