//! Versioned schema migrations, applied in order and recorded in
//! `PRAGMA user_version`, so an older database is upgraded in place on start.

use anyhow::Context;
use rusqlite::Connection;

/// Each entry upgrades the schema from version `index` to `index + 1`.
/// Never edit a released entry: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: claims (one row per issue forgehand has held) and the event journal.
    "CREATE TABLE claims (
        project       TEXT NOT NULL,
        issue         INTEGER NOT NULL,
        title         TEXT NOT NULL,
        status        TEXT NOT NULL,
        stage         TEXT NOT NULL,
        pr            INTEGER,
        ci_attempts   INTEGER NOT NULL DEFAULT 0,
        review_rounds INTEGER NOT NULL DEFAULT 0,
        session       TEXT NOT NULL,
        state_json    TEXT NOT NULL,
        claimed_at    TEXT NOT NULL,
        stage_since   TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        PRIMARY KEY (project, issue)
    );
    CREATE TABLE events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      TEXT NOT NULL,
        project TEXT NOT NULL,
        issue   INTEGER,
        kind    TEXT NOT NULL,
        detail  TEXT NOT NULL
    );
    CREATE INDEX events_by_issue ON events (project, issue, id);",
    // 2: Matrix: each issue's thread root, the sync position, and the human
    // replies read from the threads until a dev actor has delivered them.
    "CREATE TABLE matrix_threads (
        project       TEXT NOT NULL,
        issue         INTEGER NOT NULL,
        root_event_id TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        PRIMARY KEY (project, issue)
    );
    CREATE INDEX matrix_threads_by_root ON matrix_threads (root_event_id);
    CREATE TABLE matrix_sync (
        key        TEXT PRIMARY KEY,
        token      TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE chat_replies (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        project      TEXT NOT NULL,
        issue        INTEGER NOT NULL,
        author       TEXT NOT NULL,
        body         TEXT NOT NULL,
        event_id     TEXT NOT NULL UNIQUE,
        received_at  TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX chat_replies_pending ON chat_replies (project, issue, delivered_at, id);",
    // 3: webhook delivery ids already acted on, so a redelivery does nothing.
    "CREATE TABLE webhook_deliveries (
        id          TEXT PRIMARY KEY,
        received_at TEXT NOT NULL
    );
    CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (received_at);",
    // 4: tokens each issue's agent used, from the agent's own records.
    "CREATE TABLE token_usage (
        project        TEXT NOT NULL,
        issue          INTEGER NOT NULL,
        input          INTEGER NOT NULL,
        output         INTEGER NOT NULL,
        cache_creation INTEGER NOT NULL,
        cache_read     INTEGER NOT NULL,
        updated_at     TEXT NOT NULL,
        PRIMARY KEY (project, issue)
    );",
    // 5: deliveries without an id are remembered by the hash of their body,
    // for less time than ids: `kind` says which, and keys of the two kinds
    // cannot collide.
    "CREATE TABLE webhook_deliveries_5 (
        kind        TEXT NOT NULL,
        key         TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    );
    INSERT INTO webhook_deliveries_5 (kind, key, received_at)
        SELECT 'id', id, received_at FROM webhook_deliveries;
    DROP TABLE webhook_deliveries;
    ALTER TABLE webhook_deliveries_5 RENAME TO webhook_deliveries;
    CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (kind, received_at);",
    // 6: what other actors need of an issue, in columns of their own rather
    // than parsed out of the dev actor's `state_json`: the head it pushed and
    // what it waits for (`ci`, `review`, `answer`, `forge`). Filled in from
    // the persisted state of the claims there are; `pr` was a column already.
    "ALTER TABLE claims ADD COLUMN head TEXT;
    ALTER TABLE claims ADD COLUMN waiting TEXT;
    UPDATE claims SET
        head = json_extract(state_json, '$.head'),
        pr = coalesce(pr, json_extract(state_json, '$.pr')),
        waiting = CASE
            WHEN status <> 'active' THEN NULL
            WHEN json_type(state_json, '$.escalation') = 'object' THEN 'answer'
            WHEN stage = 'awaiting_ci' THEN 'ci'
            WHEN stage = 'awaiting_review' THEN 'review'
        END
    WHERE json_valid(state_json);",
    // 7: who is working on a claim right now: its dev actor (`running`), or
    // nobody until the supervisor restarts one (`restarting`); NULL when the
    // daemon is not running or the claim is finished. An active claim of a
    // running daemon always has one of the two.
    "ALTER TABLE claims ADD COLUMN runner TEXT;",
    // 8: the forge's API quota as it last reported it (GitHub), per project,
    // for `forgehand status`, which reads only the database.
    "CREATE TABLE forge_quota (
        project     TEXT PRIMARY KEY,
        remaining   INTEGER NOT NULL,
        quota_limit INTEGER,
        reset_at    TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );",
    // 9 (issue 19): the chat outbox, every message owed to the chat, written
    // before it is sent and deleted once the homeserver accepted it; the row's
    // id and creation time make its transaction id, so a resend after a crash
    // is the same transaction. AUTOINCREMENT: an id is never handed out twice.
    "CREATE TABLE chat_outbox (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        project    TEXT NOT NULL,
        issue      INTEGER NOT NULL,
        payload    TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX chat_outbox_by_project ON chat_outbox (project, id);",
    // 10 (issue 15, budgets): what each issue's current run cost, what each
    // project spent and how many issues it claimed per UTC day (`day` is
    // `YYYY-MM-DD`), and why a project's poller claims nothing right now.
    "ALTER TABLE token_usage ADD COLUMN cost_micros INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE spend_daily (
        project     TEXT NOT NULL,
        day         TEXT NOT NULL,
        tokens      INTEGER NOT NULL DEFAULT 0,
        cost_micros INTEGER NOT NULL DEFAULT 0,
        runs        INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project, day)
    );
    CREATE TABLE picking_stops (
        project TEXT PRIMARY KEY,
        reason  TEXT NOT NULL,
        since   TEXT NOT NULL
    );",
    // 11: what a finished claim still owes the forge (`store/owed.rs`): the
    // effects of its last transition, as the dev actor's JSON.
    "CREATE TABLE owed_effects (
        project      TEXT NOT NULL,
        issue        INTEGER NOT NULL,
        effects_json TEXT NOT NULL,
        saved_at     TEXT NOT NULL,
        PRIMARY KEY (project, issue)
    );",
    // 12 (issue 15, spend in `status --json`): each project's `[budget]` limits
    // as the running daemon read them (JSON), so `forgehand status`, which
    // reads only the state folder, can show them beside the spend.
    "CREATE TABLE budget_limits (
        project    TEXT PRIMARY KEY,
        limits     TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );",
];

/// The schema version this build writes.
pub const CURRENT: usize = MIGRATIONS.len();

/// The schema version a database is at (0: nothing applied yet).
pub fn version(conn: &Connection) -> anyhow::Result<usize> {
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .context("reading the schema version")?;
    Ok(version as usize)
}

/// A schema this build can read and upgrade: not a newer one, whose columns
/// may mean things it does not know.
pub fn check_readable(version: usize) -> anyhow::Result<()> {
    if version > CURRENT {
        anyhow::bail!(
            "the database has schema version {version}, newer than this forgehand understands ({CURRENT}); \
             run a newer forgehand or use another --state directory"
        );
    }
    Ok(())
}

/// Bring a database up to this build's schema.
pub fn apply(conn: &mut Connection) -> anyhow::Result<()> {
    apply_up_to(conn, CURRENT)
}

/// Apply the migrations up to schema version `target` (at most [`CURRENT`]),
/// each in its own transaction: what an older forgehand left behind.
pub fn apply_up_to(conn: &mut Connection, target: usize) -> anyhow::Result<()> {
    let version = version(conn)?;
    check_readable(version)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(target).skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("applying schema migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
