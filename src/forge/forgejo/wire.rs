//! Forgejo's JSON shapes (swagger definitions `Issue`, `Label`, `Comment`,
//! `PullRequest`, `PullReview`, `PullReviewComment`, `CombinedStatus`, `User`,
//! `RepoCollaboratorPermission`),
//! read tolerantly, and their mapping to the forge-independent domain types.
//!
//! Only the identifying fields are required; everything else may be missing or
//! `null`, because Forgejo and Gitea versions differ in what they fill in.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::forge::{
    CombinedStatus, Comment, CommitSha, CommitStatus, Issue, IssueNumber, IssueState, PrNumber,
    PullRequest, Review, ReviewComment, ReviewState, StatusState,
};

#[derive(Debug, Deserialize)]
pub(super) struct WireUser {
    #[serde(default)]
    pub login: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireLabel {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireIssue {
    number: u64,
    title: Option<String>,
    body: Option<String>,
    labels: Option<Vec<WireLabel>>,
    state: Option<String>,
    created_at: Option<String>,
    /// Stamped by Forgejo on every change (labels, state, title, body, a
    /// comment): what `backlog` reads changes by.
    updated_at: Option<String>,
    user: Option<WireUser>,
    html_url: Option<String>,
    /// Non-null exactly when the "issue" is a pull request.
    pull_request: Option<serde_json::Value>,
}

impl WireIssue {
    pub fn is_pull(&self) -> bool {
        self.pull_request.as_ref().is_some_and(|v| !v.is_null())
    }

    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        time(self.updated_at.as_deref())
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn into_domain(self) -> Issue {
        Issue {
            number: IssueNumber(self.number),
            title: self.title.unwrap_or_default(),
            body: self.body.unwrap_or_default(),
            labels: self
                .labels
                .unwrap_or_default()
                .into_iter()
                .map(|l| l.name)
                .collect(),
            state: state(self.state.as_deref()),
            created_at: time(self.created_at.as_deref()).unwrap_or(DateTime::UNIX_EPOCH),
            author: login(self.user),
            html_url: self.html_url.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireComment {
    id: u64,
    body: Option<String>,
    user: Option<WireUser>,
    created_at: Option<String>,
}

impl WireComment {
    pub fn into_domain(self) -> Comment {
        Comment {
            id: self.id,
            author: login(self.user),
            body: self.body.unwrap_or_default(),
            created_at: time(self.created_at.as_deref()).unwrap_or(DateTime::UNIX_EPOCH),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct WireBranch {
    #[serde(rename = "ref")]
    pub ref_: Option<String>,
    pub sha: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WirePull {
    number: u64,
    title: Option<String>,
    body: Option<String>,
    pub head: Option<WireBranch>,
    pub base: Option<WireBranch>,
    state: Option<String>,
    merged: Option<bool>,
    mergeable: Option<bool>,
    merge_commit_sha: Option<String>,
    html_url: Option<String>,
    user: Option<WireUser>,
    updated_at: Option<String>,
}

impl WirePull {
    pub fn into_domain(self) -> PullRequest {
        let head = self.head.unwrap_or_default();
        let base = self.base.unwrap_or_default();
        PullRequest {
            number: PrNumber(self.number),
            title: self.title.unwrap_or_default(),
            body: self.body.unwrap_or_default(),
            head_ref: head.ref_.unwrap_or_default(),
            head_sha: CommitSha(head.sha.unwrap_or_default()),
            base_ref: base.ref_.unwrap_or_default(),
            state: state(self.state.as_deref()),
            merged: self.merged.unwrap_or(false),
            mergeable: self.mergeable,
            merge_commit_sha: self
                .merge_commit_sha
                .filter(|s| !s.is_empty())
                .map(CommitSha),
            html_url: self.html_url.unwrap_or_default(),
            author: login(self.user),
            updated_at: time(self.updated_at.as_deref()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireReview {
    id: u64,
    user: Option<WireUser>,
    state: Option<String>,
    body: Option<String>,
    commit_id: Option<String>,
    dismissed: Option<bool>,
    stale: Option<bool>,
    official: Option<bool>,
    submitted_at: Option<String>,
}

impl WireReview {
    pub fn into_domain(self) -> Review {
        Review {
            id: self.id,
            author: login(self.user),
            state: match self.state.as_deref().unwrap_or_default() {
                "APPROVED" => ReviewState::Approved,
                "REQUEST_CHANGES" => ReviewState::ChangesRequested,
                "COMMENT" => ReviewState::Commented,
                "PENDING" => ReviewState::Pending,
                "REQUEST_REVIEW" => ReviewState::RequestReview,
                _ => ReviewState::Other,
            },
            body: self.body.unwrap_or_default(),
            commit_id: CommitSha(self.commit_id.unwrap_or_default()),
            dismissed: self.dismissed.unwrap_or(false),
            stale: self.stale.unwrap_or(false),
            // Missing reads as not official: a review forgehand cannot place
            // must never merge anything.
            official: self.official.unwrap_or(false),
            submitted_at: time(self.submitted_at.as_deref()),
        }
    }
}

/// `GET …/collaborators/{login}/permission`.
#[derive(Debug, Deserialize)]
pub(super) struct WirePermission {
    permission: Option<String>,
}

impl WirePermission {
    /// Forgejo's access modes are none, read, write, admin and owner; anything
    /// else (a mode of a later version) does not count as write access.
    pub fn may_write(&self) -> bool {
        let mode = self.permission.as_deref().unwrap_or_default();
        ["write", "admin", "owner"]
            .iter()
            .any(|m| mode.eq_ignore_ascii_case(m))
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireReviewComment {
    id: u64,
    user: Option<WireUser>,
    path: Option<String>,
    position: Option<u64>,
    body: Option<String>,
}

impl WireReviewComment {
    pub fn into_domain(self) -> ReviewComment {
        ReviewComment {
            id: self.id,
            author: login(self.user),
            path: self.path.unwrap_or_default(),
            // Forgejo sends 0 when the comment is not tied to a diff line.
            position: self.position.filter(|&p| p != 0),
            body: self.body.unwrap_or_default(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireStatus {
    context: Option<String>,
    status: Option<String>,
    description: Option<String>,
    target_url: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireCombinedStatus {
    pub state: Option<String>,
    pub total_count: Option<u64>,
    pub statuses: Option<Vec<WireStatus>>,
}

/// Builds the domain roll-up from the first page's `state`/`total_count` and the
/// statuses of every page.
pub(super) fn combined_status(
    state: Option<&str>,
    total_count: Option<u64>,
    statuses: Vec<WireStatus>,
) -> CombinedStatus {
    let none_yet = total_count == Some(0) || state.is_none_or(str::is_empty);
    CombinedStatus {
        state: if none_yet {
            None
        } else {
            Some(status_state(state.unwrap_or_default()))
        },
        statuses: statuses
            .into_iter()
            .map(|s| CommitStatus {
                context: s.context.unwrap_or_default(),
                state: status_state(s.status.as_deref().unwrap_or_default()),
                description: s.description.unwrap_or_default(),
                target_url: s.target_url.unwrap_or_default(),
            })
            .collect(),
    }
}

/// An unknown state reads as pending: forgehand must never merge on a status it
/// does not understand, and waiting runs into the CI timeout visibly.
fn status_state(s: &str) -> StatusState {
    match s {
        "success" => StatusState::Success,
        "error" => StatusState::Error,
        "failure" => StatusState::Failure,
        "warning" => StatusState::Warning,
        _ => StatusState::Pending,
    }
}

fn state(s: Option<&str>) -> IssueState {
    match s {
        Some("closed") => IssueState::Closed,
        _ => IssueState::Open,
    }
}

fn login(user: Option<WireUser>) -> String {
    user.map(|u| u.login).unwrap_or_default()
}

/// RFC 3339; a malformed time is treated as absent rather than failing the call.
fn time(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}
