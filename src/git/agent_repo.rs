//! An agent's own repository, made in two git processes: `init`, then
//! `read-tree` to check its branch out. What `remote add`, `config`,
//! `fetch` and `checkout -B` would write (the remote, the identity, the
//! branch and its upstream, the clone's remote-tracking refs) is written as
//! files, from the refs one `for-each-ref` read after the burst's shared
//! fetch (`RemoteRefs`): a burst of 200 starts costs 400 git processes, not
//! 1,600.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{Git, check_ref_arg, identity};

/// forgehand's clone's remote-tracking refs (`refs/remotes/origin/*`), as
/// one `for-each-ref` read them: what an agent's repository starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteRefs {
    /// (object name, full ref name), sorted by ref name.
    refs: Vec<(String, String)>,
}

impl RemoteRefs {
    /// The commit of the forge's `branch` as last fetched, if it had one.
    pub fn branch(&self, branch: &str) -> Option<&str> {
        let name = format!("refs/remotes/origin/{branch}");
        self.refs
            .iter()
            .find(|(_, r)| *r == name)
            .map(|(sha, _)| sha.as_str())
    }
}

impl Git {
    /// The remote-tracking refs of forgehand's clone `repo_dir`.
    pub async fn remote_refs(&self, repo_dir: &Path) -> Result<RemoteRefs> {
        let out = self
            .run(
                repo_dir,
                [
                    "for-each-ref",
                    "--format=%(objectname) %(refname)",
                    "refs/remotes/origin/",
                ],
            )
            .await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut refs = Vec::new();
        for line in text.lines() {
            let (sha, name) = line
                .split_once(' ')
                .with_context(|| format!("git for-each-ref printed {line:?}"))?;
            refs.push((sha.to_owned(), name.to_owned()));
        }
        refs.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(RemoteRefs { refs })
    }

    /// Makes `wt` the agent's own repository on `branch`, at the forge's
    /// `start` branch as `refs` has it. A repository already there is left
    /// as it is: it holds the agent's work from before a restart.
    ///
    /// The repository is the agent's, and nothing forgehand does with
    /// credentials ever runs in it (its hooks and config would run with them).
    /// It borrows the clone's objects (`alternates`, read-only in the
    /// sandbox) and names the clone as its `origin`, so the agent can fetch
    /// the primary branch forgehand last fetched. It is made beside its place
    /// and renamed into it, so a crash never leaves a half-made one.
    pub async fn create_agent_repo(
        &self,
        repo_dir: &Path,
        wt: &Path,
        branch: &str,
        start: &str,
        refs: &RemoteRefs,
    ) -> Result<()> {
        check_ref_arg(branch)?;
        check_ref_arg(start)?;
        if std::fs::symlink_metadata(wt.join(".git")).is_ok() {
            return Ok(());
        }
        let Some(start_sha) = refs.branch(start) else {
            bail!(
                "forgehand's clone {} has no branch origin/{start} to start {branch} from",
                repo_dir.display()
            );
        };
        let parent = wt.parent().context("a worktree path has a parent")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating worktree parent {}", parent.display()))?;
        let name = wt.file_name().context("a worktree path has a name")?;
        let making = parent.join(format!(".{}.making", name.to_string_lossy()));
        if making.exists() {
            std::fs::remove_dir_all(&making)
                .with_context(|| format!("removing the half-made {}", making.display()))?;
        }
        if wt.exists() {
            // A folder without a repository: nothing of the agent's in it.
            std::fs::remove_dir_all(wt)
                .with_context(|| format!("removing the stray folder {}", wt.display()))?;
        }
        // No templates: sample hooks copied 200 times over are most of what
        // `init` costs, and forgehand never runs this repository's hooks.
        self.run(
            parent,
            [
                std::ffi::OsStr::new("init"),
                "--quiet".as_ref(),
                "--template=".as_ref(),
                making.as_os_str(),
            ],
        )
        .await?;
        // Nobody but forgehand has seen the folder yet: these are plain writes.
        let git_dir = making.join(".git");
        let write = |file: &str, text: String| {
            let path = git_dir.join(file);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        // The folders a template would have made, empty: tools the agent
        // runs expect to add hooks and excludes there.
        for dir in ["objects/info", "hooks", "info"] {
            let dir = git_dir.join(dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let objects = repo_dir.join("objects");
        write(
            "objects/info/alternates",
            format!("{}\n", objects.display()),
        )?;
        let origin = repo_dir
            .to_str()
            .with_context(|| format!("{} is not UTF-8", repo_dir.display()))?;
        let config = std::fs::read_to_string(git_dir.join("config"))
            .with_context(|| format!("reading {}", git_dir.join("config").display()))?;
        let identity: Vec<(&str, &str)> = identity()
            .await
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect();
        let added = agent_config(origin, branch, start, &identity);
        write("config", format!("{config}{added}"))?;
        let mut packed = String::new();
        let branch_ref = format!("refs/heads/{branch}");
        let mut all: Vec<(&str, &str)> = refs
            .refs
            .iter()
            .map(|(sha, name)| (sha.as_str(), name.as_str()))
            .collect();
        all.push((start_sha, &branch_ref));
        all.sort_by(|a, b| a.1.cmp(b.1));
        for (sha, name) in all {
            let _ = writeln!(packed, "{sha} {name}");
        }
        write("packed-refs", packed)?;
        write("HEAD", format!("ref: {branch_ref}\n"))?;
        self.run(&making, ["read-tree", "--reset", "-u", "HEAD"])
            .await?;
        std::fs::rename(&making, wt)
            .with_context(|| format!("moving {} into place", making.display()))?;
        Ok(())
    }
}

/// What `remote add origin`, the clone-mirroring fetch refspec, the
/// identity's `config` calls and `checkout -B <branch> origin/<start>` add
/// to a new repository's config.
fn agent_config(origin: &str, branch: &str, start: &str, identity: &[(&str, &str)]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "[remote \"origin\"]");
    let _ = writeln!(text, "\turl = {}", quoted(origin));
    let _ = writeln!(
        text,
        "\tfetch = +refs/remotes/origin/*:refs/remotes/origin/*"
    );
    let _ = writeln!(text, "[branch {}]", quoted(branch));
    let _ = writeln!(text, "\tremote = origin");
    let _ = writeln!(
        text,
        "\tmerge = {}",
        quoted(&format!("refs/remotes/origin/{start}"))
    );
    let mut user = identity
        .iter()
        .filter_map(|(key, value)| key.strip_prefix("user.").map(|k| (k, value)))
        .peekable();
    if user.peek().is_some() {
        let _ = writeln!(text, "[user]");
        for (key, value) in user {
            let _ = writeln!(text, "\t{key} = {}", quoted(value));
        }
    }
    text
}

/// `value` as a double-quoted git config string (also right for a section's
/// subsection name): backslash, quote and the control characters git knows
/// escaped, so no value can end the line or the section.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            // Nothing else git could read back: dropped.
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
