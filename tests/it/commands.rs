//! `/forgehand stop|retry|hold|release|status` in comments: the parse, the
//! dev actor's transitions, and end to end on the fake Forgejo with a person
//! who may write (alice) and one who may not (mallory).

use chrono::{TimeZone, Utc};
use forgehand::actors::dev::machine::{DevState, Effect, Event, ReviewVerdict, Stage, next};
use forgehand::commands::{ForgeCommand, parse};
use forgehand::forge::{CommitSha, PrNumber};

use crate::fake_forge::CI_CONTEXT;
use crate::fake_forge::fixture::git as fixture_git;
use crate::harness::{Harness, STEP};
use crate::machine::{acts, policy};
use crate::support::wait_until;

#[test]
fn only_a_whole_command_line_counts() {
    assert_eq!(parse("/forgehand stop"), Some(ForgeCommand::Stop));
    assert_eq!(
        parse("Hm.\n  /Forgehand HOLD  \nthanks"),
        Some(ForgeCommand::Hold)
    );
    assert_eq!(parse("/forgehand release"), Some(ForgeCommand::Release));
    assert_eq!(parse("/forgehand retry"), Some(ForgeCommand::Retry));
    assert_eq!(parse("/forgehand status"), Some(ForgeCommand::Status));
    for not in [
        "please /forgehand stop",
        "/forgehand stop now",
        "/forgehand",
        "/forgehand explode",
        "/forgehandstop",
        "",
    ] {
        assert_eq!(parse(not), None, "{not:?}");
    }
}

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn in_stage(stage: Stage) -> DevState {
    DevState {
        stage,
        pr: Some(PrNumber(7)),
        head: Some(CommitSha("a1".into())),
        started_at: Some(t0()),
        ..DevState::new(t0())
    }
}

fn command(s: &DevState, c: ForgeCommand, upto: u64) -> (DevState, Vec<Effect>) {
    let event = Event::Commands {
        upto,
        commands: vec![("alice".into(), c)],
    };
    next(s, event, &policy(), t0())
}

fn comments(fx: &[Effect]) -> Vec<&str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Comment(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn hold_keeps_an_approved_head_from_merging_until_release() {
    let (s, fx) = command(&in_stage(Stage::AwaitingReview), ForgeCommand::Hold, 40);
    assert!(s.held && s.last_command_id == 40);
    assert!(comments(&fx)[0].starts_with("@alice: held"), "{fx:?}");
    let approved = Event::Review {
        head: CommitSha("a1".into()),
        verdict: ReviewVerdict::Approved,
    };
    let (s, fx) = next(&s, approved.clone(), &policy(), t0());
    assert_eq!(s.stage, Stage::AwaitingReview);
    assert!(acts(&fx).is_empty(), "no merge while held: {fx:?}");
    // A hold while merging (in a veto window, say) steps back.
    let (m, _) = command(&in_stage(Stage::Merging), ForgeCommand::Hold, 41);
    assert_eq!(m.stage, Stage::AwaitingReview);

    let (s, fx) = command(&s, ForgeCommand::Release, 42);
    assert!(!s.held);
    assert!(
        fx.iter().any(|e| matches!(e, Effect::CheckReview { .. })),
        "looks again at once: {fx:?}"
    );
    let (s, fx) = next(&s, approved, &policy(), t0());
    assert_eq!(s.stage, Stage::Merging);
    assert!(matches!(acts(&fx)[..], [Effect::Merge { .. }]), "{fx:?}");
}

#[test]
fn stop_blocks_status_replies_and_retry_starts_over() {
    let (s, fx) = command(&in_stage(Stage::Working), ForgeCommand::Stop, 5);
    assert_eq!(s.stage, Stage::Blocked);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Block { reason } if reason.contains("stopped by alice"))),
        "{fx:?}"
    );

    let busy = DevState {
        ci_attempts: 2,
        ..in_stage(Stage::AwaitingCi)
    };
    let (s, fx) = command(&busy, ForgeCommand::Status, 6);
    assert_eq!(s.stage, Stage::AwaitingCi);
    let reply = comments(&fx)[0];
    assert!(
        reply.contains("stage awaiting_ci") && reply.contains("CI fix attempts 2/2"),
        "{reply}"
    );
    assert!(reply.contains("spent 0 tokens ($0.00)"), "{reply}");

    let (s, fx) = command(&busy, ForgeCommand::Retry, 7);
    assert_eq!(s.stage, Stage::Starting);
    assert!(s.from_primary && s.ci_attempts == 0 && s.pr == Some(PrNumber(7)));
    assert_eq!(
        acts(&fx)[1..],
        [&Effect::StartOver, &Effect::EnsureSession],
        "{fx:?}"
    );
    // Each command is obeyed once: the next look starts after it.
    let (_, fx) = next(&s, Event::Tick, &policy(), t0());
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::CheckCommands { after: 7, .. })),
        "{fx:?}"
    );
}

/// Hold and status from alice are obeyed and answered; mallory's stop is
/// journaled and ignored; the release lets the approved PR merge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_from_people_with_write_access_steer_an_issue() {
    let mut h = Harness::new("", "").await;
    let n = h.forge.create_issue("Greet", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    let pr = h.wait_for_pr(n).await;
    h.forge.add_comment(n, "mallory", "/forgehand stop");
    h.forge.add_comment(pr, "alice", "/forgehand hold");
    h.forge
        .wait_until(STEP, |s| {
            s.comments(n).any(|c| c.body.starts_with("@alice: held"))
        })
        .await
        .expect("the hold acknowledged");
    let ignored = h
        .journal(n)
        .into_iter()
        .any(|(_, d)| d.contains("/forgehand stop from mallory") && d.contains("ignored"));
    assert!(ignored, "{:#?}", h.journal(n));
    assert!(!h.forge.issue(n).has_label("blocked"));

    // Green and approved, but held.
    let head = h.forge.pull(pr).head_sha;
    h.forge.set_status(&head, CI_CONTEXT, "success", "ok", "");
    h.forge
        .submit_review(pr, "alice", "APPROVED", "", Some(&head), &[]);
    wait_until("the approval seen while held", STEP, || async {
        h.journal(n)
            .into_iter()
            .any(|(_, d)| d.starts_with("review on ") && d.ends_with(": approved"))
            .then_some(())
    })
    .await;
    h.forge.add_comment(n, "alice", "/forgehand status");
    h.forge
        .wait_until(STEP, |s| {
            s.comments(n)
                .any(|c| c.body.starts_with("@alice: stage") && c.body.contains("merges held"))
        })
        .await
        .expect("a status reply");
    assert!(!h.forge.pull(pr).merged, "merged while held");

    h.forge.add_comment(n, "alice", "/forgehand release");
    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
        .await
        .expect("merged once released");
    h.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_from_a_person_with_write_access_blocks_the_issue() {
    let mut h = Harness::new("", "").await;
    let n = h
        .forge
        .create_issue("Think forever", "fake-agent: hang", &["backlog"]);
    h.enable();
    h.start_daemon();
    h.agent_received(n, "Think forever").await;
    h.forge.add_comment(n, "alice", "/forgehand stop");
    h.forge
        .wait_until(STEP, |s| s.issue(n).has_label("blocked"))
        .await
        .expect("blocked");
    let comments = h.bot_comments(n).join("\n");
    assert!(comments.contains("stopped by alice"), "{comments}");
    let session = h.session(n);
    wait_until("the session to be killed", STEP, || async {
        (!h.has_session(&session)).then_some(())
    })
    .await;
    h.assert_no_violations();
}

/// A retry kills the session and starts a new agent on a branch made from
/// the current primary branch: the pull request gets the new work, in whose
/// history the first attempt's commit is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_starts_over_from_the_primary_branch() {
    let mut h = Harness::new("", "").await;
    let n = h.forge.create_issue("Greet", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    let pr = h.wait_for_pr(n).await;
    let first = h.forge.pull(pr).head_sha;
    let session = h.session(n);
    let first_agent = h.pane_pid(&session).expect("the first agent's pane");
    // The primary branch moves on meanwhile: the retry must start from it.
    let main = h.git.commit("NEWS.md", "moved on\n", "main moves on");
    h.git.push("main");

    h.forge.add_comment(pr, "alice", "/forgehand retry");
    h.forge
        .wait_until(STEP, |s| {
            s.comments(n).any(|c| {
                c.body
                    .starts_with("@alice: starting over from the primary branch")
            })
        })
        .await
        .expect("the retry acknowledged");
    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.head_sha != first))
        .await
        .expect("the new work pushed to the same PR");
    let second = h.forge.pull(pr).head_sha;
    assert_eq!(
        fixture_git(&h.git.bare, &["rev-parse", &format!("{second}^")]),
        main,
        "the new branch starts from the primary branch's tip"
    );
    let history = fixture_git(&h.git.bare, &["rev-list", &second]);
    assert!(
        !history.lines().any(|c| c == first),
        "the first attempt's {first} is still in the history:\n{history}"
    );
    let second_agent = h.pane_pid(&session).expect("a new agent's pane");
    assert_ne!(first_agent, second_agent, "the old session was killed");
    assert!(
        h.journal(n)
            .iter()
            .any(|(_, d)| d == "/forgehand retry from alice")
    );
    h.assert_no_violations();
}
