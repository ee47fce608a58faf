//! What the Matrix notifier keeps: each issue's thread root (so a restart
//! posts into the same thread), the sync position (so a restart does not read
//! old replies again) and the human replies waiting for their dev actor.

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Db, Store, parse_time};

/// A human's answer from an issue's Matrix thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatReply {
    pub id: i64,
    pub project: String,
    pub issue: u64,
    /// The Matrix user id of the sender.
    pub author: String,
    pub body: String,
    /// The Matrix event id, unique: the same event is never recorded twice.
    pub event_id: String,
    pub received_at: DateTime<Utc>,
}

impl Db {
    /// Record a reply; `false` if this event was already recorded (a replayed
    /// sync), so the caller does not announce it twice.
    pub fn add_chat_reply(
        &self,
        project: &str,
        issue: u64,
        author: &str,
        body: &str,
        event_id: &str,
    ) -> anyhow::Result<bool> {
        let inserted = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO chat_replies (project, issue, author, body, event_id, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![project, issue, author, body, event_id, Utc::now().to_rfc3339()],
            )
            .with_context(|| format!("recording the chat reply {event_id} on {project}#{issue}"))?;
        Ok(inserted == 1)
    }

    /// Replies not yet delivered to the agent, oldest first.
    pub fn pending_chat_replies(
        &self,
        project: &str,
        issue: u64,
    ) -> anyhow::Result<Vec<ChatReply>> {
        let mut stmt = self.conn().prepare(
            "SELECT id, project, issue, author, body, event_id, received_at FROM chat_replies
             WHERE project = ?1 AND issue = ?2 AND delivered_at IS NULL ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![project, issue], |r| {
                Ok(ChatReply {
                    id: r.get(0)?,
                    project: r.get(1)?,
                    issue: r.get(2)?,
                    author: r.get(3)?,
                    body: r.get(4)?,
                    event_id: r.get(5)?,
                    received_at: parse_time(&r.get::<_, String>(6)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("reading pending chat replies of {project}#{issue}"))?;
        Ok(rows)
    }

    pub fn mark_chat_reply_delivered(&self, id: i64) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "UPDATE chat_replies SET delivered_at = ?2 WHERE id = ?1",
                params![id, Utc::now().to_rfc3339()],
            )
            .with_context(|| format!("marking chat reply {id} delivered"))?;
        Ok(())
    }

    /// The event id of the issue's thread root, if one was posted.
    pub fn matrix_thread(&self, project: &str, issue: u64) -> anyhow::Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT root_event_id FROM matrix_threads WHERE project = ?1 AND issue = ?2",
                params![project, issue],
                |r| r.get(0),
            )
            .optional()
            .with_context(|| format!("reading the Matrix thread of {project}#{issue}"))
    }

    pub fn set_matrix_thread(
        &self,
        project: &str,
        issue: u64,
        root_event_id: &str,
    ) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO matrix_threads (project, issue, root_event_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project, issue) DO UPDATE SET root_event_id = excluded.root_event_id",
                params![project, issue, root_event_id, Utc::now().to_rfc3339()],
            )
            .with_context(|| format!("saving the Matrix thread of {project}#{issue}"))?;
        Ok(())
    }

    /// Which of the project's issues a thread root belongs to.
    pub fn matrix_thread_issue(
        &self,
        project: &str,
        root_event_id: &str,
    ) -> anyhow::Result<Option<u64>> {
        self.conn()
            .query_row(
                "SELECT issue FROM matrix_threads WHERE project = ?1 AND root_event_id = ?2",
                params![project, root_event_id],
                |r| r.get(0),
            )
            .optional()
            .with_context(|| format!("looking up the Matrix thread {root_event_id}"))
    }

    /// The `next_batch` of the last sync under `key` (one per notifier).
    pub fn matrix_sync_token(&self, key: &str) -> anyhow::Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT token FROM matrix_sync WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .with_context(|| format!("reading the Matrix sync token of {key}"))
    }

    pub fn set_matrix_sync_token(&self, key: &str, token: &str) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO matrix_sync (key, token, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET token = excluded.token,
                    updated_at = excluded.updated_at",
                params![key, token, Utc::now().to_rfc3339()],
            )
            .with_context(|| format!("saving the Matrix sync token of {key}"))?;
        Ok(())
    }
}

/// The same, for the daemon's async callers: run on the store thread.
impl Store {
    /// Record a reply; `false` if this event was already recorded.
    pub async fn add_chat_reply(
        &self,
        project: &str,
        issue: u64,
        author: &str,
        body: &str,
        event_id: &str,
    ) -> anyhow::Result<bool> {
        let (project, author, body, event_id) = (
            project.to_string(),
            author.to_string(),
            body.to_string(),
            event_id.to_string(),
        );
        self.call(move |db| db.add_chat_reply(&project, issue, &author, &body, &event_id))
            .await
    }

    /// Replies not yet delivered to the agent, oldest first.
    pub async fn pending_chat_replies(
        &self,
        project: &str,
        issue: u64,
    ) -> anyhow::Result<Vec<ChatReply>> {
        let project = project.to_string();
        self.call(move |db| db.pending_chat_replies(&project, issue))
            .await
    }

    pub async fn mark_chat_reply_delivered(&self, id: i64) -> anyhow::Result<()> {
        self.call(move |db| db.mark_chat_reply_delivered(id)).await
    }

    /// The event id of the issue's thread root, if one was posted.
    pub async fn matrix_thread(&self, project: &str, issue: u64) -> anyhow::Result<Option<String>> {
        let project = project.to_string();
        self.call(move |db| db.matrix_thread(&project, issue)).await
    }

    pub async fn set_matrix_thread(
        &self,
        project: &str,
        issue: u64,
        root_event_id: &str,
    ) -> anyhow::Result<()> {
        let (project, root) = (project.to_string(), root_event_id.to_string());
        self.call(move |db| db.set_matrix_thread(&project, issue, &root))
            .await
    }

    /// Which of the project's issues a thread root belongs to.
    pub async fn matrix_thread_issue(
        &self,
        project: &str,
        root_event_id: &str,
    ) -> anyhow::Result<Option<u64>> {
        let (project, root) = (project.to_string(), root_event_id.to_string());
        self.call(move |db| db.matrix_thread_issue(&project, &root))
            .await
    }

    /// The `next_batch` of the last sync under `key` (one per notifier).
    pub async fn matrix_sync_token(&self, key: &str) -> anyhow::Result<Option<String>> {
        let key = key.to_string();
        self.call(move |db| db.matrix_sync_token(&key)).await
    }

    pub async fn set_matrix_sync_token(&self, key: &str, token: &str) -> anyhow::Result<()> {
        let (key, token) = (key.to_string(), token.to_string());
        self.call(move |db| db.set_matrix_sync_token(&key, &token))
            .await
    }
}
