//! The chat outbox: every message forgehand owes the chat, kept from before
//! the first attempt until the homeserver has accepted it, so neither an
//! outage nor a restart loses one. The payload is the channel's own
//! (opaque here); rows are taken oldest first per project, which keeps each
//! issue thread in order.

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Db, Store, parse_time};

/// One message waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Never reused (AUTOINCREMENT), so with `created_at` it names the
    /// message's transaction for good.
    pub id: i64,
    pub project: String,
    pub issue: u64,
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

/// How much of a project's chat is waiting, for `forgehand status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxSummary {
    pub project: String,
    pub waiting: u64,
    /// When the oldest waiting message was written.
    pub since: DateTime<Utc>,
}

impl Db {
    /// Add a message behind the project's others; its id.
    pub fn outbox_push(&self, project: &str, issue: u64, payload: &str) -> anyhow::Result<i64> {
        self.conn()
            .execute(
                "INSERT INTO chat_outbox (project, issue, payload, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![project, issue, payload, Utc::now().to_rfc3339()],
            )
            .with_context(|| {
                format!("writing a chat message for {project}#{issue} to the outbox")
            })?;
        Ok(self.conn().last_insert_rowid())
    }

    /// The project's oldest waiting message.
    pub fn outbox_next(&self, project: &str) -> anyhow::Result<Option<OutboxRow>> {
        self.conn()
            .query_row(
                "SELECT id, project, issue, payload, created_at FROM chat_outbox
                 WHERE project = ?1 ORDER BY id LIMIT 1",
                params![project],
                |r| {
                    Ok(OutboxRow {
                        id: r.get(0)?,
                        project: r.get(1)?,
                        issue: r.get(2)?,
                        payload: r.get(3)?,
                        created_at: parse_time(&r.get::<_, String>(4)?),
                    })
                },
            )
            .optional()
            .with_context(|| format!("reading the chat outbox of {project}"))
    }

    /// The message was accepted (or given up on): it is owed no longer.
    pub fn outbox_remove(&self, id: i64) -> anyhow::Result<()> {
        self.conn()
            .execute("DELETE FROM chat_outbox WHERE id = ?1", params![id])
            .with_context(|| format!("removing message {id} from the chat outbox"))?;
        Ok(())
    }

    /// Drop every message the project owes the chat; how many there were.
    pub fn outbox_clear(&self, project: &str) -> anyhow::Result<usize> {
        if !self.has_outbox() {
            return Ok(0);
        }
        self.conn()
            .execute(
                "DELETE FROM chat_outbox WHERE project = ?1",
                params![project],
            )
            .with_context(|| format!("clearing the chat outbox of {project}"))
    }

    /// How many messages wait per project and since when; empty for a
    /// schema from before the outbox.
    pub fn outbox_summary(&self) -> anyhow::Result<Vec<OutboxSummary>> {
        if !self.has_outbox() {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn().prepare(
            "SELECT project, count(*), min(created_at) FROM chat_outbox
             GROUP BY project ORDER BY project",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(OutboxSummary {
                    project: r.get(0)?,
                    waiting: r.get(1)?,
                    since: parse_time(&r.get::<_, String>(2)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()
            .context("reading the chat outbox")?;
        Ok(rows)
    }
}

/// The same, for the daemon's async callers: run on the store thread.
impl Store {
    /// Queue the write of a message without waiting for it, like
    /// [`Store::journal`]: usable from sync code (a notifier's `notify`), and
    /// written before any later call, so the dev actor's next awaited save
    /// finds it on disk and the sender's next read sees it. A failing write
    /// is logged by the store thread.
    pub fn queue_outbox(&self, project: &str, issue: u64, payload: String) -> anyhow::Result<()> {
        let project = project.to_string();
        self.send(Box::new(move |db| {
            if let Err(e) = db.outbox_push(&project, issue, &payload) {
                tracing::error!(project, issue, "a chat message is lost: {e:#}");
            }
        }))
    }

    pub async fn outbox_next(&self, project: &str) -> anyhow::Result<Option<OutboxRow>> {
        let project = project.to_string();
        self.call(move |db| db.outbox_next(&project)).await
    }

    pub async fn outbox_remove(&self, id: i64) -> anyhow::Result<()> {
        self.call(move |db| db.outbox_remove(id)).await
    }

    pub async fn outbox_clear(&self, project: &str) -> anyhow::Result<usize> {
        let project = project.to_string();
        self.call(move |db| db.outbox_clear(&project)).await
    }

    pub async fn outbox_summary(&self) -> anyhow::Result<Vec<OutboxSummary>> {
        self.call(|db| db.outbox_summary()).await
    }
}
