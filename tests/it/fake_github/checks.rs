//! Handlers for CI results: commit statuses and the combined status, check runs and
//! check suites, and the Actions API (workflow runs, jobs, re-runs, and job logs, which
//! redirect to a signed link on `/_blobs/…` as GitHub redirects to its blob storage).

use serde_json::{Value, json};

use super::behaviour;
use super::paging::{paginate, paginate_wrapped};
use super::routes::{BLOB_PREFIX, Reply, Req};
use super::state::{CheckRun, GithubState, random_hex};

type Handled = Result<Reply, Reply>;

/// Commit status states GitHub accepts.
const STATUS_STATES: [&str; 4] = ["error", "failure", "pending", "success"];

fn not_found() -> Reply {
    Reply::error(404, "Not Found")
}

/// The commit a `{ref}` names (a sha, abbreviated or not, or a branch).
fn commit_of(state: &GithubState, req: &Req) -> String {
    state.forge.git.resolve(req.param("ref"))
}

pub fn create_status(state: &mut GithubState, req: &Req) -> Handled {
    let sha = req.param("sha").to_owned();
    let status = req.str_field("state").unwrap_or_default();
    if !STATUS_STATES.contains(&status) {
        return Err(Reply::invalid("Status", "state", "custom", None));
    }
    let context = req
        .str_field("context")
        .filter(|c| !c.is_empty())
        .unwrap_or("default");
    let id = state.forge.new_status(
        &sha,
        context,
        status,
        req.str_field("description").unwrap_or_default(),
        req.str_field("target_url").unwrap_or_default(),
        &req.caller.login,
    );
    let created = state.forge.created_status(id);
    Ok(Reply::json(201, state.status_json(&created, false)))
}

/// GitHub's combined status: `pending` with `total_count` 0 when there is no status at all.
pub fn combined_status(state: &mut GithubState, req: &Req) -> Handled {
    let sha = commit_of(state, req);
    Ok(Reply::json(200, state.combined_json(&sha)))
}

pub fn list_statuses(state: &mut GithubState, req: &Req) -> Handled {
    let sha = commit_of(state, req);
    let mut statuses: Vec<_> = state.forge.statuses(&sha).cloned().collect();
    statuses.reverse();
    let json = statuses
        .iter()
        .map(|s| state.status_json(s, false))
        .collect();
    Ok(paginate(state, req, json))
}

/// Check runs filtered as `check_name`, `status`, `app_id` and `filter` (`latest`, the
/// default: the newest run per name; `all`) ask.
fn select_runs(state: &GithubState, req: &Req, runs: Vec<CheckRun>) -> Vec<CheckRun> {
    let latest = req.q("filter").unwrap_or("latest") == "latest";
    let mut out: Vec<CheckRun> = Vec::new();
    for run in runs {
        if latest
            && let Some(slot) = out
                .iter_mut()
                .find(|r| r.app == run.app && r.name == run.name)
        {
            *slot = run;
        } else {
            out.push(run);
        }
    }
    out.retain(|r| req.q("check_name").is_none_or(|n| n == r.name));
    out.retain(|r| req.q("status").is_none_or(|s| s == r.status));
    if let Some(app_id) = req.q("app_id") {
        let mut state_apps = Vec::new();
        for r in &out {
            let id = if r.app == super::state::ACTIONS_APP {
                super::state::ACTIONS_APP_ID.to_string()
            } else {
                state
                    .app
                    .as_ref()
                    .filter(|a| a.slug == r.app)
                    .map_or_else(String::new, |a| a.app_id.to_string())
            };
            state_apps.push(id == app_id);
        }
        let mut keep = state_apps.into_iter();
        out.retain(|_| keep.next().unwrap_or(false));
    }
    out
}

pub fn list_check_runs(state: &mut GithubState, req: &Req) -> Handled {
    let sha = commit_of(state, req);
    let runs: Vec<CheckRun> = state.check_runs(&sha).cloned().collect();
    let runs = select_runs(state, req, runs);
    let json = runs.iter().map(|r| state.check_run_json(r)).collect();
    Ok(paginate_wrapped(state, req, "check_runs", json))
}

pub fn list_check_suites(state: &mut GithubState, req: &Req) -> Handled {
    let sha = commit_of(state, req);
    let suites: Vec<_> = state.suites(&sha).cloned().collect();
    let json = suites.iter().map(|s| state.check_suite_json(s)).collect();
    Ok(paginate_wrapped(state, req, "check_suites", json))
}

pub fn get_check_run(state: &mut GithubState, req: &Req) -> Handled {
    let id = req.number("check_run_id")?;
    let run = state.check_run(id).cloned().ok_or_else(not_found)?;
    Ok(Reply::json(200, state.check_run_json(&run)))
}

pub fn get_check_suite(state: &mut GithubState, req: &Req) -> Handled {
    let id = req.number("check_suite_id")?;
    let suite = state
        .suites
        .iter()
        .find(|s| s.id == id)
        .cloned()
        .ok_or_else(not_found)?;
    Ok(Reply::json(200, state.check_suite_json(&suite)))
}

pub fn suite_check_runs(state: &mut GithubState, req: &Req) -> Handled {
    let id = req.number("check_suite_id")?;
    if !state.suites.iter().any(|s| s.id == id) {
        return Err(not_found());
    }
    let runs: Vec<CheckRun> = state
        .check_runs
        .iter()
        .filter(|r| r.suite == id)
        .cloned()
        .collect();
    let runs = select_runs(state, req, runs);
    let json = runs.iter().map(|r| state.check_run_json(r)).collect();
    Ok(paginate_wrapped(state, req, "check_runs", json))
}

/// `GET /actions/runs`: `head_sha`, `branch`, `event`, `status` (a status or a
/// conclusion, as GitHub takes both), `check_suite_id`; newest first.
pub fn list_runs(state: &mut GithubState, req: &Req) -> Handled {
    let mut runs: Vec<_> = state
        .workflow_runs
        .iter()
        .filter(|r| req.q("head_sha").is_none_or(|s| s == r.head_sha))
        .filter(|r| req.q("branch").is_none_or(|b| b == r.head_branch))
        .filter(|r| req.q("event").is_none_or(|e| e == r.event))
        .filter(|r| {
            req.q("check_suite_id")
                .is_none_or(|s| s == r.suite.to_string())
        })
        .cloned()
        .collect();
    runs.reverse();
    let mut json: Vec<Value> = runs.iter().map(|r| state.workflow_run_json(r)).collect();
    if let Some(wanted) = req.q("status") {
        json.retain(|r| r["status"] == wanted || r["conclusion"] == wanted);
    }
    Ok(paginate_wrapped(state, req, "workflow_runs", json))
}

fn existing_run(state: &GithubState, req: &Req) -> Result<u64, Reply> {
    let id = req.number("run_id")?;
    state.workflow_run(id).map(|r| r.id).ok_or_else(not_found)
}

pub fn get_run(state: &mut GithubState, req: &Req) -> Handled {
    let id = existing_run(state, req)?;
    let run = state.workflow_run(id).cloned().expect("run exists");
    Ok(Reply::json(200, state.workflow_run_json(&run)))
}

/// `GET …/runs/{id}/jobs`: `filter=latest` (default) the latest attempt of each job,
/// `all` every attempt.
pub fn list_jobs(state: &mut GithubState, req: &Req) -> Handled {
    let id = existing_run(state, req)?;
    let jobs: Vec<CheckRun> = if req.q("filter") == Some("all") {
        state.jobs(id).cloned().collect()
    } else {
        state.latest_jobs(id).into_iter().cloned().collect()
    };
    let json = jobs.iter().map(|j| state.job_json(j)).collect();
    Ok(paginate_wrapped(state, req, "jobs", json))
}

fn existing_job(state: &GithubState, req: &Req) -> Result<CheckRun, Reply> {
    let id = req.number("job_id")?;
    state
        .check_run(id)
        .filter(|r| r.job.is_some())
        .cloned()
        .ok_or_else(not_found)
}

pub fn get_job(state: &mut GithubState, req: &Req) -> Handled {
    let job = existing_job(state, req)?;
    Ok(Reply::json(200, state.job_json(&job)))
}

/// `POST …/rerun` (every job) or `…/rerun-failed-jobs` (failed and cancelled ones): a new
/// attempt, run by the simulated Actions as the behaviour says. 403 while the run is
/// still going, as GitHub refuses then.
pub fn rerun(state: &mut GithubState, req: &Req, failed_only: bool) -> Handled {
    let id = existing_run(state, req)?;
    if state
        .latest_jobs(id)
        .iter()
        .any(|j| j.status != "completed")
    {
        return Err(Reply::error(403, "This workflow is already running"));
    }
    let rerun = behaviour::rerun(state, id, |j| {
        !failed_only
            || matches!(
                j.conclusion.as_deref(),
                Some("failure" | "cancelled" | "timed_out")
            )
    });
    if !rerun {
        return Err(Reply::error(403, "There are no failed jobs to re-run"));
    }
    Ok(Reply::json(201, json!({})))
}

/// `POST /actions/jobs/{id}/rerun`: that job again, in a new attempt of its run.
pub fn rerun_job(state: &mut GithubState, req: &Req) -> Handled {
    let job = existing_job(state, req)?;
    let run = job.job.as_ref().expect("an Actions check run").run;
    if job.status != "completed" {
        return Err(Reply::error(403, "This job is already running"));
    }
    behaviour::rerun(state, run, |j| j.name == job.name);
    Ok(Reply::json(201, json!({})))
}

/// `GET …/jobs/{id}/logs`: 302 to a signed link that serves the plain-text log without a
/// token, as GitHub sends clients to its blob storage.
pub fn job_logs(state: &mut GithubState, req: &Req) -> Handled {
    let job = existing_job(state, req)?;
    let signature = random_hex(16);
    state.log_links.insert(signature.clone(), job.id);
    Ok(Reply::redirect(format!(
        "{}{BLOB_PREFIX}{}?sig={signature}",
        state.forge.base_url, job.id
    )))
}

/// The blob side of the redirect: the log when the signature is one handed out for that
/// job, 403 otherwise (as a blob store refuses a bad signature).
pub fn serve_log(state: &GithubState, job: &str, query: &[(String, String)]) -> Reply {
    let signature = query
        .iter()
        .find(|(k, _)| k == "sig")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let id: Option<u64> = job.parse().ok();
    let granted = id.is_some() && state.log_links.get(signature) == id.as_ref();
    match id
        .and_then(|id| state.check_run(id))
        .and_then(|r| r.job.as_ref())
    {
        Some(job) if granted => Reply::text(200, job.log.clone()),
        _ => Reply::text(
            403,
            "AuthenticationFailed: signature did not match".to_owned(),
        ),
    }
}
