//! GitHub Actions as a `CiServer`: for a failing head, the workflow runs on it
//! (`GET …/actions/runs?head_sha=`), the failing jobs of each failed run
//! (`GET …/actions/runs/{run_id}/jobs`), each job's failing step and the tail of
//! the job's log (`GET …/actions/jobs/{job_id}/logs`, which redirects to
//! storage: followed without GitHub's token, see `forge::github::Api::download`),
//! and re-running a run's failed jobs (`POST …/actions/runs/{run_id}/rerun-failed-jobs`).
//!
//! Infrastructure failures, re-run once and not counted against the agent: a job
//! GitHub cancelled while nothing of the code had failed (a runner that was shut
//! down, or the run cancelled by the system), and a job that failed without any of
//! its steps failing (the runner lost contact with GitHub mid-job). A job
//! cancelled because another job of the run failed (a matrix's fail-fast) is only
//! the echo of that failure and is left out when one is there.
//!
//! It shares the forge client's transport (`Api`): the same token, retry policy
//! and quota. Every path used exists in GitHub's OpenAPI description.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use anyhow::Context;
use async_trait::async_trait;
use regex::Regex;
use reqwest::Method;
use serde::Deserialize;

use super::{
    CiServer, FailedStep, FailureReport, LOG_TAIL_BYTES, LOG_TAIL_LINES, clean_line, log_tail,
};
use crate::forge::CommitSha;
use crate::forge::github::Api;
use crate::http::retry::Replay;

/// Runs and jobs per page (GitHub's maximum).
const PER_PAGE: &str = "100";
/// Conclusions of a run, a job or a step that mean it did not pass.
const FAILED: [&str; 5] = [
    "failure",
    "cancelled",
    "timed_out",
    "startup_failure",
    "action_required",
];

/// The timestamp GitHub puts before every line of a job's log.
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\x{feff}?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z ?")
        .expect("the timestamp pattern is valid")
});
/// The line the runner writes when a step's command exits non-zero.
static EXIT_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Process completed with exit code (-?\d+)").expect("the exit code pattern is valid")
});

/// GitHub Actions of one repository, over the forge client's transport.
pub struct GithubActions {
    api: Arc<Api>,
    /// Run id → every run of the same head that failed for infrastructure
    /// reasons in the last report that named it: `restart` re-runs them all.
    restartable: Mutex<HashMap<u64, Vec<u64>>>,
}

impl std::fmt::Debug for GithubActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubActions")
            .field("repo", &self.api.repo_name())
            .finish_non_exhaustive()
    }
}

impl GithubActions {
    /// Actions of the repository `api` reaches (`GithubClient::api`).
    pub fn new(api: Arc<Api>) -> GithubActions {
        GithubActions {
            api,
            restartable: Mutex::new(HashMap::new()),
        }
    }

    /// The newest run of each workflow on `sha`.
    async fn runs(&self, sha: &str) -> anyhow::Result<Vec<WireRun>> {
        let url = self.api.repo_url(
            &["actions", "runs"],
            &[("head_sha", sha), ("per_page", PER_PAGE)],
        );
        let runs: Vec<WireRun> = self
            .api
            .list(url, false, |b| {
                serde_json::from_slice::<WireRuns>(b).map(|p| p.workflow_runs)
            })
            .await
            .with_context(|| format!("listing the GitHub Actions runs on {sha}"))?;
        let mut newest: HashMap<u64, WireRun> = HashMap::new();
        for run in runs
            .into_iter()
            .filter(|r| r.head_sha.eq_ignore_ascii_case(sha))
        {
            let workflow = run.workflow_id.unwrap_or(run.id);
            match newest.get(&workflow) {
                Some(kept) if kept.id >= run.id => {}
                _ => {
                    newest.insert(workflow, run);
                }
            }
        }
        let mut runs: Vec<WireRun> = newest.into_values().collect();
        runs.sort_by_key(|r| r.id);
        Ok(runs)
    }

    /// The latest attempt's jobs of run `run`.
    async fn jobs(&self, run: u64) -> anyhow::Result<Vec<WireJob>> {
        let run_s = run.to_string();
        let url = self.api.repo_url(
            &["actions", "runs", &run_s, "jobs"],
            &[("filter", "latest"), ("per_page", PER_PAGE)],
        );
        self.api
            .list(url, false, |b| {
                serde_json::from_slice::<WireJobs>(b).map(|p| p.jobs)
            })
            .await
            .with_context(|| format!("listing the jobs of GitHub Actions run {run}"))
    }

    /// The job's log, cut to its tail, and the exit code the runner reported.
    /// A log that cannot be read becomes a note: the failing step's name is
    /// worth sending without it.
    async fn log(&self, job: &WireJob) -> (String, Option<i64>) {
        let id = job.id.to_string();
        let url = self.api.repo_url(&["actions", "jobs", &id, "logs"], &[]);
        match self.api.download(url).await {
            Ok(bytes) => {
                let (lines, code) = log_lines(&String::from_utf8_lossy(&bytes));
                (log_tail(&lines, LOG_TAIL_LINES, LOG_TAIL_BYTES), code)
            }
            Err(e) => {
                tracing::warn!(job = job.id, name = %job.name, error = %e, "could not read a GitHub Actions job log");
                (format!("(the log could not be read: {e})"), None)
            }
        }
    }

    /// What failed in run `run`: its failing jobs as steps, or an error line
    /// when the run failed without a job to show for it.
    async fn failures(&self, run: &WireRun) -> anyhow::Result<(Vec<FailedStep>, Vec<String>)> {
        let jobs = self.jobs(run.id).await?;
        let failed: Vec<&WireJob> = jobs.iter().filter(|j| j.failed()).collect();
        // Cancelled because something else in the run failed: that failure is the news.
        let real = failed.iter().any(|j| !j.cancelled());
        let mut steps = Vec::new();
        for job in failed.into_iter().filter(|j| !(real && j.cancelled())) {
            let (log, exit_code) = self.log(job).await;
            let step = job.failing_step();
            steps.push(FailedStep {
                workflow: format!("{} / {}", run.workflow_name(), job.name),
                name: step.map_or_else(|| job.name.clone(), |s| s.name.clone()),
                kind: String::new(),
                state: step
                    .and_then(|s| s.conclusion.clone())
                    .or_else(|| job.conclusion.clone())
                    .unwrap_or_default(),
                exit_code,
                error: job.note(),
                log_tail: log,
                infrastructure: job.is_infrastructure(),
            });
        }
        let mut errors = Vec::new();
        if steps.is_empty() {
            errors.push(format!(
                "workflow \"{}\" concluded {} without a failing job{}",
                run.workflow_name(),
                run.conclusion.as_deref().unwrap_or("unknown"),
                run.html_url
                    .as_deref()
                    .map_or(String::new(), |u| format!(": {u}"))
            ));
        }
        Ok((steps, errors))
    }
}

#[async_trait]
impl CiServer for GithubActions {
    /// The failed runs among the newest of each workflow on `sha`, with their
    /// failing jobs; `None` when no Actions run failed there (what failed is
    /// another check or a commit status, which the forge's statuses tell).
    async fn failure_report(&self, sha: &CommitSha) -> anyhow::Result<Option<FailureReport>> {
        let runs = self.runs(&sha.0).await?;
        let failed: Vec<&WireRun> = runs.iter().filter(|r| r.failed()).collect();
        let Some(first) = failed.first() else {
            return Ok(None);
        };
        let mut report = FailureReport {
            pipeline: first.id,
            status: first.conclusion.clone().unwrap_or_default(),
            errors: Vec::new(),
            steps: Vec::new(),
        };
        let mut infrastructure = Vec::new();
        for run in &failed {
            let (steps, errors) = self.failures(run).await?;
            if !steps.is_empty() && steps.iter().all(FailedStep::is_infrastructure) {
                infrastructure.push(run.id);
            }
            report.steps.extend(steps);
            report.errors.extend(errors);
        }
        if report.is_infrastructure() {
            self.restartable
                .lock()
                .expect("restart list poisoned")
                .insert(report.pipeline, infrastructure);
        }
        Ok(Some(report))
    }

    /// Re-runs the failed jobs of run `pipeline` (and of the other runs its
    /// report found failing for infrastructure reasons); GitHub keeps the run's
    /// id for the new attempt.
    /// How many workflow runs the repository has, and the latest's outcome.
    async fn describe(&self) -> anyhow::Result<String> {
        let url = self
            .api
            .repo_url(&["actions", "runs"], &[("per_page", "1")]);
        let runs: WireRunCount = self
            .api
            .get(url)
            .await
            .context("listing the GitHub Actions runs")?;
        let latest = runs.workflow_runs.first().map_or(String::new(), |r| {
            let outcome = r.conclusion.as_deref().or(r.status.as_deref());
            format!(
                " (latest: {} {})",
                r.name.as_deref().unwrap_or("a run"),
                outcome.unwrap_or("unknown")
            )
        });
        Ok(format!(
            "GitHub Actions: {} workflow runs in {}{latest}",
            runs.total_count,
            self.api.repo_name()
        ))
    }

    async fn restart(&self, pipeline: u64) -> anyhow::Result<u64> {
        let runs = self
            .restartable
            .lock()
            .expect("restart list poisoned")
            .remove(&pipeline)
            .unwrap_or_else(|| vec![pipeline]);
        let token = self.api.token().await?;
        for run in runs {
            let run_s = run.to_string();
            let url = self
                .api
                .repo_url(&["actions", "runs", &run_s, "rerun-failed-jobs"], &[]);
            // Sent once only: a re-run GitHub received twice would run the jobs twice.
            self.api
                .status_only(&token, Method::POST, url, None, Replay::OnlyIfNotApplied)
                .await
                .map_err(|e| self.api.error(e, &token))
                .with_context(|| {
                    format!("re-running the failed jobs of GitHub Actions run {run}")
                })?;
        }
        Ok(pipeline)
    }
}

/// A job's log as lines for the agent: GitHub's timestamps and terminal escapes
/// removed, the runner's markers made readable, and cut after the last error
/// line (what follows is the post-job clean-up). Also the exit code the runner
/// reported last, if any.
fn log_lines(text: &str) -> (Vec<String>, Option<i64>) {
    let mut lines = Vec::new();
    let mut last_error = None;
    let mut code = None;
    for raw in text.lines() {
        let line = clean_line(&TIMESTAMP.replace(raw, ""));
        if line.starts_with("##[endgroup]") {
            continue;
        }
        let line = if let Some(rest) = line.strip_prefix("##[group]") {
            rest.to_string()
        } else if let Some(rest) = line.strip_prefix("##[error]") {
            last_error = Some(lines.len());
            if let Some(c) = EXIT_CODE.captures(rest) {
                code = c[1].parse().ok();
            }
            format!("Error: {rest}")
        } else {
            line
        };
        lines.push(line);
    }
    if let Some(last) = last_error {
        lines.truncate(last + 1);
    }
    (lines, code)
}

#[derive(Debug, Deserialize)]
struct WireRuns {
    #[serde(default)]
    workflow_runs: Vec<WireRun>,
}

/// A page of runs with the count of all of them.
#[derive(Debug, Deserialize)]
struct WireRunCount {
    total_count: u64,
    #[serde(default)]
    workflow_runs: Vec<WireRun>,
}

/// A workflow run (`workflow-run`).
#[derive(Debug, Deserialize)]
struct WireRun {
    id: u64,
    name: Option<String>,
    #[serde(default)]
    head_sha: String,
    workflow_id: Option<u64>,
    status: Option<String>,
    conclusion: Option<String>,
    html_url: Option<String>,
}

impl WireRun {
    fn failed(&self) -> bool {
        self.status.as_deref() == Some("completed")
            && self
                .conclusion
                .as_deref()
                .is_some_and(|c| FAILED.contains(&c))
    }

    fn workflow_name(&self) -> &str {
        self.name.as_deref().unwrap_or("workflow")
    }
}

#[derive(Debug, Deserialize)]
struct WireJobs {
    #[serde(default)]
    jobs: Vec<WireJob>,
}

/// A job of a run (`job`).
#[derive(Debug, Deserialize)]
struct WireJob {
    id: u64,
    #[serde(default)]
    name: String,
    conclusion: Option<String>,
    #[serde(default)]
    steps: Vec<WireStep>,
}

#[derive(Debug, Deserialize)]
struct WireStep {
    #[serde(default)]
    name: String,
    conclusion: Option<String>,
}

impl WireStep {
    fn failed(&self) -> bool {
        self.conclusion
            .as_deref()
            .is_some_and(|c| FAILED.contains(&c))
    }
}

impl WireJob {
    fn failed(&self) -> bool {
        self.conclusion
            .as_deref()
            .is_some_and(|c| FAILED.contains(&c))
    }

    fn cancelled(&self) -> bool {
        self.conclusion.as_deref() == Some("cancelled")
    }

    /// The first step that failed (a cancelled job's steps show `cancelled`).
    fn failing_step(&self) -> Option<&WireStep> {
        self.steps
            .iter()
            .find(|s| s.failed() && s.conclusion.as_deref() != Some("cancelled"))
            .or_else(|| self.steps.iter().find(|s| s.failed()))
    }

    /// Cancelled, or failed with no step failing: the runner, not the code.
    fn is_infrastructure(&self) -> bool {
        let no_step_failed = !self
            .steps
            .iter()
            .any(|s| s.failed() && s.conclusion.as_deref() != Some("cancelled"));
        self.cancelled() || (self.conclusion.as_deref() == Some("failure") && no_step_failed)
    }

    fn note(&self) -> Option<String> {
        match self.conclusion.as_deref() {
            Some("cancelled") => Some("the job was cancelled before it finished".to_string()),
            Some("timed_out") => Some("the job ran out of time".to_string()),
            Some("failure") if self.is_infrastructure() => Some(
                "the job failed outside any of its steps (its runner may have been lost)"
                    .to_string(),
            ),
            _ => None,
        }
    }
}
