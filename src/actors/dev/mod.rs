//! The dev actor: one per claimed issue. It owns the issue's worktree, tmux
//! session and phase file, feeds `machine::next` with what it sees, persists
//! the new state, then performs the effects (`effects.rs`).

mod checks;
mod effects;
pub mod env;
mod feedback;
mod files;
mod liveness;
pub mod machine;
pub mod model;
mod outcome;
mod publish;
mod session;
pub mod verdict;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::agent::{AgentAdapter, Signal};
use crate::forge::IssueNumber;
use crate::paths::branch_name;
use crate::store::{ClaimRow, ClaimStatus, EventKind};

use super::outage::Outage;
use super::{ProjectCtx, Timings};
use machine::{DevState, Effect, Event, Policy, Stage};

pub use liveness::Liveness;

/// Respawns of a dead session before the issue is blocked (DESIGN §5 "Liveness").
const MAX_RESPAWNS: u32 = 3;

pub struct DevActor;

/// How the supervisor starts a dev actor.
pub struct DevArgs {
    pub ctx: Arc<ProjectCtx>,
    pub issue: IssueNumber,
    pub title: String,
    /// `run --once`: stop once the agent has its task, leaving the session
    /// running for a later `run` to adopt.
    pub once: bool,
    /// Picked anew by a poller (rather than resumed): an old finished claim
    /// of the same issue starts over.
    pub fresh: bool,
    /// Set when the supervisor gave up on this issue: block it (retrying
    /// through outages like any effect) instead of working on it.
    pub give_up: Option<String>,
    pub timings: Timings,
}

pub enum DevMsg {
    /// Begin (or resume) the issue's work from the persisted state.
    Start,
    /// Try again the effects a forge outage interrupted.
    Retry,
    /// The phase file was written (inotify).
    PhaseFileChanged,
    /// Look at the pane for the agent's ready prompt.
    ReadyCheck,
    /// The pane printed something (asked for while waiting for the prompt).
    PaneOutput,
    /// tmux reported the session gone or its pane dead (`liveness`): look.
    SessionDown,
    /// The timer: time to look at the forge again (or, when the forge
    /// reports its changes itself, maybe only at the agent).
    Tick,
    /// Something of this issue changed on the forge (webhook, watched
    /// folder): look at the forge now.
    Nudge,
    /// A chat reply for this issue is waiting in the store.
    ChatReplies,
    /// The agent's hooks reported something (a marker file was written).
    AgentSignal(Signal),
}

/// The dev actor's runtime state; `state` is what gets persisted.
pub struct DevRun {
    ctx: Arc<ProjectCtx>,
    issue: IssueNumber,
    title: String,
    session: String,
    branch: String,
    session_dir: PathBuf,
    worktree: PathBuf,
    state: DevState,
    claimed_at: DateTime<Utc>,
    once: bool,
    policy: Policy,
    myself: ActorRef<DevMsg>,
    /// Keeps the inotify watch on the session folder alive.
    watcher: Option<watch::PhaseWatch>,
    /// Keeps tmux's news of the session coming (`DevMsg::SessionDown`).
    liveness: Option<liveness::SessionWatch>,
    /// Chat replies may wait in the store for this issue (at start, and
    /// after one arrived while no agent could take it).
    replies_waiting: bool,
    /// The agent cannot have been idle for `idle_timeout` before this
    /// (the last activity seen plus the timeout): no look before then.
    idle_look_at: Option<std::time::SystemTime>,
    /// When the agent's token use was last read on a tick.
    spend_read_at: Option<Instant>,
    /// The token use last written to the store: the same again is not
    /// written again.
    saved_usage: std::sync::Mutex<Option<crate::store::TokenUsage>>,
    ticker: Option<JoinHandle<()>>,
    /// While waiting for the agent's prompt: give up after this.
    ready_deadline: Option<Instant>,
    /// The screen of the last ready check that looked ready: the agent counts
    /// as ready only when the next check sees the same screen, so a prompt
    /// drawn while the agent is still starting up does not swallow the task.
    ready_screen: Option<String>,
    /// Timer ticks since the forge was last looked at (see `looks_at_forge`).
    quiet_ticks: u32,
    /// Last CI/review state journaled, so a tick repeating it adds no line.
    last_reported: Option<String>,
    /// What to paste once the agent shows its prompt.
    delivery: Delivery,
    /// What differs for the project's kind of agent.
    adapter: AgentAdapter,
    /// The last reason the phase file could not be read, so a file that
    /// stays unreadable is reported once, not at every write.
    phase_problem: Option<String>,
    timings: Timings,
    /// Effects not yet performed, in order: the front one met a forge
    /// outage and is tried again at the next `Retry`.
    pending: std::collections::VecDeque<Effect>,
    /// Whether `pending` is also in the store, owed by a finished claim
    /// (`store/owed.rs`): cleared once it got through.
    owed_saved: bool,
    /// Whether this run's claim is in the store. A new claim is written
    /// only once its issue, read again, is still there to claim: until
    /// then a finished claim of the issue keeps its row, and one the
    /// issue was never in gets none.
    claim_saved: bool,
    outage: Outage,
    /// Why the supervisor gave the issue up, when it did.
    give_up: Option<String>,
}

/// The first message of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// The task, to a new agent.
    Task,
    /// The task plus where things stand, to a respawned agent.
    Recovery,
}

impl Actor for DevActor {
    type Msg = DevMsg;
    type State = DevRun;
    type Arguments = DevArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<DevMsg>,
        args: DevArgs,
    ) -> Result<DevRun, ActorProcessingErr> {
        let ctx = args.ctx;
        let n = args.issue.0;
        let key = ctx.issue_key(n);
        let session = ctx.session_name(n);
        let now = Utc::now();
        let stored = ctx.store.claim(ctx.name(), n).await?;
        let stored_state = |row: &ClaimRow| {
            serde_json::from_str::<DevState>(&row.state_json).unwrap_or_else(|e| {
                tracing::error!("claim state of #{n} unreadable ({e}); starting over");
                DevState::new(now)
            })
        };
        // A finished claim resumed after a restart: what its end still owed
        // the forge is performed first (`Start` then stops it).
        let owed = match &stored {
            Some(row) if row.status != ClaimStatus::Active && !args.fresh => {
                match ctx.store.owed(ctx.name(), n).await? {
                    Some(json) => serde_json::from_str::<Vec<Effect>>(&json).unwrap_or_else(|e| {
                        tracing::error!("what #{n} owed the forge is unreadable ({e}); dropped");
                        Vec::new()
                    }),
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        let (state, claimed_at, is_new) = match &stored {
            // A finished claim picked again starts over, remembering only
            // how often the agent refused it.
            Some(row) if args.fresh && row.status != ClaimStatus::Active => {
                let refusals = stored_state(row).refusals;
                (
                    DevState {
                        refusals,
                        ..DevState::new(now)
                    },
                    now,
                    true,
                )
            }
            Some(row) => (stored_state(row), row.claimed_at, false),
            None => (DevState::new(now), now, true),
        };
        let project = &ctx.project;
        let policy = Policy {
            primary_branch: project.primary_branch.clone(),
            max_fix_attempts: project.ci.max_fix_attempts,
            max_rounds: project.review.max_rounds,
            max_respawns: MAX_RESPAWNS,
            ci_timeout: project.ci.timeout,
            review_timeout: project.review.timeout,
            escalation_timeout: project.agent.escalation_timeout,
            idle_timeout: project.agent.idle_timeout,
            budget: project.budget.clone(),
        };
        let run = DevRun {
            session_dir: ctx.paths.session_dir(&session),
            worktree: ctx.paths.worktree(ctx.name(), &key),
            branch: branch_name(&key),
            session,
            issue: args.issue,
            title: args.title,
            state,
            claimed_at,
            once: args.once,
            policy,
            myself: myself.clone(),
            watcher: None,
            liveness: None,
            replies_waiting: true,
            idle_look_at: None,
            spend_read_at: None,
            saved_usage: std::sync::Mutex::new(None),
            ticker: None,
            ready_deadline: None,
            ready_screen: None,
            quiet_ticks: 0,
            last_reported: None,
            delivery: Delivery::Task,
            adapter: AgentAdapter::new(ctx.project.agent.kind),
            phase_problem: None,
            outage: args.timings.outage(),
            timings: args.timings,
            owed_saved: !owed.is_empty(),
            pending: owed.into(),
            give_up: args.give_up,
            claim_saved: !is_new,
            ctx,
        };
        if !is_new {
            run.ctx
                .store
                .set_runner(run.ctx.name(), n, Some(crate::store::Runner::Running))
                .await?;
        }
        Ok(run)
    }

    async fn post_start(
        &self,
        myself: ActorRef<DevMsg>,
        run: &mut DevRun,
    ) -> Result<(), ActorProcessingErr> {
        let every = run.ctx.project.poll_interval;
        run.ticker = Some(myself.send_interval(every, || DevMsg::Tick));
        run.liveness = Some(run.ctx.liveness.watch(&run.session, myself.clone()));
        myself.send_message(DevMsg::Start)?;
        // A claim resumed after a restart looks at the forge at once: what
        // happened while no daemon ran (a review, CI, a command) is not
        // left for the first tick, a poll interval away.
        if run.state.stage >= Stage::Working && !run.state.stage.is_terminal() {
            myself.send_message(DevMsg::Nudge)?;
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<DevMsg>,
        run: &mut DevRun,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = run.ticker.take() {
            t.abort();
        }
        run.watcher = None;
        run.liveness = None;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<DevMsg>,
        msg: DevMsg,
        run: &mut DevRun,
    ) -> Result<(), ActorProcessingErr> {
        // At rest, a tick only reads the token use, every `spend_every`.
        let at_rest = matches!(msg, DevMsg::Tick) && run.at_rest();
        if at_rest
            && run
                .spend_read_at
                .is_some_and(|at| at.elapsed() < run.timings.spend_every)
        {
            return Ok(());
        }
        let span = tracing::info_span!(
            "issue",
            project = %run.ctx.name(),
            n = run.issue.0,
            stage = run.state.stage.as_str()
        );
        let result = async {
            let event = match msg {
                DevMsg::Start => Some(match run.give_up.take() {
                    Some(reason) => Event::GiveUp { reason },
                    None => Event::Start,
                }),
                DevMsg::Retry if run.pending.is_empty() => {
                    // Nothing was interrupted (the outage met a look outside
                    // an effect): look at the forge as a tick would.
                    run.forge_answered().await;
                    Some(Event::Tick)
                }
                DevMsg::Retry => {
                    let mut follow = std::collections::VecDeque::new();
                    run.perform_pending(&mut follow).await?;
                    run.drive(follow).await?;
                    None
                }
                DevMsg::Tick | DevMsg::Nudge => {
                    if let Some(news) = run.idle().await {
                        run.process(news).await?;
                    }
                    if run.state.stage.has_session() {
                        run.spend_read_at = Some(Instant::now());
                        let spent = run.record_usage().await;
                        run.process(Event::Spend { spent }).await?;
                        if run.policy.budget.daemon_month.is_set() {
                            let today = Utc::now().date_naive();
                            let month = run.ctx.store.daemon_month_spend(today).await?;
                            run.process(Event::DaemonSpend(month)).await?;
                        }
                    }
                    // Replies kept while the session was away go out now.
                    if run.replies_waiting {
                        run.deliver_chat_replies().await?;
                    }
                    let nudged = matches!(msg, DevMsg::Nudge);
                    if at_rest {
                        // Nothing on the forge to look at while the agent works.
                        None
                    } else if run.outage.is_down() {
                        // The retry looks at the forge; a nudge (a webhook
                        // arrived) says it may be back.
                        if nudged {
                            myself.send_message(DevMsg::Retry)?;
                        }
                        None
                    } else {
                        run.looks_at_forge(nudged, Utc::now())
                            .then_some(Event::Tick)
                    }
                }
                DevMsg::ChatReplies => {
                    run.replies_waiting = true;
                    run.deliver_chat_replies().await?;
                    None
                }
                DevMsg::PhaseFileChanged => run.read_phase_file().await?,
                DevMsg::ReadyCheck => run.ready_check().await?,
                DevMsg::PaneOutput => {
                    run.pane_output();
                    None
                }
                DevMsg::SessionDown => run.session_down().await?,
                DevMsg::AgentSignal(signal) => {
                    let spent = run.record_usage().await;
                    run.process(Event::Spend { spent }).await?;
                    match signal {
                        Signal::Stopped => Some(Event::AgentStopped),
                        // The program is on its way out; look again once it is gone.
                        Signal::Exited => {
                            myself.send_after(run.timings.exit_grace, || DevMsg::SessionDown);
                            None
                        }
                    }
                }
            };
            if let Some(event) = event {
                run.process(event).await?;
            }
            // A finished claim whose end waits for the forge stays until
            // it got through (its `Stop` effect comes last).
            let finished = run.state.stage.is_terminal() && run.pending.is_empty();
            if finished || (run.once && run.state.stage >= Stage::Working) {
                myself.stop(None);
            }
            Ok::<(), anyhow::Error>(())
        }
        .instrument(span)
        .await;
        match result {
            // An outage met outside an effect: look again after a backoff
            // (a tick re-derives what to ask the forge), never a failure.
            Err(e) if crate::transient::is_transient(&e) => {
                let (line, wait) = run.outage.failed(Utc::now(), &e);
                if let Some(line) = line {
                    run.journal(EventKind::Error, &line);
                }
                myself.send_after(wait, || DevMsg::Retry);
                Ok(())
            }
            other => other.map_err(Into::into),
        }
    }
}

impl DevRun {
    /// Whether this tick looks at the forge. Always when nudged or when the
    /// forge does not report changes itself; while waiting on CI, a review or
    /// an escalation's answer otherwise only every `safety_net_ticks` ticks
    /// (a safety net for a lost delivery, not the way news arrives),
    /// and on every tick once a deadline is within one tick, so timeouts
    /// still fire on time.
    fn looks_at_forge(&mut self, nudged: bool, now: DateTime<Utc>) -> bool {
        let waiting = matches!(self.state.stage, Stage::AwaitingCi | Stage::AwaitingReview)
            || self.state.escalation.is_some();
        if nudged || !self.ctx.forge_reports_changes || !waiting {
            self.quiet_ticks = 0;
            return true;
        }
        let policy = &self.policy;
        let deadline = match (&self.state.escalation, self.state.stage) {
            (Some(esc), _) => esc.since + policy.escalation_timeout,
            (None, Stage::AwaitingCi) => self.state.stage_since + policy.ci_timeout,
            _ => self.state.stage_since + policy.review_timeout,
        };
        let tick = self.ctx.project.poll_interval;
        let deadline_near = deadline <= now + tick * 2;
        self.quiet_ticks += 1;
        if deadline_near || self.quiet_ticks >= self.timings.safety_net_ticks {
            self.quiet_ticks = 0;
            return true;
        }
        false
    }

    /// Whether a tick has nothing to do but, every `spend_every`, read the
    /// agent's token use: the agent is at work (nothing on the forge to
    /// look at, no escalation), no reply waits, nothing waits for the
    /// forge, and it cannot be idle yet. Such a tick costs no more than
    /// this (and the token use no forge request), however many sessions
    /// there are.
    fn at_rest(&self) -> bool {
        matches!(self.state.stage, Stage::Starting | Stage::Working)
            && self.state.escalation.is_none()
            && !self.replies_waiting
            && self.pending.is_empty()
            && !self.outage.is_down()
            && self
                .idle_look_at
                .is_some_and(|at| std::time::SystemTime::now() < at)
    }

    /// Feed an event through the transition function, persisting each new
    /// state before performing its effects; effects may raise further events.
    async fn process(&mut self, event: Event) -> anyhow::Result<()> {
        self.drive(std::collections::VecDeque::from([event])).await
    }

    /// Perform what is pending, then the events in `queue` in order (each
    /// new state persisted before its effects). An effect that meets a forge
    /// outage stays at the front of `pending` with everything after it, the
    /// outage is journaled once, and a `Retry` comes after a backoff; the
    /// events meanwhile still move the state, their effects wait in line.
    async fn drive(&mut self, mut queue: std::collections::VecDeque<Event>) -> anyhow::Result<()> {
        loop {
            if !self.outage.is_down() {
                self.perform_pending(&mut queue).await?;
            }
            let Some(event) = queue.pop_front() else {
                return Ok(());
            };
            let (next, effects) = machine::next(&self.state, event, &self.policy, Utc::now());
            self.set_state(next).await?;
            self.pending.extend(effects);
            if self.outage.is_down() {
                self.perform_local().await?;
            }
            if self.state.stage.is_terminal() {
                self.save_owed().await?;
            }
        }
    }

    /// Keep what a finished claim still owes the forge in the store, so a
    /// restart meanwhile performs it (`pre_start`).
    async fn save_owed(&mut self) -> anyhow::Result<()> {
        let json = serde_json::to_string(&self.pending)?;
        self.ctx
            .store
            .save_owed(self.ctx.name(), self.issue.0, json)
            .await?;
        self.owed_saved = true;
        Ok(())
    }

    async fn perform_pending(
        &mut self,
        queue: &mut std::collections::VecDeque<Event>,
    ) -> anyhow::Result<()> {
        while let Some(effect) = self.pending.pop_front() {
            if effect == Effect::Stop {
                self.myself.stop(None);
                continue;
            }
            match self.perform(effect.clone()).await {
                Ok(follow) => {
                    self.forge_answered().await;
                    queue.extend(follow);
                }
                Err(e) if crate::transient::is_transient(&e) => {
                    self.pending.push_front(effect);
                    self.perform_local().await?;
                    if self.owed_saved {
                        // What got through is owed no more.
                        self.save_owed().await?;
                    }
                    let (line, wait) = self.outage.failed(Utc::now(), &e);
                    if let Some(line) = line {
                        self.journal(EventKind::Error, &line);
                        self.persist().await?;
                    }
                    self.myself.send_after(wait, || DevMsg::Retry);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        if self.owed_saved {
            self.ctx
                .store
                .clear_owed(self.ctx.name(), self.issue.0)
                .await?;
            self.owed_saved = false;
        }
        Ok(())
    }

    /// Perform the pending effects that touch neither the forge nor the
    /// session, a journal line or a chat notice (which the outbox keeps),
    /// ahead of those waiting for the forge: what was decided is on record,
    /// and people hear of it, during an outage too.
    async fn perform_local(&mut self) -> anyhow::Result<()> {
        let (local, waiting): (std::collections::VecDeque<Effect>, _) =
            std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|e| matches!(e, Effect::Journal(..) | Effect::Notify(_)));
        self.pending = waiting;
        for effect in local {
            self.perform(effect).await?;
        }
        Ok(())
    }

    /// An effect got through: an outage, if there was one, is over.
    async fn forge_answered(&mut self) {
        if let Some(line) = self.outage.recovered(Utc::now()) {
            self.journal(EventKind::Daemon, &line);
            if let Err(e) = self.persist().await {
                tracing::warn!("recording the end of the outage: {e:#}");
            }
        }
    }

    async fn set_state(&mut self, next: DevState) -> anyhow::Result<()> {
        if next == self.state {
            return Ok(());
        }
        if next.stage != self.state.stage {
            tracing::info!(
                from = self.state.stage.as_str(),
                to = next.stage.as_str(),
                "stage"
            );
        }
        self.state = next;
        self.persist().await
    }

    async fn persist(&self) -> anyhow::Result<()> {
        if !self.claim_saved {
            return Ok(());
        }
        let status = self.state.stage.claim_status();
        let row = ClaimRow {
            project: self.ctx.name().to_string(),
            issue: self.issue.0,
            title: self.title.clone(),
            status,
            stage: self.state.stage.as_str().to_string(),
            pr: self.state.pr.map(|p| p.0),
            head: self.state.head.as_ref().map(|h| h.0.clone()),
            // While the forge is down, that is what the issue waits for.
            waiting: if self.outage.is_down() {
                Some(crate::store::Waiting::Forge)
            } else {
                self.state.waiting()
            },
            // Only a live dev actor persists; a finished claim has nobody.
            runner: (!self.state.stage.is_terminal()).then_some(crate::store::Runner::Running),
            ci_attempts: self.state.ci_attempts,
            review_rounds: self.state.review_rounds,
            session: self.session.clone(),
            state_json: serde_json::to_string(&self.state)?,
            claimed_at: self.claimed_at,
            stage_since: self.state.stage_since,
            updated_at: Utc::now(),
        };
        // Awaited: the effects that follow rely on the state being on disk.
        self.ctx.store.save_claim(&row).await
    }

    fn journal(&self, kind: EventKind, detail: &str) {
        self.ctx.journal(Some(self.issue.0), kind, detail);
    }

    fn phase_file(&self) -> PathBuf {
        self.session_dir.join("phase")
    }

    fn summary_file(&self) -> PathBuf {
        self.session_dir.join("summary.md")
    }

    fn scratch_file(&self) -> PathBuf {
        self.session_dir.join("scratch.md")
    }

    fn usage_file(&self) -> PathBuf {
        self.session_dir.join(crate::agent::usage_file::USAGE_FILE)
    }

    /// tmux says the session is gone or its pane dead: is it, and is a
    /// session expected now? One look at the pane (the news may predate a
    /// respawn); `liveness` repeats the news every tick while it holds.
    async fn session_down(&mut self) -> anyhow::Result<Option<Event>> {
        if let Some(watch) = &self.liveness {
            watch.heard();
        }
        if self.ready_deadline.is_some() {
            // Waiting for the prompt: that look reports a dead pane itself.
            return self.ready_check().await;
        }
        // Work waiting for the forge (the session's own start, say) is not
        // done yet: a session missing meanwhile is expected, not dead.
        if !self.state.stage.has_session() || !self.pending.is_empty() {
            return Ok(None);
        }
        if self.ctx.tmux.pane_dead(&self.session).await? == Some(false) {
            return Ok(None);
        }
        Ok(Some(Event::SessionDead))
    }

    /// Is the agent still doing something? No pane output and no phase
    /// written (their files' times) for `idle_timeout` in a stage where it
    /// should be busy is idle. The files are looked at only once the
    /// earliest moment that could be true has come, not at every tick.
    async fn idle(&mut self) -> Option<Event> {
        if !self.state.stage.agent_busy()
            || self.state.escalation.is_some()
            || self.ready_deadline.is_some()
            || !self.pending.is_empty()
        {
            return None;
        }
        let now = std::time::SystemTime::now();
        if self.idle_look_at.is_some_and(|at| now < at) {
            return None;
        }
        let mtime = |p: PathBuf| async move {
            tokio::fs::metadata(p)
                .await
                .ok()
                .and_then(|m| m.modified().ok())
        };
        let last_output = mtime(self.session_dir.join(crate::paths::PANE_LOG)).await;
        let last_phase = mtime(self.phase_file()).await;
        let since_stage: std::time::SystemTime = self.state.stage_since.into();
        let last = [last_output, last_phase, Some(since_stage)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(since_stage);
        let timeout = self.ctx.project.agent.idle_timeout;
        if now.duration_since(last).unwrap_or_default() > timeout {
            return Some(Event::Idle);
        }
        self.idle_look_at = Some(last + timeout);
        None
    }

    /// Paste the chat replies waiting for this issue, when an agent is
    /// there to read them; otherwise they wait in the store (and
    /// `replies_waiting` says to look again at the next tick).
    async fn deliver_chat_replies(&mut self) -> anyhow::Result<()> {
        if !self.state.stage.has_session() || self.ready_deadline.is_some() {
            return Ok(());
        }
        let pending = self
            .ctx
            .store
            .pending_chat_replies(self.ctx.name(), self.issue.0)
            .await?;
        for reply in pending {
            // Queued already, behind an effect a forge outage holds up: it
            // is marked delivered only once pasted.
            let queued = self
                .pending
                .iter()
                .any(|e| matches!(e, Effect::ChatReplyDelivered { id, .. } if *id == reply.id));
            if queued {
                continue;
            }
            self.process(Event::ChatReply {
                id: reply.id,
                event_id: reply.event_id,
                author: reply.author,
                body: reply.body,
            })
            .await?;
        }
        self.replies_waiting = false;
        Ok(())
    }
}
