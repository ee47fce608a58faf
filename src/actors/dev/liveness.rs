//! Whether the agents' sessions are still there, learnt from tmux rather than
//! asked session by session: forgehand's hooks on the tmux server signal
//! when a pane dies or a session closes, and one tmux call at a time lists
//! every session's state, then waits for that signal (a *round*,
//! `tmux::LivenessRound`). Every `poll_interval` a new round starts anyway,
//! as the safety net for a signal that never came (a server killed, hooks
//! removed by hand).
//!
//! So the cost of watching is one tmux call per event or tick for all
//! sessions together, not one per session and tick. The dev actor told
//! (`DevMsg::SessionDown`) looks at its own pane before acting: the listing
//! may predate a respawn. A session is reported once it was listed (not
//! while it is still being made), again at every listing while it stays
//! down, but not while the last report waits in the actor's mailbox (unless
//! it has waited `REPORT_AGAIN`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{ActorId, ActorRef};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::DevMsg;
use crate::tmux::{LivenessRound, Tmux};

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
}

/// After a round that found no server, the longest wait before another,
/// should no session start meanwhile.
const RETRY: Duration = Duration::from_secs(5);

async fn monitor(routes: Arc<Routes>, tmux: Tmux, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The round under way: its listing was looked at, its wait goes on.
    let mut round: Option<LivenessRound> = None;
    // A round found no server (or failed): try again when a session starts,
    // at the next tick or after `RETRY`, not in a loop.
    let mut failed = false;
    let retry = RETRY.min(every);
    loop {
        if routes.lock().is_empty() {
            // Nothing to watch: no tmux process at all.
            round = None;
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
                    look(&routes, &states);
                }
                Err(e) => {
                    tracing::warn!("watching the tmux sessions: {e:#}");
                    failed = true;
                }
            }
        }
        let woken = tokio::select! {
            () = async { round.as_mut().expect("guarded").ended().await }, if round.is_some() => {
                Wake::Ended
            }
            _ = ticker.tick() => Wake::Tick,
            _ = routes.added.notified() => Wake::Retry,
            _ = tokio::time::sleep(retry), if failed => Wake::Retry,
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
        }
    }
}

/// Reports each watched session found gone or dead to its dev actor.
fn look(routes: &Routes, states: &HashMap<String, bool>) {
    for (session, route) in routes.lock().iter_mut() {
        let state = states.get(session);
        route.listed |= state.is_some();
        let down = match state {
            Some(dead) => *dead,
            None => route.listed,
        };
        if !down {
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
