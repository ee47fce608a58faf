//! The one merge decision and the one way to merge (DESIGN §5 "Merge"), used
//! by the dev actor for its own pull request and by the merge scanner for
//! every other one: `decide` is pure (what the forge says of a PR, its CI and
//! its reviews in, a verdict out), `merge_and_finish` performs it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};

use crate::forge::{
    CombinedStatus, CommitSha, ForgeError, IssueNumber, IssueState, MergeRequest, PrNumber,
    PullRequest, Review,
};
use crate::store::EventKind;

use super::ProjectCtx;
use super::dev::machine::CiVerdict;
use super::dev::verdict::{self, ReviewOutcome};
use super::mirrors::push_mirrors;

/// What a merge needs to know of the project.
#[derive(Debug, Clone)]
pub struct MergePolicy<'a> {
    pub primary_branch: &'a str,
    pub ci_required: bool,
    pub required_approvals: u32,
    /// forgehand's own login: its reviews never count.
    pub own_login: &'a str,
    /// `[merge] delay`: the veto window.
    pub delay: Duration,
}

/// What to do with a pull request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approved and green on `head`, and mergeable: merge it.
    Merge,
    /// Merged already (by a person, or before a crash): only finish.
    AlreadyMerged,
    /// Closed without merging, aimed at another branch, or a draft: not
    /// forgehand's to merge.
    NotOurs(String),
    /// The head moved away from the one tested and approved.
    HeadMoved { now: CommitSha },
    /// The forge says it cannot be merged as it is: a rebase is needed.
    Conflict,
    /// The forge is still working out whether it can be merged.
    MergeabilityUnknown,
    /// CI is not green on the head.
    WaitCi(CiVerdict),
    /// Not (or no longer) approved on the head.
    WaitReview,
    /// Ready, but in the veto window (`[merge] delay`) until `until`.
    VetoWindow { until: DateTime<Utc> },
}

/// When a merge decision is made, for the veto window.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: DateTime<Utc>,
    /// Since when the caller has known the PR to be ready (the dev actor:
    /// since it began merging), if it keeps count.
    pub ready_since: Option<DateTime<Utc>>,
}

/// `decide`, then the veto window: a PR ready to merge waits `delay` after
/// the later of its latest review on the head and `ready_since`; a new
/// review restarts the window, one requesting changes stops the merge.
/// With neither time known (no review and no caller's count) it merges.
pub fn decide_at(
    pr: &PullRequest,
    head: &CommitSha,
    status: &CombinedStatus,
    reviews: &[Review],
    policy: &MergePolicy<'_>,
    clock: Clock,
) -> Decision {
    let decision = decide(pr, head, status, reviews, policy);
    if decision != Decision::Merge || policy.delay.is_zero() {
        return decision;
    }
    let reviewed = reviews
        .iter()
        .filter(|r| &r.commit_id == head && !r.dismissed)
        .filter_map(|r| r.submitted_at)
        .max();
    let Some(start) = reviewed.max(clock.ready_since) else {
        return decision;
    };
    let until = start + TimeDelta::from_std(policy.delay).unwrap_or(TimeDelta::MAX);
    if clock.now < until {
        return Decision::VetoWindow { until };
    }
    decision
}

/// The decision for `pr`, whose head must be `head`, given the combined
/// status of that head and the PR's reviews.
pub fn decide(
    pr: &PullRequest,
    head: &CommitSha,
    status: &CombinedStatus,
    reviews: &[Review],
    policy: &MergePolicy<'_>,
) -> Decision {
    if let Some(decided) = decide_on_pull(pr, head, policy) {
        return decided;
    }
    if policy.ci_required {
        let ci = verdict::ci(status);
        if ci != CiVerdict::Green {
            return Decision::WaitCi(ci);
        }
    }
    let approvals = verdict::reviews(reviews, head, policy.required_approvals, policy.own_login);
    if approvals != ReviewOutcome::Approved {
        return Decision::WaitReview;
    }
    match pr.mergeable {
        None => Decision::MergeabilityUnknown,
        Some(_) => Decision::Merge,
    }
}

/// The part of `decide` the pull request alone settles, so a caller can
/// skip asking for its statuses and reviews: `None` means those decide.
pub fn decide_on_pull(
    pr: &PullRequest,
    head: &CommitSha,
    policy: &MergePolicy<'_>,
) -> Option<Decision> {
    if pr.merged {
        return Some(Decision::AlreadyMerged);
    }
    if pr.state != IssueState::Open {
        return Some(Decision::NotOurs("it was closed without merging".into()));
    }
    if pr.base_ref != policy.primary_branch {
        return Some(Decision::NotOurs(format!("it targets {}", pr.base_ref)));
    }
    if is_draft(&pr.title) {
        return Some(Decision::NotOurs("it is a draft".into()));
    }
    if &pr.head_sha != head {
        return Some(Decision::HeadMoved {
            now: pr.head_sha.clone(),
        });
    }
    (pr.mergeable == Some(false)).then_some(Decision::Conflict)
}

impl<'a> MergePolicy<'a> {
    /// The project's policy; `required_approvals` at least `min_approvals`.
    pub fn of(ctx: &'a ProjectCtx, min_approvals: u32) -> MergePolicy<'a> {
        let project = &ctx.project;
        MergePolicy {
            primary_branch: &project.primary_branch,
            ci_required: project.ci.required,
            required_approvals: project.review.required_approvals.max(min_approvals),
            own_login: &ctx.own_login,
            delay: project.merge.delay,
        }
    }
}

/// `decide` on what the forge says now: the PR as given, its head's
/// combined status (only when CI is required) and its reviews, asked for
/// only when the PR alone does not settle it.
pub async fn look(
    ctx: &ProjectCtx,
    pr: &PullRequest,
    head: &CommitSha,
    policy: &MergePolicy<'_>,
    clock: Clock,
) -> anyhow::Result<Decision> {
    look_with(ctx, pr, head, policy, clock, &mut Statuses::default()).await
}

/// The combined statuses asked for in one scan, by commit: pull requests
/// that share a head cost one request between them.
#[derive(Default)]
pub struct Statuses(HashMap<CommitSha, CombinedStatus>);

impl Statuses {
    async fn of(&mut self, ctx: &ProjectCtx, sha: &CommitSha) -> anyhow::Result<CombinedStatus> {
        if let Some(status) = self.0.get(sha) {
            return Ok(status.clone());
        }
        let status = ctx.forge.combined_status(sha).await?;
        self.0.insert(sha.clone(), status.clone());
        Ok(status)
    }
}

/// `look`, with the statuses already asked for in this scan.
pub async fn look_with(
    ctx: &ProjectCtx,
    pr: &PullRequest,
    head: &CommitSha,
    policy: &MergePolicy<'_>,
    clock: Clock,
    statuses: &mut Statuses,
) -> anyhow::Result<Decision> {
    if let Some(decided) = decide_on_pull(pr, head, policy) {
        return Ok(decided);
    }
    let status = if policy.ci_required {
        statuses.of(ctx, head).await?
    } else {
        CombinedStatus {
            state: None,
            statuses: Vec::new(),
        }
    };
    // CI that is not green decides before the reviews do: one request, not two.
    if policy.ci_required && verdict::ci(&status) != CiVerdict::Green {
        return Ok(decide(pr, head, &status, &[], policy));
    }
    let reviews = ctx.forge.list_reviews(pr.number).await?;
    Ok(decide_at(pr, head, &status, &reviews, policy, clock))
}

/// The decision for `pr` once its CI and reviews were found good on `head`
/// (`look` said `MergeabilityUnknown`) and the pull request was read again:
/// only what the pull itself says can have changed the verdict.
pub fn decide_approved(pr: &PullRequest, head: &CommitSha, policy: &MergePolicy<'_>) -> Decision {
    decide_on_pull(pr, head, policy).unwrap_or(match pr.mergeable {
        None => Decision::MergeabilityUnknown,
        Some(_) => Decision::Merge,
    })
}

/// The decision again once the full pull request says whether it merges,
/// after [`look`] found CI green and the approvals there but `mergeable`
/// unknown: nothing is asked again, unless a veto window needs the reviews'
/// times.
pub async fn look_again(
    ctx: &ProjectCtx,
    full: &PullRequest,
    head: &CommitSha,
    policy: &MergePolicy<'_>,
    clock: Clock,
    statuses: &mut Statuses,
) -> anyhow::Result<Decision> {
    if policy.delay.is_zero() {
        return Ok(decide_approved(full, head, policy));
    }
    look_with(ctx, full, head, policy, clock, statuses).await
}

/// What `merge_and_finish` did.
#[derive(Debug)]
pub enum Merged {
    /// Merged (now or before), the linked issues closed and unlabelled;
    /// `mirrors` ends when the mirror pushes did (callers may ignore it).
    Done {
        commit: Option<CommitSha>,
        mirrors: tokio::task::JoinHandle<()>,
    },
    /// The forge refused: the branch needs a rebase.
    Conflict(String),
}

/// Merge `pr` at `head` (unless it is merged already), then finish every
/// issue it fixes: closed, `in-progress` removed; and push the mirrors.
/// Every step is safe to repeat: after a crash, a merged PR is only finished.
pub async fn merge_and_finish(
    ctx: &Arc<ProjectCtx>,
    pr: &PullRequest,
    head: &CommitSha,
    issues: &[IssueNumber],
) -> anyhow::Result<Merged> {
    let project = &ctx.project;
    let n = pr.number;
    let mut commit = pr.merge_commit_sha.clone();
    if !pr.merged {
        let req = MergeRequest {
            method: project.merge.method,
            // The tested and approved head: a PR pushed to meanwhile is refused.
            head_sha: head.clone(),
            delete_branch: project.merge.delete_branch,
        };
        match ctx.forge.merge_pull(n, &req).await {
            Ok(()) | Err(ForgeError::AlreadyMerged) => {}
            Err(ForgeError::Conflict(why)) => return Ok(Merged::Conflict(why)),
            Err(e) => return Err(e).with_context(|| format!("merging PR #{n}")),
        }
        commit = ctx.forge.get_pull(n).await?.merge_commit_sha;
        let shown = commit
            .as_ref()
            .map_or("merge commit unknown".to_string(), |c| c.0.clone());
        ctx.journal(
            issues.first().map(|i| i.0),
            EventKind::Merged,
            &format!("merged PR #{n} at {head} ({shown})"),
        );
    }
    for &issue in issues {
        finish_issue(ctx, issue, n).await?;
    }
    let mirrors = push_mirrors(ctx);
    Ok(Merged::Done { commit, mirrors })
}

/// The PR that fixes `issue` is merged: close the issue, drop `in-progress`.
/// Safe to repeat; an issue the PR names that does not exist is skipped.
pub async fn finish_issue(
    ctx: &ProjectCtx,
    issue: IssueNumber,
    pr: PrNumber,
) -> anyhow::Result<()> {
    let labels = &ctx.project.labels;
    let current = match ctx.forge.get_issue(issue).await {
        Ok(i) => i,
        Err(ForgeError::NotFound(_)) => {
            tracing::warn!("PR #{pr} names #{issue}, which does not exist");
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("reading #{issue}")),
    };
    if current.state == IssueState::Open {
        ctx.forge
            .close_issue(issue)
            .await
            .with_context(|| format!("closing #{issue}"))?;
        ctx.journal(
            Some(issue.0),
            EventKind::Closed,
            &format!("closed #{issue}: PR #{pr} merged"),
        );
    }
    if current.has_label(&labels.in_progress) {
        ctx.forge
            .remove_label(issue, &labels.in_progress)
            .await
            .with_context(|| format!("removing {} from #{issue}", labels.in_progress))?;
    }
    Ok(())
}

/// Forgejo's own work-in-progress prefixes, and `Draft:`: such a PR is not
/// meant to be merged yet, whatever its reviews say.
pub fn is_draft(title: &str) -> bool {
    let t = title.trim_start().to_ascii_lowercase();
    if t.starts_with("[wip]") || t.starts_with("draft:") || t.starts_with("[draft]") {
        return true;
    }
    // `WIP`, `WIP:`, `WIP - …`, but not `Wipe the cache`.
    t.strip_prefix("wip")
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric()))
}
