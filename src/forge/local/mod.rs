//! The `local` forge backend (`forge.kind = "local"`): a folder of markdown plan
//! files stands in for the forge's issues, a local git repository for its code,
//! a pushed `fix/issue-<key>` branch for a pull request, a shell command for CI
//! and review files written by `forgehand approve` for reviews.
//!
//! # Layout
//! - `plan`: parsing plan files; `scan`: reading the folder into issues.
//! - `state`: numbers, labels, comments, pulls and CI results kept in
//!   `<plans>/.forgehand/state.json`.
//! - `forge`: the `Forge` trait over all of it; `ci`, `merge`, `review`,
//!   `comments` (people's, from `forgehand reply`), `report`, `watch`: one
//!   concern each.

mod ci;
mod comments;
mod forge;
mod merge;
pub mod plan;
mod records;
mod report;
pub mod review;
mod scan;
mod state;
mod watch;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, bail};

use tokio::sync::mpsc::UnboundedSender;

use crate::config::{Labels, LocalForgeConfig, Project};
use crate::forge::{ForgeError, Nudge};
use crate::git::{GitConfig, GitRunner};
use crate::sandbox::Sandbox;
use crate::store::{EventKind, Store};

pub use ci::CI_CONTEXT;
pub use comments::{CommentFile, plan_number, submit_comment, wait_for_answer};
pub use plan::{Plan, PlanError, load_plans, parse_plan};
pub use review::{ReviewVerdict, submit_review};
use state::State;

/// forgehand's login on the local forge: its own comments and reviews carry it.
pub const LOCAL_LOGIN: &str = "forgehand";

/// What a local forge needs to know, usually taken from a project file.
pub struct LocalArgs {
    /// The folder of plan files (`forge.url`).
    pub plans: PathBuf,
    /// The git repository (`clone_url`): branches are pushed to it, merges land in it.
    pub repo: PathBuf,
    pub primary_branch: String,
    pub labels: Labels,
    /// `[ci] command`; `None` means every commit is green at once.
    pub ci_command: Option<String>,
    pub ci_timeout: Duration,
    /// Where bad plans and refused merges are journalled: (store, project name).
    pub journal: Option<(Arc<Store>, String)>,
    /// What `[ci] command` runs in: the agents' sandbox and environment,
    /// since it runs code the agent wrote.
    pub ci_confinement: CiConfinement,
}

/// The sandbox and the environment CI commands run with.
#[derive(Debug, Clone)]
pub struct CiConfinement {
    pub sandbox: Sandbox,
    /// The whole environment (the agents' whitelist); nothing else is passed.
    pub env: Vec<(String, String)>,
}

impl CiConfinement {
    /// No sandbox, and only `PATH`, `HOME` and `LANG` of this process: for
    /// the CLI verbs, which never run CI.
    pub fn minimal() -> CiConfinement {
        let env = ["PATH", "HOME", "LANG"]
            .into_iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        CiConfinement {
            sandbox: Sandbox::none(),
            env,
        }
    }
}

impl LocalArgs {
    pub fn from_project(
        project: &Project,
        local: &LocalForgeConfig,
        store: Option<Arc<Store>>,
    ) -> LocalArgs {
        LocalArgs {
            plans: local.plans.clone(),
            repo: repo_path(&project.clone_url),
            primary_branch: project.primary_branch.clone(),
            labels: project.labels.clone(),
            ci_command: project.ci.command.clone(),
            ci_timeout: project.ci.timeout,
            journal: store.map(|s| (s, project.name.clone())),
            ci_confinement: CiConfinement::minimal(),
        }
    }
}

/// The local backend; cheap to share (one `Arc` inside), since CI runs and the
/// folder watcher outlive the call that started them.
pub struct LocalForge {
    inner: Arc<Inner>,
}

struct Inner {
    plans: PathBuf,
    repo: PathBuf,
    primary: String,
    labels: Labels,
    ci_command: Option<String>,
    ci_timeout: Duration,
    ci_confinement: CiConfinement,
    journal: Option<(Arc<Store>, String)>,
    state: Mutex<State>,
    /// Commits whose CI is running now (not persisted: a restart runs them again).
    ci_running: Mutex<BTreeSet<String>>,
    /// Set by `watch`; CI results are announced here.
    nudges: Mutex<Option<UnboundedSender<Nudge>>>,
    /// Kept alive for as long as the forge: dropping it stops the watching.
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// Held for a whole merge: two merges at once into one checkout would see
    /// each other's half-done `merge --ff-only` as the owner's changes.
    merging: tokio::sync::Mutex<()>,
}

impl LocalForge {
    /// Opens the plans folder (which must exist) and its persisted state.
    pub fn open(args: LocalArgs) -> anyhow::Result<LocalForge> {
        if !args.plans.is_dir() {
            bail!(
                "[forge] url: the plans folder {} does not exist (forge.kind = \"local\" \
                 names a folder of plan files)",
                args.plans.display()
            );
        }
        // Absolute, so the watcher's event paths compare equal to it.
        let plans = args
            .plans
            .canonicalize()
            .with_context(|| format!("resolving {}", args.plans.display()))?;
        let state = State::load(&plans)?;
        Ok(LocalForge {
            inner: Arc::new(Inner {
                plans,
                repo: args.repo,
                primary: args.primary_branch,
                labels: args.labels,
                ci_command: args.ci_command.filter(|c| !c.trim().is_empty()),
                ci_timeout: args.ci_timeout,
                ci_confinement: args.ci_confinement,
                journal: args.journal,
                state: Mutex::new(state),
                ci_running: Mutex::new(BTreeSet::new()),
                nudges: Mutex::new(None),
                merging: tokio::sync::Mutex::new(()),
                watcher: Mutex::new(None),
            }),
        })
    }

    pub fn plans_dir(&self) -> &Path {
        &self.inner.plans
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the state and persists it before anyone else sees the change.
    fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> Result<T, ForgeError> {
        let mut state = self.state();
        let out = change(&mut state);
        state.save(&self.plans).map_err(ForgeError::Other)?;
        Ok(out)
    }

    fn journal(&self, issue: Option<u64>, kind: EventKind, detail: &str) {
        tracing::warn!("{detail}");
        if let Some((store, project)) = &self.journal
            && let Err(e) = store.journal(project, issue, kind, detail)
        {
            tracing::error!("{e:#}");
        }
    }

    fn nudge(&self, nudge: Nudge) {
        let nudges = self.nudges.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = nudges.as_ref() {
            let _ = tx.send(nudge);
        }
    }

    fn key_of(&self, number: u64) -> Option<String> {
        self.state().key_of(number).map(str::to_string)
    }
}

/// The repository a `clone_url` names: a path, or a `file://` URL.
pub fn repo_path(clone_url: &str) -> PathBuf {
    PathBuf::from(clone_url.strip_prefix("file://").unwrap_or(clone_url))
}

/// How the local backend runs git: through forgehand's one hardened runner,
/// but with the user's configuration (the repository is the user's own, see
/// `GitConfig::User`) and as forgehand, the author of the merge commits it
/// makes, whatever identity the user's configuration names.
static GIT: LazyLock<GitRunner> = LazyLock::new(|| {
    GitRunner::new(GitConfig::User)
        .with_env("GIT_AUTHOR_NAME", "forgehand")
        .with_env("GIT_AUTHOR_EMAIL", "forgehand@localhost")
        .with_env("GIT_COMMITTER_NAME", "forgehand")
        .with_env("GIT_COMMITTER_EMAIL", "forgehand@localhost")
});

/// Runs git in `dir`; a failure is an error naming the command. The trimmed stdout.
async fn git<I, S>(dir: &Path, args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    GIT.text(dir, args).await
}

/// Runs git in `dir`, leaving its exit status to the caller.
async fn git_output<I, S>(dir: &Path, args: I) -> anyhow::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    GIT.output(dir, args).await
}

/// The commit a branch of `repo` points at, `None` if there is no such branch.
async fn branch_sha(repo: &Path, branch: &str) -> anyhow::Result<Option<String>> {
    let out = git_output(
        repo,
        [
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}^{{commit}}"),
        ],
    )
    .await?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
}
