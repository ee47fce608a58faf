//! The SQLite store: migrations, claims, the journal, the store thread, the
//! read-only open, the daemon lock.

use std::path::Path;

use chrono::Utc;
use forgehand::actors::dev::machine::{DevState, Escalation, Stage};
use forgehand::forge::{CommitSha, PrNumber};
use forgehand::lockfile::{DaemonLock, LockError};
use forgehand::store::{ClaimRow, ClaimStatus, Db, EventKind, SCHEMA_VERSION, Store, Waiting};

pub fn row(project: &str, issue: u64) -> ClaimRow {
    ClaimRow {
        project: project.into(),
        issue,
        title: format!("issue {issue}"),
        status: ClaimStatus::Active,
        stage: "claimed".into(),
        pr: None,
        head: None,
        waiting: None,
        runner: None,
        ci_attempts: 0,
        review_rounds: 0,
        session: format!("dev-{project}-{issue}"),
        state_json: "{}".into(),
        claimed_at: Utc::now(),
        stage_since: Utc::now(),
        updated_at: Utc::now(),
    }
}

#[test]
fn migrates_and_reopens_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgehand.db");
    drop(Db::open(&path).unwrap());
    let store = Db::open(&path).unwrap();
    store
        .journal("p", None, EventKind::Daemon, "again")
        .unwrap();
    let conn = rusqlite_version(&path);
    assert_eq!(conn.0, SCHEMA_VERSION as i64);
    assert_eq!(conn.1.to_lowercase(), "wal");
}

fn rusqlite_version(path: &std::path::Path) -> (i64, String) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mode = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    (version, mode)
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgehand.db");
    drop(Db::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let err = Db::open(&path).err().expect("refused").to_string();
    let chain = format!("{err:#}");
    assert!(chain.contains("migrating"), "{chain}");
}

#[test]
fn claims_upsert_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let store = Db::open(&dir.path().join("db")).unwrap();
    store.save_claim(&row("a", 1)).unwrap();
    store.save_claim(&row("b", 2)).unwrap();
    let mut done = row("a", 1);
    done.status = ClaimStatus::Done;
    done.pr = Some(9);
    done.stage = "done".into();
    store.save_claim(&done).unwrap();
    let got = store.claim("a", 1).unwrap().unwrap();
    assert_eq!(
        (got.status, got.pr, got.stage.as_str()),
        (ClaimStatus::Done, Some(9), "done")
    );
    assert_eq!(store.claims(None, None).unwrap().len(), 2);
    assert_eq!(
        store
            .claims(Some("a"), Some(ClaimStatus::Active))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        store.claims(None, Some(ClaimStatus::Active)).unwrap()[0].issue,
        2
    );
    assert!(store.claim("a", 3).unwrap().is_none());
}

#[test]
fn journal_keeps_order_per_issue() {
    let dir = tempfile::tempdir().unwrap();
    let store = Db::open(&dir.path().join("db")).unwrap();
    store
        .journal("p", Some(1), EventKind::Claimed, "first")
        .unwrap();
    store
        .journal("p", Some(2), EventKind::Claimed, "other issue")
        .unwrap();
    store
        .journal("p", Some(1), EventKind::Pushed, "second")
        .unwrap();
    let events = store.events("p", Some(1)).unwrap();
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(got, [("claimed", "first"), ("pushed", "second")]);
    assert_eq!(store.events("p", None).unwrap().len(), 3);
}

#[test]
fn journaled_finds_exactly_the_same_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = Db::open(&dir.path().join("db")).unwrap();
    let line = "comment 7 by mallory ignored: no write access to acme/widget";
    let kind = EventKind::CommentIgnored;
    assert!(!store.journaled("p", Some(1), kind, line).unwrap());
    store.journal("p", Some(1), kind, line).unwrap();
    store
        .journal("p", None, EventKind::Daemon, "started")
        .unwrap();
    assert!(store.journaled("p", Some(1), kind, line).unwrap());
    assert!(
        store
            .journaled("p", None, EventKind::Daemon, "started")
            .unwrap()
    );
    // Another issue, project, kind or text is another line.
    assert!(!store.journaled("p", Some(2), kind, line).unwrap());
    assert!(!store.journaled("q", Some(1), kind, line).unwrap());
    assert!(
        !store
            .journaled("p", Some(1), EventKind::Error, line)
            .unwrap()
    );
    assert!(!store.journaled("p", Some(1), kind, "comment 7").unwrap());
    assert!(
        !store
            .journaled("p", Some(1), EventKind::Daemon, "started")
            .unwrap()
    );
}

/// A database as a forgehand whose schema was at `version` left it.
pub fn schema_at(path: &Path, version: usize) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    forgehand::store::migrate_up_to(&mut conn, version).unwrap();
}

/// The schema before `claims` had `head` and `waiting` (migration 6).
pub const BEFORE_CLAIM_FACTS: usize = 5;

/// A dev actor's persisted state, as the dev actor writes it.
fn state_json(stage: Stage, pr: Option<u64>, head: Option<&str>, escalated: bool) -> String {
    let mut state = DevState::new(Utc::now());
    state.stage = stage;
    state.pr = pr.map(PrNumber);
    state.head = head.map(|h| CommitSha(h.into()));
    state.escalation = escalated.then(|| Escalation {
        reason: "which key store?".into(),
        since: Utc::now(),
    });
    serde_json::to_string(&state).unwrap()
}

#[test]
fn the_migration_fills_in_the_claim_facts_from_the_persisted_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgehand.db");
    schema_at(&path, BEFORE_CLAIM_FACTS);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let now = Utc::now().to_rfc3339();
    let insert = |issue: u64, status: &str, stage: Stage, state: String| {
        conn.execute(
            "INSERT INTO claims (project, issue, title, status, stage, pr, session, state_json,
                claimed_at, stage_since, updated_at)
             VALUES ('p', ?1, 't', ?2, ?3, NULL, 's', ?4, ?5, ?5, ?5)",
            rusqlite::params![issue, status, stage.as_str(), state, now],
        )
        .unwrap();
    };
    let ci = state_json(Stage::AwaitingCi, Some(11), Some("aaa"), false);
    insert(1, "active", Stage::AwaitingCi, ci);
    let review = state_json(Stage::AwaitingReview, Some(12), Some("bbb"), false);
    insert(2, "active", Stage::AwaitingReview, review);
    let asked = state_json(Stage::Working, None, None, true);
    insert(3, "active", Stage::Working, asked);
    let done = state_json(Stage::Done, Some(14), Some("ddd"), false);
    insert(4, "done", Stage::Done, done);
    insert(5, "active", Stage::Working, "not json".into());
    drop(conn);

    let db = Db::open(&path).unwrap();
    let facts = |issue: u64| {
        let c = db.claim("p", issue).unwrap().unwrap();
        (c.pr, c.head, c.waiting)
    };
    let sha = |s: &str| Some(s.to_string());
    assert_eq!(facts(1), (Some(11), sha("aaa"), Some(Waiting::Ci)));
    assert_eq!(facts(2), (Some(12), sha("bbb"), Some(Waiting::Review)));
    assert_eq!(facts(3), (None, None, Some(Waiting::Answer)));
    // A finished claim waits for nothing; its PR and head stay known.
    assert_eq!(facts(4), (Some(14), sha("ddd"), None));
    assert_eq!(facts(5), (None, None, None));
    assert_eq!(
        db.claim_holding_head("p", "bbb").unwrap().map(|c| c.issue),
        Some(2)
    );
}

#[test]
fn the_claim_holding_a_pr_or_head_is_an_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("db")).unwrap();
    let mut old = row("p", 1);
    (old.pr, old.head, old.status) = (Some(7), Some("abc".into()), ClaimStatus::Done);
    old.claimed_at = Utc::now() - chrono::Duration::hours(1);
    db.save_claim(&old).unwrap();
    let mut live = row("p", 2);
    (live.pr, live.head, live.waiting) = (Some(8), Some("def".into()), Some(Waiting::Review));
    db.save_claim(&live).unwrap();
    let mut other = row("q", 3);
    (other.pr, other.head) = (Some(8), Some("def".into()));
    db.save_claim(&other).unwrap();

    let issue = |c: anyhow::Result<Option<ClaimRow>>| c.unwrap().map(|c| c.issue);
    assert_eq!(issue(db.claim_holding_pr("p", 8)), Some(2));
    assert_eq!(issue(db.claim_holding_head("p", "def")), Some(2));
    assert_eq!(issue(db.claim_holding_pr("q", 8)), Some(3));
    // Done with, it holds nothing any more.
    assert_eq!(issue(db.claim_holding_pr("p", 7)), None);
    assert_eq!(issue(db.claim_holding_head("p", "abc")), None);
    assert_eq!(
        db.claim("p", 2).unwrap().unwrap().waiting,
        Some(Waiting::Review)
    );
}

/// Calls reach the store thread in the order they were made; a journal line
/// is queued without waiting, yet a later call already sees it, and dropping
/// the store writes whatever is still queued.
#[tokio::test]
async fn the_store_thread_keeps_the_order_of_calls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgehand.db");
    let store = Store::open(&path).unwrap();
    store
        .journal("p", Some(1), EventKind::Claimed, "first")
        .unwrap();
    let details = |events: Vec<forgehand::store::EventRow>| -> Vec<String> {
        events.into_iter().map(|e| e.detail).collect()
    };
    assert_eq!(
        details(store.events("p", Some(1)).await.unwrap()),
        ["first"]
    );
    assert!(
        store
            .journaled("p", Some(1), EventKind::Claimed, "first")
            .await
            .unwrap()
    );

    let mut claim = row("p", 1);
    (claim.pr, claim.head, claim.waiting) = (Some(4), Some("abc".into()), Some(Waiting::Ci));
    store.save_claim(&claim).await.unwrap();
    let saved = store.claim("p", 1).await.unwrap().unwrap();
    assert_eq!((saved.pr, saved.waiting), (Some(4), Some(Waiting::Ci)));
    let held = store.claim_holding_head("p", "abc").await.unwrap();
    assert_eq!(held.map(|c| c.issue), Some(1));
    let held = store.claim_holding_pr("p", 4).await.unwrap();
    assert_eq!(held.map(|c| c.issue), Some(1));

    for i in 0..100 {
        store
            .journal("p", Some(2), EventKind::PhaseSeen, &i.to_string())
            .unwrap();
    }
    drop(store);
    let db = Db::open(&path).unwrap();
    let seen = details(db.events("p", Some(2)).unwrap());
    let expected: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(seen, expected);
}

/// Everything under `dir` with its bytes and modification time.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let modified = e.metadata().unwrap().modified().unwrap();
            (name, std::fs::read(e.path()).unwrap(), modified)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_read_only_open_reads_an_older_schema_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgehand.db");
    schema_at(&path, BEFORE_CLAIM_FACTS);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO claims (project, issue, title, status, stage, pr, session, state_json,
            claimed_at, stage_since, updated_at)
         VALUES ('p', 1, 't', 'active', 'awaiting_ci', 5, 's', '{}', ?1, ?1, ?1)",
        [Utc::now().to_rfc3339()],
    )
    .unwrap();
    drop(conn);
    let before = snapshot(dir.path());

    let db = Db::open_read_only(&path).unwrap();
    let claims = db.claims(None, None).unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (claims[0].pr, claims[0].head.as_deref(), claims[0].waiting),
        (Some(5), None, None)
    );
    assert_eq!(db.claim_holding_head("p", "abc").unwrap(), None);
    assert_eq!(db.usage("p", 1).unwrap(), None);
    drop(db);
    assert_eq!(
        snapshot(dir.path()),
        before,
        "the read-only open changed files"
    );
}

/// The read-only open names the file in a URI: characters that mean
/// something there are taken as part of the folder's name.
#[test]
fn a_read_only_open_takes_any_folder_name() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("state ?#%41 ü");
    std::fs::create_dir(&folder).unwrap();
    let path = folder.join("forgehand.db");
    let db = Db::open(&path).unwrap();
    db.save_claim(&row("p", 1)).unwrap();
    drop(db);
    let db = Db::open_read_only(&path).unwrap();
    assert_eq!(db.claims(None, None).unwrap().len(), 1);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "only the folder: {names:?}");
}

#[test]
fn a_read_only_open_refuses_what_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgehand.db");
    let err = Db::open_read_only(&path).err().expect("no database");
    assert!(format!("{err:#}").contains("no database at"), "{err:#}");
    assert!(!path.exists(), "created by a read-only open");

    // A file no daemon has put a schema in yet.
    std::fs::write(&path, b"").unwrap();
    let err = Db::open_read_only(&path).err().expect("no schema");
    assert!(format!("{err:#}").contains("no tables yet"), "{err:#}");

    std::fs::remove_file(&path).unwrap();
    drop(Db::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let before = snapshot(dir.path());
    let err = Db::open_read_only(&path).err().expect("a newer schema");
    assert!(
        format!("{err:#}").contains("newer than this forgehand"),
        "{err:#}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn second_lock_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forgehand.lock");
    let held = DaemonLock::acquire(&path).unwrap();
    match DaemonLock::acquire(&path) {
        Err(LockError::Held { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a second lock was granted"),
    }
    drop(held);
    DaemonLock::acquire(&path).expect("free again after the holder is gone");
}
