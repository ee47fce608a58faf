//! The fake GitHub's state: the fake Forgejo's [`ForgeState`] (issues and PRs in one
//! number sequence, labels, comments, reviews, commit statuses, merges, the request log,
//! faults), which GitHub has just as well, plus the records GitHub has and Forgejo lacks:
//! check suites and check runs per commit, Actions workflow runs whose jobs are check
//! runs with logs, installation tokens, the rate-limit quota, and mergeability that takes
//! a few reads to compute.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::behaviour::Behaviour;
use super::{AppOptions, FakeGithubOptions};
use crate::fake_forge::ForgeState;

/// Slug of the GitHub Actions app, which owns the check suites of workflow runs.
pub const ACTIONS_APP: &str = "github-actions";
/// GitHub's id of the GitHub Actions app.
pub const ACTIONS_APP_ID: u64 = 15368;

/// A check suite: one per app and commit.
#[derive(Debug, Clone)]
pub struct CheckSuite {
    pub id: u64,
    pub head_sha: String,
    pub head_branch: Option<String>,
    /// Slug of the app that owns it ([`ACTIONS_APP`] or one the test named).
    pub app: String,
    pub created_at: DateTime<Utc>,
}

/// One step of an Actions job.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    pub conclusion: Option<String>,
}

/// What makes a check run an Actions job: its run, attempt, steps, runner and log. On
/// GitHub a job's id is its check run's id, and so it is here.
#[derive(Debug, Clone)]
pub struct Job {
    pub run: u64,
    pub attempt: u32,
    pub steps: Vec<Step>,
    /// `None` when no runner ever picked the job up.
    pub runner: Option<String>,
    /// The plain-text log served behind the logs redirect.
    pub log: String,
}

/// A check run, from GitHub Actions (with a [`Job`]) or from another app.
#[derive(Debug, Clone)]
pub struct CheckRun {
    pub id: u64,
    pub suite: u64,
    pub head_sha: String,
    pub name: String,
    pub app: String,
    /// `queued`, `in_progress` or `completed`.
    pub status: String,
    /// Set once completed: `success`, `failure`, `neutral`, `cancelled`, `skipped`,
    /// `timed_out`, `action_required`.
    pub conclusion: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub details_url: String,
    /// The check run's `output`.
    pub title: Option<String>,
    pub summary: Option<String>,
    pub annotations: u32,
    pub job: Option<Job>,
}

impl CheckRun {
    /// Completed with a conclusion that does not block a merge.
    pub fn passed(&self) -> bool {
        self.status == "completed"
            && matches!(
                self.conclusion.as_deref(),
                Some("success" | "neutral" | "skipped")
            )
    }
}

/// An Actions workflow run; its jobs are the check runs whose [`Job::run`] is its id.
#[derive(Debug, Clone)]
pub struct WorkflowRun {
    pub id: u64,
    pub suite: u64,
    pub name: String,
    pub head_sha: String,
    pub head_branch: String,
    pub event: String,
    /// Goes up with every re-run.
    pub attempt: u32,
    pub run_number: u64,
    /// The PR it ran for, and which of that PR's heads it was (1 = the first push), which
    /// decides what the simulated CI does on it.
    pub pull: Option<u64>,
    pub head_index: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An installation token handed out by `POST /app/installations/{id}/access_tokens`.
#[derive(Debug, Clone)]
pub struct InstallationToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
}

/// The primary (core) rate limit: one quota for every credential, which is enough for a
/// daemon that uses one.
#[derive(Debug, Clone)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    pub used: u64,
    pub reset: DateTime<Utc>,
}

impl RateLimit {
    /// Starts a new hour when the old one is over.
    pub(crate) fn roll(&mut self, now: DateTime<Utc>) {
        if now >= self.reset {
            self.remaining = self.limit;
            self.used = 0;
            self.reset = now + chrono::Duration::hours(1);
        }
    }
}

/// The mergeability GitHub is computing for a PR's (base, head): `reads_left` more reads
/// of the PR answer `mergeable: null`.
#[derive(Debug, Clone)]
pub struct Mergeability {
    pub base: String,
    pub head: String,
    pub reads_left: u32,
}

/// Everything the fake GitHub knows; tests read it in `wait_until` predicates.
#[derive(Debug)]
pub struct GithubState {
    /// The fake Forgejo's state, shared vocabulary for issues, PRs, reviews and statuses.
    pub forge: ForgeState,
    pub(crate) token: String,
    pub(crate) app: Option<AppOptions>,
    pub(crate) api_prefix: String,
    pub(crate) delete_branch_on_merge: bool,
    pub(crate) behaviour: Behaviour,
    pub(crate) suites: Vec<CheckSuite>,
    pub(crate) check_runs: Vec<CheckRun>,
    pub(crate) workflow_runs: Vec<WorkflowRun>,
    pub(crate) tokens: Vec<InstallationToken>,
    pub(crate) rate: RateLimit,
    pub(crate) mergeability: HashMap<u64, Mergeability>,
    /// Heads the simulated Actions CI has run on, and per PR how many.
    pub(crate) ci_heads: HashSet<String>,
    pub(crate) ci_heads_per_pull: HashMap<u64, u32>,
    /// (PR, head) pairs the simulated reviewer has looked at, and PRs it asked changes on.
    pub(crate) reviewed: HashSet<(u64, String)>,
    pub(crate) changes_requested: HashSet<u64>,
    /// Signed log links handed out by the logs redirect: signature → job id.
    pub(crate) log_links: HashMap<String, u64>,
    pub(crate) next_run_number: u64,
    /// Answers of the fake itself that do not fit the description: bugs in the fake.
    pub(crate) shape_problems: Vec<String>,
    pub(crate) hooks: Vec<super::hooks::FakeHook>,
}

impl GithubState {
    pub(crate) fn new(forge: ForgeState, options: &FakeGithubOptions) -> Self {
        let mut forge = forge;
        if let Some(app) = &options.app {
            // What the app does is done by its bot, who may write like the token's user.
            forge
                .permissions
                .insert(app.bot_login(), "write".to_owned());
        }
        Self {
            forge,
            token: options.token.clone(),
            app: options.app.clone(),
            api_prefix: options.api_prefix.trim_end_matches('/').to_owned(),
            delete_branch_on_merge: options.delete_branch_on_merge,
            behaviour: Behaviour::default(),
            suites: Vec::new(),
            check_runs: Vec::new(),
            workflow_runs: Vec::new(),
            tokens: Vec::new(),
            rate: RateLimit {
                limit: options.rate_limit,
                remaining: options.rate_limit,
                used: 0,
                reset: Utc::now() + chrono::Duration::hours(1),
            },
            mergeability: HashMap::new(),
            ci_heads: HashSet::new(),
            ci_heads_per_pull: HashMap::new(),
            reviewed: HashSet::new(),
            changes_requested: HashSet::new(),
            log_links: HashMap::new(),
            next_run_number: 1,
            shape_problems: Vec::new(),
            hooks: Vec::new(),
        }
    }

    // ----- accessors for tests -----

    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// Every check run on `sha`, oldest first (re-runs included).
    pub fn check_runs(&self, sha: &str) -> impl Iterator<Item = &CheckRun> {
        self.check_runs.iter().filter(move |c| c.head_sha == sha)
    }

    /// The latest check run per app and name on `sha`, as `filter=latest` lists them.
    pub fn latest_check_runs(&self, sha: &str) -> Vec<&CheckRun> {
        let mut latest: Vec<&CheckRun> = Vec::new();
        for run in self.check_runs(sha) {
            match latest
                .iter_mut()
                .find(|l| l.app == run.app && l.name == run.name)
            {
                Some(slot) => *slot = run,
                None => latest.push(run),
            }
        }
        latest
    }

    pub fn check_run(&self, id: u64) -> Option<&CheckRun> {
        self.check_runs.iter().find(|c| c.id == id)
    }

    pub fn suites(&self, sha: &str) -> impl Iterator<Item = &CheckSuite> {
        self.suites.iter().filter(move |s| s.head_sha == sha)
    }

    pub fn workflow_runs(&self) -> &[WorkflowRun] {
        &self.workflow_runs
    }

    pub fn workflow_run(&self, id: u64) -> Option<&WorkflowRun> {
        self.workflow_runs.iter().find(|r| r.id == id)
    }

    /// The jobs of a workflow run, every attempt, oldest first.
    pub fn jobs(&self, run: u64) -> impl Iterator<Item = &CheckRun> {
        self.check_runs
            .iter()
            .filter(move |c| c.job.as_ref().is_some_and(|j| j.run == run))
    }

    /// The latest job per name of a workflow run.
    pub fn latest_jobs(&self, run: u64) -> Vec<&CheckRun> {
        let mut latest: Vec<&CheckRun> = Vec::new();
        for job in self.jobs(run) {
            match latest.iter_mut().find(|l| l.name == job.name) {
                Some(slot) => *slot = job,
                None => latest.push(job),
            }
        }
        latest
    }

    /// Whether the head `sha` is green as GitHub's merge box sees it: at least one check,
    /// every latest check run passed, and the combined status (if any status) success.
    pub fn is_green(&self, sha: &str) -> bool {
        let runs = self.latest_check_runs(sha);
        let statuses = self.forge.latest_statuses(sha);
        (!runs.is_empty() || !statuses.is_empty())
            && runs.iter().all(|r| r.passed())
            && (statuses.is_empty() || self.combined_state(sha) == "success")
    }

    /// GitHub's combined state: `failure` if a latest status is `error` or `failure`,
    /// `pending` if one is pending or there are none at all, else `success`.
    pub fn combined_state(&self, sha: &str) -> &'static str {
        let latest = self.forge.latest_statuses(sha);
        if latest
            .iter()
            .any(|s| s.state == "error" || s.state == "failure")
        {
            "failure"
        } else if latest.is_empty() || latest.iter().any(|s| s.state == "pending") {
            "pending"
        } else {
            "success"
        }
    }

    /// Installation tokens handed out so far, oldest first.
    pub fn installation_tokens(&self) -> &[InstallationToken] {
        &self.tokens
    }

    pub fn rate_limit(&self) -> &RateLimit {
        &self.rate
    }

    /// Answers of the fake that broke the description (a bug in the fake, not forgehand).
    pub fn shape_problems(&self) -> &[String] {
        &self.shape_problems
    }

    /// The login acting for the token, or for installation tokens the app's bot.
    pub fn bot_login(&self) -> String {
        match &self.app {
            Some(app) => app.bot_login(),
            None => self.forge.bot_login.clone(),
        }
    }

    /// A readable summary for timeout errors: the Forgejo state's plus checks and runs.
    pub fn summary(&self) -> String {
        let mut out = self.forge.summary();
        for p in self.forge.pulls() {
            let _ = writeln!(
                out,
                "PR #{} green={} combined={}",
                p.number,
                self.is_green(&p.head_sha),
                self.combined_state(&p.head_sha)
            );
        }
        for c in &self.check_runs {
            let _ = writeln!(
                out,
                "check run {} {:?} [{}] on {}: {} {:?}",
                c.id, c.name, c.app, c.head_sha, c.status, c.conclusion
            );
        }
        for r in &self.workflow_runs {
            let _ = writeln!(
                out,
                "workflow run {} on {} attempt {} (PR {:?})",
                r.id, r.head_sha, r.attempt, r.pull
            );
        }
        for p in &self.shape_problems {
            let _ = writeln!(out, "FAKE ANSWER OFF THE DESCRIPTION: {p}");
        }
        out
    }

    // ----- primitives shared by the HTTP handlers and the control methods -----

    /// The check suite of `app` for `sha`, created when missing.
    pub(crate) fn suite_for(&mut self, sha: &str, branch: Option<&str>, app: &str) -> u64 {
        if let Some(s) = self
            .suites
            .iter()
            .find(|s| s.head_sha == sha && s.app == app)
        {
            return s.id;
        }
        let id = self.forge.fresh_id();
        self.suites.push(CheckSuite {
            id,
            head_sha: sha.to_owned(),
            head_branch: branch.map(str::to_owned),
            app: app.to_owned(),
            created_at: Utc::now(),
        });
        id
    }

    /// The branch of an open PR whose head is `sha`, for check suites and runs.
    pub(crate) fn branch_of(&self, sha: &str) -> Option<String> {
        self.forge
            .pulls()
            .find(|p| p.head_sha == sha)
            .map(|p| p.head.clone())
    }

    /// Whether PR `n`'s mergeability is still being computed, counting this read.
    pub(crate) fn mergeable_pending(&mut self, n: u64, consume: bool) -> bool {
        let Some(pull) = self.forge.pulls.get(&n) else {
            return false;
        };
        if pull.merged || pull.head_sha.is_empty() {
            return false;
        }
        let reads = self.behaviour.mergeable_pending_reads;
        let entry = self.mergeability.entry(n).or_insert_with(|| Mergeability {
            base: String::new(),
            head: String::new(),
            reads_left: 0,
        });
        if entry.base != pull.base_sha || entry.head != pull.head_sha {
            *entry = Mergeability {
                base: pull.base_sha.clone(),
                head: pull.head_sha.clone(),
                reads_left: reads,
            };
        }
        let pending = entry.reads_left > 0;
        if pending && consume {
            entry.reads_left -= 1;
        }
        pending
    }

    /// A fresh installation token for `lifetime`.
    pub(crate) fn issue_token(&mut self, lifetime: Duration) -> InstallationToken {
        let now = Utc::now();
        let token = InstallationToken {
            token: format!("ghs_{}", random_hex(18)),
            issued_at: now,
            expires_at: now + chrono::Duration::from_std(lifetime).unwrap_or_default(),
        };
        self.tokens.push(token.clone());
        token
    }
}

/// `bytes` random bytes as hex, from the OS (tokens and log-link signatures must not be
/// guessable from earlier ones, or a test could pass by accident).
pub(crate) fn random_hex(bytes: usize) -> String {
    use std::io::Read as _;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("reading /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
