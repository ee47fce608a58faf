//! The dev actor's pure transition function, without any I/O.

use forgehand::actors::dev::machine::{
    CiVerdict, DevState, Effect, Event, Policy, ReviewVerdict, Stage, next,
};
use forgehand::forge::{CommitSha, CommitStatus, PrNumber, StatusState};
use forgehand::phase::{Phase, PhaseReport};

const POLICY: Policy = Policy {
    max_fix_attempts: 2,
    max_rounds: 2,
};

fn sha(s: &str) -> CommitSha {
    CommitSha(s.to_string())
}

fn phase(p: Phase) -> Event {
    Event::Phase(PhaseReport {
        phase: p,
        reason: None,
    })
}

fn in_stage(stage: Stage) -> DevState {
    DevState {
        stage,
        pr: Some(PrNumber(7)),
        head: Some(sha("a1")),
        ..DevState::new()
    }
}

/// Effects without journal lines, which every transition may add.
fn acts(fx: &[Effect]) -> Vec<&Effect> {
    fx.iter()
        .filter(|e| !matches!(e, Effect::Journal(..)))
        .collect()
}

#[test]
fn happy_path_from_claim_to_done() {
    let s = DevState::new();
    let (s, fx) = next(&s, Event::Start, POLICY);
    assert_eq!(acts(&fx), [&Effect::Claim]);
    let (s, fx) = next(&s, Event::ClaimRecorded, POLICY);
    assert_eq!(
        (s.stage, acts(&fx)),
        (Stage::Starting, vec![&Effect::EnsureSession])
    );
    let (s, fx) = next(&s, Event::AgentReady, POLICY);
    assert_eq!((s.stage, acts(&fx).len()), (Stage::Working, 0));
    let (s, fx) = next(&s, phase(Phase::AwaitingCi), POLICY);
    assert_eq!(
        (s.stage, acts(&fx)),
        (Stage::Pushing, vec![&Effect::Push { force: false }])
    );
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Journal(..))),
        "the phase is journaled"
    );
    let (s, fx) = next(&s, Event::Pushed { head: sha("a1") }, POLICY);
    assert_eq!(acts(&fx), [&Effect::EnsurePr]);
    let (s, fx) = next(&s, Event::PrOpened { pr: PrNumber(7) }, POLICY);
    assert_eq!(
        (s.stage, acts(&fx)),
        (
            Stage::AwaitingCi,
            vec![&Effect::CheckCi { head: sha("a1") }]
        )
    );
    let (s, fx) = next(
        &s,
        Event::Ci {
            head: sha("a1"),
            verdict: CiVerdict::Pending,
        },
        POLICY,
    );
    assert_eq!((s.stage, acts(&fx).len()), (Stage::AwaitingCi, 0));
    let (s, fx) = next(&s, Event::Tick, POLICY);
    assert_eq!(acts(&fx), [&Effect::CheckCi { head: sha("a1") }]);
    let (s, fx) = next(
        &s,
        Event::Ci {
            head: sha("a1"),
            verdict: CiVerdict::Green,
        },
        POLICY,
    );
    assert_eq!(s.stage, Stage::AwaitingReview);
    assert!(matches!(acts(&fx)[0], Effect::Paste(t) if t.contains("CI passed")));
    assert_eq!(
        acts(&fx)[1],
        &Effect::CheckReview {
            pr: PrNumber(7),
            head: sha("a1")
        }
    );
    let (s, fx) = next(&s, phase(Phase::AwaitingReview), POLICY);
    assert_eq!((s.stage, acts(&fx).len()), (Stage::AwaitingReview, 0));
    let (s, fx) = next(
        &s,
        Event::Review {
            head: sha("a1"),
            verdict: ReviewVerdict::Approved,
        },
        POLICY,
    );
    assert_eq!(
        (s.stage, acts(&fx)),
        (
            Stage::Merging,
            vec![&Effect::Merge {
                pr: PrNumber(7),
                head: sha("a1")
            }]
        )
    );
    let (s, fx) = next(
        &s,
        Event::MergeDone {
            merge_commit: Some(sha("m1")),
        },
        POLICY,
    );
    assert_eq!((s.stage, acts(&fx)), (Stage::Merged, vec![&Effect::Finish]));
    assert_eq!(s.merge_commit, Some(sha("m1")));
    let (s, fx) = next(&s, Event::Finished, POLICY);
    assert_eq!((s.stage, acts(&fx)), (Stage::Done, vec![&Effect::Stop]));
}

#[test]
fn results_for_an_old_head_are_ignored() {
    let s = in_stage(Stage::AwaitingCi);
    let (s2, fx) = next(
        &s,
        Event::Ci {
            head: sha("old"),
            verdict: CiVerdict::Green,
        },
        POLICY,
    );
    assert_eq!((s2, fx), (s, vec![]));
    let s = in_stage(Stage::AwaitingReview);
    let (s2, fx) = next(
        &s,
        Event::Review {
            head: sha("old"),
            verdict: ReviewVerdict::Approved,
        },
        POLICY,
    );
    assert_eq!(
        (s2, fx),
        (s, vec![]),
        "an approval on an older head never merges a newer one"
    );
}

#[test]
fn a_new_push_goes_back_to_ci_even_while_waiting_for_review() {
    let s = in_stage(Stage::AwaitingReview);
    let (s, fx) = next(&s, phase(Phase::AwaitingCi), POLICY);
    assert_eq!(
        (s.stage, acts(&fx)),
        (Stage::Pushing, vec![&Effect::Push { force: true }])
    );
    let (s, fx) = next(&s, Event::Pushed { head: sha("b2") }, POLICY);
    assert_eq!(
        (s.stage, s.head.clone()),
        (Stage::AwaitingCi, Some(sha("b2")))
    );
    assert_eq!(
        acts(&fx),
        [&Effect::CheckCi { head: sha("b2") }],
        "the PR exists: no second PR"
    );
}

#[test]
fn nothing_to_push_tells_the_agent() {
    let s = in_stage(Stage::Pushing);
    let (s, fx) = next(&s, Event::NothingToPush, POLICY);
    assert_eq!(s.stage, Stage::Working);
    assert!(matches!(acts(&fx)[..], [Effect::Paste(t)] if t.contains("no commits")));
}

#[test]
fn ci_failures_count_and_block_past_the_limit() {
    let red = || Event::Ci {
        head: sha("a1"),
        verdict: CiVerdict::Red {
            failures: vec![CommitStatus {
                context: "ci/test".into(),
                state: StatusState::Failure,
                description: "2 tests failed".into(),
                target_url: "http://ci/1".into(),
            }],
        },
    };
    let mut s = in_stage(Stage::AwaitingCi);
    for k in 1..=2 {
        let (s2, fx) = next(&s, red(), POLICY);
        assert_eq!((s2.stage, s2.ci_attempts), (Stage::Working, k));
        assert!(
            matches!(acts(&fx)[..], [Effect::Paste(t)] if t.contains(&format!("{k}/2")) && t.contains("2 tests failed")),
            "{fx:?}"
        );
        s = DevState {
            stage: Stage::AwaitingCi,
            ..s2
        };
    }
    let (s, fx) = next(&s, red(), POLICY);
    assert_eq!(s.stage, Stage::Blocked);
    assert!(matches!(acts(&fx)[..], [Effect::Block { .. }]));
}

#[test]
fn changes_requested_count_rounds() {
    let s = in_stage(Stage::AwaitingReview);
    let ev = Event::Review {
        head: sha("a1"),
        verdict: ReviewVerdict::ChangesRequested {
            feedback: "src/a.rs:3: rename".into(),
        },
    };
    let (s, fx) = next(&s, ev, POLICY);
    assert_eq!((s.stage, s.review_rounds), (Stage::Working, 1));
    assert!(
        matches!(acts(&fx)[..], [Effect::Paste(t)] if t.contains("1/2") && t.contains("src/a.rs:3: rename"))
    );
}

#[test]
fn merge_conflict_asks_for_a_rebase() {
    let s = in_stage(Stage::Merging);
    let (s, fx) = next(
        &s,
        Event::MergeConflict {
            message: "not mergeable".into(),
        },
        POLICY,
    );
    assert_eq!(s.stage, Stage::Working);
    assert!(matches!(acts(&fx)[..], [Effect::Paste(t)] if t.contains("Rebase")));
}

#[test]
fn restart_resumes_each_stage() {
    let cases = [
        (Stage::Claimed, vec![Effect::Claim]),
        (Stage::Starting, vec![Effect::EnsureSession]),
        (Stage::Working, vec![Effect::EnsureSession]),
        (
            Stage::Pushing,
            vec![Effect::EnsureSession, Effect::Push { force: true }],
        ),
        (Stage::AwaitingCi, vec![Effect::EnsureSession]),
        (Stage::AwaitingReview, vec![Effect::EnsureSession]),
        (
            Stage::Merging,
            vec![Effect::Merge {
                pr: PrNumber(7),
                head: sha("a1"),
            }],
        ),
        (Stage::Merged, vec![Effect::Finish]),
        (Stage::Blocked, vec![Effect::Stop]),
        (Stage::Done, vec![Effect::Stop]),
    ];
    for (stage, want) in cases {
        let (s, fx) = next(&in_stage(stage), Event::Start, POLICY);
        assert_eq!(s.stage, stage, "a restart alone changes no stage");
        assert_eq!(acts(&fx), want.iter().collect::<Vec<_>>(), "{stage:?}");
    }
}

#[test]
fn failed_phase_blocks_and_escalate_comments() {
    let s = in_stage(Stage::Working);
    let (s2, fx) = next(
        &s,
        Event::Phase(PhaseReport {
            phase: Phase::Escalate,
            reason: Some("which DB?".into()),
        }),
        POLICY,
    );
    assert_eq!(s2.stage, Stage::Working, "the session stays alive");
    assert!(matches!(acts(&fx)[..], [Effect::Comment(t)] if t.contains("which DB?")));
    let (s2, fx) = next(
        &s,
        Event::Phase(PhaseReport {
            phase: Phase::Failed,
            reason: Some("tests hang".into()),
        }),
        POLICY,
    );
    assert_eq!(s2.stage, Stage::Blocked);
    assert!(matches!(acts(&fx)[..], [Effect::Block { reason }] if reason.contains("tests hang")));
}

/// Every stage × every event: nothing panics, terminal stages never act on
/// the forge, and the stage only moves forward or back to work.
#[test]
fn every_stage_and_event_is_handled() {
    let stages = [
        Stage::Claimed,
        Stage::Starting,
        Stage::Working,
        Stage::Pushing,
        Stage::AwaitingCi,
        Stage::AwaitingReview,
        Stage::Merging,
        Stage::Merged,
        Stage::Blocked,
        Stage::Done,
    ];
    let mut events = vec![
        Event::Start,
        Event::ClaimRecorded,
        Event::AgentReady,
        Event::Pushed { head: sha("a1") },
        Event::NothingToPush,
        Event::PrOpened { pr: PrNumber(7) },
        Event::Tick,
        Event::Ci {
            head: sha("a1"),
            verdict: CiVerdict::Green,
        },
        Event::Review {
            head: sha("a1"),
            verdict: ReviewVerdict::Approved,
        },
        Event::MergeDone { merge_commit: None },
        Event::MergeConflict {
            message: "x".into(),
        },
        Event::Finished,
    ];
    events.extend(Phase::ALL.map(phase));
    for stage in stages {
        for event in &events {
            let (s, fx) = next(&in_stage(stage), event.clone(), POLICY);
            if stage.is_terminal() {
                assert!(
                    acts(&fx).iter().all(|e| matches!(e, Effect::Stop)),
                    "{stage:?} + {event:?} acted: {fx:?}"
                );
                assert_eq!(s.stage, stage);
            }
        }
    }
}
