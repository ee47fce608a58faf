//! CI on the local backend: `[ci] command`, run with `sh -c` in a clean checkout
//! of the commit, killed with its whole process group at `[ci] timeout`. Its
//! exit status is the verdict and the tail of its output the failure text.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::state::CiRecord;
use super::{CiConfinement, Inner, branch_sha, git};
use crate::forge::{CombinedStatus, CommitSha, CommitStatus, IssueState, Nudge, StatusState};
use crate::sandbox::Cell;

/// The status context local CI reports under.
pub const CI_CONTEXT: &str = "local-ci";
/// How much of the output's end the failure text keeps.
const TAIL_LINES: usize = 40;
const TAIL_BYTES: usize = 4096;

impl Inner {
    /// The commit's CI: its result if it ran, else pending (and started now).
    pub(super) fn ci_status(self: &Arc<Self>, sha: &CommitSha) -> CombinedStatus {
        let Some(command) = self.ci_command.clone() else {
            return combined(
                StatusState::Success,
                "no [ci] command: nothing to run".into(),
            );
        };
        if let Some(done) = self.state().ci.get(&sha.0) {
            return combined(done.state, done.description.clone());
        }
        let start = self
            .ci_running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sha.0.clone());
        if start {
            let inner = self.clone();
            let (sha, command) = (sha.clone(), command.clone());
            tokio::spawn(async move { inner.run_ci(sha, command).await });
        }
        combined(StatusState::Pending, format!("`{command}` is running"))
    }

    async fn run_ci(self: Arc<Self>, sha: CommitSha, command: String) {
        self.count_attempt(&sha).await;
        let work = self.plans.join(".forgehand").join("ci").join(&sha.0);
        let record = match self.ci_in(&work, &sha, &command).await {
            Ok(record) => record,
            Err(e) => CiRecord {
                state: StatusState::Error,
                description: format!("could not run CI on {sha}: {e:#}"),
            },
        };
        if let Err(e) = std::fs::remove_dir_all(&work)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("removing {}: {e}", work.display());
        }
        tracing::info!("local CI on {sha}: {:?}", record.state);
        if let Err(e) = self.update(|state| state.ci.insert(sha.0.clone(), record)) {
            tracing::error!("recording CI of {sha}: {e}");
        }
        self.ci_running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sha.0);
        self.nudge(Nudge::Commit(sha));
    }

    /// Counts a CI run on every open pull whose head the commit is.
    async fn count_attempt(&self, sha: &CommitSha) {
        let open: Vec<(u64, String)> = self
            .state()
            .pulls
            .values()
            .filter(|p| p.state == IssueState::Open)
            .map(|p| (p.number, p.head.clone()))
            .collect();
        let mut heads = Vec::new();
        for (number, head) in open {
            if let Ok(Some(at)) = branch_sha(&self.repo, &head).await
                && at == sha.0
            {
                heads.push(number);
            }
        }
        let counted = self.update(|state| {
            for n in heads {
                if let Some(p) = state.pulls.get_mut(&n) {
                    p.ci_attempts += 1;
                }
            }
        });
        if let Err(e) = counted {
            tracing::warn!("counting a CI attempt: {e}");
        }
    }

    /// Checks the commit out into `work` and runs the command there.
    async fn ci_in(&self, work: &Path, sha: &CommitSha, command: &str) -> anyhow::Result<CiRecord> {
        if work.exists() {
            std::fs::remove_dir_all(work)
                .with_context(|| format!("removing the old {}", work.display()))?;
        }
        let parent = work.parent().expect("under .forgehand/ci");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        git(
            parent,
            [
                "clone".as_ref(),
                "--quiet".as_ref(),
                "--no-checkout".as_ref(),
                self.repo.as_os_str(),
                work.as_os_str(),
            ],
        )
        .await?;
        git(work, ["checkout", "--quiet", "--detach", &sha.0]).await?;
        let log_path = parent.join(format!("{}.log", sha.0));
        let outcome = run_command(
            work,
            command,
            &log_path,
            self.ci_timeout,
            &self.ci_confinement,
        )
        .await;
        let output = std::fs::read(&log_path).unwrap_or_default();
        let _ = std::fs::remove_file(&log_path);
        let (state, verdict) = match outcome? {
            Ended::Exited(0) => (StatusState::Success, format!("`{command}` passed")),
            Ended::Exited(code) => (
                StatusState::Failure,
                format!("`{command}` exited with {code}"),
            ),
            Ended::Signalled => (
                StatusState::Failure,
                format!("`{command}` was killed by a signal"),
            ),
            Ended::TimedOut => (
                StatusState::Failure,
                format!(
                    "`{command}` timed out after {}s and was killed",
                    self.ci_timeout.as_secs_f64()
                ),
            ),
        };
        let description = if state == StatusState::Success {
            verdict
        } else {
            format!("{verdict}; last lines of its output:\n{}", tail(&output))
        };
        Ok(CiRecord { state, description })
    }
}

enum Ended {
    Exited(i32),
    Signalled,
    TimedOut,
}

/// `sh -c command` in `dir` as the leader of its own process group, output
/// (both streams) into `log`; the whole group is killed at the timeout, so a
/// command's children do not outlive it. It runs the agent's code, so it
/// gets the agent's environment and sandbox (only `dir` writable), never the
/// daemon's.
async fn run_command(
    dir: &Path,
    command: &str,
    log: &Path,
    timeout: Duration,
    confinement: &CiConfinement,
) -> anyhow::Result<Ended> {
    let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let mut words = confinement.sandbox.wrap(&Cell {
        cwd: dir.to_path_buf(),
        ..Cell::default()
    });
    words.extend(["sh", "-c", command].map(OsString::from));
    let (program, args) = words.split_first().expect("sh at least");
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(confinement.env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().context("duplicating the log handle")?)
        .stderr(file)
        .process_group(0);
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting `sh -c {command}`"))?;
    let pid = child.id().context("the CI command has no process id")?;
    let group = nix::unistd::Pid::from_raw(pid as i32);
    let ended = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            let status = status.context("waiting for the CI command")?;
            status.code().map_or(Ended::Signalled, Ended::Exited)
        }
        Err(_) => Ended::TimedOut,
    };
    // Also after a normal exit: anything the command left running in the
    // background would otherwise outlive its checkout.
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait().await;
    Ok(ended)
}

/// The last lines of the output, at most `TAIL_BYTES` of them.
fn tail(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    let mut tail = lines[start..].join("\n");
    if tail.len() > TAIL_BYTES {
        let mut cut = tail.len() - TAIL_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = format!("…{}", &tail[cut..]);
    }
    if tail.is_empty() {
        "(no output)".to_string()
    } else {
        tail
    }
}

fn combined(state: StatusState, description: String) -> CombinedStatus {
    CombinedStatus {
        state: Some(state),
        statuses: vec![CommitStatus {
            context: CI_CONTEXT.to_string(),
            state,
            description,
            target_url: String::new(),
        }],
    }
}
