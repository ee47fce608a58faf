//! What the poller and the merge scanner share: a `poll_interval` timer whose
//! first tick comes at once, coalescing of triggers (ticks, nudges) into one
//! queued run, how current a run's answers must be, and how the safety net's
//! looks are spread over the runs.

use std::time::{Duration, Instant};

use ractor::{ActorProcessingErr, ActorRef, Message};
use tokio::task::JoinHandle;

#[derive(Default)]
pub struct Periodic {
    ticker: Option<JoinHandle<()>>,
    /// A run is queued: further triggers only add to what it will look at.
    scheduled: bool,
}

impl Periodic {
    /// Tick now and then every `every`. ractor's interval swallows its
    /// immediate first tick, so the first one is sent here.
    pub fn start<M, F>(
        &mut self,
        myself: &ActorRef<M>,
        every: Duration,
        tick: F,
    ) -> Result<(), ActorProcessingErr>
    where
        M: Message,
        F: Fn() -> M + Send + 'static,
    {
        myself.send_message(tick())?;
        self.ticker = Some(myself.send_interval(every, tick));
        Ok(())
    }

    /// A trigger arrived: queue `run` unless one is queued already. A burst of
    /// triggers costs one run, and the last of them is never lost: it arrived
    /// before the queued run is handled.
    pub fn trigger<M: Message>(
        &mut self,
        myself: &ActorRef<M>,
        run: M,
    ) -> Result<(), ActorProcessingErr> {
        if !self.scheduled {
            self.scheduled = true;
            myself.send_message(run)?;
        }
        Ok(())
    }

    /// The queued run starts: the next trigger queues another.
    pub fn running(&mut self) {
        self.scheduled = false;
    }

    pub fn stop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}

/// After this many poll intervals what was found not ready (an issue waiting,
/// a pull request not green) is looked at again even if nothing said it
/// changed: the safety net for a webhook that never came and for what the
/// forge does not stamp (a CI status).
pub const RECHECK_CYCLES: u32 = 10;

/// How recent a look at the forge a run begun at `started` can take as its
/// own: one begun since, after a nudge (something changed just now), else
/// one from the last half interval. The poller and the merge scanner run on
/// the same beat, so whichever asks first answers for both.
pub fn as_of(started: Instant, every: Duration, nudged: bool) -> Instant {
    if nudged {
        return started;
    }
    started.checked_sub(every / 2).unwrap_or(started)
}

/// How many of `due` safety-net looks a run spends: enough that each comes
/// round within `RECHECK_CYCLES` runs, at least one, so they are spread over
/// the runs rather than all made in one.
pub fn safety_net_share(due: usize) -> usize {
    due.div_ceil(RECHECK_CYCLES as usize).max(1)
}
