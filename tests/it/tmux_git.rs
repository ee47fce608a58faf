//! tmux and git wrappers against real tmux servers and real git repositories, and the
//! scripted agent (`scripts/fake-agent`) driven through them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use forgehand::git::{Git, GitAuth};
use forgehand::tmux::{SessionSpec, sanitize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Forge, TmuxServer, git, wait_for_file, wait_until};

mod fake_agent;

const WAIT: Duration = Duration::from_secs(20);

fn spec(name: &str, cwd: &Path, env: Vec<(String, String)>, command: String) -> SessionSpec {
    SessionSpec {
        name: name.to_owned(),
        cwd: cwd.to_path_buf(),
        width: 120,
        height: 40,
        env,
        sandbox: Vec::new(),
        command,
        pane_log: None,
    }
}

fn path_env() -> (String, String) {
    (
        "PATH".to_owned(),
        std::env::var("PATH").expect("PATH is set"),
    )
}

#[test]
fn sanitize_strips_controls_and_keeps_text() {
    assert_eq!(sanitize("plain text"), "plain text");
    assert_eq!(sanitize("a\r\nb\rc\nd\te"), "a\nb\nc\nd\te");
    assert_eq!(sanitize("\x1b[31mred\x1b[0m"), "red");
    assert_eq!(sanitize("x\x1b[?2004ly"), "xy");
    assert_eq!(sanitize("\x1b]0;title\x07after"), "after");
    assert_eq!(sanitize("\x1b]8;;http://e\x1b\\link\x1b]8;;\x1b\\"), "link");
    assert_eq!(sanitize("\x1bPq#0;1\x1b\\dcs"), "dcs");
    assert_eq!(sanitize("\x1b(Bcharset"), "charset");
    assert_eq!(sanitize("\u{9b}31mc1\u{9d}osc\u{9c}!"), "c1!");
    assert_eq!(
        sanitize("bell\x07 nul\0 del\x7f eot\x04 ^c\x03"),
        "bell nul del eot ^c"
    );
    assert_eq!(sanitize("\u{85}next line\u{9f}"), "next line");
    assert_eq!(
        sanitize("ünïcødé ❯ $(rm -rf /) C-c Enter"),
        "ünïcødé ❯ $(rm -rf /) C-c Enter"
    );
    assert_eq!(sanitize("trailing escape \x1b"), "trailing escape ");
}

#[tokio::test]
async fn new_session_runs_in_cwd_with_only_the_given_environment() {
    let server = TmuxServer::new();
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("work dir");
    std::fs::create_dir(&cwd).unwrap();

    // The server is started by a process holding a secret, as the daemon would.
    let started = server
        .raw()
        .args(["new-session", "-d", "-s", "holder", "cat"])
        .env("FAKE_FORGE_TOKEN", "hunter2-secret")
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    let global = server
        .raw()
        .args(["show-environment", "-g", "FAKE_FORGE_TOKEN"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&global.stdout).contains("hunter2-secret"),
        "the server's global environment should hold the secret for this test to mean anything"
    );

    let env_file = tmp.path().join("env.txt");
    let pwd_file = tmp.path().join("pwd.txt");
    let given = vec![
        path_env(),
        ("FORGEHAND_ISSUE".to_owned(), "7".to_owned()),
        ("WITH_SPACES".to_owned(), "a b 'c' $HOME".to_owned()),
    ];
    let command = format!(
        "env > '{}'; pwd -P > '{}'; exec cat",
        env_file.display(),
        pwd_file.display()
    );
    server
        .tmux
        .new_session(&spec("dev-proj-7", &cwd, given.clone(), command))
        .await
        .unwrap();

    let pwd = wait_for_file(&pwd_file, WAIT, |t| t.ends_with('\n')).await;
    assert_eq!(PathBuf::from(pwd.trim()), cwd.canonicalize().unwrap());
    let env_text = std::fs::read_to_string(&env_file).unwrap();
    let seen: BTreeMap<&str, &str> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        // Variables the shell itself sets.
        .filter(|(k, _)| !matches!(*k, "PWD" | "OLDPWD" | "SHLVL" | "_"))
        .collect();
    let expected: BTreeMap<&str, &str> = given
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(seen, expected);

    let pid = server.tmux.pane_pid("dev-proj-7").await.unwrap().unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("FORGEHAND_ISSUE=7"), "{environ}");
    assert!(!environ.contains("FAKE_FORGE_TOKEN"), "{environ}");
    assert!(!environ.contains("TMUX"), "{environ}");

    assert!(server.tmux.has_session("dev-proj-7").await.unwrap());
    assert!(
        !server.tmux.has_session("dev-proj").await.unwrap(),
        "no prefix match"
    );
    let mut sessions = server.tmux.list_sessions().await.unwrap();
    sessions.sort();
    assert_eq!(sessions, ["dev-proj-7", "holder"]);
    assert_eq!(
        server.tmux.pane_dead("dev-proj-7").await.unwrap(),
        Some(false)
    );
}

#[tokio::test]
async fn paste_delivers_text_verbatim_minus_control_characters() {
    let server = TmuxServer::new();
    let tmp = tempfile::tempdir().unwrap();
    let out_file = tmp.path().join("received.txt");
    server
        .tmux
        .new_session(&spec(
            "dev-proj-1",
            tmp.path(),
            vec![path_env()],
            format!("exec cat > '{}'", out_file.display()),
        ))
        .await
        .unwrap();

    let text = "Fix \x1b[31mthe\x1b[0m bug $(rm -rf /) `id` ; C-c\r\n\
                second line\tC-d Enter \\e \"quoted\" 'single'\n\
                \x1b]0;evil title\x07third ❯ line\x03\x04\x1a\n\
                last";
    let expected = format!("{}\n", sanitize(text));
    assert!(expected.contains("$(rm -rf /)") && expected.contains("C-c"));
    assert!(!expected.contains('\x1b') && !expected.contains('\x03'));

    server.tmux.paste("dev-proj-1", text).await.unwrap();
    let got = wait_for_file(&out_file, WAIT, |t| t.ends_with("last\n")).await;
    assert_eq!(got, expected);

    let buffers = server.raw().arg("list-buffers").output().unwrap();
    assert!(buffers.stdout.is_empty(), "the paste buffer is deleted");
}

#[tokio::test]
async fn dead_pane_is_detected_and_still_capturable() {
    let server = TmuxServer::new();
    let tmp = tempfile::tempdir().unwrap();
    let name = "dev-proj-2";
    server
        .tmux
        .new_session(&spec(
            name,
            tmp.path(),
            vec![path_env()],
            "echo marker-$((6*7)); exit 3".to_owned(),
        ))
        .await
        .unwrap();

    wait_until("the pane to die", WAIT, || async {
        (server.tmux.pane_dead(name).await.unwrap() == Some(true)).then_some(())
    })
    .await;
    // tmux may mark the pane dead a moment before it has drawn the last
    // output it read (seen under load): the screen is waited for, not
    // taken once.
    wait_until("the dead pane's screen", WAIT, || async {
        let screen = server.tmux.capture_pane(name, 50).await.unwrap();
        screen.contains("marker-42").then_some(())
    })
    .await;
    assert_eq!(server.tmux.pane_dead(name).await.unwrap(), Some(true));
    assert!(server.tmux.pane_pid(name).await.unwrap().is_some());

    let err = server
        .tmux
        .wait_for_text(name, "never printed", WAIT)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("exited"), "{err:#}");
    server
        .tmux
        .wait_for_text(name, "marker-42", WAIT)
        .await
        .unwrap();

    server.tmux.kill_session(name).await.unwrap();
    assert!(!server.tmux.has_session(name).await.unwrap());
    assert_eq!(server.tmux.pane_dead(name).await.unwrap(), None);
    assert_eq!(server.tmux.pane_pid(name).await.unwrap(), None);
    server.tmux.kill_session(name).await.unwrap();
    let err = server
        .tmux
        .wait_for_text(name, "x", WAIT)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("ended"), "{err:#}");
}

#[tokio::test]
async fn no_server_means_no_sessions_rather_than_errors() {
    let server = TmuxServer::new();
    assert!(server.tmux.list_sessions().await.unwrap().is_empty());
    assert!(!server.tmux.has_session("dev-proj-3").await.unwrap());
    assert_eq!(server.tmux.pane_dead("dev-proj-3").await.unwrap(), None);
    server.tmux.kill_session("dev-proj-3").await.unwrap();
    server.tmux.kill_server().await.unwrap();
    assert!(server.tmux.capture_pane("dev-proj-3", 10).await.is_err());
}

#[tokio::test]
async fn pipe_pane_appends_output_to_a_log_with_an_awkward_path() {
    let server = TmuxServer::new();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("it's a $(pane) log");
    let name = "dev-proj-4";
    server
        .tmux
        .new_session(&spec(
            name,
            tmp.path(),
            vec![path_env()],
            "echo ready; exec cat".to_owned(),
        ))
        .await
        .unwrap();
    server
        .tmux
        .wait_for_text(name, "ready", WAIT)
        .await
        .unwrap();
    server.tmux.pipe_pane(name, &log).await.unwrap();
    // Again, as after a restart: `-o` must not start a second pipe.
    server.tmux.pipe_pane(name, &log).await.unwrap();
    server.tmux.paste(name, "logged-line").await.unwrap();
    // cat echoes it once through the tty and prints it once.
    let text = wait_for_file(&log, WAIT, |t| t.matches("logged-line").count() >= 2).await;
    assert!(text.contains("logged-line"));
}

/// A log named in the session's spec keeps even the first output: the pipe
/// is set up in the call that starts the session.
#[tokio::test]
async fn a_session_with_a_pane_log_keeps_its_first_output() {
    let server = TmuxServer::new();
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("it's the \"first\" $(pane) log");
    let name = "dev-proj-5";
    let mut spec = spec(
        name,
        tmp.path(),
        vec![path_env()],
        "echo first-words; exec cat".to_owned(),
    );
    spec.pane_log = Some(log.clone());
    server.tmux.new_session(&spec).await.unwrap();
    wait_for_file(&log, WAIT, |t| t.contains("first-words")).await;
    // Already piping: `pipe_pane` leaves that pipe alone.
    server.tmux.pipe_pane(name, &log).await.unwrap();
    server.tmux.paste(name, "later-line").await.unwrap();
    let text = wait_for_file(&log, WAIT, |t| t.matches("later-line").count() >= 2).await;
    assert_eq!(text.matches("first-words").count(), 1, "{text}");
}

#[tokio::test]
async fn git_auth_config_carries_the_header_and_debug_hides_the_token() {
    let cases = [
        ("a", "eC1hY2Nlc3MtdG9rZW46YQ=="),
        ("ab", "eC1hY2Nlc3MtdG9rZW46YWI="),
        ("abc", "eC1hY2Nlc3MtdG9rZW46YWJj"),
        ("s3cr3t-token", "eC1hY2Nlc3MtdG9rZW46czNjcjN0LXRva2Vu"),
    ];
    for (token, encoded) in cases {
        let config = GitAuth::new(Some(token.to_owned())).config().await.unwrap();
        assert_eq!(
            config,
            [(
                "http.extraHeader".to_owned(),
                format!("Authorization: Basic {encoded}")
            )]
        );
    }
    assert!(GitAuth::new(None).config().await.unwrap().is_empty());

    let auth = GitAuth::new(Some("s3cr3t-token".to_owned()));
    let shown = format!("{auth:?} {:?}", Git::new(auth.clone()));
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}

/// Every file of the clone and of the agent's repository (objects aside), as text.
fn config_texts(repo: &Path, wt: &Path) -> String {
    fn walk(dir: &Path, acc: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("objects") {
                    walk(&path, acc);
                }
            } else {
                acc.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut acc = String::new();
    walk(repo, &mut acc);
    walk(&wt.join(".git"), &mut acc);
    acc
}

#[tokio::test]
async fn clone_agent_repo_commit_push_and_cleanup() {
    let forge = Forge::new();
    let state = tempfile::tempdir().unwrap();
    let repo = state.path().join("repos/proj");
    let wt = state.path().join("worktrees/proj/7");
    let branch = "fix/issue-7";
    let git_fh = Git::new(GitAuth::new(Some("s3cr3t-token".to_owned())));
    let url = forge.url();

    git_fh.ensure_clone(&url, &repo).await.unwrap();
    assert_eq!(git(&repo, &["rev-parse", "origin/main"]), forge.main_sha);
    // Idempotent, and a changed URL is followed.
    git_fh.ensure_clone(&url, &repo).await.unwrap();
    let moved = forge.dir.path().join("moved.git");
    git(
        forge.dir.path(),
        &["clone", "--quiet", "--bare", "forge.git", "moved.git"],
    );
    git_fh
        .ensure_clone(moved.to_str().unwrap(), &repo)
        .await
        .unwrap();
    assert_eq!(
        git(&repo, &["remote", "get-url", "origin"]),
        moved.to_str().unwrap()
    );
    git_fh.ensure_clone(&url, &repo).await.unwrap();

    let refs = git_fh.remote_refs(&repo).await.unwrap();
    assert_eq!(refs.branch("main"), Some(forge.main_sha.as_str()));
    assert_eq!(refs.branch(branch), None);
    let missing = git_fh
        .create_agent_repo(&repo, &wt, branch, "no-such-branch", &refs)
        .await
        .unwrap_err();
    assert!(format!("{missing:#}").contains("no branch origin/no-such-branch"));
    assert!(!wt.exists());
    git_fh
        .create_agent_repo(&repo, &wt, branch, "main", &refs)
        .await
        .unwrap();
    // The agent's repository is its own (not a worktree of the clone),
    // borrows the clone's objects and fetches from the clone.
    assert!(wt.join(".git").is_dir());
    assert!(git_fh.head_sha(&wt).await.is_ok());
    assert_eq!(git_fh.head_sha(&wt).await.unwrap(), forge.main_sha);
    assert_eq!(git(&wt, &["rev-parse", "--abbrev-ref", "HEAD"]), branch);
    assert_eq!(
        git(&wt, &["remote", "get-url", "origin"]),
        repo.to_str().unwrap()
    );
    assert_eq!(git(&wt, &["rev-parse", "origin/main"]), forge.main_sha);
    assert!(!git_fh.is_dirty(&wt).await.unwrap());
    // As `checkout -B <branch> origin/main` would have it, and the agent
    // can fetch what forgehand fetched.
    assert_eq!(
        git(&wt, &["rev-parse", "--abbrev-ref", "@{upstream}"]),
        "origin/main"
    );
    git(&wt, &["fetch", "--quiet", "origin"]);
    assert_eq!(git(&wt, &["rev-parse", "origin/main"]), forge.main_sha);
    assert!(
        git(&repo, &["worktree", "list", "--porcelain"])
            .lines()
            .count()
            <= 3
    );

    std::fs::write(wt.join("fix.txt"), "fixed\n").unwrap();
    assert!(git_fh.is_dirty(&wt).await.unwrap());
    git(&wt, &["add", "fix.txt"]);
    git(&wt, &["commit", "--quiet", "-m", "fix"]);
    assert!(!git_fh.is_dirty(&wt).await.unwrap());
    let take = |git_fh: &Git| {
        let (git_fh, repo, wt) = (git_fh.clone(), repo.clone(), wt.clone());
        async move { git_fh.take_agent_head(&repo, &wt, "7", &[]).await.unwrap() }
    };
    let head = take(&git_fh).await;
    assert_eq!(head, git(&wt, &["rev-parse", "HEAD"]));
    assert_eq!(
        git_fh
            .commits_ahead(&repo, "origin/main", &head)
            .await
            .unwrap(),
        1
    );

    // Re-creating an existing repository keeps the agent's work.
    git_fh
        .create_agent_repo(&repo, &wt, branch, "main", &refs)
        .await
        .unwrap();
    assert_eq!(git(&wt, &["rev-parse", "HEAD"]), head);

    assert_eq!(git_fh.remote_branch_sha(&repo, branch).await.unwrap(), None);
    git_fh
        .push(&repo, &url, &head, branch, false)
        .await
        .unwrap();
    assert_eq!(forge.branch_sha(branch), Some(head.clone()));
    assert_eq!(
        git_fh.remote_branch_sha(&repo, branch).await.unwrap(),
        Some(head.clone())
    );

    // An amend needs a force push; a plain push is refused, the lease allows it.
    git(&wt, &["commit", "--quiet", "--amend", "-m", "fix, amended"]);
    let amended = take(&git_fh).await;
    assert!(
        git_fh
            .push(&repo, &url, &amended, branch, false)
            .await
            .is_err()
    );
    git_fh
        .push(&repo, &url, &amended, branch, true)
        .await
        .unwrap();
    assert_ne!(amended, head);
    assert_eq!(forge.branch_sha(branch), Some(amended.clone()));

    // Someone else moves the branch: the lease (our last-seen value) protects it.
    let other = forge.dir.path().join("other");
    git(
        forge.dir.path(),
        &["clone", "--quiet", "forge.git", "other"],
    );
    git(&other, &["checkout", "--quiet", branch]);
    git(
        &other,
        &["commit", "--quiet", "--allow-empty", "-m", "someone else"],
    );
    git(&other, &["push", "--quiet", "origin", branch]);
    git(
        &wt,
        &["commit", "--quiet", "--amend", "-m", "fix, amended again"],
    );
    let again = take(&git_fh).await;
    assert!(
        git_fh
            .push(&repo, &url, &again, branch, true)
            .await
            .is_err()
    );
    assert_ne!(forge.branch_sha(branch), Some(again));

    // The agent's hooks and config never run in forgehand's git: a pre-push
    // hook and an fsmonitor planted in the agent's repository stay silent.
    git(&wt, &["commit", "--quiet", "--allow-empty", "-m", "more"]);
    let witness = state.path().join("ran");
    for name in ["pre-push", "reference-transaction", "post-checkout"] {
        let hook = wt.join(".git/hooks").join(name);
        std::fs::write(&hook, format!("#!/bin/sh\ntouch {}\n", witness.display())).unwrap();
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let hooks = wt.join(".git/hooks");
    git(&wt, &["config", "core.hooksPath", hooks.to_str().unwrap()]);
    git(
        &wt,
        &[
            "config",
            "core.fsmonitor",
            hooks.join("pre-push").to_str().unwrap(),
        ],
    );
    let more = take(&git_fh).await;
    git_fh.fetch(&repo).await.unwrap();
    git_fh.push(&repo, &url, &more, branch, true).await.unwrap();
    assert!(!witness.exists(), "an agent's hook ran in forgehand's git");

    let configs = config_texts(&repo, &wt);
    assert!(configs.contains("[remote \"origin\"]"), "walked the config");
    assert!(!configs.contains("s3cr3t"), "token on disk");
    assert!(!configs.contains("czNjcjN0"), "encoded token on disk");

    std::fs::write(wt.join("uncommitted.txt"), "x").unwrap();
    git_fh
        .remove_agent_repo(&repo, &wt, "7", branch)
        .await
        .unwrap();
    assert!(!wt.exists());
    assert!(git(&repo, &["for-each-ref", "refs/forgehand/"]).is_empty());
    // Already gone: still fine, and so is a repository that never existed.
    git_fh
        .remove_agent_repo(&repo, &wt, "7", branch)
        .await
        .unwrap();
    git_fh
        .remove_agent_repo(&state.path().join("nope"), &wt, "7", branch)
        .await
        .unwrap();
}

/// The credentials travel through the same `GIT_CONFIG_*` variables as the
/// hardening: a command that carries them still runs no hook of the clone.
#[tokio::test]
async fn a_fetch_with_credentials_runs_no_hook() {
    let forge = Forge::new();
    let state = tempfile::tempdir().unwrap();
    let repo = state.path().join("repos/proj");
    let git_fh = Git::new(GitAuth::new(Some("s3cr3t-token".to_owned())));
    git_fh.ensure_clone(&forge.url(), &repo).await.unwrap();
    let witness = state.path().join("ran");
    let hook = repo.join("hooks/reference-transaction");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, format!("#!/bin/sh\ntouch {}\n", witness.display())).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // Something to fetch, so refs are updated (and the hook would be called).
    git(&forge.bare, &["branch", "fresh", "main"]);
    git_fh.fetch(&repo).await.unwrap();
    assert_eq!(
        git(&repo, &["rev-parse", "origin/fresh"]),
        forge.main_sha,
        "fetched"
    );
    assert!(!witness.exists(), "a hook ran in a fetch with credentials");
}

/// The header really reaches an HTTP remote: a one-shot server records the request.
#[tokio::test]
async fn fetch_sends_the_auth_header_over_http() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&chunk[..n]);
        }
        socket
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });

    let state = tempfile::tempdir().unwrap();
    let repo = state.path().join("repo");
    let git_fh = Git::new(GitAuth::new(Some("abc".to_owned())));
    let url = format!("http://{addr}/owner/name.git");
    let err = git_fh.ensure_clone(&url, &repo).await.unwrap_err();
    assert!(format!("{err:#}").contains("fetch"), "{err:#}");

    let request = tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
    assert!(
        request.contains("Authorization: Basic eC1hY2Nlc3MtdG9rZW46YWJj\r\n"),
        "{request}"
    );
    let config = std::fs::read_to_string(repo.join("config")).unwrap();
    assert!(
        config.contains(&url) && !config.contains("YWJj"),
        "{config}"
    );
}
