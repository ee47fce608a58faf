//! The poller: one per project. Every `poll_interval`, and at once when
//! nudged (a webhook, a session that ended), while `state/.dev-active`
//! exists, it lists ready issues, orders them (`picking`), checks their
//! dependencies and hands as many as the project has free sessions for to
//! the supervisor.
//!
//! An idle cycle costs one look at what changed (`forge::changes`, on
//! Forgejo and GitHub), shared with the merge scanner
//! (`Forge::open_issues_as_of`); the local backend's list costs no request.
//! Issues found waiting for a dependency are not asked about again until
//! their list entry changes, a nudge names one of the issues they wait for,
//! or `RECHECK_CYCLES` polls have passed (a dependency closed without a
//! webhook reaching us); what is known of the dependencies themselves is
//! kept in `dependencies`, so each is asked about once, not once per issue
//! waiting for it.

pub mod dependencies;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::Instrument;

use crate::forge::{Issue, IssueNumber};
use crate::picking;
use crate::store::EventKind;

use dependencies::{Dependencies, Look, Verdict};

use super::outage::Outage;
use super::parent::Parent;
use super::periodic::{self, Periodic, RECHECK_CYCLES};
use super::{ProjectCtx, Timings};

/// How long the poller waits for the supervisor's slot count.
const SUPERVISOR_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Poller;

pub struct PollerArgs {
    pub ctx: Arc<ProjectCtx>,
    pub supervisor: Parent,
    /// Poll once, report `PollDone`, and stop.
    pub once: bool,
    pub timings: Timings,
}

pub enum PollerMsg {
    /// The `poll_interval` timer: look, trusting earlier dependency checks of
    /// issues whose list entry did not change.
    Tick,
    /// Something changed on the forge: look now. `Some(n)`: issue `n`
    /// changed, so issues waiting for it are checked again; `None`: anything
    /// may have changed.
    Nudge(Option<IssueNumber>),
    /// Poll, once for every `Tick` and `Nudge` that arrived since the last
    /// poll: a burst of webhooks costs one poll, and the last of them is
    /// never lost (it arrived before this message was handled).
    Run,
}

/// What the nudges since the last poll said changed.
#[derive(Debug, Default)]
enum Changed {
    #[default]
    Nothing,
    Issues(BTreeSet<IssueNumber>),
    All,
}

impl Changed {
    fn add(&mut self, issue: Option<IssueNumber>) {
        match (issue, &mut *self) {
            (_, Changed::All) => {}
            (None, _) => *self = Changed::All,
            (Some(n), Changed::Issues(set)) => {
                set.insert(n);
            }
            (Some(n), Changed::Nothing) => *self = Changed::Issues(BTreeSet::from([n])),
        }
    }
}

/// A ready-labelled issue found waiting for dependencies.
struct Waiting {
    /// Its list entry when checked: an edit (say, to its `Depends on` lines)
    /// makes the check stale.
    entry: Issue,
    /// The open dependencies found; a nudge naming one makes the check stale.
    on: Vec<IssueNumber>,
    at: Instant,
}

pub struct PollerState {
    ctx: Arc<ProjectCtx>,
    supervisor: Parent,
    once: bool,
    labels_ready: bool,
    /// The timer and the queued `Run`; triggers add to `changed`.
    periodic: Periodic,
    changed: Changed,
    waiting: HashMap<IssueNumber, Waiting>,
    /// What is known of the issues others wait for.
    dependencies: Dependencies,
    outage: Outage,
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
            periodic: Periodic::default(),
            changed: Changed::Nothing,
            waiting: HashMap::new(),
            dependencies: Dependencies::default(),
            outage: args.timings.outage(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<PollerMsg>,
        state: &mut PollerState,
    ) -> Result<(), ActorProcessingErr> {
        if state.once {
            myself.send_message(PollerMsg::Run)?;
        } else {
            let every = state.ctx.project.poll_interval;
            state.periodic.start(&myself, every, || PollerMsg::Tick)?;
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<PollerMsg>,
        state: &mut PollerState,
    ) -> Result<(), ActorProcessingErr> {
        state.periodic.stop();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<PollerMsg>,
        msg: PollerMsg,
        state: &mut PollerState,
    ) -> Result<(), ActorProcessingErr> {
        let trigger = match msg {
            PollerMsg::Run => None,
            PollerMsg::Tick => Some(None),
            PollerMsg::Nudge(issue) => Some(Some(issue)),
        };
        if let Some(issue) = trigger {
            if let Some(issue) = issue {
                state.changed.add(issue);
            }
            return state.periodic.trigger(&myself, PollerMsg::Run);
        }
        state.periodic.running();
        let span = tracing::info_span!("poll", project = %state.ctx.name());
        match poll(state).instrument(span).await {
            Ok(()) => {
                if let Some(line) = state.outage.recovered(Utc::now()) {
                    state
                        .ctx
                        .journal(None, EventKind::Daemon, &format!("poller: {line}"));
                }
            }
            // An outage: said once, and the poll is tried again after a
            // backoff rather than only at the next interval.
            Err(e) if crate::transient::is_transient(&e) && !state.once => {
                let (line, wait) = state.outage.failed(Utc::now(), &e);
                if let Some(line) = line {
                    state
                        .ctx
                        .journal(None, EventKind::Error, &format!("poller: {line}"));
                }
                myself.send_after(wait, || PollerMsg::Tick);
            }
            Err(e) => {
                tracing::warn!("poll failed: {e:#}");
                state
                    .ctx
                    .journal(None, EventKind::Error, &format!("poll failed: {e:#}"));
            }
        }
        if state.once {
            state.supervisor.poll_done(state.ctx.name())?;
            myself.stop(None);
        }
        Ok(())
    }
}

async fn poll(state: &mut PollerState) -> anyhow::Result<()> {
    let ctx = state.ctx.clone();
    let started = Instant::now();
    let changed = std::mem::take(&mut state.changed);
    let nudged = !matches!(changed, Changed::Nothing);
    match changed {
        Changed::Nothing => {}
        Changed::All => state.waiting.clear(),
        Changed::Issues(changed) => {
            for &n in &changed {
                state.dependencies.forget(n);
            }
            state
                .waiting
                .retain(|n, w| !changed.contains(n) && !w.on.iter().any(|d| changed.contains(d)));
        }
    }
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
    if super::budget_gate::picking_stopped(&ctx, Utc::now())
        .await?
        .is_some()
    {
        return Ok(());
    }
    let project = ctx.name().to_string();
    let free = state
        .supervisor
        .free_slots(&project, SUPERVISOR_TIMEOUT)
        .await?;
    if free == 0 {
        return Ok(());
    }
    let every = ctx.project.poll_interval;
    let as_of = periodic::as_of(started, every, nudged || state.once);
    let issues = ctx.forge.open_issues_as_of(&labels.backlog, as_of).await?;
    state
        .waiting
        .retain(|n, _| issues.iter().any(|i| i.number == *n));
    let recheck = ctx.project.poll_interval.saturating_mul(RECHECK_CYCLES);
    let tracked = state.waiting.len() + state.dependencies.known();
    let budget = periodic::safety_net_share(tracked);
    let mut round = state.dependencies.round(&issues, recheck, budget);
    let mut picks = Vec::new();
    for issue in picking::order(&issues, labels) {
        if picks.len() >= free {
            break;
        }
        let look = match state.waiting.get(&issue.number) {
            None => Look::Fresh,
            Some(w) if w.entry != *issue => Look::Edited,
            Some(w) if w.at.elapsed() >= recheck => Look::SafetyNet,
            // Unchanged and checked recently: still waiting while what it
            // waits for is open.
            Some(w) => match round.any_open(&*ctx, &w.on).await {
                Ok(true) => continue,
                Ok(false) => Look::Fresh,
                Err(e) if crate::transient::is_transient(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!("cannot tell whether #{} is ready: {e:#}", issue.number);
                    continue;
                }
            },
        };
        match round.check(&*ctx, issue, look).await {
            Ok(Verdict::Ready) => {
                state.waiting.remove(&issue.number);
                picks.push((issue.number, issue.title.clone()));
            }
            Ok(Verdict::Waiting(open)) => {
                let waiting = Waiting {
                    entry: issue.clone(),
                    on: open,
                    at: Instant::now(),
                };
                state.waiting.insert(issue.number, waiting);
            }
            Ok(Verdict::Postponed) => {}
            Err(e) if crate::transient::is_transient(&e) => return Err(e),
            // Unsure is not ready: skip this one, the others may still go.
            Err(e) => tracing::warn!("cannot tell whether #{} is ready: {e:#}", issue.number),
        }
    }
    let needed: HashSet<IssueNumber> = state.waiting.values().flat_map(|w| w.on.clone()).collect();
    state.dependencies.prune(&needed, recheck);
    if !picks.is_empty() {
        state.supervisor.candidates(&project, picks)?;
    }
    Ok(())
}
