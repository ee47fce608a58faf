//! The phase file the agent writes (DESIGN §5): line 1 `PHASE:<name>`, an
//! optional line 2 `Reason: …`. Parsing is strict so that a typo is reported to
//! the journal instead of being guessed into a phase.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the agent says it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Work is committed on the branch: push it and watch CI.
    AwaitingCi,
    /// Acknowledges "CI passed"; keep waiting for a review.
    AwaitingReview,
    /// Needs a human; `Reason` says why.
    Escalate,
    /// Gives up; `Reason: refused` plus a JSON summary, or any other reason.
    Failed,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::AwaitingCi,
        Phase::AwaitingReview,
        Phase::Escalate,
        Phase::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::AwaitingCi => "awaiting_ci",
            Phase::AwaitingReview => "awaiting_review",
            Phase::Escalate => "escalate",
            Phase::Failed => "failed",
        }
    }

    fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PHASE:{}", self.as_str())
    }
}

/// One parsed write of the phase file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseReport {
    pub phase: Phase,
    /// Text after `Reason:` (line 2 and any continuation lines), trimmed.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhaseError {
    /// Nothing written yet (or truncated mid-write): wait for the next write.
    #[error("the phase file is empty")]
    Empty,
    #[error("unknown phase {0:?} (known: awaiting_ci, awaiting_review, escalate, failed)")]
    Unknown(String),
    #[error("line 1 of the phase file must be PHASE:<name>, found {0:?}")]
    Garbage(String),
}

/// Longest excerpt of bad input quoted back in an error.
const QUOTE_LIMIT: usize = 80;

/// Parse the phase file's content. Tolerates what editors and shells add: a
/// UTF-8 byte-order mark, CRLF line ends, surrounding blank space and blank lines.
pub fn parse(content: &str) -> Result<PhaseReport, PhaseError> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let mut lines = content
        .lines()
        .map(|l| l.trim_end_matches('\r').trim())
        .skip_while(|l| l.is_empty());
    let first = lines.next().ok_or(PhaseError::Empty)?;
    let name = first
        .strip_prefix("PHASE:")
        .ok_or_else(|| PhaseError::Garbage(quote(first)))?
        .trim();
    let phase = Phase::from_name(name).ok_or_else(|| PhaseError::Unknown(quote(name)))?;
    let rest: Vec<&str> = lines.collect();
    let reason = rest
        .iter()
        .position(|l| l.starts_with("Reason:"))
        .map(|i| {
            let mut text = rest[i]["Reason:".len()..].trim().to_string();
            for more in &rest[i + 1..] {
                text.push('\n');
                text.push_str(more);
            }
            text.trim().to_string()
        })
        .filter(|r| !r.is_empty());
    Ok(PhaseReport { phase, reason })
}

fn quote(s: &str) -> String {
    s.chars().take(QUOTE_LIMIT).collect()
}

/// Why an agent refused a task (`PHASE:failed` + `Reason: refused`, with the
/// JSON in `summary.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// Another issue must be done first: back to the backlog until it closes.
    UnmetDependency,
    /// Too big for one change: a human must split it (`underspecified`).
    TooLarge,
    /// Nothing to do: the issue is closed.
    AlreadyDone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub status: RefusalKind,
    #[serde(default)]
    pub detail: String,
}

impl PhaseReport {
    /// `PHASE:failed` with `Reason: refused`: the summary says why.
    pub fn is_refusal(&self) -> bool {
        self.phase == Phase::Failed
            && self
                .reason
                .as_deref()
                .is_some_and(|r| r.trim().eq_ignore_ascii_case("refused"))
    }
}

/// Parse the refusal JSON the agent wrote to `summary.md`. Tolerates a
/// Markdown code fence around it, since agents like to add one.
pub fn parse_refusal(summary: &str) -> Result<Refusal, String> {
    let text = summary.trim().trim_start_matches('\u{feff}');
    let text = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.trim_end().strip_suffix("```"))
        .unwrap_or(text);
    serde_json::from_str(text.trim()).map_err(|e| {
        format!(
            "summary.md must hold {{\"status\": \"unmet_dependency\" | \"too_large\" | \"already_done\", \"detail\": \"…\"}}: {e}"
        )
    })
}
