//! Performing the dev actor's effects: git, tmux and forge calls. Each returns
//! the event its outcome raises, if any. Every effect is safe to repeat after a
//! crash (the state was persisted before it ran).

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::actors::merging::{self, Decision, MergePolicy, Merged};
use crate::actors::reconcile;
use crate::agent::SessionCtx;
use crate::forge::{CommitSha, NewPull, PrNumber};
use crate::prompt::{self, TaskPrompt};
use crate::store::EventKind;
use crate::tmux::SessionSpec;

use super::env::{SessionVars, session_env};
use super::machine::{CiVerdict, Effect, Event, MergeWait, ReviewVerdict, Stage};
use super::verdict::{self, ReviewOutcome};
use super::{Delivery, DevMsg, DevRun, watch};

/// Pane size: wide enough that agents don't wrap everything.
const PANE_WIDTH: u16 = 200;
const PANE_HEIGHT: u16 = 50;
/// How long a killed agent may take to exit before its files are removed anyway.
const AGENT_EXIT_TIMEOUT: Duration = Duration::from_secs(5);
const AGENT_EXIT_POLL: Duration = Duration::from_millis(50);

impl DevRun {
    pub(super) async fn perform(&mut self, effect: Effect) -> anyhow::Result<Option<Event>> {
        let ctx = self.ctx.clone();
        let n = self.issue;
        let project = &ctx.project;
        match effect {
            Effect::Journal(kind, detail) => {
                self.journal(kind, &detail);
                Ok(None)
            }
            Effect::ChatReplyDelivered { id, event_id } => {
                ctx.store.mark_chat_reply_delivered(id).await?;
                ctx.notifier.acknowledge(ctx.name(), n.0, &event_id);
                self.journal(
                    EventKind::ChatReply,
                    &format!("chat reply {event_id} delivered to the agent"),
                );
                Ok(None)
            }
            Effect::Notify(notice) => {
                ctx.notifier.notify(&self.subject(), notice);
                Ok(None)
            }
            Effect::RestartCi { pipeline } => {
                match &ctx.ci_server {
                    Some(ci) => {
                        let again = ci.restart(pipeline).await?;
                        self.journal(
                            EventKind::CiState,
                            &format!("restarted pipeline {pipeline} as {again}"),
                        );
                    }
                    None => self.journal(
                        EventKind::Error,
                        "no CI server configured to restart a pipeline",
                    ),
                }
                Ok(None)
            }
            Effect::CheckReplies { pr, since } => Ok(self.human_reply(pr, since).await?),
            Effect::Fetch => {
                {
                    let _one_at_a_time = ctx.repo_lock.lock().await;
                    ctx.git.fetch(&ctx.paths.repo_dir(ctx.name())).await?;
                }
                // The agent rebases onto its own `origin/*`, a copy of the
                // clone's: bring it up to date, inside the sandbox.
                let key = ctx.issue_key(n.0);
                if let Err(e) = ctx
                    .git
                    .refresh_agent_origin(&self.worktree, &ctx.confine(&key))
                    .await
                {
                    self.journal(
                        EventKind::Error,
                        &format!("updating the agent's origin (it can run `git fetch origin` itself): {e:#}"),
                    );
                }
                Ok(None)
            }
            Effect::Release { outcome, comment } => {
                self.release(outcome, &comment).await?;
                Ok(None)
            }
            Effect::Claim => {
                ctx.forge.add_label(n, &project.labels.in_progress).await?;
                ctx.forge.remove_label(n, &project.labels.backlog).await?;
                self.journal(EventKind::Claimed, &format!("claimed #{n}: {}", self.title));
                Ok(Some(Event::ClaimRecorded))
            }
            Effect::EnsureSession => {
                self.ensure_session().await?;
                Ok(None)
            }
            Effect::DeliverPrompt => self.deliver_prompt().await,
            Effect::Push { force } => {
                let repo_dir = ctx.paths.repo_dir(ctx.name());
                let key = ctx.issue_key(n.0);
                // Authenticated git never runs in the agent's repository: its
                // commit is taken into forgehand's clone and pushed from there.
                let sha = {
                    let _one_at_a_time = ctx.repo_lock.lock().await;
                    ctx.git
                        .take_agent_head(&repo_dir, &self.worktree, &key, &ctx.confine(&key))
                        .await?
                };
                let base = format!("origin/{}", project.primary_branch);
                let ahead = ctx.git.commits_ahead(&repo_dir, &base, &sha).await?;
                if ahead == 0 {
                    self.journal(
                        EventKind::Pushed,
                        "nothing to push: no commits ahead of the primary branch",
                    );
                    return Ok(Some(Event::NothingToPush));
                }
                ctx.git
                    .push(&repo_dir, &project.clone_url, &sha, &self.branch, force)
                    .await
                    .with_context(|| format!("pushing {}", self.branch))?;
                self.journal(
                    EventKind::Pushed,
                    &format!("pushed {} at {sha} ({ahead} commits)", self.branch),
                );
                Ok(Some(Event::Pushed {
                    head: crate::forge::CommitSha(sha),
                }))
            }
            Effect::EnsurePr => {
                if let Some(pr) = self.state.pr {
                    return Ok(Some(Event::PrOpened { pr }));
                }
                let summary = self.read_agent_file(self.summary_file()).await;
                let summary = if summary.trim().is_empty() {
                    "(the agent left no summary)".to_string()
                } else {
                    summary.trim().to_string()
                };
                let new = NewPull {
                    head: self.branch.clone(),
                    base: project.primary_branch.clone(),
                    title: format!("fix: {} (#{n})", self.title),
                    draft: ctx.forge.opens_drafts(),
                    // Room kept for the closing line, which must survive the cap.
                    body: ctx.posted(&format!(
                        "{}\n\nFixes #{n}",
                        crate::untrusted::cap_text(
                            &summary,
                            crate::actors::context::MAX_POSTED_BYTES - 1024,
                            false
                        )
                    )),
                };
                let pr = ctx
                    .forge
                    .create_pull(&new)
                    .await
                    .context("opening the pull request")?;
                self.journal(
                    EventKind::PrOpened,
                    &format!("PR #{} {}", pr.number, pr.html_url),
                );
                Ok(Some(Event::PrOpened { pr: pr.number }))
            }
            Effect::CheckCi { head } => {
                let verdict = if project.ci.required {
                    let verdict = verdict::ci(&ctx.forge.combined_status(&head).await?);
                    self.with_ci_details(&head, verdict).await
                } else {
                    CiVerdict::Green
                };
                self.report(
                    EventKind::CiState,
                    format!("CI on {head}: {}", verdict.summary()),
                );
                Ok(Some(Event::Ci { head, verdict }))
            }
            Effect::CheckReview { pr, head } => {
                let reviews = ctx.forge.list_reviews(pr).await?;
                let outcome = verdict::reviews(
                    &reviews,
                    &head,
                    project.review.required_approvals,
                    &ctx.own_login,
                );
                let verdict = match outcome {
                    ReviewOutcome::Waiting => ReviewVerdict::Waiting,
                    ReviewOutcome::Approved => ReviewVerdict::Approved,
                    ReviewOutcome::ChangesRequested(rs) => {
                        let mut asked = Vec::new();
                        for r in rs {
                            let inline = ctx.forge.list_review_comments(pr, r.id).await?;
                            asked.push((r, inline));
                        }
                        let since = self.state.last_push_at;
                        let comments = self.human_comments(Some(pr), since).await?;
                        ReviewVerdict::ChangesRequested {
                            feedback: prompt::review_feedback(&asked, &comments),
                        }
                    }
                };
                let label = match &verdict {
                    ReviewVerdict::Waiting => "waiting",
                    ReviewVerdict::Approved => "approved",
                    ReviewVerdict::ChangesRequested { .. } => "changes requested",
                };
                self.report(EventKind::ReviewState, format!("review on {head}: {label}"));
                Ok(Some(Event::Review { head, verdict }))
            }
            Effect::Paste(text) => {
                self.paste(&text).await?;
                Ok(None)
            }
            Effect::Comment(text) => {
                ctx.comment(n.0, &text).await?;
                Ok(None)
            }
            Effect::Merge { pr, head } => self.merge(pr, &head).await,
            Effect::Finish => {
                // Done by the merge already, unless it was merged before a
                // crash: then this is where the issue is closed.
                if let Some(pr) = self.state.pr {
                    merging::finish_issue(&ctx, n, pr).await?;
                }
                self.cleanup().await?;
                Ok(Some(Event::Finished))
            }
            Effect::Block { reason } => {
                let agent = ctx.tmux.pane_pid(&self.session).await.ok().flatten();
                crate::actors::reconcile::block(&ctx, n, &reason).await?;
                if let Some(pid) = agent {
                    wait_for_exit(pid).await;
                }
                if self.state.pr.is_none() {
                    // Without a PR nothing in the worktree is worth keeping
                    // beyond the branch; with one, a human may want to look.
                    self.remove_worktree().await?;
                }
                Ok(None)
            }
            Effect::Stop => Ok(None),
        }
    }

    /// Merge the PR if `merging::decide` says it may be, and finish the issue.
    async fn merge(&mut self, pr: PrNumber, head: &CommitSha) -> anyhow::Result<Option<Event>> {
        let ctx = self.ctx.clone();
        let current = ctx.forge.get_pull(pr).await?;
        let policy = MergePolicy::of(&ctx, 0);
        let decision = merging::look(&ctx, &current, head, &policy).await?;
        let event = match decision {
            Decision::Merge | Decision::AlreadyMerged => {
                match merging::merge_and_finish(&ctx, &current, head, &[self.issue]).await {
                    Ok(Merged::Done { commit, .. }) => Event::MergeDone {
                        merge_commit: commit,
                    },
                    Ok(Merged::Conflict(message)) => Event::MergeConflict { message },
                    Err(e) if crate::transient::is_transient(&e) => return Err(e),
                    // Not the PR's fault (a local checkout with uncommitted
                    // changes): tried again at the next tick.
                    Err(e) => {
                        self.journal(
                            EventKind::Error,
                            &format!(
                                "merging PR #{pr} failed, trying again at the next tick: {e:#}"
                            ),
                        );
                        return Ok(None);
                    }
                }
            }
            Decision::Conflict => Event::MergeConflict {
                message: format!("the forge says PR #{pr} is not mergeable"),
            },
            Decision::MergeabilityUnknown => return Ok(None),
            Decision::WaitCi(_) => Event::MergeDeferred {
                wait: MergeWait::Ci,
            },
            Decision::WaitReview => Event::MergeDeferred {
                wait: MergeWait::Review,
            },
            Decision::HeadMoved { now } => Event::MergeImpossible {
                reason: format!(
                    "someone else pushed to {} ({now}, not forgehand's {head}); merge it by hand or push it back",
                    self.branch
                ),
            },
            Decision::NotOurs(why) => Event::MergeImpossible {
                reason: format!("PR #{pr} cannot be merged: {why}"),
            },
        };
        Ok(Some(event))
    }

    /// Journal a CI or review state only when it differs from the last one.
    fn report(&mut self, kind: EventKind, line: String) {
        if self.last_reported.as_deref() != Some(line.as_str()) {
            self.journal(kind, &line);
            self.last_reported = Some(line);
        }
    }

    pub(super) async fn paste(&self, text: &str) -> anyhow::Result<()> {
        let text = prompt::limit(text, prompt::MAX_MESSAGE_BYTES);
        self.adapter
            .submit(&self.ctx.tmux, &self.session, &text)
            .await
            .with_context(|| format!("pasting into {}", self.session))?;
        let first = text.lines().next().unwrap_or_default();
        self.journal(EventKind::Pasted, first);
        Ok(())
    }

    /// Worktree, watch and tmux session; a live session is adopted as it is.
    async fn ensure_session(&mut self) -> anyhow::Result<()> {
        let ctx = self.ctx.clone();
        let project = &ctx.project;
        let repo_dir = ctx.paths.repo_dir(ctx.name());
        {
            let _one_at_a_time = ctx.repo_lock.lock().await;
            ctx.git
                .ensure_clone(&project.clone_url, &repo_dir)
                .await
                .with_context(|| format!("updating forgehand's clone of {}", project.clone_url))?;
            if std::fs::symlink_metadata(self.worktree.join(".git")).is_err() {
                let start = match ctx.git.remote_branch_sha(&repo_dir, &self.branch).await? {
                    Some(_) => format!("origin/{}", self.branch),
                    None => format!("origin/{}", project.primary_branch),
                };
                ctx.git
                    .create_agent_repo(&repo_dir, &self.worktree, &self.branch, &start)
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
        if ctx.tmux.has_session(&self.session).await?
            && ctx.tmux.pane_dead(&self.session).await? == Some(false)
        {
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
        ctx.tmux.kill_session(&self.session).await?;
        if self.state.stage == Stage::Starting {
            // A phase file left from an earlier attempt must not be taken as new.
            let _ = tokio::fs::remove_file(self.phase_file()).await;
        }
        let paths = [self.phase_file(), self.summary_file(), self.scratch_file()];
        let [phase, summary, scratch] = paths.map(|p| p.display().to_string());
        let mut env = session_env(
            &ctx.agent_base_env,
            &SessionVars {
                phase_file: &phase,
                summary_file: &summary,
                scratch_file: &scratch,
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
            })
            .await
            .with_context(|| format!("starting the tmux session {}", self.session))?;
        ctx.tmux
            .pipe_pane(
                &self.session,
                &self.session_dir.join(crate::paths::PANE_LOG),
            )
            .await?;
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

    fn wait_until_ready(&mut self) {
        self.ready_deadline = Some(Instant::now() + self.timings.ready_timeout);
        self.myself
            .send_after(self.timings.ready_poll, || DevMsg::ReadyCheck);
    }

    /// One look at the pane while waiting for the agent's prompt; delivers the
    /// task (or, after a respawn, the recovery prompt) once it shows.
    pub(super) async fn ready_check(&mut self) -> anyhow::Result<Option<Event>> {
        let Some(deadline) = self.ready_deadline else {
            return Ok(None);
        };
        let ctx = self.ctx.clone();
        if ctx.tmux.pane_dead(&self.session).await? != Some(false) {
            self.ready_deadline = None;
            anyhow::bail!(
                "the agent's session {} ended before it was ready",
                self.session
            );
        }
        let screen = ctx
            .tmux
            .capture_pane(&self.session, PANE_HEIGHT as u32)
            .await?;
        let ready = self
            .adapter
            .is_ready(&screen, &ctx.project.agent.ready_pattern);
        let settled = ready && self.ready_screen.as_deref() == Some(screen.as_str());
        self.ready_screen = ready.then_some(screen);
        if !settled {
            if Instant::now() > deadline {
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
            self.myself
                .send_after(self.timings.ready_poll, || DevMsg::ReadyCheck);
            return Ok(None);
        }
        self.ready_deadline = None;
        self.ready_screen = None;
        Ok(Some(Event::PromptShown))
    }

    /// Paste the task, or after a respawn the recovery prompt, into the
    /// ready agent.
    async fn deliver_prompt(&mut self) -> anyhow::Result<Option<Event>> {
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
        }))
    }

    /// Kill the session and remove the worktree (the branch lives on the forge).
    pub(super) async fn cleanup(&mut self) -> anyhow::Result<()> {
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

    /// Store the tokens the agent used so far, when its adapter can tell.
    /// Only bookkeeping: a failure is logged, never fatal.
    pub(super) async fn record_usage(&self) {
        let agent = self.agent_ctx(&self.ctx.agent_base_env, "");
        match self.adapter.usage(&agent).await {
            Ok(Some(usage)) => {
                if let Err(e) = self
                    .ctx
                    .store
                    .save_usage(self.ctx.name(), self.issue.0, &usage)
                    .await
                {
                    tracing::warn!("storing token use: {e:#}");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("reading the agent's token use: {e:#}"),
        }
    }

    async fn remove_worktree(&self) -> anyhow::Result<()> {
        // The last word on token use, before the agent's records go with the worktree.
        self.record_usage().await;
        reconcile::remove_worktree(&self.ctx, &self.ctx.issue_key(self.issue.0)).await
    }
}

/// Wait (bounded) until the process group of a killed pane is gone: an agent
/// still exiting writes its records (Claude Code its transcript) and would
/// bring back what the clean-up removes.
async fn wait_for_exit(pgid: u32) {
    let group = nix::unistd::Pid::from_raw(pgid as i32);
    let deadline = Instant::now() + AGENT_EXIT_TIMEOUT;
    while nix::sys::signal::killpg(group, None).is_ok() && Instant::now() < deadline {
        tokio::time::sleep(AGENT_EXIT_POLL).await;
    }
}
