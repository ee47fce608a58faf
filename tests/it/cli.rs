//! The command line as a user meets it: exit codes, the switch, config check, status.

use std::process::{Command, Output};

fn forgehand(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_forgehand"))
        .args(args)
        .current_dir(dir)
        .env_remove("FORGE_TOKEN")
        .output()
        .expect("running forgehand")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(forgehand(dir.path(), &["bogus"]).status.code(), Some(2));
    assert_eq!(
        forgehand(dir.path(), &["attach", "proj"]).status.code(),
        Some(2)
    );
}

#[test]
fn config_check_reports_every_file_and_exits_2_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("projects");
    std::fs::create_dir(&projects).unwrap();
    std::fs::write(
        projects.join("good.toml"),
        "name = \"good\"\nrepo = \"o/r\"\n[forge]\nkind = \"local\"\nurl = \"/tmp/plans\"\n[agent]\ncommand = \"true\"\n",
    )
    .unwrap();
    std::fs::write(
        projects.join("bad.toml"),
        "name = \"bad\"\nrepo = \"o/r\"\npoll_interval = \"soon\"\n[forge]\nkind = \"local\"\nurl = \"/tmp/plans\"\n[agent]\ncommand = \"true\"\n",
    )
    .unwrap();
    let out = forgehand(dir.path(), &["config", "check", "--projects", "projects"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("ok   projects/good.toml"), "{all}");
    assert!(
        all.contains("projects/bad.toml:3:17: poll_interval:"),
        "{all}"
    );
    std::fs::remove_file(projects.join("bad.toml")).unwrap();
    let out = forgehand(dir.path(), &["config", "check", "--projects", "projects"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn run_with_a_bad_project_file_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("projects");
    std::fs::create_dir(&projects).unwrap();
    std::fs::write(
        projects.join("p.toml"),
        "name = \"p\"\nrepo = \"o/r\"\nsurprise = 1\n",
    )
    .unwrap();
    let out = forgehand(
        dir.path(),
        &["run", "--projects", "projects", "--state", "state"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("projects/p.toml:3:1"), "{}", text(&out));
}

#[test]
fn enable_and_disable_switch_the_marker_file() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("state/.dev-active");
    assert!(
        forgehand(dir.path(), &["enable", "--state", "state"])
            .status
            .success()
    );
    assert!(marker.exists());
    assert!(
        forgehand(dir.path(), &["disable", "--state", "state"])
            .status
            .success()
    );
    assert!(!marker.exists());
    assert!(
        forgehand(dir.path(), &["disable", "--state", "state"])
            .status
            .success(),
        "idempotent"
    );
}

#[test]
fn status_without_a_database_is_a_runtime_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = forgehand(dir.path(), &["status", "--state", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no database"), "{}", text(&out));
}

#[test]
fn status_lists_claims_as_a_table_and_as_json() {
    use chrono::Utc;
    use forgehand::store::{ClaimRow, ClaimStatus, Db, EventKind, Waiting};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let store = Db::open(&dir.path().join("state/forgehand.db")).unwrap();
    store
        .save_claim(&ClaimRow {
            project: "proj".into(),
            issue: 42,
            title: "Add a greeting".into(),
            status: ClaimStatus::Active,
            stage: "awaiting_ci".into(),
            pr: Some(43),
            head: Some("c0ffee".into()),
            waiting: Some(Waiting::Ci),
            runner: None,
            ci_attempts: 1,
            review_rounds: 0,
            session: "dev-proj-42".into(),
            state_json: "{}".into(),
            claimed_at: Utc::now(),
            stage_since: Utc::now(),
            updated_at: Utc::now(),
        })
        .unwrap();
    store
        .journal("proj", Some(42), EventKind::Pushed, "pushed fix/issue-42")
        .unwrap();
    let out = forgehand(dir.path(), &["status", "--state", "state"]);
    let table = text(&out);
    assert!(out.status.success(), "{table}");
    for word in [
        "PROJECT",
        "proj",
        "#42",
        "awaiting_ci",
        "WAITING",
        "#43",
        "dev-proj-42",
    ] {
        assert!(table.contains(word), "{word} missing from\n{table}");
    }
    let header = table.lines().next().unwrap();
    let row = table.lines().nth(1).unwrap();
    let at = header.find("WAITING").unwrap();
    assert_eq!(&row[at..at + 3], "ci ", "{table}");
    let out = forgehand(dir.path(), &["status", "--state", "state", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["issues"][0]["issue"], 42);
    assert_eq!(json["issues"][0]["pr"], 43);
    assert_eq!(json["issues"][0]["head"], "c0ffee");
    assert_eq!(json["issues"][0]["waiting"], "ci");
    assert_eq!(json["issues"][0]["session"], "dev-proj-42");
    let out = forgehand(dir.path(), &["status", "--state", "state", "proj", "42"]);
    assert!(text(&out).contains("pushed fix/issue-42"), "{}", text(&out));
}

/// Forge text holding terminal controls: an OSC that retitles the window (ended
/// by BEL), a CSI that clears the screen, and 8-bit CSI.
const HOSTILE_TITLE: &str = "fix\u{1b}]0;pwned\u{7} \u{1b}[2J\u{9b}31mred";
/// How it reads once escaped.
const HOSTILE_SHOWN: &str = "fix\\x1b]0;pwned\\x07 \\x1b[2J\\u{9b}31mred";

/// No byte of `out` is a control a terminal acts on (newline aside), in 7 or 8 bits.
fn assert_no_controls(out: &[u8]) {
    let text = String::from_utf8(out.to_vec()).expect("UTF-8 output");
    let raw: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(raw.is_empty(), "raw controls {raw:?} in\n{text}");
}

#[test]
fn status_escapes_control_characters_in_forge_text() {
    use chrono::Utc;
    use forgehand::store::{ClaimRow, ClaimStatus, Db, EventKind};
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    let store = Db::open(&dir.path().join("state/forgehand.db")).unwrap();
    store
        .save_claim(&ClaimRow {
            project: "proj".into(),
            issue: 42,
            title: HOSTILE_TITLE.into(),
            status: ClaimStatus::Active,
            stage: "working".into(),
            pr: None,
            head: None,
            waiting: None,
            runner: None,
            ci_attempts: 0,
            review_rounds: 0,
            session: "dev-proj-42".into(),
            state_json: "{}".into(),
            claimed_at: Utc::now(),
            stage_since: Utc::now(),
            updated_at: Utc::now(),
        })
        .unwrap();
    let claimed = format!("claimed #42: {HOSTILE_TITLE}");
    store
        .journal("proj", Some(42), EventKind::Claimed, &claimed)
        .unwrap();
    // A multi-line detail whose second line poses as an entry of its own.
    let forged = "escalated: why\n2030-01-01 00:00:00  merged           all done\u{7f}";
    store
        .journal("proj", Some(42), EventKind::PhaseSeen, forged)
        .unwrap();

    let out = forgehand(dir.path(), &["status", "--state", "state"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_no_controls(&out.stdout);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("TITLE"), "{table}");
    assert!(table.contains(HOSTILE_SHOWN), "{table}");

    let out = forgehand(dir.path(), &["status", "--state", "state", "proj", "42"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_no_controls(&out.stdout);
    let journal = String::from_utf8_lossy(&out.stdout);
    assert!(
        journal.contains(&format!("claimed #42: {HOSTILE_SHOWN}")),
        "{journal}"
    );
    // The detail keeps its lines, the further ones indented under the first.
    assert!(journal.contains("escalated: why\n"), "{journal}");
    assert!(
        journal.contains(" 2030-01-01 00:00:00  merged           all done\\x7f\n"),
        "{journal}"
    );
    assert!(
        !journal.lines().any(|l| l.starts_with("2030")),
        "a forged entry: {journal}"
    );

    // JSON escapes everything itself, C1 and DEL included, and reads back the same.
    for args in [
        &["status", "--state", "state", "--json"][..],
        &["status", "--state", "state", "--json", "proj", "42"][..],
    ] {
        let out = forgehand(dir.path(), args);
        assert!(out.status.success(), "{}", text(&out));
        let json = String::from_utf8(out.stdout.clone()).unwrap();
        let raw: Vec<char> = json
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert!(raw.is_empty(), "raw controls {raw:?} in\n{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let text = value.to_string();
        assert!(text.contains("\\u001b]0;pwned"), "{text}");
        if args.len() == 4 {
            assert_eq!(value["issues"][0]["title"], HOSTILE_TITLE);
        } else {
            assert_eq!(value[0]["detail"], claimed);
            assert_eq!(value[1]["detail"], forged);
        }
    }
}

/// Every way of asking `status`, each of which must succeed.
const STATUS_ASKS: [&[&str]; 4] = [
    &["status", "--state", "state"],
    &["status", "--state", "state", "--json"],
    &["status", "--state", "state", "proj", "42"],
    &["status", "--state", "state", "--json", "proj", "42"],
];

/// Runs every kind of `status`; the table's output.
fn ask_status(dir: &std::path::Path) -> String {
    let mut table = String::new();
    for args in STATUS_ASKS {
        let out = forgehand(dir, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        if args.len() == 3 {
            table = text(&out);
        }
    }
    table
}

/// A state folder with one claim and its journal, written and closed the way
/// a stopped daemon leaves it (no `-wal`, no `-shm`).
fn stopped_daemon_state(dir: &std::path::Path) -> std::path::PathBuf {
    use forgehand::store::{Db, EventKind, Waiting};
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    let db = Db::open(&state.join("forgehand.db")).unwrap();
    let mut claim = crate::store::row("proj", 42);
    (claim.pr, claim.waiting) = (Some(43), Some(Waiting::Review));
    db.save_claim(&claim).unwrap();
    db.journal("proj", Some(42), EventKind::Pushed, "pushed fix/issue-42")
        .unwrap();
    drop(db);
    state
}

fn wal_files(state: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("-wal") || n.ends_with("-shm"))
        .collect()
}

#[test]
fn status_never_changes_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let state = stopped_daemon_state(dir.path());
    assert_eq!(wal_files(&state), Vec::<String>::new());
    let before = crate::store::snapshot(&state);
    let table = ask_status(dir.path());
    assert!(table.contains("review"), "{table}");
    assert_eq!(
        wal_files(&state),
        Vec::<String>::new(),
        "left beside the db"
    );
    assert!(
        crate::store::snapshot(&state) == before,
        "status changed the state folder"
    );
}

#[test]
fn status_reads_a_database_it_may_not_write() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = stopped_daemon_state(dir.path());
    let mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    mode(&state.join("forgehand.db"), 0o400);
    mode(&state, 0o500);
    let before = crate::store::snapshot(&state);
    let table = ask_status(dir.path());
    let after = crate::store::snapshot(&state);
    // Writable again, so the temporary folder can go.
    mode(&state, 0o700);
    assert!(table.contains("#42"), "{table}");
    assert!(after == before, "status changed the state folder");
}

#[test]
fn status_reads_the_previous_schema_without_upgrading_it() {
    use forgehand::store::{Db, SCHEMA_VERSION};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let path = state.join("forgehand.db");
    crate::store::schema_at(&path, SCHEMA_VERSION - 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO claims (project, issue, title, status, stage, pr, session, state_json,
            claimed_at, stage_since, updated_at)
         VALUES ('proj', 42, 'Old claim', 'active', 'awaiting_ci', 43, 'dev-proj-42', '{}',
            ?1, ?1, ?1)",
        [chrono::Utc::now().to_rfc3339()],
    )
    .unwrap();
    drop(conn);
    let before = crate::store::snapshot(&state);

    let table = ask_status(dir.path());
    assert!(table.contains("Old claim"), "{table}");
    let out = forgehand(dir.path(), &["status", "--state", "state", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["issues"][0]["pr"], 43);
    assert_eq!(json["issues"][0]["waiting"], serde_json::Value::Null);
    assert!(
        crate::store::snapshot(&state) == before,
        "status changed it"
    );
    let version: usize = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION - 1, "not migrated");
    // The daemon's own open still upgrades it.
    drop(Db::open(&path).unwrap());
}

#[test]
fn status_on_a_newer_schema_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let state = stopped_daemon_state(dir.path());
    rusqlite::Connection::open(state.join("forgehand.db"))
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let out = forgehand(dir.path(), &["status", "--state", "state"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("schema version 999, newer than this forgehand"),
        "{}",
        text(&out)
    );
}

/// While the daemon holds the database (its store thread, WAL), `status`
/// reads the latest writes through the `-wal` and changes neither file.
#[tokio::test]
async fn status_reads_while_the_daemon_holds_the_database() {
    use forgehand::store::{Store, Waiting};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let store = Store::open(&state.join("forgehand.db")).unwrap();
    let mut claim = crate::store::row("proj", 42);
    claim.waiting = Some(Waiting::Ci);
    store.save_claim(&claim).await.unwrap();
    store
        .journal(
            "proj",
            Some(42),
            forgehand::store::EventKind::Pushed,
            "pushed",
        )
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(wal_files(&state).len(), 2, "the daemon's WAL files");
    let held = |snapshot: Vec<(String, Vec<u8>, std::time::SystemTime)>| {
        // The shared-memory index is where readers say what they read.
        snapshot
            .into_iter()
            .filter(|(name, ..)| !name.ends_with("-shm"))
            .collect::<Vec<_>>()
    };
    let before = held(crate::store::snapshot(&state));
    let table = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || ask_status(&dir)
    })
    .await
    .unwrap();
    assert!(table.contains("#42") && table.contains("ci"), "{table}");
    assert!(
        held(crate::store::snapshot(&state)) == before,
        "status wrote"
    );

    // The daemon writes on, and the next look sees it.
    claim.waiting = Some(Waiting::Review);
    store.save_claim(&claim).await.unwrap();
    let out = forgehand(dir.path(), &["status", "--state", "state", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["issues"][0]["waiting"], "review");
}
