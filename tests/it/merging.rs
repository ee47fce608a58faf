//! The one merge decision (`merging::decide`), without I/O: what the pull
//! request, its head's statuses and its reviews say, in turn.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use forgehand::actors::merging::{Clock, Decision, MergePolicy, decide, decide_at, decide_on_pull};
use forgehand::forge::{
    CombinedStatus, CommitSha, CommitStatus, IssueState, PrNumber, PullRequest, Review,
    ReviewState, StatusState,
};

fn sha(s: &str) -> CommitSha {
    CommitSha(s.to_string())
}

fn pull() -> PullRequest {
    PullRequest {
        number: PrNumber(7),
        title: "fix: greet (#3)".into(),
        body: "Fixes #3".into(),
        head_ref: "fix/issue-3".into(),
        head_sha: sha("h1"),
        base_ref: "main".into(),
        state: IssueState::Open,
        merged: false,
        mergeable: Some(true),
        merge_commit_sha: None,
        html_url: String::new(),
        author: "forgehand".into(),
        updated_at: None,
    }
}

fn status(state: Option<StatusState>) -> CombinedStatus {
    CombinedStatus {
        state,
        statuses: state
            .map(|s| CommitStatus {
                context: "ci".into(),
                state: s,
                description: String::new(),
                target_url: String::new(),
            })
            .into_iter()
            .collect(),
    }
}

fn approval(head: &str) -> Review {
    Review {
        id: 1,
        author: "alice".into(),
        state: ReviewState::Approved,
        body: String::new(),
        commit_id: sha(head),
        dismissed: false,
        stale: false,
        official: true,
        submitted_at: Some(Utc::now()),
    }
}

const POLICY: MergePolicy<'static> = MergePolicy {
    primary_branch: "main",
    ci_required: true,
    required_approvals: 1,
    own_login: "forgehand",
    delay: Duration::ZERO,
};

#[test]
fn green_and_approved_on_the_head_merges() {
    let green = status(Some(StatusState::Success));
    assert_eq!(
        decide(&pull(), &sha("h1"), &green, &[approval("h1")], &POLICY),
        Decision::Merge
    );
}

#[test]
fn what_the_pull_request_alone_settles() {
    let head = sha("h1");
    let with = |change: fn(&mut PullRequest)| {
        let mut pr = pull();
        change(&mut pr);
        decide_on_pull(&pr, &head, &POLICY)
    };
    assert_eq!(with(|_| {}), None, "the statuses and reviews decide");
    assert_eq!(with(|p| p.merged = true), Some(Decision::AlreadyMerged));
    assert!(matches!(
        with(|p| p.state = IssueState::Closed),
        Some(Decision::NotOurs(_))
    ));
    assert!(matches!(
        with(|p| p.base_ref = "release".into()),
        Some(Decision::NotOurs(_))
    ));
    assert!(matches!(
        with(|p| p.title = "WIP: greet".into()),
        Some(Decision::NotOurs(_))
    ));
    assert_eq!(
        with(|p| p.head_sha = sha("h2")),
        Some(Decision::HeadMoved { now: sha("h2") })
    );
    // Not mergeable is a conflict for both callers (the dev actor asks for
    // a rebase, the scanner leaves it), before anything else is asked.
    assert_eq!(
        with(|p| p.mergeable = Some(false)),
        Some(Decision::Conflict)
    );
}

#[test]
fn ci_and_reviews_in_turn() {
    let head = sha("h1");
    let approved = [approval("h1")];
    let green = status(Some(StatusState::Success));
    for pending in [None, Some(StatusState::Pending)] {
        assert!(matches!(
            decide(&pull(), &head, &status(pending), &approved, &POLICY),
            Decision::WaitCi(_)
        ));
    }
    assert!(matches!(
        decide(
            &pull(),
            &head,
            &status(Some(StatusState::Failure)),
            &approved,
            &POLICY
        ),
        Decision::WaitCi(_)
    ));
    // CI not required: no status is needed.
    let no_ci = MergePolicy {
        ci_required: false,
        ..POLICY
    };
    assert_eq!(
        decide(&pull(), &head, &status(None), &approved, &no_ci),
        Decision::Merge
    );
    // An approval of an older head approves nothing.
    assert_eq!(
        decide(&pull(), &head, &green, &[approval("h0")], &POLICY),
        Decision::WaitReview
    );
    assert_eq!(
        decide(&pull(), &head, &green, &[], &POLICY),
        Decision::WaitReview
    );
    // The forge still works out whether it merges: ask again later.
    let mut unknown = pull();
    unknown.mergeable = None;
    assert_eq!(
        decide(&unknown, &head, &green, &approved, &POLICY),
        Decision::MergeabilityUnknown
    );
}

/// `[merge] delay`: approved and green waits out the veto window, counted
/// from the later of the latest review on the head and the caller's own
/// count; a new review restarts it, one requesting changes stops the merge.
#[test]
fn the_veto_window_holds_a_ready_merge() {
    let head = sha("h1");
    let green = status(Some(StatusState::Success));
    let windowed = MergePolicy {
        delay: Duration::from_secs(1800),
        ..POLICY
    };
    let approved_at = Utc::now() - TimeDelta::minutes(10);
    let approved = Review {
        submitted_at: Some(approved_at),
        ..approval("h1")
    };
    let clock = |minutes_after: i64, ready_since| Clock {
        now: approved_at + TimeDelta::minutes(minutes_after),
        ready_since,
    };
    let at = |minutes_after, ready_since, reviews: &[Review]| {
        decide_at(
            &pull(),
            &head,
            &green,
            reviews,
            &windowed,
            clock(minutes_after, ready_since),
        )
    };
    let until = approved_at + TimeDelta::minutes(30);
    assert_eq!(
        at(10, None, std::slice::from_ref(&approved)),
        Decision::VetoWindow { until }
    );
    assert_eq!(
        at(30, None, std::slice::from_ref(&approved)),
        Decision::Merge
    );
    // The dev actor began merging later than the approval: its count rules.
    let later = approved_at + TimeDelta::minutes(20);
    assert_eq!(
        at(30, Some(later), std::slice::from_ref(&approved)),
        Decision::VetoWindow {
            until: later + TimeDelta::minutes(30)
        }
    );
    // A second approval in the window restarts it.
    let again = Review {
        id: 2,
        author: "bob".into(),
        submitted_at: Some(approved_at + TimeDelta::minutes(25)),
        ..approval("h1")
    };
    assert!(matches!(
        at(30, None, &[approved.clone(), again]),
        Decision::VetoWindow { .. }
    ));
    // Changes requested in the window: no merge.
    let objection = Review {
        id: 3,
        state: ReviewState::ChangesRequested,
        submitted_at: Some(approved_at + TimeDelta::minutes(5)),
        ..approval("h1")
    };
    assert_eq!(
        at(60, None, &[approved.clone(), objection]),
        Decision::WaitReview
    );
    // No window configured: at once, as `decide` says.
    assert_eq!(
        decide_at(&pull(), &head, &green, &[approved], &POLICY, clock(0, None)),
        Decision::Merge
    );
}
