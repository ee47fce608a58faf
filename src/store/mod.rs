//! The SQLite store (`state/forgehand.db`, WAL): what forgehand itself has done.
//! Claims hold each dev actor's persisted state, written before every side
//! effect, plus the facts other actors need of an issue (its PR, pushed head
//! and what it waits for) in columns of their own; the events table is the
//! journal of every decision.
//!
//! Two ways in:
//! - [`Store`], the daemon's: one thread of its own owns the connection and
//!   runs the calls sent to it in order, while the async callers await the
//!   answer. A dedicated thread rather than `spawn_blocking` per call, because
//!   it keeps SQLite off the runtime's threads *and* gives one writer whose
//!   writes land in the order they were asked for: a journal line can be
//!   queued without waiting (from sync code too, the local forge's) and is
//!   still written before any later call, so the dev actor's awaited claim
//!   save is durable before the effect that follows it. `spawn_blocking`
//!   would need a mutex again and could reorder unawaited writes.
//! - [`Db`], a plain connection for callers off the runtime: the CLI, the
//!   demo and tests. [`Db::open_read_only`] is what `forgehand status` uses:
//!   it never migrates, never changes the journal mode and creates no file.

mod chat;
mod db;
mod migrations;
mod outbox;
mod owed;
mod quota;
mod spend;
mod usage;
mod views;
mod webhooks;
mod worker;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use chat::ChatReply;
pub use db::Db;
pub use migrations::CURRENT as SCHEMA_VERSION;
pub use migrations::apply_up_to as migrate_up_to;
pub use outbox::{OutboxRow, OutboxSummary};
pub use quota::ForgeQuota;
pub use spend::PickingStop;
pub use usage::TokenUsage;
pub use views::{Counts, IssueView, Overview};
pub use webhooks::DeliveryKey;
pub use worker::Store;

/// Where a claim stands as far as the daemon is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimStatus {
    /// A dev actor owns the issue (or should, after a restart).
    Active,
    /// Merged and cleaned up.
    Done,
    /// Handed back (closed or unlabelled meanwhile, or refused).
    Released,
    /// Waiting for a human.
    Blocked,
}

impl ClaimStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStatus::Active => "active",
            ClaimStatus::Done => "done",
            ClaimStatus::Released => "released",
            ClaimStatus::Blocked => "blocked",
        }
    }

    fn parse(s: &str) -> ClaimStatus {
        match s {
            "done" => ClaimStatus::Done,
            "released" => ClaimStatus::Released,
            "blocked" => ClaimStatus::Blocked,
            _ => ClaimStatus::Active,
        }
    }
}

/// What an active issue waits for, when it waits on something other than its
/// agent: stored as a short word so `status` and other actors can tell
/// without knowing the dev actor's types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Waiting {
    /// CI on the pushed head.
    Ci,
    /// An approving review of the pushed head.
    Review,
    /// A human's answer to an escalation.
    Answer,
    /// The forge to come back.
    Forge,
}

impl Waiting {
    pub fn as_str(self) -> &'static str {
        match self {
            Waiting::Ci => "ci",
            Waiting::Review => "review",
            Waiting::Answer => "answer",
            Waiting::Forge => "forge",
        }
    }

    /// `None` for a word this build does not know (written by a newer one).
    fn parse(s: &str) -> Option<Waiting> {
        match s {
            "ci" => Some(Waiting::Ci),
            "review" => Some(Waiting::Review),
            "answer" => Some(Waiting::Answer),
            "forge" => Some(Waiting::Forge),
            _ => None,
        }
    }
}

/// Who works on a claim right now (see migration 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runner {
    /// Its dev actor runs.
    Running,
    /// Its dev actor failed; the supervisor starts it again after a backoff.
    Restarting,
}

impl Runner {
    pub fn as_str(self) -> &'static str {
        match self {
            Runner::Running => "running",
            Runner::Restarting => "restarting",
        }
    }

    fn parse(s: &str) -> Option<Runner> {
        match s {
            "running" => Some(Runner::Running),
            "restarting" => Some(Runner::Restarting),
            _ => None,
        }
    }
}

/// One issue forgehand holds or held. `stage`, `pr`, `head`, `waiting` and
/// the counters repeat what `state_json` holds so `status` and the other
/// actors can read them without knowing the dev actor's types.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimRow {
    pub project: String,
    pub issue: u64,
    pub title: String,
    pub status: ClaimStatus,
    pub stage: String,
    pub pr: Option<u64>,
    /// The head forgehand last pushed to the PR's branch.
    pub head: Option<String>,
    pub waiting: Option<Waiting>,
    /// Who works on it now; written by its dev actor (`running`) and the
    /// supervisor, never by `save_claim` from elsewhere.
    pub runner: Option<Runner>,
    pub ci_attempts: u32,
    pub review_rounds: u32,
    pub session: String,
    #[serde(skip)]
    pub state_json: String,
    pub claimed_at: DateTime<Utc>,
    pub stage_since: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Kinds of journal entries: one per decision forgehand takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Claimed,
    SessionStarted,
    PromptSent,
    PhaseSeen,
    PhaseInvalid,
    Pushed,
    PrOpened,
    CiState,
    ReviewState,
    Merged,
    Closed,
    CleanedUp,
    Released,
    Pasted,
    /// A human answered in an issue's Matrix thread.
    ChatReply,
    /// A comment by someone without write access, left out of what the agent sees.
    CommentIgnored,
    Error,
    Daemon,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Claimed => "claimed",
            EventKind::SessionStarted => "session_started",
            EventKind::PromptSent => "prompt_sent",
            EventKind::PhaseSeen => "phase_seen",
            EventKind::PhaseInvalid => "phase_invalid",
            EventKind::Pushed => "pushed",
            EventKind::PrOpened => "pr_opened",
            EventKind::CiState => "ci_state",
            EventKind::ReviewState => "review_state",
            EventKind::Merged => "merged",
            EventKind::Closed => "closed",
            EventKind::CleanedUp => "cleaned_up",
            EventKind::Released => "released",
            EventKind::Pasted => "pasted",
            EventKind::ChatReply => "chat_reply",
            EventKind::CommentIgnored => "comment_ignored",
            EventKind::Error => "error",
            EventKind::Daemon => "daemon",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub project: String,
    pub issue: Option<u64>,
    pub kind: String,
    pub detail: String,
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}
