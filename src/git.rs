//! forgehand's own git clone of each project and the per-issue worktrees in it.
//!
//! The clone is bare (`state/repos/<project>`): forgehand never checks anything out
//! there, and each agent gets a linked worktree on its own branch. Push credentials
//! go in through environment variables on the one command that needs them, so no
//! token is ever written to a config file or into a URL on disk.

use std::ffi::{OsStr, OsString};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use anyhow::{Context, Result, bail};
use tokio::process::Command;

/// The forge credentials git uses for fetch and push.
#[derive(Clone, Default)]
pub struct GitAuth {
    /// The forge token; `None` for public or local remotes.
    token: Option<String>,
}

impl GitAuth {
    pub fn new(token: Option<String>) -> Self {
        Self { token }
    }

    /// Variables for one git command: an `Authorization` header through git's
    /// `GIT_CONFIG_*` environment config (never a file), and no password prompt that
    /// would hang a daemon.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned())];
        if let Some(token) = &self.token {
            let basic = BASE64.encode(format!("x-access-token:{token}"));
            env.extend([
                ("GIT_CONFIG_COUNT".to_owned(), "1".to_owned()),
                ("GIT_CONFIG_KEY_0".to_owned(), "http.extraHeader".to_owned()),
                (
                    "GIT_CONFIG_VALUE_0".to_owned(),
                    format!("Authorization: Basic {basic}"),
                ),
            ]);
        }
        env
    }
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitAuth")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Runs git for forgehand.
#[derive(Debug, Clone, Default)]
pub struct Git {
    auth: GitAuth,
}

impl Git {
    pub fn new(auth: GitAuth) -> Self {
        Self { auth }
    }

    /// Makes `repo_dir` a bare clone of `clone_url` with current remote-tracking
    /// branches: created on first use, otherwise fetched (with the remote URL
    /// updated if the project file changed it).
    pub async fn ensure_clone(&self, clone_url: &str, repo_dir: &Path) -> Result<()> {
        if !repo_dir.join("HEAD").exists() {
            std::fs::create_dir_all(repo_dir)
                .with_context(|| format!("creating clone directory {}", repo_dir.display()))?;
            self.run(repo_dir, ["init", "--bare", "--quiet"]).await?;
        }
        let current = self
            .output(repo_dir, ["remote", "get-url", "origin"])
            .await?;
        if !current.status.success() {
            // A fresh repository, or one whose set-up stopped before the remote.
            self.run(repo_dir, ["remote", "add", "origin", clone_url])
                .await?;
        } else if String::from_utf8_lossy(&current.stdout).trim() != clone_url {
            self.run(repo_dir, ["remote", "set-url", "origin", clone_url])
                .await?;
        }
        // `remote add` sets this refspec too; set it anyway for clones whose set-up
        // was interrupted or that were made by hand.
        self.run(
            repo_dir,
            [
                "config",
                "remote.origin.fetch",
                "+refs/heads/*:refs/remotes/origin/*",
            ],
        )
        .await?;
        self.fetch(repo_dir).await
    }

    /// Updates every `origin/*` branch, dropping those deleted on the forge.
    pub async fn fetch(&self, repo_dir: &Path) -> Result<()> {
        self.run_authed(repo_dir, ["fetch", "--prune", "--quiet", "origin"])
            .await?;
        Ok(())
    }

    /// Creates worktree `wt_path` on `branch`, reset to `start_point`. A worktree
    /// already registered at that path is left as it is: it holds the agent's work
    /// from before a restart.
    pub async fn add_worktree(
        &self,
        repo_dir: &Path,
        wt_path: &Path,
        branch: &str,
        start_point: &str,
    ) -> Result<()> {
        check_ref_arg(branch)?;
        check_ref_arg(start_point)?;
        // Drops registrations whose directory was deleted by hand, which would
        // otherwise block re-creating the worktree at the same path.
        self.run(repo_dir, ["worktree", "prune"]).await?;
        if self.is_worktree(repo_dir, wt_path).await? {
            return Ok(());
        }
        if let Some(parent) = wt_path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating worktree parent {}", parent.display()))?;
        }
        self.run(
            repo_dir,
            [
                OsStr::new("worktree"),
                OsStr::new("add"),
                OsStr::new("--quiet"),
                OsStr::new("-B"),
                OsStr::new(branch),
                wt_path.as_os_str(),
                OsStr::new(start_point),
            ],
        )
        .await?;
        Ok(())
    }

    /// Removes the worktree (uncommitted changes included), deletes its local
    /// branch and prunes. Anything already gone is fine.
    pub async fn remove_worktree(
        &self,
        repo_dir: &Path,
        wt_path: &Path,
        branch: &str,
    ) -> Result<()> {
        check_ref_arg(branch)?;
        if !repo_dir.exists() {
            return Ok(());
        }
        // A registration whose directory is already gone would make `remove` fail.
        self.run(repo_dir, ["worktree", "prune"]).await?;
        if self.is_worktree(repo_dir, wt_path).await? {
            // Twice: also removes a locked worktree.
            self.run(
                repo_dir,
                [
                    OsStr::new("worktree"),
                    OsStr::new("remove"),
                    OsStr::new("--force"),
                    OsStr::new("--force"),
                    wt_path.as_os_str(),
                ],
            )
            .await?;
        }
        let local = format!("refs/heads/{branch}");
        let exists = self
            .output(repo_dir, ["show-ref", "--verify", "--quiet", &local])
            .await?;
        if exists.status.success() {
            self.run(repo_dir, ["branch", "-D", branch]).await?;
        }
        self.run(repo_dir, ["worktree", "prune"]).await?;
        Ok(())
    }

    /// The linked worktrees of `repo_dir` (not the repository itself).
    pub async fn list_worktrees(&self, repo_dir: &Path) -> Result<Vec<PathBuf>> {
        let out = self
            .run(repo_dir, ["worktree", "list", "--porcelain", "-z"])
            .await?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .split('\0')
            .filter_map(|field| field.strip_prefix("worktree "))
            // git lists the main worktree (here the bare repository) first.
            .skip(1)
            .map(PathBuf::from)
            .collect())
    }

    pub async fn head_sha(&self, wt: &Path) -> Result<String> {
        let out = self.run(wt, ["rev-parse", "--verify", "HEAD"]).await?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Commits on HEAD that `base_ref` does not have.
    pub async fn commits_ahead(&self, wt: &Path, base_ref: &str) -> Result<u32> {
        check_ref_arg(base_ref)?;
        let range = format!("{base_ref}..HEAD");
        let out = self.run(wt, ["rev-list", "--count", &range, "--"]).await?;
        let count = String::from_utf8_lossy(&out.stdout);
        count
            .trim()
            .parse()
            .with_context(|| format!("git rev-list --count {range} printed {count:?}"))
    }

    /// Whether the worktree has uncommitted changes, untracked files included.
    pub async fn is_dirty(&self, wt: &Path) -> Result<bool> {
        let out = self.run(wt, ["status", "--porcelain"]).await?;
        Ok(!out.stdout.is_empty())
    }

    /// Pushes the worktree's HEAD to `branch` on origin and returns the pushed sha.
    ///
    /// The sha is resolved first and pushed by value, so a commit the agent makes
    /// meanwhile cannot slip in unreported. `force_with_lease` allows rewriting the
    /// branch (after a rebase or amend) only if it still holds what we last saw.
    pub async fn push(&self, wt: &Path, branch: &str, force_with_lease: bool) -> Result<String> {
        check_ref_arg(branch)?;
        let sha = self.head_sha(wt).await?;
        let refspec = format!("{sha}:refs/heads/{branch}");
        let mut args = vec!["push", "--quiet", "--porcelain"];
        if force_with_lease {
            args.push("--force-with-lease");
        }
        args.extend(["origin", &refspec]);
        self.run_authed(wt, args)
            .await
            .with_context(|| format!("pushing {branch}"))?;
        Ok(sha)
    }

    /// The sha of `branch` on the forge right now (`ls-remote`, not the possibly
    /// stale remote-tracking ref); `None` if the branch does not exist there.
    pub async fn remote_branch_sha(&self, repo_dir: &Path, branch: &str) -> Result<Option<String>> {
        check_ref_arg(branch)?;
        let reference = format!("refs/heads/{branch}");
        let out = self
            .run_authed(repo_dir, ["ls-remote", "origin", &reference])
            .await?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().find_map(|line| {
            let (sha, name) = line.split_once('\t')?;
            (name == reference).then(|| sha.to_owned())
        }))
    }

    /// Pushes the forge's `branch`, as last fetched (`refs/remotes/origin/<branch>`),
    /// to `refs/heads/<branch>` of the mirror at `url`; the caller fetches first.
    ///
    /// Never with the forge's credentials: a mirror is another host, and the token
    /// must not reach it. Not forced either: a mirror someone pushed to directly
    /// fails loudly rather than losing that work.
    pub async fn push_mirror(&self, repo_dir: &Path, url: &str, branch: &str) -> Result<()> {
        check_ref_arg(branch)?;
        let shown = url_for_display(url);
        if url.is_empty() || url.starts_with('-') {
            bail!("invalid mirror URL {shown:?}");
        }
        let refspec = format!("refs/remotes/origin/{branch}:refs/heads/{branch}");
        let args: Vec<OsString> = ["push", "--quiet", "--porcelain", url, &refspec]
            .into_iter()
            .map(OsString::from)
            .collect();
        let out = self.spawn(repo_dir, &args, false).await?;
        if !out.status.success() {
            // Not `describe`: the URL may carry the mirror's own credentials.
            bail!(
                "pushing {branch} to the mirror {shown} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    async fn is_worktree(&self, repo_dir: &Path, wt_path: &Path) -> Result<bool> {
        let wanted = canonical(wt_path);
        Ok(self
            .list_worktrees(repo_dir)
            .await?
            .iter()
            .any(|p| canonical(p) == wanted))
    }

    /// A git command that must succeed, without credentials.
    async fn run<I, S>(&self, dir: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.checked(dir, args, false).await
    }

    /// A git command that talks to the forge and so carries the credentials.
    async fn run_authed<I, S>(&self, dir: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.checked(dir, args, true).await
    }

    async fn checked<I, S>(&self, dir: &Path, args: I, authed: bool) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.spawn(dir, &args, authed).await?;
        if !out.status.success() {
            bail!(
                "{} failed ({}): {}",
                describe(dir, &args),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out)
    }

    /// A git command whose failure the caller interprets.
    async fn output<I, S>(&self, dir: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self.spawn(dir, &args, false).await
    }

    async fn spawn(&self, dir: &Path, args: &[OsString], authed: bool) -> Result<Output> {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(dir).args(args);
        // Inherited from a git hook or a user's shell, these would redirect or
        // reconfigure every command; forgehand names its repositories explicitly.
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_COMMON_DIR",
            "GIT_CONFIG_COUNT",
            "GIT_CONFIG_PARAMETERS",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0");
        if authed {
            cmd.envs(self.auth.env());
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd.output()
            .await
            .with_context(|| format!("running {}", describe(dir, args)))
    }
}

/// Refuses a ref argument git could take for an option.
fn check_ref_arg(name: &str) -> Result<()> {
    if name.is_empty() || name.starts_with('-') {
        bail!("invalid git ref name {name:?}");
    }
    Ok(())
}

/// A remote URL without the `user:password@` part it may carry.
pub fn url_for_display(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_end = rest.find('/').unwrap_or(rest.len());
            match rest[..host_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

fn describe(dir: &Path, args: &[OsString]) -> String {
    let mut text = format!("git -C {}", dir.display());
    for arg in args {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// The path with symlinks resolved when it exists, so `/tmp/x` and its real path
/// compare equal.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
