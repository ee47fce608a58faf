//! The conformance driver for the local backend: a plans folder, a real
//! repository with the primary branch checked out (as a user's would be), a
//! clone to push branches from, and `[ci] command` deciding CI from what a
//! branch holds.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use forgehand::config::Labels;
use forgehand::forge::local::{CiConfinement, LOCAL_LOGIN, LocalArgs, LocalForge, ReviewVerdict};
use forgehand::forge::{CommitSha, Forge, IssueNumber, Nudge, PrNumber, ReviewState, StatusState};
use tempfile::TempDir;
use tokio::sync::Mutex;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{Ci, Driver, PRIMARY, Reviewer, Support, WAIT};
use crate::support::git;

/// Where a branch's CI verdict lies: a file per branch, `.fail` for a failing one.
const CI_DIR: &str = "conformance-ci";
/// Fails when any branch merged into the commit, or the commit itself, left a `.fail`.
const CI_COMMAND: &str = "! ls conformance-ci/*.fail >/dev/null 2>&1";

pub struct LocalDriver {
    forge: LocalForge,
    /// What the forge's folder watch reports.
    nudges: Mutex<UnboundedReceiver<Nudge>>,
    plans: PathBuf,
    repo: PathBuf,
    work: PathBuf,
    next_plan: AtomicU32,
    _dir: TempDir,
}

impl LocalDriver {
    pub async fn start() -> LocalDriver {
        let dir = tempfile::tempdir().expect("temp dir");
        // The forge resolves its plans folder; so does the driver, to compare links.
        let root = dir.path().canonicalize().expect("resolving the temp dir");
        let plans = root.join("plans");
        let repo = root.join("repo");
        let work = root.join("work");
        std::fs::create_dir_all(&plans).expect("plans folder");
        git(&root, &["init", "--quiet", "--initial-branch=main", "repo"]);
        std::fs::write(repo.join("greeting.txt"), "hello\n").expect("a first file");
        git(&repo, &["add", "greeting.txt"]);
        git(&repo, &["commit", "--quiet", "-m", "initial"]);
        git(
            &root,
            &["clone", "--quiet", repo.to_str().expect("utf-8"), "work"],
        );
        let forge = LocalForge::open(LocalArgs {
            plans: plans.clone(),
            repo: repo.clone(),
            primary_branch: PRIMARY.to_owned(),
            labels: Labels {
                backlog: "backlog".into(),
                priority: "priority".into(),
                in_progress: "in-progress".into(),
                blocked: "blocked".into(),
                underspecified: "underspecified".into(),
            },
            ci_command: Some(CI_COMMAND.to_owned()),
            ci_timeout: WAIT,
            journal: None,
            ci_confinement: CiConfinement::minimal(),
        })
        .expect("opening the local forge");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        forge.watch(tx).expect("watching the plans folder");
        LocalDriver {
            forge,
            nudges: Mutex::new(rx),
            plans,
            repo,
            work,
            next_plan: AtomicU32::new(1),
            _dir: dir,
        }
    }

    /// The plan behind pull request `pr`: its branch is `fix/issue-<key>`.
    async fn key_of_pull(&self, pr: PrNumber) -> String {
        let pull = self.forge.get_pull(pr).await.expect("the pull request");
        pull.head_ref
            .strip_prefix("fix/issue-")
            .unwrap_or_else(|| panic!("{} is not a plan's branch", pull.head_ref))
            .to_owned()
    }
}

/// A plan file's text: `labels` in its front matter, then the title heading.
fn plan_text(title: &str, body: &str, labels: &[&str]) -> String {
    let front = if labels.is_empty() {
        String::new()
    } else {
        format!("---\nlabels: [{}]\n---\n", labels.join(", "))
    };
    format!("{front}# {title}\n\n{body}\n")
}

conformance!(LocalDriver::start);

#[async_trait]
impl Driver for LocalDriver {
    fn forge(&self) -> &dyn Forge {
        &self.forge
    }

    /// A plan in the top folder is in the backlog by being there: `backlog`
    /// is never written into it, and a plan created without it is taken out
    /// of the backlog through forgehand's label overlay, as the daemon would.
    /// The number comes from the forge's scan: the local backend numbers
    /// plans as it first sees them.
    async fn create_issue(&self, title: &str, body: &str, labels: &[&str]) -> IssueNumber {
        let key = format!("plan-{}", self.next_plan.fetch_add(1, Ordering::Relaxed));
        let own: Vec<&str> = labels.iter().copied().filter(|l| *l != "backlog").collect();
        std::fs::write(
            self.plans.join(format!("{key}.md")),
            plan_text(title, body, &own),
        )
        .expect("writing a plan");
        self.forge
            .list_open_issues("backlog")
            .await
            .expect("scanning the plans");
        let n = self
            .forge
            .issue_for_key(&key)
            .expect("the plan is numbered");
        if !labels.contains(&"backlog") {
            self.forge
                .remove_label(n, "backlog")
                .await
                .expect("taking the plan out of the backlog");
        }
        n
    }

    async fn push_branch(&self, branch: &str, ci: Ci) -> CommitSha {
        git(&self.work, &["fetch", "--quiet", "origin"]);
        git(
            &self.work,
            &[
                "checkout",
                "--quiet",
                "-B",
                branch,
                &format!("origin/{PRIMARY}"),
            ],
        );
        let slug = branch.replace('/', "-");
        let dir = self.work.join(CI_DIR);
        std::fs::create_dir_all(&dir).expect("the CI folder");
        let verdict = if ci == Ci::Fail { "fail" } else { "pass" };
        let file = format!("{CI_DIR}/{slug}.{verdict}");
        std::fs::write(self.work.join(&file), branch).expect("writing the branch's file");
        git(&self.work, &["add", &file]);
        git(&self.work, &["commit", "--quiet", "-m", branch]);
        git(&self.work, &["push", "--quiet", "-f", "origin", branch]);
        CommitSha(git(&self.work, &["rev-parse", "HEAD"]))
    }

    /// Local CI starts when the forge is first asked about a commit and
    /// announces its result through the watch.
    async fn ci_reported(&self, sha: &CommitSha) {
        let mut nudges = self.nudges.lock().await;
        loop {
            let status = self.forge.combined_status(sha).await.expect("reading CI");
            if status.state != Some(StatusState::Pending) {
                return;
            }
            let done = Nudge::Commit(sha.clone());
            tokio::time::timeout(WAIT, async {
                while let Some(nudge) = nudges.recv().await {
                    if nudge == done {
                        return;
                    }
                }
                panic!("the watch ended");
            })
            .await
            .unwrap_or_else(|_| panic!("CI on {sha} did not finish within {WAIT:?}"));
        }
    }

    async fn comment_as_person(&self, _n: u64, _body: &str) -> Support<String> {
        Support::No("people speak through plans and review files; only forgehand comments")
    }

    async fn label_pull(&self, _pr: PrNumber, _label: &str) -> Support<()> {
        Support::No("pull requests carry no labels: they are never among the plans")
    }

    async fn review(
        &self,
        pr: PrNumber,
        state: ReviewState,
        who: Reviewer,
        body: &str,
    ) -> Support<()> {
        if who == Reviewer::Outsider {
            return Support::No(
                "reviews are written by `forgehand approve` / `request-changes`, run by whoever \
                 owns the plans folder: every review counts",
            );
        }
        let verdict = match state {
            ReviewState::Approved => ReviewVerdict::Approved,
            ReviewState::ChangesRequested => ReviewVerdict::ChangesRequested,
            other => panic!("the checks give no {other:?} reviews"),
        };
        let key = self.key_of_pull(pr).await;
        forgehand::forge::local::submit_review(&self.plans, &self.repo, &key, verdict, body)
            .await
            .expect("writing a review file");
        Support::Yes(())
    }

    async fn review_line(
        &self,
        _pr: PrNumber,
        _path: &str,
        _line: u64,
        _body: &str,
    ) -> Support<()> {
        Support::No("review files carry a verdict and a message, no line comments")
    }

    async fn next_nudge(&self) -> Support<Nudge> {
        let mut nudges = self.nudges.lock().await;
        match tokio::time::timeout(WAIT, nudges.recv()).await {
            Ok(Some(nudge)) => Support::Yes(nudge),
            Ok(None) => panic!("the watch ended"),
            Err(_) => panic!("no change reported within {WAIT:?}"),
        }
    }

    fn writer(&self) -> String {
        LOCAL_LOGIN.to_owned()
    }

    fn outsider(&self) -> Support<String> {
        Support::No("whoever can reach the plans folder owns it: everyone may write")
    }

    async fn primary_head(&self) -> CommitSha {
        CommitSha(git(
            &self.repo,
            &["rev-parse", &format!("refs/heads/{PRIMARY}")],
        ))
    }

    /// Asking about a commit starts its CI.
    fn unreported_status(&self) -> Option<StatusState> {
        Some(StatusState::Pending)
    }

    /// The plan file, in whichever folder it lies.
    fn expected_issue_url(&self, n: IssueNumber) -> String {
        let key = self.forge.issue_key(n);
        let file = format!("{key}.md");
        let path: PathBuf = ["", "blocked", "done"]
            .iter()
            .map(|folder| self.plans.join(folder).join(&file))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("no plan {file} under {}", self.plans.display()));
        format!("file://{}", path.display())
    }

    fn assert_contract_kept(&self) {}
}
