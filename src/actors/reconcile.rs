//! Start-up reconciliation: before any polling, make the store, the forge and
//! tmux agree. Claims whose issue was closed or unlabelled meanwhile are
//! released and cleaned up; worktrees and sessions nobody claims are removed;
//! the rest is resumed (a live session adopted, a dead one respawned).
//! Also the last resort of supervision: giving an issue up to a human.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::agent::AgentAdapter;
use crate::forge::{IssueNumber, IssueState};
use crate::paths::branch_name;
use crate::store::{ClaimRow, ClaimStatus, EventKind};

use super::ProjectCtx;
use super::dev::machine::{DevState, Stage};

/// The claims to resume, as (issue, title): the active ones, and the
/// finished ones whose end still owes the forge something (a block or
/// release that met an outage before the restart).
pub async fn reconcile(ctx: &ProjectCtx) -> anyhow::Result<Vec<(IssueNumber, String)>> {
    let mut resume = Vec::new();
    let owing = ctx.store.owing(ctx.name()).await?;
    for claim in ctx
        .store
        .claims(Some(ctx.name()), Some(ClaimStatus::Active))
        .await?
    {
        let n = IssueNumber(claim.issue);
        // A stage this build does not know counts as just claimed: the
        // safe side, which never takes forgehand's own doing for a human's.
        let stage = Stage::parse(&claim.stage).unwrap_or(Stage::Claimed);
        let issue = match ctx.forge.get_issue(n).await {
            Ok(issue) => issue,
            Err(e) => {
                // Not knowing is no reason to drop work: resume, and let the
                // dev actor meet the forge again.
                tracing::warn!("cannot read #{n} while reconciling: {e}");
                resume.push((n, claim.title));
                continue;
            }
        };
        let closed = issue.state == IssueState::Closed;
        let unlabelled =
            stage > Stage::Claimed && !issue.has_label(&ctx.project.labels.in_progress);
        // Past the merge call, closing the issue is forgehand's own doing.
        let finishing = stage >= Stage::Merging;
        if (closed || unlabelled) && !finishing {
            let why = if closed {
                "closed"
            } else {
                "no longer labelled in-progress"
            };
            release(
                ctx,
                &claim,
                &format!("the issue was {why} while forgehand was down"),
            )
            .await?;
        } else {
            resume.push((n, claim.title));
        }
    }
    for n in &owing {
        if let Some(claim) = ctx.store.claim(ctx.name(), *n).await?
            && claim.status != ClaimStatus::Active
        {
            resume.push((IssueNumber(*n), claim.title));
        }
    }
    remove_strays(ctx, &owing).await?;
    Ok(resume)
}

/// Drop a claim: kill its session, remove its worktree, record why.
async fn release(ctx: &ProjectCtx, claim: &ClaimRow, why: &str) -> anyhow::Result<()> {
    let n = claim.issue;
    ctx.tmux.kill_session(&ctx.session_name(n)).await?;
    remove_worktree(ctx, &ctx.issue_key(n)).await?;
    settle_claim(ctx, n, Stage::Released).await?;
    ctx.journal(Some(n), EventKind::Released, &format!("released: {why}"));
    Ok(())
}

/// Remove the worktree of the issue with this key (and its local branch),
/// with the agent's own records of it (Claude Code's trust entry and
/// transcripts). Used by dev actors when they finish and by reconciliation.
pub(super) async fn remove_worktree(ctx: &ProjectCtx, key: &str) -> anyhow::Result<()> {
    let repo_dir = ctx.paths.repo_dir(ctx.name());
    let path = ctx.paths.worktree(ctx.name(), key);
    let session = crate::paths::session_name(ctx.name(), key);
    let agent = crate::agent::SessionCtx {
        worktree: &path,
        session_dir: &ctx.paths.session_dir(&session),
        command: &ctx.project.agent.command,
        env: &ctx.agent_base_env,
        protocol: "",
    };
    // Leftovers in the agent's own files must not keep a claim from settling.
    if let Err(e) = AgentAdapter::new(ctx.project.agent.kind)
        .cleanup(&agent)
        .await
    {
        ctx.journal(
            ctx.forge.issue_for_key(key).map(|n| n.0),
            EventKind::Error,
            &format!("cleaning up after the agent of {session}: {e:#}"),
        );
    }
    let _one_at_a_time = ctx.repo_lock.lock().await;
    ctx.git
        .remove_agent_repo(&repo_dir, &path, key, &branch_name(key))
        .await
}

/// Worktrees and `dev-<project>-<N>` sessions that no claim accounts for:
/// left by a crash between creating them and recording it, or by hand.
/// A blocked claim keeps its worktree (a human may want to look at it); a
/// claim that still owes the forge its end keeps both, for that end.
async fn remove_strays(ctx: &ProjectCtx, owing: &[u64]) -> anyhow::Result<()> {
    let claims = ctx.store.claims(Some(ctx.name()), None).await?;
    let keyed = |status: &[ClaimStatus]| -> BTreeMap<String, u64> {
        claims
            .iter()
            .filter(|c| status.contains(&c.status) || owing.contains(&c.issue))
            .map(|c| (ctx.issue_key(c.issue), c.issue))
            .collect()
    };
    let keep = keyed(&[ClaimStatus::Active, ClaimStatus::Blocked]);
    let live = keyed(&[ClaimStatus::Active]);
    // The journal names the issue when the key still maps to one.
    let issue_of = |key: &str| ctx.forge.issue_for_key(key).map(|n| n.0);
    if let Ok(entries) = std::fs::read_dir(ctx.paths.worktrees(ctx.name())) {
        for entry in entries.flatten() {
            let Some(key) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !keep.contains_key(&key) {
                remove_worktree(ctx, &key).await?;
                ctx.journal(
                    issue_of(&key),
                    EventKind::CleanedUp,
                    &format!("removed the worktree {key}, which no claim accounts for"),
                );
            }
        }
    }
    // Only sessions this project's claims name: a `dev-<project>-…` name
    // alone could be another project's, or a person's.
    let recorded: BTreeMap<String, u64> = claims
        .into_iter()
        .filter(|c| c.status != ClaimStatus::Active)
        .map(|c| (c.session, c.issue))
        .collect();
    for session in ctx.tmux.list_sessions().await? {
        let Some(&issue) = recorded.get(&session) else {
            continue;
        };
        if live.values().any(|&n| n == issue) || owing.contains(&issue) {
            continue;
        }
        ctx.tmux.kill_session(&session).await?;
        ctx.journal(
            Some(issue),
            EventKind::CleanedUp,
            &format!("killed {session}, which no active claim accounts for"),
        );
    }
    Ok(())
}

/// Hand an issue to a human: a diagnostic comment with the reason and the
/// last lines of the agent's pane (redacted), label `blocked`, drop
/// `in-progress`, kill the session.
pub async fn block(ctx: &ProjectCtx, n: IssueNumber, why: &str) -> anyhow::Result<()> {
    let session = ctx.session_name(n.0);
    let tail = ctx
        .tmux
        .capture_pane(&session, 50)
        .await
        .unwrap_or_default();
    let body = format!(
        "forgehand stopped working on this issue: {why}\n\n\
         Last lines of the agent's session `{session}`:\n\n```\n{}\n```",
        tail.trim_end()
    );
    ctx.comment(n.0, &body).await?;
    ctx.forge.add_label(n, &ctx.project.labels.blocked).await?;
    ctx.forge
        .remove_label(n, &ctx.project.labels.in_progress)
        .await?;
    ctx.tmux.kill_session(&session).await?;
    ctx.journal(Some(n.0), EventKind::Error, &format!("blocked: {why}"));
    Ok(())
}

/// Supervision's last resort after repeated failures of a dev actor: block
/// the issue and stop resuming it.
pub async fn give_up(ctx: &ProjectCtx, n: IssueNumber, why: &str) -> anyhow::Result<()> {
    block(ctx, n, why).await?;
    settle_claim(ctx, n.0, Stage::Blocked).await
}

/// Put a claim in a final stage from outside its dev actor (none is running),
/// keeping the row and the dev actor's persisted state in agreement.
pub async fn settle_claim(ctx: &ProjectCtx, issue: u64, stage: Stage) -> anyhow::Result<()> {
    let Some(mut row) = ctx.store.claim(ctx.name(), issue).await? else {
        return Ok(());
    };
    let now = Utc::now();
    if let Ok(mut state) = serde_json::from_str::<DevState>(&row.state_json) {
        state.stage = stage;
        state.stage_since = now;
        row.state_json = serde_json::to_string(&state)?;
    }
    row.status = stage.claim_status();
    row.stage = stage.as_str().to_string();
    // Every stage settled to is final: nothing is waited for any more, and
    // nobody works on it.
    row.waiting = None;
    row.runner = None;
    row.stage_since = now;
    row.updated_at = now;
    ctx.store.save_claim(&row).await
}
