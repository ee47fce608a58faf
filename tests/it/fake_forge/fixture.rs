//! A throwaway real git setup for tests: a bare repository (what the fake forge serves)
//! and a working clone to commit and push from, all in one temp dir removed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A real bare repository with a working clone to commit and push from.
pub struct GitFixture {
    _dir: TempDir,
    /// The bare repository, to pass as `FakeForgeOptions::bare_repo` (and clone URL).
    pub bare: PathBuf,
    /// A clone of it on `main`, to commit and push from.
    pub work: PathBuf,
}

/// Runs git in `dir` with a fixed identity and fails the test on a non-zero exit.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl GitFixture {
    /// A bare repo whose `main` has one commit with `greeting.txt`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let bare = dir.path().join("widget.git");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&bare).expect("bare dir");
        git(&bare, &["init", "--bare", "-q"]);
        git(
            dir.path(),
            &["clone", "-q", bare.to_str().expect("utf-8 path"), "work"],
        );
        let fixture = Self {
            _dir: dir,
            bare,
            work,
        };
        git(&fixture.work, &["checkout", "-q", "-b", "main"]);
        fixture.commit("greeting.txt", "hello\n", "initial");
        fixture.push("main");
        fixture
    }

    /// Writes `file`, commits it on the current branch and returns the new sha.
    pub fn commit(&self, file: &str, content: &str, message: &str) -> String {
        std::fs::write(self.work.join(file), content).expect("writing a file");
        git(&self.work, &["add", file]);
        git(&self.work, &["commit", "-q", "-m", message]);
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Checks out `name`, (re)created at `from`.
    pub fn branch(&self, name: &str, from: &str) {
        git(&self.work, &["checkout", "-q", "-B", name, from]);
    }

    /// Force-pushes the current commit to `branch` of the bare repository.
    pub fn push(&self, branch: &str) {
        git(
            &self.work,
            &[
                "push",
                "-q",
                "-f",
                "origin",
                &format!("HEAD:refs/heads/{branch}"),
            ],
        );
    }

    pub fn bare_sha(&self, branch: &str) -> String {
        git(&self.bare, &["rev-parse", &format!("refs/heads/{branch}")])
    }
}
