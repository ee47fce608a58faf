//! Merging on the local backend: a real merge of the pull request's branch into
//! the primary branch of the repository. The merge commit is made with plumbing
//! (`merge-tree --write-tree`, `commit-tree`), so a bare repository needs no
//! worktree; a primary branch checked out somewhere is advanced there with
//! `merge --ff-only`, and only when that checkout has no uncommitted changes.
//!
//! Methods: `merge` makes a two-parent commit (`--no-ff`), `squash` one commit
//! with the primary as its only parent; `rebase` fast-forwards when the branch
//! already contains the primary and otherwise lands as one squashed commit.

use std::path::PathBuf;

use super::state::PullRecord;
use super::{Inner, branch_sha, git, git_output, report};
use crate::forge::{ForgeError, ForgeResult, IssueState, MergeMethod, MergeRequest, PrNumber};
use crate::store::EventKind;

fn other(e: anyhow::Error) -> ForgeError {
    ForgeError::Other(e)
}

impl Inner {
    /// Whether `head` merges into the primary without conflicts; `None` if git cannot say.
    pub(super) async fn mergeable(&self, base: &str, head: &str) -> Option<bool> {
        let out = git_output(
            &self.repo,
            [
                "merge-tree",
                "--write-tree",
                &format!("refs/heads/{base}"),
                &format!("refs/heads/{head}"),
            ],
        )
        .await
        .ok()?;
        match out.status.code() {
            Some(0) => Some(true),
            Some(1) => Some(false),
            _ => None,
        }
    }

    pub(super) async fn merge(&self, n: PrNumber, req: &MergeRequest) -> ForgeResult<()> {
        let _merging = self.merging.lock().await;
        let pull = self
            .state()
            .pulls
            .get(&n.0)
            .cloned()
            .ok_or_else(|| ForgeError::NotFound(format!("pull request #{n}")))?;
        if pull.merged {
            return Err(ForgeError::AlreadyMerged);
        }
        if pull.state != IssueState::Open {
            return Err(ForgeError::Conflict(format!("pull request #{n} is closed")));
        }
        let head = branch_sha(&self.repo, &pull.head)
            .await
            .map_err(other)?
            .ok_or_else(|| {
                ForgeError::Conflict(format!(
                    "branch {} is gone from {}",
                    pull.head,
                    self.repo.display()
                ))
            })?;
        if head != req.head_sha.0 {
            return Err(ForgeError::Conflict(format!(
                "branch {} moved to {head}; {} was the head to merge",
                pull.head, req.head_sha
            )));
        }
        let base = branch_sha(&self.repo, &pull.base)
            .await
            .map_err(other)?
            .ok_or_else(|| {
                other(anyhow::anyhow!(
                    "{} has no branch {}",
                    self.repo.display(),
                    pull.base
                ))
            })?;
        let checkout = self.checkout_of(&pull.base).await.map_err(other)?;
        if let Some(dir) = &checkout {
            // No optional locks: a look must not take the index from under
            // the owner's own git commands.
            let mut status = vec![
                "--no-optional-locks".to_string(),
                "status".into(),
                "--porcelain".into(),
                "--untracked-files=no".into(),
            ];
            // Plans kept inside the repository move as forgehand works; that
            // is not the owner's unfinished work.
            let dir_abs = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if let Ok(inside) = self.plans.strip_prefix(&dir_abs) {
                status.extend([
                    "--".into(),
                    ".".into(),
                    format!(":(top,exclude){}", inside.display()),
                ]);
            }
            let dirty = git(dir, &status).await.map_err(other)?;
            if !dirty.is_empty() {
                let message = format!(
                    "cannot merge PR #{n} into {}: the repository {} has uncommitted changes \
                     in {} where {} is checked out; commit or stash them and forgehand \
                     merges on its next attempt",
                    pull.base,
                    self.repo.display(),
                    dir.display(),
                    pull.base
                );
                self.merge_refused(&pull, &message);
                return Err(other(anyhow::anyhow!(message)));
            }
        }
        let commit = self.merge_commit(&pull, req.method, &base, &head).await?;
        match &checkout {
            Some(dir) => git(dir, ["merge", "--ff-only", "--quiet", &commit]).await,
            None => {
                let target = format!("refs/heads/{}", pull.base);
                git(&self.repo, ["update-ref", &target, &commit, &base]).await
            }
        }
        .map_err(other)?;
        self.update(|state| {
            if let Some(p) = state.pulls.get_mut(&n.0) {
                p.merged = true;
                p.state = IssueState::Closed;
                p.merge_commit = Some(commit.clone());
                p.merged_head = Some(head.clone());
            }
        })?;
        if let Some(key) = pull.head.strip_prefix("fix/issue-") {
            report::remove_top(&self.plans, key);
        }
        if req.delete_branch
            && let Err(e) = self.delete(&pull.head).await
        {
            tracing::warn!("merged PR #{n} but kept its branch: {e:#}");
        }
        Ok(())
    }

    /// The commit the primary branch moves to.
    async fn merge_commit(
        &self,
        pull: &PullRecord,
        method: MergeMethod,
        base: &str,
        head: &str,
    ) -> ForgeResult<String> {
        if method == MergeMethod::Rebase {
            let contains = git_output(&self.repo, ["merge-base", "--is-ancestor", base, head])
                .await
                .map_err(other)?;
            if contains.status.success() {
                return Ok(head.to_string());
            }
        }
        let out = git_output(&self.repo, ["merge-tree", "--write-tree", base, head])
            .await
            .map_err(other)?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        match out.status.code() {
            Some(0) => {}
            Some(1) => {
                return Err(ForgeError::Conflict(format!(
                    "{} does not merge cleanly into {}:\n{}",
                    pull.head,
                    pull.base,
                    text.lines().skip(1).collect::<Vec<_>>().join("\n").trim()
                )));
            }
            _ => {
                return Err(other(anyhow::anyhow!(
                    "git merge-tree in {} failed: {}",
                    self.repo.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        let tree = text.lines().next().unwrap_or_default().trim().to_string();
        let message = match method {
            MergeMethod::Merge => format!(
                "Merge branch '{}' (#{})\n\n{}",
                pull.head, pull.number, pull.title
            ),
            MergeMethod::Squash | MergeMethod::Rebase => {
                format!("{} (#{})\n\n{}", pull.title, pull.number, pull.body)
            }
        };
        let mut args = vec!["commit-tree", &tree, "-p", base];
        if method == MergeMethod::Merge {
            args.extend(["-p", head]);
        }
        args.extend(["-m", &message]);
        git(&self.repo, args).await.map_err(other)
    }

    /// The worktree (the repository's own, or a linked one) where `branch` is checked out.
    async fn checkout_of(&self, branch: &str) -> anyhow::Result<Option<PathBuf>> {
        let list = git(&self.repo, ["worktree", "list", "--porcelain"]).await?;
        let wanted = format!("branch refs/heads/{branch}");
        let mut current: Option<PathBuf> = None;
        let mut bare = false;
        for line in list.lines() {
            if let Some(path) = line.strip_prefix("worktree ") {
                current = Some(PathBuf::from(path));
                bare = false;
            } else if line == "bare" {
                bare = true;
            } else if line == wanted && !bare {
                return Ok(current);
            }
        }
        Ok(None)
    }

    /// Journals a refused merge and writes it on the plan's report.
    fn merge_refused(&self, pull: &PullRecord, message: &str) {
        let key = pull.head.strip_prefix("fix/issue-").unwrap_or(&pull.head);
        let number = self.state().issues.get(key).map(|r| r.number);
        self.journal(number, EventKind::Error, message);
        if let Err(e) = report::write_merge_refused(&self.plans, key, message) {
            self.journal(number, EventKind::Error, &format!("{e:#}"));
        }
    }

    /// Deletes a branch of the repository; a missing one is fine.
    pub(super) async fn delete(&self, branch: &str) -> anyhow::Result<()> {
        if branch_sha(&self.repo, branch).await?.is_none() {
            return Ok(());
        }
        git(&self.repo, ["branch", "-D", branch]).await?;
        Ok(())
    }
}
