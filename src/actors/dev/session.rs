//! The agent's session: its repository and worktree, the tmux session in
//! the sandbox, waiting for its prompt, delivering the task, and cleaning up.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;

use crate::actors::reconcile;
use crate::agent::SessionCtx;
use crate::prompt::{self, TaskPrompt};
use crate::store::EventKind;
use crate::tmux::SessionSpec;

use super::env::{SessionVars, session_env};
use super::machine::{Event, Stage};
use super::{Delivery, DevMsg, DevRun, watch};

/// Pane size: wide enough that agents don't wrap everything.
const PANE_WIDTH: u16 = 200;
const PANE_HEIGHT: u16 = 50;
/// How long a killed agent may take to exit before its files are removed anyway.
const AGENT_EXIT_TIMEOUT: Duration = Duration::from_secs(5);
const AGENT_EXIT_POLL: Duration = Duration::from_millis(50);

impl DevRun {
    /// Worktree, watch and tmux session; a live session is adopted as it is.
    pub(super) async fn ensure_session(&mut self) -> anyhow::Result<()> {
        let ctx = self.ctx.clone();
        let project = &ctx.project;
        let repo_dir = ctx.paths.repo_dir(ctx.name());
        let no_repo = std::fs::symlink_metadata(self.worktree.join(".git")).is_err();
        if no_repo || !repo_dir.join("HEAD").exists() {
            // One fetch serves a burst of starts (`fresh_clone`); the agent's
            // repository only reads the clone, so it is made outside the
            // clone's lock, side by side with the other starts.
            let refs = ctx.fresh_clone().await?;
            // `/forgehand retry` (`from_primary`): the work so far is not
            // built on; otherwise a branch already pushed is.
            let pushed = !self.state.from_primary && refs.branch(&self.branch).is_some();
            let start = match pushed {
                true => &self.branch,
                false => &project.primary_branch,
            };
            if no_repo {
                ctx.git
                    .create_agent_repo(&repo_dir, &self.worktree, &self.branch, start, &refs)
                    .await
                    .with_context(|| format!("creating the worktree for {}", self.branch))?;
            }
        }
        tokio::fs::create_dir_all(&self.session_dir)
            .await
            .with_context(|| format!("creating {}", self.session_dir.display()))?;
        // Made by forgehand before the agent starts, so the sandbox can hold
        // them read-only in place (see `ProjectCtx::cell`).
        for name in crate::paths::PROTECTED_SESSION_FILES {
            let path = self.session_dir.join(name);
            // A plain file is kept (the pane log of an adopted session goes
            // on); anything else in its place (a link) is replaced.
            if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
                crate::untrusted::write_in(
                    &self.session_dir,
                    std::path::Path::new(name),
                    b"",
                    0o600,
                )?;
            }
        }
        if self.watcher.is_none() {
            self.watcher = Some(watch::watch_phase_file(
                &self.session_dir,
                self.myself.clone(),
            )?);
        }
        // One look: `None` is no session, `Some(true)` a dead pane.
        let dead = ctx.tmux.pane_dead(&self.session).await?;
        if dead == Some(false) {
            if let Some(liveness) = &self.liveness {
                liveness.started();
            }
            self.journal(
                EventKind::SessionStarted,
                &format!("adopted the live session {}", self.session),
            );
            if self.state.stage == Stage::Starting {
                self.delivery = Delivery::Task;
                self.wait_until_ready();
            }
            // A phase written while nobody watched is still acted on.
            self.myself.send_message(DevMsg::PhaseFileChanged)?;
            return Ok(());
        }
        if dead.is_some() {
            ctx.tmux.kill_session(&self.session).await?;
        }
        if self.state.stage == Stage::Starting {
            // A phase file left from an earlier attempt must not be taken as
            // new, nor its usage file counted against this one's budget.
            let _ = tokio::fs::remove_file(self.phase_file()).await;
            let _ = tokio::fs::remove_file(self.usage_file()).await;
        }
        let paths = [
            self.phase_file(),
            self.summary_file(),
            self.scratch_file(),
            self.usage_file(),
        ];
        let [phase, summary, scratch, usage] = paths.map(|p| p.display().to_string());
        let mut env = session_env(
            &ctx.agent_base_env,
            &SessionVars {
                phase_file: &phase,
                summary_file: &summary,
                scratch_file: &scratch,
                usage_file: &usage,
                issue: &self.ctx.issue_key(self.issue.0),
                project: ctx.name(),
                branch: &self.branch,
            },
        );
        let protocol = prompt::protocol(&TaskPrompt {
            repo: &project.repo,
            issue: self.issue.0,
            title: &self.title,
            body: "",
            comments: &[],
            scratch: "",
            branch: &self.branch,
            primary_branch: &project.primary_branch,
            phase_file: &self.phase_file(),
            summary_file: &self.summary_file(),
            scratch_file: &self.scratch_file(),
            usage_file: &self.usage_file(),
        });
        let extra = self
            .adapter
            .prepare(&self.agent_ctx(&env, &protocol))
            .await
            .with_context(|| format!("preparing the agent for {}", self.session))?;
        env.extend(extra);
        ctx.tmux
            .new_session(&SessionSpec {
                name: self.session.clone(),
                cwd: self.worktree.clone(),
                width: PANE_WIDTH,
                height: PANE_HEIGHT,
                env,
                sandbox: ctx.confine(&self.ctx.issue_key(self.issue.0)),
                command: project.agent.command.clone(),
                pane_log: Some(self.session_dir.join(crate::paths::PANE_LOG)),
            })
            .await
            .with_context(|| format!("starting the tmux session {}", self.session))?;
        if let Some(liveness) = &self.liveness {
            liveness.started();
        }
        self.journal(
            EventKind::SessionStarted,
            &format!(
                "started {} running `{}`",
                self.session, project.agent.command
            ),
        );
        self.delivery = if self.state.stage == Stage::Starting {
            Delivery::Task
        } else {
            Delivery::Recovery
        };
        self.wait_until_ready();
        Ok(())
    }

    /// Look for the agent's prompt after `ready_poll`, then whenever the pane
    /// prints something (`PaneOutput`), at most once per `ready_poll`: a
    /// silent pane costs no tmux calls, however many sessions start at once.
    fn wait_until_ready(&mut self) {
        self.ready_deadline = Some(Instant::now() + self.timings.ready_timeout);
        self.myself
            .send_after(self.timings.ready_poll, || DevMsg::ReadyCheck);
        // A look at the deadline, should the pane print nothing more.
        self.myself
            .send_after(self.timings.ready_timeout, || DevMsg::ReadyCheck);
    }

    /// The pane printed something: look again after `ready_poll` if the
    /// prompt is still awaited.
    pub(super) fn pane_output(&mut self) {
        if self.ready_deadline.is_some() {
            self.myself
                .send_after(self.timings.ready_poll, || DevMsg::ReadyCheck);
        }
    }

    /// One look at the pane while waiting for the agent's prompt; delivers the
    /// task (or, after a respawn, the recovery prompt) once it shows.
    pub(super) async fn ready_check(&mut self) -> anyhow::Result<Option<Event>> {
        let Some(deadline) = self.ready_deadline else {
            return Ok(None);
        };
        let ctx = self.ctx.clone();
        // Asked before the screen is read: output from now on brings
        // another look, so none is missed.
        if let Some(watcher) = &self.watcher {
            watcher.want_output();
        }
        let screen = match ctx
            .tmux
            .pane_screen(&self.session, PANE_HEIGHT as u32)
            .await?
        {
            Some((false, screen)) => screen,
            _ => {
                self.ready_deadline = None;
                anyhow::bail!(
                    "the agent's session {} ended before it was ready",
                    self.session
                );
            }
        };
        let ready = self
            .adapter
            .is_ready(&screen, &ctx.project.agent.ready_pattern);
        let settled = ready && self.ready_screen.as_deref() == Some(screen.as_str());
        self.ready_screen = ready.then_some(screen);
        if !settled {
            if Instant::now() >= deadline {
                self.ready_deadline = None;
                let reason = format!(
                    "the agent did not show its ready prompt {:?} within {}s",
                    ctx.project.agent.ready_pattern,
                    self.timings.ready_timeout.as_secs()
                );
                return Ok(Some(Event::Phase(crate::phase::PhaseReport {
                    phase: crate::phase::Phase::Failed,
                    reason: Some(reason),
                })));
            }
            if ready {
                // Settled is the same ready screen twice: look once more
                // even if nothing is printed.
                self.myself
                    .send_after(self.timings.ready_poll, || DevMsg::ReadyCheck);
            }
            return Ok(None);
        }
        self.ready_deadline = None;
        self.ready_screen = None;
        Ok(Some(Event::PromptShown))
    }

    /// Paste the task, or after a respawn the recovery prompt, into the
    /// ready agent.
    pub(super) async fn deliver_prompt(&mut self) -> anyhow::Result<Option<Event>> {
        let task = self.first_prompt().await?;
        let (text, what) = match self.delivery {
            Delivery::Task => (task, "task"),
            Delivery::Recovery => {
                let s = &self.state;
                let recovery = prompt::recovery(&prompt::Recovery {
                    pr: s.pr.map(|p| p.0),
                    last_phase: s.last_phase.map(|p| p.as_str()),
                    last_ci: s.last_ci.as_deref(),
                    last_review: s.last_review.as_deref(),
                    last_escalation: s.last_escalation.as_deref(),
                });
                (format!("{recovery}\n\n{task}"), "recovery prompt")
            }
        };
        self.paste(&text).await?;
        self.journal(
            EventKind::PromptSent,
            &format!("{what} for #{} delivered", self.issue),
        );
        Ok(Some(Event::AgentReady))
    }

    async fn first_prompt(&self) -> anyhow::Result<String> {
        let ctx = &self.ctx;
        let issue = ctx.forge.get_issue(self.issue).await?;
        let comments = self.human_comments(None, None).await?;
        let scratch = self.read_agent_file(self.scratch_file()).await;
        let (phase, summary, scratch_file) =
            (self.phase_file(), self.summary_file(), self.scratch_file());
        Ok(prompt::task(&TaskPrompt {
            repo: &ctx.project.repo,
            issue: self.issue.0,
            title: &issue.title,
            body: &issue.body,
            comments: &comments,
            scratch: &scratch,
            branch: &self.branch,
            primary_branch: &ctx.project.primary_branch,
            phase_file: &phase,
            summary_file: &summary,
            scratch_file: &scratch_file,
            usage_file: &self.usage_file(),
        }))
    }

    /// Kill the session and remove the worktree (the branch lives on the forge).
    pub(super) async fn cleanup(&mut self) -> anyhow::Result<()> {
        // Its end is forgehand's doing, not news.
        self.liveness = None;
        let agent = self.ctx.tmux.pane_pid(&self.session).await.ok().flatten();
        self.ctx.tmux.kill_session(&self.session).await?;
        if let Some(pid) = agent {
            wait_for_exit(pid).await;
        }
        self.watcher = None;
        self.remove_worktree().await?;
        self.journal(
            EventKind::CleanedUp,
            &format!("killed {} and removed its worktree", self.session),
        );
        Ok(())
    }

    /// What the adapter needs to know about this session.
    fn agent_ctx<'a>(&'a self, env: &'a [(String, String)], protocol: &'a str) -> SessionCtx<'a> {
        SessionCtx {
            worktree: &self.worktree,
            session_dir: &self.session_dir,
            command: &self.ctx.project.agent.command,
            env,
            protocol,
        }
    }

    /// Store the tokens the agent used so far and what they cost, when its
    /// adapter can tell; `None` when it cannot. Only bookkeeping: a failure
    /// is logged, never fatal.
    pub(super) async fn record_usage(&self) -> Option<crate::budget::Spend> {
        let agent = self.agent_ctx(&self.ctx.agent_base_env, "");
        let by_model = match self.adapter.usage(&agent).await {
            Ok(Some(by_model)) => by_model,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("reading the agent's token use: {e:#}");
                return None;
            }
        };
        let spend = self.ctx.project.budget.prices.spend(&by_model);
        let usage = by_model.values().copied().sum();
        let saved = || self.saved_usage.lock().unwrap_or_else(|e| e.into_inner());
        // Nothing new: the store has it already.
        if *saved() == Some(usage) {
            return Some(spend);
        }
        let today = Utc::now().date_naive();
        let store = &self.ctx.store;
        match store
            .save_spend(self.ctx.name(), self.issue.0, usage, spend, today)
            .await
        {
            Ok(()) => {
                *saved() = Some(usage);
                Some(spend)
            }
            Err(e) => {
                tracing::warn!("storing token use: {e:#}");
                None
            }
        }
    }

    pub(super) async fn remove_worktree(&self) -> anyhow::Result<()> {
        // The last word on token use, before the agent's records go with the worktree.
        let _ = self.record_usage().await;
        reconcile::remove_worktree(&self.ctx, &self.ctx.issue_key(self.issue.0)).await
    }
}

/// Wait (bounded) until the process group of a killed pane is gone: an agent
/// still exiting writes its records (Claude Code its transcript) and would
/// bring back what the clean-up removes.
pub(super) async fn wait_for_exit(pgid: u32) {
    let group = nix::unistd::Pid::from_raw(pgid as i32);
    let deadline = Instant::now() + AGENT_EXIT_TIMEOUT;
    while nix::sys::signal::killpg(group, None).is_ok() && Instant::now() < deadline {
        tokio::time::sleep(AGENT_EXIT_POLL).await;
    }
}
