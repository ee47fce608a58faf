//! The end-to-end harness: a fake Forgejo over a real bare repository, a
//! private tmux server (its own `TMUX_TMPDIR`, so the daemon's "default
//! server" is the test's own), temp state and project folders, and the real
//! `forgehand` binary. Everything is torn down on drop; on a failing test the
//! daemon's log is printed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::fake_forge::fixture::GitFixture;
use crate::fake_forge::{Behaviour, CiBehaviour, FakeForge, FakeForgeOptions, ReviewBehaviour};

pub const TOKEN: &str = "tok-e2e-5ecret-forge";
/// A secret in the daemon's environment that must never reach an agent.
pub const OTHER_SECRET: &str = "other-5ecret-value";
pub const PROJECT: &str = "proj";
pub const WOODPECKER_TOKEN: &str = "wp-5ecret-token";

/// The interpreter behind `python3` on `PATH`, found once, for the scripted
/// agents. Through a version manager's shim (pyenv's is a bash script that
/// runs `pyenv exec`) each agent's start cost several times the
/// interpreter's own, hundreds of agents at a time in the bench; `-I -S`
/// (with the agent's command) also skips site-packages and their `.pth`
/// start-up code: the agent needs the standard library only.
pub fn python() -> &'static str {
    static PYTHON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|path| !path.is_empty())
            .unwrap_or_else(|| "python3".to_owned())
    })
}

/// The command that runs one of the repository's Python agents
/// (`scripts/fake-agent`, `scripts/attacker-agent`) with [`python`].
pub fn agent_command(script: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(script);
    format!("{} -I -S {}", python(), path.display())
}

pub struct Harness {
    pub dir: TempDir,
    pub git: GitFixture,
    pub forge: FakeForge,
    pub state: PathBuf,
    pub projects: PathBuf,
    pub tmux_tmpdir: PathBuf,
    pub home: PathBuf,
    /// More variables for forgehand's environment (e.g. a Matrix token).
    pub env: Vec<(String, String)>,
    daemon: Option<Child>,
    log: PathBuf,
}

/// What a test changes in the project file the harness writes: lines added
/// to `[forge]` and `[agent]`, whole sections, the poll interval, the agent.
pub struct ProjectFile<'a> {
    pub poll_interval: &'a str,
    pub forge_extra: &'a str,
    /// The agent's command line; the scripted fake agent when `None`.
    pub agent_command: Option<String>,
    pub agent_extra: &'a str,
    pub sections: &'a str,
    /// More paths the sandboxed agent may read (its program, if outside the
    /// checkout), besides `scripts/`.
    pub readable: Vec<PathBuf>,
    /// Where forgehand clones from and pushes to; the bare repository's
    /// path when `None`.
    pub clone_url: Option<String>,
}

impl Default for ProjectFile<'_> {
    fn default() -> Self {
        ProjectFile {
            poll_interval: "300ms",
            forge_extra: "",
            agent_command: None,
            agent_extra: "",
            sections: "",
            readable: Vec::new(),
            clone_url: None,
        }
    }
}

impl Harness {
    /// A harness whose project file has `agent` lines added to `[agent]` and
    /// `sections` (more TOML sections) appended.
    pub async fn new(agent: &str, sections: &str) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let git = GitFixture::new();
        let forge = FakeForge::start(FakeForgeOptions {
            token: TOKEN.into(),
            bare_repo: git.bare.clone(),
            ..Default::default()
        })
        .await;
        let h = Harness {
            state: dir.path().join("state"),
            projects: dir.path().join("projects"),
            tmux_tmpdir: dir.path().join("tmux"),
            home: dir.path().join("home"),
            log: dir.path().join("daemon.log"),
            daemon: None,
            env: Vec::new(),
            git,
            forge,
            dir,
        };
        for d in [&h.state, &h.projects, &h.tmux_tmpdir, &h.home] {
            std::fs::create_dir_all(d).expect("creating a harness folder");
        }
        h.write_project(agent, sections);
        h
    }

    pub fn write_project(&self, agent_extra: &str, sections: &str) {
        self.write_project_file(&ProjectFile {
            agent_extra,
            sections,
            ..ProjectFile::default()
        });
    }

    /// The project file `proj.toml` on the fake forge, as `file` varies it.
    pub fn write_project_file(&self, file: &ProjectFile<'_>) {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
        let command = file
            .agent_command
            .clone()
            .unwrap_or_else(|| agent_command("fake-agent"));
        let toml = format!(
            r#"name = "{PROJECT}"
repo = "acme/widget"
clone_url = "{clone}"
poll_interval = "{poll}"

[forge]
kind = "forgejo"
url = "{url}"
token_env = "FORGE_TOKEN"
{forge_extra}

[agent]
command = "{command}"
sandbox_ro = [{readable}]
{agent_extra}

{sections}
"#,
            clone = file
                .clone_url
                .clone()
                .unwrap_or_else(|| self.git.bare.display().to_string()),
            url = self.forge.url(),
            poll = file.poll_interval,
            readable = std::iter::once(scripts.as_path())
                .chain(file.readable.iter().map(PathBuf::as_path))
                .map(|p| format!("{:?}", p.display().to_string()))
                .collect::<Vec<_>>()
                .join(", "),
            forge_extra = file.forge_extra,
            agent_extra = file.agent_extra,
            sections = file.sections,
        );
        std::fs::write(self.projects.join("proj.toml"), toml).expect("writing the project file");
    }

    /// A `forgehand` command with the harness's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_forgehand"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("LANG", "C.UTF-8")
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env("FORGE_TOKEN", TOKEN)
            .env("OTHER_SECRET_TOKEN", OTHER_SECRET)
            .env("WOODPECKER_TOKEN", WOODPECKER_TOKEN)
            .env("FORGEHAND_LOG", "forgehand=debug,info")
            .current_dir(self.dir.path());
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn state_arg(&self) -> String {
        self.state.display().to_string()
    }

    /// Run a forgehand command to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running forgehand")
    }

    /// `forgehand run --once` on the harness's projects and state, which
    /// must succeed.
    pub fn run_once(&self) {
        let projects = self.projects.display().to_string();
        let out = self.run(&[
            "run",
            "--once",
            "--projects",
            &projects,
            "--state",
            &self.state_arg(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn enable(&self) {
        let out = self.run(&["enable", "--state", &self.state_arg()]);
        assert!(out.status.success(), "{out:?}");
    }

    /// Start `forgehand run` in the background.
    pub fn start_daemon(&mut self) {
        self.start_daemon_with(&[]);
    }

    /// Start `forgehand run <extra…>` in the background (e.g. `--listen`).
    pub fn start_daemon_with(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("daemon log");
        let child = self
            .command(&[
                "run",
                "--projects",
                &self.projects.display().to_string(),
                "--state",
                &self.state_arg(),
            ])
            .args(extra)
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the daemon");
        self.daemon = Some(child);
    }

    /// `kill -9` the daemon: no chance to clean up.
    pub fn kill_daemon(&mut self) {
        let mut child = self.daemon.take().expect("daemon started");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaping the daemon");
    }

    /// SIGTERM the daemon and wait for it; returns its exit code and how long
    /// it took to exit.
    pub fn stop_daemon(&mut self) -> (Option<i32>, Duration) {
        let mut child = self.daemon.take().expect("daemon started");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let started = std::time::Instant::now();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let status = child.wait().expect("waiting for the daemon");
        (status.code(), started.elapsed())
    }

    /// The PID of the process in the session's pane, if the session exists.
    pub fn pane_pid(&self, name: &str) -> Option<String> {
        let out = self.tmux(&[
            "list-panes",
            "-t",
            &format!("={name}:"),
            "-F",
            "#{pane_pid}",
        ]);
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !pid.is_empty()).then_some(pid)
    }

    pub fn daemon(&mut self) -> &mut Child {
        self.daemon.as_mut().expect("daemon started")
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// tmux on the harness's private default server.
    pub fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(args)
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env_remove("TMUX")
            .output()
            .expect("running tmux")
    }

    pub fn has_session(&self, name: &str) -> bool {
        self.tmux(&["has-session", "-t", &format!("={name}")])
            .status
            .success()
    }

    /// The environment of the session's pane process.
    pub fn session_env(&self, name: &str) -> Vec<(String, String)> {
        let out = self.tmux(&[
            "list-panes",
            "-t",
            &format!("={name}:"),
            "-F",
            "#{pane_pid}",
        ]);
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!pid.is_empty(), "no pane for {name}: {out:?}");
        let raw =
            std::fs::read(format!("/proc/{pid}/environ")).expect("reading the pane's environment");
        raw.split(|b| *b == 0)
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    pub fn session_dir(&self, name: &str) -> PathBuf {
        self.state.join("sessions").join(name)
    }

    pub fn worktree(&self, issue: u64) -> PathBuf {
        self.state
            .join("worktrees")
            .join(PROJECT)
            .join(issue.to_string())
    }

    pub fn session(&self, issue: u64) -> String {
        format!("dev-{PROJECT}-{issue}")
    }

    /// Wait until the daemon has set up the project's labels. A test that
    /// creates a labelled issue before then races it: the daemon may list the
    /// labels before and create one after, and Forgejo keeps both.
    pub async fn wait_for_labels(&self) {
        self.forge
            .wait_until(STEP, |s| {
                ["backlog", "in-progress", "blocked", "underspecified"]
                    .iter()
                    .all(|l| s.label_by_name(l).is_some())
            })
            .await
            .expect("the daemon's labels");
    }

    /// Wait until forgehand opened the PR for `issue`; its number.
    pub async fn wait_for_pr(&self, issue: u64) -> u64 {
        let branch = format!("fix/issue-{issue}");
        self.forge
            .wait_until(STEP, |s| s.pull_for_branch(&branch).is_some())
            .await
            .expect("a PR from fix/issue-N");
        self.forge
            .read(|s| s.pull_for_branch(&branch).map(|p| p.number))
            .expect("the PR just seen")
    }

    /// Wait until the issue's session and worktree are gone.
    pub async fn wait_cleaned_up(&self, issue: u64) {
        crate::support::wait_until("session and worktree gone", STEP, || async {
            (!self.has_session(&self.session(issue)) && !self.worktree(issue).exists())
                .then_some(())
        })
        .await;
    }

    /// Where the scripted agent records every message it received.
    pub fn transcript(&self, issue: u64) -> PathBuf {
        self.session_dir(&self.session(issue))
            .join("agent-transcript.log")
    }

    /// Wait until the agent of `issue` has received text containing `needle`.
    pub async fn agent_received(&self, issue: u64, needle: &str) -> String {
        crate::support::wait_for_file(&self.transcript(issue), STEP, |t| t.contains(needle)).await
    }

    /// The issue's journal as (kind, detail) pairs.
    pub fn journal(&self, issue: u64) -> Vec<(String, String)> {
        let store = forgehand::store::Db::open_read_only(&self.state.join("forgehand.db"))
            .expect("the daemon's database");
        store
            .events(PROJECT, Some(issue))
            .expect("reading the journal")
            .into_iter()
            .map(|e| (e.kind, e.detail))
            .collect()
    }

    /// Every request forgehand made exists in the Forgejo API.
    pub fn assert_no_violations(&self) {
        let violations = self.forge.violations();
        assert!(violations.is_empty(), "{violations:#?}");
    }

    /// Comments on an issue by forgehand itself.
    pub fn bot_comments(&self, issue: u64) -> Vec<String> {
        self.forge
            .comments(issue)
            .into_iter()
            .filter(|c| c.user == "forgehand-bot")
            .map(|c| c.body)
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.tmux(&["kill-server"]);
        if std::thread::panicking() {
            let log = self.daemon_log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("---- daemon log (last 80 lines) ----");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The fake forge's simulated CI and reviewer.
pub fn auto(ci: CiBehaviour, review: ReviewBehaviour) -> Behaviour {
    Behaviour {
        ci,
        review,
        ..Default::default()
    }
}

/// Generous bounds for steps that involve starting processes.
pub const STEP: Duration = Duration::from_secs(60);
