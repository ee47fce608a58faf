//! The layout of the state directory (DESIGN §2), in one place.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct StatePaths {
    root: PathBuf,
}

impl StatePaths {
    pub fn new(root: impl Into<PathBuf>) -> StatePaths {
        StatePaths { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The on/off switch: absent, pollers and merge scanners do nothing.
    pub fn dev_active(&self) -> PathBuf {
        self.root.join(".dev-active")
    }

    pub fn db(&self) -> PathBuf {
        self.root.join("forgehand.db")
    }

    pub fn lock(&self) -> PathBuf {
        self.root.join("forgehand.lock")
    }

    pub fn session_dir(&self, session: &str) -> PathBuf {
        self.root.join("sessions").join(session)
    }

    pub fn repo_dir(&self, project: &str) -> PathBuf {
        self.root.join("repos").join(project)
    }

    /// `issue` is the issue's key as the forge names it (`42`, or a plan's name).
    pub fn worktree(&self, project: &str, issue: &str) -> PathBuf {
        self.worktrees(project).join(issue)
    }

    /// The folder holding every worktree of a project.
    pub fn worktrees(&self, project: &str) -> PathBuf {
        self.root.join("worktrees").join(project)
    }
}

/// The pane's output, appended by tmux (`pipe-pane`) in the session folder.
pub const PANE_LOG: &str = "pane.log";

/// Files of the session folder that forgehand writes and the sandboxed agent
/// may only read (the rest of the folder is the agent's to write).
pub const PROTECTED_SESSION_FILES: [&str; 2] = [PANE_LOG, crate::agent::PROTOCOL_FILE];

/// `dev-<project>-<issue>`: the name people type in `tmux attach -t`. `issue`
/// is the issue's key (`42`, or a local plan's name).
pub fn session_name(project: &str, issue: &str) -> String {
    format!("dev-{project}-{issue}")
}

/// `fix/issue-<issue>`, `issue` being the issue's key.
pub fn branch_name(issue: &str) -> String {
    format!("fix/issue-{issue}")
}
