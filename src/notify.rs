//! Telling people what happens: one interface for every channel (the forge
//! comment for escalations lives in the dev actor; Matrix implements this
//! trait). `notify` only queues, so a slow or absent channel never holds a dev
//! actor up.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::forge::{CommitSha, PrNumber};
use crate::phase::RefusalKind;

/// Which issue a notice is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub project: String,
    pub issue: u64,
    pub title: String,
    pub session: String,
    pub issue_url: String,
}

/// Something people may want to know about an issue. Serializable: a
/// channel keeps what it owes in the store until it is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    Claimed,
    PrOpened {
        pr: PrNumber,
    },
    CiFailed {
        attempt: u32,
        max: u32,
        contexts: Vec<String>,
    },
    ChangesRequested {
        round: u32,
        max: u32,
    },
    /// The agent (or forgehand, at a limit) needs a human answer.
    Escalation {
        reason: String,
    },
    /// A human answer was delivered to the agent.
    ReplyDelivered {
        author: String,
    },
    Refused {
        kind: RefusalKind,
        detail: String,
    },
    Blocked {
        reason: String,
    },
    /// The session died and was started again.
    Respawned {
        count: u32,
    },
    ReviewOverdue,
    Merged {
        pr: PrNumber,
        merge_commit: Option<CommitSha>,
    },
}

impl Notice {
    /// Whether a human must act (escalations mention someone).
    pub fn needs_human(&self) -> bool {
        matches!(self, Notice::Escalation { .. } | Notice::Blocked { .. })
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Claimed => write!(f, "claimed"),
            Notice::PrOpened { pr } => write!(f, "PR #{pr} opened"),
            Notice::CiFailed {
                attempt,
                max,
                contexts,
            } => {
                write!(f, "CI failed ({attempt}/{max}): {}", contexts.join(", "))
            }
            Notice::ChangesRequested { round, max } => {
                write!(f, "changes requested (round {round}/{max})")
            }
            Notice::Escalation { reason } => write!(f, "needs a human: {reason}"),
            Notice::ReplyDelivered { author } => {
                write!(f, "{author}'s answer delivered to the agent")
            }
            Notice::Refused { kind, detail } => write!(f, "the agent refused ({kind:?}): {detail}"),
            Notice::Blocked { reason } => write!(f, "blocked: {reason}"),
            Notice::Respawned { count } => write!(f, "agent session restarted ({count})"),
            Notice::ReviewOverdue => {
                write!(f, "waiting for a review longer than the review timeout")
            }
            Notice::Merged { pr, merge_commit } => match merge_commit {
                Some(c) => write!(f, "PR #{pr} merged as {c}"),
                None => write!(f, "PR #{pr} merged"),
            },
        }
    }
}

pub trait Notifier: Send + Sync {
    /// Queue a notice; never blocks on the channel.
    fn notify(&self, subject: &Subject, notice: Notice);

    /// Tell the human their chat reply `event_id` reached the agent (Matrix
    /// reacts ✅ to it). Queued like `notify`; channels without replies do
    /// nothing.
    fn acknowledge(&self, project: &str, issue: u64, event_id: &str) {
        let _ = (project, issue, event_id);
    }
}

/// The notifier when no channel is configured: the log only.
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, subject: &Subject, notice: Notice) {
        tracing::info!(project = %subject.project, issue = subject.issue, "notice: {notice}");
    }
}
