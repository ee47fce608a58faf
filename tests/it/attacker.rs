//! The trust boundary, tried by a hostile agent (`scripts/attacker-agent`): it
//! tries every route to the daemon's secrets and to approving itself, commits
//! what it found, and its issue must still merge with nothing of the secrets
//! in the repository, on the forge, in a hook's output or the journal.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::fake_forge::{CiBehaviour, ReviewBehaviour};
use crate::harness::{Harness, OTHER_SECRET, PROJECT, ProjectFile, STEP, TOKEN, auto};
use crate::support::{git, wait_until};

/// Every form of a secret that must not leak: the tokens, and the token as
/// git's `Authorization` header carries it.
fn secrets() -> Vec<String> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
    vec![TOKEN.to_string(), OTHER_SECRET.to_string(), basic]
}

fn assert_clean(what: &str, text: &str) {
    for secret in secrets() {
        assert!(!text.contains(&secret), "a secret in {what}:\n{text}");
    }
    assert!(
        !text.contains("Authorization"),
        "an auth header in {what}:\n{text}"
    );
}

fn attacker_command() -> String {
    crate::harness::agent_command("attacker-agent")
}

/// Everything ever committed anywhere in the forge's repository.
fn whole_history(bare: &Path) -> String {
    git(bare, &["log", "--all", "-p", "--format=%H %s%n%b"])
}

/// A file of the merged primary branch.
fn merged_file(bare: &Path, path: &str) -> String {
    git(bare, &["show", &format!("main:{path}")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_agent_reaches_no_secret_approves_nothing_and_still_merges() {
    let mut h = Harness::new("", "").await;
    h.write_project_file(&ProjectFile {
        agent_command: Some(attacker_command()),
        ..ProjectFile::default()
    });
    let canary = h.dir.path().join("canary.txt");
    std::fs::write(&canary, "untouched\n").unwrap();
    let clone_config = h.state.join("repos").join(PROJECT).join("config");
    let n = h.forge.create_issue(
        "Add a greeting",
        &format!(
            "Print hello.\n\nattacker: canary {}\nattacker: projects {}\nattacker: forgehand {}\n",
            canary.display(),
            h.projects.display(),
            env!("CARGO_BIN_EXE_forgehand"),
        ),
        &["backlog"],
    );
    h.forge
        .set_behaviour(auto(CiBehaviour::Succeed, ReviewBehaviour::None));
    h.enable();
    h.start_daemon();
    let pr = h.wait_for_pr(n).await;
    // CI passes; nobody has reviewed yet: the agent cannot have approved itself.
    wait_until(
        "CI green and the agent waiting for a review",
        STEP,
        || async {
            h.journal(n)
                .iter()
                .any(|(k, d)| k == "phase_seen" && d.contains("awaiting_review"))
                .then_some(())
        },
    )
    .await;
    assert!(h.forge.reviews(pr).is_empty(), "{:?}", h.forge.reviews(pr));
    assert!(!h.forge.pull(pr).merged, "merged without a person's review");
    h.forge
        .submit_review(pr, "reviewer", "APPROVED", "ok", None, &[]);
    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
        .await
        .unwrap_or_else(|e| panic!("the attacker's issue merged: {e}\n{:#?}", h.journal(n)));
    // The tmux server forgehand started holds none of the daemon's variables.
    let server_env = h.tmux(&["show-environment", "-g"]);
    let server_env = String::from_utf8_lossy(&server_env.stdout);
    assert!(server_env.contains("PATH="), "{server_env}");
    assert_clean("the tmux server's environment", &server_env);
    assert!(!server_env.contains("FORGE_TOKEN"), "{server_env}");
    h.wait_cleaned_up(n).await;

    // What the agent found, as merged.
    let bare = h.git.bare.clone();
    let loot = |name: &str| merged_file(&bare, &format!("loot/{name}"));
    let proc = loot("proc.txt");
    let files = loot("files.txt");
    let tmux = loot("tmux.txt");
    let git_routes = loot("git.txt");
    let approve = loot("approve.txt");
    let links = loot("links.txt");
    // Own PID namespace: only the sandbox's few processes (bwrap, the shell,
    // the agent, what it runs), none of the daemon's or tmux's.
    let visible: usize = proc
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(visible < 10, "{proc}");
    assert!(
        !proc.contains(": tmux") && !proc.contains("forgehand run"),
        "{proc}"
    );
    // The state folder shows only the agent's own session and clone.
    assert!(files.contains("forgehand.db: '<No such file"), "{files}");
    assert!(
        !files.contains("token_env"),
        "the projects folder is readable: {files}"
    );
    // What it wrote there went to a private scratch space, not the real folders.
    for dir in [
        &h.state,
        &h.state.join("sessions"),
        &h.state.join("repos"),
        &h.home,
        &h.projects,
    ] {
        assert!(
            !dir.join("attacker.txt").exists(),
            "wrote into {}",
            dir.display()
        );
    }
    // Its environment was built from scratch: no tmux variables either.
    let env = loot("env.txt");
    assert!(
        !env.contains("TMUX=") && !env.contains("TMUX_PANE="),
        "{env}"
    );
    // No tmux server to ask.
    assert!(!tmux.contains("FORGE_TOKEN"), "{tmux}");
    // forgehand's clone is read-only to it.
    assert!(!git_routes.contains("WROTE"), "{git_routes}");
    let config = std::fs::read_to_string(&clone_config).unwrap();
    assert!(
        !config.contains("hooksPath") && !config.contains("fsmonitor"),
        "{config}"
    );
    assert!(!approve.contains("WROTE"), "{approve}");
    assert!(!links.contains("LINKED"), "{links}");
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched\n");

    // No secret anywhere it could have put one.
    for (what, text) in [
        ("proc", proc.as_str()),
        ("tmux", tmux.as_str()),
        ("files", files.as_str()),
        ("env", loot("env.txt").as_str()),
        ("git", git_routes.as_str()),
    ] {
        assert_clean(what, text);
    }
    assert_clean("the repository's history", &whole_history(&bare));
    for issue in [n, pr] {
        for c in h.forge.comments(issue) {
            assert_clean("a comment", &c.body);
        }
        assert_clean("an issue or PR body", &h.forge.issue(issue).body);
    }
    let hook_loot = h.session_dir(&h.session(n)).join("hook-loot.txt");
    if let Ok(text) = std::fs::read_to_string(&hook_loot) {
        assert_clean("the hooks' output", &text);
    }
    for (_, detail) in h.journal(n) {
        assert_clean("the journal", &detail);
    }
    h.assert_no_violations();
}

/// A named pipe for a phase file, and a 10 MB one, beside a normal issue:
/// nothing hangs, nothing grows, all three merge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_and_a_huge_phase_file_stall_nothing() {
    let mut h = Harness::new("", "").await;
    h.write_project_file(&ProjectFile {
        agent_command: Some(attacker_command()),
        agent_extra: "max_sessions = 3",
        ..ProjectFile::default()
    });
    h.forge.set_behaviour(auto(
        CiBehaviour::Succeed,
        ReviewBehaviour::ApproveWhenGreen,
    ));
    let fifo = h
        .forge
        .create_issue("Pipe", "attacker: phase fifo\n", &["backlog"]);
    let huge = h
        .forge
        .create_issue("Huge", "attacker: phase huge\n", &["backlog"]);
    let normal = h.forge.create_issue("Normal", "Plain work.", &["backlog"]);
    h.enable();
    h.start_daemon();
    for n in [normal, fifo, huge] {
        let pr = h.wait_for_pr(n).await;
        h.forge
            .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
            .await
            .unwrap_or_else(|e| panic!("#{n} merged: {e}"));
    }
    let journal = h.journal(fifo);
    assert!(
        journal
            .iter()
            .any(|(k, d)| k == "phase_invalid" && d.contains("named pipe")),
        "{journal:?}"
    );
    let said = h.agent_received(fifo, "named pipe").await;
    assert!(said.contains("plain file"), "{said}");
    // The 10 MB summary became a capped PR body, with a note.
    let pr = h.wait_for_pr(huge).await;
    let body = h.forge.issue(pr).body;
    assert!(body.len() <= 64 * 1024, "{}", body.len());
    assert!(body.contains("cut here") && body.contains(&format!("Fixes #{huge}")));
    assert!(
        h.journal(huge)
            .iter()
            .any(|(k, d)| k == "phase_invalid" && d.contains("over 4096 bytes"))
    );
    for n in [normal, fifo, huge] {
        h.wait_cleaned_up(n).await;
    }
    let (code, _) = h.stop_daemon();
    assert_eq!(code, Some(0));
    let db = h.state.join("forgehand.db");
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    assert!(size < 20 * 1024 * 1024, "the database grew to {size} bytes");
}

/// The README's `forgehand run`, with its default relative `--projects
/// projects` and `--state state`, from the folder that holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_the_default_relative_paths_works() {
    let h = Harness::new("", "").await;
    let n = h
        .forge
        .create_issue("Add a greeting", "Print hello.", &["backlog"]);
    let root: PathBuf = h.dir.path().to_path_buf();
    assert_eq!(h.projects, root.join("projects"));
    assert_eq!(h.state, root.join("state"));
    h.enable();
    // `command` runs in the harness's folder; no path arguments at all.
    let once = h.run(&["run", "--once"]);
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    wait_until("the agent's task delivered", STEP, || async {
        std::fs::read_to_string(h.transcript(n))
            .ok()
            .filter(|t| t.contains("Add a greeting"))
            .map(|_| ())
    })
    .await;
    assert!(h.worktree(n).join(".git").is_dir());
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&h.state), 0o700);
    assert_eq!(mode(&h.state.join("forgehand.db")), 0o600);
}
