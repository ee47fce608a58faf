//! What every actor of one project shares: its configuration, forge client,
//! store, tmux server, git runner and the redactor.

use std::sync::Arc;

use crate::ci::woodpecker::WoodpeckerClient;
use crate::config::Project;
use crate::forge::Forge;
use crate::git::Git;
use crate::notify::Notifier;
use crate::paths::StatePaths;
use crate::redact::Redactor;
use crate::store::{EventKind, Store};
use crate::tmux::Tmux;

pub struct ProjectCtx {
    pub project: Project,
    pub forge: Arc<dyn Forge>,
    pub store: Arc<Store>,
    pub tmux: Tmux,
    pub git: Git,
    pub paths: StatePaths,
    pub redactor: Redactor,
    /// The daemon's environment, filtered down to what an agent may see
    /// (DESIGN §6), computed once at start.
    pub agent_base_env: Vec<(String, String)>,
    /// forgehand's own login on the forge: its comments are not a human's.
    pub own_login: String,
    /// Where notices for people go (Matrix, or just the log).
    pub notifier: Arc<dyn Notifier>,
    /// The CI server to read failing steps' logs from, when configured.
    pub woodpecker: Option<WoodpeckerClient>,
    /// Serialises fetches and worktree changes in the project's one clone
    /// (git's own locks would make concurrent ones fail).
    pub repo_lock: tokio::sync::Mutex<()>,
    /// The forge tells forgehand of changes itself (webhooks are received, or
    /// the local backend watches its folder), so waiting actors poll only as
    /// a safety net.
    pub forge_reports_changes: bool,
}

impl ProjectCtx {
    pub fn name(&self) -> &str {
        &self.project.name
    }

    /// The issue's key in session, branch and worktree names.
    pub fn issue_key(&self, n: u64) -> String {
        self.forge.issue_key(crate::forge::IssueNumber(n))
    }

    /// `dev-<project>-<key>`.
    pub fn session_name(&self, n: u64) -> String {
        crate::paths::session_name(self.name(), &self.issue_key(n))
    }

    /// Journal an event; a failing journal write is logged, never fatal, since
    /// the action it describes has already happened.
    pub fn journal(&self, issue: Option<u64>, kind: EventKind, detail: &str) {
        let detail = self.redactor.redact(detail);
        tracing::info!(project = %self.project.name, issue, kind = kind.as_str(), "{detail}");
        if let Err(e) = self.store.journal(&self.project.name, issue, kind, &detail) {
            tracing::error!("journal write failed: {e:#}");
        }
    }
}
