//! What every actor of one project shares: its configuration, forge client,
//! store, tmux server, git runner and the redactor.

use std::sync::Arc;

use crate::ci::CiServer;
use crate::config::Project;
use crate::forge::Forge;
use crate::git::Git;
use crate::notify::Notifier;
use crate::paths::StatePaths;
use crate::redact::Redactor;
use crate::sandbox::{Cell, Sandbox};
use crate::store::{EventKind, Store};
use crate::tmux::Tmux;

/// The most forgehand posts in one comment or PR body.
pub const MAX_POSTED_BYTES: usize = 64 * 1024;
/// The most one journal line holds.
pub const MAX_JOURNAL_BYTES: usize = 16 * 1024;

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
    /// The CI server to read failing steps' logs from and restart pipelines
    /// on, when configured.
    pub ci_server: Option<Arc<dyn CiServer>>,
    /// Serialises fetches and worktree changes in the project's one clone
    /// (git's own locks would make concurrent ones fail).
    pub repo_lock: tokio::sync::Mutex<()>,
    /// Fetches into that clone, shared by callers asking at once (`fresh_clone`).
    pub fetches: super::fetches::Fetches,
    /// One push at a time to each mirror (a merge's and the start's).
    pub mirror_locks: super::mirrors::MirrorLocks,
    /// The clone's remote-tracking refs as read after its last fetch: what
    /// agents' repositories start from (`fresh_clone`).
    pub clone_refs: std::sync::Mutex<Arc<crate::git::RemoteRefs>>,
    /// The daemon's one watch on its tmux sessions (shared by all projects).
    pub liveness: super::dev::Liveness,
    /// What the project's agents (and local CI) are confined to.
    pub sandbox: Sandbox,
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

    /// The sandbox cell of the issue with this key: its worktree, its
    /// session folder (but for the files forgehand writes there), the
    /// agent's own config, and forgehand's clone to fetch from.
    pub fn cell(&self, key: &str) -> Cell {
        let session_dir = self
            .paths
            .session_dir(&crate::paths::session_name(self.name(), key));
        let home = self
            .agent_base_env
            .iter()
            .find(|(k, _)| k == "HOME")
            .map(|(_, v)| std::path::PathBuf::from(v));
        let mut writable = vec![session_dir.clone()];
        writable.extend(
            crate::agent::AgentAdapter::new(self.project.agent.kind).sandbox_rw(home.as_deref()),
        );
        Cell {
            cwd: self.paths.worktree(self.name(), key),
            writable,
            read_only: vec![self.paths.repo_dir(self.name())],
            protected: crate::paths::PROTECTED_SESSION_FILES
                .iter()
                .map(|f| session_dir.join(f))
                .collect(),
        }
    }

    /// The words that run a command in the cell of the issue with this key.
    pub fn confine(&self, key: &str) -> Vec<std::ffi::OsString> {
        self.sandbox.wrap(&self.cell(key))
    }

    /// Post a comment on issue or PR `n`: redacted, and cut at
    /// `MAX_POSTED_BYTES` with a note saying so (much of it may come from
    /// the agent's files or pane).
    pub async fn comment(&self, n: u64, text: &str) -> crate::forge::ForgeResult<()> {
        let text = self.posted(text);
        self.forge.create_comment(n, &text).await.map(|_| ())
    }

    /// Post `text` unless forgehand's own comment with it is on issue `n`
    /// from `since` on (forges give whole seconds, so compared at that).
    pub async fn comment_once(
        &self,
        n: u64,
        text: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> crate::forge::ForgeResult<()> {
        use chrono::Timelike;
        let text = self.posted(text);
        let floor = since.with_nanosecond(0).unwrap_or(since);
        let posted = self.forge.list_comments(n).await?.into_iter().any(|c| {
            c.author == self.own_login && c.created_at >= floor && c.body.trim() == text.trim()
        });
        if posted {
            return Ok(());
        }
        self.forge.create_comment(n, &text).await.map(|_| ())
    }

    /// Text for the forge: redacted and capped.
    pub fn posted(&self, text: &str) -> String {
        crate::untrusted::cap_text(&self.redactor.redact(text), MAX_POSTED_BYTES, false)
    }

    /// Journal an event; a failing journal write is logged, never fatal, since
    /// the action it describes has already happened. Details are capped at
    /// `MAX_JOURNAL_BYTES`.
    pub fn journal(&self, issue: Option<u64>, kind: EventKind, detail: &str) {
        let detail =
            crate::untrusted::cap_text(&self.redactor.redact(detail), MAX_JOURNAL_BYTES, false);
        tracing::info!(project = %self.project.name, issue, kind = kind.as_str(), "{detail}");
        if let Err(e) = self.store.journal(&self.project.name, issue, kind, &detail) {
            tracing::error!("journal write failed: {e:#}");
        }
    }
}
