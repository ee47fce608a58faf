//! The one merge decision (`merging::decide`), without I/O: what the pull
//! request, its head's statuses and its reviews say, in turn.

use chrono::Utc;
use forgehand::actors::merging::{Decision, MergePolicy, decide, decide_on_pull};
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
