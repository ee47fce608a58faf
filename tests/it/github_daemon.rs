//! What the daemon adds around the GitHub client: `forgehand status` shows the
//! quota the daemon recorded, and a GitHub App's key file is hidden from agents
//! even outside the home folder. (The whole daemon against a fake GitHub is the
//! end-to-end tests' business.)

use std::process::Command;

use chrono::{TimeDelta, Utc};
use forgehand::sandbox::{Cell, Sandbox, SandboxKind};
use forgehand::store::{Db, SCHEMA_VERSION};
use tempfile::TempDir;

#[test]
fn status_shows_the_forge_quota_left() {
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let store = Db::open(&state.join("forgehand.db")).unwrap();
    let reset = Utc::now() + TimeDelta::minutes(30);
    store
        .save_forge_quota("gh-proj", 4321, Some(5000), reset)
        .unwrap();
    let quotas = store.forge_quotas().unwrap();
    assert_eq!(quotas.len(), 1);
    assert_eq!((quotas[0].remaining, quotas[0].limit), (4321, Some(5000)));
    drop(store);

    let out = Command::new(env!("CARGO_BIN_EXE_forgehand"))
        .args(["status", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("forgehand holds no issues"), "{text}");
    let expected = format!(
        "forge quota of gh-proj: 4321/5000 requests left until {}",
        reset.format("%Y-%m-%d %H:%M:%S UTC")
    );
    assert!(text.contains(&expected), "{text}");

    // Another project's status leaves it out.
    let out = Command::new(env!("CARGO_BIN_EXE_forgehand"))
        .args(["status", "--state"])
        .arg(&state)
        .args(["other", "1"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("quota"));
}

#[test]
fn a_database_from_before_the_quota_has_none() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("forgehand.db");
    crate::store::schema_at(&path, SCHEMA_VERSION - 1);
    let db = Db::open_read_only(&path).unwrap();
    assert!(db.forge_quotas().unwrap().is_empty());
    drop(db);
    // The daemon's own open adds the table.
    let db = Db::open(&path).unwrap();
    db.save_forge_quota("p", 1, None, Utc::now()).unwrap();
    assert_eq!(db.forge_quotas().unwrap()[0].limit, None);
}

#[test]
fn a_hidden_file_is_covered_by_an_empty_one() {
    let dir = TempDir::new().unwrap();
    let key = dir.path().join("app.pem");
    std::fs::write(&key, "secret").unwrap();
    let folder = dir.path().join("state");
    std::fs::create_dir_all(&folder).unwrap();
    let sandbox = Sandbox {
        kind: SandboxKind::Bwrap,
        program: "/usr/bin/bwrap".into(),
        home: None,
        hidden: vec![key.clone(), folder.clone()],
        read_only: Vec::new(),
        writable: Vec::new(),
    };
    let args: Vec<String> = sandbox
        .wrap(&Cell {
            cwd: dir.path().join("wt"),
            ..Cell::default()
        })
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let key = key.to_string_lossy().into_owned();
    let folder = folder.to_string_lossy().into_owned();
    assert!(
        args.windows(3)
            .any(|w| w == ["--ro-bind", "/dev/null", key.as_str()]),
        "{args:?}"
    );
    assert!(
        args.windows(2).any(|w| w == ["--tmpfs", folder.as_str()]),
        "{args:?}"
    );
}

#[tokio::test]
async fn run_once_polls_github_and_records_its_quota() {
    use crate::github_client::assert_all_in_openapi;
    use crate::github_client::mock::{Seen, reply, serve, with_headers};
    use serde_json::json;

    let mock = serve(|s: &Seen| {
        let quota = [
            ("x-ratelimit-remaining", "4990"),
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-reset", "2000000000"),
        ];
        let answer = match (s.method.as_str(), s.path.as_str()) {
            ("GET", "/user") => reply(200, json!({"login": "forgehand-bot"})),
            ("GET", "/repos/o/r/labels") => reply(200, json!([])),
            ("POST", "/repos/o/r/labels") => reply(201, json!({"id": 1, "name": s.json()["name"]})),
            ("GET", "/repos/o/r/issues" | "/repos/o/r/pulls") => reply(200, json!([])),
            _ => reply(418, json!({"message": "not scripted"})),
        };
        with_headers(answer, &quota)
    })
    .await;
    let dir = TempDir::new().unwrap();
    let projects = dir.path().join("projects");
    let home = dir.path().join("home");
    let tmux = dir.path().join("tmux");
    for d in [&projects, &home, &tmux] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(
        projects.join("gh.toml"),
        format!(
            "name = \"gh\"\nrepo = \"o/r\"\n[forge]\nkind = \"github\"\nurl = \"{}\"\n\
             token_env = \"GH_TOKEN\"\n[agent]\ncommand = \"true\"\n",
            mock.url
        ),
    )
    .unwrap();
    let forgehand = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_forgehand"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("TMUX_TMPDIR", &tmux)
            .env("GH_TOKEN", "ghp_daemonTestToken0123456789abcdef")
            .current_dir(dir.path());
        cmd.output()
    };
    let out = forgehand(&["enable", "--state", "state"]).await.unwrap();
    assert!(out.status.success());
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        forgehand(&[
            "run",
            "--once",
            "--projects",
            "projects",
            "--state",
            "state",
        ]),
    )
    .await
    .expect("run --once ends")
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = mock.seen();
    assert!(
        seen.iter().any(|s| s.path == "/repos/o/r/issues"),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.path == "/repos/o/r/pulls"),
        "{seen:?}"
    );
    assert_all_in_openapi(&mock);

    let out = forgehand(&["status", "--state", "state"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("forge quota of gh: 4990/5000 requests left"),
        "{text}"
    );
}
