//! End to end: the real daemon against the fake Forgejo, a real bare repository,
//! real git, a private tmux server and the scripted agent.

use std::time::Duration;

use crate::fake_forge::{Behaviour, CI_CONTEXT, CiBehaviour, ForgeState, ReviewBehaviour};
use crate::harness::{Harness, OTHER_SECRET, PROJECT, STEP, TOKEN};
use crate::support::{wait_for_file, wait_until};

/// The acceptance path of the walking skeleton: only the ready issue is
/// claimed, its agent works in `dev-proj-<n>` with a clean environment and
/// gets only the comments of people with write access, and the PR merges
/// only after green CI and an official approval on its head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_issue_becomes_a_merged_pull_request() {
    let mut h = Harness::new("max_sessions = 1", "").await;
    let open_dep = h
        .forge
        .create_issue("Prepare the database", "no labels", &[]);
    let _plain = h.forge.create_issue("Unlabelled idea", "not ready", &[]);
    let waiting = h.forge.create_issue(
        "Use the database",
        &format!("Needs the schema first.\n\nDepends on #{open_dep}"),
        &["backlog"],
    );
    let ready = h
        .forge
        .create_issue("Add a greeting", "Print a friendly greeting.", &["backlog"]);
    let session = format!("dev-{PROJECT}-{ready}");
    // Only comments by people with write access are the agent's instructions:
    // a drive-by's directive would make the scripted agent give up.
    let drive_by = h.forge.add_comment(
        ready,
        "mallory",
        "fake-agent: fail told to by someone without write access",
    );
    h.forge.add_comment(ready, "alice", "Please keep it short.");

    // Without state/.dev-active nothing is picked: one full cycle with --once.
    h.run_once();
    assert!(
        h.forge.issue(ready).has_label("backlog") && !h.forge.issue(ready).has_label("in-progress")
    );
    assert!(!h.has_session(&session));

    h.enable();
    h.start_daemon();
    let pid = h.daemon().id();
    wait_for_file(&h.state.join("forgehand.lock"), STEP, |t| {
        t.trim() == pid.to_string()
    })
    .await;

    // A second daemon on the same state directory is refused, naming the first.
    let second = h.run(&[
        "run",
        "--projects",
        &h.projects.display().to_string(),
        "--state",
        &h.state_arg(),
    ]);
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&pid.to_string()),
        "names the holder's PID: {stderr}"
    );

    // The PR appears: the agent committed and forgehand pushed and opened it.
    h.forge
        .wait_until(STEP, |s| {
            s.pull_for_branch(&format!("fix/issue-{ready}")).is_some()
        })
        .await
        .expect("a PR from fix/issue-N");
    assert!(h.forge.issue(ready).has_label("in-progress"));
    assert!(!h.forge.issue(ready).has_label("backlog"));
    assert!(
        !h.forge.issue(waiting).has_label("in-progress"),
        "the dependent issue is not claimed"
    );

    // The agent runs in its session on the default server, with a clean environment.
    assert!(h.has_session(&session));
    let env = h.session_env(&session);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("FORGEHAND_ISSUE"), Some(ready.to_string()));
    assert_eq!(get("FORGEHAND_PROJECT"), Some(PROJECT.to_string()));
    assert_eq!(get("FORGEHAND_BRANCH"), Some(format!("fix/issue-{ready}")));
    let phase_file = h.session_dir(&session).join("phase");
    assert_eq!(
        get("FORGEHAND_PHASE_FILE"),
        Some(phase_file.display().to_string())
    );
    for (k, v) in &env {
        assert!(
            !v.contains(TOKEN) && !v.contains(OTHER_SECRET),
            "secret in the agent's environment: {k}"
        );
    }
    assert!(get("FORGE_TOKEN").is_none() && get("OTHER_SECRET_TOKEN").is_none());

    // The first prompt named the issue and the phase-file path.
    let transcript = h.session_dir(&session).join("agent-transcript.log");
    let text = wait_for_file(&transcript, STEP, |t| t.contains("Add a greeting")).await;
    assert!(text.contains(&phase_file.display().to_string()), "{text}");
    assert!(text.contains("Please keep it short."), "{text}");
    assert!(!text.contains("without write access"), "{text}");
    let ignored = format!("comment {drive_by} by mallory ignored: no write access to acme/widget");
    assert!(
        h.journal(ready)
            .iter()
            .any(|(k, d)| k == "comment_ignored" && *d == ignored),
        "{:?}",
        h.journal(ready)
    );

    let pr = h.forge.read(|s| {
        s.pull_for_branch(&format!("fix/issue-{ready}"))
            .unwrap()
            .clone()
    });
    assert!(
        h.forge
            .read(|s| s.issue(pr.number).body.contains(&format!("Fixes #{ready}")))
    );
    assert_eq!(
        h.forge.read(|s| s.issue(pr.number).title.clone()),
        format!("fix: Add a greeting (#{ready})")
    );

    // Green CI on the head: forgehand tells the agent, but does not merge yet.
    h.forge.set_status(
        &pr.head_sha,
        CI_CONTEXT,
        "success",
        "all tests pass",
        "http://ci.example/1",
    );
    wait_for_file(&transcript, STEP, |t| t.contains("CI passed")).await;
    assert!(
        !h.forge.pull(pr.number).merged,
        "merged without an approval"
    );

    // A drive-by approval (not official: the account may not write) merges
    // nothing, however often forgehand looks at it.
    h.forge
        .submit_review(pr.number, "passer-by", "APPROVED", "lgtm!", None, &[]);
    let review_checks = move |s: &ForgeState| {
        s.requests_matching("GET", &format!("/pulls/{}/reviews", pr.number))
            .count()
    };
    let checked = h.forge.read(review_checks);
    h.forge
        .wait_until(STEP, |s| review_checks(s) >= checked + 2)
        .await
        .expect("forgehand keeps looking at the reviews");
    assert!(
        !h.forge.pull(pr.number).merged,
        "merged on a drive-by approval"
    );

    // An official approval on the head merges it, then the issue is closed and cleaned up.
    h.forge
        .submit_review(pr.number, "reviewer", "APPROVED", "looks good", None, &[]);
    h.forge
        .wait_until(STEP, |s| s.pull(pr.number).is_some_and(|p| p.merged))
        .await
        .expect("merged after approval");
    h.forge
        .wait_until(STEP, |s| {
            !s.issue(ready).is_open() && !s.issue(ready).has_label("in-progress")
        })
        .await
        .expect("issue closed without in-progress");
    assert_eq!(h.forge.read(|s| s.merge_count(pr.number)), 1);
    wait_until("session and worktree gone", STEP, || async {
        (!h.has_session(&session) && !h.worktree(ready).exists()).then_some(())
    })
    .await;

    assert!(
        h.daemon().try_wait().unwrap().is_none(),
        "the daemon keeps running"
    );
    assert_eq!(h.forge.read(|s| s.pulls().count()), 1, "exactly one PR");
    assert!(h.forge.issue(waiting).is_open() && h.forge.issue(open_dep).is_open());

    // The claim is recorded done right after the cleanup.
    wait_until("the claim done", STEP, || async {
        let out = h.run(&["status", "--state", &h.state_arg(), "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (json["issues"][0]["status"] == "done").then_some(())
    })
    .await;
    let status = h.run(&["status", "--state", &h.state_arg()]);
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && table.contains(PROJECT) && table.contains("done"),
        "{table}"
    );

    let requests = h.forge.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|r| r.authorized),
        "every request carries the token"
    );
    h.assert_no_violations();
}

/// With simulated CI and reviewer the whole path runs without the test's help,
/// and a dependency declared through the forge's API holds an issue back until
/// its blocker is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forge_dependencies_hold_an_issue_until_closed() {
    let mut h = Harness::new("max_sessions = 1", "").await;
    h.forge.set_behaviour(Behaviour {
        ci: CiBehaviour::Succeed,
        review: ReviewBehaviour::ApproveWhenGreen,
        ..Default::default()
    });
    let blocker = h.forge.create_issue("Blocker", "", &[]);
    let held = h.forge.create_issue("Held back", "", &["backlog"]);
    h.forge.add_dependency(held, blocker);
    let free = h.forge.create_issue("Free to go", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    h.forge
        .wait_until(STEP, |s| !s.issue(free).is_open())
        .await
        .expect("the free issue merges");
    assert!(h.forge.issue(held).is_open() && !h.forge.issue(held).has_label("in-progress"));
    h.forge.close_issue(blocker);
    h.forge
        .wait_until(Duration::from_secs(90), |s| !s.issue(held).is_open())
        .await
        .expect("the held issue merges once its blocker is closed");
    assert_eq!(h.forge.read(|s| s.pulls().count()), 2);
    h.assert_no_violations();
}
