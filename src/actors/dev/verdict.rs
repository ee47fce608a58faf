//! Which reviews count (DESIGN §5 "Merge", §6): only official reviews (by
//! people whose review the forge says decides), and of those the latest of
//! each reviewer, given on the current head, neither dismissed nor stale.

use std::collections::BTreeMap;

use crate::forge::{CombinedStatus, CommitSha, CommitStatus, Review, ReviewState, StatusState};

use super::machine::CiVerdict;

/// What the reviews on one head add up to.
#[derive(Debug, PartialEq, Eq)]
pub enum ReviewOutcome<'a> {
    Waiting,
    Approved,
    ChangesRequested(Vec<&'a Review>),
}

/// The one review decision, for the dev actor and the merge scanner alike. A
/// review that is not official is left out entirely: it neither approves nor
/// blocks, and its text is not among the changes requested.
pub fn reviews<'a>(
    reviews: &'a [Review],
    head: &CommitSha,
    required_approvals: u32,
    own_login: &str,
) -> ReviewOutcome<'a> {
    if required_approvals == 0 {
        return ReviewOutcome::Approved;
    }
    let mut latest: BTreeMap<&str, &Review> = BTreeMap::new();
    for r in reviews.iter().filter(|r| {
        r.official
            && &r.commit_id == head
            && !r.dismissed
            && !r.stale
            && r.author != own_login
            && matches!(
                r.state,
                ReviewState::Approved | ReviewState::ChangesRequested
            )
    }) {
        let newer = latest
            .get(r.author.as_str())
            .is_none_or(|old| (r.submitted_at, r.id) >= (old.submitted_at, old.id));
        if newer {
            latest.insert(&r.author, r);
        }
    }
    let changes: Vec<&Review> = latest
        .values()
        .copied()
        .filter(|r| r.state == ReviewState::ChangesRequested)
        .collect();
    if !changes.is_empty() {
        return ReviewOutcome::ChangesRequested(changes);
    }
    let approvals = latest
        .values()
        .filter(|r| r.state == ReviewState::Approved)
        .count();
    if approvals >= required_approvals as usize {
        ReviewOutcome::Approved
    } else {
        ReviewOutcome::Waiting
    }
}

/// CI's verdict on a head from the forge's combined status.
pub fn ci(status: &CombinedStatus) -> CiVerdict {
    let failing = |s: &&CommitStatus| matches!(s.state, StatusState::Failure | StatusState::Error);
    match status.state {
        Some(StatusState::Success) | Some(StatusState::Warning) => CiVerdict::Green,
        Some(StatusState::Failure) | Some(StatusState::Error) => CiVerdict::Red {
            failures: status.statuses.iter().filter(failing).cloned().collect(),
            details: None,
            infrastructure: None,
        },
        Some(StatusState::Pending) | None => CiVerdict::Pending,
    }
}
