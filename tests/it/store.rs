//! The SQLite store: migrations, claims, the journal, the daemon lock.

use chrono::Utc;
use forgehand::lockfile::{DaemonLock, LockError};
use forgehand::store::{ClaimRow, ClaimStatus, EventKind, SCHEMA_VERSION, Store};

fn row(project: &str, issue: u64) -> ClaimRow {
    ClaimRow {
        project: project.into(),
        issue,
        title: format!("issue {issue}"),
        status: ClaimStatus::Active,
        stage: "claimed".into(),
        pr: None,
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
    drop(Store::open(&path).unwrap());
    let store = Store::open(&path).unwrap();
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
    drop(Store::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let err = Store::open(&path).err().expect("refused").to_string();
    let chain = format!("{err:#}");
    assert!(chain.contains("migrating"), "{chain}");
}

#[test]
fn claims_upsert_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
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
    let store = Store::open(&dir.path().join("db")).unwrap();
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
    let store = Store::open(&dir.path().join("db")).unwrap();
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
