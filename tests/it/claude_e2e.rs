//! End to end with the real Claude Code CLI (pinned, installed by `.ci/run`
//! into `$HOME/.cache/forgehand/claude-code-<version>`, or wherever
//! `FORGEHAND_CLAUDE_BIN` points): the daemon with `[agent] kind = "claude"`
//! against the fake Forgejo, with Claude Code talking to the scripted model
//! server on loopback, in a fresh `$HOME` that already holds the user's own
//! `.claude.json`. A missing CLI fails these tests; it never skips them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_forge::fixture::git;
use crate::fake_forge::{CiBehaviour, ReviewBehaviour};
use crate::harness::{Harness, OTHER_SECRET, ProjectFile, STEP, TOKEN, auto};
use crate::model_server::{Mode, ModelServer};
use crate::support::wait_until;

pub const CLAUDE_VERSION: &str = "2.1.330";
const API_KEY: &str = "sk-ant-test-0123456789abcdefghijKLMNOPQRST";
const TITLE: &str = "Add a greeting";
/// Claude Code's turns take seconds each; a whole path takes a few of them.
const LONG: Duration = Duration::from_secs(180);

/// The pinned CLI; a missing one fails the test.
pub fn claude_bin() -> PathBuf {
    let bin = match std::env::var_os("FORGEHAND_CLAUDE_BIN") {
        Some(b) => PathBuf::from(b),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(format!(
            ".cache/forgehand/claude-code-{CLAUDE_VERSION}/node_modules/.bin/claude"
        )),
    };
    assert!(
        bin.exists(),
        "no Claude Code CLI at {} (set FORGEHAND_CLAUDE_BIN or run .ci/run, which installs \
         @anthropic-ai/claude-code@{CLAUDE_VERSION} there with npm)",
        bin.display()
    );
    bin
}

/// The user's own settings, which must survive forgehand's changes.
fn user_settings() -> Value {
    json!({
        "userNote": "mine, keep it",
        "projects": { "/home/someone/elsewhere": { "hasTrustDialogAccepted": false, "allowedTools": ["Read"] } },
    })
}

/// A harness running Claude Code against `model`, with issue #42 ready.
async fn setup(model: &ModelServer) -> (Harness, u64) {
    let mut h = Harness::new("", "").await;
    h.write_project_file(&ProjectFile {
        agent_command: Some(format!(
            "{} --dangerously-skip-permissions",
            claude_bin().display()
        )),
        agent_extra: r#"kind = "claude"
pass_env = ["ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "DISABLE_AUTOUPDATER", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"]"#,
        // The CLI's install (node_modules, with the `.bin` link into it), which
        // may be in a folder the sandbox hides.
        readable: vec![
            claude_bin()
                .parent()
                .and_then(Path::parent)
                .expect("<prefix>/node_modules/.bin/claude")
                .to_path_buf(),
        ],
        ..ProjectFile::default()
    });
    for (k, v) in [
        ("ANTHROPIC_BASE_URL", model.url()),
        ("ANTHROPIC_API_KEY", API_KEY),
        ("DISABLE_AUTOUPDATER", "1"),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
    ] {
        h.env.push((k.to_string(), v.to_string()));
    }
    std::fs::write(
        h.home.join(".claude.json"),
        serde_json::to_string_pretty(&user_settings()).unwrap(),
    )
    .expect("writing the user's .claude.json");
    // Issue #42: the session is dev-proj-42.
    for i in 1..42 {
        let n = h.forge.create_issue(&format!("old {i}"), "", &[]);
        h.forge.close_issue(n);
    }
    let n = h.forge.create_issue(
        TITLE,
        "Write a friendly greeting to greeting.txt.",
        &["backlog"],
    );
    assert_eq!(n, 42);
    (h, n)
}

fn claude_json(h: &Harness) -> Value {
    let text = std::fs::read_to_string(h.home.join(".claude.json")).expect("reading .claude.json");
    serde_json::from_str(&text).expect(".claude.json is JSON")
}

fn real(p: &Path) -> String {
    std::fs::canonicalize(p).unwrap().display().to_string()
}

/// The issue reaches the model through Claude Code in `dev-proj-42`, then a
/// CI failure, then a review; the PR merges. The user's settings survive, no
/// `.claude/` file reaches the repository, the forge token never reaches the
/// session, and the tokens used show in `forgehand status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_takes_an_issue_through_ci_failure_and_review_to_merge() {
    let model = ModelServer::start(Mode::Work {
        task_marker: TITLE.into(),
    })
    .await;
    let (mut h, n) = setup(&model).await;
    h.forge.set_behaviour(auto(
        CiBehaviour::FailFirst(1),
        ReviewBehaviour::RequestChangesOnce {
            body: "Please be more polite.".into(),
            comments: vec![],
        },
    ));
    h.enable();
    h.start_daemon();

    let session = h.session(n);
    assert_eq!(session, "dev-proj-42");
    let task = model.wait_for_user_text(TITLE, LONG).await;
    assert!(
        task.contains("PHASE:awaiting_ci"),
        "the protocol came with the task: {task}"
    );
    assert!(h.has_session(&session));

    // Consent was given before the start, next to the user's own settings.
    let worktree = real(&h.worktree(n));
    let config = claude_json(&h);
    assert_eq!(config["userNote"], "mine, keep it");
    assert_eq!(config["hasCompletedOnboarding"], true);
    assert_eq!(
        config["projects"][&worktree]["hasTrustDialogAccepted"],
        true
    );
    assert!(
        config["customApiKeyResponses"]["approved"]
            .as_array()
            .unwrap()
            .contains(&json!(&API_KEY[API_KEY.len() - 20..])),
        "{config:#}"
    );

    // Claude Code runs in the sandbox: the pane's program is bubblewrap.
    let pid = h.pane_pid(&session).expect("the pane's process");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains("bwrap") && cmdline.contains("--unshare-pid"),
        "{cmdline}"
    );
    // The session's environment holds no forge secret.
    let env = h.session_env(&session);
    for (k, v) in &env {
        assert!(
            !v.contains(TOKEN) && !v.contains(OTHER_SECRET),
            "secret in the agent's environment: {k}"
        );
    }
    let shown = h.tmux(&["show-environment", "-t", &format!("={session}")]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(!shown.contains(TOKEN), "{shown}");
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("ANTHROPIC_BASE_URL").as_deref(), Some(model.url()));
    if nix::unistd::geteuid().is_root() {
        assert_eq!(get("IS_SANDBOX").as_deref(), Some("1"));
    }

    model.wait_for_user_text("CI failed", LONG).await;
    model.wait_for_user_text("requested changes", LONG).await;
    h.forge
        .wait_until(LONG, |s| !s.issue(n).is_open())
        .await
        .expect("merged and closed");
    let pr = h
        .forge
        .read(|s| s.pull_for_branch(&format!("fix/issue-{n}")).unwrap().number);
    assert!(h.forge.pull(pr).merged);
    h.wait_cleaned_up(n).await;

    // Nothing of .claude/ was ever committed.
    let files = git(&h.git.bare, &["log", "--all", "--name-only", "--format="]);
    assert!(files.contains("greeting.txt"), "{files}");
    assert!(!files.contains(".claude"), "{files}");

    // Cleanup forgot the worktree, and kept what is the user's.
    wait_until("the worktree's entry removed", STEP, || async {
        let config = claude_json(&h);
        config["projects"]
            .get(&worktree)
            .is_none()
            .then_some(config)
    })
    .await;
    let config = claude_json(&h);
    assert_eq!(config["userNote"], "mine, keep it");
    assert_eq!(
        config["projects"]["/home/someone/elsewhere"],
        user_settings()["projects"]["/home/someone/elsewhere"]
    );
    let transcripts = h
        .home
        .join(".claude/projects")
        .join(forgehand::agent::claude::transcript::folder_name(&worktree));
    assert!(!transcripts.exists(), "{} left", transcripts.display());

    let status = h.run(&["status", "--state", &h.state_arg(), "--json"]);
    let claims: Value = serde_json::from_slice(&status.stdout).unwrap();
    let tokens = &claims["issues"][0]["tokens"];
    assert!(tokens["input"].as_u64().unwrap_or(0) >= 120, "{claims:#}");
    assert!(tokens["output"].as_u64().unwrap_or(0) >= 30, "{claims:#}");
    let table = h.run(&["status", "--state", &h.state_arg()]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("TOKENS"));
    h.assert_no_violations();
    // Endpoints Claude Code called that the server does not script: worth knowing.
    eprintln!("unscripted model-server requests: {:?}", model.unknown());
}

/// The model server refuses with 429: Claude Code's StopFailure hook writes
/// `PHASE:failed` with the reason, and forgehand blocks the issue saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_model_ends_as_failed_with_the_reason() {
    let model = ModelServer::start(Mode::Fail(429)).await;
    let (mut h, n) = setup(&model).await;
    h.enable();
    h.start_daemon();
    model.wait_for_user_text(TITLE, LONG).await;
    h.forge
        .wait_until(LONG, |s| s.issue(n).has_label("blocked"))
        .await
        .expect("blocked after the StopFailure");
    let comments = h.bot_comments(n).join("\n");
    assert!(comments.contains("rate_limit"), "{comments}");
    let journal = h.journal(n);
    assert!(
        journal.iter().any(|(k, d)| k == "phase_seen"
            && d.contains("PHASE:failed")
            && d.contains("rate_limit")),
        "{journal:#?}"
    );
}

/// An agent that ends its turns without writing a phase is reminded twice,
/// then taken as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_stops_without_a_phase_is_nudged_then_failed() {
    let model = ModelServer::start(Mode::Chat).await;
    let (mut h, n) = setup(&model).await;
    h.enable();
    h.start_daemon();
    model.wait_for_user_text(TITLE, LONG).await;
    model
        .wait_for_user_text("stopped without writing a phase (reminder 2 of 2)", LONG)
        .await;
    h.forge
        .wait_until(LONG, |s| s.issue(n).has_label("blocked"))
        .await
        .expect("blocked after the reminders");
    let comments = h.bot_comments(n).join("\n");
    assert!(
        comments.contains("stopped 3 times without writing a phase"),
        "{comments}"
    );
    let reminders = model
        .calls()
        .iter()
        .filter(|c| c.user_text.contains("stopped without writing a phase"))
        .count();
    assert_eq!(reminders, 2);
}
