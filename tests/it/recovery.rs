//! Surviving crashes and restarts: `kill -9` at four points of the lifecycle,
//! graceful shutdown, start-up reconciliation and supervision giving up.
//! Each crash must end with exactly one PR, one merge, the issue closed
//! without `in-progress`, and no stray session or worktree.

use std::time::Duration;

use crate::fake_forge::{CI_CONTEXT, CiBehaviour, ReviewBehaviour};
use crate::harness::{Harness, PROJECT, STEP, auto};
use crate::support::wait_until;

/// After the crash, whatever point it hit, the issue must end merged once.
async fn assert_finished_once(h: &Harness, n: u64) {
    h.forge
        .wait_until(STEP, |s| {
            !s.issue(n).is_open() && !s.issue(n).has_label("in-progress")
        })
        .await
        .expect("closed without in-progress");
    h.wait_cleaned_up(n).await;
    assert_eq!(h.forge.read(|s| s.pulls().count()), 1, "exactly one PR");
    assert_eq!(h.forge.merges().len(), 1, "exactly one merge");
    let sessions = h.tmux(&["list-sessions", "-F", "#{session_name}"]);
    let sessions = String::from_utf8_lossy(&sessions.stdout);
    assert!(!sessions.contains("dev-"), "stray sessions: {sessions}");
    h.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_the_claim() {
    let mut h = Harness::new("max_sessions = 1", "").await;
    h.forge.set_behaviour(auto(
        CiBehaviour::Succeed,
        ReviewBehaviour::ApproveWhenGreen,
    ));
    let n = h.forge.create_issue("Crash after claim", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    h.forge
        .wait_until(STEP, |s| s.issue(n).has_label("in-progress"))
        .await
        .unwrap();
    h.kill_daemon();
    h.start_daemon();
    assert_finished_once(&h, n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_the_pr_is_opened_adopts_the_live_session() {
    let mut h = Harness::new("max_sessions = 1", "").await;
    let n = h.forge.create_issue("Crash after PR", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    h.wait_for_pr(n).await;
    let agent = h.pane_pid(&h.session(n)).expect("the agent runs");
    h.kill_daemon();
    assert!(
        h.has_session(&h.session(n)),
        "the session outlives the daemon"
    );

    h.start_daemon();
    wait_until("adoption", STEP, || async {
        h.journal(n)
            .iter()
            .any(|(_, d)| d.contains("adopted the live session"))
            .then_some(())
    })
    .await;
    assert_eq!(
        h.pane_pid(&h.session(n)),
        Some(agent),
        "the agent was not started again"
    );
    let pr = h.wait_for_pr(n).await;
    h.forge.set_status(
        &h.forge.pull(pr).head_sha,
        CI_CONTEXT,
        "success",
        "ok",
        "http://ci/1",
    );
    h.forge
        .set_behaviour(auto(CiBehaviour::None, ReviewBehaviour::ApproveWhenGreen));
    assert_finished_once(&h, n).await;
    let started = h
        .journal(n)
        .iter()
        .filter(|(_, d)| d.starts_with("started dev-"))
        .count();
    assert_eq!(started, 1, "one agent for the whole issue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_ci_runs() {
    let mut h = Harness::new("max_sessions = 1", "").await;
    let n = h.forge.create_issue("Crash during CI", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    let pr = h.wait_for_pr(n).await;
    let head = h.forge.pull(pr).head_sha;
    h.forge
        .set_status(&head, CI_CONTEXT, "pending", "running", "http://ci/1");
    wait_until("forgehand sees CI pending", STEP, || async {
        h.journal(n)
            .iter()
            .any(|(k, d)| k == "ci_state" && d.contains(": pending"))
            .then_some(())
    })
    .await;
    h.kill_daemon();
    // CI finishes and the reviewer approves while forgehand is down.
    h.forge
        .set_status(&head, CI_CONTEXT, "success", "all green", "http://ci/1");
    h.forge
        .submit_review(pr, "reviewer", "APPROVED", "ok", None, &[]);
    h.start_daemon();
    assert_finished_once(&h, n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_the_merge_call() {
    let mut h = Harness::new("max_sessions = 1", "").await;
    h.forge.set_behaviour(auto(
        CiBehaviour::Succeed,
        ReviewBehaviour::ApproveWhenGreen,
    ));
    let n = h.forge.create_issue("Crash at merge", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    h.forge
        .wait_until(STEP, |s| !s.merges().is_empty())
        .await
        .unwrap();
    h.kill_daemon();
    h.start_daemon();
    assert_finished_once(&h, n).await;
}

/// SIGTERM: exit 0 within 10 s, the session left running; the next start
/// adopts it and the issue carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_leaves_sessions_for_the_next_start() {
    let mut h = Harness::new("max_sessions = 1", "").await;
    let n = h.forge.create_issue("Shut down politely", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    h.wait_for_pr(n).await;
    let agent = h.pane_pid(&h.session(n)).expect("the agent runs");
    let (code, took) = h.stop_daemon();
    assert_eq!(code, Some(0), "{}", h.daemon_log());
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert_eq!(
        h.pane_pid(&h.session(n)),
        Some(agent),
        "the session keeps running"
    );
    assert!(h.journal(n).iter().all(|(k, _)| k != "cleaned_up"));

    h.start_daemon();
    let pr = h.wait_for_pr(n).await;
    h.forge.set_status(
        &h.forge.pull(pr).head_sha,
        CI_CONTEXT,
        "success",
        "ok",
        "http://ci/1",
    );
    h.forge
        .set_behaviour(auto(CiBehaviour::None, ReviewBehaviour::ApproveWhenGreen));
    assert_finished_once(&h, n).await;
}

/// Start-up reconciliation: a claim whose issue was closed meanwhile is
/// released and cleaned; worktrees nobody claims are removed, sessions the
/// store never recorded are not forgehand's to kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_releases_closed_claims_and_removes_strays() {
    let mut h = Harness::new("max_sessions = 1", "").await;
    let n = h.forge.create_issue("Closed while down", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    h.wait_for_pr(n).await;
    let (code, _) = h.stop_daemon();
    assert_eq!(code, Some(0));
    h.forge.close_issue(n);
    // Leftovers nobody accounts for.
    let stray = h.state.join("worktrees/proj/99");
    std::fs::create_dir_all(&stray).unwrap();
    assert!(
        h.tmux(&[
            "new-session",
            "-d",
            "-s",
            "dev-proj-98",
            "-x",
            "80",
            "-y",
            "20",
            "sleep 600"
        ])
        .status
        .success()
    );

    h.start_daemon();
    wait_until("released and cleaned", STEP, || async {
        let done = !h.has_session(&h.session(n)) && !h.worktree(n).exists() && !stray.exists();
        done.then_some(())
    })
    .await;
    // A session no claim of the store names may be a person's (or another
    // project's, `dev-proj-…` of project `proj-…`): it is left alone.
    assert!(h.has_session("dev-proj-98"));
    assert!(
        h.journal(n)
            .iter()
            .any(|(k, d)| k == "released" && d.contains("closed"))
    );
    assert!(
        h.forge.merges().is_empty(),
        "nothing merged for a closed issue"
    );
    let status = h.run(&["status", "--state", &h.state_arg(), "--json"]);
    let claims: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(claims["issues"][0]["status"], "released");
}

/// A dev actor that fails again and again is given up on: blocked, with a
/// diagnostic, while the daemon carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervision_gives_up_after_repeated_failures() {
    let mut h = Harness::new("max_sessions = 1", "").await;
    // The clone URL leads nowhere: every attempt to prepare the worktree fails.
    let project = std::fs::read_to_string(h.projects.join("proj.toml")).unwrap();
    let broken = project.replace(&h.git.bare.display().to_string(), "/nonexistent/repo.git");
    std::fs::write(h.projects.join("proj.toml"), broken).unwrap();
    let n = h.forge.create_issue("Doomed", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    h.forge
        .wait_until(Duration::from_secs(90), |s| s.issue(n).has_label("blocked"))
        .await
        .expect("blocked after repeated failures");
    let comment = h.bot_comments(n).join("\n");
    assert!(comment.contains("gave up after 5 failures"), "{comment}");
    let journal = h.journal(n);
    let failures: Vec<&str> = journal
        .iter()
        .filter(|(_, d)| d.starts_with("dev actor failed"))
        .map(|(_, d)| d.as_str())
        .collect();
    assert_eq!(failures.len(), 5);
    // Each names the cause underneath, git's own words included.
    assert!(
        failures
            .iter()
            .all(|d| d.contains("updating forgehand's clone")
                && d.contains("does not appear to be a git repository")),
        "{failures:#?}"
    );
    assert!(
        h.daemon().try_wait().unwrap().is_none(),
        "the daemon carries on"
    );
}

/// A poll acts on a list read a moment before: an issue closed since (the
/// end of an earlier claim of it, or a person), or taken out of the
/// backlog, is read again before it is claimed and left alone, with no
/// claim written for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_closed_since_the_list_was_read_is_not_claimed() {
    let h = Harness::new("max_sessions = 3", "").await;
    let closed = h.forge.create_issue("Fixed meanwhile", "", &["backlog"]);
    let unlisted = h.forge.create_issue("Out of the backlog", "", &["backlog"]);
    let ready = h.forge.create_issue("Still wanted", "", &["backlog"]);
    h.forge.freeze_lists();
    h.forge.close_issue(closed);
    h.forge.remove_label(unlisted, "backlog");
    h.enable();
    h.run_once();
    h.forge.thaw_lists();
    assert!(h.forge.issue(ready).has_label("in-progress"));
    // Only the claim that happened counts against `runs_per_day`.
    let db = forgehand::store::Db::open_read_only(&h.state.join("forgehand.db")).unwrap();
    let today = db
        .project_spend(PROJECT, chrono::Utc::now().date_naive())
        .unwrap();
    assert_eq!(today.runs_today, 1);
    for n in [closed, unlisted] {
        let issue = h.forge.issue(n);
        assert!(!issue.has_label("in-progress"), "#{n}: {:?}", issue.labels);
        assert!(!h.has_session(&format!("dev-{PROJECT}-{n}")));
        let (inside, itself) = (format!("/issues/{n}/"), format!("/issues/{n}"));
        let writes = h.forge.read(|s| {
            s.requests
                .iter()
                .filter(|r| r.method != "GET")
                .filter(|r| r.path.contains(&inside) || r.path.ends_with(&itself))
                .count()
        });
        assert_eq!(writes, 0, "#{n} is not written to");
        // No claim of it in the store: a finished one would have kept its row.
        assert!(db.claim(PROJECT, n).unwrap().is_none(), "#{n} has a claim");
        let journal = h.journal(n);
        assert!(
            journal
                .iter()
                .any(|(kind, d)| kind == "released" && d.starts_with("not claimed: ")),
            "#{n}: {journal:?}"
        );
    }
    h.assert_no_violations();
}

/// A daemon stopped while its git wrote to forgehand's clone leaves git's
/// lock files there; the next one clears them at start rather than failing
/// every fetch on "could not lock config file".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_locks_a_stopped_daemon_left_in_the_clone_are_cleared_at_start() {
    let mut h = Harness::new("", "").await;
    let repos = h.state.join("repos");
    std::fs::create_dir_all(&repos).unwrap();
    let bare = h.git.bare.display().to_string();
    crate::support::git(&repos, &["clone", "--bare", "-q", &bare, PROJECT]);
    let clone = repos.join(PROJECT);
    let locks = [
        clone.join("config.lock"),
        clone.join("refs/heads/main.lock"),
    ];
    for lock in &locks {
        std::fs::write(lock, "").unwrap();
    }
    let n = h.forge.create_issue("After a stop", "", &["backlog"]);
    h.enable();
    h.start_daemon();
    h.forge
        .wait_until(STEP, |s| {
            s.pull_for_branch(&format!("fix/issue-{n}")).is_some()
        })
        .await
        .expect("the work goes on in the clone");
    for lock in &locks {
        assert!(!lock.exists(), "{} is left", lock.display());
    }
    let refspec = crate::support::git(&clone, &["config", "--get-all", "remote.origin.fetch"]);
    assert_eq!(refspec.trim(), "+refs/heads/*:refs/remotes/origin/*");
    h.assert_no_violations();
}

/// 20 issues while a fifth of all requests fail (5xx, 429 with Retry-After,
/// HTML pages, resets, slow answers, and answers lost after the forge acted):
/// every issue ends merged exactly once, with nothing duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_twenty_issues_with_twenty_percent_faults() {
    use crate::fake_forge::{Chaos, Fault};
    let mut h = Harness::new("max_sessions = 4", "").await;
    h.forge.set_behaviour(auto(
        CiBehaviour::Succeed,
        ReviewBehaviour::ApproveWhenGreen,
    ));
    let issues: Vec<u64> = (1..=20)
        .map(|i| {
            h.forge
                .create_issue(&format!("Chaos task {i}"), "", &["backlog"])
        })
        .collect();
    h.enable();
    h.start_daemon();
    // Faults start once the daemon is up (its start-up asks who it is).
    h.forge
        .wait_until(STEP, |s| s.requests_matching("GET", "/issues").count() > 0)
        .await
        .unwrap();
    h.forge.set_chaos(Chaos {
        rate: 0.2,
        seed: 20261122,
        faults: vec![
            Fault::Status {
                status: 500,
                retry_after: None,
            },
            Fault::Status {
                status: 502,
                retry_after: None,
            },
            Fault::Status {
                status: 503,
                retry_after: None,
            },
            Fault::Status {
                status: 429,
                retry_after: Some(1),
            },
            Fault::Html { status: 502 },
            Fault::Html { status: 200 },
            Fault::Reset,
            Fault::Delay(Duration::from_millis(300)),
            Fault::Status {
                status: 502,
                retry_after: None,
            }
            .after_apply(),
            Fault::Reset.after_apply(),
        ],
    });
    h.forge
        .wait_until(Duration::from_secs(300), |s| {
            issues.iter().all(|&n| !s.issue(n).is_open())
        })
        .await
        .expect("all 20 issues merged and closed");
    h.forge.clear_chaos();
    assert!(
        h.forge.faults_injected() > 50,
        "faults were injected: {}",
        h.forge.faults_injected()
    );
    for &n in &issues {
        h.wait_cleaned_up(n).await;
        let issue = h.forge.issue(n);
        assert!(
            !issue.has_label("in-progress") && !issue.has_label("blocked"),
            "#{n}: {:?}",
            issue.labels
        );
        let prs: Vec<u64> = h.forge.read(|s| {
            s.pulls()
                .filter(|p| p.head == format!("fix/issue-{n}"))
                .map(|p| p.number)
                .collect()
        });
        assert_eq!(prs.len(), 1, "#{n} has exactly one PR");
        assert_eq!(
            h.forge.read(|s| s.merge_count(prs[0])),
            1,
            "#{n} merged exactly once"
        );
        assert!(
            h.bot_comments(n).is_empty(),
            "#{n}: no stray comments: {:?}",
            h.bot_comments(n)
        );
    }
    let labels = h.forge.read(|s| {
        s.labels()
            .iter()
            .map(|l| l.name.clone())
            .collect::<Vec<_>>()
    });
    let mut unique = labels.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        labels.len(),
        unique.len(),
        "no label created twice: {labels:?}"
    );
    h.assert_no_violations();
}

/// A forge that is down when forgehand starts is waited for, not given up
/// on; a token the forge rejects is a clear error at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forge_down_at_start_is_waited_for_and_a_bad_token_is_refused() {
    use crate::fake_forge::{Fault, FaultRule};
    let mut h = Harness::new("max_sessions = 1", "").await;
    h.forge.set_behaviour(auto(
        CiBehaviour::Succeed,
        ReviewBehaviour::ApproveWhenGreen,
    ));
    let n = h.forge.create_issue("After the outage", "", &["backlog"]);
    // More failures in a row than one call's retry policy allows.
    h.forge.inject_fault(FaultRule {
        times: 8,
        ..FaultRule::on(
            "GET",
            "/api/v1/user",
            Fault::Status {
                status: 503,
                retry_after: None,
            },
        )
    });
    h.enable();
    h.start_daemon();
    h.forge
        .wait_until(Duration::from_secs(120), |s| !s.issue(n).is_open())
        .await
        .expect("merged once the forge answered");
    assert!(h.daemon().try_wait().unwrap().is_none());
    let (code, _) = h.stop_daemon();
    assert_eq!(code, Some(0));

    let out = h
        .command(&[
            "run",
            "--projects",
            &h.projects.display().to_string(),
            "--state",
            &h.state_arg(),
        ])
        .env("FORGE_TOKEN", "not-the-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rejects forgehand's token"), "{stderr}");
    assert!(
        !stderr.contains("not-the-token"),
        "the token is never printed: {stderr}"
    );
}
