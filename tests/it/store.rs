//! The SQLite store: migrations, claims, the journal, the store thread, the
//! read-only open, the daemon lock.

use std::path::Path;

use chrono::Utc;
use forgehand::lockfile::{DaemonLock, LockError};
use forgehand::store::{ClaimRow, ClaimStatus, Db, EventKind, SCHEMA_VERSION, Store};

pub fn row(project: &str, issue: u64) -> ClaimRow {
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
    claim.pr = Some(4);
    store.save_claim(&claim).await.unwrap();
    let saved = store.claim("p", 1).await.unwrap().unwrap();
    assert_eq!(saved.pr, Some(4));

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
