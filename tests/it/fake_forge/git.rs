//! The fake's view of the real bare repository: branch heads, ancestry, and real merges
//! (`merge-tree --write-tree` + `commit-tree` + `update-ref`), all with plain `git`
//! processes and no shell.
//!
//! Calls are synchronous: the fake runs them while holding its state lock, which keeps a
//! merge atomic with respect to concurrent API requests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

/// Identity of commits the fake creates (merge and squash commits).
const COMMITTER_NAME: &str = "Fake Forgejo";
const COMMITTER_EMAIL: &str = "forge@fake.invalid";

/// A bare repository on disk, addressed with `git --git-dir`.
#[derive(Debug, Clone)]
pub struct BareRepo {
    path: PathBuf,
}

/// What Forgejo shows of a commit on a branch.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub sha: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    /// Committer date, strict ISO 8601 (RFC 3339 compatible).
    pub timestamp: String,
}

/// How a merge attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeOutcome {
    /// The base branch now points at this commit.
    Merged { new_base: String },
    /// Content conflict: nothing was changed.
    Conflict,
    /// A fast-forward was required but the base is not an ancestor of the head.
    NotFastForward,
}

impl BareRepo {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir")
            .arg(&self.path)
            .args(args)
            .env("GIT_AUTHOR_NAME", COMMITTER_NAME)
            .env("GIT_AUTHOR_EMAIL", COMMITTER_EMAIL)
            .env("GIT_COMMITTER_NAME", COMMITTER_NAME)
            .env("GIT_COMMITTER_EMAIL", COMMITTER_EMAIL)
            // The developer's system config must not change what the fake computes.
            .env("GIT_CONFIG_NOSYSTEM", "1");
        cmd
    }

    pub(crate) fn output(&self, args: &[&str]) -> Result<Output> {
        self.command(args)
            .output()
            .with_context(|| format!("running git {} in {}", args.join(" "), self.path.display()))
    }

    /// Runs git and returns trimmed stdout, failing on a non-zero exit.
    pub(crate) fn run(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args)?;
        if !out.status.success() {
            bail!(
                "git {} in {} failed ({}): {}",
                args.join(" "),
                self.path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The commit `refs/heads/<branch>` points at, or `None` if there is no such branch.
    pub fn branch_sha(&self, branch: &str) -> Option<String> {
        if let Some(sha) = self.loose_branch(branch) {
            return Some(sha);
        }
        let spec = format!("refs/heads/{branch}^{{commit}}");
        let out = self
            .output(&["rev-parse", "--verify", "--quiet", &spec])
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// A branch stored as a loose ref, read straight from disk. `settle` asks for every
    /// open PR's head and base around every request; a git process each made the fake
    /// itself the bottleneck of `scripts/bench`. Packed or missing refs go through git.
    fn loose_branch(&self, branch: &str) -> Option<String> {
        if branch
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return None;
        }
        let text = std::fs::read_to_string(self.path.join("refs/heads").join(branch)).ok()?;
        let sha = text.trim();
        (matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| sha.to_owned())
    }

    /// Resolves a branch name or a (full or abbreviated) commit sha, like Forgejo's
    /// `ResolveRefOrSha`; unknown refs come back unchanged so statuses can still be stored.
    pub fn resolve(&self, reference: &str) -> String {
        if let Some(sha) = self.branch_sha(reference) {
            return sha;
        }
        let spec = format!("{reference}^{{commit}}");
        match self.output(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ]) {
            Ok(out) if out.status.success() => {
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            }
            _ => reference.to_owned(),
        }
    }

    /// Whether `ancestor` is reachable from `descendant`.
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Result<bool> {
        let out = self.output(&["merge-base", "--is-ancestor", ancestor, descendant])?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => bail!(
                "git merge-base --is-ancestor {ancestor} {descendant}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    }

    /// The merged tree of `base` and `head`, or `None` on a content conflict.
    pub fn merge_tree(&self, base: &str, head: &str) -> Result<Option<String>> {
        let out = self.output(&["merge-tree", "--write-tree", base, head])?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match out.status.code() {
            Some(0) => Ok(stdout.lines().next().map(str::to_owned)),
            Some(1) => Ok(None),
            _ => bail!(
                "git merge-tree --write-tree {base} {head}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    }

    /// Whether `head` merges cleanly into `base` (what Forgejo reports as `mergeable`).
    pub fn mergeable(&self, base: &str, head: &str) -> bool {
        matches!(self.merge_tree(base, head), Ok(Some(_)))
    }

    /// Merges `head` into the branch `base_branch`, whose current commit is `base`.
    /// `squash` makes one commit with the base as its only parent; otherwise a
    /// fast-forward is done when possible, else a two-parent merge commit.
    /// `ff_only` refuses anything but a fast-forward.
    pub fn merge(
        &self,
        base_branch: &str,
        base: &str,
        head: &str,
        message: &str,
        squash: bool,
        ff_only: bool,
    ) -> Result<MergeOutcome> {
        let new_base = if !squash && self.is_ancestor(base, head)? {
            head.to_owned()
        } else if ff_only {
            return Ok(MergeOutcome::NotFastForward);
        } else {
            let Some(tree) = self.merge_tree(base, head)? else {
                return Ok(MergeOutcome::Conflict);
            };
            let mut args = vec!["commit-tree", tree.as_str(), "-p", base];
            if !squash {
                args.extend(["-p", head]);
            }
            args.extend(["-m", message]);
            self.run(&args).context("creating the merge commit")?
        };
        let reference = format!("refs/heads/{base_branch}");
        // The old value guards against a push to the base racing the merge.
        self.run(&["update-ref", &reference, &new_base, base])
            .with_context(|| format!("moving {base_branch} to the merge result"))?;
        Ok(MergeOutcome::Merged { new_base })
    }

    /// Deletes `refs/heads/<branch>`; an error if it does not exist.
    pub fn delete_branch(&self, branch: &str) -> Result<()> {
        let reference = format!("refs/heads/{branch}");
        let sha = self
            .branch_sha(branch)
            .with_context(|| format!("branch {branch} does not exist"))?;
        self.run(&["update-ref", "-d", &reference, &sha])
            .with_context(|| format!("deleting branch {branch}"))?;
        Ok(())
    }

    /// Message, author and date of a commit.
    pub fn commit_info(&self, sha: &str) -> Result<CommitInfo> {
        let text = self.run(&["show", "-s", "--format=%an%x00%ae%x00%cI%x00%B", sha])?;
        let mut parts = text.splitn(4, '\0');
        let mut next = || parts.next().unwrap_or_default().to_owned();
        Ok(CommitInfo {
            sha: sha.to_owned(),
            author_name: next(),
            author_email: next(),
            timestamp: next(),
            message: next(),
        })
    }

    /// Parents of a commit, for tests that check the merge shape.
    pub fn parents(&self, sha: &str) -> Result<Vec<String>> {
        let text = self.run(&["rev-list", "--parents", "-n", "1", sha])?;
        Ok(text.split_whitespace().skip(1).map(str::to_owned).collect())
    }
}
