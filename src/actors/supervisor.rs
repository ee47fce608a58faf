//! The supervisor: root of the actor tree. It starts a poller and a merge
//! scanner per project, resumes the claims the store holds, starts a dev actor
//! per picked issue (within `agent.max_sessions`) and restarts failed children with backoff.
//! It overrides ractor's default supervision, which would stop the whole tree
//! when any child ends.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::forge::{IssueNumber, Nudge};
use crate::store::{ClaimRow, ClaimStatus, EventKind, Runner};

use super::dev::machine::Stage;
use super::dev::{DevActor, DevArgs, DevMsg};
use super::merge_scanner::{MergeScanner, MergeScannerArgs, MergeScannerMsg, ScanHint};
use super::parent::{Parent, ToParent};
use super::poller::{Poller, PollerArgs, PollerMsg};
use super::{ProjectCtx, Timings, reconcile};

pub struct Supervisor;

pub struct SupervisorArgs {
    pub projects: Vec<Arc<ProjectCtx>>,
    /// `run --once`: one poll per project, then stop when no dev actor is left.
    pub once: bool,
    pub timings: Timings,
}

pub enum SupervisorMsg {
    /// A request of a poller or merge scanner (`parent::Parent`).
    Child(ToParent),
    /// Start (again) the dev actor of an issue, e.g. after its backoff;
    /// with `give_up`, only to block the issue for that reason.
    StartDev {
        project: String,
        issue: IssueNumber,
        title: String,
        give_up: Option<String>,
    },
    /// Start a project's poller again after it failed.
    RestartPoller { project: String },
    /// A chat reply for an issue is waiting in the store.
    ChatReply { project: String, issue: u64 },
    /// Start a project's merge scanner again after it failed.
    RestartScanner { project: String },
    /// Something changed on a project's forge (webhook, watched folder): the
    /// actor that owns it looks now instead of at its next poll.
    Nudge { project: String, nudge: Nudge },
}

impl From<ToParent> for SupervisorMsg {
    fn from(msg: ToParent) -> SupervisorMsg {
        SupervisorMsg::Child(msg)
    }
}

impl TryFrom<SupervisorMsg> for ToParent {
    type Error = ();

    fn try_from(msg: SupervisorMsg) -> Result<ToParent, ()> {
        match msg {
            SupervisorMsg::Child(msg) => Ok(msg),
            _ => Err(()),
        }
    }
}

/// How the daemon reaches the supervisor.
#[derive(Clone)]
pub struct SupervisorHandle {
    inner: ActorRef<SupervisorMsg>,
}

impl SupervisorHandle {
    pub fn new(inner: ActorRef<SupervisorMsg>) -> SupervisorHandle {
        SupervisorHandle { inner }
    }

    /// A chat reply for the issue waits in the store.
    pub fn chat_reply(&self, project: &str, issue: u64) {
        let _ = self.inner.send_message(SupervisorMsg::ChatReply {
            project: project.to_string(),
            issue,
        });
    }

    /// Something of the project changed on its forge.
    pub fn nudge(&self, project: &str, nudge: Nudge) {
        let _ = self.inner.send_message(SupervisorMsg::Nudge {
            project: project.to_string(),
            nudge,
        });
    }

    pub fn stop(&self, reason: &str) {
        self.inner.stop(Some(reason.to_string()));
    }
}

/// Which issue a dev actor works on, for turning supervision events into
/// "issue 42 failed".
struct DevEntry {
    project: String,
    issue: IssueNumber,
    title: String,
    actor: ActorRef<DevMsg>,
}

pub struct SupervisorState {
    projects: BTreeMap<String, Arc<ProjectCtx>>,
    devs: HashMap<ActorId, DevEntry>,
    pollers: HashMap<ActorId, (String, ActorRef<PollerMsg>)>,
    failures: HashMap<(String, IssueNumber), Vec<Instant>>,
    poller_failures: HashMap<String, u32>,
    scanners: HashMap<ActorId, (String, ActorRef<MergeScannerMsg>)>,
    scanner_failures: HashMap<String, u32>,
    once: bool,
    /// With `--once`: pollers and merge scanners yet to report their cycle.
    polls_pending: usize,
    timings: Timings,
    /// Issues whose dev actor was started only to block them, and how often
    /// that failed.
    giving_up: HashMap<(String, IssueNumber), u32>,
}

impl SupervisorState {
    fn live(&self, project: &str) -> usize {
        self.devs.values().filter(|d| d.project == project).count()
    }

    /// The live dev actor of an issue.
    fn dev(&self, project: &str, issue: IssueNumber) -> Option<&DevEntry> {
        self.devs
            .values()
            .find(|d| d.project == project && d.issue == issue)
    }

    fn holds(&self, project: &str, issue: IssueNumber) -> bool {
        self.dev(project, issue).is_some()
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState {
            // A poller and a merge scanner per project.
            polls_pending: 2 * args.projects.len(),
            projects: args
                .projects
                .into_iter()
                .map(|p| (p.name().to_string(), p))
                .collect(),
            devs: HashMap::new(),
            pollers: HashMap::new(),
            failures: HashMap::new(),
            poller_failures: HashMap::new(),
            scanners: HashMap::new(),
            scanner_failures: HashMap::new(),
            once: args.once,
            timings: args.timings,
            giving_up: HashMap::new(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        // Claims held before a restart come first, once the store, the forge
        // and tmux agree: their issues carry `in-progress` and no poller
        // would pick them again.
        for ctx in state.projects.values().cloned().collect::<Vec<_>>() {
            let resume = match reconcile::reconcile(&ctx).await {
                Ok(resume) => resume,
                Err(e) => {
                    ctx.journal(
                        None,
                        EventKind::Error,
                        &format!("reconciliation failed: {e:#}"),
                    );
                    ctx.store
                        .claims(Some(ctx.name()), Some(ClaimStatus::Active))
                        .await?
                        .into_iter()
                        .map(|c| (IssueNumber(c.issue), c.title))
                        .collect()
                }
            };
            for (issue, _) in &resume {
                ctx.journal(
                    Some(issue.0),
                    EventKind::Daemon,
                    "resuming the claim after a restart",
                );
            }
            let resume = resume
                .into_iter()
                .map(|(n, title)| (n, title, None))
                .collect();
            start_devs(&myself, state, ctx.name(), resume, false).await;
            // A mirror that missed merges (down, given up on, or the daemon
            // stopped before it was pushed) catches up now, not at the
            // next merge.
            if !state.once && !ctx.project.mirrors.is_empty() {
                super::mirrors::push_mirrors(&ctx);
            }
        }
        for name in state.projects.keys().cloned().collect::<Vec<_>>() {
            start_poller(&myself, state, &name).await;
            start_scanner(&myself, state, &name).await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Child(ToParent::Candidates { project, issues }) => {
                let Some(max) = state
                    .projects
                    .get(&project)
                    .map(|c| c.project.agent.max_sessions as usize)
                else {
                    return Ok(());
                };
                let free = max.saturating_sub(state.live(&project));
                let mut picked: Vec<(IssueNumber, String, Option<String>)> = Vec::new();
                for (issue, title) in issues {
                    if picked.len() >= free {
                        break;
                    }
                    if !state.holds(&project, issue) && picked.iter().all(|(i, ..)| *i != issue) {
                        picked.push((issue, title, None));
                    }
                }
                start_devs(&myself, state, &project, picked, true).await;
            }
            SupervisorMsg::Child(ToParent::FreeSlots { project, reply }) => {
                let max = state
                    .projects
                    .get(&project)
                    .map_or(0, |c| c.project.agent.max_sessions as usize);
                let _ = reply.send(max.saturating_sub(state.live(&project)));
            }
            SupervisorMsg::StartDev {
                project,
                issue,
                title,
                give_up,
            } => {
                if !state.holds(&project, issue) {
                    let one = vec![(issue, title, give_up)];
                    start_devs(&myself, state, &project, one, false).await;
                }
            }
            SupervisorMsg::RestartPoller { project } => {
                start_poller(&myself, state, &project).await
            }
            SupervisorMsg::ChatReply { project, issue } => {
                // No live dev actor: the reply waits in the store for the next one.
                if let Some(dev) = state.dev(&project, IssueNumber(issue)) {
                    let _ = dev.actor.send_message(DevMsg::ChatReplies);
                }
            }
            SupervisorMsg::Child(ToParent::PollDone { .. } | ToParent::ScanDone { .. }) => {
                state.polls_pending = state.polls_pending.saturating_sub(1);
                stop_if_done(&myself, state);
            }
            SupervisorMsg::Child(ToParent::Owned { project, reply }) => {
                let mut owned: Vec<u64> = state
                    .devs
                    .values()
                    .filter(|d| d.project == project)
                    .map(|d| d.issue.0)
                    .collect();
                // A claim still active has a dev actor coming back (after its
                // restart backoff): merging its PR meanwhile would leave that
                // actor, if it had not recorded the PR yet, to open a second one.
                if let Some(ctx) = state.projects.get(&project) {
                    match ctx
                        .store
                        .claims(Some(&project), Some(ClaimStatus::Active))
                        .await
                    {
                        Ok(claims) => owned.extend(claims.into_iter().map(|c| c.issue)),
                        Err(e) => tracing::warn!(project, "reading claims: {e:#}"),
                    }
                }
                owned.sort_unstable();
                owned.dedup();
                let _ = reply.send(owned);
            }
            SupervisorMsg::RestartScanner { project } => {
                start_scanner(&myself, state, &project).await
            }
            SupervisorMsg::Nudge { project, nudge } => route_nudge(state, &project, nudge).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(error_chain(err.as_ref()))),
            _ => return Ok(()),
        };
        let id = cell.get_id();
        if let Some(dev) = state.devs.remove(&id) {
            // A session slot is free, and the issue may have closed (issues
            // waiting for it are ready): pick now rather than at the next poll.
            nudge_poller(state, &dev.project, Some(dev.issue));
            let DevEntry {
                project,
                issue,
                title,
                ..
            } = dev;
            // One write of who works on the claim now, from what is decided
            // here: a path that forgets to restart leaves nobody, visibly.
            // Done, or stopped with the claim still active (`--once`), is
            // nobody until a daemon resumes it.
            let runner = match failure {
                Some(err) => dev_failed(&myself, state, project.clone(), issue, title, err).await,
                None => None,
            };
            set_runner(state, &project, issue, runner).await;
            stop_if_done(&myself, state);
        } else if let Some((project, _)) = state.pollers.remove(&id) {
            let Some(err) = failure else { return Ok(()) };
            tracing::error!(project, "poller failed: {err}");
            let k = state.poller_failures.entry(project.clone()).or_default();
            *k += 1;
            let delay = state.timings.restart_backoff(*k);
            myself.send_after(delay, move || SupervisorMsg::RestartPoller { project });
        } else if let Some((project, _)) = state.scanners.remove(&id) {
            let Some(err) = failure else { return Ok(()) };
            tracing::error!(project, "merge scanner failed: {err}");
            let k = state.scanner_failures.entry(project.clone()).or_default();
            *k += 1;
            let delay = state.timings.restart_backoff(*k);
            myself.send_after(delay, move || SupervisorMsg::RestartScanner { project });
        }
        Ok(())
    }
}

/// How many new dev actors start at once (their `pre_start` reads and
/// writes the store): a burst of picks is not started one by one.
const STARTS_AT_ONCE: usize = 16;

/// Starts dev actors for `picked` issues of `project` (`fresh`: newly
/// picked, not resumed; with a reason to give up, only to block the issue),
/// several at a time; each is recorded, or its failure handled, after.
async fn start_devs(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    project: &str,
    picked: Vec<(IssueNumber, String, Option<String>)>,
    fresh: bool,
) {
    use futures_util::StreamExt as _;
    let Some(ctx) = state.projects.get(project).cloned() else {
        return;
    };
    let spawns = picked.into_iter().map(|(issue, title, give_up)| {
        let args = DevArgs {
            ctx: ctx.clone(),
            issue,
            title: title.clone(),
            once: state.once,
            fresh,
            give_up,
            timings: state.timings.clone(),
        };
        async move {
            let spawned = Actor::spawn_linked(None, DevActor, args, myself.get_cell()).await;
            (issue, title, spawned.map(|(actor, _)| actor))
        }
    });
    let spawned: Vec<_> = futures_util::stream::iter(spawns)
        .buffer_unordered(STARTS_AT_ONCE)
        .collect()
        .await;
    for (issue, title, result) in spawned {
        started(myself, state, project, issue, title, result).await;
    }
}

/// Records a dev actor that started, or handles one that could not.
async fn started(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    project: &str,
    issue: IssueNumber,
    title: String,
    result: Result<ActorRef<DevMsg>, ractor::SpawnErr>,
) {
    match result {
        Ok(actor) => {
            state.devs.insert(
                actor.get_id(),
                DevEntry {
                    project: project.to_string(),
                    issue,
                    title,
                    actor,
                },
            );
        }
        // Counted like a failure of the actor, so the claim is restarted
        // (or, failing again and again, given up) rather than orphaned.
        Err(e) => {
            let err = format!("could not start the dev actor: {e}");
            let runner = dev_failed(myself, state, project.to_string(), issue, title, err).await;
            set_runner(state, project, issue, runner).await;
        }
    }
}

/// Record who works on a claim now; a failed write is logged (the journal
/// tells the story either way).
async fn set_runner(
    state: &SupervisorState,
    project: &str,
    issue: IssueNumber,
    runner: Option<Runner>,
) {
    let Some(ctx) = state.projects.get(project) else {
        return;
    };
    if let Err(e) = ctx.store.set_runner(project, issue.0, runner).await {
        tracing::warn!("recording who works on #{issue}: {e:#}");
    }
}

/// Hand a nudge to the actor that owns what changed: the dev actor holding
/// the issue, pull request or head; otherwise the poller (issues) or the merge
/// scanner (pull requests, statuses). A nudge only makes an actor look now.
async fn route_nudge(state: &SupervisorState, project: &str, nudge: Nudge) {
    let Some(ctx) = state.projects.get(project) else {
        tracing::debug!(project, "nudge for an unknown project ignored");
        return;
    };
    let poll = |issue: Option<IssueNumber>| nudge_poller(state, project, issue);
    let scan = |hint: ScanHint| {
        for (p, scanner) in state.scanners.values() {
            if p == project {
                let _ = scanner.send_message(MergeScannerMsg::Nudge(hint.clone()));
            }
        }
    };
    let tick = |issue: u64| {
        state
            .dev(project, IssueNumber(issue))
            .is_some_and(|d| d.actor.send_message(DevMsg::Nudge).is_ok())
    };
    // The issue of the live claim with this PR or head, if any.
    let holder = |claim: anyhow::Result<Option<ClaimRow>>| match claim {
        Ok(claim) => claim.map(|c| c.issue),
        Err(e) => {
            tracing::warn!(project, "looking up a nudge's claim: {e:#}");
            None
        }
    };
    match nudge {
        Nudge::Issue(n) => {
            if !tick(n.0) {
                poll(Some(n));
            }
        }
        Nudge::Pull(pr) => {
            let claim = ctx.store.claim_holding_pr(project, pr.0).await;
            if !holder(claim).is_some_and(tick) {
                scan(ScanHint::Pull(pr));
            }
        }
        Nudge::Commit(sha) => {
            let claim = ctx.store.claim_holding_head(project, &sha.0).await;
            if !holder(claim).is_some_and(tick) {
                scan(ScanHint::Commit(sha));
            }
        }
        Nudge::Repo => {
            poll(None);
            scan(ScanHint::All);
        }
    }
}

/// Make the project's poller look now; `Some(issue)`: that issue changed.
fn nudge_poller(state: &SupervisorState, project: &str, issue: Option<IssueNumber>) {
    for (p, poller) in state.pollers.values() {
        if p == project {
            let _ = poller.send_message(PollerMsg::Nudge(issue));
        }
    }
}

async fn start_poller(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    project: &str,
) {
    let Some(ctx) = state.projects.get(project).cloned() else {
        return;
    };
    let args = PollerArgs {
        ctx,
        supervisor: Parent::new(myself.get_derived()),
        once: state.once,
        timings: state.timings.clone(),
    };
    match Actor::spawn_linked(None, Poller, args, myself.get_cell()).await {
        Ok((actor, _)) => {
            state
                .pollers
                .insert(actor.get_id(), (project.to_string(), actor));
        }
        Err(e) => tracing::error!(project, "could not start the poller: {e}"),
    }
}

async fn start_scanner(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    project: &str,
) {
    let Some(ctx) = state.projects.get(project).cloned() else {
        return;
    };
    let args = MergeScannerArgs {
        ctx,
        supervisor: Parent::new(myself.get_derived()),
        once: state.once,
        timings: state.timings.clone(),
    };
    match Actor::spawn_linked(None, MergeScanner, args, myself.get_cell()).await {
        Ok((actor, _)) => {
            state
                .scanners
                .insert(actor.get_id(), (project.to_string(), actor));
        }
        Err(e) => tracing::error!(project, "could not start the merge scanner: {e}"),
    }
}

/// An actor's error with every cause under it (`a: b: c`): an `anyhow`
/// error boxed as ractor's error shows only its outermost context, which
/// would drop what tmux or git said.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// A dev actor failed: restart it from its persisted state after a backoff,
/// unless it keeps failing; then restart it once more, only to block the
/// issue. A dev actor rides out forge outages, so the block lands whenever
/// the forge answers again, and the claim is never left without an actor.
/// (Passing outages never get here: they are not failures.)
/// Returns who works on the claim now: `Restarting` when a restart is
/// scheduled, nobody otherwise.
async fn dev_failed(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    project: String,
    issue: IssueNumber,
    title: String,
    err: String,
) -> Option<Runner> {
    let ctx = state.projects.get(&project).cloned()?;
    ctx.journal(
        Some(issue.0),
        EventKind::Error,
        &format!("dev actor failed: {err}"),
    );
    if state.once {
        return None;
    }
    let key = (project.clone(), issue);
    let timings = &state.timings;
    if let Some(tries) = state.giving_up.get_mut(&key) {
        // Blocking itself keeps failing for a reason that is not an outage
        // (the issue was deleted, the token lost its rights): record the
        // block here at least, so no restart resumes the issue.
        *tries += 1;
        if *tries >= timings.max_failures {
            state.giving_up.remove(&key);
            ctx.journal(
                Some(issue.0),
                EventKind::Error,
                &format!(
                    "could not mark #{} blocked on the forge: {err}; recorded as blocked here",
                    issue
                ),
            );
            if let Err(e) = reconcile::settle_claim(&ctx, issue.0, Stage::Blocked).await {
                tracing::error!("recording the block of #{}: {e:#}", issue);
            }
            return None;
        }
    }
    let now = Instant::now();
    let failures = state.failures.entry(key.clone()).or_default();
    failures.retain(|t| now.duration_since(*t) < timings.failure_window);
    failures.push(now);
    let count = failures.len() as u32;
    let give_up = if count >= timings.max_failures || state.giving_up.contains_key(&key) {
        let why = format!(
            "its supervisor gave up after {count} failures in {} minutes; the last: {err}",
            timings.failure_window.as_secs() / 60
        );
        state.giving_up.entry(key).or_insert(0);
        Some(why)
    } else {
        None
    };
    let delay = state.timings.restart_backoff(count);
    myself.send_after(delay, move || SupervisorMsg::StartDev {
        project,
        issue,
        title,
        give_up,
    });
    Some(Runner::Restarting)
}

fn stop_if_done(myself: &ActorRef<SupervisorMsg>, state: &SupervisorState) {
    if state.once && state.polls_pending == 0 && state.devs.is_empty() {
        myself.stop(Some("one cycle done".into()));
    }
}
