//! A forge outage as one actor lives through it (or a homeserver's, as the
//! Matrix notifier does): noticed once (one journal line, `forge unreachable
//! since …`), the failed work tried again after a
//! backoff that doubles up to a cap, and its end noticed once. Nothing in it
//! counts towards giving an issue up.

use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct Outage {
    /// When the first failure of the current outage happened.
    since: Option<DateTime<Utc>>,
    /// Failures since then.
    attempts: u32,
    first: Duration,
    max: Duration,
    /// What is out of reach, as the journal lines name it.
    what: &'static str,
}

impl Outage {
    /// No outage yet; retries wait `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Outage {
        Outage::of("forge", first, max)
    }

    /// The same for something other than the forge (`homeserver`).
    pub fn of(what: &'static str, first: Duration, max: Duration) -> Outage {
        Outage {
            since: None,
            attempts: 0,
            first,
            max,
            what,
        }
    }

    pub fn is_down(&self) -> bool {
        self.since.is_some()
    }

    pub fn since(&self) -> Option<DateTime<Utc>> {
        self.since
    }

    /// A transient failure at `now`: the journal line when it starts an
    /// outage, and how long to wait before trying again.
    pub fn failed(
        &mut self,
        now: DateTime<Utc>,
        error: &anyhow::Error,
    ) -> (Option<String>, Duration) {
        self.attempts += 1;
        let line = match self.since {
            Some(_) => None,
            None => {
                self.since = Some(now);
                Some(format!(
                    "{} unreachable since {}: {error:#}; trying again with backoff",
                    self.what,
                    now.format("%Y-%m-%d %H:%M:%S UTC")
                ))
            }
        };
        let wait = self
            .first
            .saturating_mul(2u32.saturating_pow(self.attempts.saturating_sub(1)))
            .min(self.max);
        (line, wait)
    }

    /// A call got through at `now`: the journal line when an outage ended.
    pub fn recovered(&mut self, now: DateTime<Utc>) -> Option<String> {
        let since = self.since.take()?;
        self.attempts = 0;
        let lasted = (now - since).to_std().unwrap_or_default();
        Some(format!(
            "{} reachable again after {}s",
            self.what,
            lasted.as_secs()
        ))
    }
}
