//! Reviews on the local backend: one JSON file per review in
//! `<plans>/.forgehand/reviews/`, written by `forgehand approve` and
//! `forgehand request-changes` on the branch's current head, read back as the
//! pull request's reviews.

use std::path::{Path, PathBuf};

use anyhow::bail;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::branch_sha;
use super::records::{read_records, record_id, write_record};
use super::state::State;
use crate::forge::{CommitSha, IssueState, Review, ReviewState};

/// What a person says about a pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewVerdict {
    Approved,
    ChangesRequested,
}

/// One review file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReviewFile {
    /// Unique and increasing: the submission time in nanoseconds.
    pub id: u64,
    pub pr: u64,
    pub key: String,
    pub author: String,
    pub verdict: ReviewVerdict,
    pub body: String,
    /// The head the review was given on.
    pub commit: String,
    pub submitted_at: DateTime<Utc>,
}

pub(super) fn reviews_dir(plans: &Path) -> PathBuf {
    plans.join(".forgehand").join("reviews")
}

/// Records a review of plan `key`'s open pull request on the current head of its
/// branch in `repo`; the path of the review file.
pub async fn submit_review(
    plans: &Path,
    repo: &Path,
    key: &str,
    verdict: ReviewVerdict,
    body: &str,
) -> anyhow::Result<PathBuf> {
    let branch = crate::paths::branch_name(key);
    let state = State::load(plans)?;
    let Some(pull) = state
        .pulls
        .values()
        .filter(|p| p.head == branch && p.state == IssueState::Open)
        .max_by_key(|p| p.number)
    else {
        bail!(
            "plan `{key}` has no open pull request (no open PR from {branch} in {})",
            State::path(plans).display()
        );
    };
    let Some(commit) = branch_sha(repo, &branch).await? else {
        bail!("there is no branch {branch} in {}", repo.display());
    };
    let now = Utc::now();
    let id = record_id(now);
    let author = std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "reviewer".to_string());
    let review = ReviewFile {
        id,
        pr: pull.number,
        key: key.to_string(),
        author,
        verdict,
        body: body.to_string(),
        commit,
        submitted_at: now,
    };
    write_record(&reviews_dir(plans), id, key, &review)
}

/// The reviews of pull request `pr`, oldest first. Unreadable files are skipped
/// with a warning: one bad file must not hide the others.
pub(super) fn read_reviews(plans: &Path, pr: u64) -> anyhow::Result<Vec<Review>> {
    let mut reviews: Vec<Review> = read_records::<ReviewFile>(&reviews_dir(plans))?
        .into_iter()
        .filter(|r| r.pr == pr)
        .map(|r| Review {
            id: r.id,
            author: r.author,
            state: match r.verdict {
                ReviewVerdict::Approved => ReviewState::Approved,
                ReviewVerdict::ChangesRequested => ReviewState::ChangesRequested,
            },
            body: r.body,
            commit_id: CommitSha(r.commit),
            dismissed: false,
            stale: false,
            // Written by the person's own `forgehand approve` / `request-changes`.
            official: true,
            submitted_at: Some(r.submitted_at),
        })
        .collect();
    reviews.sort_by_key(|r| r.id);
    Ok(reviews)
}
