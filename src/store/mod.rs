//! The SQLite store (`state/forgehand.db`, WAL): what forgehand itself has done.
//! Claims hold each dev actor's persisted state, written before every side
//! effect; the events table is the journal of every decision.

mod chat;
mod migrations;
mod usage;
mod webhooks;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

pub use chat::ChatReply;
pub use migrations::CURRENT as SCHEMA_VERSION;
pub use usage::TokenUsage;
pub use webhooks::DeliveryKey;

/// Where a claim stands as far as the daemon is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimStatus {
    /// A dev actor owns the issue (or should, after a restart).
    Active,
    /// Merged and cleaned up.
    Done,
    /// Handed back (closed or unlabelled meanwhile, or refused).
    Released,
    /// Waiting for a human.
    Blocked,
}

impl ClaimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Active => "active",
            ClaimStatus::Done => "done",
            ClaimStatus::Released => "released",
            ClaimStatus::Blocked => "blocked",
        }
    }

    fn parse(s: &str) -> ClaimStatus {
        match s {
            "done" => ClaimStatus::Done,
            "released" => ClaimStatus::Released,
            "blocked" => ClaimStatus::Blocked,
            _ => ClaimStatus::Active,
        }
    }
}

/// One issue forgehand holds or held. `stage`, `pr` and the counters repeat
/// what `state_json` holds so `status` can show them without knowing the
/// dev actor's types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimRow {
    pub project: String,
    pub issue: u64,
    pub title: String,
    pub status: ClaimStatus,
    pub stage: String,
    pub pr: Option<u64>,
    pub ci_attempts: u32,
    pub review_rounds: u32,
    pub session: String,
    #[serde(skip)]
    pub state_json: String,
    pub claimed_at: DateTime<Utc>,
    pub stage_since: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Kinds of journal entries: one per decision forgehand takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Claimed,
    SessionStarted,
    PromptSent,
    PhaseSeen,
    PhaseInvalid,
    Pushed,
    PrOpened,
    CiState,
    ReviewState,
    Merged,
    Closed,
    CleanedUp,
    Released,
    Pasted,
    /// A human answered in an issue's Matrix thread.
    ChatReply,
    /// A comment by someone without write access, left out of what the agent sees.
    CommentIgnored,
    Error,
    Daemon,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Claimed => "claimed",
            EventKind::SessionStarted => "session_started",
            EventKind::PromptSent => "prompt_sent",
            EventKind::PhaseSeen => "phase_seen",
            EventKind::PhaseInvalid => "phase_invalid",
            EventKind::Pushed => "pushed",
            EventKind::PrOpened => "pr_opened",
            EventKind::CiState => "ci_state",
            EventKind::ReviewState => "review_state",
            EventKind::Merged => "merged",
            EventKind::Closed => "closed",
            EventKind::CleanedUp => "cleaned_up",
            EventKind::Released => "released",
            EventKind::Pasted => "pasted",
            EventKind::ChatReply => "chat_reply",
            EventKind::CommentIgnored => "comment_ignored",
            EventKind::Error => "error",
            EventKind::Daemon => "daemon",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub project: String,
    pub issue: Option<u64>,
    pub kind: String,
    pub detail: String,
}

/// Shared handle to the database. Calls are short (one statement or one
/// transaction on a local WAL database), so they run inline under a mutex.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Open (creating if needed) and migrate the database.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let mut conn = Connection::open(path)
            .with_context(|| format!("opening the database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .context("switching the database to WAL mode")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrations::apply(&mut conn)
            .with_context(|| format!("migrating the database {}", path.display()))?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// Open an existing database read-only for `status` (never creates one).
    pub fn open_existing(path: &Path) -> anyhow::Result<Store> {
        if !path.exists() {
            anyhow::bail!(
                "no database at {} (has `forgehand run` been started with this --state?)",
                path.display()
            );
        }
        Store::open(path)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves the connection usable: SQLite
        // rolls back the unfinished transaction itself.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn journal(
        &self,
        project: &str,
        issue: Option<u64>,
        kind: EventKind,
        detail: &str,
    ) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO events (at, project, issue, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    Utc::now().to_rfc3339(),
                    project,
                    issue,
                    kind.as_str(),
                    detail
                ],
            )
            .context("writing to the journal")?;
        Ok(())
    }

    /// Insert or replace a claim row.
    pub fn save_claim(&self, row: &ClaimRow) -> anyhow::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO claims (project, issue, title, status, stage, pr, ci_attempts,
                    review_rounds, session, state_json, claimed_at, stage_since, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (project, issue) DO UPDATE SET
                    title = excluded.title, status = excluded.status, stage = excluded.stage,
                    pr = excluded.pr, ci_attempts = excluded.ci_attempts,
                    review_rounds = excluded.review_rounds, session = excluded.session,
                    state_json = excluded.state_json, claimed_at = excluded.claimed_at,
                    stage_since = excluded.stage_since, updated_at = excluded.updated_at",
                params![
                    row.project,
                    row.issue,
                    row.title,
                    row.status.as_str(),
                    row.stage,
                    row.pr,
                    row.ci_attempts,
                    row.review_rounds,
                    row.session,
                    row.state_json,
                    row.claimed_at.to_rfc3339(),
                    row.stage_since.to_rfc3339(),
                    row.updated_at.to_rfc3339(),
                ],
            )
            .with_context(|| format!("saving the claim on {}#{}", row.project, row.issue))?;
        Ok(())
    }

    pub fn claim(&self, project: &str, issue: u64) -> anyhow::Result<Option<ClaimRow>> {
        self.conn()
            .query_row(
                &format!("{CLAIM_SELECT} WHERE project = ?1 AND issue = ?2"),
                params![project, issue],
                claim_from_row,
            )
            .optional()
            .context("reading a claim")
    }

    /// Claims, newest first; `None` for every project.
    pub fn claims(
        &self,
        project: Option<&str>,
        status: Option<ClaimStatus>,
    ) -> anyhow::Result<Vec<ClaimRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "{CLAIM_SELECT} WHERE (?1 IS NULL OR project = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY claimed_at DESC, project, issue"
        ))?;
        let rows = stmt
            .query_map(params![project, status.map(|s| s.as_str())], claim_from_row)?
            .collect::<Result<Vec<_>, _>>()
            .context("reading claims")?;
        Ok(rows)
    }

    /// Whether the journal already holds exactly this line: for facts that are
    /// seen again and again but worth one line each (a comment left out).
    pub fn journaled(
        &self,
        project: &str,
        issue: Option<u64>,
        kind: EventKind,
        detail: &str,
    ) -> anyhow::Result<bool> {
        self.conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE project = ?1 AND issue IS ?2
                 AND kind = ?3 AND detail = ?4)",
                params![project, issue, kind.as_str(), detail],
                |r| r.get(0),
            )
            .context("reading the journal")
    }

    /// One issue's journal, oldest first.
    pub fn events(&self, project: &str, issue: Option<u64>) -> anyhow::Result<Vec<EventRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, at, project, issue, kind, detail FROM events
             WHERE project = ?1 AND (?2 IS NULL OR issue = ?2) ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![project, issue], |r| {
                Ok(EventRow {
                    id: r.get(0)?,
                    at: parse_time(&r.get::<_, String>(1)?),
                    project: r.get(2)?,
                    issue: r.get(3)?,
                    kind: r.get(4)?,
                    detail: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()
            .context("reading the journal")?;
        Ok(rows)
    }
}

const CLAIM_SELECT: &str = "SELECT project, issue, title, status, stage, pr, ci_attempts,
    review_rounds, session, state_json, claimed_at, stage_since, updated_at FROM claims";

fn claim_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ClaimRow> {
    Ok(ClaimRow {
        project: r.get(0)?,
        issue: r.get(1)?,
        title: r.get(2)?,
        status: ClaimStatus::parse(&r.get::<_, String>(3)?),
        stage: r.get(4)?,
        pr: r.get(5)?,
        ci_attempts: r.get(6)?,
        review_rounds: r.get(7)?,
        session: r.get(8)?,
        state_json: r.get(9)?,
        claimed_at: parse_time(&r.get::<_, String>(10)?),
        stage_since: parse_time(&r.get::<_, String>(11)?),
        updated_at: parse_time(&r.get::<_, String>(12)?),
    })
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}
