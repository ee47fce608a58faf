//! [`Db`]: one SQLite connection, opened read-write (migrating) for the
//! daemon's store thread and tests, or read-only for `forgehand status`, and
//! the claim and journal queries. The other tables' queries live beside
//! their concern (`chat.rs`, `usage.rs`, `webhooks.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{ClaimRow, ClaimStatus, EventKind, EventRow, Runner, Waiting, migrations, parse_time};

/// How long a call waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection to the database.
pub struct Db {
    conn: Connection,
    /// What the schema holds: a read-only open reads an older schema as it
    /// is, without the tables and columns later migrations added.
    schema: Schema,
}

#[derive(Debug, Clone, Copy)]
struct Schema {
    /// `claims.head` and `claims.waiting`.
    claim_facts: bool,
    /// The `token_usage` table.
    usage: bool,
    /// `claims.runner`.
    runner: bool,
    /// The `chat_outbox` table.
    outbox: bool,
    /// `spend_daily`, `picking_stops` and `token_usage.cost_micros`.
    pub(super) spend: bool,
    /// `owed_effects`.
    owed: bool,
    /// The `budget_limits` table.
    pub(super) limits: bool,
}

impl Db {
    /// Open (creating if needed) and migrate the database, in WAL mode.
    pub fn open(path: &Path) -> anyhow::Result<Db> {
        let mut conn = Connection::open(path)
            .with_context(|| format!("opening the database {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .context("switching the database to WAL mode")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrations::apply(&mut conn)
            .with_context(|| format!("migrating the database {}", path.display()))?;
        let schema = Schema::of(&conn)?;
        Ok(Db { conn, schema })
    }

    /// Open an existing database for reading only, as `forgehand status`
    /// does: the file is never created, migrated or switched to another
    /// journal mode, and no `-wal`/`-shm` file is left beside it. An older
    /// schema is read as it is; a newer one is refused.
    ///
    /// While a writer has the database open, its `-wal` file exists and the
    /// connection reads through it. Without one, SQLite would still create
    /// (and, read-only, never remove) `-wal` and `-shm` to read a WAL
    /// database, so the file is opened `immutable` instead: with no `-wal`,
    /// every committed transaction is in the main file, which nothing
    /// changes until a writer has created its `-wal` again. Such a connection
    /// is a snapshot and does not see later writes: open again to look again.
    pub fn open_read_only(path: &Path) -> anyhow::Result<Db> {
        if !path.exists() {
            anyhow::bail!(
                "no database at {} (has `forgehand run` been started with this --state?)",
                path.display()
            );
        }
        let mut uri = file_uri(path)?;
        uri.push_str(if sibling(path, "-wal").exists() {
            "?mode=ro"
        } else {
            "?mode=ro&immutable=1"
        });
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&uri, flags)
            .with_context(|| format!("opening the database {} read-only", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let version = migrations::version(&conn)
            .with_context(|| format!("reading the database {}", path.display()))?;
        migrations::check_readable(version)
            .with_context(|| format!("reading the database {}", path.display()))?;
        if version == 0 {
            anyhow::bail!(
                "the database {} has no tables yet (is `forgehand run` just starting?)",
                path.display()
            );
        }
        let schema = Schema::of(&conn)
            .with_context(|| format!("reading the database {}", path.display()))?;
        Ok(Db { conn, schema })
    }

    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn journal(
        &self,
        project: &str,
        issue: Option<u64>,
        kind: EventKind,
        detail: &str,
    ) -> anyhow::Result<()> {
        self.conn
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
        self.conn
            .execute(
                "INSERT INTO claims (project, issue, title, status, stage, pr, head, waiting,
                    ci_attempts, review_rounds, session, state_json, claimed_at, stage_since,
                    updated_at, runner)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT (project, issue) DO UPDATE SET
                    title = excluded.title, status = excluded.status, stage = excluded.stage,
                    pr = excluded.pr, head = excluded.head, waiting = excluded.waiting,
                    runner = excluded.runner,
                    ci_attempts = excluded.ci_attempts,
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
                    row.head,
                    row.waiting.map(Waiting::as_str),
                    row.ci_attempts,
                    row.review_rounds,
                    row.session,
                    row.state_json,
                    row.claimed_at.to_rfc3339(),
                    row.stage_since.to_rfc3339(),
                    row.updated_at.to_rfc3339(),
                    row.runner.map(Runner::as_str),
                ],
            )
            .with_context(|| format!("saving the claim on {}#{}", row.project, row.issue))?;
        Ok(())
    }

    /// Nobody works on any claim: the daemon starts, or has stopped.
    pub fn clear_runners(&self) -> anyhow::Result<()> {
        if !self.schema.runner {
            return Ok(());
        }
        self.conn
            .execute(
                "UPDATE claims SET runner = NULL WHERE runner IS NOT NULL",
                [],
            )
            .context("clearing who works on the claims")?;
        Ok(())
    }

    /// Record who works on a claim now; a claim that does not exist is fine.
    pub fn set_runner(
        &self,
        project: &str,
        issue: u64,
        runner: Option<Runner>,
    ) -> anyhow::Result<()> {
        self.conn
            .execute(
                "UPDATE claims SET runner = ?3 WHERE project = ?1 AND issue = ?2",
                params![project, issue, runner.map(Runner::as_str)],
            )
            .with_context(|| format!("recording who works on {project}#{issue}"))?;
        Ok(())
    }

    pub fn claim(&self, project: &str, issue: u64) -> anyhow::Result<Option<ClaimRow>> {
        self.conn
            .query_row(
                &self.claim_select("WHERE project = ?1 AND issue = ?2"),
                params![project, issue],
                claim_from_row,
            )
            .optional()
            .with_context(|| format!("reading the claim on {project}#{issue}"))
    }

    /// Claims, newest first; `None` for every project.
    pub fn claims(
        &self,
        project: Option<&str>,
        status: Option<ClaimStatus>,
    ) -> anyhow::Result<Vec<ClaimRow>> {
        let mut stmt = self.conn.prepare(&self.claim_select(
            "WHERE (?1 IS NULL OR project = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY claimed_at DESC, project, issue",
        ))?;
        let rows = stmt
            .query_map(params![project, status.map(|s| s.as_str())], claim_from_row)?
            .collect::<Result<Vec<_>, _>>()
            .context("reading claims")?;
        Ok(rows)
    }

    /// The active claim whose dev actor opened pull request `pr`.
    pub fn claim_holding_pr(&self, project: &str, pr: u64) -> anyhow::Result<Option<ClaimRow>> {
        self.conn
            .query_row(
                &self.claim_select(
                    "WHERE project = ?1 AND status = 'active' AND pr = ?2
                     ORDER BY claimed_at DESC LIMIT 1",
                ),
                params![project, pr],
                claim_from_row,
            )
            .optional()
            .with_context(|| format!("looking for the claim holding PR #{pr} of {project}"))
    }

    /// The active claim whose dev actor last pushed `sha`.
    pub fn claim_holding_head(&self, project: &str, sha: &str) -> anyhow::Result<Option<ClaimRow>> {
        if !self.schema.claim_facts {
            return Ok(None);
        }
        self.conn
            .query_row(
                &self.claim_select(
                    "WHERE project = ?1 AND status = 'active' AND head = ?2
                     ORDER BY claimed_at DESC LIMIT 1",
                ),
                params![project, sha],
                claim_from_row,
            )
            .optional()
            .with_context(|| format!("looking for the claim holding head {sha} of {project}"))
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
        self.conn
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
        let mut stmt = self.conn.prepare(
            "SELECT id, at, project, issue, kind, detail FROM events
             WHERE project = ?1 AND (?2 IS NULL OR issue = ?2) ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![project, issue], event_from_row)?
            .collect::<Result<Vec<_>, _>>()
            .context("reading the journal")?;
        Ok(rows)
    }

    /// Whether the schema has the `token_usage` table (migration 4).
    pub(super) fn has_usage(&self) -> bool {
        self.schema.usage
    }

    /// Whether the schema has the `chat_outbox` table.
    pub(super) fn has_outbox(&self) -> bool {
        self.schema.outbox
    }

    /// Whether the schema has the budget tables (issue 15's migration).
    pub(super) fn has_spend(&self) -> bool {
        self.schema.spend
    }

    /// Whether the schema has the `owed_effects` table.
    pub(super) fn has_owed(&self) -> bool {
        self.schema.owed
    }

    /// Whether the schema has the `budget_limits` table.
    pub(super) fn has_limits(&self) -> bool {
        self.schema.limits
    }

    /// The claim query with `tail` (conditions, order) appended; columns an
    /// older schema lacks read as NULL.
    fn claim_select(&self, tail: &str) -> String {
        let facts = if self.schema.claim_facts {
            "head, waiting"
        } else {
            "NULL, NULL"
        };
        let runner = if self.schema.runner { "runner" } else { "NULL" };
        format!(
            "SELECT project, issue, title, status, stage, pr, {facts}, ci_attempts,
                review_rounds, session, state_json, claimed_at, stage_since, updated_at,
                {runner}
             FROM claims {tail}"
        )
    }
}

impl Schema {
    /// Looked up rather than derived from the version number, so it holds
    /// whatever order migrations end up in.
    fn of(conn: &Connection) -> anyhow::Result<Schema> {
        let has_column = |table: &str, column: &str| -> anyhow::Result<bool> {
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
                params![table, column],
                |r| r.get(0),
            )
            .with_context(|| format!("reading the schema of {table}"))
        };
        Ok(Schema {
            claim_facts: has_column("claims", "waiting")?,
            runner: has_column("claims", "runner")?,
            usage: has_column("token_usage", "project")?,
            outbox: has_column("chat_outbox", "id")?,
            spend: has_column("spend_daily", "project")?,
            owed: has_column("owed_effects", "project")?,
            limits: has_column("budget_limits", "project")?,
        })
    }
}

/// An `events` row, selected as `id, at, project, issue, kind, detail`.
pub(super) fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        at: parse_time(&r.get::<_, String>(1)?),
        project: r.get(2)?,
        issue: r.get(3)?,
        kind: r.get(4)?,
        detail: r.get(5)?,
    })
}

fn claim_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ClaimRow> {
    Ok(ClaimRow {
        project: r.get(0)?,
        issue: r.get(1)?,
        title: r.get(2)?,
        status: ClaimStatus::parse(&r.get::<_, String>(3)?),
        stage: r.get(4)?,
        pr: r.get(5)?,
        head: r.get(6)?,
        waiting: r
            .get::<_, Option<String>>(7)?
            .and_then(|w| Waiting::parse(&w)),
        ci_attempts: r.get(8)?,
        review_rounds: r.get(9)?,
        session: r.get(10)?,
        state_json: r.get(11)?,
        claimed_at: parse_time(&r.get::<_, String>(12)?),
        stage_since: parse_time(&r.get::<_, String>(13)?),
        updated_at: parse_time(&r.get::<_, String>(14)?),
        runner: r
            .get::<_, Option<String>>(15)?
            .and_then(|w| Runner::parse(&w)),
    })
}

/// `path` with `suffix` appended to its file name (`forgehand.db-wal`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A `file:` URI for `path`, so URI parameters can be given: absolute, and
/// every byte but unreserved ones and `/` percent-encoded (`?` and `#` in a
/// folder name would otherwise end the path).
fn file_uri(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::ffi::OsStrExt;
    let absolute =
        std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    let mut uri = String::from("file://");
    for &b in absolute.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(uri)
}
