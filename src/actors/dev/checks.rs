//! What the forge says of the agent's work: CI on the pushed head (with the
//! CI server's account of a failure), the reviews of that head (with what
//! the reviewers asked for), and restarting CI after an infrastructure
//! failure.

use crate::forge::{CommitSha, PrNumber};
use crate::prompt;
use crate::store::EventKind;

use super::DevRun;
use super::machine::{CiVerdict, Event, ReviewVerdict};
use super::verdict::{self, ReviewOutcome};

impl DevRun {
    pub(super) async fn check_ci(&mut self, head: CommitSha) -> anyhow::Result<Option<Event>> {
        let ctx = self.ctx.clone();
        let verdict = if ctx.project.ci.required {
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

    pub(super) async fn check_review(
        &mut self,
        pr: PrNumber,
        head: CommitSha,
    ) -> anyhow::Result<Option<Event>> {
        let ctx = self.ctx.clone();
        let reviews = ctx.forge.list_reviews(pr).await?;
        let outcome = verdict::reviews(
            &reviews,
            &head,
            ctx.project.review.required_approvals,
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

    pub(super) async fn restart_ci(&mut self, pipeline: u64) -> anyhow::Result<()> {
        let ctx = self.ctx.clone();
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
        Ok(())
    }
}
