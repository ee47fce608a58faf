//! Webhook deliveries already acted on: a forge redelivers on timeouts and on
//! a human's "redeliver" click, and a replay must not nudge twice, even across
//! a restart.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use rusqlite::params;

use super::{Db, Store};

/// How a delivery is recognised when it comes again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryKey {
    /// The forge's delivery id (`forgejo:<uuid>`), the same on every redelivery.
    Id(String),
    /// The hex SHA-256 of a body that came without an id (`forgejo:<hash>`).
    Body(String),
}

impl DeliveryKey {
    fn kind(&self) -> &'static str {
        match self {
            DeliveryKey::Id(_) => "id",
            DeliveryKey::Body(_) => "body",
        }
    }

    fn key(&self) -> &str {
        match self {
            DeliveryKey::Id(key) | DeliveryKey::Body(key) => key,
        }
    }
}

/// How long a delivery id is remembered; forges redeliver within minutes, so a
/// day is ample and keeps the table small.
const ID_MEMORY: Duration = Duration::hours(24);

/// How long a body hash is remembered: long enough for a sender's retries, short
/// because two real events can send identical bodies (a label added, removed
/// and added again) and the later one should nudge again.
const BODY_MEMORY: Duration = Duration::hours(1);

impl Db {
    /// Remember a delivery; `false` if it was already recorded (a replay).
    /// Deliveries past their memory are forgotten on the way.
    pub fn record_delivery(&self, delivery: &DeliveryKey) -> anyhow::Result<bool> {
        let now = Utc::now();
        self.prune_deliveries(now)?;
        let inserted = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO webhook_deliveries (kind, key, received_at)
                 VALUES (?1, ?2, ?3)",
                params![delivery.kind(), delivery.key(), now.to_rfc3339()],
            )
            .with_context(|| format!("recording the webhook delivery {delivery:?}"))?;
        Ok(inserted == 1)
    }

    /// Forget the deliveries whose memory has passed by `now` (a day for ids,
    /// an hour for body hashes); returns how many.
    pub fn prune_deliveries(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        // RFC 3339 timestamps in UTC written by `to_rfc3339` sort as text.
        self.conn()
            .execute(
                "DELETE FROM webhook_deliveries
                 WHERE (kind = 'id' AND received_at < ?1)
                    OR (kind = 'body' AND received_at < ?2)",
                params![
                    (now - ID_MEMORY).to_rfc3339(),
                    (now - BODY_MEMORY).to_rfc3339()
                ],
            )
            .context("pruning old webhook deliveries")
    }
}

/// The same, for the daemon's async callers: run on the store thread.
impl Store {
    /// Remember a delivery; `false` if it was already recorded (a replay).
    pub async fn record_delivery(&self, delivery: &DeliveryKey) -> anyhow::Result<bool> {
        let delivery = delivery.clone();
        self.call(move |db| db.record_delivery(&delivery)).await
    }
}
