//! Performing the dev actor's effects. Each returns the event its outcome
//! raises, if any, and is safe to repeat after a crash (the state was
//! persisted before it ran). The effects are grouped by concern: the agent's
//! session (`session`), its work reaching the forge (`publish`), what the
//! forge says of it (`checks`), and the issue's claim and end (`outcome`);
//! this file dispatches and keeps the few one-liners.

use anyhow::Context;

use crate::prompt;
use crate::store::EventKind;

use super::DevRun;
use super::machine::{Effect, Event};

impl DevRun {
    pub(super) async fn perform(&mut self, effect: Effect) -> anyhow::Result<Option<Event>> {
        let ctx = self.ctx.clone();
        let n = self.issue;
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
            Effect::Paste(text) => {
                self.paste(&text).await?;
                Ok(None)
            }
            Effect::Comment(text) => {
                ctx.comment(n.0, &text).await?;
                Ok(None)
            }
            Effect::CommentOnce { text, since } => {
                ctx.comment_once(n.0, &text, since).await?;
                Ok(None)
            }
            Effect::CheckReplies { pr, since } => self.human_reply(pr, since).await,
            Effect::CheckCommands { pr, after, since } => {
                self.check_commands(pr, after, since).await
            }
            Effect::StartOver => {
                self.cleanup().await?;
                Ok(None)
            }
            Effect::Release { outcome, comment } => {
                self.release(outcome, &comment).await?;
                Ok(None)
            }
            Effect::EnsureSession => {
                self.ensure_session().await?;
                Ok(None)
            }
            Effect::DeliverPrompt => self.deliver_prompt().await,
            Effect::Push { force } => self.push(force).await,
            Effect::Fetch => {
                self.fetch().await?;
                Ok(None)
            }
            Effect::EnsurePr => self.ensure_pr().await,
            Effect::CheckCi { head } => self.check_ci(head).await,
            Effect::CheckReview { pr, head } => self.check_review(pr, head).await,
            Effect::RestartCi { pipeline } => {
                self.restart_ci(pipeline).await?;
                Ok(None)
            }
            Effect::Claim => self.claim().await,
            Effect::Merge { pr, head } => self.merge(pr, &head).await,
            Effect::Finish => self.finish().await,
            Effect::Block { reason } => {
                self.block(&reason).await?;
                Ok(None)
            }
            Effect::Stop => Ok(None),
        }
    }

    /// Journal a CI or review state only when it differs from the last one.
    pub(super) fn report(&mut self, kind: EventKind, line: String) {
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
}
