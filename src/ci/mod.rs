//! What a CI server can tell beyond a commit status: which steps of the pipeline that ran
//! on a pushed commit failed, how, and the end of their logs, so the agent's "CI failed"
//! message says what broke. Infrastructure failures are told apart to be restarted once
//! instead of being counted against the agent.
//!
//! `CiServer` is what the dev actor asks of a CI server; the report types and log
//! trimming are CI-neutral; `woodpecker.rs` implements it all for a Woodpecker
//! server, `github_actions.rs` for GitHub Actions.

pub mod github_actions;
pub mod woodpecker;

use std::sync::LazyLock;

use async_trait::async_trait;
use regex::Regex;

use crate::forge::CommitSha;

pub use github_actions::GithubActions;
pub use woodpecker::WoodpeckerClient;

/// A CI server, asked for more than the commit statuses it posts on the forge.
/// Like the forge clients, implementations retry transient faults themselves.
#[async_trait]
pub trait CiServer: Send + Sync {
    /// The newest pipeline that ran on commit `sha`, with its failing steps and
    /// their log tails; `None` when no pipeline ran on that commit (yet), or
    /// when what failed there is not this server's (the forge's statuses tell).
    async fn failure_report(&self, sha: &CommitSha) -> anyhow::Result<Option<FailureReport>>;

    /// Runs `pipeline` again, on the same commit; the number the run goes by
    /// now (a new pipeline's on Woodpecker, the same run's on GitHub Actions).
    /// For failures outside the code (see `FailureReport::is_infrastructure`).
    async fn restart(&self, pipeline: u64) -> anyhow::Result<u64>;

    /// What the server says of the repository, in a few words for
    /// `forgehand doctor`; an error when it cannot be reached, refuses the
    /// token, or does not build the repository.
    async fn describe(&self) -> anyhow::Result<String>;
}

/// Lines of a failing step's log kept for the agent: its last screenful.
pub const LOG_TAIL_LINES: usize = 80;
/// Bytes of a failing step's log kept, so that a few very long lines (minified output,
/// a dumped blob) cannot flood the agent's pane.
pub const LOG_TAIL_BYTES: usize = 8 * 1024;

/// The first line of a tail that does not start at the log's first line.
const CUT_MARKER: &str = "(… earlier lines cut)";
/// Put in front of a line whose start was cut because it alone exceeds the byte limit.
const LINE_CUT: &str = "…";

/// The newest pipeline that ran on a commit, with its failing steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReport {
    /// The pipeline's number in its repository (what `restart` takes): a
    /// Woodpecker pipeline's number, a GitHub Actions workflow run's id.
    pub pipeline: u64,
    /// The pipeline's status as the CI reports it (`success`, `failure`, `running`, …).
    pub status: String,
    /// Errors the CI reports for the pipeline or a workflow as a whole (a broken config
    /// file, no agent), which fail it without any step failing.
    pub errors: Vec<String>,
    /// Failing steps in pipeline order; empty when none failed (yet).
    pub steps: Vec<FailedStep>,
}

/// One step that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    /// The workflow (pipeline file) the step belongs to; on GitHub Actions the
    /// workflow and the job (`CI / test`).
    pub workflow: String,
    pub name: String,
    /// The CI's step type (`clone`, `commands`, `plugin`, `service`, …); empty if unknown.
    pub kind: String,
    /// The step's state (`failure`, `killed`, `error`, `cancelled`, …).
    pub state: String,
    /// Its exit code, when the CI tells it.
    pub exit_code: Option<i64>,
    /// What the CI says went wrong around the step (e.g. an image that could not be pulled).
    pub error: Option<String>,
    /// The end of its log (see [`log_tail`]), or a note on why the log is missing.
    pub log_tail: String,
    /// It failed for reasons outside the code under test (a lost runner, a clone
    /// that could not reach the forge, a killed container), as its CI server
    /// judges: worth one restart, not an attempt of the agent's.
    pub infrastructure: bool,
}

impl FailedStep {
    pub fn is_infrastructure(&self) -> bool {
        self.infrastructure
    }
}

impl FailureReport {
    /// Whether every failure in the pipeline is an infrastructure failure, so it is worth
    /// one restart rather than an attempt of the agent's. A pipeline where any step failed
    /// on its own merits is the agent's to fix, even if another step was killed.
    pub fn is_infrastructure(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(FailedStep::is_infrastructure)
    }

    /// The report as text for the agent: each failing step with its exit code and the
    /// tail of its log in a fenced block.
    pub fn render(&self) -> String {
        let mut out = format!("CI pipeline #{} ({})", self.pipeline, self.status);
        match self.steps.len() {
            0 => out.push_str(": no step failed.\n"),
            1 => out.push_str(": 1 step failed.\n"),
            n => out.push_str(&format!(": {n} steps failed.\n")),
        }
        for error in &self.errors {
            out.push_str(&format!("Pipeline error: {error}\n"));
        }
        for step in &self.steps {
            let ended = match step.exit_code {
                Some(code) => format!("exited with code {code}"),
                None => "failed".to_string(),
            };
            out.push_str(&format!(
                "\nStep \"{}\" of workflow \"{}\" ({}) {ended}.\n",
                step.name, step.workflow, step.state
            ));
            if let Some(error) = &step.error {
                out.push_str(&format!("Error: {error}\n"));
            }
            // A fence longer than any backtick run in the log, so the log cannot close it.
            let fence = "`".repeat(longest_backtick_run(&step.log_tail).max(2) + 1);
            out.push_str(&format!("{fence}\n{}\n{fence}\n", step.log_tail));
        }
        out
    }
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// The last lines of a log: at most `max_lines` whole lines and `max_bytes` bytes in all,
/// joined by `\n`, headed by "(… earlier lines cut)" when lines were left out. A last line
/// longer than the byte limit on its own keeps its end (cut at a character boundary).
pub fn log_tail(lines: &[String], max_lines: usize, max_bytes: usize) -> String {
    // Only a limit too small for the marker itself can make the tail overshoot.
    cut_to(&tail(lines, max_lines, max_bytes), max_bytes)
}

fn tail(lines: &[String], max_lines: usize, max_bytes: usize) -> String {
    if fit(lines, max_lines, max_bytes) == lines.len() {
        return lines.join("\n");
    }
    // Room for the marker and its newline, then as many whole lines as fit.
    let budget = max_bytes.saturating_sub(CUT_MARKER.len() + 1);
    let kept = fit(lines, max_lines, budget);
    if kept > 0 {
        let tail = &lines[lines.len() - kept..];
        return format!("{CUT_MARKER}\n{}", tail.join("\n"));
    }
    let Some(last) = lines.last().filter(|_| max_lines > 0) else {
        return CUT_MARKER.to_string();
    };
    // The marker is only owed when earlier lines exist.
    let earlier = lines.len() > 1;
    let room = if earlier { budget } else { max_bytes }.saturating_sub(LINE_CUT.len());
    let mut start = last.len().saturating_sub(room);
    while !last.is_char_boundary(start) {
        start += 1;
    }
    let line = format!("{LINE_CUT}{}", &last[start..]);
    if earlier {
        format!("{CUT_MARKER}\n{line}")
    } else {
        line
    }
}

/// How many lines from the end fit in `max_lines` and `max_bytes` (newlines counted).
fn fit(lines: &[String], max_lines: usize, max_bytes: usize) -> usize {
    let mut bytes = 0usize;
    let mut kept = 0;
    for line in lines.iter().rev().take(max_lines) {
        let cost = line.len() + usize::from(kept > 0);
        if bytes + cost > max_bytes {
            break;
        }
        bytes += cost;
        kept += 1;
    }
    kept
}

/// The start of `text`, at most `max` bytes, cut at a character boundary.
fn cut_to(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// Terminal escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks) and
/// the two-character ones.
static ANSI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
        .expect("the ANSI escape pattern is valid")
});

/// A log line as a terminal would have left it: escape sequences removed and, for
/// progress bars redrawn with `\r`, only the last redraw.
pub fn clean_line(line: &str) -> String {
    let line = line.trim_end_matches('\r');
    let shown = line.rsplit('\r').next().unwrap_or(line);
    ANSI.replace_all(shown, "").into_owned()
}
