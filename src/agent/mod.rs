//! Agent adapters: what differs between the agent programs forgehand drives in
//! a session (`[agent] kind`). The dev actor stays the one code path; an
//! adapter only prepares the session, reads the pane for readiness and turns
//! the agent's own signals (marker files its hooks write into the session
//! folder) into messages for the actor.
//!
//! - `Generic`: any terminal program; ready when `ready_pattern` shows.
//! - `Claude`: Claude Code, driven unattended (`claude/`).

pub mod claude;
pub mod usage_file;

use std::path::{Path, PathBuf};

use crate::budget::ModelUsage;
use crate::config::AgentKind;
use crate::tmux::Tmux;

/// Written by the agent's hooks when it ends a turn (Claude Code's `Stop`).
pub const STOPPED_MARKER: &str = "agent-stopped";
/// Written by the agent's hooks when it exits (Claude Code's `SessionEnd`).
pub const EXITED_MARKER: &str = "agent-exited";
/// The protocol text, re-printed to the agent after its context is compacted.
pub const PROTOCOL_FILE: &str = "protocol.md";

/// What an agent's hooks report through a marker file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The agent finished a turn and waits for input.
    Stopped,
    /// The agent program ended.
    Exited,
}

impl Signal {
    /// The signal a file in the session folder stands for, by its name.
    pub fn from_file_name(name: &str) -> Option<Signal> {
        match name {
            STOPPED_MARKER => Some(Signal::Stopped),
            EXITED_MARKER => Some(Signal::Exited),
            _ => None,
        }
    }
}

/// One session, as an adapter needs to know it.
pub struct SessionCtx<'a> {
    pub worktree: &'a Path,
    pub session_dir: &'a Path,
    /// `[agent] command`.
    pub command: &'a str,
    /// The session's environment (whitelist, `pass_env`, FORGEHAND_*).
    pub env: &'a [(String, String)],
    /// The protocol text with this session's paths.
    pub protocol: &'a str,
}

impl SessionCtx<'_> {
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The agent's home: its `HOME`, which is also the daemon's.
    pub fn home(&self) -> Option<PathBuf> {
        self.var("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentAdapter {
    Generic,
    Claude,
}

impl AgentAdapter {
    pub fn new(kind: AgentKind) -> AgentAdapter {
        match kind {
            AgentKind::Generic => AgentAdapter::Generic,
            AgentKind::Claude => AgentAdapter::Claude,
        }
    }

    /// Before the session starts: files the agent needs so it never waits on
    /// a dialog. Returns variables to add to the session's environment.
    pub async fn prepare(&self, ctx: &SessionCtx<'_>) -> anyhow::Result<Vec<(String, String)>> {
        match self {
            AgentAdapter::Generic => Ok(Vec::new()),
            AgentAdapter::Claude => claude::prepare(ctx).await,
        }
    }

    /// Whether the pane shows the agent waiting for input.
    pub fn is_ready(&self, screen: &str, ready_pattern: &str) -> bool {
        match self {
            AgentAdapter::Generic => screen.contains(ready_pattern),
            AgentAdapter::Claude => claude::is_ready(screen, ready_pattern),
        }
    }

    /// Deliver one message: bracketed paste from a tmux buffer, then Enter.
    /// Both kinds take input the same way today.
    pub async fn submit(&self, tmux: &Tmux, session: &str, text: &str) -> anyhow::Result<()> {
        tmux.paste(session, text).await
    }

    /// What the agent must be able to write outside its worktree, in the
    /// sandbox: its own config and records (in the daemon's `home`).
    pub fn sandbox_rw(&self, home: Option<&Path>) -> Vec<PathBuf> {
        match (self, home) {
            (AgentAdapter::Claude, Some(home)) => claude::sandbox_rw(home),
            _ => Vec::new(),
        }
    }

    /// Tokens the agent used in this worktree so far, by model, if the
    /// agent keeps count: Claude Code in its transcripts, any other agent
    /// in the usage file (`usage_file`), if it writes one.
    pub async fn usage(&self, ctx: &SessionCtx<'_>) -> anyhow::Result<Option<ModelUsage>> {
        match self {
            AgentAdapter::Generic => {
                let path = ctx.session_dir.join(usage_file::USAGE_FILE);
                let read = tokio::task::spawn_blocking(move || usage_file::read(&path))
                    .await
                    .map_err(anyhow::Error::from)??;
                Ok(read.map(|f| {
                    if f.skipped > 0 || f.truncated {
                        tracing::warn!(
                            skipped = f.skipped,
                            truncated = f.truncated,
                            "the agent's usage file has lines that are not usage records"
                        );
                    }
                    f.usage
                }))
            }
            AgentAdapter::Claude => claude::usage(ctx).await,
        }
    }

    /// When the worktree goes: remove what `prepare` and the agent left
    /// outside it.
    pub async fn cleanup(&self, ctx: &SessionCtx<'_>) -> anyhow::Result<()> {
        match self {
            AgentAdapter::Generic => Ok(()),
            AgentAdapter::Claude => claude::cleanup(ctx).await,
        }
    }
}
