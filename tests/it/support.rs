//! Shared test helpers: private tmux servers, a throwaway git "forge", bounded waits.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use forgehand::tmux::Tmux;
use tempfile::TempDir;

/// A tmux server of its own for one test (`-L <unique>`), killed on drop so no
/// session outlives the test, even a failing one.
pub struct TmuxServer {
    pub socket: String,
    pub tmux: Tmux,
}

impl TmuxServer {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "fh-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let tmux = Tmux::new(Some(socket.clone()));
        Self { socket, tmux }
    }

    /// A plain `tmux -L <socket>` command, for set-up and checks that bypass `Tmux`.
    pub fn raw(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-L")
            .arg(&self.socket)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        cmd
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = self.raw().arg("kill-server").output();
        // tmux leaves its socket file behind; tmux's own rule for where it lives.
        let dir = std::env::var_os("TMUX_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        let uid = nix::unistd::getuid();
        let _ = std::fs::remove_file(dir.join(format!("tmux-{uid}")).join(&self.socket));
    }
}

/// Runs git synchronously with a fixed identity; panics with stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=forgehand-test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A bare repository standing in for the forge, with one commit on `main`.
pub struct Forge {
    pub dir: TempDir,
    pub bare: PathBuf,
    pub main_sha: String,
}

impl Forge {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let bare = dir.path().join("forge.git");
        git(
            dir.path(),
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                "forge.git",
            ],
        );
        let seed = dir.path().join("seed");
        git(
            dir.path(),
            &["init", "--quiet", "--initial-branch=main", "seed"],
        );
        std::fs::write(seed.join("README.md"), "forge fixture\n").expect("write README");
        git(&seed, &["add", "README.md"]);
        git(&seed, &["commit", "--quiet", "-m", "initial"]);
        git(
            &seed,
            &[
                "push",
                "--quiet",
                bare.to_str().expect("utf-8 path"),
                "main",
            ],
        );
        let main_sha = git(&seed, &["rev-parse", "HEAD"]);
        Self {
            dir,
            bare,
            main_sha,
        }
    }

    pub fn url(&self) -> String {
        self.bare.to_str().expect("utf-8 path").to_owned()
    }

    /// The sha of `branch` in the forge repository, if it exists.
    pub fn branch_sha(&self, branch: &str) -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.bare)
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/heads/{branch}"))
            .output()
            .expect("running git rev-parse");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// Polls `check` every 50 ms until it yields a value; panics naming `what` after
/// `timeout`. For conditions with no event to wait on (a file another process writes).
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the file at `path` exists and its content satisfies `pred`.
pub async fn wait_for_file(path: &Path, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
    let what = format!("{} to match", path.display());
    wait_until(&what, timeout, || async {
        std::fs::read_to_string(path).ok().filter(|text| pred(text))
    })
    .await
}
