//! The control methods: how a test plays the world around forgehand on the fake GitHub
//! (people opening issues, commenting, reviewing, CI reporting, GitHub misbehaving) and
//! reads what forgehand did. Each one is a state change that wakes `wait_until`. Those
//! the fake Forgejo has as well (issues, labels, comments, reviews, faults, snapshots)
//! are on `crate::fake_server::FakeServer`; here are GitHub's own.

use chrono::Utc;

use super::FakeGithub;
use super::behaviour::Behaviour;
use super::state::{CheckRun, GithubState, Job, Step, WorkflowRun};
use crate::fake_forge::{Fault, FaultRule};

/// A check run a test adds itself (another CI app, or GitHub Actions by hand).
#[derive(Debug, Clone)]
pub struct CheckRunSpec {
    pub name: String,
    /// Slug of the app that reports it (`github-actions` for Actions).
    pub app: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// Required when completed.
    pub conclusion: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
}

impl CheckRunSpec {
    /// A completed check run of `app` named `name` with this conclusion.
    pub fn completed(app: &str, name: &str, conclusion: &str) -> Self {
        Self {
            name: name.to_owned(),
            app: app.to_owned(),
            status: "completed".to_owned(),
            conclusion: Some(conclusion.to_owned()),
            title: None,
            summary: None,
        }
    }
}

impl FakeGithub {
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.with_state(|s| s.behaviour = behaviour);
    }

    /// The next `times` requests with `method` whose path contains `path` hit a secondary
    /// rate limit: `status` 403 or 429, with `Retry-After` when given. (Any injected 403
    /// or 429 is played as GitHub's secondary rate limit.)
    pub fn inject_secondary_rate_limit(
        &self,
        method: &str,
        path: &str,
        status: u16,
        retry_after: Option<u64>,
        times: u32,
    ) {
        self.inject_fault(FaultRule {
            times,
            ..FaultRule::on(
                method,
                path,
                Fault::Status {
                    status,
                    retry_after,
                },
            )
        });
    }

    /// Sets what is left of the primary rate limit (0: every request gets 403 until the
    /// reset), and when the hour resets, in seconds from now.
    pub fn set_rate_limit(&self, remaining: u64, reset_in_secs: i64) {
        self.with_state(|s| {
            s.rate.remaining = remaining;
            s.rate.used = s.rate.limit.saturating_sub(remaining);
            s.rate.reset = Utc::now() + chrono::Duration::seconds(reset_in_secs);
        });
    }

    /// Expires every installation token handed out so far (they get 401 from now on).
    pub fn expire_installation_tokens(&self) {
        self.with_state(|s| {
            for t in &mut s.tokens {
                t.expires_at = Utc::now();
            }
        });
    }

    pub fn remove_label(&self, issue: u64, name: &str) {
        self.with_state(|s| {
            if let Some(i) = s.forge.issues.get_mut(&issue) {
                i.labels.retain(|l| l != name);
            }
        });
    }

    /// Records that `issue` is blocked by `blocker`, as `…/dependencies/blocked_by` shows.
    pub fn add_dependency(&self, issue: u64, blocker: u64) {
        self.with_state(|s| {
            if let Some(i) = s.forge.issues.get_mut(&issue)
                && !i.depends_on.contains(&blocker)
            {
                i.depends_on.push(blocker);
            }
        });
    }

    /// The id GitHub gives issue (or PR) `n`, as the dependency API takes it.
    pub fn issue_id(&self, n: u64) -> u64 {
        super::json::ISSUE_ID_BASE + n
    }

    /// Posts a commit status as the "other CI" (login `other-ci`) and returns its id.
    pub fn set_status(
        &self,
        sha: &str,
        context: &str,
        state: &str,
        description: &str,
        target_url: &str,
    ) -> u64 {
        self.with_state(|s| {
            s.forge
                .new_status(sha, context, state, description, target_url, "other-ci")
        })
    }

    /// Adds a check run on `sha` (in its app's suite) and returns its id. An Actions
    /// check run added this way is a job of a one-job workflow run, with a short log.
    pub fn add_check_run(&self, sha: &str, spec: CheckRunSpec) -> u64 {
        self.with_state(|s| add_check_run(s, sha, spec))
    }

    /// Completes check run `id` with `conclusion` (or moves it to another status).
    pub fn update_check_run(&self, id: u64, status: &str, conclusion: Option<&str>) {
        self.with_state(|s| {
            if let Some(run) = s.check_runs.iter_mut().find(|r| r.id == id) {
                run.status = status.to_owned();
                run.conclusion = conclusion.map(str::to_owned);
                run.completed_at = (status == "completed").then(Utc::now);
            }
        });
    }

    pub fn check_runs(&self, sha: &str) -> Vec<CheckRun> {
        self.read(|s| s.check_runs(sha).cloned().collect())
    }

    pub fn workflow_runs(&self) -> Vec<WorkflowRun> {
        self.read(|s| s.workflow_runs().to_vec())
    }

    /// Answers of the fake itself that did not fit the description (a bug in the fake).
    pub fn shape_problems(&self) -> Vec<String> {
        self.lock().shape_problems().to_vec()
    }

    /// Fails the test if forgehand sent anything GitHub's description does not allow (or
    /// without the right credentials, or something suspicious), or if the fake answered
    /// off the description.
    #[track_caller]
    pub fn assert_no_violations(&self) {
        let state = self.lock();
        assert!(
            state.forge.violations().is_empty(),
            "requests the fake GitHub refused or flagged:\n{:#?}",
            state.forge.violations()
        );
        assert!(
            state.shape_problems().is_empty(),
            "the fake GitHub answered off the description (a bug in the fake):\n{:#?}",
            state.shape_problems()
        );
    }
}

fn add_check_run(s: &mut GithubState, sha: &str, spec: CheckRunSpec) -> u64 {
    let branch = s.branch_of(sha);
    let suite = s.suite_for(sha, branch.as_deref(), &spec.app);
    let id = s.forge.fresh_id();
    let now = Utc::now();
    let job = (spec.app == super::ACTIONS_APP).then(|| {
        let run = s.forge.fresh_id();
        let run_number = s.next_run_number;
        s.next_run_number += 1;
        s.workflow_runs.push(WorkflowRun {
            id: run,
            suite,
            name: spec.name.clone(),
            head_sha: sha.to_owned(),
            head_branch: branch.clone().unwrap_or_default(),
            event: "pull_request".to_owned(),
            attempt: 1,
            run_number,
            pull: None,
            head_index: 0,
            created_at: now,
            updated_at: now,
        });
        Job {
            run,
            attempt: 1,
            steps: vec![Step {
                name: format!("Run {}", spec.name),
                status: spec.status.clone(),
                conclusion: spec.conclusion.clone(),
            }],
            runner: Some("GitHub Actions 1".to_owned()),
            log: format!(
                "{} {}: {:?}\n",
                now.to_rfc3339(),
                spec.name,
                spec.conclusion
            ),
        }
    });
    s.check_runs.push(CheckRun {
        id,
        suite,
        head_sha: sha.to_owned(),
        name: spec.name,
        app: spec.app,
        completed_at: (spec.status == "completed").then_some(now),
        status: spec.status,
        conclusion: spec.conclusion,
        started_at: now,
        details_url: format!("{}/checks/{id}", s.html_repo_url()),
        title: spec.title,
        summary: spec.summary,
        annotations: 0,
        job,
    });
    id
}
