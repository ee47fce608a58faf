//! GitHub's wire shapes of CI results: status, simple-commit-status and
//! combined-commit-status, check-run, check-suite, workflow-run, job, and the
//! integration (app) that reports them.

use serde_json::{Value, json};

use super::json::{CREATED, PULL_ID_BASE, REPO_ID, opt_time, time};
use super::state::{ACTIONS_APP, ACTIONS_APP_ID, CheckRun, CheckSuite, GithubState, WorkflowRun};
use crate::fake_forge::CommitStatus;

impl GithubState {
    /// status (with `creator`), or with `simple` the simple-commit-status of combined answers.
    pub(crate) fn status_json(&mut self, s: &CommitStatus, simple: bool) -> Value {
        let mut value = json!({
            "url": format!("{}/statuses/{}", self.api_repo_url(), s.sha),
            "avatar_url": format!("{}/avatars/{}", self.forge.base_url, s.creator),
            "id": s.id,
            "node_id": format!("SC_{}", s.id),
            "state": s.state,
            "description": s.description,
            "target_url": if s.target_url.is_empty() { Value::Null } else { json!(s.target_url) },
            "context": s.context,
            "created_at": time(s.created_at),
            "updated_at": time(s.created_at),
        });
        if !simple {
            value["creator"] = self.user_json(&s.creator);
        }
        value
    }

    pub(crate) fn combined_json(&mut self, sha: &str) -> Value {
        let latest: Vec<CommitStatus> = self
            .forge
            .latest_statuses(sha)
            .into_iter()
            .cloned()
            .collect();
        let statuses: Vec<Value> = latest.iter().map(|s| self.status_json(s, true)).collect();
        json!({
            "state": self.combined_state(sha),
            "sha": sha,
            "total_count": statuses.len(),
            "statuses": statuses,
            "repository": self.minimal_repo_json(),
            "commit_url": format!("{}/commits/{sha}", self.api_repo_url()),
            "url": format!("{}/commits/{sha}/status", self.api_repo_url()),
        })
    }

    /// integration: GitHub Actions, the test's other CI apps, or the app under test.
    pub(crate) fn app_json(&mut self, slug: &str) -> Value {
        let (id, name) = if slug == ACTIONS_APP {
            (ACTIONS_APP_ID, "GitHub Actions".to_owned())
        } else if let Some(app) = self.app.as_ref().filter(|a| a.slug == slug) {
            (app.app_id, app.slug.clone())
        } else {
            (100_000 + self.forge.user_id(slug), slug.to_owned())
        };
        let owner = if slug == ACTIONS_APP {
            "github".to_owned()
        } else {
            self.forge.owner.clone()
        };
        json!({
            "id": id,
            "slug": slug,
            "node_id": format!("A_{id}"),
            "client_id": format!("Iv1.{id:016x}"),
            "owner": self.user_json(&owner),
            "name": name,
            "description": null,
            "external_url": format!("{}/apps/{slug}", self.forge.base_url),
            "html_url": format!("{}/apps/{slug}", self.forge.base_url),
            "created_at": CREATED,
            "updated_at": CREATED,
            "permissions": {"issues": "write", "pull_requests": "write", "contents": "write", "checks": "read", "statuses": "read", "actions": "write", "metadata": "read"},
            "events": ["issues", "issue_comment", "pull_request", "pull_request_review", "check_run", "status"],
            "installations_count": 1,
        })
    }

    fn commit_json(&self, sha: &str) -> Value {
        let info = self.forge.git.commit_info(sha).ok();
        let name = info
            .as_ref()
            .map_or("Test", |i| i.author_name.as_str())
            .to_owned();
        let email = info
            .as_ref()
            .map_or("test@example.invalid", |i| i.author_email.as_str())
            .to_owned();
        json!({
            "id": sha,
            "tree_id": sha,
            "message": info.as_ref().map_or("", |i| i.message.as_str()),
            "timestamp": info.as_ref().map_or(CREATED, |i| i.timestamp.as_str()),
            "author": {"name": name, "email": email},
            "committer": {"name": name, "email": email},
        })
    }

    fn pull_minimal_json(&self, sha: &str) -> Vec<Value> {
        let repo = json!({"id": REPO_ID, "url": self.api_repo_url(), "name": self.forge.repo});
        self.forge
            .pulls()
            .filter(|p| p.head_sha == sha && !p.merged)
            .map(|p| {
                json!({
                    "id": PULL_ID_BASE + p.number,
                    "number": p.number,
                    "url": format!("{}/pulls/{}", self.api_repo_url(), p.number),
                    "head": {"ref": p.head, "sha": p.head_sha, "repo": repo},
                    "base": {"ref": p.base, "sha": p.base_sha, "repo": repo},
                })
            })
            .collect()
    }

    /// Status and conclusion of a set of check runs, as a suite or workflow run sums them.
    fn summed(runs: &[&CheckRun]) -> (&'static str, Value) {
        if runs.iter().any(|r| r.status != "completed") {
            return ("in_progress", Value::Null);
        }
        const WORST_FIRST: [&str; 6] = [
            "action_required",
            "failure",
            "timed_out",
            "cancelled",
            "neutral",
            "skipped",
        ];
        let conclusion = WORST_FIRST
            .iter()
            .find(|c| runs.iter().any(|r| r.conclusion.as_deref() == Some(**c)))
            .map_or("success", |c| *c);
        ("completed", json!(conclusion))
    }

    pub(crate) fn check_run_json(&mut self, run: &CheckRun) -> Value {
        let url = format!("{}/check-runs/{}", self.api_repo_url(), run.id);
        json!({
            "id": run.id,
            "node_id": format!("CR_{}", run.id),
            "head_sha": run.head_sha,
            "name": run.name,
            "external_id": run.id.to_string(),
            "url": url,
            "html_url": run.details_url,
            "details_url": run.details_url,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": time(run.started_at),
            "completed_at": opt_time(run.completed_at),
            "output": {
                "title": run.title,
                "summary": run.summary,
                "text": null,
                "annotations_count": run.annotations,
                "annotations_url": format!("{url}/annotations"),
            },
            "check_suite": {"id": run.suite},
            "app": self.app_json(&run.app),
            "pull_requests": self.pull_minimal_json(&run.head_sha),
        })
    }

    pub(crate) fn check_suite_json(&mut self, suite: &CheckSuite) -> Value {
        let runs: Vec<CheckRun> = self
            .latest_check_runs(&suite.head_sha)
            .into_iter()
            .filter(|r| r.suite == suite.id)
            .cloned()
            .collect();
        let refs: Vec<&CheckRun> = runs.iter().collect();
        let (status, conclusion) = Self::summed(&refs);
        let url = format!("{}/check-suites/{}", self.api_repo_url(), suite.id);
        json!({
            "id": suite.id,
            "node_id": format!("CS_{}", suite.id),
            "head_branch": suite.head_branch,
            "head_sha": suite.head_sha,
            "status": status,
            "conclusion": conclusion,
            "url": url,
            "before": null,
            "after": suite.head_sha,
            "pull_requests": self.pull_minimal_json(&suite.head_sha),
            "app": self.app_json(&suite.app),
            "repository": self.minimal_repo_json(),
            "created_at": time(suite.created_at),
            "updated_at": time(suite.created_at),
            "head_commit": self.commit_json(&suite.head_sha),
            "latest_check_runs_count": runs.len(),
            "check_runs_url": format!("{url}/check-runs"),
            "rerequestable": true,
            "runs_rerequestable": true,
        })
    }

    pub(crate) fn workflow_run_json(&mut self, run: &WorkflowRun) -> Value {
        let jobs: Vec<CheckRun> = self.latest_jobs(run.id).into_iter().cloned().collect();
        let refs: Vec<&CheckRun> = jobs.iter().collect();
        let (status, conclusion) = Self::summed(&refs);
        let url = format!("{}/actions/runs/{}", self.api_repo_url(), run.id);
        let actor = self.user_json(&self.forge.owner.clone());
        json!({
            "id": run.id,
            "name": run.name,
            "node_id": format!("WFR_{}", run.id),
            "check_suite_id": run.suite,
            "check_suite_node_id": format!("CS_{}", run.suite),
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": ".github/workflows/ci.yml",
            "run_number": run.run_number,
            "run_attempt": run.attempt,
            "event": run.event,
            "display_title": run.name,
            "status": status,
            "conclusion": conclusion,
            "workflow_id": 1,
            "url": url,
            "html_url": format!("{}/actions/runs/{}", self.html_repo_url(), run.id),
            "pull_requests": self.pull_minimal_json(&run.head_sha),
            "created_at": time(run.created_at),
            "updated_at": time(run.updated_at),
            "run_started_at": time(run.created_at),
            "actor": actor,
            "triggering_actor": actor,
            "jobs_url": format!("{url}/jobs"),
            "logs_url": format!("{url}/logs"),
            "check_suite_url": format!("{}/check-suites/{}", self.api_repo_url(), run.suite),
            "artifacts_url": format!("{url}/artifacts"),
            "cancel_url": format!("{url}/cancel"),
            "rerun_url": format!("{url}/rerun"),
            "previous_attempt_url": (run.attempt > 1).then(|| format!("{url}/attempts/{}", run.attempt - 1)),
            "workflow_url": format!("{}/actions/workflows/1", self.api_repo_url()),
            "head_commit": self.commit_json(&run.head_sha),
            "repository": self.minimal_repo_json(),
            "head_repository": self.minimal_repo_json(),
        })
    }

    /// job: an Actions check run seen from the Actions API.
    pub(crate) fn job_json(&self, run: &CheckRun) -> Value {
        let job = run.job.as_ref().expect("an Actions check run has a job");
        let steps: Vec<Value> = job
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "name": s.name,
                    "status": s.status,
                    "conclusion": s.conclusion,
                    "number": i + 1,
                    "started_at": (s.status != "queued").then(|| time(run.started_at)),
                    "completed_at": (s.status == "completed").then(|| time(run.completed_at.unwrap_or(run.started_at))),
                })
            })
            .collect();
        let workflow = self.workflow_run(job.run);
        json!({
            "id": run.id,
            "run_id": job.run,
            "run_url": format!("{}/actions/runs/{}", self.api_repo_url(), job.run),
            "run_attempt": job.attempt,
            "node_id": format!("CR_{}", run.id),
            "head_sha": run.head_sha,
            "head_branch": workflow.map(|w| w.head_branch.clone()),
            "workflow_name": workflow.map(|w| w.name.clone()),
            "url": format!("{}/actions/jobs/{}", self.api_repo_url(), run.id),
            "html_url": run.details_url,
            "status": run.status,
            "conclusion": run.conclusion,
            "created_at": time(run.started_at),
            "started_at": time(run.started_at),
            "completed_at": opt_time(run.completed_at),
            "name": run.name,
            "steps": steps,
            "check_run_url": format!("{}/check-runs/{}", self.api_repo_url(), run.id),
            "labels": ["ubuntu-latest"],
            "runner_id": job.runner.as_ref().map(|_| 1 + run.id % 9),
            "runner_name": job.runner,
            "runner_group_id": job.runner.as_ref().map(|_| 1),
            "runner_group_name": job.runner.as_ref().map(|_| "GitHub Actions"),
        })
    }
}
