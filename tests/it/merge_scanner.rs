//! The merge scanner (DESIGN §1 "MergeScanner") and mirror pushes, end to end:
//! the real daemon merges approved, CI-green PRs that no dev actor owns —
//! people's PRs and orphaned agent PRs — and pushes the primary branch to every
//! `[mirrors]` URL after each merge.

use std::sync::{Arc, Mutex};

use forgehand::actors::merge_scanner::linked_issues;
use forgehand::actors::merging::is_draft;
use forgehand::forge::IssueNumber;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fake_forge::fixture::git;
use crate::fake_forge::{CI_CONTEXT, ForgeState, REVIEWER};
use crate::harness::{Harness, PROJECT, STEP};
use crate::support::wait_until;

/// Opens a PR through the forge's API, as a person would from the web UI.
async fn open_pull(h: &Harness, head: &str, base: &str, title: &str, body: &str) -> u64 {
    crate::poll_cost::open_pull(&h.forge, head, base, title, body).await
}

/// Pushes a branch with one new commit on top of `main` and returns its head.
fn push_branch(h: &Harness, branch: &str, file: &str) -> String {
    h.git.branch(branch, "main");
    let head = h
        .git
        .commit(file, &format!("{branch}\n"), &format!("work on {branch}"));
    h.git.push(branch);
    head
}

/// A person's PR from a new `branch` into `main`, green and approved on its
/// head: ready for the scanner. Its number.
pub(crate) async fn ready_pull(h: &Harness, branch: &str, file: &str) -> u64 {
    let head = push_branch(h, branch, file);
    let pr = open_pull(h, branch, "main", branch, "by hand").await;
    green(h, &head);
    approve(h, pr);
    pr
}

fn green(h: &Harness, sha: &str) {
    h.forge.set_status(
        sha,
        CI_CONTEXT,
        "success",
        "tests pass",
        "http://ci.example/1",
    );
}

fn approve(h: &Harness, pr: u64) {
    h.forge
        .submit_review(pr, REVIEWER, "APPROVED", "looks good", None, &[]);
}

/// How many times the open PRs were listed: the scanner lists them at least
/// every tenth scan (its safety net), more often when a change names one.
fn pull_lists(s: &ForgeState) -> usize {
    s.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/repos/acme/widget/pulls"))
        .count()
}

/// Waits until at least one whole scan ran after this call: the second listing
/// from now starts only once the scan of the first one is over.
async fn full_scan(h: &Harness) {
    let seen = h.forge.read(pull_lists);
    h.forge
        .wait_until(STEP, |s| pull_lists(s) >= seen + 2)
        .await
        .expect("the scanner keeps scanning");
}

fn merge_requests(h: &Harness, pr: u64) -> Vec<Value> {
    h.forge.read(|s| {
        s.requests_matching("POST", &format!("/pulls/{pr}/merge"))
            .filter_map(|r| r.json())
            .collect()
    })
}

/// The whole project's journal, issue-less entries included.
fn project_journal(h: &Harness) -> Vec<(Option<u64>, String, String)> {
    let store = forgehand::store::Db::open_read_only(&h.state.join("forgehand.db"))
        .expect("the daemon's database");
    store
        .events(PROJECT, None)
        .expect("reading the journal")
        .into_iter()
        .map(|e| (e.issue, e.kind, e.detail))
        .collect()
}

fn assert_no_violations(h: &Harness) {
    h.assert_no_violations();
}

#[test]
fn linked_issues_come_from_the_branch_and_closing_keywords() {
    let n = |v: &[u64]| v.iter().map(|&n| IssueNumber(n)).collect::<Vec<_>>();
    let numbered = |k: &str| k.parse().ok().map(IssueNumber);
    let linked = |head: &str, body: &str| linked_issues(head, body, numbered);
    assert_eq!(linked("fix/issue-42", "Fixes #42"), n(&[42]));
    assert_eq!(
        linked(
            "feature",
            "Does things.\n\nFixes #3\ncloses #7, resolves: #9"
        ),
        n(&[3, 7, 9])
    );
    assert_eq!(linked("fix/issue-5", "Resolves #6"), n(&[5, 6]));
    assert_eq!(linked("feature", "See #4; prefixes #8"), n(&[]));
    assert_eq!(linked("fix/issue-x", ""), n(&[]));
    // The forge maps branch keys: a local plan named `7` is its own issue.
    let plans = |k: &str| match k {
        "7" => Some(IssueNumber(3)),
        "add-login" => Some(IssueNumber(4)),
        _ => None,
    };
    assert_eq!(linked_issues("fix/issue-7", "", plans), n(&[3]));
    assert_eq!(
        linked_issues("fix/issue-add-login", "Fixes #4", plans),
        n(&[4])
    );
}

#[test]
fn drafts_are_recognised_by_their_title() {
    for t in [
        "WIP: greeting",
        "[WIP] greeting",
        "wip",
        "Draft: x",
        "  WIP - y",
    ] {
        assert!(is_draft(t), "{t}");
    }
    for t in [
        "Wipe stale sessions",
        "fix: greeting (#3)",
        "Add a draft mode",
    ] {
        assert!(!is_draft(t), "{t}");
    }
}

/// (a) A person's PR with no linked issue, approved on its head and green, is
/// merged once, with the approved head, and the base branch really moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_green_pr_without_an_issue_is_merged_once() {
    let mut h = Harness::new("", "").await;
    let base_before = h.git.bare_sha("main");
    let head = push_branch(&h, "feature/greeting", "greeting-de.txt");
    let pr = open_pull(&h, "feature/greeting", "main", "German greeting", "Hallo.").await;
    green(&h, &head);
    approve(&h, pr);
    h.enable();
    h.start_daemon();

    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
        .await
        .expect("the scanner merges the PR");
    full_scan(&h).await;
    assert_eq!(h.forge.read(|s| s.merge_count(pr)), 1);
    let requests = merge_requests(&h, pr);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["head_commit_id"], head.as_str());
    assert_eq!(requests[0]["Do"], "merge");

    let base_after = h.git.bare_sha("main");
    assert_ne!(base_after, base_before);
    assert_eq!(h.forge.merges()[0].base_after, base_after);
    git(
        &h.git.bare,
        &["merge-base", "--is-ancestor", &head, &base_after],
    );

    let merged: Vec<_> = project_journal(&h)
        .into_iter()
        .filter(|(_, kind, _)| kind == "merged")
        .collect();
    assert_eq!(merged.len(), 1, "{merged:?}");
    assert_eq!(merged[0].0, None, "no linked issue");
    assert!(merged[0].2.contains(&format!("PR #{pr}")), "{merged:?}");
    assert!(h.daemon().try_wait().unwrap().is_none());
    assert_no_violations(&h);
}

/// (b) An approval on an older head does not count, nor does one that is not
/// official (by an account without write access), and neither a draft nor a
/// PR into another branch is merged; an official approval on the current head
/// is what merges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_approvals_drafts_and_other_bases_are_not_merged() {
    let mut h = Harness::new("", "").await;
    push_branch(&h, "feature/stale", "stale.txt");
    let stale = open_pull(&h, "feature/stale", "main", "Stale approval", "").await;
    approve(&h, stale);
    let new_head = h.git.commit("stale.txt", "moved on\n", "a later push");
    h.git.push("feature/stale");
    green(&h, &new_head);

    let draft_head = push_branch(&h, "feature/draft", "draft.txt");
    let draft = open_pull(&h, "feature/draft", "main", "WIP: not yet", "").await;
    green(&h, &draft_head);
    approve(&h, draft);

    h.git.branch("release", "main");
    h.git.push("release");
    let other_head = push_branch(&h, "feature/backport", "backport.txt");
    let other = open_pull(&h, "feature/backport", "release", "Backport", "").await;
    green(&h, &other_head);
    approve(&h, other);

    // Approved only by an account without write access: not an official review.
    let drive_by_head = push_branch(&h, "feature/drive-by", "drive-by.txt");
    let drive_by = open_pull(&h, "feature/drive-by", "main", "Drive-by approval", "").await;
    green(&h, &drive_by_head);
    h.forge
        .submit_review(drive_by, "passer-by", "APPROVED", "lgtm!", None, &[]);

    h.enable();
    h.start_daemon();
    full_scan(&h).await;
    for pr in [stale, draft, other, drive_by] {
        assert!(!h.forge.pull(pr).merged, "PR #{pr} merged");
        assert!(merge_requests(&h, pr).is_empty(), "merge of PR #{pr} tried");
    }

    // The scanner was looking all along: an approval on the head is enough.
    approve(&h, stale);
    h.forge
        .wait_until(STEP, |s| s.pull(stale).is_some_and(|p| p.merged))
        .await
        .expect("merged once approved on its head");
    assert_eq!(
        merge_requests(&h, stale)[0]["head_commit_id"],
        new_head.as_str()
    );
    full_scan(&h).await;
    assert!(!h.forge.pull(draft).merged && !h.forge.pull(other).merged);
    assert!(!h.forge.pull(drive_by).merged);

    // An official approval of the drive-by PR's head is what merges it.
    approve(&h, drive_by);
    h.forge
        .wait_until(STEP, |s| s.pull(drive_by).is_some_and(|p| p.merged))
        .await
        .expect("merged once officially approved");
    assert_eq!(
        merge_requests(&h, drive_by)[0]["head_commit_id"],
        drive_by_head.as_str()
    );
    assert_no_violations(&h);
}

/// (c) An agent's PR whose issue is `in-progress` but has no dev actor is
/// merged, and its issue closed without `in-progress`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_agent_pr_is_merged_and_its_issue_closed() {
    let mut h = Harness::new("", "").await;
    let issue = h
        .forge
        .create_issue("Add a greeting", "Say hello.", &["in-progress"]);
    let branch = format!("fix/issue-{issue}");
    let head = push_branch(&h, &branch, "greeting-en.txt");
    let pr = open_pull(
        &h,
        &branch,
        "main",
        &format!("fix: Add a greeting (#{issue})"),
        &format!("Adds the greeting.\n\nFixes #{issue}"),
    )
    .await;
    green(&h, &head);
    approve(&h, pr);
    h.enable();
    h.start_daemon();

    h.forge
        .wait_until(STEP, |s| {
            s.pull(pr).is_some_and(|p| p.merged)
                && !s.issue(issue).is_open()
                && !s.issue(issue).has_label("in-progress")
        })
        .await
        .expect("merged, issue closed without in-progress");
    // The journal line follows the forge's answer: wait for it too.
    let journal = crate::support::wait_until("the closing journaled", STEP, || async {
        let journal = h.journal(issue);
        journal
            .iter()
            .any(|(k, _)| k == "closed")
            .then_some(journal)
    })
    .await;
    assert!(
        journal
            .iter()
            .any(|(k, d)| k == "merged" && d.contains(&format!("PR #{pr}"))),
        "{journal:?}"
    );
    assert_eq!(h.forge.read(|s| s.merge_count(pr)), 1);
    assert_no_violations(&h);
}

/// Accepts HTTP connections, records each request head and answers 404: a
/// mirror host that shows what git sent it.
async fn spy_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the spy");
    let url = format!(
        "http://{}/acme/widget.git",
        listener.local_addr().expect("spy address")
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    // Ends with the test's runtime.
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => head.extend_from_slice(&buf[..k]),
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = conn
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
    });
    (url, seen)
}

/// (d) After each merge the primary branch reaches every mirror that works; a
/// failing mirror is journaled and holds nothing up, and no mirror is sent the
/// forge's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_are_pushed_to_mirrors_and_failing_ones_do_not_block() {
    let good = tempfile::tempdir().expect("temp dir");
    git(good.path(), &["init", "--bare", "-q"]);
    let missing = good.path().join("no-such-mirror.git");
    let (spy_url, spy) = spy_server().await;
    let sections = format!(
        "[mirrors]\ngood = \"{}\"\nmissing = \"{}\"\nspy = \"{spy_url}\"\n",
        good.path().display(),
        missing.display()
    );
    let mut h = Harness::new("", &sections).await;
    let mirror_main = |dir: &std::path::Path| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "--verify", "--quiet", "refs/heads/main"])
            .output()
            .expect("running git");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };

    let first_head = push_branch(&h, "feature/one", "one.txt");
    let first = open_pull(&h, "feature/one", "main", "First", "").await;
    green(&h, &first_head);
    approve(&h, first);
    h.enable();
    h.start_daemon();
    h.forge
        .wait_until(STEP, |s| s.pull(first).is_some_and(|p| p.merged))
        .await
        .expect("the first PR is merged");
    let forge_main = h.git.bare_sha("main");
    wait_until("the good mirror gets main", STEP, || async {
        (mirror_main(good.path()) == forge_main).then_some(())
    })
    .await;
    let failures = wait_until("both failing mirrors journaled", STEP, || async {
        let failures: Vec<String> = project_journal(&h)
            .into_iter()
            .filter(|(issue, kind, _)| issue.is_none() && kind == "error")
            .map(|(_, _, detail)| detail)
            .collect();
        let named = |m: &str| failures.iter().any(|d| d.contains(&format!("mirror {m}:")));
        (named("missing") && named("spy")).then_some(failures)
    })
    .await;
    assert!(
        !failures.iter().any(|d| d.contains("mirror good:")),
        "{failures:?}"
    );
    assert!(!missing.exists(), "nothing is created at a missing mirror");

    // The failing mirrors are still being retried; the next merge goes ahead.
    let second_head = push_branch(&h, "feature/two", "two.txt");
    let second = open_pull(&h, "feature/two", "main", "Second", "").await;
    green(&h, &second_head);
    approve(&h, second);
    h.forge
        .wait_until(STEP, |s| s.pull(second).is_some_and(|p| p.merged))
        .await
        .expect("the second PR is merged");
    let forge_main = h.git.bare_sha("main");
    wait_until("the good mirror follows", STEP, || async {
        (mirror_main(good.path()) == forge_main).then_some(())
    })
    .await;
    assert!(
        h.daemon().try_wait().unwrap().is_none(),
        "the daemon runs on"
    );

    let requests = spy.lock().unwrap().clone();
    assert!(!requests.is_empty(), "git talked to the spy mirror");
    for request in &requests {
        let lower = request.to_ascii_lowercase();
        assert!(
            !lower.contains("authorization") && !request.contains(h.forge.token()),
            "credentials sent to a mirror: {request}"
        );
    }
    assert_no_violations(&h);
}

/// (d') A mirror that was down when the merge was pushed gets it when the
/// daemon starts again, without waiting for another merge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_that_missed_a_merge_catches_up_at_the_next_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let late = dir.path().join("late.git");
    let sections = format!("[mirrors]\nlate = \"{}\"\n", late.display());
    let mut h = Harness::new("", &sections).await;
    let head = push_branch(&h, "feature/one", "one.txt");
    let pr = open_pull(&h, "feature/one", "main", "First", "").await;
    green(&h, &head);
    approve(&h, pr);
    h.enable();
    h.start_daemon();
    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
        .await
        .expect("the PR is merged");
    wait_until("the failed push journaled", STEP, || async {
        project_journal(&h)
            .iter()
            .any(|(_, _, d)| d.contains("mirror late: push 1 of"))
            .then_some(())
    })
    .await;
    h.stop_daemon();
    // The mirror is back; nothing new is merged.
    git(dir.path(), &["init", "--bare", "-q", "late.git"]);
    h.start_daemon();
    let forge_main = h.git.bare_sha("main");
    wait_until("the mirror catches up", STEP, || async {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&late)
            .args(["rev-parse", "--verify", "--quiet", "refs/heads/main"])
            .output()
            .expect("running git");
        (String::from_utf8_lossy(&out.stdout).trim() == forge_main).then_some(())
    })
    .await;
    assert_no_violations(&h);
}

/// (e) Without `state/.dev-active` a scan merges nothing; with it, the same
/// `run --once` merges (and the run still ends once every scanner reported).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_merged_while_disabled() {
    let h = Harness::new("", "").await;
    let head = push_branch(&h, "feature/greeting", "greeting-fr.txt");
    let pr = open_pull(&h, "feature/greeting", "main", "French greeting", "").await;
    green(&h, &head);
    approve(&h, pr);
    h.run_once();
    assert!(!h.forge.pull(pr).merged);
    assert!(merge_requests(&h, pr).is_empty());

    h.enable();
    h.run_once();
    assert!(h.forge.pull(pr).merged, "merged by the one scan");
    assert_eq!(h.forge.read(|s| s.merge_count(pr)), 1);
    assert_no_violations(&h);
}
