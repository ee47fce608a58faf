//! Webhook delivery ids already acted on: a forge redelivers on timeouts and on
//! a human's "redeliver" click, and a replay must not nudge twice, even across
//! a restart.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use rusqlite::params;

use super::Store;

/// How long a delivery id is remembered; forges redeliver within minutes, so a
/// day is ample and keeps the table small.
const DELIVERY_MEMORY: Duration = Duration::hours(24);

impl Store {
    /// Remember a delivery id; `false` if it was already recorded (a replay).
    /// Ids older than a day are forgotten on the way.
    pub fn record_delivery(&self, id: &str) -> anyhow::Result<bool> {
        let now = Utc::now();
        self.prune_deliveries(now - DELIVERY_MEMORY)?;
        let inserted = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO webhook_deliveries (id, received_at) VALUES (?1, ?2)",
                params![id, now.to_rfc3339()],
            )
            .with_context(|| format!("recording the webhook delivery {id}"))?;
        Ok(inserted == 1)
    }

    /// Forget delivery ids received before `before`; returns how many.
    pub fn prune_deliveries(&self, before: DateTime<Utc>) -> anyhow::Result<usize> {
        // RFC 3339 timestamps in UTC written by `to_rfc3339` sort as text.
        self.conn()
            .execute(
                "DELETE FROM webhook_deliveries WHERE received_at < ?1",
                params![before.to_rfc3339()],
            )
            .context("pruning old webhook deliveries")
    }
}
