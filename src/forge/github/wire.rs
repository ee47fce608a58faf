//! GitHub's JSON shapes (the OpenAPI schemas `issue`, `label`, `issue-comment`,
//! `pull-request` and `pull-request-simple`, `pull-request-review`,
//! `review-comment`, `repository-collaborator-permission`, `check-run`,
//! `combined-commit-status`, `simple-user`, `integration`), read tolerantly, and
//! their mapping to the forge-independent domain types.
//!
//! Only the identifying fields are required: GitHub Enterprise versions and the
//! list and single-item variants of one object differ in what they fill in.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::forge::{
    Comment, CommitSha, Issue, IssueNumber, IssueState, PrNumber, PullRequest, Review,
    ReviewComment, ReviewState,
};

#[derive(Debug, Deserialize)]
pub(super) struct WireUser {
    #[serde(default)]
    pub login: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireLabel {
    pub name: String,
}

/// An issue's label: GitHub describes it as a name or a label object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LabelRef {
    Name(String),
    Label { name: Option<String> },
}

impl LabelRef {
    fn into_name(self) -> Option<String> {
        match self {
            LabelRef::Name(name) => Some(name),
            LabelRef::Label { name } => name,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireIssue {
    number: u64,
    title: Option<String>,
    body: Option<String>,
    labels: Option<Vec<LabelRef>>,
    state: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    user: Option<WireUser>,
    html_url: Option<String>,
    /// Present exactly when the "issue" is a pull request: GitHub's issue list
    /// holds both.
    pull_request: Option<serde_json::Value>,
}

impl WireIssue {
    pub fn is_pull(&self) -> bool {
        self.pull_request.as_ref().is_some_and(|v| !v.is_null())
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        time(self.updated_at.as_deref())
    }

    /// Its number and page, when GitHub named the page.
    pub fn page(&self) -> Option<(u64, &str)> {
        self.html_url
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|u| (self.number, u))
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
                .filter_map(LabelRef::into_name)
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
    ref_: Option<String>,
    sha: Option<String>,
    /// The repository the branch is in: another one for a fork's pull request.
    repo: Option<WireRepo>,
}

#[derive(Debug, Deserialize)]
struct WireRepo {
    full_name: Option<String>,
}

/// A pull request, from the list (`pull-request-simple`, without `merged` and
/// `mergeable`) or on its own (`pull-request`).
#[derive(Debug, Deserialize)]
pub(super) struct WirePull {
    number: u64,
    title: Option<String>,
    body: Option<String>,
    head: Option<WireBranch>,
    base: Option<WireBranch>,
    state: Option<String>,
    merged: Option<bool>,
    merged_at: Option<String>,
    mergeable: Option<bool>,
    merge_commit_sha: Option<String>,
    html_url: Option<String>,
    user: Option<WireUser>,
    updated_at: Option<String>,
}

impl WirePull {
    /// The head branch's name, when the branch is in repository `repo`
    /// (`owner/name`) rather than in a fork.
    pub fn head_branch_in(&self, repo: &str) -> Option<&str> {
        let head = self.head.as_ref()?;
        let full_name = head.repo.as_ref()?.full_name.as_deref()?;
        if !full_name.eq_ignore_ascii_case(repo) {
            return None;
        }
        head.ref_.as_deref().filter(|r| !r.is_empty())
    }

    /// The list leaves `merged` out; `merged_at` says it there.
    pub fn merged(&self) -> bool {
        self.merged
            .unwrap_or_else(|| self.merged_at.as_deref().is_some_and(|t| !t.is_empty()))
    }

    pub fn head_sha(&self) -> Option<&str> {
        self.head.as_ref()?.sha.as_deref()
    }

    pub fn into_domain(self) -> PullRequest {
        let merged = self.merged();
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
            merged,
            // `null` while GitHub computes it (and always in the list).
            mergeable: self.mergeable,
            // GitHub fills this in before a merge too, with its test merge
            // commit: only a merged pull request has a merge commit.
            merge_commit_sha: self
                .merge_commit_sha
                .filter(|s| merged && !s.is_empty())
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
    submitted_at: Option<String>,
}

impl WireReview {
    pub fn author(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.login.as_str())
    }

    /// `official`: whether the author may write to the repository, which the
    /// review itself does not say on GitHub.
    pub fn into_domain(self, official: bool) -> Review {
        let state = self.state.as_deref().unwrap_or_default();
        Review {
            id: self.id,
            author: login(self.user),
            state: match state {
                "APPROVED" => ReviewState::Approved,
                "CHANGES_REQUESTED" => ReviewState::ChangesRequested,
                "COMMENTED" => ReviewState::Commented,
                "PENDING" => ReviewState::Pending,
                _ => ReviewState::Other,
            },
            body: self.body.unwrap_or_default(),
            commit_id: CommitSha(self.commit_id.unwrap_or_default()),
            // A dismissed review keeps no state of its own on GitHub.
            dismissed: state == "DISMISSED",
            // GitHub has no stale flag: a review on an older head names that
            // head in `commit_id`, which is what keeps it from counting.
            stale: false,
            official,
            submitted_at: time(self.submitted_at.as_deref()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireReviewComment {
    id: u64,
    user: Option<WireUser>,
    path: Option<String>,
    /// The line in the file the comment is on; `null` once the diff moved on.
    line: Option<u64>,
    original_line: Option<u64>,
    body: Option<String>,
}

impl WireReviewComment {
    pub fn into_domain(self) -> ReviewComment {
        ReviewComment {
            id: self.id,
            author: login(self.user),
            path: self.path.unwrap_or_default(),
            position: self.line.or(self.original_line).filter(|&l| l != 0),
            body: self.body.unwrap_or_default(),
        }
    }
}

/// `GET …/collaborators/{username}/permission`.
#[derive(Debug, Deserialize)]
pub(super) struct WirePermission {
    permission: Option<String>,
    role_name: Option<String>,
}

impl WirePermission {
    /// `permission` is the legacy level (`admin`, `write`, `read`, `none`;
    /// `maintain` shows as `write` there); `role_name` the role itself
    /// (`admin`, `maintain`, `write`, `triage`, `read` or a custom role's name).
    /// Either naming a writing role is write access; anything else is not.
    pub fn may_write(&self) -> bool {
        let writes = |level: &Option<String>| {
            level.as_deref().is_some_and(|l| {
                ["admin", "maintain", "write"]
                    .iter()
                    .any(|w| l.eq_ignore_ascii_case(w))
            })
        };
        writes(&self.permission) || writes(&self.role_name)
    }
}

/// `GET /app`: the App forgehand signs in as; its login is `<slug>[bot]`.
#[derive(Debug, Deserialize)]
pub(super) struct WireApp {
    pub slug: Option<String>,
}

/// `POST /app/installations/{installation_id}/access_tokens`.
#[derive(Debug, Deserialize)]
pub(super) struct WireInstallationToken {
    pub token: String,
    pub expires_at: String,
}

pub(super) fn state(s: Option<&str>) -> IssueState {
    match s {
        Some("closed") => IssueState::Closed,
        _ => IssueState::Open,
    }
}

fn login(user: Option<WireUser>) -> String {
    user.map(|u| u.login).unwrap_or_default()
}

/// RFC 3339; a malformed time is treated as absent rather than failing the call.
pub(super) fn time(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}
