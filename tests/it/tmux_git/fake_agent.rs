//! `scripts/fake-agent` in a real tmux session inside a real worktree, driven the
//! way forgehand drives an agent: pasted messages in, phase file and commits out.

use std::path::{Path, PathBuf};

use forgehand::git::Git;

use super::{WAIT, path_env, spec};
use crate::support::{Forge, TmuxServer, git, wait_for_file};

/// A worktree of a fresh forge and a running fake agent in it.
struct AgentRun {
    server: TmuxServer,
    forge: Forge,
    _state: tempfile::TempDir,
    repo: PathBuf,
    wt: PathBuf,
    session_dir: PathBuf,
    name: String,
}

impl AgentRun {
    async fn start() -> Self {
        let server = TmuxServer::new();
        let forge = Forge::new();
        let state = tempfile::tempdir().unwrap();
        let repo = state.path().join("repos/proj");
        let wt = state.path().join("worktrees/proj/7");
        let session_dir = state.path().join("sessions/dev-proj-7");
        std::fs::create_dir_all(&session_dir).unwrap();
        let git_fh = Git::default();
        git_fh.ensure_clone(&forge.url(), &repo).await.unwrap();
        let refs = git_fh.remote_refs(&repo).await.unwrap();
        git_fh
            .create_agent_repo(&repo, &wt, "fix/issue-7", "main", &refs)
            .await
            .unwrap();

        let var = |k: &str, v: &Path| (k.to_owned(), v.to_str().unwrap().to_owned());
        let env = vec![
            path_env(),
            var("HOME", state.path()),
            ("TERM".to_owned(), "tmux-256color".to_owned()),
            var("FORGEHAND_PHASE_FILE", &session_dir.join("phase")),
            var("FORGEHAND_SUMMARY_FILE", &session_dir.join("summary.md")),
            var("FORGEHAND_SCRATCH_FILE", &session_dir.join("scratch.md")),
            ("FORGEHAND_ISSUE".to_owned(), "7".to_owned()),
            ("FORGEHAND_PROJECT".to_owned(), "proj".to_owned()),
            ("FORGEHAND_BRANCH".to_owned(), "fix/issue-7".to_owned()),
        ];
        let agent = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fake-agent");
        let name = "dev-proj-7".to_owned();
        server
            .tmux
            .new_session(&spec(
                &name,
                &wt,
                env,
                format!("exec '{}'", agent.display()),
            ))
            .await
            .unwrap();
        server.tmux.wait_for_text(&name, "❯", WAIT).await.unwrap();
        Self {
            server,
            forge,
            _state: state,
            repo,
            wt,
            session_dir,
            name,
        }
    }

    /// Says `text` once the previous phase is cleared, so `wait_phase` cannot be
    /// satisfied by the phase the agent wrote before.
    async fn say_fresh(&self, text: &str) {
        match std::fs::remove_file(self.session_dir.join("phase")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("removing the phase file: {e}"),
        }
        self.say(text).await;
    }

    async fn say(&self, text: &str) {
        self.server.tmux.paste(&self.name, text).await.unwrap();
    }

    async fn wait_phase(&self, first_line: &str) -> String {
        let wanted = format!("{first_line}\n");
        wait_for_file(&self.session_dir.join("phase"), WAIT, |t| {
            t.starts_with(&wanted)
        })
        .await
    }

    async fn commits_ahead(&self) -> u32 {
        let git_fh = Git::default();
        let head = git_fh
            .take_agent_head(&self.repo, &self.wt, "7", &[])
            .await
            .unwrap();
        git_fh
            .commits_ahead(&self.repo, "origin/main", &head)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn fake_agent_commits_then_acknowledges_ci() {
    let run = AgentRun::start().await;
    let task = "Issue #7: Fix the widget\n\nThe widget breaks on $(empty) input.\nPlease fix it.";
    run.say(task).await;
    run.wait_phase("PHASE:awaiting_ci").await;

    assert_eq!(run.commits_ahead().await, 1);
    assert!(run.wt.join("work/issue-7.txt").exists());
    assert!(!Git::default().is_dirty(&run.wt).await.unwrap());
    let summary = std::fs::read_to_string(run.session_dir.join("summary.md")).unwrap();
    assert!(summary.contains("#7"), "{summary}");
    let transcript = std::fs::read_to_string(run.session_dir.join("agent-transcript.log")).unwrap();
    assert!(transcript.contains(task), "{transcript}");

    run.say("CI passed: waiting for review.").await;
    run.wait_phase("PHASE:awaiting_review").await;

    run.say_fresh("Changes requested (round 1 of 5):\nsrc/lib.rs:3: rename this")
        .await;
    run.wait_phase("PHASE:awaiting_ci").await;
    assert_eq!(run.commits_ahead().await, 2);
    assert_eq!(
        run.forge.branch_sha("fix/issue-7"),
        None,
        "the agent never pushes"
    );
    assert_eq!(
        run.server.tmux.pane_dead(&run.name).await.unwrap(),
        Some(false)
    );
}

#[tokio::test]
async fn fake_agent_escalates_then_continues_on_the_reply() {
    let run = AgentRun::start().await;
    run.say("Issue #7: Rotate keys\n\nfake-agent: escalate which key store should I use?")
        .await;
    let phase = run.wait_phase("PHASE:escalate").await;
    assert_eq!(
        phase,
        "PHASE:escalate\nReason: which key store should I use?\n"
    );
    assert_eq!(run.commits_ahead().await, 0);

    run.say("Use the vault one.").await;
    run.wait_phase("PHASE:awaiting_ci").await;
    assert_eq!(run.commits_ahead().await, 1);
    let transcript = std::fs::read_to_string(run.session_dir.join("agent-transcript.log")).unwrap();
    assert!(transcript.contains("Use the vault one."), "{transcript}");
}

#[tokio::test]
async fn fake_agent_rebases_onto_the_moved_primary_branch() {
    let run = AgentRun::start().await;
    run.say("Issue #7: Fix it").await;
    run.wait_phase("PHASE:awaiting_ci").await;

    // The primary branch moves on the forge; forgehand fetches, then asks to rebase.
    let other = run.forge.dir.path().join("other");
    git(
        run.forge.dir.path(),
        &["clone", "--quiet", "forge.git", "other"],
    );
    std::fs::write(other.join("NEWS.md"), "news\n").unwrap();
    git(&other, &["add", "NEWS.md"]);
    git(&other, &["commit", "--quiet", "-m", "news"]);
    git(&other, &["push", "--quiet", "origin", "main"]);
    Git::default().fetch(&run.repo).await.unwrap();
    // What forgehand does before asking: the agent's origin follows the clone.
    Git::default()
        .refresh_agent_origin(&run.wt, &[])
        .await
        .unwrap();
    let new_main = run.forge.branch_sha("main").unwrap();
    assert_eq!(run.commits_ahead().await, 1);
    assert_ne!(
        git(&run.wt, &["merge-base", "HEAD", "origin/main"]),
        new_main
    );

    run.say_fresh("Merge conflict: rebase fix/issue-7 onto origin/main, then PHASE:awaiting_ci")
        .await;
    run.wait_phase("PHASE:awaiting_ci").await;
    assert_eq!(
        git(&run.wt, &["merge-base", "HEAD", "origin/main"]),
        new_main
    );
    assert_eq!(run.commits_ahead().await, 1);
}

#[tokio::test]
async fn fake_agent_refuses_with_a_json_summary() {
    let run = AgentRun::start().await;
    run.say(
        "Issue #7: Rewrite everything\n\nfake-agent: refuse too_large needs five separate changes",
    )
    .await;
    let phase = run.wait_phase("PHASE:failed").await;
    assert_eq!(phase, "PHASE:failed\nReason: refused\n");
    let summary = std::fs::read_to_string(run.session_dir.join("summary.md")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({"status": "too_large", "detail": "needs five separate changes"})
    );
    assert_eq!(run.commits_ahead().await, 0);
}

#[tokio::test]
async fn fake_agent_no_commit_then_commits_on_the_next_message() {
    let run = AgentRun::start().await;
    run.say("Issue #7\nfake-agent: no-commit").await;
    run.wait_phase("PHASE:awaiting_ci").await;
    assert_eq!(run.commits_ahead().await, 0);
    run.say_fresh("There are no commits ahead of main: commit your work.")
        .await;
    run.wait_phase("PHASE:awaiting_ci").await;
    assert_eq!(run.commits_ahead().await, 1);
}

#[tokio::test]
async fn fake_agent_exit_directive_leaves_a_dead_pane() {
    let run = AgentRun::start().await;
    run.say("Issue #7\nfake-agent: exit").await;
    crate::support::wait_until("the pane to die", WAIT, || async {
        (run.server.tmux.pane_dead(&run.name).await.unwrap() == Some(true)).then_some(())
    })
    .await;
    assert!(!run.session_dir.join("phase").exists());
    let screen = run.server.tmux.capture_pane(&run.name, 50).await.unwrap();
    assert!(screen.contains("Exiting"), "{screen}");
}
