//! Every waiting time of the actor tree in one place, passed to the actors in
//! their `Args`: the defaults suit a daemon; tests and impatient operators
//! set them through `FORGEHAND_TIMINGS` (`name=duration,…`, e.g.
//! `outage_max=5s,ready_timeout=30s`) instead of waiting real minutes.

use std::time::Duration;

use crate::config::duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// A failed actor is restarted after this, doubling per failure…
    pub restart_first: Duration,
    /// …up to this.
    pub restart_max: Duration,
    /// A dev actor failing `max_failures` times within this is given up on.
    pub failure_window: Duration,
    pub max_failures: u32,
    /// How long an agent may take to show its ready prompt.
    pub ready_timeout: Duration,
    /// How often the pane is looked at while waiting for the prompt.
    pub ready_poll: Duration,
    /// With the forge reporting its own changes, a waiting dev actor looks
    /// at the forge itself only every this many ticks.
    pub safety_net_ticks: u32,
    /// Work that met a forge outage is tried again after this, doubling…
    pub outage_first: Duration,
    /// …up to this.
    pub outage_max: Duration,
    /// After an agent reports its exit, how long until its pane is looked at.
    pub exit_grace: Duration,
    /// The longest one git command may take.
    pub git_timeout: Duration,
    /// How often a working agent's token use is read (for its budget and
    /// the spend people see) when nothing else happens.
    pub spend_every: Duration,
    /// The longest the liveness watch goes without listing the tmux
    /// sessions (one call for all of them), however slowly the projects
    /// poll: the safety net under tmux's events.
    pub liveness_safety_net: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            restart_first: Duration::from_secs(1),
            restart_max: Duration::from_secs(60),
            failure_window: Duration::from_secs(600),
            max_failures: 5,
            ready_timeout: Duration::from_secs(180),
            ready_poll: Duration::from_millis(150),
            safety_net_ticks: 10,
            outage_first: Duration::from_secs(1),
            outage_max: Duration::from_secs(60),
            exit_grace: Duration::from_millis(500),
            git_timeout: crate::git::DEFAULT_TIMEOUT,
            spend_every: Duration::from_secs(10),
            liveness_safety_net: Duration::from_secs(30),
        }
    }
}

impl Timings {
    /// The defaults changed by `spec` (`name=value,…`; durations as in
    /// project files, counts as whole numbers).
    pub fn parse(spec: &str) -> Result<Timings, String> {
        let mut t = Timings::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not name=value"))?;
            let (name, value) = (name.trim(), value.trim());
            let dur = || duration::parse(value).map_err(|e| format!("{name}: {e}"));
            let count = || {
                value
                    .parse::<u32>()
                    .map_err(|_| format!("{name}: {value:?} is not a whole number"))
            };
            match name {
                "restart_first" => t.restart_first = dur()?,
                "restart_max" => t.restart_max = dur()?,
                "failure_window" => t.failure_window = dur()?,
                "max_failures" => t.max_failures = count()?,
                "ready_timeout" => t.ready_timeout = dur()?,
                "ready_poll" => t.ready_poll = dur()?,
                "safety_net_ticks" => t.safety_net_ticks = count()?.max(1),
                "outage_first" => t.outage_first = dur()?,
                "outage_max" => t.outage_max = dur()?,
                "exit_grace" => t.exit_grace = dur()?,
                "git_timeout" => t.git_timeout = dur()?,
                "spend_every" => t.spend_every = dur()?,
                "liveness_safety_net" => t.liveness_safety_net = dur()?,
                other => return Err(format!("unknown timing {other:?}")),
            }
        }
        Ok(t)
    }

    /// The restart delay after `attempt` failures (1-based).
    pub fn restart_backoff(&self, attempt: u32) -> Duration {
        self.restart_first
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.restart_max)
    }

    /// A fresh outage tracker with these backoffs.
    pub fn outage(&self) -> super::outage::Outage {
        super::outage::Outage::new(self.outage_first, self.outage_max)
    }
}
