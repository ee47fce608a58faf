//! What the forge says back, gathered for the agent and for people: human
//! comments, answers to escalations, CI details, and the outcomes that end an
//! issue (merged, released).

use anyhow::Context;
use chrono::{DateTime, Timelike, Utc};

use crate::forge::{Comment, CommitSha, PrNumber};
use crate::notify::Subject;
use crate::phase::RefusalKind;
use crate::store::EventKind;

use super::DevRun;
use super::machine::{CiVerdict, Event};

impl DevRun {
    pub(super) fn subject(&self) -> Subject {
        let p = &self.ctx.project;
        Subject {
            project: p.name.clone(),
            issue: self.issue.0,
            title: self.title.clone(),
            session: self.session.clone(),
            issue_url: self.ctx.forge.issue_url(self.issue),
        }
    }

    /// Comments by people with write access on the issue and its PR, after
    /// `since` (all of them when `None`), oldest first: the only comments the
    /// agent may take as instructions (DESIGN §6). Anyone else's is left out
    /// and journaled once.
    pub(super) async fn human_comments(
        &self,
        pr: Option<PrNumber>,
        since: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Vec<Comment>> {
        let ctx = &self.ctx;
        let mut all = ctx.forge.list_comments(self.issue.0).await?;
        if let Some(pr) = pr {
            all.extend(ctx.forge.list_comments(pr.0).await?);
        }
        // Forges report whole seconds: a comment made in the same second as
        // `since` may show an earlier time, so compare at that precision.
        let floor = since.map(|t| t.with_nanosecond(0).unwrap_or(t));
        all.retain(|c| c.author != ctx.own_login && floor.is_none_or(|t| c.created_at >= t));
        all.sort_by_key(|c| (c.created_at, c.id));
        let mut kept = Vec::with_capacity(all.len());
        for c in all {
            if self.may_write(&c.author).await? {
                kept.push(c);
            } else {
                self.comment_ignored(&c).await;
            }
        }
        Ok(kept)
    }

    /// Whether `author` has write access: only such people instruct.
    async fn may_write(&self, author: &str) -> anyhow::Result<bool> {
        let ctx = &self.ctx;
        ctx.forge
            .can_write(author)
            .await
            .with_context(|| format!("asking whether {author} may write to {}", ctx.project.repo))
    }

    /// Journal that `c` was left out, once per comment however often the
    /// comments are read again (a restart included).
    async fn comment_ignored(&self, c: &Comment) {
        let ctx = &self.ctx;
        let detail = ctx.redactor.redact(&format!(
            "comment {} by {} ignored: no write access to {}",
            c.id, c.author, ctx.project.repo
        ));
        let kind = EventKind::CommentIgnored;
        match ctx
            .store
            .journaled(ctx.name(), Some(self.issue.0), kind, &detail)
            .await
        {
            Ok(true) => {}
            Ok(false) => self.journal(kind, &detail),
            // Better twice in the journal than not at all.
            Err(e) => {
                tracing::warn!("{e:#}");
                self.journal(kind, &detail);
            }
        }
    }

    /// The first comment by someone with write access after an escalation,
    /// as the answer (a `/forgehand` command is not one).
    pub(super) async fn human_reply(
        &self,
        pr: Option<PrNumber>,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Option<Event>> {
        let replies = self.human_comments(pr, Some(since)).await?;
        let mut replies = replies
            .into_iter()
            .filter(|c| crate::commands::parse(&c.body).is_none());
        Ok(replies.next().map(|c| Event::HumanReply {
            author: c.author,
            body: c.body,
        }))
    }

    /// Add the CI server's account of a failure (failing steps and their log
    /// tails) when one is configured. Without it the statuses must do.
    pub(super) async fn with_ci_details(&self, head: &CommitSha, verdict: CiVerdict) -> CiVerdict {
        let CiVerdict::Red { failures, .. } = verdict else {
            return verdict;
        };
        let Some(ci) = &self.ctx.ci_server else {
            return CiVerdict::Red {
                failures,
                details: None,
                infrastructure: None,
            };
        };
        match ci.failure_report(head).await {
            // The newest pipeline on this head (say, one restarted after an
            // infrastructure failure) is still running or did not fail: the
            // forge's red status is stale, so wait for the new verdict.
            Ok(Some(report)) if report.steps.is_empty() && report.errors.is_empty() => {
                CiVerdict::Pending
            }
            Ok(Some(report)) => CiVerdict::Red {
                failures,
                infrastructure: report.is_infrastructure().then_some(report.pipeline),
                details: Some(report.render()),
            },
            Ok(None) => CiVerdict::Red {
                failures,
                details: None,
                infrastructure: None,
            },
            Err(e) => {
                // The statuses still tell the agent what failed.
                self.journal(
                    EventKind::Error,
                    &format!("could not read the CI logs: {e:#}"),
                );
                CiVerdict::Red {
                    failures,
                    details: None,
                    infrastructure: None,
                }
            }
        }
    }

    /// Hand a refused issue back: comment, relabel, and clean up.
    pub(super) async fn release(
        &mut self,
        outcome: RefusalKind,
        comment: &str,
    ) -> anyhow::Result<()> {
        let ctx = self.ctx.clone();
        let labels = &ctx.project.labels;
        let n = self.issue;
        ctx.comment(n.0, comment).await?;
        match outcome {
            RefusalKind::UnmetDependency => ctx.forge.add_label(n, &labels.backlog).await?,
            RefusalKind::TooLarge => ctx.forge.add_label(n, &labels.underspecified).await?,
            RefusalKind::AlreadyDone => ctx.forge.close_issue(n).await?,
        }
        ctx.forge.remove_label(n, &labels.in_progress).await?;
        self.journal(EventKind::Released, &format!("released #{n}: {outcome:?}"));
        self.cleanup().await
    }

    /// The `/forgehand` commands in comments on the issue and its PR newer
    /// than comment `after` and made since `since`: those of people with
    /// write access, in order; anyone else's is journaled and ignored.
    pub(super) async fn check_commands(
        &self,
        pr: Option<PrNumber>,
        after: u64,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Option<Event>> {
        let ctx = &self.ctx;
        let mut all = ctx.forge.list_comments(self.issue.0).await?;
        if let Some(pr) = pr {
            all.extend(ctx.forge.list_comments(pr.0).await?);
        }
        let floor = since.with_nanosecond(0).unwrap_or(since);
        all.retain(|c| c.id > after && c.author != ctx.own_login && c.created_at >= floor);
        all.sort_by_key(|c| c.id);
        let Some(upto) = all.last().map(|c| c.id) else {
            return Ok(None);
        };
        let mut commands = Vec::new();
        for c in all {
            let Some(command) = crate::commands::parse(&c.body) else {
                continue;
            };
            if self.may_write(&c.author).await? {
                commands.push((c.author, command));
            } else {
                self.journal(
                    EventKind::CommentIgnored,
                    &format!(
                        "/forgehand {} from {} (comment {}) ignored: no write access to {}",
                        command.as_str(),
                        c.author,
                        c.id,
                        ctx.project.repo
                    ),
                );
            }
        }
        Ok(Some(Event::Commands { upto, commands }))
    }
}
