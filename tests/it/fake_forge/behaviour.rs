//! The simulated world around forgehand: a CI that reacts to new PR heads and a reviewer
//! that reacts to green heads, both configurable at runtime by the test.
//!
//! [`settle`] is the one place where the fake "notices" pushes: it re-reads every open
//! PR's head and base from the bare repository, marks older reviews stale, runs the CI on
//! heads it has not seen, and lets the reviewer act. It runs before and after every API
//! request and around every control method, so a push by forgehand is seen on the next
//! read, as on a real forge.

use chrono::Utc;

use super::state::ForgeState;

/// Status context the simulated CI posts.
pub const CI_CONTEXT: &str = "ci/test";
/// Login of the simulated CI.
pub const CI_USER: &str = "ci-bot";
/// Login of the simulated reviewer.
pub const REVIEWER: &str = "reviewer";

/// How the fake's world reacts to forgehand; change it with `FakeForge::set_behaviour`.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    pub ci: CiBehaviour,
    pub review: ReviewBehaviour,
    /// Close issues named by `Fixes #N` / `Closes #N` / `Resolves #N` in a PR body when it
    /// is merged, as Forgejo does for the default branch. Off by default so tests see
    /// whether forgehand closes the issue itself.
    pub close_referenced_issues_on_merge: bool,
}

/// What the simulated CI does with each new PR head.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum CiBehaviour {
    /// Nothing: the test posts statuses itself (`FakeForge::set_status`).
    #[default]
    None,
    /// `success` for [`CI_CONTEXT`] on every new head.
    Succeed,
    /// The first `n` heads of each PR get `failure` (with a description and target URL),
    /// later heads `success`.
    FailFirst(u32),
    /// `pending` on every new head, never resolved (for CI timeout tests).
    Pending,
}

/// What the simulated reviewer ([`REVIEWER`]) does once a head is green.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ReviewBehaviour {
    /// Nothing: the test submits reviews itself (`FakeForge::submit_review`).
    #[default]
    None,
    /// `APPROVED` on every head whose combined status is `success`.
    ApproveWhenGreen,
    /// `REQUEST_CHANGES` with this body and inline comments (path, line, text) on the
    /// first green head of each PR, `APPROVED` on later green heads.
    RequestChangesOnce {
        body: String,
        comments: Vec<(String, u64, String)>,
    },
}

/// Brings the state up to date with the bare repository and lets CI and reviewer act.
pub fn settle(state: &mut ForgeState) {
    let numbers: Vec<u64> = state
        .pulls
        .values()
        .filter(|p| !p.merged && state.issues.get(&p.number).is_some_and(|i| i.is_open()))
        .map(|p| p.number)
        .collect();
    for n in numbers {
        refresh_pull(state, n);
    }
    review_green_heads(state);
}

/// Re-reads one PR's refs; on a new head, marks reviews stale and runs the CI.
fn refresh_pull(state: &mut ForgeState, n: u64) {
    let Some(pull) = state.pulls.get(&n) else {
        return;
    };
    let head = state.git.branch_sha(&pull.head);
    let base = state.git.branch_sha(&pull.base);
    let pull = state.pulls.get_mut(&n).expect("pull checked above");
    // A deleted branch keeps the last known sha, as Forgejo keeps the PR's head commit.
    if let Some(base) = base {
        pull.base_sha = base;
    }
    let new_head = match head {
        Some(head) if head != pull.head_sha || pull.heads_seen.is_empty() => {
            pull.head_sha = head.clone();
            (!pull.heads_seen.contains(&head)).then_some(head)
        }
        _ => None,
    };
    if pull.mergeable_for != (pull.base_sha.clone(), pull.head_sha.clone()) {
        pull.mergeable = state.git.mergeable(&pull.base_sha, &pull.head_sha);
        pull.mergeable_for = (pull.base_sha.clone(), pull.head_sha.clone());
    }
    let Some(head) = new_head else { return };
    pull.heads_seen.push(head.clone());
    for review in state.reviews.iter_mut().filter(|r| r.pull == n) {
        review.stale = review.commit_id != head;
    }
    if let Some(i) = state.issues.get_mut(&n) {
        i.updated_at = Utc::now();
    }
    run_ci(state, n, &head);
}

fn run_ci(state: &mut ForgeState, n: u64, head: &str) {
    let run = {
        let runs = state.ci_runs.entry(n).or_default();
        *runs += 1;
        *runs
    };
    let target_url = format!("{}/ci/pr-{n}/run-{run}", state.base_url);
    let (status, description) = match state.behaviour.ci {
        CiBehaviour::None => return,
        CiBehaviour::Succeed => ("success", "all tests passed".to_owned()),
        CiBehaviour::Pending => ("pending", "tests are running".to_owned()),
        CiBehaviour::FailFirst(k) if run <= k => (
            "failure",
            format!("test_greeting failed (simulated run {run})"),
        ),
        CiBehaviour::FailFirst(_) => ("success", "all tests passed".to_owned()),
    };
    state.new_status(head, CI_CONTEXT, status, &description, &target_url, CI_USER);
}

fn review_green_heads(state: &mut ForgeState) {
    if state.behaviour.review == ReviewBehaviour::None {
        return;
    }
    let candidates: Vec<(u64, String)> = state
        .pulls
        .values()
        .filter(|p| !p.merged && state.issues.get(&p.number).is_some_and(|i| i.is_open()))
        .filter(|p| !p.head_sha.is_empty() && !p.reviewed_heads.contains(&p.head_sha))
        .filter(|p| state.combined_state(&p.head_sha) == "success")
        .map(|p| (p.number, p.head_sha.clone()))
        .collect();
    for (n, head) in candidates {
        let pull = state.pulls.get_mut(&n).expect("candidate pull exists");
        pull.reviewed_heads.push(head.clone());
        match state.behaviour.review.clone() {
            ReviewBehaviour::None => {}
            ReviewBehaviour::RequestChangesOnce { body, comments } if !pull.changes_requested => {
                pull.changes_requested = true;
                state.new_review(
                    n,
                    REVIEWER,
                    "REQUEST_CHANGES",
                    &body,
                    &head,
                    &comments,
                    None,
                );
            }
            ReviewBehaviour::ApproveWhenGreen | ReviewBehaviour::RequestChangesOnce { .. } => {
                state.new_review(n, REVIEWER, "APPROVED", "LGTM", &head, &[], None);
            }
        }
    }
}

/// Issue numbers a PR body closes with Forgejo's keywords (`Fixes #N`, `closes #N`, …).
pub fn referenced_issues(body: &str) -> Vec<u64> {
    const KEYWORDS: [&str; 9] = [
        "close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved",
    ];
    let words: Vec<&str> = body.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| KEYWORDS.contains(&w[0].trim_end_matches(':').to_ascii_lowercase().as_str()))
        .filter_map(|w| {
            let digits: String = w[1]
                .strip_prefix('#')?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}
