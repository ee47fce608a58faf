//! What the poller and the merge scanner share: a `poll_interval` timer whose
//! first tick comes at once, and coalescing of triggers (ticks, nudges) into
//! one queued run.

use std::time::Duration;

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
