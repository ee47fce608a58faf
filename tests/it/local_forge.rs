//! The local forge backend against real folders and a real git repository:
//! numbering, labels and folder moves, reports, bad plans, CI runs, review files
//! from the CLI, merges (issue 6).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use forgehand::config::Labels;
use forgehand::forge::local::{CI_CONTEXT, CiConfinement, LocalArgs, LocalForge};
use forgehand::forge::{
    CommitSha, Forge, ForgeError, IssueNumber, IssueState, MergeMethod, MergeRequest, NewPull,
    Nudge, ReviewState, StatusState,
};
use forgehand::store::Store;
use tempfile::TempDir;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::support::git;

const WAIT: Duration = Duration::from_secs(30);

/// A plans folder, a repository with `main` checked out, a work clone to push
/// branches from, and a journal.
struct Fixture {
    dir: TempDir,
    plans: PathBuf,
    repo: PathBuf,
    work: PathBuf,
    store: Arc<Store>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let plans = dir.path().join("plans");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&plans).unwrap();
        git(
            dir.path(),
            &["init", "--quiet", "--initial-branch=main", "repo"],
        );
        std::fs::write(repo.join("README.md"), "hello\n").unwrap();
        git(&repo, &["add", "README.md"]);
        git(&repo, &["commit", "--quiet", "-m", "initial"]);
        let work = dir.path().join("work");
        git(
            dir.path(),
            &["clone", "--quiet", repo.to_str().unwrap(), "work"],
        );
        let store = Arc::new(Store::open(&dir.path().join("forgehand.db")).unwrap());
        Fixture {
            dir,
            plans,
            repo,
            work,
            store,
        }
    }

    fn forge(&self, ci_command: Option<&str>, ci_timeout: Duration) -> LocalForge {
        LocalForge::open(LocalArgs {
            plans: self.plans.clone(),
            repo: self.repo.clone(),
            primary_branch: "main".into(),
            labels: labels(),
            ci_command: ci_command.map(str::to_string),
            ci_timeout,
            journal: Some((self.store.clone(), "proj".into())),
            ci_confinement: CiConfinement::minimal(),
        })
        .expect("opening the local forge")
    }

    fn plan(&self, key: &str, text: &str) {
        std::fs::write(self.plans.join(format!("{key}.md")), text).unwrap();
    }

    /// Commits `file` on `fix/issue-<key>` in the work clone and pushes it; its sha.
    fn push_fix(&self, key: &str, file: &str, content: &str) -> String {
        let branch = format!("fix/issue-{key}");
        git(
            &self.work,
            &["checkout", "--quiet", "-B", &branch, "origin/main"],
        );
        std::fs::write(self.work.join(file), content).unwrap();
        git(&self.work, &["add", file]);
        git(
            &self.work,
            &["commit", "--quiet", "-m", &format!("fix {key}")],
        );
        git(&self.work, &["push", "--quiet", "-f", "origin", &branch]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Read through the store the forge journals to, so every line it
    /// queued is there.
    async fn journal(&self) -> Vec<String> {
        self.store
            .events("proj", None)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.detail)
            .collect()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.plans.join(rel))
            .unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }
}

fn labels() -> Labels {
    Labels {
        backlog: "backlog".into(),
        priority: "priority".into(),
        in_progress: "in-progress".into(),
        blocked: "blocked".into(),
        underspecified: "underspecified".into(),
    }
}

async fn open_pull(forge: &LocalForge, key: &str) -> forgehand::forge::PullRequest {
    forge
        .create_pull(&NewPull {
            head: format!("fix/issue-{key}"),
            base: "main".into(),
            title: format!("fix: {key}"),
            body: format!("The agent fixed {key}."),
            draft: false,
        })
        .await
        .expect("creating the pull")
}

/// Waits for the CI result of `sha` to be announced.
async fn ci_done(rx: &mut UnboundedReceiver<Nudge>, sha: &str) {
    tokio::time::timeout(WAIT, async {
        while let Some(n) = rx.recv().await {
            if n == Nudge::Commit(CommitSha(sha.into())) {
                return;
            }
        }
        panic!("nudges ended");
    })
    .await
    .expect("CI finished in time");
}

#[tokio::test]
async fn plans_are_numbered_once_and_keep_their_numbers() {
    let f = Fixture::new();
    f.plan("alpha", "# Alpha\n\nFirst.\n");
    f.plan(
        "beta",
        "---\nlabels: [priority]\ndepends_on: [alpha]\n---\n# Beta\nSecond.\n",
    );
    let forge = f.forge(None, WAIT);
    let issues = forge.list_open_issues("backlog").await.unwrap();
    assert_eq!(issues.len(), 2);
    let alpha = issues.iter().find(|i| i.title == "Alpha").unwrap().number;
    let beta = issues.iter().find(|i| i.title == "Beta").unwrap();
    assert!(beta.has_label("priority") && beta.has_label("backlog"));
    assert_eq!(beta.body, "Second.");
    assert_eq!(forge.issue_key(alpha), "alpha");
    let deps = forge.issue_dependencies(beta.number).await.unwrap();
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0].number, alpha);
    drop(forge);

    let again = f.forge(None, WAIT);
    assert_eq!(again.issue_for_key("alpha"), Some(alpha));
    assert_eq!(again.issue_for_key("beta"), Some(beta.number));
    f.plan("gamma", "# Gamma\n");
    again.list_open_issues("backlog").await.unwrap();
    let gamma = again.issue_for_key("gamma").unwrap();
    assert!(gamma.0 > alpha.0.max(beta.number.0), "a fresh number");
}

#[tokio::test]
async fn labels_overlay_block_moves_with_a_report_and_back_again() {
    let f = Fixture::new();
    f.plan("task", "---\nlabels: [bug]\n---\n# A task\nDo it.\n");
    let forge = f.forge(None, WAIT);
    forge.list_open_issues("backlog").await.unwrap();
    let n = forge.issue_for_key("task").unwrap();

    forge.add_label(n, "in-progress").await.unwrap();
    forge.remove_label(n, "backlog").await.unwrap();
    let issue = forge.get_issue(n).await.unwrap();
    assert!(issue.has_label("in-progress") && issue.has_label("bug"));
    assert!(!issue.has_label("backlog"));
    assert!(forge.list_open_issues("backlog").await.unwrap().is_empty());

    forge
        .create_comment(n.0, "forgehand stopped working on this issue: stuck")
        .await
        .unwrap();
    forge.add_label(n, "blocked").await.unwrap();
    forge.remove_label(n, "in-progress").await.unwrap();
    assert!(!f.plans.join("task.md").exists());
    assert!(f.plans.join("blocked/task.md").exists(), "plan moved");
    let report = f.read("blocked/task.report.md");
    assert!(report.contains("status: blocked"), "{report}");
    assert!(report.contains("stuck"), "the diagnostic: {report}");
    let issue = forge.get_issue(n).await.unwrap();
    assert_eq!(issue.state, IssueState::Open);
    assert!(issue.has_label("blocked"));

    // A human moves it back: a plain backlog issue again, same number.
    std::fs::rename(f.plans.join("blocked/task.md"), f.plans.join("task.md")).unwrap();
    let issues = forge.list_open_issues("backlog").await.unwrap();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].number, n);
    assert!(!issues[0].has_label("blocked") && !issues[0].has_label("in-progress"));
}

/// No character of `report` is a control a terminal acts on (newline aside).
fn assert_no_controls(report: &str) {
    let raw: Vec<char> = report
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(raw.is_empty(), "raw controls {raw:?} in\n{report}");
}

/// Titles, comments and errors holding terminal controls (an OSC retitling the
/// window, a CSI clearing it, 8-bit CSI) reach the reports escaped.
#[tokio::test]
async fn reports_escape_control_characters() {
    let f = Fixture::new();
    f.plan("task", "# fix\u{1b}]0;pwned\u{7} \u{9b}2J\nDo it.\n");
    f.plan(
        "orphan",
        "---\ndepends_on: [\"no\u{1b}[2Jwhere\"]\n---\n# Orphan\n",
    );
    let forge = f.forge(None, WAIT);
    forge.list_open_issues("backlog").await.unwrap();
    let n = forge.issue_for_key("task").unwrap();
    forge.add_label(n, "in-progress").await.unwrap();
    forge
        .create_comment(n.0, "stuck:\r\n\u{1b}[31mred\u{1b}[0m\u{7f}")
        .await
        .unwrap();
    forge.add_label(n, "blocked").await.unwrap();

    let report = f.read("blocked/task.report.md");
    assert_no_controls(&report);
    assert!(
        report.starts_with("# fix\\x1b]0;pwned\\x07 \\u{9b}2J\n"),
        "{report}"
    );
    assert!(
        report.contains("stuck:\n\\x1b[31mred\\x1b[0m\\x7f"),
        "lines kept: {report}"
    );

    let orphan = f.read("orphan.report.md");
    assert_no_controls(&orphan);
    assert!(orphan.contains("no\\x1b[2Jwhere"), "{orphan}");
}

#[tokio::test]
async fn a_bad_plan_is_reported_once_and_picked_once_fixed() {
    let f = Fixture::new();
    f.plan("headless", "just some text\nwithout a heading\n");
    f.plan("orphan", "---\ndepends_on: [nowhere]\n---\n# Orphan\n");
    let forge = f.forge(None, WAIT);
    for _ in 0..2 {
        assert!(forge.list_open_issues("backlog").await.unwrap().is_empty());
    }
    let report = f.read("headless.report.md");
    assert!(report.contains("status: invalid"), "{report}");
    assert!(report.contains("headless.md:1:"), "file:line: {report}");
    assert!(report.contains("no title heading"), "{report}");
    let orphan = f.read("orphan.report.md");
    assert!(orphan.contains("orphan.md:2:"), "{orphan}");
    assert!(orphan.contains("no plan `nowhere`"), "{orphan}");
    assert!(f.plans.join("headless.md").exists(), "the plan stays");

    let journal = f.journal().await;
    let about = |key: &str| {
        journal
            .iter()
            .filter(|d| d.contains(&format!("`{key}`")))
            .count()
    };
    assert_eq!(about("headless"), 1, "once per error: {journal:?}");
    assert_eq!(about("orphan"), 1, "{journal:?}");

    f.plan("headless", "# Now with a heading\n\nbody\n");
    let issues = forge.list_open_issues("backlog").await.unwrap();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].title, "Now with a heading");
    assert!(
        !f.plans.join("headless.report.md").exists(),
        "stale report gone"
    );
}

#[tokio::test]
async fn ci_runs_the_command_in_a_clean_checkout() {
    let f = Fixture::new();
    f.plan("ok", "# Ok\n");
    let sha = f.push_fix("ok", "fixed.txt", "yes\n");
    // Passes only where the pushed file is checked out.
    let forge = f.forge(Some("test -f fixed.txt && echo all good"), WAIT);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    forge.watch(tx).unwrap();
    let pr = open_pull(&forge, "ok").await;
    assert_eq!(pr.head_sha.0, sha);

    let first = forge.combined_status(&pr.head_sha).await.unwrap();
    assert_eq!(first.state, Some(StatusState::Pending));
    ci_done(&mut rx, &sha).await;
    let done = forge.combined_status(&pr.head_sha).await.unwrap();
    assert_eq!(done.state, Some(StatusState::Success), "{done:?}");
    assert_eq!(done.statuses[0].context, CI_CONTEXT);
    assert!(
        !f.plans.join(".forgehand/ci").join(&sha).exists(),
        "checkout removed"
    );

    // Persisted: a new forge does not run it again.
    drop(forge);
    let again = f.forge(Some("false"), WAIT);
    let kept = again.combined_status(&pr.head_sha).await.unwrap();
    assert_eq!(kept.state, Some(StatusState::Success));
}

#[tokio::test]
async fn a_failing_command_reports_its_exit_status_and_output_tail() {
    let f = Fixture::new();
    f.plan("bad", "# Bad\n");
    let sha = f.push_fix("bad", "x.txt", "x\n");
    let command = "for i in $(seq 1 100); do echo line $i; done; echo boom >&2; exit 3";
    let forge = f.forge(Some(command), WAIT);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    forge.watch(tx).unwrap();
    open_pull(&forge, "bad").await;
    forge
        .combined_status(&CommitSha(sha.clone()))
        .await
        .unwrap();
    ci_done(&mut rx, &sha).await;
    let status = forge.combined_status(&CommitSha(sha)).await.unwrap();
    assert_eq!(status.state, Some(StatusState::Failure));
    let text = &status.statuses[0].description;
    assert!(text.contains("exited with 3"), "{text}");
    assert!(text.contains("line 100") && text.contains("boom"), "{text}");
    assert!(!text.contains("line 50\n"), "only the tail: {text}");
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_the_timeout() {
    let f = Fixture::new();
    f.plan("hang", "# Hang\n");
    let sha = f.push_fix("hang", "h.txt", "h\n");
    let pid_file = f.dir.path().join("sleeper.pid");
    let command = format!(
        "echo started; sleep 600 & echo $! > {}; wait",
        pid_file.display()
    );
    let forge = f.forge(Some(&command), Duration::from_secs(2));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    forge.watch(tx).unwrap();
    forge
        .combined_status(&CommitSha(sha.clone()))
        .await
        .unwrap();
    ci_done(&mut rx, &sha).await;
    let status = forge.combined_status(&CommitSha(sha)).await.unwrap();
    assert_eq!(status.state, Some(StatusState::Failure));
    let text = &status.statuses[0].description;
    assert!(text.contains("timed out after 2s"), "{text}");
    assert!(text.contains("started"), "{text}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    crate::support::wait_until("the background sleep to die", WAIT, || async {
        // A zombie is dead too: its parent shell was killed with it.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z ")).then_some(())
    })
    .await;
}

fn write_project(f: &Fixture, approvals: u32) -> PathBuf {
    let projects = f.dir.path().join("projects");
    std::fs::create_dir_all(&projects).unwrap();
    std::fs::write(
        projects.join("proj.toml"),
        format!(
            "name = \"proj\"\nrepo = \"local/proj\"\nclone_url = \"{}\"\n\n[forge]\nkind = \"local\"\n\
             url = \"{}\"\n\n[agent]\ncommand = \"true\"\n\n[review]\nrequired_approvals = {approvals}\n",
            f.repo.display(),
            f.plans.display()
        ),
    )
    .unwrap();
    projects
}

fn cli(projects: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec![args[0], "--projects", projects.to_str().unwrap()];
    all.extend(&args[1..]);
    std::process::Command::new(env!("CARGO_BIN_EXE_forgehand"))
        .args(&all)
        .env("USER", "alice")
        .output()
        .expect("running forgehand")
}

#[tokio::test]
async fn approve_and_request_changes_write_reviews_on_the_current_head() {
    let f = Fixture::new();
    f.plan("rev", "# Review me\n");
    let projects = write_project(&f, 1);
    let forge = f.forge(None, WAIT);
    forge.list_open_issues("backlog").await.unwrap();

    let none = cli(&projects, &["approve", "proj", "rev"]);
    assert_eq!(none.status.code(), Some(1), "{none:?}");
    assert!(String::from_utf8_lossy(&none.stderr).contains("no open pull request"));
    let unknown = cli(&projects, &["approve", "nope", "rev"]);
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    forge.watch(tx).unwrap();
    let sha = f.push_fix("rev", "r.txt", "r\n");
    let pr = open_pull(&forge, "rev").await;
    let out = cli(
        &projects,
        &["request-changes", "proj", "rev", "--message", "rename it"],
    );
    assert!(out.status.success(), "{out:?}");
    // The watcher tells the pull's owner.
    tokio::time::timeout(WAIT, async {
        while let Some(n) = rx.recv().await {
            if n == Nudge::Pull(pr.number) {
                return;
            }
        }
    })
    .await
    .expect("a nudge for the pull");
    let out = cli(&projects, &["approve", "proj", "rev"]);
    assert!(out.status.success(), "{out:?}");

    let reviews = forge.list_reviews(pr.number).await.unwrap();
    assert_eq!(reviews.len(), 2);
    assert_eq!(reviews[0].state, ReviewState::ChangesRequested);
    assert_eq!(reviews[0].body, "rename it");
    assert_eq!(reviews[1].state, ReviewState::Approved);
    assert!(
        reviews
            .iter()
            .all(|r| r.author == "alice" && r.commit_id.0 == sha)
    );
    // The person's own word: official, and whoever comments may write.
    assert!(reviews.iter().all(|r| r.official));
    assert!(forge.can_write("alice").await.unwrap());
}

#[tokio::test]
async fn a_dirty_checked_out_primary_refuses_the_merge_until_it_is_clean() {
    let f = Fixture::new();
    f.plan("m", "# Merge me\n");
    let forge = f.forge(None, WAIT);
    forge.list_open_issues("backlog").await.unwrap();
    let n = forge.issue_for_key("m").unwrap();
    let sha = f.push_fix("m", "feature.txt", "feature\n");
    let pr = open_pull(&forge, "m").await;
    assert_eq!(pr.mergeable, Some(true));
    std::fs::write(f.repo.join("README.md"), "local edit\n").unwrap();

    let req = MergeRequest {
        method: MergeMethod::Merge,
        head_sha: CommitSha(sha.clone()),
        delete_branch: true,
    };
    let err = forge.merge_pull(pr.number, &req).await.unwrap_err();
    assert!(matches!(err, ForgeError::Other(_)), "{err:?}");
    assert!(err.to_string().contains("uncommitted changes"), "{err}");
    assert!(err.to_string().contains(f.repo.to_str().unwrap()), "{err}");
    assert!(f.read("m.report.md").contains("uncommitted changes"));
    assert!(
        f.journal()
            .await
            .iter()
            .any(|d| d.contains("uncommitted changes"))
    );
    assert_eq!(
        std::fs::read_to_string(f.repo.join("README.md")).unwrap(),
        "local edit\n",
        "nothing lost"
    );

    git(&f.repo, &["checkout", "--quiet", "--", "README.md"]);
    forge.merge_pull(pr.number, &req).await.unwrap();
    let merged = forge.get_pull(pr.number).await.unwrap();
    assert!(merged.merged);
    let commit = merged.merge_commit_sha.unwrap().0;
    assert_eq!(git(&f.repo, &["rev-parse", "main"]), commit);
    assert_eq!(git(&f.repo, &["rev-parse", "main^2"]), sha, "--no-ff");
    assert!(f.repo.join("feature.txt").exists(), "checkout advanced");
    assert!(git(&f.repo, &["status", "--porcelain"]).is_empty());
    assert!(git(&f.repo, &["branch", "--list", "fix/issue-m"]).is_empty());
    assert!(matches!(
        forge.merge_pull(pr.number, &req).await,
        Err(ForgeError::AlreadyMerged)
    ));

    forge.close_issue(n).await.unwrap();
    assert!(f.plans.join("done/m.md").exists());
    assert!(!f.plans.join("m.report.md").exists(), "stale report gone");
    let report = f.read("done/m.report.md");
    for needle in [
        "status: merged",
        "branch: fix/issue-m",
        &format!("merge commit: {commit}"),
        "CI attempts: 0",
        "review rounds: 0",
        "feature.txt",
        "The agent fixed m.",
    ] {
        assert!(report.contains(needle), "`{needle}` in {report}");
    }
    assert_eq!(forge.get_issue(n).await.unwrap().state, IssueState::Closed);
}

#[tokio::test]
async fn a_conflicting_branch_is_a_conflict_and_a_moved_head_is_refused() {
    let f = Fixture::new();
    f.plan("c", "# Conflict\n");
    let forge = f.forge(None, WAIT);
    let sha = f.push_fix("c", "README.md", "theirs\n");
    std::fs::write(f.repo.join("README.md"), "ours\n").unwrap();
    git(&f.repo, &["commit", "--quiet", "-am", "ours"]);
    let pr = open_pull(&forge, "c").await;
    assert_eq!(pr.mergeable, Some(false));
    let req = |head: &str| MergeRequest {
        method: MergeMethod::Squash,
        head_sha: CommitSha(head.into()),
        delete_branch: false,
    };
    let err = forge.merge_pull(pr.number, &req(&sha)).await.unwrap_err();
    assert!(matches!(err, ForgeError::Conflict(_)), "{err:?}");
    let err = forge
        .merge_pull(pr.number, &req(&"0".repeat(40)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ForgeError::Conflict(m) if m.contains("moved")),
        "{err:?}"
    );
    assert_eq!(git(&f.repo, &["log", "--format=%s", "-1", "main"]), "ours");
}

#[tokio::test]
async fn a_squash_into_a_bare_repository_needs_no_checkout() {
    let f = Fixture::new();
    let bare = f.dir.path().join("bare.git");
    git(
        f.dir.path(),
        &[
            "clone",
            "--quiet",
            "--bare",
            f.repo.to_str().unwrap(),
            "bare.git",
        ],
    );
    git(
        &f.work,
        &["remote", "set-url", "origin", bare.to_str().unwrap()],
    );
    f.plan("s", "# Squash\n");
    let forge = LocalForge::open(LocalArgs {
        plans: f.plans.clone(),
        repo: bare.clone(),
        primary_branch: "main".into(),
        labels: labels(),
        ci_command: None,
        ci_timeout: WAIT,
        journal: None,
        ci_confinement: CiConfinement::minimal(),
    })
    .unwrap();
    let sha = f.push_fix("s", "s.txt", "s\n");
    let pr = open_pull(&forge, "s").await;
    let req = MergeRequest {
        method: MergeMethod::Squash,
        head_sha: CommitSha(sha),
        delete_branch: false,
    };
    forge.merge_pull(pr.number, &req).await.unwrap();
    let parents = git(&bare, &["log", "--format=%P", "-1", "main"]);
    assert_eq!(parents.split_whitespace().count(), 1, "squashed: {parents}");
    assert_eq!(git(&bare, &["show", "main:s.txt"]), "s");
}

#[tokio::test]
async fn a_new_plan_nudges_the_poller() {
    let f = Fixture::new();
    let forge = f.forge(None, WAIT);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    forge.watch(tx).unwrap();
    // A report or a hidden file is not news: the first nudge is the review's,
    // written after them (inotify keeps the order).
    std::fs::write(f.plans.join("x.report.md"), "r").unwrap();
    std::fs::write(f.plans.join(".hidden.md"), "h").unwrap();
    let review = serde_json::json!({
        "id": 1, "pr": 7, "key": "x", "author": "bob", "verdict": "approved",
        "body": "", "commit": "abc", "submitted_at": "2025-01-01T00:00:00Z"
    });
    std::fs::write(
        f.plans.join(".forgehand/reviews/1-x.json"),
        review.to_string(),
    )
    .unwrap();
    let mut next = async || {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("a nudge in time")
    };
    assert_eq!(
        next().await,
        Some(Nudge::Pull(forgehand::forge::PrNumber(7)))
    );
    f.plan("fresh", "# Fresh\n");
    let mut nudge = next().await;
    // The review file's write may come as more than one event.
    while nudge == Some(Nudge::Pull(forgehand::forge::PrNumber(7))) {
        nudge = next().await;
    }
    assert_eq!(nudge, Some(Nudge::Repo));
    assert_eq!(
        forge.list_open_issues("backlog").await.unwrap()[0].number,
        IssueNumber(1)
    );
}

#[tokio::test]
async fn plans_kept_in_the_repository_do_not_block_the_merge() {
    let f = Fixture::new();
    let plans = f.repo.join("plans");
    std::fs::create_dir_all(&plans).unwrap();
    std::fs::write(plans.join("inside.md"), "# Inside\n").unwrap();
    git(&f.repo, &["add", "plans"]);
    git(&f.repo, &["commit", "--quiet", "-m", "plans"]);
    git(&f.work, &["pull", "--quiet"]);
    let forge = LocalForge::open(LocalArgs {
        plans: plans.clone(),
        repo: f.repo.clone(),
        primary_branch: "main".into(),
        labels: labels(),
        ci_command: None,
        ci_timeout: WAIT,
        journal: None,
        ci_confinement: CiConfinement::minimal(),
    })
    .unwrap();
    forge.list_open_issues("backlog").await.unwrap();
    let n = forge.issue_for_key("inside").unwrap();
    forge.add_label(n, "blocked").await.unwrap();
    assert!(plans.join("blocked/inside.md").exists());
    let sha = f.push_fix("inside", "i.txt", "i\n");
    let pr = open_pull(&forge, "inside").await;
    let req = MergeRequest {
        method: MergeMethod::Merge,
        head_sha: CommitSha(sha),
        delete_branch: false,
    };
    forge.merge_pull(pr.number, &req).await.unwrap();
    assert!(f.repo.join("i.txt").exists());
}

#[test]
fn a_missing_plans_folder_is_a_clear_error_and_ci_command_is_read() {
    let f = Fixture::new();
    let err = LocalForge::open(LocalArgs {
        plans: f.dir.path().join("no-such-plans"),
        repo: f.repo.clone(),
        primary_branch: "main".into(),
        labels: labels(),
        ci_command: None,
        ci_timeout: WAIT,
        journal: None,
        ci_confinement: CiConfinement::minimal(),
    })
    .err()
    .expect("a missing folder is refused");
    let shown = format!("{err:#}");
    assert!(
        shown.contains("no-such-plans") && shown.contains("does not exist"),
        "{shown}"
    );

    let projects = write_project(&f, 0);
    let file = projects.join("proj.toml");
    // The local backend has no owners: any repository name does.
    let mut text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("\"local/proj\"", "\"demo\"");
    text.push_str("\n[ci]\ncommand = \"make test\"\n");
    std::fs::write(&file, &text).unwrap();
    let project = forgehand::config::load_file(&file).expect("a valid local project");
    assert_eq!(project.ci.command.as_deref(), Some("make test"));
    assert!(project.forge.token_env().is_none());
    std::fs::write(&file, text.replace("make test", " ")).unwrap();
    let errors = forgehand::config::load_file(&file).expect_err("an empty command");
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("[ci] command")),
        "{errors:?}"
    );
}
