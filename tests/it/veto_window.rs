//! `[merge] delay`: an approved, green pull request waits out the veto
//! window, with a comment saying when it will merge; the dev actor's side
//! with the clock passed in, and end to end on the fake Forgejo.

use chrono::{TimeZone, Utc};
use forgehand::actors::dev::machine::{DevState, Effect, Event, Stage, next};
use forgehand::forge::{CommitSha, PrNumber};

use crate::fake_forge::{Behaviour, CiBehaviour, ReviewBehaviour};
use crate::harness::{Harness, STEP};

#[test]
fn the_merge_time_is_announced_once_per_head_and_merging_goes_on() {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap();
    let until = Utc.with_ymd_and_hms(2026, 11, 1, 12, 30, 0).unwrap();
    let merging = DevState {
        stage: Stage::Merging,
        pr: Some(PrNumber(7)),
        head: Some(CommitSha("a1".into())),
        ..DevState::new(t0)
    };
    let (s, fx) = next(
        &merging,
        Event::MergeWindow { until },
        &crate::machine::policy(),
        t0,
    );
    assert_eq!(s.stage, Stage::Merging);
    match &fx[..] {
        [Effect::Comment(text)] => assert!(text.contains("2026-11-01 12:30:00 UTC"), "{text}"),
        other => panic!("one comment expected: {other:?}"),
    }
    let (s, fx) = next(
        &s,
        Event::MergeWindow { until },
        &crate::machine::policy(),
        t0,
    );
    assert!(fx.is_empty(), "announced once: {fx:?}");
    // The next tick asks again.
    let (_, fx) = next(&s, Event::Tick, &crate::machine::policy(), t0);
    assert!(
        matches!(crate::machine::acts(&fx)[..], [Effect::Merge { .. }]),
        "{fx:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_green_pull_request_waits_out_the_veto_window() {
    let mut h = Harness::new("", "[merge]\ndelay = \"2s\"\n").await;
    h.forge.set_behaviour(Behaviour {
        ci: CiBehaviour::Succeed,
        review: ReviewBehaviour::ApproveWhenGreen,
        ..Default::default()
    });
    let n = h.forge.create_issue("Greet", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    let pr = h.wait_for_pr(n).await;
    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
        .await
        .expect("merged after the window");
    let merged_at = h.forge.pull(pr).merged_at.expect("a merge time");
    let approved_at = h
        .forge
        .reviews(pr)
        .iter()
        .filter(|r| r.state == "APPROVED")
        .map(|r| r.submitted_at)
        .max()
        .expect("an approval");
    assert!(
        merged_at - approved_at >= chrono::TimeDelta::seconds(2),
        "merged {merged_at}, approved {approved_at}"
    );
    let announced = h
        .forge
        .comments(n)
        .into_iter()
        .find(|c| c.body.contains("forgehand merges it at"))
        .expect("a comment saying when it merges");
    assert!(announced.created_at <= merged_at);
    h.assert_no_violations();
}

/// A person's pull request the merge scanner merges waits out the window
/// too, and the scanner says once on it when it will merge (without the
/// hold, which only a dev actor obeys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merge_scanner_announces_the_window_of_a_pull_request_it_holds() {
    let mut h = Harness::new("", "[merge]\ndelay = \"3s\"\n").await;
    let pr = crate::merge_scanner::ready_pull(&h, "feature", "feature.txt").await;
    h.enable();
    h.start_daemon();
    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
        .await
        .expect("merged after the window");
    let merged_at = h.forge.pull(pr).merged_at.expect("a merge time");
    let approved_at = h.forge.reviews(pr)[0].submitted_at;
    // The forge gives whole seconds: the window starts up to one before.
    assert!(
        merged_at - approved_at >= chrono::TimeDelta::seconds(2),
        "merged {merged_at}, approved {approved_at}"
    );
    let announced: Vec<_> = h
        .forge
        .comments(pr)
        .into_iter()
        .filter(|c| c.body.contains("forgehand merges it at"))
        .collect();
    // Every scan in the window (300 ms apart) saw it: said once all the same.
    assert_eq!(announced.len(), 1, "{announced:#?}");
    let text = &announced[0].body;
    let until = (approved_at + chrono::TimeDelta::seconds(3)).format("%Y-%m-%d %H:%M:%S UTC");
    assert!(text.contains(&until.to_string()), "{text}");
    assert!(!text.contains("/forgehand hold"), "{text}");
    assert!(announced[0].created_at <= merged_at);
    h.assert_no_violations();
}
