//! The agent's work reaching the forge: its commit taken out of its own
//! repository into forgehand's clone and pushed from there (authenticated
//! git never runs where the agent can write), the pull request opened, and
//! the clone fetched before the agent is asked to rebase.

use anyhow::Context;

use crate::forge::{CommitSha, NewPull};
use crate::store::EventKind;

use super::DevRun;
use super::machine::Event;

impl DevRun {
    /// Push the agent's commit if it has commits ahead of the primary
    /// branch: `Pushed` or `NothingToPush`.
    pub(super) async fn push(&mut self, force: bool) -> anyhow::Result<Option<Event>> {
        let ctx = self.ctx.clone();
        let project = &ctx.project;
        let repo_dir = ctx.paths.repo_dir(ctx.name());
        let key = ctx.issue_key(self.issue.0);
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
            head: CommitSha(sha),
        }))
    }

    /// Update forgehand's clone, and the agent's `origin/*` from it, so the
    /// agent rebases onto the current primary branch.
    pub(super) async fn fetch(&mut self) -> anyhow::Result<()> {
        let ctx = self.ctx.clone();
        ctx.fresh_clone().await?;
        // The agent's `origin/*` is a copy of the clone's: brought up to date
        // inside the sandbox, since the repository is the agent's.
        let key = ctx.issue_key(self.issue.0);
        if let Err(e) = ctx
            .git
            .refresh_agent_origin(&self.worktree, &ctx.confine(&key))
            .await
        {
            self.journal(
                EventKind::Error,
                &format!(
                    "updating the agent's origin (it can run `git fetch origin` itself): {e:#}"
                ),
            );
        }
        Ok(())
    }

    /// Open the PR unless one exists: `PrOpened`.
    pub(super) async fn ensure_pr(&mut self) -> anyhow::Result<Option<Event>> {
        if let Some(pr) = self.state.pr {
            return Ok(Some(Event::PrOpened { pr }));
        }
        let ctx = self.ctx.clone();
        let n = self.issue;
        let summary = self.read_agent_file(self.summary_file()).await;
        let summary = if summary.trim().is_empty() {
            "(the agent left no summary)".to_string()
        } else {
            summary.trim().to_string()
        };
        let new = NewPull {
            head: self.branch.clone(),
            base: ctx.project.primary_branch.clone(),
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
}
