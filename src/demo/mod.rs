//! `forgehand demo`: the whole job on a throw-away local project, no forge
//! needed. It writes a tiny repository, three plans and a `local` project,
//! runs `forgehand run` on them as a child process, plays the reviewer
//! through `forgehand approve` / `request-changes`, prints a line per journal
//! event and a final table, and succeeds only when all three plans merged.

mod assets;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::actors::dev::machine::DevState;
use crate::paths::StatePaths;
use crate::store::{ClaimRow, Db};

pub use assets::PLANS;

pub struct DemoOptions {
    /// Where to put the demo's repository, plans and state; a temporary
    /// folder when `None`.
    pub dir: Option<PathBuf>,
    /// Leave everything in place at the end, for a look around.
    pub keep: bool,
    /// Give up after this long.
    pub timeout: Duration,
}

/// How often the demo looks at the journal.
const TICK: Duration = Duration::from_millis(200);

pub fn run(opts: DemoOptions) -> anyhow::Result<ExitCode> {
    for tool in ["git", "tmux", "python3"] {
        which(tool).with_context(|| format!("the demo needs `{tool}` on the PATH"))?;
    }
    let root = match &opts.dir {
        Some(dir) => prepare_dir(dir)?,
        None => {
            let dir = std::env::temp_dir().join(format!("forgehand-demo-{}", std::process::id()));
            prepare_dir(&dir)?
        }
    };
    let outcome = Demo::new(&root)?.run(opts.timeout);
    if opts.keep {
        println!(
            "\nkept: {} (repo/, plans/, state/, daemon.log)",
            root.display()
        );
    } else {
        kill_demo_sessions();
        if let Err(e) = std::fs::remove_dir_all(&root) {
            eprintln!("forgehand demo: could not remove {}: {e}", root.display());
        }
    }
    let all_merged = outcome?;
    Ok(if all_merged {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The folder must be new or empty: the demo never writes over anything.
fn prepare_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty; give the demo a new or empty folder",
            dir.display()
        );
    }
    dir.canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))
}

struct Demo {
    root: PathBuf,
    started: Instant,
    /// Journal entries already shown.
    last_event: i64,
    /// (plan, head) pairs the reviewer has answered.
    reviewed: BTreeSet<(String, String)>,
    changes_requested: bool,
}

impl Demo {
    fn new(root: &Path) -> anyhow::Result<Demo> {
        write_repo(&root.join("repo"))?;
        let plans = root.join("plans");
        std::fs::create_dir_all(&plans)?;
        for (key, text) in assets::plans() {
            std::fs::write(plans.join(format!("{key}.md")), text)?;
        }
        std::fs::create_dir_all(root.join("projects"))?;
        std::fs::write(
            root.join("projects").join("demo.toml"),
            assets::project_toml(root),
        )?;
        let agent = root.join("fake-agent");
        std::fs::write(&agent, assets::FAKE_AGENT)?;
        let state = StatePaths::new(root.join("state"));
        std::fs::create_dir_all(state.root())?;
        std::fs::write(state.dev_active(), b"")?;
        Ok(Demo {
            root: root.to_path_buf(),
            started: Instant::now(),
            last_event: 0,
            reviewed: BTreeSet::new(),
            changes_requested: false,
        })
    }

    /// Runs the daemon until every plan merged, one is blocked, the daemon
    /// dies or time runs out; true when all merged.
    fn run(mut self, timeout: Duration) -> anyhow::Result<bool> {
        println!(
            "forgehand demo in {}\n  plans: {}\n  watch an agent: tmux attach -t dev-{}-<plan>  (e.g. dev-{}-{})\n",
            self.root.display(),
            PLANS.join(", "),
            assets::PROJECT,
            assets::PROJECT,
            assets::CI_PLAN,
        );
        let mut daemon = self.start_daemon()?;
        let result = self.watch(&mut daemon, timeout);
        stop(&mut daemon);
        let claims = self.claims().unwrap_or_default();
        self.print_table(&claims);
        let merged = result?;
        println!(
            "\n{}",
            if merged {
                "all 3 plans merged".to_string()
            } else {
                format!(
                    "not every plan merged; the daemon's log is {}",
                    self.root.join("daemon.log").display()
                )
            }
        );
        Ok(merged)
    }

    fn start_daemon(&self) -> anyhow::Result<Child> {
        let log = std::fs::File::create(self.root.join("daemon.log"))?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("run")
            .arg("--projects")
            .arg(self.root.join("projects"))
            .arg("--state")
            .arg(self.root.join("state"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Commits need an identity, and a fresh machine may have none.
        for (name, value) in [
            ("GIT_AUTHOR_NAME", "forgehand demo"),
            ("GIT_AUTHOR_EMAIL", "demo@forgehand.invalid"),
            ("GIT_COMMITTER_NAME", "forgehand demo"),
            ("GIT_COMMITTER_EMAIL", "demo@forgehand.invalid"),
        ] {
            if std::env::var_os(name).is_none() {
                cmd.env(name, value);
            }
        }
        cmd.spawn().context("starting `forgehand run`")
    }

    fn watch(&mut self, daemon: &mut Child, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = self.started + timeout;
        loop {
            if let Some(status) = daemon.try_wait()? {
                self.show_events()?;
                bail!("`forgehand run` exited early ({status})");
            }
            self.show_events()?;
            let claims = self.claims()?;
            self.review(&claims)?;
            let by_key = keyed(&claims);
            if PLANS
                .iter()
                .all(|p| by_key.get(*p).is_some_and(|c| c.stage == "done"))
            {
                return Ok(true);
            }
            if let Some(c) = claims.iter().find(|c| c.stage == "blocked") {
                println!("{} is blocked; stopping", c.session);
                return Ok(false);
            }
            if Instant::now() > deadline {
                println!("timed out after {}s", timeout.as_secs());
                return Ok(false);
            }
            std::thread::sleep(TICK);
        }
    }

    /// The daemon's database, read-only, once it has one. Opened afresh for
    /// every look: a read-only connection may be a snapshot.
    fn db(&self) -> Option<Db> {
        Db::open_read_only(&StatePaths::new(self.root.join("state")).db()).ok()
    }

    fn claims(&mut self) -> anyhow::Result<Vec<ClaimRow>> {
        match self.db() {
            Some(db) => db.claims(Some(assets::PROJECT), None),
            None => Ok(Vec::new()),
        }
    }

    /// One line per new journal entry that says something to a newcomer.
    fn show_events(&mut self) -> anyhow::Result<()> {
        let Some(db) = self.db() else {
            return Ok(());
        };
        let names: BTreeMap<u64, String> = db
            .claims(Some(assets::PROJECT), None)?
            .iter()
            .map(|c| (c.issue, plan_of(&c.session).to_string()))
            .collect();
        let events = db.events(assets::PROJECT, None)?;
        for e in events {
            if e.id <= self.last_event {
                continue;
            }
            self.last_event = e.id;
            if !SHOWN.contains(&e.kind.as_str()) {
                continue;
            }
            let who = e
                .issue
                .and_then(|n| names.get(&n).cloned())
                .unwrap_or_default();
            let detail = e.detail.lines().next().unwrap_or_default();
            self.say(&who, &format!("{:<15} {}", e.kind, shorten(detail, 90)));
        }
        Ok(())
    }

    fn say(&self, who: &str, what: &str) {
        println!(
            "[{:>5.1}s] {:<18} {}",
            self.started.elapsed().as_secs_f64(),
            who,
            what
        );
        let _ = std::io::stdout().flush();
    }

    /// The demo's reviewer: once CI is green on a head, approve it, except the
    /// review plan's first head, which gets a change request.
    fn review(&mut self, claims: &[ClaimRow]) -> anyhow::Result<()> {
        for claim in claims.iter().filter(|c| c.stage == "awaiting_review") {
            let Some(head) = &claim.head else { continue };
            let plan = plan_of(&claim.session).to_string();
            if !self.reviewed.insert((plan.clone(), head.clone())) {
                continue;
            }
            let projects = self.root.join("projects");
            let mut cmd = Command::new(std::env::current_exe()?);
            if plan == assets::REVIEW_PLAN && !self.changes_requested {
                self.changes_requested = true;
                cmd.arg("request-changes")
                    .arg("--projects")
                    .arg(&projects)
                    .args([assets::PROJECT, &plan, "--message", assets::REVIEW_REQUEST]);
                self.say(
                    &plan,
                    &format!(
                        "reviewer        changes requested: {}",
                        assets::REVIEW_REQUEST
                    ),
                );
            } else {
                cmd.arg("approve")
                    .arg("--projects")
                    .arg(&projects)
                    .args([assets::PROJECT, &plan]);
                self.say(
                    &plan,
                    &format!("reviewer        approved {}", &head[..head.len().min(10)]),
                );
            }
            let out = cmd.output().context("running the demo's reviewer")?;
            if !out.status.success() {
                // The head may have moved meanwhile: answer again next time.
                self.reviewed.remove(&(plan.clone(), head.clone()));
                self.say(
                    &plan,
                    &format!(
                        "reviewer        failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                );
            }
        }
        Ok(())
    }

    fn print_table(&self, claims: &[ClaimRow]) {
        let by_key = keyed(claims);
        println!(
            "\n{:<18} {:<10} {:>8} {:>13} {:<12} title",
            "plan", "outcome", "ci fixes", "review rounds", "merge"
        );
        for plan in PLANS {
            let claim = by_key.get(plan);
            let state = claim.and_then(|c| serde_json::from_str::<DevState>(&c.state_json).ok());
            let outcome = match claim.map(|c| c.stage.as_str()) {
                Some("done") | Some("merged") => "merged",
                Some(stage) => stage,
                None => "not picked",
            };
            let merge = state
                .as_ref()
                .and_then(|s| s.merge_commit.as_ref())
                .map(|c| c.0.chars().take(10).collect::<String>())
                .unwrap_or_else(|| "-".to_string());
            println!(
                "{:<18} {:<10} {:>8} {:>13} {:<12} {}",
                plan,
                outcome,
                claim.map_or(0, |c| c.ci_attempts),
                claim.map_or(0, |c| c.review_rounds),
                merge,
                claim.map_or("", |c| c.title.as_str()),
            );
        }
    }
}

/// Journal kinds worth a progress line.
const SHOWN: [&str; 11] = [
    "claimed",
    "session_started",
    "phase_seen",
    "pushed",
    "pr_opened",
    "ci_state",
    "review_state",
    "merged",
    "closed",
    "released",
    "error",
];

/// Claims by plan (from the session name `dev-demo-<plan>`).
fn keyed(claims: &[ClaimRow]) -> BTreeMap<&str, &ClaimRow> {
    claims.iter().map(|c| (plan_of(&c.session), c)).collect()
}

fn plan_of(session: &str) -> &str {
    let prefix = format!("dev-{}-", assets::PROJECT);
    session.strip_prefix(prefix.as_str()).unwrap_or(session)
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn write_repo(repo: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(repo)?;
    for (path, text, executable) in assets::REPO_FILES {
        let file = repo.join(path);
        std::fs::write(&file, text)?;
        if executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    git(repo, &["init", "--quiet", "--initial-branch=main"])?;
    git(repo, &["add", "."])?;
    git(
        repo,
        &[
            "-c",
            "user.name=forgehand demo",
            "-c",
            "user.email=demo@forgehand.invalid",
            "commit",
            "--quiet",
            "-m",
            "A greeter with a test suite",
        ],
    )
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn which(tool: &str) -> anyhow::Result<()> {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        bail!("`{tool}` was not found")
    }
}

/// SIGTERM, then wait: forgehand stops within seconds and leaves sessions alone.
fn stop(daemon: &mut Child) {
    if let Ok(None) = daemon.try_wait() {
        let pid = nix::unistd::Pid::from_raw(daemon.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = daemon.try_wait() {
                return;
            }
            std::thread::sleep(TICK);
        }
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
}

/// Sessions of a demo that did not finish: they belong to the folder about to be removed.
fn kill_demo_sessions() {
    for plan in PLANS {
        let _ = Command::new("tmux")
            .args([
                "kill-session",
                "-t",
                &format!("=dev-{}-{plan}", assets::PROJECT),
            ])
            .stderr(Stdio::null())
            .status();
    }
}
