//! Whether the agents' sessions are still there, learnt from tmux rather than
//! asked session by session: forgehand's hooks on the tmux server signal
//! when a pane dies or a session closes, and one tmux call at a time lists
//! every session's state, then waits for that signal (a *round*,
//! `tmux::LivenessRound`). The kernel tells when a listed pane's process
//! ends (`exits`): tmux may lose that news (`tmux/liveness.rs`), so the
//! monitor lists again then, and again shortly after while tmux still shows
//! the pane alive. Every `poll_interval` (at most `liveness_safety_net`) a
//! new round starts anyway, as the safety net for news that never came (a
//! server killed, hooks removed by hand).
//!
//! So the cost of watching is one tmux call per event or tick for all
//! sessions together, not one per session and tick. The dev actor told
//! (`DevMsg::SessionDown`) looks at its own pane before acting: the listing
//! may predate a respawn. A session is reported once it was listed (not
//! while it is still being made), again at every listing while it stays
//! down, but not while the last report waits in the actor's mailbox (unless
//! it has waited `REPORT_AGAIN`).

mod exits;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{ActorId, ActorRef};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::DevMsg;
use crate::tmux::{LivenessRound, PaneState, Tmux};
use exits::Exits;

/// The watched sessions: tmux session name → the dev actor to tell.
#[derive(Default)]
struct Routes {
    sessions: Mutex<HashMap<String, Route>>,
    /// A session was added or started: the monitor wakes from having
    /// nothing to watch, or waits again where there was no server.
    added: Notify,
}

struct Route {
    actor: ActorRef<DevMsg>,
    /// The session was in a listing since the watch began: missing from
    /// one now means it went away, not that it is yet to be made.
    listed: bool,
    /// When a `SessionDown` was sent that the actor has not taken yet.
    reported: Reported,
}

impl Routes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Route>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// When the last `SessionDown` the actor has not taken yet was sent.
type Reported = Arc<Mutex<Option<Instant>>>;

/// A report not taken this long is sent again (a safety valve: the actor
/// takes each one within moments unless it is busy).
const REPORT_AGAIN: Duration = Duration::from_secs(5);

/// The daemon's one liveness monitor for its tmux server; cheap to clone.
#[derive(Clone)]
pub struct Liveness {
    routes: Arc<Routes>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Liveness {
    /// Starts watching the sessions on `tmux`'s server, with the safety net's
    /// listing every `every`. Needs a tokio runtime; the watching ends when
    /// the last clone is dropped.
    pub fn start(tmux: Tmux, every: Duration) -> Liveness {
        let routes = Arc::new(Routes::default());
        let task = tokio::spawn(monitor(routes.clone(), tmux, every));
        Liveness {
            routes,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// Tell `actor` when `session` is gone or its pane dead, until the
    /// returned watch is dropped.
    pub fn watch(&self, session: &str, actor: ActorRef<DevMsg>) -> SessionWatch {
        let id = actor.get_id();
        let reported = Reported::default();
        let route = Route {
            actor,
            listed: false,
            reported: reported.clone(),
        };
        self.routes.lock().insert(session.to_owned(), route);
        self.routes.added.notify_one();
        SessionWatch {
            routes: self.routes.clone(),
            session: session.to_owned(),
            actor: id,
            reported,
        }
    }
}

/// A watched session; dropping it ends the watch.
pub struct SessionWatch {
    routes: Arc<Routes>,
    session: String,
    actor: ActorId,
    reported: Reported,
}

impl SessionWatch {
    /// The actor took the last `SessionDown`: the next listing that finds
    /// the session down may report it again.
    pub fn heard(&self) {
        *self.reported.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The session exists now (started or adopted): missing from a listing
    /// from now on, it went away; and there is a server to wait on.
    pub fn started(&self) {
        if let Some(route) = self.routes.lock().get_mut(&self.session)
            && route.actor.get_id() == self.actor
        {
            route.listed = true;
        }
        self.routes.added.notify_one();
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        let mut sessions = self.routes.lock();
        // A newer actor for the same session keeps its watch.
        if sessions
            .get(&self.session)
            .is_some_and(|r| r.actor.get_id() == self.actor)
        {
            sessions.remove(&self.session);
        }
    }
}

/// What woke the monitor.
enum Wake {
    /// The round's wait ended: a hook signalled, or the server went away.
    Ended,
    /// The safety net's time.
    Tick,
    /// A session was added or started, or a failed round is to be retried.
    Retry,
    /// A watched pane's process ended (its session and pid).
    Exited(String, u32),
    /// Time to look again at panes whose process ended but which tmux
    /// still showed alive.
    Recheck,
}

/// After a round that found no server, the longest wait before another,
/// should no session start meanwhile.
const RETRY: Duration = Duration::from_secs(5);

/// A pane whose process ended is listed again after this, doubling up to
/// `RECHECK_MAX`, until tmux shows it dead (within milliseconds, normally)…
const RECHECK_FIRST: Duration = Duration::from_millis(20);
const RECHECK_MAX: Duration = Duration::from_secs(1);
/// …or until this has passed: something else holds the pane open (a
/// process the agent left behind), and `pane-died` comes when it lets go.
const RECHECK_FOR: Duration = Duration::from_secs(60);

/// Panes whose process ended while tmux still listed them alive.
#[derive(Default)]
struct Ended {
    /// Session → the ended pid and when its end was learnt.
    panes: HashMap<String, (u32, Instant)>,
    /// The next look, and the wait after it.
    next: Option<(tokio::time::Instant, Duration)>,
}

impl Ended {
    fn add(&mut self, session: String, pid: u32) {
        self.panes.insert(session, (pid, Instant::now()));
        self.next = None;
    }

    /// After a listing: those still shown alive with the ended process
    /// stay, for a look again after the next wait.
    fn listed(&mut self, states: &HashMap<String, PaneState>) {
        self.panes.retain(|session, (pid, since)| {
            since.elapsed() < RECHECK_FOR
                && states
                    .get(session)
                    .is_some_and(|s| !s.dead && s.pid == Some(*pid))
        });
        self.next = match (self.panes.is_empty(), self.next) {
            (true, _) => None,
            (false, None) => Some((tokio::time::Instant::now() + RECHECK_FIRST, RECHECK_FIRST)),
            (false, Some((_, wait))) => {
                let wait = (wait * 2).min(RECHECK_MAX);
                Some((tokio::time::Instant::now() + wait, wait))
            }
        };
    }
}

async fn monitor(routes: Arc<Routes>, tmux: Tmux, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The round under way: its listing was looked at, its wait goes on.
    let mut round: Option<LivenessRound> = None;
    // A round found no server (or failed): try again when a session starts,
    // at the next tick or after `RETRY`, not in a loop.
    let mut failed = false;
    let retry = RETRY.min(every);
    let mut exits = Exits::new();
    let mut ended = Ended::default();
    loop {
        if routes.lock().is_empty() {
            // Nothing to watch: no tmux process at all.
            round = None;
            exits.retain(|_| false);
            ended = Ended::default();
            routes.added.notified().await;
            continue;
        }
        if round.is_none() && !failed {
            match tmux.liveness_round().await {
                Ok((waiting, states)) => {
                    tracing::debug!(
                        listed = states.len(),
                        waiting = waiting.is_some(),
                        "liveness round"
                    );
                    failed = waiting.is_none();
                    round = waiting;
                    look(&routes, &states, &mut exits);
                    ended.listed(&states);
                }
                Err(e) => {
                    tracing::warn!("watching the tmux sessions: {e:#}");
                    failed = true;
                }
            }
        }
        let recheck = ended.next.map(|(at, _)| at);
        let woken = tokio::select! {
            () = async { round.as_mut().expect("guarded").ended().await }, if round.is_some() => {
                Wake::Ended
            }
            _ = ticker.tick() => Wake::Tick,
            _ = routes.added.notified() => Wake::Retry,
            _ = tokio::time::sleep(retry), if failed => Wake::Retry,
            (session, pid) = exits.next() => Wake::Exited(session, pid),
            () = tokio::time::sleep_until(recheck.unwrap_or_else(tokio::time::Instant::now)),
                if recheck.is_some() => Wake::Recheck,
        };
        match woken {
            // The next round lists what the signal was about.
            Wake::Ended => round = None,
            // A new listing, whether or not anything signalled.
            Wake::Tick => {
                round = None;
                failed = false;
            }
            // A new session: nothing to list yet, but maybe a server to
            // wait on now.
            Wake::Retry => failed = false,
            // tmux may not say so itself: list now, and again while it
            // still shows the pane alive.
            Wake::Exited(session, pid) => {
                tracing::debug!(session, pid, "agent process ended");
                ended.add(session, pid);
                round = None;
                failed = false;
            }
            Wake::Recheck => {
                round = None;
                failed = false;
            }
        }
    }
}

/// Reports each watched session found gone or dead to its dev actor, and
/// watches the process of each one alive.
fn look(routes: &Routes, states: &HashMap<String, PaneState>, exits: &mut Exits) {
    let mut routes = routes.lock();
    exits.retain(|session| {
        routes.contains_key(session) && states.get(session).is_some_and(|s| !s.dead)
    });
    for (session, route) in routes.iter_mut() {
        let state = states.get(session);
        route.listed |= state.is_some();
        let down = match state {
            Some(state) => state.dead,
            None => route.listed,
        };
        if !down {
            if let Some(pid) = state.and_then(|s| s.pid) {
                exits.watch(session, pid);
            }
            continue;
        }
        let mut reported = route.reported.lock().unwrap_or_else(|e| e.into_inner());
        if reported.is_none_or(|at| at.elapsed() >= REPORT_AGAIN) {
            *reported = Some(Instant::now());
            tracing::debug!(session, "session down");
            // The actor may be stopping; its watch goes with it.
            let _ = route.actor.send_message(DevMsg::SessionDown);
        }
    }
}
