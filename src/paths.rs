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

    pub fn worktree(&self, project: &str, issue: u64) -> PathBuf {
        self.root
            .join("worktrees")
            .join(project)
            .join(issue.to_string())
    }
}

/// `dev-<project>-<issue>`: the name people type in `tmux attach -t`.
pub fn session_name(project: &str, issue: u64) -> String {
    format!("dev-{project}-{issue}")
}

/// `fix/issue-<issue>`.
pub fn branch_name(issue: u64) -> String {
    format!("fix/issue-{issue}")
}
