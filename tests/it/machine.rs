//! The dev actor's pure transition function, without any I/O: time is an
//! argument, so timeouts are tested by passing a later `now`. Also the pure
//! review decision (`verdict::reviews`) it is fed with.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use forgehand::actors::dev::machine::{
    CiVerdict, DevState, Effect, Escalation, Event, Policy, ReviewVerdict, Stage, next,
};
use forgehand::actors::dev::verdict::{ReviewOutcome, reviews};
use forgehand::forge::{
    CommitSha, CommitStatus, IssueNumber, PrNumber, Review, ReviewState, StatusState,
};
use forgehand::notify::Notice;
use forgehand::phase::{Phase, PhaseReport, Refusal, RefusalKind};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn later(secs: i64) -> DateTime<Utc> {
    t0() + chrono::TimeDelta::seconds(secs)
}

pub fn policy() -> Policy {
    Policy {
        primary_branch: "main".into(),
        max_fix_attempts: 2,
        max_rounds: 2,
        max_respawns: 3,
        ci_timeout: Duration::from_secs(1800),
        review_timeout: Duration::from_secs(3 * 3600),
        escalation_timeout: Duration::from_secs(24 * 3600),
        idle_timeout: Duration::from_secs(2 * 3600),
        budget: Default::default(),
    }
}

fn step(s: &DevState, e: Event) -> (DevState, Vec<Effect>) {
    next(s, e, &policy(), t0())
}

fn step_at(s: &DevState, e: Event, now: DateTime<Utc>) -> (DevState, Vec<Effect>) {
    next(s, e, &policy(), now)
}

fn sha(s: &str) -> CommitSha {
    CommitSha(s.to_string())
}

fn phase(p: Phase) -> Event {
    Event::Phase(PhaseReport {
        phase: p,
        reason: None,
    })
}

fn phase_with(p: Phase, reason: &str) -> Event {
    Event::Phase(PhaseReport {
        phase: p,
        reason: Some(reason.into()),
    })
}

fn in_stage(stage: Stage) -> DevState {
    DevState {
        stage,
        pr: Some(PrNumber(7)),
        head: Some(sha("a1")),
        ..DevState::new(t0())
    }
}

/// Effects other than journal lines and notices, which many transitions
/// add, and the look for commands every tick ends with (`commands` tests it).
pub fn acts(fx: &[Effect]) -> Vec<&Effect> {
    fx.iter()
        .filter(|e| {
            !matches!(
                e,
                Effect::Journal(..) | Effect::Notify(..) | Effect::CheckCommands { .. }
            )
        })
        .collect()
}

fn notices(fx: &[Effect]) -> Vec<&Notice> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Notify(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn pasted(fx: &[Effect]) -> String {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Paste(t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn red(description: &str) -> CiVerdict {
    CiVerdict::Red {
        failures: vec![CommitStatus {
            context: "ci/test".into(),
            state: StatusState::Failure,
            description: description.into(),
            target_url: "http://ci/1".into(),
        }],
        details: None,
        infrastructure: None,
    }
}

#[test]
fn happy_path_from_claim_to_done() {
    let s = DevState::new(t0());
    let (s, fx) = step(&s, Event::Start);
    assert_eq!(acts(&fx), [&Effect::Claim]);
    let (s, fx) = step(&s, Event::ClaimRecorded);
    assert_eq!(
        (s.stage, acts(&fx)),
        (Stage::Starting, vec![&Effect::EnsureSession])
    );
    assert_eq!(notices(&fx), [&Notice::Claimed]);
    let (s, fx) = step(&s, Event::AgentReady);
    assert_eq!((s.stage, acts(&fx).len()), (Stage::Working, 0));
    let (s, fx) = step(&s, phase(Phase::AwaitingCi));
    assert_eq!(
        (s.stage, acts(&fx)),
        (Stage::Pushing, vec![&Effect::Push { force: false }])
    );
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Journal(..))),
        "the phase is journaled"
    );
    let (s, fx) = step_at(&s, Event::Pushed { head: sha("a1") }, later(5));
    assert_eq!(acts(&fx), [&Effect::EnsurePr]);
    assert_eq!(s.last_push_at, Some(later(5)));
    let (s, fx) = step(&s, Event::PrOpened { pr: PrNumber(7) });
    assert_eq!(
        (s.stage, acts(&fx)),
        (
            Stage::AwaitingCi,
            vec![&Effect::CheckCi { head: sha("a1") }]
        )
    );
    assert_eq!(notices(&fx), [&Notice::PrOpened { pr: PrNumber(7) }]);
    let (s, fx) = step(
        &s,
        Event::Ci {
            head: sha("a1"),
            verdict: CiVerdict::Pending,
        },
    );
    assert_eq!((s.stage, acts(&fx).len()), (Stage::AwaitingCi, 0));
    let (s, fx) = step(&s, Event::Tick);
    assert_eq!(acts(&fx), [&Effect::CheckCi { head: sha("a1") }]);
    let (s, fx) = step(
        &s,
        Event::Ci {
            head: sha("a1"),
            verdict: CiVerdict::Green,
        },
    );
    assert_eq!(s.stage, Stage::AwaitingReview);
    assert!(pasted(&fx).contains("CI passed"));
    assert_eq!(
        acts(&fx)[1],
        &Effect::CheckReview {
            pr: PrNumber(7),
            head: sha("a1")
        }
    );
    let (s, fx) = step(&s, phase(Phase::AwaitingReview));
    assert_eq!((s.stage, acts(&fx).len()), (Stage::AwaitingReview, 0));
    let (s, fx) = step(
        &s,
        Event::Review {
            head: sha("a1"),
            verdict: ReviewVerdict::Approved,
        },
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
    let (s, fx) = step(
        &s,
        Event::MergeDone {
            merge_commit: Some(sha("m1")),
        },
    );
    assert_eq!((s.stage, acts(&fx)), (Stage::Merged, vec![&Effect::Finish]));
    assert_eq!(
        notices(&fx),
        [&Notice::Merged {
            pr: PrNumber(7),
            merge_commit: Some(sha("m1"))
        }]
    );
    let (s, fx) = step(&s, Event::Finished);
    assert_eq!((s.stage, acts(&fx)), (Stage::Done, vec![&Effect::Stop]));
}

#[test]
fn stage_since_moves_only_with_the_stage() {
    let s = in_stage(Stage::AwaitingCi);
    let (s2, _) = step_at(&s, Event::Tick, later(60));
    assert_eq!(s2.stage_since, t0());
    let (s3, _) = step_at(
        &s2,
        Event::Ci {
            head: sha("a1"),
            verdict: CiVerdict::Green,
        },
        later(90),
    );
    assert_eq!(s3.stage_since, later(90));
}

#[test]
fn results_for_an_old_head_are_ignored() {
    let s = in_stage(Stage::AwaitingCi);
    let (s2, fx) = step(
        &s,
        Event::Ci {
            head: sha("old"),
            verdict: CiVerdict::Green,
        },
    );
    assert_eq!((s2, fx), (s, vec![]));
    let s = in_stage(Stage::AwaitingReview);
    let (s2, fx) = step(
        &s,
        Event::Review {
            head: sha("old"),
            verdict: ReviewVerdict::Approved,
        },
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
    let (s, fx) = step(&s, phase(Phase::AwaitingCi));
    assert_eq!(
        (s.stage, acts(&fx)),
        (Stage::Pushing, vec![&Effect::Push { force: true }])
    );
    let (s, fx) = step(&s, Event::Pushed { head: sha("b2") });
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
    let (s, fx) = step(&in_stage(Stage::Pushing), Event::NothingToPush);
    assert_eq!(s.stage, Stage::Working);
    assert!(pasted(&fx).contains("no commits"));
}

#[test]
fn ci_failures_are_pasted_with_attempts_and_block_past_the_limit() {
    let mut s = in_stage(Stage::AwaitingCi);
    for k in 1..=2 {
        let (s2, fx) = step(
            &s,
            Event::Ci {
                head: sha("a1"),
                verdict: red("2 tests failed"),
            },
        );
        assert_eq!((s2.stage, s2.ci_attempts), (Stage::Working, k));
        let text = pasted(&fx);
        assert!(
            text.contains(&format!("{k}/2"))
                && text.contains("2 tests failed")
                && text.contains("http://ci/1"),
            "{text}"
        );
        assert!(matches!(notices(&fx)[..], [Notice::CiFailed { attempt, .. }] if *attempt == k));
        s = DevState {
            stage: Stage::AwaitingCi,
            ..s2
        };
    }
    let (s, fx) = step(
        &s,
        Event::Ci {
            head: sha("a1"),
            verdict: red("still failing"),
        },
    );
    assert_eq!(s.stage, Stage::Blocked);
    assert!(matches!(
        acts(&fx)[..],
        [Effect::Block { .. }, Effect::Stop]
    ));
    assert!(matches!(notices(&fx)[..], [Notice::Blocked { .. }]));
}

#[test]
fn ci_details_from_the_ci_server_reach_the_agent() {
    let s = in_stage(Stage::AwaitingCi);
    let verdict = CiVerdict::Red {
        failures: vec![],
        details: Some("step test exited 1\nassertion failed: left == right".into()),
        infrastructure: None,
    };
    let (_, fx) = step(
        &s,
        Event::Ci {
            head: sha("a1"),
            verdict,
        },
    );
    assert!(pasted(&fx).contains("assertion failed: left == right"));
}

#[test]
fn an_infrastructure_failure_is_restarted_once_without_counting() {
    let infra = || CiVerdict::Red {
        failures: vec![],
        details: Some("clone exited 128".into()),
        infrastructure: Some(12),
    };
    let s = in_stage(Stage::AwaitingCi);
    let (s, fx) = step(
        &s,
        Event::Ci {
            head: sha("a1"),
            verdict: infra(),
        },
    );
    assert_eq!((s.stage, s.ci_attempts), (Stage::AwaitingCi, 0));
    assert_eq!(acts(&fx), [&Effect::RestartCi { pipeline: 12 }]);
    let (s, _) = step(
        &s,
        Event::Ci {
            head: sha("a1"),
            verdict: infra(),
        },
    );
    assert_eq!(
        (s.stage, s.ci_attempts),
        (Stage::Working, 1),
        "a second one counts"
    );
}

#[test]
fn changes_requested_count_rounds_and_block_past_the_limit() {
    let ev = |fb: &str| Event::Review {
        head: sha("a1"),
        verdict: ReviewVerdict::ChangesRequested {
            feedback: fb.into(),
        },
    };
    let (s, fx) = step(&in_stage(Stage::AwaitingReview), ev("src/a.rs:3: rename"));
    assert_eq!((s.stage, s.review_rounds), (Stage::Working, 1));
    let text = pasted(&fx);
    assert!(
        text.contains("1/2") && text.contains("src/a.rs:3: rename"),
        "{text}"
    );
    let s = DevState {
        stage: Stage::AwaitingReview,
        review_rounds: 2,
        ..s
    };
    let (s, fx) = step(&s, ev("again"));
    assert_eq!(s.stage, Stage::Blocked);
    assert!(matches!(
        acts(&fx)[..],
        [Effect::Block { .. }, Effect::Stop]
    ));
}

#[test]
fn merge_conflict_fetches_and_asks_for_a_rebase_onto_primary() {
    let (s, fx) = step(
        &in_stage(Stage::Merging),
        Event::MergeConflict {
            message: "not mergeable".into(),
        },
    );
    assert_eq!(s.stage, Stage::Working);
    assert_eq!(acts(&fx)[0], &Effect::Fetch);
    assert!(pasted(&fx).contains("origin/main"));
    let (_, fx) = step(&s, phase(Phase::AwaitingCi));
    assert_eq!(
        acts(&fx),
        [&Effect::Push { force: true }],
        "the rebased branch is force-pushed"
    );
}

#[test]
fn escalation_comments_waits_for_a_human_and_pastes_the_answer() {
    let s = in_stage(Stage::Working);
    let (s, fx) = step(&s, phase_with(Phase::Escalate, "which database?"));
    assert_eq!(s.stage, Stage::Working, "the session stays alive");
    assert_eq!(
        s.escalation,
        Some(Escalation {
            reason: "which database?".into(),
            since: t0()
        })
    );
    assert!(matches!(acts(&fx)[..], [Effect::Comment(t)] if t.contains("which database?")));
    assert!(
        matches!(notices(&fx)[..], [Notice::Escalation { reason }] if reason == "which database?")
    );
    let (s, fx) = step_at(&s, Event::Tick, later(60));
    assert_eq!(
        acts(&fx),
        [&Effect::CheckReplies {
            pr: Some(PrNumber(7)),
            since: t0()
        }]
    );
    let (s, fx) = step(
        &s,
        Event::HumanReply {
            author: "alice".into(),
            body: "use sqlite".into(),
        },
    );
    assert_eq!(s.escalation, None);
    assert!(pasted(&fx).contains("alice") && pasted(&fx).contains("use sqlite"));
    let (_, fx) = step(
        &s,
        Event::HumanReply {
            author: "bob".into(),
            body: "late".into(),
        },
    );
    assert!(
        fx.is_empty(),
        "replies are only pasted while an escalation is open"
    );
}

#[test]
fn a_chat_reply_is_pasted_while_a_session_exists_and_kept_otherwise() {
    let reply = || Event::ChatReply {
        id: 4,
        event_id: "$ev".into(),
        author: "@alice:hs".into(),
        body: "use blue".into(),
    };
    let (s, _) = step(
        &in_stage(Stage::Working),
        phase_with(Phase::Escalate, "colour?"),
    );
    let (s, fx) = step(&s, reply());
    assert_eq!(s.escalation, None, "the answer closes the escalation");
    assert!(pasted(&fx).contains("use blue") && pasted(&fx).contains("@alice:hs"));
    assert!(fx.contains(&Effect::ChatReplyDelivered {
        id: 4,
        event_id: "$ev".into()
    }));
    let (_, fx) = step(&in_stage(Stage::AwaitingReview), reply());
    assert!(
        pasted(&fx).contains("use blue"),
        "waiting agents get replies too"
    );
    for stage in [Stage::Claimed, Stage::Merged, Stage::Blocked, Stage::Done] {
        let (_, fx) = step(&in_stage(stage), reply());
        assert!(fx.is_empty(), "{stage:?}: kept for later, not acknowledged");
    }
}

#[test]
fn an_unanswered_escalation_blocks_after_the_timeout() {
    let (s, _) = step(
        &in_stage(Stage::Working),
        phase_with(Phase::Escalate, "help"),
    );
    let (s2, fx) = step_at(&s, Event::Tick, later(24 * 3600 - 1));
    assert_eq!(s2.stage, Stage::Working);
    assert!(matches!(acts(&fx)[..], [Effect::CheckReplies { .. }]));
    let (s3, fx) = step_at(&s, Event::Tick, later(24 * 3600 + 1));
    assert_eq!(s3.stage, Stage::Blocked);
    assert!(
        matches!(acts(&fx)[0], Effect::Block { reason } if reason.contains("24h") && reason.contains("help"))
    );
}

#[test]
fn writing_awaiting_ci_ends_an_escalation() {
    let (s, _) = step(
        &in_stage(Stage::Working),
        phase_with(Phase::Escalate, "help"),
    );
    let (s, _) = step(&s, phase(Phase::AwaitingCi));
    assert_eq!((s.stage, s.escalation), (Stage::Pushing, None));
}

#[test]
fn refusals_release_the_issue() {
    let refuse = |status, detail: &str| {
        Event::Refused(Refusal {
            status,
            detail: detail.into(),
        })
    };
    let s = in_stage(Stage::Working);
    let (s2, fx) = step(
        &s,
        refuse(RefusalKind::UnmetDependency, "needs #12 and #15 first"),
    );
    assert_eq!(s2.stage, Stage::Released);
    assert_eq!(s2.waiting_for, [IssueNumber(12), IssueNumber(15)]);
    assert!(
        matches!(acts(&fx)[..], [Effect::Release { outcome: RefusalKind::UnmetDependency, comment }, Effect::Stop] if comment.contains("needs #12"))
    );
    let (s2, fx) = step(&s, refuse(RefusalKind::TooLarge, "three features in one"));
    assert_eq!(s2.stage, Stage::Released);
    assert!(matches!(
        acts(&fx)[0],
        Effect::Release {
            outcome: RefusalKind::TooLarge,
            ..
        }
    ));
    let (s2, fx) = step(&s, refuse(RefusalKind::AlreadyDone, "done in #3"));
    assert_eq!(s2.stage, Stage::Released);
    assert!(matches!(
        acts(&fx)[0],
        Effect::Release {
            outcome: RefusalKind::AlreadyDone,
            ..
        }
    ));
    // An unmet dependency that names no issue could never be re-picked safely.
    let (s2, fx) = step(
        &s,
        refuse(RefusalKind::UnmetDependency, "the API is not ready"),
    );
    assert_eq!(s2.stage, Stage::Blocked);
    assert!(matches!(acts(&fx)[0], Effect::Block { .. }));
}

#[test]
fn failed_phase_blocks_with_the_reason() {
    let (s, fx) = step(
        &in_stage(Stage::Working),
        phase_with(Phase::Failed, "tests hang"),
    );
    assert_eq!(s.stage, Stage::Blocked);
    assert!(
        matches!(acts(&fx)[..], [Effect::Block { reason }, Effect::Stop] if reason.contains("tests hang"))
    );
}

#[test]
fn a_dead_session_is_respawned_three_times_then_blocked() {
    let mut s = in_stage(Stage::AwaitingCi);
    for k in 1..=3 {
        let (s2, fx) = step(&s, Event::SessionDead);
        assert_eq!((s2.stage, s2.respawns), (Stage::AwaitingCi, k));
        assert_eq!(acts(&fx), [&Effect::EnsureSession]);
        s = s2;
    }
    let (s, fx) = step(&s, Event::SessionDead);
    assert_eq!(s.stage, Stage::Blocked);
    assert!(matches!(acts(&fx)[0], Effect::Block { reason } if reason.contains("4 times")));
}

#[test]
fn idleness_blocks_only_a_busy_agent() {
    let (s, fx) = step(&in_stage(Stage::Working), Event::Idle);
    assert_eq!(s.stage, Stage::Blocked);
    assert!(matches!(acts(&fx)[0], Effect::Block { reason } if reason.contains("2h")));
    let (s, fx) = step(&in_stage(Stage::AwaitingReview), Event::Idle);
    assert_eq!(
        (s.stage, fx.len()),
        (Stage::AwaitingReview, 0),
        "waiting on a reviewer is not idling"
    );
}

#[test]
fn ci_without_a_verdict_blocks_after_the_timeout() {
    let s = in_stage(Stage::AwaitingCi);
    let (s2, fx) = step_at(&s, Event::Tick, later(1799));
    assert_eq!(
        (s2.stage, acts(&fx)),
        (
            Stage::AwaitingCi,
            vec![&Effect::CheckCi { head: sha("a1") }]
        )
    );
    let (s2, fx) = step_at(&s, Event::Tick, later(1801));
    assert_eq!(s2.stage, Stage::Blocked);
    assert!(matches!(acts(&fx)[0], Effect::Block { reason } if reason.contains("30m")));
}

#[test]
fn an_overdue_review_is_reported_once_per_head() {
    let s = in_stage(Stage::AwaitingReview);
    let (s, fx) = step_at(&s, Event::Tick, later(3 * 3600 + 1));
    assert_eq!(notices(&fx), [&Notice::ReviewOverdue]);
    assert_eq!(s.stage, Stage::AwaitingReview, "still waiting, not blocked");
    let (_, fx) = step_at(&s, Event::Tick, later(4 * 3600));
    assert!(notices(&fx).is_empty());
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
        (Stage::Released, vec![Effect::Stop]),
        (Stage::Blocked, vec![Effect::Stop]),
        (Stage::Done, vec![Effect::Stop]),
    ];
    for (stage, want) in cases {
        let (s, fx) = step(&in_stage(stage), Event::Start);
        assert_eq!(s.stage, stage, "a restart alone changes no stage");
        assert_eq!(acts(&fx), want.iter().collect::<Vec<_>>(), "{stage:?}");
    }
}

/// Every stage × every event (each phase included): nothing panics, terminal
/// stages never act, phases outside a session are reported, stale liveness
/// news is ignored.
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
        Stage::Released,
        Stage::Blocked,
        Stage::Done,
    ];
    let mut events = vec![
        Event::Start,
        Event::ClaimRecorded,
        Event::AgentReady,
        Event::Refused(Refusal {
            status: RefusalKind::TooLarge,
            detail: "x".into(),
        }),
        Event::Pushed { head: sha("a1") },
        Event::NothingToPush,
        Event::PrOpened { pr: PrNumber(7) },
        Event::Tick,
        Event::Ci {
            head: sha("a1"),
            verdict: CiVerdict::Green,
        },
        Event::Ci {
            head: sha("a1"),
            verdict: red("x"),
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
        Event::HumanReply {
            author: "alice".into(),
            body: "x".into(),
        },
        Event::ChatReply {
            id: 1,
            event_id: "$e".into(),
            author: "@alice:hs".into(),
            body: "x".into(),
        },
        Event::SessionDead,
        Event::Idle,
    ];
    events.extend(Phase::ALL.map(phase));
    for stage in stages {
        for event in &events {
            let (s, fx) = step(&in_stage(stage), event.clone());
            if stage.is_terminal() {
                assert!(
                    fx.iter()
                        .all(|e| matches!(e, Effect::Stop | Effect::Journal(..))),
                    "{stage:?} + {event:?} acted: {fx:?}"
                );
                assert_eq!(s.stage, stage);
            }
            if let Event::Phase(_) = event
                && (!stage.has_session() || stage == Stage::Merging)
            {
                assert_eq!(s.stage, stage, "{stage:?} + {event:?}");
                assert!(acts(&fx).is_empty(), "{stage:?} + {event:?}: {fx:?}");
            }
            if matches!(event, Event::SessionDead | Event::Idle) && !stage.has_session() {
                assert!(fx.is_empty(), "{stage:?} + {event:?}: {fx:?}");
            }
        }
    }
}

/// A review as `verdict::reviews` sees it: on head `a1`, submitted in `id` order.
fn review(id: u64, author: &str, state: ReviewState, official: bool) -> Review {
    Review {
        id,
        author: author.into(),
        state,
        body: format!("{author} says so"),
        commit_id: sha("a1"),
        dismissed: false,
        stale: false,
        official,
        submitted_at: Some(later(id as i64)),
    }
}

#[test]
fn only_official_reviews_decide() {
    use ReviewState::{Approved, ChangesRequested};
    let decide = |rs: &[Review], required: u32| -> Vec<u64> {
        match reviews(rs, &sha("a1"), required, "forgehand") {
            ReviewOutcome::Waiting => vec![0],
            ReviewOutcome::Approved => vec![],
            ReviewOutcome::ChangesRequested(rs) => rs.iter().map(|r| r.id).collect(),
        }
    };
    let waiting = vec![0];
    let approved: Vec<u64> = vec![];

    // A drive-by approval is not an approval, however many there are.
    let drive_by = [
        review(1, "mallory", Approved, false),
        review(2, "eve", Approved, false),
    ];
    assert_eq!(decide(&drive_by, 1), waiting);
    // A drive-by request for changes neither blocks nor is passed on.
    let mixed = [
        review(1, "mallory", ChangesRequested, false),
        review(2, "alice", Approved, true),
    ];
    assert_eq!(decide(&mixed, 1), approved);
    let both = [
        review(1, "mallory", ChangesRequested, false),
        review(2, "alice", ChangesRequested, true),
    ];
    assert_eq!(decide(&both, 1), vec![2], "only alice's review is fed back");
    // Official approvals are counted one per reviewer, unofficial ones not at all.
    let two = [
        review(1, "alice", Approved, true),
        review(2, "mallory", Approved, false),
    ];
    assert_eq!(decide(&two, 2), waiting);
    let two = [
        review(1, "alice", Approved, true),
        review(2, "bob", Approved, true),
    ];
    assert_eq!(decide(&two, 2), approved);
    // An unofficial review by someone does not override their official one.
    let later_unofficial = [
        review(1, "bob", Approved, true),
        review(2, "bob", ChangesRequested, false),
    ];
    assert_eq!(decide(&later_unofficial, 1), approved);
}
