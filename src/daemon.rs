//! `forgehand run`: load the projects, take the state directory's lock, open
//! the store, build each project's context and run the actor tree until a
//! signal (or, with `--once`, until one cycle is done).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ractor::Actor;
use tokio::signal::unix::{SignalKind, signal};

use crate::actors::dev::Liveness;
use crate::actors::dev::env::base_env;
use crate::actors::supervisor::{Supervisor, SupervisorArgs, SupervisorHandle};
use crate::actors::{ProjectCtx, Timings};
use crate::ci::{CiServer, GithubActions, WoodpeckerClient};
use crate::config::{self, ConfigError, ForgeConfig, GithubAuth, GithubConfig, Project};
use crate::dashboard::{self, DashboardArgs, DashboardProject};
use crate::forge::forgejo::ForgejoClient;
use crate::forge::github::{Credentials, GithubClient, RateLimit};
use crate::forge::local::{CiConfinement, LocalArgs, LocalForge};
use crate::forge::{Forge, ForgeError, Nudge};
use crate::git::{Git, GitAuth};
use crate::http::retry::RetryPolicy;
use crate::lockfile::{DaemonLock, LockError};
use crate::matrix::{MatrixArgs, MatrixNotifier, MatrixTiming, OnReply};
use crate::notify::{LogNotifier, Notifier};
use crate::paths::StatePaths;
use crate::redact::Redactor;
use crate::sandbox::{self, Sandbox, SandboxKind};
use crate::store::{EventKind, Store};
use crate::tmux::Tmux;
use crate::webhook::{self, HookTarget, WebhookConfig};

/// Where a project's notifier reports a chat reply: (project, issue).
type ChatReplies = tokio::sync::mpsc::UnboundedSender<(String, u64)>;

/// Longest wait between attempts to reach a forge that is down at start.
const WHOAMI_MAX_DELAY: Duration = Duration::from_secs(60);

/// The forge's quota changes with every request; it is written to the store
/// at most this often.
const QUOTA_RECORD_EVERY: Duration = Duration::from_secs(10);

/// How long the actors get to stop after a signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

pub struct RunOptions {
    pub projects_dir: PathBuf,
    pub state_dir: PathBuf,
    pub once: bool,
    /// Where to listen for webhooks (`--listen ADDR`); none: polling only.
    pub listen: Option<String>,
    /// Where to serve the dashboard (`--dashboard ADDR`); none: no dashboard.
    pub dashboard: Option<String>,
}

/// Why `run` ended badly; the CLI maps these to exit codes.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{}", render_config_errors(.0))]
    Config(Vec<ConfigError>),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

fn render_config_errors(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The git locks a daemon stopped mid-command left in forgehand's clones
/// (`state/repos/<project>`), removed: this daemon holds the state folder.
fn clear_stale_git_locks(repos: &Path) {
    let Ok(clones) = std::fs::read_dir(repos) else {
        return;
    };
    for clone in clones.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        match crate::git::clear_stale_locks(&clone) {
            Ok(removed) => {
                for lock in removed {
                    tracing::warn!(
                        "removed {}, left by a git command a stopped daemon did not let finish",
                        lock.display()
                    );
                }
            }
            Err(e) => tracing::warn!("looking for stale git locks in {}: {e}", clone.display()),
        }
    }
}

pub async fn run(opts: RunOptions) -> Result<(), RunError> {
    // A core dump or a same-user `/proc/<pid>/environ`/`mem` read would hand
    // out the tokens this process holds.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!("could not make the daemon non-dumpable: {e}");
    }
    // Relative paths would mean something else to git and tmux, which run
    // in other folders (a worktree under `state` resolved inside the clone).
    let projects_dir = absolute(&opts.projects_dir)?;
    let state_dir = absolute(&opts.state_dir)?;
    let mut projects = config::load_dir(&projects_dir).map_err(RunError::Config)?;
    let daemon_month =
        config::daemon_budget::load_daemon_budget(&projects_dir).map_err(RunError::Config)?;
    for project in &mut projects {
        project.budget.daemon_month = daemon_month;
    }
    let timings = match std::env::var("FORGEHAND_TIMINGS") {
        Ok(spec) => Timings::parse(&spec).map_err(|e| {
            RunError::Config(vec![ConfigError::without_position(
                Path::new("FORGEHAND_TIMINGS"),
                "environment",
                e,
            )])
        })?,
        Err(_) => Timings::default(),
    };
    for project in &mut projects {
        absolute_paths(project)?;
    }
    let paths = StatePaths::new(&state_dir);
    std::fs::create_dir_all(paths.root())
        .with_context(|| format!("creating {}", paths.root().display()))?;
    private(paths.root(), 0o700)?;
    for dir in ["sessions", "repos", "worktrees"] {
        std::fs::create_dir_all(paths.root().join(dir))
            .with_context(|| format!("creating {}", paths.root().join(dir).display()))?;
    }
    let _lock = DaemonLock::acquire(&paths.lock()).map_err(|e| match e {
        LockError::Held { .. } => anyhow::anyhow!("{e}"),
        LockError::Io(e) => e,
    })?;
    let db = paths.db();
    let store = Arc::new(
        tokio::task::spawn_blocking(move || Store::open(&db))
            .await
            .context("opening the database")??,
    );
    // Whoever worked on claims before (a daemon killed with -9) does no more.
    store.clear_runners().await?;
    clear_stale_git_locks(&paths.root().join("repos"));
    // For `forgehand status`, which reads only the state folder.
    let limits = projects
        .iter()
        .map(|p| (p.name.clone(), p.budget.limits_json()))
        .collect();
    store.save_budget_limits(limits).await?;
    for file in [paths.db(), paths.lock(), paths.dev_active()] {
        if file.exists() {
            private(&file, 0o600)?;
        }
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = paths.db().into_os_string();
        name.push(suffix);
        if std::path::Path::new(&name).exists() {
            private(std::path::Path::new(&name), 0o600)?;
        }
    }
    // Bound before anything starts, so a taken port fails the run at once
    // rather than after the sessions were resumed.
    let hooks = match &opts.listen {
        Some(addr) => Some(bind_webhooks(addr, &projects).await?),
        None => None,
    };
    let dashboard = match &opts.dashboard {
        Some(addr) => Some(bind_dashboard(addr).await?),
        None => None,
    };
    // Signals are ours from here on, even while a forge that is down at
    // start is being waited for.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let daemon_env: Vec<(String, String)> = std::env::vars().collect();
    // Chat replies arrive before the supervisor exists to route them: they
    // queue here and are forwarded once it runs.
    let (replies_tx, mut replies_rx) = tokio::sync::mpsc::unbounded_channel();
    let quotas = std::sync::Mutex::new(Vec::new());
    let common = Common {
        paths: &paths,
        projects_dir: &projects_dir,
        store: store.clone(),
        daemon_env: &daemon_env,
        replies: replies_tx.clone(),
        listening: hooks.is_some(),
        timings: &timings,
        quotas: &quotas,
    };
    // One watch on the tmux server for every project's sessions, its
    // safety net as often as the most frequent poll, and at least every
    // `liveness_safety_net`: should tmux's news ever not come (a server
    // killed, hooks removed by hand), that is the most it costs.
    let every = projects
        .iter()
        .map(|p| p.poll_interval)
        .min()
        .unwrap_or(timings.liveness_safety_net)
        .min(timings.liveness_safety_net);
    let liveness = Liveness::start(Tmux::new(None), every);
    let mut contexts = Vec::new();
    for project in projects {
        let ctx = tokio::select! {
            ctx = project_context(project, &common, liveness.clone()) => ctx?,
            _ = sigterm.recv() => return Ok(()),
            _ = sigint.recv() => return Ok(()),
        };
        contexts.push(Arc::new(ctx));
    }
    for ctx in &contexts {
        ctx.journal(
            None,
            EventKind::Daemon,
            &format!("daemon started (PID {})", std::process::id()),
        );
    }
    let args = SupervisorArgs {
        projects: contexts.clone(),
        once: opts.once,
        timings,
    };
    let (supervisor, handle) = Actor::spawn(None, Supervisor, args)
        .await
        .context("starting the supervisor")?;
    let supervisor = SupervisorHandle::new(supervisor);
    let router = supervisor.clone();
    tokio::spawn(async move {
        while let Some((project, issue)) = replies_rx.recv().await {
            router.chat_reply(&project, issue);
        }
    });
    let nudges = nudge_router(supervisor.clone());
    for ctx in &contexts {
        watch_forge(ctx, nudges.clone())?;
    }
    let listener = hooks.map(|(listener, cfg)| {
        tokio::spawn(webhook::serve(listener, cfg, store.clone(), nudges.clone()))
    });
    let dashboard = dashboard.map(|bound| {
        tokio::spawn(dashboard::serve(
            bound,
            DashboardArgs {
                projects: contexts.iter().map(|c| DashboardProject::of(c)).collect(),
                store: store.clone(),
                tmux: Tmux::new(None),
                paths: paths.clone(),
                limits: webhook::Limits::default(),
            },
        ))
    });
    let mut handle = handle;
    let reason = tokio::select! {
        _ = &mut handle => "the actor tree finished",
        _ = sigterm.recv() => "SIGTERM",
        _ = sigint.recv() => "SIGINT",
    };
    tracing::info!("stopping: {reason}");
    if let Some(listener) = listener {
        // Deliveries from now on are refused by the closed port; the forge
        // retries them or polling catches up after the restart.
        listener.abort();
    }
    if let Some(dashboard) = dashboard {
        dashboard.abort();
    }
    if !handle.is_finished() {
        supervisor.stop(reason);
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut handle)
            .await
            .is_err()
        {
            tracing::warn!("actors did not stop within {}s", SHUTDOWN_GRACE.as_secs());
        }
    }
    for ctx in &contexts {
        ctx.journal(
            None,
            EventKind::Daemon,
            &format!("daemon stopped ({reason})"),
        );
    }
    // The sessions go on, but nobody watches them until the next start.
    store.clear_runners().await?;
    // The recorder writes at most every few seconds: the last answer's quota
    // is written now, so `status` after `run --once` shows it.
    for (project, updates) in quotas.into_inner().unwrap_or_else(|e| e.into_inner()) {
        let latest = *updates.borrow();
        if let Some(quota) = latest
            && let Err(e) = store
                .save_forge_quota(&project, quota.remaining, quota.limit, quota.reset)
                .await
        {
            tracing::warn!("{e:#}");
        }
    }
    // Journal lines are queued, not awaited: all of them are written before
    // the process ends.
    store.flush().await?;
    Ok(())
}

/// Bind the webhook listener on `addr` for every project that names a
/// webhook secret.
async fn bind_webhooks(
    addr: &str,
    projects: &[Project],
) -> anyhow::Result<(tokio::net::TcpListener, WebhookConfig)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening for webhooks on {addr}"))?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("reading the address bound for {addr}"))?;
    let mut targets = Vec::new();
    for p in projects {
        match &p.secrets.webhook_secret {
            Some(secret) => targets.push(HookTarget {
                project: p.name.clone(),
                repo: p.repo.clone(),
                secret: secret.clone(),
            }),
            None => tracing::warn!(
                "{}: no [forge] webhook_secret_env: webhooks for {} are refused",
                p.source.display(),
                p.repo
            ),
        }
    }
    tracing::info!(
        "listening for webhooks on {bound} (POST /hooks/forgejo, /hooks/github) for {} project(s)",
        targets.len()
    );
    Ok((listener, WebhookConfig::new(targets)))
}

/// Bind the dashboard on `addr`; a missing or unusable token is a usage
/// error, never echoed.
async fn bind_dashboard(addr: &str) -> Result<dashboard::Bound, RunError> {
    let token = std::env::var(dashboard::TOKEN_ENV).ok();
    dashboard::bind(addr, token.as_deref())
        .await
        .map_err(|e| match e {
            dashboard::BindError::Access(message) => {
                RunError::Config(vec![ConfigError::without_position(
                    Path::new(dashboard::TOKEN_ENV),
                    "environment",
                    message,
                )])
            }
            dashboard::BindError::Io(e) => RunError::Runtime(e),
        })
}

/// What every project's context is built from.
struct Common<'a> {
    paths: &'a StatePaths,
    projects_dir: &'a Path,
    store: Arc<Store>,
    daemon_env: &'a [(String, String)],
    replies: ChatReplies,
    /// `--listen` was given.
    listening: bool,
    timings: &'a Timings,
    /// Each GitHub project's quota reports, for a last record at shutdown.
    quotas: &'a std::sync::Mutex<Vec<(String, QuotaUpdates)>>,
}

type QuotaUpdates = tokio::sync::watch::Receiver<Option<RateLimit>>;

async fn project_context(
    project: Project,
    common: &Common<'_>,
    liveness: Liveness,
) -> anyhow::Result<ProjectCtx> {
    let Common {
        paths,
        projects_dir,
        daemon_env,
        listening,
        timings,
        ..
    } = *common;
    let store = common.store.clone();
    let replies = common.replies.clone();
    let token = project.secrets.forge_token.clone();
    let sandbox = sandbox(&project, paths, projects_dir, daemon_env)?;
    let agent_base_env = base_env(daemon_env.iter().cloned(), &project.agent.pass_env);
    // A GitHub project's client also hands out its Actions and its token
    // source (renewed for an App), and reports its quota.
    let mut github = None;
    let forge: Arc<dyn Forge> = match &project.forge {
        ForgeConfig::Forgejo(forgejo) | ForgeConfig::Gitea(forgejo) => {
            Arc::new(ForgejoClient::new(
                &forgejo.url,
                &project.repo,
                token.clone().unwrap_or_default(),
                RetryPolicy::default(),
            )?)
        }
        ForgeConfig::Local(local) => Arc::new(
            LocalForge::open(LocalArgs {
                ci_confinement: CiConfinement {
                    sandbox: sandbox.clone(),
                    env: agent_base_env.clone(),
                },
                ..LocalArgs::from_project(&project, local, Some(store.clone()))
            })
            .with_context(|| format!("{}: [forge] kind \"local\"", project.source.display()))?,
        ),
        ForgeConfig::Github(config) => {
            let client = Arc::new(github_client(&project, config)?);
            record_quota(project.name.clone(), store.clone(), client.rate_limits());
            common
                .quotas
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((project.name.clone(), client.rate_limits()));
            github = Some(client.clone());
            client
        }
    };
    let own_login = whoami(forge.as_ref(), &project.forge.location()).await?;
    let ci_server = ci_server(&project, github.as_ref())?;
    let git_auth = match &github {
        Some(client) => GitAuth::renewing(client.token_source()),
        None => GitAuth::new(token),
    };
    // The forge itself (the local backend's folder watch), or webhooks.
    let forge_reports_changes =
        forge.reports_changes() || (listening && project.secrets.webhook_secret.is_some());
    let redactor = Redactor::with_env(project.secrets.values(), daemon_env.iter().cloned());
    if project.matrix.is_none() {
        // Nothing will ever send what an earlier `[matrix]` section left
        // in the outbox: said once, not kept (and listed by `status`) forever.
        let dropped = store.outbox_clear(&project.name).await?;
        if dropped > 0 {
            let s = if dropped == 1 { "" } else { "s" };
            store.journal(
                &project.name,
                None,
                EventKind::Daemon,
                &format!(
                    "dropped {dropped} chat message{s} waiting in the outbox: {} has no [matrix] section any more",
                    project.source.display()
                ),
            )?;
        }
    }
    let notifier = notifier(&project, store.clone(), &redactor, replies);
    Ok(ProjectCtx {
        sandbox,
        agent_base_env,
        forge,
        store,
        tmux: Tmux::new(None),
        git: Git::new(git_auth).with_timeout(timings.git_timeout),
        paths: paths.clone(),
        redactor,
        own_login,
        repo_lock: tokio::sync::Mutex::new(()),
        fetches: Default::default(),
        mirror_locks: Default::default(),
        clone_refs: Default::default(),
        liveness,
        forge_reports_changes,
        notifier,
        ci_server,
        project,
    })
}

/// The CI server asked for more than statuses: Woodpecker when named,
/// else GitHub Actions on GitHub (`github`: the project's client).
pub(crate) fn ci_server(
    project: &Project,
    github: Option<&Arc<GithubClient>>,
) -> anyhow::Result<Option<Arc<dyn CiServer>>> {
    Ok(match (&project.ci.woodpecker, github) {
        (Some(w), _) => Some(Arc::new(WoodpeckerClient::new(
            &w.url,
            w.repo_id,
            project.secrets.woodpecker_token.clone().unwrap_or_default(),
            RetryPolicy::default(),
        )?)),
        // GitHub Actions reports on every GitHub repository that uses it.
        (None, Some(client)) => Some(Arc::new(GithubActions::new(client.api()))),
        (None, None) => None,
    })
}

/// The GitHub client for `project`, signed in as its file says.
pub(crate) fn github_client(
    project: &Project,
    config: &GithubConfig,
) -> anyhow::Result<GithubClient> {
    let credentials = match &config.auth {
        GithubAuth::Token { .. } => {
            Credentials::Token(project.secrets.forge_token.clone().unwrap_or_default())
        }
        GithubAuth::App {
            app_id,
            installation_id,
            private_key_file,
        } => Credentials::App {
            app_id: *app_id,
            installation_id: *installation_id,
            private_key_pem: project.secrets.github_app_key.clone().with_context(|| {
                format!(
                    "{}: the GitHub App's key {} was not read",
                    project.source.display(),
                    private_key_file.display()
                )
            })?,
        },
    };
    GithubClient::new(
        &config.url,
        &project.repo,
        credentials,
        RetryPolicy::default(),
    )
    .with_context(|| format!("{}: [forge] kind \"github\"", project.source.display()))
}

/// Keep the store's record of `project`'s quota up to date (for `forgehand
/// status`, which reads only the database), until the client is gone.
fn record_quota(project: String, store: Arc<Store>, mut updates: QuotaUpdates) {
    tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let latest = *updates.borrow_and_update();
            if let Some(quota) = latest
                && let Err(e) = store
                    .save_forge_quota(&project, quota.remaining, quota.limit, quota.reset)
                    .await
            {
                tracing::warn!("{e:#}");
            }
            tokio::time::sleep(QUOTA_RECORD_EVERY).await;
        }
    });
}

/// What the project's agents are confined to (`src/sandbox.rs`).
fn sandbox(
    project: &Project,
    paths: &StatePaths,
    projects_dir: &Path,
    daemon_env: &[(String, String)],
) -> anyhow::Result<Sandbox> {
    let var = |name: &str| {
        daemon_env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let agent = &project.agent;
    if agent.sandbox == SandboxKind::None {
        tracing::warn!(
            "{}: [agent] sandbox = \"none\": agents of {} run unconfined, as this user, and can read \
             every file this user can (tokens in other processes' environments included)",
            project.source.display(),
            project.name
        );
        return Ok(Sandbox::none());
    }
    let program = sandbox::find_bwrap(var("PATH").as_deref()).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: {}",
            project.source.display(),
            sandbox::missing_bwrap_message()
        )
    })?;
    let home = var("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    let mut hidden = vec![paths.root().to_path_buf(), projects_dir.to_path_buf()];
    if let ForgeConfig::Local(local) = &project.forge {
        hidden.push(local.plans.clone());
    }
    // It may live anywhere, not only in the home folder that is hidden anyway.
    if let Some(key) = project.forge.private_key_file() {
        hidden.push(key.to_path_buf());
    }
    // Where tmux keeps its sockets when not in `/tmp` (already private).
    if let Some(dir) = var("TMUX_TMPDIR").filter(|d| !d.is_empty()) {
        hidden.push(PathBuf::from(dir));
    }
    let read_only = agent.sandbox_ro.clone();
    Ok(Sandbox {
        kind: SandboxKind::Bwrap,
        program,
        home,
        hidden,
        read_only,
        writable: agent.sandbox_rw.clone(),
    })
}

/// `path` made absolute against the current folder.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("making {} absolute", path.display()))
}

/// The local backend's folders and a clone URL that is a path, made absolute.
fn absolute_paths(project: &mut Project) -> anyhow::Result<()> {
    if let ForgeConfig::Local(local) = &mut project.forge {
        local.plans = absolute(&local.plans)?;
    }
    let url = &project.clone_url;
    // Not `scheme://…` and not scp-like `host:path`: a path.
    let is_path = !url.contains("://")
        && (url.starts_with('/') || url.starts_with('.') || !url.contains(':'));
    if is_path {
        project.clone_url = absolute(Path::new(url))?.to_string_lossy().into_owned();
    }
    Ok(())
}

/// Only the daemon's user may read or enter `path`.
fn private(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("restricting {} to mode {mode:o}", path.display()))
}

/// Where anything that notices a forge change (a watched folder, a webhook)
/// sends it: (project, what changed), handed on to the supervisor.
pub type Nudges = tokio::sync::mpsc::UnboundedSender<(String, Nudge)>;

fn nudge_router(supervisor: SupervisorHandle) -> Nudges {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Nudge)>();
    tokio::spawn(async move {
        while let Some((project, nudge)) = rx.recv().await {
            supervisor.nudge(&project, nudge);
        }
    });
    tx
}

/// Let a forge that can see its own changes (the local backend) nudge the
/// project's actors.
fn watch_forge(ctx: &ProjectCtx, nudges: Nudges) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    ctx.forge
        .watch(tx)
        .with_context(|| format!("watching the forge of project {}", ctx.name()))?;
    let project = ctx.name().to_string();
    tokio::spawn(async move {
        while let Some(nudge) = rx.recv().await {
            if nudges.send((project.clone(), nudge)).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// Ask the forge whose token forgehand holds, waiting out an outage with
/// backoff (a daemon started while the forge is down just waits for it);
/// a rejected token is final.
async fn whoami(forge: &dyn Forge, url: &str) -> anyhow::Result<String> {
    let mut delay = Duration::from_secs(1);
    loop {
        match forge.current_user().await {
            Ok(login) => return Ok(login),
            Err(e @ ForgeError::Unauthorized(_)) => {
                return Err(
                    anyhow::Error::new(e).context(format!("{url} rejects forgehand's token"))
                );
            }
            Err(e) => {
                tracing::warn!(
                    "{url} is not answering ({e}); trying again in {}s",
                    delay.as_secs()
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(WHOAMI_MAX_DELAY);
            }
        }
    }
}

/// The project's notifier: Matrix when `[matrix]` is set, else the log. A
/// homeserver that is down does not matter here (the notifier connects and
/// retries in the background); only a notifier that cannot be built at all
/// falls back to the log.
fn notifier(
    project: &Project,
    store: Arc<Store>,
    redactor: &Redactor,
    replies: ChatReplies,
) -> Arc<dyn Notifier> {
    let Some(config) = &project.matrix else {
        return Arc::new(LogNotifier);
    };
    let Some(token) = project.secrets.matrix_token.clone() else {
        tracing::error!(
            "{}: [matrix] token_env names an unset variable; notices go to the log only",
            project.source.display()
        );
        return Arc::new(LogNotifier);
    };
    let on_reply: OnReply = Arc::new(move |project: &str, issue: u64| {
        // The supervisor hands it to the issue's dev actor (see `run`).
        let _ = replies.send((project.to_string(), issue));
    });
    let args = MatrixArgs {
        project: project.name.clone(),
        config: config.clone(),
        token,
        store,
        redactor: redactor.clone(),
        on_reply,
        timing: MatrixTiming::default(),
    };
    match MatrixNotifier::start(args) {
        Ok(n) => Arc::new(n),
        Err(e) => {
            tracing::error!(
                "{}: Matrix notifications are off: {e:#}",
                project.source.display()
            );
            Arc::new(LogNotifier)
        }
    }
}
