//! The forge interface: what forgehand needs from a code forge (issues, labels,
//! comments, pull requests, reviews, commit statuses, merges), independent of
//! which forge answers. `forgejo` implements it for Forgejo and Gitea, `github`
//! for GitHub, `local` for a folder of plan files and a local repository; the
//! test suite's conformance checks hold every implementation to the same contract.

pub mod changes;
pub mod forgejo;
mod from_http;
pub mod github;
pub mod local;
pub mod rights;
pub mod token;

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An issue number on the forge (`#42`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IssueNumber(pub u64);

impl fmt::Display for IssueNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A pull request number. Forgejo numbers PRs and issues from one sequence, but
/// keeping the types apart stops an issue number being merged by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrNumber(pub u64);

impl fmt::Display for PrNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A full commit id (hex).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommitSha(pub String);

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueState {
    Open,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub number: IssueNumber,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub state: IssueState,
    pub created_at: DateTime<Utc>,
    /// Login of the author.
    pub author: String,
    pub html_url: String,
}

impl Issue {
    pub fn has_label(&self, name: &str) -> bool {
        self.labels.iter().any(|l| l == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: PrNumber,
    pub title: String,
    pub body: String,
    /// Branch name of the head (`fix/issue-42`).
    pub head_ref: String,
    pub head_sha: CommitSha,
    pub base_ref: String,
    pub state: IssueState,
    pub merged: bool,
    /// `None` while the forge has not computed it yet.
    pub mergeable: Option<bool>,
    pub merge_commit_sha: Option<CommitSha>,
    pub html_url: String,
    pub author: String,
    /// When the forge last stamped it: a push, a review or a comment moves
    /// it, so an entry that did not change says nothing happened to it
    /// (but to its CI, which stamps nothing). `None` where it is not told.
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Pending,
    RequestReview,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: u64,
    pub author: String,
    pub state: ReviewState,
    pub body: String,
    /// The head the review was given on.
    pub commit_id: CommitSha,
    pub dismissed: bool,
    pub stale: bool,
    /// Given by someone whose review decides: on Forgejo/Gitea an account
    /// with write access (or on the branch's approvals whitelist). Anyone
    /// signed in can review a public repository; only official reviews count.
    pub official: bool,
    pub submitted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewComment {
    pub id: u64,
    pub author: String,
    pub path: String,
    /// Line in the diff (`position`), when the forge gives one.
    pub position: Option<u64>,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusState {
    Pending,
    Success,
    Error,
    Failure,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub context: String,
    pub state: StatusState,
    pub description: String,
    pub target_url: String,
}

/// The forge's roll-up of every status on one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CombinedStatus {
    /// `None` when the commit has no statuses at all yet.
    pub state: Option<StatusState>,
    pub statuses: Vec<CommitStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMethod {
    Merge,
    Squash,
    Rebase,
}

impl MergeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewPull {
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    /// Open it as a draft (see `Forge::opens_drafts`).
    pub draft: bool,
}

#[derive(Debug, Clone)]
pub struct MergeRequest {
    pub method: MergeMethod,
    /// The head that was approved and tested: the forge refuses if the PR moved.
    pub head_sha: CommitSha,
    pub delete_branch: bool,
}

/// Errors a caller branches on. Anything else is `Other` with context.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("pull request is already merged")]
    AlreadyMerged,
    #[error("rate limited by the forge (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The forge did not answer usably (a 5xx, a timeout, a refused or broken
    /// connection) for longer than one call's retries: a passing outage.
    #[error("the forge is unreachable: {0}")]
    Unavailable(String),
    #[error("{0:#}")]
    Other(anyhow::Error),
}

impl ForgeError {
    /// An outage or a rate limit: the same call is worth making again later,
    /// and nothing about the issue is wrong.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ForgeError::Unavailable(_) | ForgeError::RateLimited { .. }
        )
    }
}

pub type ForgeResult<T> = Result<T, ForgeError>;

/// Everything forgehand asks of a forge. Implementations retry transient faults
/// themselves (one policy, `http::retry`), so a returned error is final for this call.
#[async_trait]
pub trait Forge: Send + Sync {
    /// Login of the account whose token forgehand uses (its own comments are not "human").
    async fn current_user(&self) -> ForgeResult<String>;
    /// Create any of these labels that the repository lacks.
    async fn ensure_labels(&self, names: &[String]) -> ForgeResult<()>;
    /// Which of these labels the repository lacks; nothing is created.
    async fn missing_labels(&self, names: &[String]) -> ForgeResult<Vec<String>>;
    /// The repository's webhooks (`forgehand doctor`), or `None` for a
    /// forge that sends none (the local backend watches its folder).
    async fn webhooks(&self) -> ForgeResult<Option<Vec<Webhook>>> {
        Ok(None)
    }
    /// The latest deliveries of webhook `id`, newest first, or `None`
    /// where the forge's API does not tell them (Forgejo).
    async fn webhook_deliveries(&self, id: u64) -> ForgeResult<Option<Vec<Delivery>>> {
        let _ = id;
        Ok(None)
    }
    /// Open issues (never pull requests) carrying `label`, every page.
    async fn list_open_issues(&self, label: &str) -> ForgeResult<Vec<Issue>>;
    /// `list_open_issues`, as of a look at the forge begun at `as_of` or
    /// later: a forge that keeps track of what changed (Forgejo) answers
    /// from a recent enough look another caller made; others ask now.
    async fn open_issues_as_of(&self, label: &str, as_of: Instant) -> ForgeResult<Vec<Issue>> {
        let _ = as_of;
        self.list_open_issues(label).await
    }
    async fn get_issue(&self, n: IssueNumber) -> ForgeResult<Issue>;
    /// Issues this one depends on, per the forge's dependency API.
    async fn issue_dependencies(&self, n: IssueNumber) -> ForgeResult<Vec<Issue>>;
    async fn add_label(&self, n: IssueNumber, label: &str) -> ForgeResult<()>;
    /// Removing a label the issue does not carry is not an error.
    async fn remove_label(&self, n: IssueNumber, label: &str) -> ForgeResult<()>;
    /// Comments on an issue or a pull request (same numbering), every page.
    async fn list_comments(&self, n: u64) -> ForgeResult<Vec<Comment>>;
    async fn create_comment(&self, n: u64, body: &str) -> ForgeResult<Comment>;
    async fn close_issue(&self, n: IssueNumber) -> ForgeResult<()>;
    /// Open pull requests, every page.
    async fn list_open_pulls(&self) -> ForgeResult<Vec<PullRequest>>;
    /// The open pull requests for a scan, as of a look at the forge begun at
    /// `as_of` or later: a forge that keeps track of what changed (Forgejo)
    /// answers from the list it read last while nothing said a pull request
    /// changed since; `again` asks for the list whatever (a nudge, the
    /// safety net). Others ask now.
    async fn open_pulls_as_of(&self, as_of: Instant, again: bool) -> ForgeResult<Vec<PullRequest>> {
        let _ = (as_of, again);
        self.list_open_pulls().await
    }
    /// The pull request from `head` into `base`, if one exists (open or not).
    async fn find_pull(&self, base: &str, head: &str) -> ForgeResult<Option<PullRequest>>;
    async fn get_pull(&self, n: PrNumber) -> ForgeResult<PullRequest>;
    async fn create_pull(&self, new: &NewPull) -> ForgeResult<PullRequest>;
    async fn list_reviews(&self, n: PrNumber) -> ForgeResult<Vec<Review>>;
    async fn list_review_comments(
        &self,
        n: PrNumber,
        review: u64,
    ) -> ForgeResult<Vec<ReviewComment>>;
    async fn combined_status(&self, sha: &CommitSha) -> ForgeResult<CombinedStatus>;
    /// Merge; `AlreadyMerged` when the forge says it was merged before,
    /// `Conflict` when it cannot be merged as it is or its head is no longer
    /// `req.head_sha`, `Unavailable` when the forge asks to try again (GitHub's
    /// 409 for a base that moved during the merge).
    async fn merge_pull(&self, n: PrNumber, req: &MergeRequest) -> ForgeResult<()>;
    async fn delete_branch(&self, name: &str) -> ForgeResult<()>;
    /// Whether `login` may write to the repository. Only such people's
    /// comments reach the agent: anyone else's text is not an instruction.
    /// An unknown account may not.
    async fn can_write(&self, login: &str) -> ForgeResult<bool>;

    /// The issue's page, for people (notices link it). Each forge knows its
    /// own address scheme; the local backend links the plan file.
    fn issue_url(&self, n: IssueNumber) -> String;

    /// Whether forgehand opens its pull requests here as drafts (`NewPull::draft`).
    /// No forge so far: on Forgejo a draft is a `WIP:` title, which blocks the
    /// merge until someone edits it away.
    fn opens_drafts(&self) -> bool {
        false
    }

    /// Whether the forge tells forgehand of every change itself, through
    /// `watch`, so that waiting actors poll only as a safety net. Forges
    /// reached over HTTP do not (webhooks may, which the daemon knows about).
    fn reports_changes(&self) -> bool {
        false
    }

    /// How people name the issue: in session, branch and worktree names and in
    /// `forgehand attach`. Forges use the number; the local backend its plan's name.
    fn issue_key(&self, n: IssueNumber) -> String {
        n.to_string()
    }

    /// The issue a key names, the inverse of `issue_key`.
    fn issue_for_key(&self, key: &str) -> Option<IssueNumber> {
        key.parse().ok().map(IssueNumber)
    }

    /// Start telling `nudges` when something changes, for forges that can
    /// notice changes themselves (the local backend watches its folder).
    /// Forges reached over HTTP do nothing here: webhooks and polling cover them.
    fn watch(&self, nudges: tokio::sync::mpsc::UnboundedSender<Nudge>) -> anyhow::Result<()> {
        let _ = nudges;
        Ok(())
    }
}

/// A repository webhook, as the forge describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: u64,
    /// Where the forge delivers (its target or payload URL).
    pub url: String,
    pub active: bool,
}

/// One delivery of a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status; 0 when it was not reached.
    pub code: u16,
    /// The forge's word for the outcome (`OK`, `Invalid HTTP Response: 502`).
    pub status: String,
}

impl Delivery {
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// A hint that something on a project's forge changed, so the actor that owns
/// it looks now instead of at its next poll. It carries no state worth
/// trusting: the actor re-reads the forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nudge {
    /// An issue was opened, labelled, closed, commented on…
    Issue(IssueNumber),
    /// A pull request was pushed to, reviewed, commented on, closed…
    Pull(PrNumber),
    /// A commit's status (CI) changed.
    Commit(CommitSha),
    /// Something repository-wide, such as a push or a new issue.
    Repo,
}
