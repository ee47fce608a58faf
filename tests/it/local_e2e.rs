//! End to end on the local backend: the real daemon, a folder of plans, a real
//! repository, `[ci] command`, a private tmux server and the scripted agent.
//! `poll_interval` is an hour, so only the folder watcher can make things happen.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use forgehand::store::Db;
use tempfile::TempDir;

use crate::support::{git, wait_until};

pub(crate) const STEP: Duration = Duration::from_secs(60);

/// A secret in the daemon's environment that neither agent nor CI may see.
const LOCAL_SECRET: &str = "local-5ecret-value";

/// A daemon on a local project; everything torn down on drop.
pub(crate) struct LocalHarness {
    dir: TempDir,
    pub(crate) plans: PathBuf,
    pub(crate) repo: PathBuf,
    pub(crate) projects: PathBuf,
    pub(crate) state: PathBuf,
    tmux_tmpdir: PathBuf,
    daemon: Option<Child>,
    log: PathBuf,
}

impl LocalHarness {
    pub(crate) fn new(required_approvals: u32) -> LocalHarness {
        LocalHarness::with_poll(required_approvals, "1h")
    }

    fn with_poll(required_approvals: u32, poll_interval: &str) -> LocalHarness {
        LocalHarness::custom(
            required_approvals,
            poll_interval,
            &crate::harness::agent_command("fake-agent"),
            "ls work/ | grep -q issue-",
        )
    }

    fn custom(
        required_approvals: u32,
        poll_interval: &str,
        agent_command: &str,
        ci_command: &str,
    ) -> LocalHarness {
        let dir = tempfile::tempdir().expect("temp dir");
        let h = LocalHarness {
            plans: dir.path().join("plans"),
            repo: dir.path().join("repo"),
            projects: dir.path().join("projects"),
            state: dir.path().join("state"),
            tmux_tmpdir: dir.path().join("tmux"),
            log: dir.path().join("daemon.log"),
            daemon: None,
            dir,
        };
        for d in [&h.plans, &h.projects, &h.state, &h.tmux_tmpdir] {
            std::fs::create_dir_all(d).unwrap();
        }
        git(
            h.dir.path(),
            &["init", "--quiet", "--initial-branch=main", "repo"],
        );
        std::fs::write(h.repo.join("README.md"), "demo\n").unwrap();
        git(&h.repo, &["add", "README.md"]);
        git(&h.repo, &["commit", "--quiet", "-m", "initial"]);
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
        let toml_str = |s: &str| toml::Value::String(s.to_string()).to_string();
        std::fs::write(
            h.projects.join("proj.toml"),
            format!(
                r#"name = "proj"
repo = "local/proj"
clone_url = "{repo}"
poll_interval = "{poll_interval}"

[forge]
kind = "local"
url = "{plans}"

[agent]
command = {agent}
sandbox_ro = ["{scripts}"]

[ci]
command = {ci}
timeout = "60s"

[review]
required_approvals = {required_approvals}
"#,
                repo = h.repo.display(),
                plans = h.plans.display(),
                agent = toml_str(agent_command),
                scripts = scripts.display(),
                ci = toml_str(ci_command),
            ),
        )
        .unwrap();
        h
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_forgehand"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("USER", "carol")
            .env("LANG", "C.UTF-8")
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env("OTHER_SECRET_TOKEN", LOCAL_SECRET)
            .env("FORGEHAND_LOG", "forgehand=debug,info")
            .current_dir(self.dir.path());
        cmd
    }

    pub(crate) fn start(&mut self) {
        let state = self.state.display().to_string();
        let enable = self
            .command(&["enable", "--state", &state])
            .output()
            .unwrap();
        assert!(enable.status.success(), "{enable:?}");
        let log = std::fs::File::create(&self.log).unwrap();
        let projects = self.projects.display().to_string();
        let child = self
            .command(&["run", "--projects", &projects, "--state", &state])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the daemon");
        self.daemon = Some(child);
    }

    /// `kill -9` the daemon: its claims stay active for the next one.
    pub(crate) fn kill(&mut self) {
        let mut child = self.daemon.take().expect("daemon started");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaping the daemon");
    }

    /// Waits until the daemon watches the plans folder (the watcher creates
    /// the reviews folder as it starts).
    pub(crate) async fn watching(&self) {
        let reviews = self.plans.join(".forgehand/reviews");
        wait_until("the daemon to watch the plans", STEP, || async {
            reviews.is_dir().then_some(())
        })
        .await;
        // The supervisor's first poll is done with the empty folder when the
        // daemon journals its start; only the watcher picks what comes later.
        wait_until("the daemon to start", STEP, || async {
            self.journal()
                .iter()
                .any(|(k, _)| k == "daemon")
                .then_some(())
        })
        .await;
    }

    pub(crate) fn journal(&self) -> Vec<(String, String)> {
        let Ok(store) = Db::open_read_only(&self.state.join("forgehand.db")) else {
            return Vec::new();
        };
        store
            .events("proj", None)
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.kind, e.detail))
            .collect()
    }

    pub(crate) async fn journalled(&self, kind: &str, what: &str) -> String {
        wait_until(what, STEP, || async {
            self.journal()
                .into_iter()
                .find(|(k, _)| k == kind)
                .map(|(_, d)| d)
        })
        .await
    }
}

impl Drop for LocalHarness {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("tmux")
            .arg("kill-server")
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env_remove("TMUX")
            .output();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("---- daemon log (last 80 lines) ----");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_plan_is_claimed_at_once_and_merged_into_the_repository() {
    let mut h = LocalHarness::new(0);
    h.start();
    h.watching().await;

    let dropped = std::time::Instant::now();
    std::fs::write(
        h.plans.join("greeting.md"),
        "# Add a greeting\n\nPrint a friendly greeting.\n",
    )
    .unwrap();
    let claimed = h.journalled("claimed", "the plan to be claimed").await;
    assert!(claimed.contains("Add a greeting"), "{claimed}");
    // Generous for a loaded machine, yet far below the hour-long poll interval.
    assert!(dropped.elapsed() < Duration::from_secs(20));

    let report = h.plans.join("done/greeting.report.md");
    // The whole cycle (agent, CI, merge) in real processes: under a loaded
    // machine (the full suite, a build beside it) one STEP was seen short.
    let text = crate::support::wait_for_file(&report, STEP * 3, |t| t.contains("merged")).await;
    assert!(h.plans.join("done/greeting.md").exists());
    assert!(!h.plans.join("greeting.md").exists());
    assert!(text.contains("CI attempts: 1"), "{text}");
    assert!(text.contains("work/issue-greeting.txt"), "{text}");
    // A real merge into the checked-out primary branch.
    let tree = git(&h.repo, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(tree.contains("work/issue-greeting.txt"), "{tree}");
    assert!(h.repo.join("work/issue-greeting.txt").exists());
    assert_eq!(
        git(&h.repo, &["log", "-1", "--format=%P", "main"])
            .split_whitespace()
            .count(),
        2,
        "a merge commit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_from_the_cli_merges_the_plan() {
    let mut h = LocalHarness::new(1);
    h.start();
    h.watching().await;
    std::fs::write(h.plans.join("tidy.md"), "# Tidy up\n\nClean the code.\n").unwrap();
    h.journalled("pr_opened", "the pull request").await;
    wait_until("CI to pass and review to be awaited", STEP, || async {
        h.journal()
            .iter()
            .any(|(k, d)| k == "review_state" && d.contains("waiting"))
            .then_some(())
    })
    .await;
    assert!(
        !h.plans.join("done/tidy.md").exists(),
        "not without approval"
    );
    // `status` reads the running daemon's database: the claim waits for a
    // review of the head it pushed.
    let state = h.state.display().to_string();
    let out = h
        .command(&["status", "--state", &state, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let claims: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["issues"][0]["waiting"], "review", "{claims:#}");
    let pushed = git(&h.repo, &["rev-parse", "fix/issue-tidy"]);
    assert_eq!(claims["issues"][0]["head"], pushed.trim(), "{claims:#}");

    let projects = h.projects.display().to_string();
    let out = h
        .command(&["approve", "--projects", &projects, "proj", "tidy"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = h.plans.join("done/tidy.report.md");
    crate::support::wait_for_file(&report, STEP, |t| t.contains("status: merged")).await;
    let tree = git(&h.repo, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(tree.contains("work/issue-tidy.txt"), "{tree}");
}

/// A checked-out primary branch with uncommitted changes refuses the merge:
/// the plan waits (journalled, and said on its report), nothing is lost, and
/// once the checkout is clean the next look merges it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_into_a_dirty_checkout_waits_until_it_is_clean() {
    let mut h = LocalHarness::with_poll(0, "1s");
    std::fs::write(h.repo.join("README.md"), "edited by hand, not committed\n").unwrap();
    h.start();
    h.watching().await;
    std::fs::write(h.plans.join("wait.md"), "# Wait for me\n\nA change.\n").unwrap();
    wait_until("the merge to be refused", STEP, || async {
        h.journal()
            .iter()
            .any(|(k, d)| k == "error" && d.contains("uncommitted changes"))
            .then_some(())
    })
    .await;
    let report = std::fs::read_to_string(h.plans.join("wait.report.md")).unwrap_or_default();
    assert!(report.contains("uncommitted changes"), "{report}");
    assert!(
        h.plans.join("wait.md").exists(),
        "the plan stays where it is"
    );
    assert!(!h.plans.join("blocked/wait.md").exists());
    assert_eq!(
        std::fs::read_to_string(h.repo.join("README.md")).unwrap(),
        "edited by hand, not committed\n",
        "the person's change is untouched"
    );

    git(&h.repo, &["checkout", "--", "README.md"]);
    let done = h.plans.join("done/wait.report.md");
    crate::support::wait_for_file(&done, STEP, |t| t.contains("status: merged")).await;
    assert!(h.repo.join("work/issue-wait.txt").exists());
}

/// The local backend against a hostile agent: it cannot approve itself (not
/// with `forgehand approve`, not by writing review files), and `[ci] command`,
/// which runs the agent's code, sees none of the daemon's secrets: only the
/// person's approval merges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_agent_cannot_approve_itself_and_ci_sees_no_secret() {
    // Fails when the secret is anywhere CI can look: its environment, or any
    // process's it can see.
    let ci = format!(
        "ls work/ | grep -q issue- && ! (env; cat /proc/[0-9]*/environ) 2>/dev/null | grep -q {LOCAL_SECRET}"
    );
    let mut h = LocalHarness::custom(
        1,
        "1h",
        &crate::harness::agent_command("attacker-agent"),
        &ci,
    );
    h.start();
    h.watching().await;
    std::fs::write(
        h.plans.join("sly.md"),
        format!(
            "# Be sly\n\nattacker: plans {}\nattacker: projects {}\nattacker: forgehand {}\n",
            h.plans.display(),
            h.projects.display(),
            env!("CARGO_BIN_EXE_forgehand")
        ),
    )
    .unwrap();
    wait_until("CI green and a review awaited", STEP, || async {
        let journal = h.journal();
        let green = journal
            .iter()
            .any(|(k, d)| k == "ci_state" && d.ends_with("green"));
        let waiting = journal
            .iter()
            .any(|(k, d)| k == "review_state" && d.contains("waiting"));
        (green && waiting).then_some(())
    })
    .await;
    let reviews = h.plans.join(".forgehand/reviews");
    let written: Vec<_> = std::fs::read_dir(&reviews).unwrap().flatten().collect();
    assert!(written.is_empty(), "review files appeared: {written:?}");
    assert!(
        !h.plans.join("done/sly.md").exists(),
        "merged on its own say-so"
    );
    assert!(!h.projects.join("attacker.txt").exists());

    let projects = h.projects.display().to_string();
    let out = h
        .command(&["approve", "--projects", &projects, "proj", "sly"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report = h.plans.join("done/sly.report.md");
    crate::support::wait_for_file(&report, STEP, |t| t.contains("status: merged")).await;
    let approve = git(&h.repo, &["show", "main:loot/approve.txt"]);
    // Its `forgehand approve` did not go through (no project file to read,
    // or, when the checkout is in a hidden folder, no binary to run), and
    // its review files went to a private scratch space: the real folder
    // stayed empty.
    assert!(approve.contains("forgehand approve"), "{approve}");
    assert!(!approve.contains("\nexit 0\n"), "{approve}");
    let history = git(&h.repo, &["log", "--all", "-p"]);
    assert!(
        !history.contains(LOCAL_SECRET),
        "a secret in the repository"
    );
}
