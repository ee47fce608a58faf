//! forgehand's own git clone of each project, and the agents' repositories.
//!
//! The clone is bare (`state/repos/<project>`) and forgehand's alone: every
//! fetch from and push to the forge runs there. Each agent gets a repository of
//! its own (`state/worktrees/<project>/<key>`), which borrows the clone's
//! objects; forgehand takes the agent's commits out of it into the clone, and
//! pushes from the clone. Push credentials go in through environment variables
//! on the one command that needs them, so no token is ever written to a config
//! file or into a URL on disk, and no git process forgehand starts runs a hook.
//!
//! `GitRunner` is how every git command of forgehand runs, here and in the
//! local forge backend alike: one hardened environment, one timeout, one
//! shape of error.

mod agent_repo;
mod stale_locks;

pub use agent_repo::RemoteRefs;
pub use stale_locks::clear_stale_locks;

use std::ffi::{OsStr, OsString};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::process::Command;

use crate::forge::token::{StaticToken, TokenSource};
use crate::tmux::shell_quote;
use crate::transient::{Unreachable, git_network_failure};

/// The forge credentials git uses for fetch and push.
#[derive(Clone, Default)]
pub struct GitAuth {
    /// Where the forge token comes from, asked again for every command so a
    /// renewed token (a GitHub App's) is used at once; `None` for public or
    /// local remotes.
    token: Option<Arc<dyn TokenSource>>,
}

impl GitAuth {
    /// A fixed token (`token_env`), or none.
    pub fn new(token: Option<String>) -> Self {
        Self {
            token: token.map(|t| Arc::new(StaticToken::new(t)) as Arc<dyn TokenSource>),
        }
    }

    /// A token that expires and is renewed by `source`.
    pub fn renewing(source: Arc<dyn TokenSource>) -> Self {
        Self {
            token: Some(source),
        }
    }

    /// The configuration one git command that talks to the forge gets: an
    /// `Authorization` header, passed through git's `GIT_CONFIG_*` environment
    /// config by `GitRunner` (never a file, never the URL). Empty without a token.
    /// A token that cannot be had (the forge is down while it is renewed) fails
    /// the command before it runs, with the forge's error inside.
    pub async fn config(&self) -> Result<Vec<(String, String)>> {
        let Some(source) = &self.token else {
            return Ok(Vec::new());
        };
        let token = source
            .token()
            .await
            .context("getting the forge token for git")?;
        let basic = BASE64.encode(format!("x-access-token:{token}"));
        Ok(vec![(
            "http.extraHeader".to_owned(),
            format!("Authorization: Basic {basic}"),
        )])
    }
}

impl fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitAuth")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// forgehand's git work on its clone and the agents' repositories.
#[derive(Debug, Clone)]
pub struct Git {
    auth: GitAuth,
    /// Isolated from every configuration but the repository's own: these
    /// repositories are forgehand's and the agents', never the user's.
    runner: GitRunner,
}

impl Default for Git {
    fn default() -> Self {
        Self::new(GitAuth::default())
    }
}

impl Git {
    pub fn new(auth: GitAuth) -> Self {
        Self {
            auth,
            runner: GitRunner::new(GitConfig::Isolated),
        }
    }

    /// The same, with another time limit per command.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.runner = self.runner.with_timeout(timeout);
        self
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
        // `remote add` sets this refspec too; set it for clones whose set-up
        // was interrupted or that were made by hand, and only then: a
        // write locks the config, and every fetch comes here.
        const REFSPEC: &str = "+refs/heads/*:refs/remotes/origin/*";
        let refspecs = self
            .output(repo_dir, ["config", "--get-all", "remote.origin.fetch"])
            .await?;
        if String::from_utf8_lossy(&refspecs.stdout).trim() != REFSPEC {
            self.run(
                repo_dir,
                ["config", "--replace-all", "remote.origin.fetch", REFSPEC],
            )
            .await?;
        }
        self.fetch(repo_dir).await
    }

    /// Updates every `origin/*` branch, dropping those deleted on the forge.
    pub async fn fetch(&self, repo_dir: &Path) -> Result<()> {
        self.run_authed(repo_dir, ["fetch", "--prune", "--quiet", "origin"])
            .await?;
        Ok(())
    }

    /// Brings the commit checked out in the agent's repository `wt` into
    /// forgehand's clone as `refs/forgehand/agent/<key>` and returns it.
    ///
    /// The reading side (`git-upload-pack` in the agent's repository, which
    /// reads its config) runs in `confine` (the session's sandbox), so
    /// nothing the agent wrote there runs outside it, and a redirected git
    /// folder only reaches what the agent could read anyway.
    pub async fn take_agent_head(
        &self,
        repo_dir: &Path,
        wt: &Path,
        key: &str,
        confine: &[OsString],
    ) -> Result<String> {
        let reference = agent_ref(key)?;
        let mut upload_pack = String::new();
        for word in confine {
            upload_pack.push_str(&shell_quote(&word.to_string_lossy()));
            upload_pack.push(' ');
        }
        upload_pack.push_str("git-upload-pack");
        let refspec = format!("+HEAD:{reference}");
        self.run(
            repo_dir,
            [
                OsStr::new("fetch"),
                OsStr::new("--quiet"),
                OsStr::new("--no-tags"),
                OsStr::new("--no-write-fetch-head"),
                OsStr::new("--upload-pack"),
                OsStr::new(&upload_pack),
                wt.as_os_str(),
                OsStr::new(&refspec),
            ],
        )
        .await
        .with_context(|| format!("taking the agent's commit from {}", wt.display()))?;
        let out = self
            .run(
                repo_dir,
                ["rev-parse", "--verify", &format!("{reference}^{{commit}}")],
            )
            .await?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Updates the agent's `origin/*` from forgehand's clone (before asking
    /// for a rebase), inside `confine`: it is the agent's repository.
    pub async fn refresh_agent_origin(&self, wt: &Path, confine: &[OsString]) -> Result<()> {
        let mut args: Vec<OsString> = confine.to_vec();
        args.extend(
            ["git", "-C"]
                .into_iter()
                .map(OsString::from)
                .chain([wt.as_os_str().to_owned()])
                .chain(["fetch", "--quiet", "--no-tags", "origin"].map(OsString::from)),
        );
        let (program, rest) = args.split_first().context("a command")?;
        let mut cmd = Command::new(program);
        cmd.args(rest);
        self.runner.harden(&mut cmd, &[]);
        let out = self
            .runner
            .finish(cmd, &describe(wt, rest), Reach::Local)
            .await?;
        if !out.status.success() {
            bail!(
                "updating origin in {} failed ({}): {}",
                wt.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Removes the agent's repository at `wt` (uncommitted changes included)
    /// and what forgehand's clone kept of it. Anything already gone is fine.
    pub async fn remove_agent_repo(
        &self,
        repo_dir: &Path,
        wt: &Path,
        key: &str,
        branch: &str,
    ) -> Result<()> {
        check_ref_arg(branch)?;
        // Links inside are removed, never followed.
        if std::fs::symlink_metadata(wt).is_ok() {
            std::fs::remove_dir_all(wt).with_context(|| format!("removing {}", wt.display()))?;
        }
        if !repo_dir.join("HEAD").exists() {
            return Ok(());
        }
        let reference = agent_ref(key)?;
        self.output(repo_dir, ["update-ref", "-d", &reference])
            .await?;
        // Worktrees of the clone were how agents worked before they had
        // repositories of their own: what they left goes too.
        self.run(repo_dir, ["worktree", "prune"]).await?;
        let local = format!("refs/heads/{branch}");
        let exists = self
            .output(repo_dir, ["show-ref", "--verify", "--quiet", &local])
            .await?;
        if exists.status.success() {
            self.run(repo_dir, ["branch", "-D", branch]).await?;
        }
        Ok(())
    }

    pub async fn head_sha(&self, dir: &Path) -> Result<String> {
        self.rev(dir, "HEAD").await
    }

    /// The commit `rev` names in the repository at `dir`.
    pub async fn rev(&self, dir: &Path, rev: &str) -> Result<String> {
        check_ref_arg(rev)?;
        let spec = format!("{rev}^{{commit}}");
        let out = self.run(dir, ["rev-parse", "--verify", &spec]).await?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Commits of `head` that `base_ref` does not have, in forgehand's clone.
    pub async fn commits_ahead(&self, repo_dir: &Path, base_ref: &str, head: &str) -> Result<u32> {
        check_ref_arg(base_ref)?;
        check_ref_arg(head)?;
        let range = format!("{base_ref}..{head}");
        let out = self
            .run(repo_dir, ["rev-list", "--count", &range, "--"])
            .await?;
        let count = String::from_utf8_lossy(&out.stdout);
        count
            .trim()
            .parse()
            .with_context(|| format!("git rev-list --count {range} printed {count:?}"))
    }

    /// Pushes `sha` (a commit in forgehand's clone) to `branch` at `url`.
    ///
    /// From forgehand's own clone, to the explicit URL, so no remote or
    /// `insteadOf` setting is consulted. `force_with_lease` allows rewriting
    /// the branch (after a rebase or amend) only if it still holds what
    /// forgehand last saw there (its `origin/<branch>`).
    pub async fn push(
        &self,
        repo_dir: &Path,
        url: &str,
        sha: &str,
        branch: &str,
        force_with_lease: bool,
    ) -> Result<()> {
        check_ref_arg(branch)?;
        check_ref_arg(sha)?;
        if url.is_empty() || url.starts_with('-') {
            bail!("invalid push URL {:?}", url_for_display(url));
        }
        let tracking = format!("refs/remotes/origin/{branch}");
        let mut args = vec![
            "push".to_owned(),
            "--quiet".to_owned(),
            "--porcelain".to_owned(),
        ];
        if force_with_lease {
            let seen = self
                .output(repo_dir, ["rev-parse", "--verify", "--quiet", &tracking])
                .await?;
            let seen = String::from_utf8_lossy(&seen.stdout).trim().to_owned();
            args.push(format!("--force-with-lease=refs/heads/{branch}:{seen}"));
        }
        args.push(url.to_owned());
        args.push(format!("{sha}:refs/heads/{branch}"));
        self.run_authed(repo_dir, &args)
            .await
            .with_context(|| format!("pushing {branch}"))?;
        // What a push to a named remote would record: the lease's next value.
        self.run(repo_dir, ["update-ref", &tracking, sha]).await?;
        Ok(())
    }

    /// Whether the worktree has uncommitted changes, untracked files included.
    pub async fn is_dirty(&self, wt: &Path) -> Result<bool> {
        let out = self.run(wt, ["status", "--porcelain"]).await?;
        Ok(!out.stdout.is_empty())
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
        let out = self.output(repo_dir, &args).await?;
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

    /// A git command that must succeed, without credentials.
    async fn run<I, S>(&self, dir: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.runner.run(dir, args).await
    }

    /// A git command that talks to the forge and so carries the credentials.
    async fn run_authed<I, S>(&self, dir: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let config = self.auth.config().await?;
        self.runner
            .run_with(dir, args, &config, Reach::Remote)
            .await
    }

    /// A git command whose failure the caller interprets, without credentials.
    async fn output<I, S>(&self, dir: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.runner.output(dir, args).await
    }
}

/// The longest one git command may take unless set otherwise
/// (`GitRunner::with_timeout`): a forge or a mirror that stops answering
/// mid-fetch stalls only the caller, and only this long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether a command talks to the forge, and so can meet an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Local,
    Remote,
}

/// Which configuration files a git command reads besides the repository's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitConfig {
    /// None: `~/.gitconfig` and `/etc/gitconfig` may rewrite URLs, name
    /// credential helpers or set filters, none of which belongs in
    /// forgehand's clone or in anything near an agent's work.
    Isolated,
    /// The system's and the user's too, for the user's own repository (the
    /// local backend's): git there must behave as it does for the user, or
    /// a filter configured in `~/.gitconfig` (git-lfs, say) goes missing and
    /// `status` sees changes that are not there, or a fast-forward of the
    /// user's checkout writes pointer files where the content belongs.
    User,
}

/// Runs git the one way forgehand runs it, whichever backend asks: from a
/// cleared environment (the daemon's holds its tokens), with no hook and no
/// file-system monitor whatever the repository's configuration says (the
/// commits git handles are an agent's), with no password prompt that would
/// hang a daemon, killed after a timeout, and with errors that name the
/// command and the folder.
#[derive(Debug, Clone)]
pub struct GitRunner {
    config: GitConfig,
    timeout: Duration,
    /// Variables every command of this runner gets besides the hardened
    /// environment (the local backend's commit identity).
    env: Vec<(String, String)>,
}

impl GitRunner {
    pub fn new(config: GitConfig) -> Self {
        Self {
            config,
            timeout: DEFAULT_TIMEOUT,
            env: Vec::new(),
        }
    }

    /// Sets `key` to `value` for every command of this runner.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The same runner with another time limit per command.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A git command whose failure the caller interprets.
    pub async fn output<I, S>(&self, dir: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self.spawn(dir, &args, &[], Reach::Local).await
    }

    /// A git command that must succeed.
    pub async fn run<I, S>(&self, dir: &Path, args: I) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_with(dir, args, &[], Reach::Local).await
    }

    /// A git command that must succeed; its standard output, trimmed.
    pub async fn text<I, S>(&self, dir: &Path, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.run(dir, args).await?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `run` with `config` (key, value) pairs for this one command; a
    /// command that talks to the forge fails with `Unreachable` when the
    /// network does.
    async fn run_with<I, S>(
        &self,
        dir: &Path,
        args: I,
        config: &[(String, String)],
        reach: Reach,
    ) -> Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.spawn(dir, &args, config, reach).await?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let message = format!(
                "{} failed ({}): {}",
                describe(dir, &args),
                out.status,
                stderr.trim()
            );
            if reach == Reach::Remote && git_network_failure(&stderr) {
                return Err(Unreachable(message).into());
            }
            bail!(message);
        }
        Ok(out)
    }

    /// `git -C dir args…` with `config` (key, value) pairs on top of the
    /// hardening, through the same `GIT_CONFIG_*` variables, so that neither
    /// overrides the other.
    async fn spawn(
        &self,
        dir: &Path,
        args: &[OsString],
        config: &[(String, String)],
        reach: Reach,
    ) -> Result<Output> {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(dir).args(args);
        self.harden(&mut cmd, config);
        self.finish(cmd, &describe(dir, args), reach).await
    }

    /// The environment and stdio every command gets, git or a wrapper that
    /// runs git (the sandbox).
    fn harden(&self, cmd: &mut Command, config: &[(String, String)]) {
        cmd.env_clear();
        for (key, value) in std::env::vars_os() {
            let keep = key.to_str().is_some_and(|k| {
                ["PATH", "HOME", "LANG", "TMPDIR"].contains(&k)
                    || k.starts_with("LC_")
                    // Where git looks for the user's configuration besides `~`.
                    || (self.config == GitConfig::User && k == "XDG_CONFIG_HOME")
            });
            if keep {
                cmd.env(key, value);
            }
        }
        if self.config == GitConfig::Isolated {
            cmd.env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null");
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0");
        let hardening = [("core.hooksPath", "/dev/null"), ("core.fsmonitor", "false")];
        let all: Vec<(&str, &str)> = hardening
            .into_iter()
            .chain(config.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect();
        cmd.env("GIT_CONFIG_COUNT", all.len().to_string());
        for (i, (key, value)) in all.into_iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), key)
                .env(format!("GIT_CONFIG_VALUE_{i}"), value);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
    }

    async fn finish(&self, mut cmd: Command, what: &str, reach: Reach) -> Result<Output> {
        match tokio::time::timeout(self.timeout, cmd.output()).await {
            Ok(out) => out.with_context(|| format!("running {what}")),
            // Dropping the future killed git. A forge that stops answering
            // is an outage; a local command that hangs is not.
            Err(_) => {
                let message = format!("{what} did not finish within {}s", self.timeout.as_secs());
                if reach == Reach::Remote {
                    Err(Unreachable(message).into())
                } else {
                    bail!(message)
                }
            }
        }
    }
}

/// The ref of forgehand's clone that holds an agent's latest commit.
fn agent_ref(key: &str) -> Result<String> {
    let valid = !key.is_empty()
        && !key.starts_with('-')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        bail!("invalid issue key {key:?}");
    }
    Ok(format!("refs/forgehand/agent/{key}"))
}

/// The daemon user's git identity (`user.name`, `user.email` from its own
/// configuration), for the agent's repository: the agent cannot read the
/// daemon's home, where that configuration lives. Read once per process:
/// it is the same for every agent.
async fn identity() -> &'static [(&'static str, String)] {
    static IDENTITY: tokio::sync::OnceCell<Vec<(&'static str, String)>> =
        tokio::sync::OnceCell::const_new();
    IDENTITY.get_or_init(read_identity).await
}

async fn read_identity() -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    for key in ["user.name", "user.email"] {
        let out = Command::new("git")
            .args(["config", "--get", key])
            .current_dir("/")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        if let Ok(Ok(out)) = tokio::time::timeout(Duration::from_secs(10), out).await
            && out.status.success()
        {
            let value = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !value.is_empty() {
                found.push((key, value));
            }
        }
    }
    found
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
