//! The issue's claim and its end: the labels that claim it, the merge
//! (`merging`, shared with the merge scanner), the issue finished and the
//! session cleaned up, or the issue blocked for a human.

use crate::actors::merging::{self, Decision, MergePolicy, Merged};
use crate::actors::reconcile;
use crate::forge::{CommitSha, IssueState, PrNumber};
use crate::store::EventKind;

use super::DevRun;
use super::machine::{Event, MergeWait};
use super::session::wait_for_exit;

impl DevRun {
    /// Add `in-progress`, remove `backlog`: `ClaimRecorded`; or
    /// `NotClaimable` when the issue, read again first, is closed or out of
    /// the backlog. The list it was picked from may be older than the
    /// issue's end: a poll that read it just before an earlier claim of it
    /// finished would otherwise start the work again. A new claim is
    /// written to the store here, between that look and the labels.
    pub(super) async fn claim(&mut self) -> anyhow::Result<Option<Event>> {
        let ctx = self.ctx.clone();
        let n = self.issue;
        let labels = &ctx.project.labels;
        let current = ctx.forge.get_issue(n).await?;
        // `in-progress` without `backlog` is this claim's own, when a
        // restart came between its two label changes.
        let why = if current.state != IssueState::Open {
            Some(format!("#{n} is closed"))
        } else if !current.has_label(&labels.backlog) && !current.has_label(&labels.in_progress) {
            Some(format!("#{n} no longer carries `{}`", labels.backlog))
        } else {
            None
        };
        if let Some(why) = why {
            return Ok(Some(Event::NotClaimable { why }));
        }
        if !self.claim_saved {
            // A claim picked again owes nothing from its last run.
            ctx.store.clear_owed(ctx.name(), n.0).await?;
            // The claim exists in the store before any label changes on the forge.
            self.claim_saved = true;
            self.persist().await?;
            // Counted against `[budget] runs_per_day`, once per claim.
            ctx.store
                .count_run(ctx.name(), chrono::Utc::now().date_naive())
                .await?;
        }
        ctx.forge.add_label(n, &labels.in_progress).await?;
        ctx.forge.remove_label(n, &labels.backlog).await?;
        self.journal(EventKind::Claimed, &format!("claimed #{n}: {}", self.title));
        Ok(Some(Event::ClaimRecorded))
    }

    /// Merge the PR if `merging::decide` says it may be, and finish the issue.
    pub(super) async fn merge(
        &mut self,
        pr: PrNumber,
        head: &CommitSha,
    ) -> anyhow::Result<Option<Event>> {
        let ctx = self.ctx.clone();
        let current = ctx.forge.get_pull(pr).await?;
        let policy = MergePolicy::of(&ctx, 0);
        // The window runs from when this actor began merging.
        let clock = merging::Clock {
            now: chrono::Utc::now(),
            ready_since: Some(self.state.stage_since),
        };
        let decision = merging::look(&ctx, &current, head, &policy, clock).await?;
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
            Decision::VetoWindow { until } => Event::MergeWindow { until },
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

    /// Close the issue and drop `in-progress` (the merge did, unless it
    /// happened before a crash), kill the session, remove the worktree.
    pub(super) async fn finish(&mut self) -> anyhow::Result<Option<Event>> {
        let ctx = self.ctx.clone();
        if let Some(pr) = self.state.pr {
            merging::finish_issue(&ctx, self.issue, pr).await?;
        }
        self.cleanup().await?;
        Ok(Some(Event::Finished))
    }

    /// Hand the issue to a human (`reconcile::block`); the worktree stays
    /// when a PR exists, for a human to look at.
    pub(super) async fn block(&mut self, reason: &str) -> anyhow::Result<()> {
        let ctx = self.ctx.clone();
        let agent = ctx.tmux.pane_pid(&self.session).await.ok().flatten();
        reconcile::block(&ctx, self.issue, reason).await?;
        if let Some(pid) = agent {
            wait_for_exit(pid).await;
        }
        if self.state.pr.is_none() {
            self.remove_worktree().await?;
        }
        Ok(())
    }
}
