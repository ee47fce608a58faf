//! The poller: one per project. Every `poll_interval`, while
//! `state/.dev-active` exists, it lists ready issues, orders them
//! (`picking`), checks their dependencies and hands as many as the project
//! has free sessions for to the supervisor.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, call_t};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::forge::{ForgeError, Issue, IssueNumber, IssueState};
use crate::picking;
use crate::store::{ClaimStatus, EventKind};

use super::dev::machine::DevState;

use super::ProjectCtx;
use super::supervisor::SupervisorMsg;

/// How long the poller waits for the supervisor's slot count.
const SUPERVISOR_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Poller;

pub struct PollerArgs {
    pub ctx: Arc<ProjectCtx>,
    pub supervisor: ActorRef<SupervisorMsg>,
    /// Poll once, report `PollDone`, and stop.
    pub once: bool,
}

pub enum PollerMsg {
    /// Look at the forge now.
    Poll,
}

pub struct PollerState {
    ctx: Arc<ProjectCtx>,
    supervisor: ActorRef<SupervisorMsg>,
    once: bool,
    labels_ready: bool,
    ticker: Option<JoinHandle<()>>,
}

impl Actor for Poller {
    type Msg = PollerMsg;
    type State = PollerState;
    type Arguments = PollerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<PollerMsg>,
        args: PollerArgs,
    ) -> Result<PollerState, ActorProcessingErr> {
        Ok(PollerState {
            ctx: args.ctx,
            supervisor: args.supervisor,
            once: args.once,
            labels_ready: false,
            ticker: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<PollerMsg>,
        state: &mut PollerState,
    ) -> Result<(), ActorProcessingErr> {
        if state.once {
            myself.send_message(PollerMsg::Poll)?;
        } else {
            // The interval's first tick is immediate: the first poll happens at start.
            state.ticker =
                Some(myself.send_interval(state.ctx.project.poll_interval, || PollerMsg::Poll));
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PollerMsg>,
        state: &mut PollerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PollerMsg>,
        msg: PollerMsg,
        state: &mut PollerState,
    ) -> Result<(), ActorProcessingErr> {
        let PollerMsg::Poll = msg;
        let span = tracing::info_span!("poll", project = %state.ctx.name());
        if let Err(e) = poll(state).instrument(span).await {
            // A forge outage outlasting the retry policy: try again next cycle.
            tracing::warn!("poll failed: {e:#}");
            state
                .ctx
                .journal(None, EventKind::Error, &format!("poll failed: {e:#}"));
        }
        if state.once {
            state.supervisor.send_message(SupervisorMsg::PollDone {
                project: state.ctx.name().to_string(),
            })?;
            myself.stop(None);
        }
        Ok(())
    }
}

async fn poll(state: &mut PollerState) -> anyhow::Result<()> {
    let ctx = state.ctx.clone();
    if !ctx.paths.dev_active().exists() {
        tracing::debug!(
            "{} is absent: not picking",
            ctx.paths.dev_active().display()
        );
        return Ok(());
    }
    let labels = &ctx.project.labels;
    if !state.labels_ready {
        ctx.forge
            .ensure_labels(&[
                labels.backlog.clone(),
                labels.priority.clone(),
                labels.in_progress.clone(),
                labels.blocked.clone(),
                labels.underspecified.clone(),
            ])
            .await?;
        state.labels_ready = true;
    }
    let project = ctx.name().to_string();
    let free = call_t!(
        state.supervisor,
        |reply| SupervisorMsg::FreeSlots {
            project: project.clone(),
            reply
        },
        SUPERVISOR_TIMEOUT.as_millis() as u64
    )?;
    if free == 0 {
        return Ok(());
    }
    let issues = ctx.forge.list_open_issues(&labels.backlog).await?;
    let mut picks = Vec::new();
    for issue in picking::order(&issues, labels) {
        if picks.len() >= free {
            break;
        }
        match dependencies_closed(&ctx, issue).await {
            Ok(true) => picks.push((issue.number, issue.title.clone())),
            Ok(false) => {}
            // Unsure is not ready: skip this one, the others may still go.
            Err(e) => tracing::warn!("cannot tell whether #{} is ready: {e:#}", issue.number),
        }
    }
    if !picks.is_empty() {
        state.supervisor.send_message(SupervisorMsg::Candidates {
            project,
            issues: picks,
        })?;
    }
    Ok(())
}

/// Both kinds of dependency must be closed: `Depends on #N` / `Blocked by #N`
/// lines and the forge's own dependency links.
async fn dependencies_closed(ctx: &ProjectCtx, issue: &Issue) -> anyhow::Result<bool> {
    let mut deps = picking::body_dependencies(&issue.body);
    deps.extend(refused_for(ctx, issue)?);
    for dep in deps {
        match ctx.forge.get_issue(dep).await {
            Ok(d) if d.state == IssueState::Closed => {}
            Ok(_) => {
                tracing::debug!("#{} waits for open #{dep}", issue.number);
                return Ok(false);
            }
            Err(ForgeError::NotFound(_)) => {
                tracing::warn!("#{} depends on #{dep}, which does not exist", issue.number);
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
    }
    match ctx.forge.issue_dependencies(issue.number).await {
        Ok(deps) => Ok(deps.iter().all(|d| d.state == IssueState::Closed)),
        // Dependencies may be disabled on the repository.
        Err(ForgeError::NotFound(_)) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Issues an agent said this one waits for when it refused it earlier
/// (`unmet_dependency`): it is not picked again until they are closed.
fn refused_for(ctx: &ProjectCtx, issue: &Issue) -> anyhow::Result<Vec<IssueNumber>> {
    let Some(claim) = ctx.store.claim(ctx.name(), issue.number.0)? else {
        return Ok(Vec::new());
    };
    if claim.status != ClaimStatus::Released {
        return Ok(Vec::new());
    }
    let state: DevState = serde_json::from_str(&claim.state_json)?;
    Ok(state.waiting_for)
}
