//! The Claude Code adapter's parts without the CLI: the `~/.claude.json`
//! merge (atomic, locked, keeping every other key), the hooks and their
//! exclusion from commits, readiness on real screens, and the transcript
//! usage parser.

use std::collections::HashMap;

use forgehand::agent::claude::{self, Consent, global_config, hooks, transcript};
use forgehand::agent::{AgentAdapter, SessionCtx};
use forgehand::store::TokenUsage;
use serde_json::{Value, json};

use crate::support::git;

#[test]
fn consent_keeps_the_users_keys_and_approves_the_last_20_characters() {
    let dir = tempfile::tempdir().unwrap();
    let path = global_config::path(dir.path());
    std::fs::write(
        &path,
        r#"{"userNote": 1, "customApiKeyResponses": {"approved": ["old"], "rejected": ["ABCDEFGHIJ0123456789"]},
            "projects": {"/other": {"hasTrustDialogAccepted": false, "x": [1]}}}"#,
    )
    .unwrap();
    let consent = Consent {
        folder: "/wt/42".into(),
        bypass_permissions: true,
        api_key_suffix: Some(claude::api_key_suffix("sk-ant-xyzABCDEFGHIJ0123456789 ")),
    };
    global_config::update(&path, |c| consent.apply(c)).unwrap();
    global_config::update(&path, |c| consent.apply(c)).unwrap();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["userNote"], 1);
    assert_eq!(
        v["projects"]["/other"],
        json!({"hasTrustDialogAccepted": false, "x": [1]})
    );
    assert_eq!(v["projects"]["/wt/42"]["hasTrustDialogAccepted"], true);
    assert_eq!(v["hasCompletedOnboarding"], true);
    assert_eq!(v["bypassPermissionsModeAccepted"], true);
    assert_eq!(
        v["customApiKeyResponses"]["approved"],
        json!(["old", "ABCDEFGHIJ0123456789"]),
        "approved once, by its last 20 characters"
    );
    assert_eq!(v["customApiKeyResponses"]["rejected"], json!([]));
    // No temp file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn a_broken_claude_json_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = global_config::path(dir.path());
    std::fs::write(&path, "{ not json").unwrap();
    let err = global_config::update(&path, |c| {
        c.insert("x".into(), json!(1));
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("not valid JSON"), "{err:#}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ not json");
}

#[test]
fn concurrent_merges_lose_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = global_config::path(dir.path());
    std::fs::write(&path, r#"{"userNote": "keep"}"#).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    global_config::update(&path, |c| {
                        c.insert(format!("k{t}-{i}"), json!(i));
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["userNote"], "keep");
    for t in 0..8 {
        for i in 0..10 {
            assert_eq!(v[format!("k{t}-{i}")], json!(i), "k{t}-{i} lost");
        }
    }
}

#[tokio::test]
async fn prepare_writes_consent_hooks_and_the_protocol_and_excludes_them_from_commits() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let repo = dir.path().join("repo");
    let session_dir = dir.path().join("session");
    for d in [&home, &repo, &session_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "start"]);
    // An agent's repository of its own, as forgehand makes them.
    let worktree = dir.path().join("wt");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            repo.to_str().unwrap(),
            worktree.to_str().unwrap(),
        ],
    );
    git(&worktree, &["checkout", "-q", "-b", "fix/issue-42"]);
    let env = vec![
        ("HOME".to_string(), home.display().to_string()),
        (
            "ANTHROPIC_API_KEY".to_string(),
            "sk-ant-abcdefghijklmnopqrstuvwxyz".to_string(),
        ),
    ];
    let ctx = SessionCtx {
        worktree: &worktree,
        session_dir: &session_dir,
        command: "claude --dangerously-skip-permissions",
        env: &env,
        protocol: "the protocol text",
    };
    let extra = AgentAdapter::Claude.prepare(&ctx).await.unwrap();
    assert_eq!(
        extra.contains(&("IS_SANDBOX".to_string(), "1".to_string())),
        nix::unistd::geteuid().is_root()
    );
    assert!(
        AgentAdapter::Generic
            .prepare(&ctx)
            .await
            .unwrap()
            .is_empty()
    );

    let settings: Value = serde_json::from_str(
        &std::fs::read_to_string(worktree.join(".claude/settings.local.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(settings["hooks"], hooks::hooks());
    for event in ["Stop", "SessionEnd", "StopFailure", "SessionStart"] {
        assert!(settings["hooks"][event].is_array(), "{event}");
    }
    assert_eq!(
        std::fs::read_to_string(session_dir.join("protocol.md")).unwrap(),
        "the protocol text"
    );
    let status = git(
        &worktree,
        &["status", "--porcelain", "--untracked-files=all"],
    );
    assert!(status.trim().is_empty(), "hooks show up for git: {status}");

    // The StopFailure hook, run as Claude Code would, writes the phase.
    let phase = session_dir.join("phase");
    let rate_limit = settings["hooks"]["StopFailure"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["matcher"] == "rate_limit")
        .unwrap()["hooks"][0]["command"]
        .as_str()
        .unwrap()
        .to_string();
    let out = std::process::Command::new("sh")
        .args(["-c", &rate_limit])
        .env("FORGEHAND_PHASE_FILE", &phase)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&phase).unwrap(),
        "PHASE:failed\nReason: Claude Code stopped: rate_limit\n"
    );

    // Cleanup forgets the worktree and removes its transcripts.
    let real = std::fs::canonicalize(&worktree)
        .unwrap()
        .display()
        .to_string();
    let transcripts = home
        .join(".claude/projects")
        .join(transcript::folder_name(&real));
    std::fs::create_dir_all(&transcripts).unwrap();
    std::fs::write(transcripts.join("s.jsonl"), "{}\n").unwrap();
    AgentAdapter::Claude.cleanup(&ctx).await.unwrap();
    assert!(!transcripts.exists());
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join(".claude.json")).unwrap()).unwrap();
    assert!(config["projects"].get(&real).is_none(), "{config:#}");
    assert_eq!(config["hasCompletedOnboarding"], true);
}

/// Screens captured from Claude Code 2.1.330 in tmux.
const TRUST_DIALOG: &str = "────────────────────────────────────────
 Accessing workspace:
 /tmp/spike/wt
 Quick safety check: Is this a project you created or one you trust?
 ❯ No, exit
   Yes, I trust this folder
 Enter to confirm · Esc to cancel
";
const READY: &str = " ▐▛███▛█   Claude Code v2.1.330
▝▜██████▀  Opus 5.5 · API Usage Billing
 ▝▝   ▝▝   /tmp/spike/wt
                                                         ◐ medium · /effort
────────────────────────────────────────────────────────────
❯ 
────────────────────────────────────────────────────────────
  ⏵⏵ bypass permissions on (shift+tab to cycle) · ← for agents
";

#[test]
fn ready_is_the_prompt_box_without_a_dialog() {
    assert!(claude::is_ready(READY, "❯"));
    assert!(!claude::is_ready(TRUST_DIALOG, "❯"));
    assert!(!claude::is_ready("❯ 1. Dark mode\n", "❯"));
    let with_placeholder = READY.replace("❯ \n", "❯ Once fixed, resend your message\n");
    assert!(claude::is_ready(&with_placeholder, "❯"));
    // The generic adapter only looks for the pattern.
    assert!(AgentAdapter::Generic.is_ready(TRUST_DIALOG, "❯"));
    assert!(!AgentAdapter::Claude.is_ready(TRUST_DIALOG, "❯"));
}

#[test]
fn transcript_usage_counts_each_message_once() {
    let line = |id: &str, i: u64, o: u64| {
        json!({"type": "assistant", "uuid": format!("u-{id}-{o}"), "message": {"id": id, "role": "assistant",
            "usage": {"input_tokens": i, "output_tokens": o, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 4}}})
        .to_string()
    };
    let text = [
        json!({"type": "user", "message": {"role": "user", "content": "hi"}}).to_string(),
        line("msg_1", 100, 10),
        // The same message again, one entry per content block.
        line("msg_1", 100, 10),
        line("msg_2", 50, 5),
        "{ half a line".to_string(),
    ]
    .join("\n");
    assert_eq!(
        transcript::usage(&text),
        TokenUsage {
            input: 150,
            output: 15,
            cache_creation: 6,
            cache_read: 8
        }
    );
    let mut seen = HashMap::new();
    transcript::usage_in_text("", &mut seen);
    assert!(seen.is_empty());
    assert_eq!(transcript::folder_name("/tmp/a_b.c/wt"), "-tmp-a-b-c-wt");
}

#[test]
fn agent_kind_is_generic_unless_set_and_unknown_kinds_are_errors() {
    use forgehand::config::{AgentKind, load_file_with};
    let dir = tempfile::tempdir().unwrap();
    let file = |kind: &str| {
        let path = dir.path().join("proj.toml");
        std::fs::write(
            &path,
            format!(
                "name = \"proj\"\nrepo = \"o/r\"\n\n[forge]\nkind = \"forgejo\"\nurl = \"https://f.example\"\n\
                 token_env = \"FORGE_TOKEN\"\n\n[agent]\ncommand = \"claude\"\n{kind}\n"
            ),
        )
        .unwrap();
        path
    };
    let env = |k: &str| (k == "FORGE_TOKEN").then(|| "t".to_string());
    let kind_of = |line: &str| load_file_with(&file(line), &env).map(|p| p.agent.kind);
    assert_eq!(kind_of("").unwrap(), AgentKind::Generic);
    assert_eq!(kind_of("kind = \"generic\"").unwrap(), AgentKind::Generic);
    assert_eq!(kind_of("kind = \"claude\"").unwrap(), AgentKind::Claude);
    let errors = kind_of("kind = \"codex\"").unwrap_err();
    let text = errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("[agent] kind")
            && text.contains("unknown agent kind \"codex\"; allowed: generic, claude"),
        "{text}"
    );
}
