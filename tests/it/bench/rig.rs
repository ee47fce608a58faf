//! The bench's rig: the end-to-end harness with a project file tuned per
//! scenario, the real daemon started as a user would (info logging, optional
//! `--listen`), and what can be read about it from outside: its claims in the
//! store and its RSS and CPU time in `/proc`.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use chrono::{DateTime, Utc};
use forgehand::store::Db;

use crate::fake_forge::RequestRecord;

use crate::harness::{Harness, PROJECT, ProjectFile};

/// The variable the daemon reads the webhook secret from (`[forge] webhook_secret_env`).
pub const WEBHOOK_SECRET_ENV: &str = "FORGEHAND_WEBHOOK_SECRET";
pub const WEBHOOK_SECRET: &str = "bench-webhook-5ecret";

/// What a scenario changes in the project file.
pub struct ProjectOpts {
    pub poll_interval: String,
    pub max_sessions: u32,
    /// High for the webhook scenario, which requests changes over and over.
    pub max_review_rounds: u32,
    /// Adds `webhook_secret_env` to `[forge]` (only known to daemons with `--listen`).
    pub webhook: bool,
}

impl Default for ProjectOpts {
    fn default() -> Self {
        Self {
            poll_interval: "60s".into(),
            max_sessions: 1,
            max_review_rounds: 5,
            webhook: false,
        }
    }
}

pub struct Rig {
    pub h: Harness,
    daemon: Option<Child>,
    log: PathBuf,
}

impl Rig {
    pub async fn new(opts: &ProjectOpts) -> Rig {
        let h = Harness::new("", "").await;
        write_project(&h, opts);
        let log = h.dir.path().join("bench-daemon.log");
        Rig {
            h,
            daemon: None,
            log,
        }
    }

    /// Enables picking and starts `forgehand run` (with `--listen addr` if given).
    pub fn start(&mut self, listen: Option<&str>) {
        self.h.enable();
        let log = std::fs::File::create(&self.log).expect("daemon log");
        let projects = self.h.projects.display().to_string();
        let state = self.h.state_arg();
        let mut args = vec!["run", "--projects", &projects, "--state", &state];
        if let Some(addr) = listen {
            args.extend(["--listen", addr]);
        }
        let child = self
            .h
            .command(&args)
            // Debug logging is for tests; a benchmark measures what a user runs.
            .env("FORGEHAND_LOG", "info")
            .env(WEBHOOK_SECRET_ENV, WEBHOOK_SECRET)
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting the daemon");
        self.daemon = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().expect("daemon started").id()
    }

    /// Panics (with the log's tail) if the daemon has exited.
    pub fn assert_running(&mut self) {
        let child = self.daemon.as_mut().expect("daemon started");
        if let Some(status) = child.try_wait().expect("polling the daemon") {
            panic!("the daemon exited ({status}):\n{}", self.log_tail(40));
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The daemon's store, read-only, once it exists.
    pub fn store(&self) -> Option<Db> {
        Db::open_read_only(&self.h.state.join("forgehand.db")).ok()
    }

    /// The stage the daemon persisted for `issue`.
    pub fn stage(&self, issue: u64) -> Option<String> {
        let claim = self.store()?.claim(PROJECT, issue).ok()??;
        Some(claim.stage)
    }

    /// When the fake forge received the daemon's first issue listing (its first
    /// poll): start-up is not what the scenarios measure.
    pub async fn first_poll(&mut self, timeout: Duration) -> DateTime<Utc> {
        let listing = |r: &RequestRecord| r.method == "GET" && r.path.ends_with("/issues");
        if let Err(e) = self
            .h
            .forge
            .wait_until(timeout, |s| s.requests().iter().any(listing))
            .await
        {
            self.assert_running();
            panic!("the daemon never polled: {e:#}");
        }
        let requests = self.h.forge.requests();
        requests
            .iter()
            .find(|r| listing(r))
            .expect("the listing just seen")
            .received
    }

    pub fn phase_file(&self, issue: u64) -> PathBuf {
        self.h.session_dir(&self.h.session(issue)).join("phase")
    }

    /// Waits until the daemon persisted `stage` for `issue`.
    pub async fn wait_stage(&mut self, issue: u64, stage: &str, timeout: Duration) {
        self.assert_running();
        let what = format!("#{issue} in stage {stage}");
        crate::support::wait_until(&what, timeout, || async {
            (self.stage(issue).as_deref() == Some(stage)).then_some(())
        })
        .await;
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- bench daemon log (last 60 lines) ----\n{}",
                self.log_tail(60)
            );
        }
    }
}

fn write_project(h: &Harness, opts: &ProjectOpts) {
    let webhook = if opts.webhook {
        format!("webhook_secret_env = \"{WEBHOOK_SECRET_ENV}\"")
    } else {
        String::new()
    };
    h.write_project_file(&ProjectFile {
        poll_interval: &opts.poll_interval,
        forge_extra: &webhook,
        agent_extra: &format!("max_sessions = {}", opts.max_sessions),
        sections: &format!("[review]\nmax_rounds = {}", opts.max_review_rounds),
        ..ProjectFile::default()
    });
}

/// What `/proc` says about one process (not its children).
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// cutime + cstime: children that ended and were waited for.
    pub children_cpu_ticks: u64,
    pub rss_kb: u64,
}

pub fn proc_sample(pid: u32) -> ProcSample {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/PID/stat");
    // Fields after the command name, which is in parentheses and may hold spaces:
    // state is field 3, so utime (14) and stime (15) are at 11 and 12 here,
    // cutime (16) and cstime (17) at 13 and 14.
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields[i].parse::<u64>().expect("a tick count");
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/PID/status");
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    ProcSample {
        cpu_ticks: tick(11) + tick(12),
        children_cpu_ticks: tick(13) + tick(14),
        rss_kb,
    }
}

/// Clock ticks per second, for `/proc/PID/stat` times.
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}
