//! The simulated world around forgehand on GitHub: GitHub Actions running a workflow on
//! every new PR head (jobs `lint` and `test`, each a check run with a log), an "other CI"
//! posting commit statuses, and a reviewer reacting to green heads; all configurable at
//! runtime by the test ([`Behaviour`]).
//!
//! [`settle`] is where the fake notices pushes: the fake Forgejo's own settle re-reads
//! every open PR from the bare repository (and lets the "other CI" post its status), then
//! Actions runs on heads it has not seen and the reviewer looks at green heads. It runs
//! before and after every request and around every control method.

use chrono::Utc;

use super::state::{ACTIONS_APP, CheckRun, GithubState, Job, Step, WorkflowRun};
use crate::fake_forge::{self, CiBehaviour, ReviewBehaviour};

/// Login of the simulated reviewer (the fake Forgejo's).
pub const REVIEWER: &str = crate::fake_forge::REVIEWER;
/// Status context of the "other CI" (commit statuses, posted as the fake Forgejo's CI does).
pub const OTHER_CI_CONTEXT: &str = crate::fake_forge::CI_CONTEXT;
/// The jobs of the simulated workflow: `lint` always passes, `test` does what
/// [`ActionsBehaviour`] says.
pub const ACTIONS_JOBS: [&str; 2] = ["lint", "test"];
/// Name of the simulated workflow.
pub const WORKFLOW: &str = "CI";
/// The line near the end of a failing `test` job's log: what forgehand should hand the
/// agent (the log before it is a few hundred lines of build output).
pub const FAILURE_MARKER: &str = "test_greeting failed";
/// What GitHub says (as the check run's output) when a job's runner went away.
pub const RUNNER_LOST_MESSAGE: &str = "The hosted runner: GitHub Actions 7 lost communication with the server. Anything in your workflow that terminates the runner process, starves it for CPU/Memory, or blocks its network access can cause this error.";

/// How the fake's world reacts to forgehand; change it with `FakeGithub::set_behaviour`.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// What GitHub Actions does on each new PR head.
    pub actions: ActionsBehaviour,
    /// What the "other CI" does on each new PR head: the fake Forgejo's CI, posting
    /// commit statuses with context [`OTHER_CI_CONTEXT`].
    pub statuses: CiBehaviour,
    /// What [`REVIEWER`] does once a head is green (checks passed, combined status success
    /// or no statuses): `APPROVED`, or `CHANGES_REQUESTED` once first.
    pub review: ReviewBehaviour,
    /// Close issues a merged PR's body names with `Fixes #N` (GitHub does, for the
    /// default branch). Off by default so tests see whether forgehand closes the issue.
    pub close_referenced_issues_on_merge: bool,
    /// How many reads of a PR answer `mergeable: null` after its head or base moved, as
    /// while GitHub computes the test merge in the background.
    pub mergeable_pending_reads: u32,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            actions: ActionsBehaviour::None,
            statuses: CiBehaviour::None,
            review: ReviewBehaviour::None,
            close_referenced_issues_on_merge: false,
            // GitHub nearly always answers null on the first read after a push; a client
            // that takes that for a conflict should fail by default.
            mergeable_pending_reads: 1,
        }
    }
}

/// What GitHub Actions does on each new PR head.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ActionsBehaviour {
    /// No workflow: the test adds check runs itself (`FakeGithub::add_check_run`).
    #[default]
    None,
    /// Every job succeeds.
    Succeed,
    /// On the first `n` heads of each PR the `test` job fails, with [`FAILURE_MARKER`]
    /// near the end of its log; later heads succeed. A re-run fails again (the code is
    /// what fails).
    FailFirst(u32),
    /// Jobs stay `in_progress` (for CI timeouts).
    Pending,
    /// The first `attempts` attempts of every head's run lose the `test` job to the
    /// infrastructure; a later attempt (a re-run) succeeds.
    Infra { kind: InfraFailure, attempts: u32 },
}

/// How an infrastructure failure shows on GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfraFailure {
    /// The job concluded `cancelled` though nobody cancelled it (a runner shut down, the
    /// system cancelled it).
    Cancelled,
    /// The runner stopped talking mid-step: the job concluded `failure` with no step
    /// concluded `failure` (the running step `cancelled`, the rest `skipped`), the check
    /// run's output says [`RUNNER_LOST_MESSAGE`], and the log stops short.
    RunnerLost,
}

/// How one job ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Success,
    Failure,
    Pending,
    Infra(InfraFailure),
}

/// Brings the state up to date with the bare repository and lets CI and reviewer act.
pub fn settle(state: &mut GithubState) {
    // The fake Forgejo's behaviour carries only the commit-status CI; its reviewer judges
    // by statuses alone, so GitHub's reviewer (which also reads check runs) is ours.
    state.forge.behaviour = fake_forge::Behaviour {
        ci: state.behaviour.statuses.clone(),
        review: ReviewBehaviour::None,
        close_referenced_issues_on_merge: false,
    };
    fake_forge::behaviour::settle(&mut state.forge);
    let heads: Vec<(u64, String, String)> = state
        .forge
        .pulls()
        .filter(|p| !p.merged && state.forge.try_issue(p.number).is_some_and(|i| i.is_open()))
        .filter(|p| !p.head_sha.is_empty() && !state.ci_heads.contains(&p.head_sha))
        .map(|p| (p.number, p.head_sha.clone(), p.head.clone()))
        .collect();
    for (n, sha, branch) in heads {
        state.ci_heads.insert(sha.clone());
        let index = {
            let count = state.ci_heads_per_pull.entry(n).or_default();
            *count += 1;
            *count
        };
        if state.behaviour.actions != ActionsBehaviour::None {
            start_workflow(state, n, index, &sha, &branch);
        }
    }
    review_green_heads(state);
}

/// A workflow run for head `sha` of PR `n` (its `index`th head), with every job.
fn start_workflow(state: &mut GithubState, n: u64, index: u32, sha: &str, branch: &str) {
    let suite = state.suite_for(sha, Some(branch), ACTIONS_APP);
    let id = state.forge.fresh_id();
    let run_number = state.next_run_number;
    state.next_run_number += 1;
    let now = Utc::now();
    state.workflow_runs.push(WorkflowRun {
        id,
        suite,
        name: WORKFLOW.to_owned(),
        head_sha: sha.to_owned(),
        head_branch: branch.to_owned(),
        event: "pull_request".to_owned(),
        attempt: 1,
        run_number,
        pull: Some(n),
        head_index: index,
        created_at: now,
        updated_at: now,
    });
    for name in ACTIONS_JOBS {
        add_job(state, id, name);
    }
}

/// Re-runs the jobs of workflow run `run` that `which` selects, as a new attempt; answers
/// whether there was anything to re-run.
pub fn rerun(state: &mut GithubState, run: u64, which: impl Fn(&CheckRun) -> bool) -> bool {
    let names: Vec<String> = state
        .latest_jobs(run)
        .into_iter()
        .filter(|j| which(j))
        .map(|j| j.name.clone())
        .collect();
    if names.is_empty() {
        return false;
    }
    let Some(r) = state.workflow_runs.iter_mut().find(|r| r.id == run) else {
        return false;
    };
    r.attempt += 1;
    r.updated_at = Utc::now();
    for name in names {
        add_job(state, run, &name);
    }
    true
}

/// Adds job `name` to the current attempt of `run`, ending as the behaviour says.
fn add_job(state: &mut GithubState, run: u64, name: &str) {
    let Some(r) = state.workflow_run(run).cloned() else {
        return;
    };
    let outcome = if name != "test" {
        match state.behaviour.actions {
            ActionsBehaviour::Pending => Outcome::Pending,
            _ => Outcome::Success,
        }
    } else {
        match state.behaviour.actions {
            ActionsBehaviour::None | ActionsBehaviour::Succeed => Outcome::Success,
            ActionsBehaviour::FailFirst(k) if r.head_index <= k => Outcome::Failure,
            ActionsBehaviour::FailFirst(_) => Outcome::Success,
            ActionsBehaviour::Pending => Outcome::Pending,
            ActionsBehaviour::Infra { kind, attempts } if r.attempt <= attempts => {
                Outcome::Infra(kind)
            }
            ActionsBehaviour::Infra { .. } => Outcome::Success,
        }
    };
    let id = state.forge.fresh_id();
    let now = Utc::now();
    let runner = format!("GitHub Actions {}", 1 + id % 9);
    let step = |name: &str, status: &str, conclusion: Option<&str>| Step {
        name: name.to_owned(),
        status: status.to_owned(),
        conclusion: conclusion.map(str::to_owned),
    };
    let run_step = format!(
        "Run cargo {}",
        if name == "lint" { "clippy" } else { "test" }
    );
    let (status, conclusion, steps, log) = match outcome {
        Outcome::Success => (
            "completed",
            Some("success"),
            vec![
                step("Set up job", "completed", Some("success")),
                step(&run_step, "completed", Some("success")),
                step("Complete job", "completed", Some("success")),
            ],
            job_log(name, &r, Tail::Passed),
        ),
        Outcome::Failure => (
            "completed",
            Some("failure"),
            vec![
                step("Set up job", "completed", Some("success")),
                step(&run_step, "completed", Some("failure")),
                step("Complete job", "completed", Some("success")),
            ],
            job_log(name, &r, Tail::Failed),
        ),
        Outcome::Pending => (
            "in_progress",
            None,
            vec![
                step("Set up job", "completed", Some("success")),
                step(&run_step, "in_progress", None),
                step("Complete job", "queued", None),
            ],
            job_log(name, &r, Tail::Running),
        ),
        Outcome::Infra(InfraFailure::Cancelled) => (
            "completed",
            Some("cancelled"),
            vec![
                step("Set up job", "completed", Some("success")),
                step(&run_step, "completed", Some("cancelled")),
                step("Complete job", "completed", Some("cancelled")),
            ],
            job_log(name, &r, Tail::Cancelled),
        ),
        Outcome::Infra(InfraFailure::RunnerLost) => (
            "completed",
            Some("failure"),
            vec![
                step("Set up job", "completed", Some("success")),
                step(&run_step, "completed", Some("cancelled")),
                step("Complete job", "completed", Some("skipped")),
            ],
            job_log(name, &r, Tail::Lost),
        ),
    };
    let lost = outcome == Outcome::Infra(InfraFailure::RunnerLost);
    let details_url = format!(
        "{}/{}/{}/actions/runs/{run}/job/{id}",
        state.forge.base_url, state.forge.owner, state.forge.repo
    );
    state.check_runs.push(CheckRun {
        id,
        suite: r.suite,
        head_sha: r.head_sha.clone(),
        name: name.to_owned(),
        app: ACTIONS_APP.to_owned(),
        status: status.to_owned(),
        conclusion: conclusion.map(str::to_owned),
        started_at: now,
        completed_at: (status == "completed").then_some(now),
        details_url,
        title: lost.then(|| "The hosted runner lost communication with the server".to_owned()),
        summary: lost.then(|| RUNNER_LOST_MESSAGE.to_owned()),
        annotations: u32::from(matches!(outcome, Outcome::Failure | Outcome::Infra(_))),
        job: Some(Job {
            run,
            attempt: r.attempt,
            steps,
            runner: Some(runner),
            log,
        }),
    });
}

/// How a job's log ends.
enum Tail {
    Passed,
    Failed,
    Running,
    Cancelled,
    Lost,
}

/// A job log shaped like GitHub's: timestamped lines, a few hundred of build output, and
/// a tail that says what happened.
fn job_log(name: &str, run: &WorkflowRun, tail: Tail) -> String {
    // GitHub's log timestamps have seven fractional digits, which chrono has no format for.
    let now = Utc::now();
    let stamp = format!(
        "{}.{:07}Z",
        now.format("%Y-%m-%dT%H:%M:%S"),
        now.timestamp_subsec_nanos() / 100
    );
    let mut lines = vec![
        "##[group]Runner Image".to_owned(),
        "Image: ubuntu-24.04".to_owned(),
        "##[endgroup]".to_owned(),
        format!(
            "##[group]Run cargo {}",
            if name == "lint" { "clippy" } else { "test" }
        ),
    ];
    for i in 0..300 {
        lines.push(format!("   Compiling dependency-{i} v0.1.{i}"));
    }
    match tail {
        Tail::Passed => {
            lines.push("test result: ok. 12 passed; 0 failed; 0 ignored".to_owned());
        }
        Tail::Failed => {
            lines.push("test greeting::tests::greets_the_world ... FAILED".to_owned());
            lines.push("failures:".to_owned());
            lines.push("---- greeting::tests::greets_the_world stdout ----".to_owned());
            lines.push(format!(
                "{FAILURE_MARKER}: expected \"hello, world\" (simulated run {}, attempt {})",
                run.head_index, run.attempt
            ));
            lines.push("test result: FAILED. 11 passed; 1 failed; 0 ignored".to_owned());
            lines.push("##[error]Process completed with exit code 101.".to_owned());
        }
        Tail::Running => {}
        Tail::Cancelled => {
            lines.push("##[error]The operation was canceled.".to_owned());
        }
        // The runner vanished mid-build: the log just stops.
        Tail::Lost => lines.truncate(120),
    }
    lines
        .into_iter()
        .map(|l| format!("{stamp} {l}\n"))
        .collect()
}

/// Lets the reviewer act on every open PR whose current head is green.
fn review_green_heads(state: &mut GithubState) {
    if state.behaviour.review == ReviewBehaviour::None {
        return;
    }
    let candidates: Vec<(u64, String)> = state
        .forge
        .pulls()
        .filter(|p| !p.merged && state.forge.try_issue(p.number).is_some_and(|i| i.is_open()))
        .filter(|p| !p.head_sha.is_empty())
        .filter(|p| !state.reviewed.contains(&(p.number, p.head_sha.clone())))
        .filter(|p| state.is_green(&p.head_sha))
        .map(|p| (p.number, p.head_sha.clone()))
        .collect();
    for (n, head) in candidates {
        state.reviewed.insert((n, head.clone()));
        match state.behaviour.review.clone() {
            ReviewBehaviour::None => {}
            ReviewBehaviour::RequestChangesOnce { body, comments }
                if !state.changes_requested.contains(&n) =>
            {
                state.changes_requested.insert(n);
                state.forge.new_review(
                    n,
                    REVIEWER,
                    "CHANGES_REQUESTED",
                    &body,
                    &head,
                    &comments,
                    None,
                );
            }
            ReviewBehaviour::ApproveWhenGreen | ReviewBehaviour::RequestChangesOnce { .. } => {
                state
                    .forge
                    .new_review(n, REVIEWER, "APPROVED", "LGTM", &head, &[], None);
            }
        }
    }
}
