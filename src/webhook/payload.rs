//! What a forge event means to forgehand: the payload (Forgejo, Gitea and
//! GitHub share the shapes used here) reduced to which issue, pull request,
//! commit or repository should be looked at again now rather than at the next poll.

use serde_json::Value;

use crate::forge::{self, CommitSha, IssueNumber, PrNumber};

/// A hint that something on the forge changed; the receiving actor re-reads
/// the forge itself, so a nudge carries no state worth trusting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nudge {
    /// An issue was opened, labelled, closed, commented on…
    Issue { repo: String, issue: u64 },
    /// A pull request was pushed to, reviewed, commented on, closed…
    Pull { repo: String, pr: u64 },
    /// A commit status (CI) changed.
    Commit { repo: String, sha: String },
    /// Something repository-wide, such as a push.
    Repo { repo: String },
}

impl Nudge {
    /// The repository the event is about (`owner/name`).
    pub fn repo(&self) -> &str {
        match self {
            Nudge::Issue { repo, .. }
            | Nudge::Pull { repo, .. }
            | Nudge::Commit { repo, .. }
            | Nudge::Repo { repo } => repo,
        }
    }

    /// The nudge as the project's actors take it, once the repository has
    /// named the project.
    pub fn into_forge(self) -> forge::Nudge {
        match self {
            Nudge::Issue { issue, .. } => forge::Nudge::Issue(IssueNumber(issue)),
            Nudge::Pull { pr, .. } => forge::Nudge::Pull(PrNumber(pr)),
            Nudge::Commit { sha, .. } => forge::Nudge::Commit(CommitSha(sha)),
            Nudge::Repo { .. } => forge::Nudge::Repo,
        }
    }
}

/// The payload was JSON but not an event forgehand can place.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the payload is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the payload has no repository.full_name")]
    NoRepository,
}

/// The nudge for one event, `None` for events forgehand does not act on.
///
/// `event` is the event header: Gitea and Forgejo also send specific names
/// (`issue_label`, `pull_request_sync`, `pull_request_review_approved`…),
/// which are folded into their families here.
pub fn nudge_for(event: &str, body: &[u8]) -> Result<Option<Nudge>, PayloadError> {
    let Some(family) = Family::of(event) else {
        return Ok(None);
    };
    let payload: Value = serde_json::from_slice(body)?;
    let repo = payload
        .pointer("/repository/full_name")
        .and_then(Value::as_str)
        .ok_or(PayloadError::NoRepository)?
        .to_string();
    let number = |pointer: &str| payload.pointer(pointer).and_then(Value::as_u64);
    let nudge = match family {
        Family::Issue => {
            // Comments on pull requests arrive as issue comments; the PR is what changed.
            let on_pull = payload.get("is_pull").and_then(Value::as_bool) == Some(true)
                || payload
                    .pointer("/issue/pull_request")
                    .is_some_and(|v| !v.is_null());
            match number("/issue/number") {
                Some(pr) if on_pull => Nudge::Pull { repo, pr },
                Some(issue) => Nudge::Issue { repo, issue },
                None => Nudge::Repo { repo },
            }
        }
        Family::Pull => match number("/pull_request/number")
            .or_else(|| number("/issue/number"))
            .or_else(|| number("/number"))
        {
            Some(pr) => Nudge::Pull { repo, pr },
            None => Nudge::Repo { repo },
        },
        Family::Status => match payload
            .pointer("/sha")
            .or_else(|| payload.pointer("/check_run/head_sha"))
            .or_else(|| payload.pointer("/check_suite/head_sha"))
            .or_else(|| payload.pointer("/workflow_run/head_sha"))
            .and_then(Value::as_str)
        {
            Some(sha) => Nudge::Commit {
                repo,
                sha: sha.to_string(),
            },
            None => Nudge::Repo { repo },
        },
        Family::Repo => Nudge::Repo { repo },
    };
    Ok(Some(nudge))
}

/// Event names grouped by what they are about. Anything else (GitHub's `ping`
/// when a hook is set up, `label`, `workflow_job`, …) changes nothing forgehand
/// watches and is answered 200 without a nudge.
enum Family {
    Issue,
    Pull,
    Status,
    Repo,
}

impl Family {
    fn of(event: &str) -> Option<Family> {
        match event {
            "issues" | "issue_comment" => Some(Family::Issue),
            e if e.starts_with("issue_") => Some(Family::Issue),
            e if e.starts_with("pull_request") => Some(Family::Pull),
            // GitHub's CI: commit statuses, check runs and suites, and whole
            // Actions workflow runs, each naming the commit they ran on.
            "status" | "check_run" | "check_suite" | "workflow_run" => Some(Family::Status),
            "push" => Some(Family::Repo),
            _ => None,
        }
    }
}
