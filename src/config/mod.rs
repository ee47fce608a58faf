//! Project files (`projects/*.toml`, DESIGN §4): the validated, typed form the
//! rest of forgehand uses. Parsing and validation live in `load`.

pub mod daemon_budget;
pub mod duration;
mod error;
pub mod load;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use load::{
    CheckReport, ConfigError, FileCheck, check_dir, check_dir_with, load_dir, load_dir_with,
    load_file, load_file_with,
};

use crate::forge::MergeMethod;
use crate::sandbox::SandboxKind;

/// One project, validated. Secrets are resolved from the environment at load
/// time and kept in `secrets`, never in the other fields.
#[derive(Debug, Clone)]
pub struct Project {
    /// `[a-z0-9-]+`; sessions are `dev-<name>-<issue>`.
    pub name: String,
    /// `owner/name` on the forge.
    pub repo: String,
    pub primary_branch: String,
    pub clone_url: String,
    pub poll_interval: Duration,
    pub forge: ForgeConfig,
    pub labels: Labels,
    pub agent: AgentConfig,
    pub ci: CiConfig,
    pub review: ReviewConfig,
    pub merge: MergeConfig,
    pub matrix: Option<MatrixConfig>,
    /// name → push URL, pushed after every merge.
    pub mirrors: BTreeMap<String, String>,
    /// `[budget]`: limits on what agents spend (none when absent).
    pub budget: crate::budget::BudgetConfig,
    /// The file this project came from, for messages.
    pub source: PathBuf,
    pub secrets: Secrets,
}

/// What `[forge] kind` names, without what each kind carries: for messages
/// and for code that only asks which kind it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeKind {
    Forgejo,
    Gitea,
    Github,
    Local,
}

/// `[forge]`, validated: each kind with what it needs and nothing else.
#[derive(Debug, Clone)]
pub enum ForgeConfig {
    Forgejo(HttpForgeConfig),
    /// Gitea speaks Forgejo's API (`<url>/api/v1`): the same client.
    Gitea(HttpForgeConfig),
    Github(GithubConfig),
    Local(LocalForgeConfig),
}

/// A Forgejo or Gitea instance.
#[derive(Debug, Clone)]
pub struct HttpForgeConfig {
    /// The instance's web address; the API is `<url>/api/v1`.
    pub url: String,
    /// Name of the variable holding the forge token.
    pub token_env: String,
    /// Name of the variable holding the shared secret webhooks are signed
    /// with; without it `run --listen` refuses this project's deliveries.
    pub webhook_secret_env: Option<String>,
}

/// GitHub (github.com, or an Enterprise server's `https://HOST/api/v3`).
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// The REST API's address; `https://api.github.com` unless the file says.
    pub url: String,
    pub auth: GithubAuth,
    /// As for Forgejo: the secret webhook deliveries are signed with.
    pub webhook_secret_env: Option<String>,
}

/// How forgehand signs in to GitHub.
#[derive(Debug, Clone)]
pub enum GithubAuth {
    /// A personal access token (fine-grained or classic) in this variable.
    Token { token_env: String },
    /// A GitHub App installed on the repository: its id, the installation's id
    /// and the App's private key (read at load time into
    /// `Secrets::github_app_key`; the path is kept to hide it from agents).
    App {
        app_id: u64,
        installation_id: u64,
        private_key_file: PathBuf,
    },
}

/// The local backend: a folder of plan files, no server.
#[derive(Debug, Clone)]
pub struct LocalForgeConfig {
    /// The plans folder (`[forge] url`); absolute once `forgehand run` has
    /// resolved it.
    pub plans: PathBuf,
}

impl ForgeConfig {
    pub fn kind(&self) -> ForgeKind {
        match self {
            ForgeConfig::Forgejo(_) => ForgeKind::Forgejo,
            ForgeConfig::Gitea(_) => ForgeKind::Gitea,
            ForgeConfig::Github(_) => ForgeKind::Github,
            ForgeConfig::Local(_) => ForgeKind::Local,
        }
    }

    /// The variable holding the API token, for forges that take one.
    pub fn token_env(&self) -> Option<&str> {
        match self {
            ForgeConfig::Forgejo(f) | ForgeConfig::Gitea(f) => Some(&f.token_env),
            ForgeConfig::Github(g) => match &g.auth {
                GithubAuth::Token { token_env } => Some(token_env),
                GithubAuth::App { .. } => None,
            },
            ForgeConfig::Local(_) => None,
        }
    }

    /// The variable holding the webhook secret, for forges that send webhooks.
    pub fn webhook_secret_env(&self) -> Option<&str> {
        match self {
            ForgeConfig::Forgejo(f) | ForgeConfig::Gitea(f) => f.webhook_secret_env.as_deref(),
            ForgeConfig::Github(g) => g.webhook_secret_env.as_deref(),
            ForgeConfig::Local(_) => None,
        }
    }

    /// Where the forge is, for messages: its URL, or the plans folder.
    pub fn location(&self) -> String {
        match self {
            ForgeConfig::Forgejo(f) | ForgeConfig::Gitea(f) => f.url.clone(),
            ForgeConfig::Github(g) => g.url.clone(),
            ForgeConfig::Local(l) => l.plans.display().to_string(),
        }
    }

    /// `clone_url` when the project file gives none: `<url>/<repo>.git`, and
    /// for GitHub the web host's (`https://github.com/<repo>.git`, or
    /// `https://HOST/<repo>.git` for an Enterprise server's `https://HOST/api/v3`).
    pub fn default_clone_url(&self, repo: &str) -> String {
        match self {
            ForgeConfig::Github(g) => crate::forge::github::default_clone_url(&g.url, repo),
            _ => format!("{}/{repo}.git", self.location().trim_end_matches('/')),
        }
    }

    /// The GitHub App's private key file, which agents must not see.
    pub fn private_key_file(&self) -> Option<&std::path::Path> {
        match self {
            ForgeConfig::Github(GithubConfig {
                auth: GithubAuth::App {
                    private_key_file, ..
                },
                ..
            }) => Some(private_key_file),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Labels {
    pub backlog: String,
    pub priority: String,
    pub in_progress: String,
    pub blocked: String,
    pub underspecified: String,
}

/// Which agent program runs in the session, so forgehand knows how to get it
/// past its start-up dialogs and read its signals (`src/agent/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    /// Any terminal program that shows `ready_pattern` when it waits for input.
    Generic,
    /// Claude Code.
    Claude,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub kind: AgentKind,
    pub command: String,
    pub ready_pattern: String,
    pub max_sessions: u32,
    pub idle_timeout: Duration,
    pub escalation_timeout: Duration,
    pub pass_env: Vec<String>,
    /// `bwrap` (the default) or `none` (`src/sandbox.rs`).
    pub sandbox: SandboxKind,
    /// More paths the sandboxed agent may write, `~/` expanded.
    pub sandbox_rw: Vec<PathBuf>,
    /// More paths it may read where they would be hidden, `~/` expanded.
    pub sandbox_ro: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct CiConfig {
    pub required: bool,
    pub max_fix_attempts: u32,
    pub timeout: Duration,
    /// `[ci] command`: the shell command line the local backend runs as CI
    /// (written by the project's owner, run with `sh -c`).
    pub command: Option<String>,
    pub woodpecker: Option<WoodpeckerConfig>,
}

#[derive(Debug, Clone)]
pub struct WoodpeckerConfig {
    pub url: String,
    pub repo_id: u64,
    pub token_env: String,
}

#[derive(Debug, Clone)]
pub struct ReviewConfig {
    pub required_approvals: u32,
    pub max_rounds: u32,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct MergeConfig {
    pub method: MergeMethod,
    pub delete_branch: bool,
    /// The veto window: how long an approved, green PR waits before it is
    /// merged (zero: at once).
    pub delay: Duration,
}

#[derive(Debug, Clone)]
pub struct MatrixConfig {
    pub homeserver: String,
    pub room_id: String,
    pub user_id: String,
    pub token_env: String,
    pub mention_user: Option<String>,
    /// A message the homeserver has not accepted after this long is dropped
    /// (with a journal line): news that old misleads more than it helps.
    pub outbox_max_age: std::time::Duration,
}

impl MatrixConfig {
    /// `[matrix] outbox_max_age` when not given.
    pub const DEFAULT_OUTBOX_MAX_AGE: std::time::Duration =
        std::time::Duration::from_secs(24 * 3600);
}

/// Secret values read from the variables the `*_env` keys name. `Debug` never
/// prints them.
#[derive(Clone, Default)]
pub struct Secrets {
    pub forge_token: Option<String>,
    pub woodpecker_token: Option<String>,
    pub matrix_token: Option<String>,
    pub webhook_secret: Option<String>,
    /// The GitHub App's private key (PEM), read from `private_key_file`.
    pub github_app_key: Option<String>,
}

impl Secrets {
    /// Every secret value, for the redactor.
    pub fn values(&self) -> Vec<String> {
        [
            &self.forge_token,
            &self.woodpecker_token,
            &self.matrix_token,
            &self.webhook_secret,
            &self.github_app_key,
        ]
        .into_iter()
        .flatten()
        .filter(|v| !v.is_empty())
        .cloned()
        .collect()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}
