//! The dev actor's vocabulary: its stages, its persisted state, the events it
//! sees and the effects it asks for. The transitions are in `machine`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::budget::{BudgetConfig, Spend};
use crate::commands::ForgeCommand;
use crate::forge::{CommitSha, CommitStatus, IssueNumber, PrNumber};
use crate::notify::Notice;
use crate::phase::{Phase, PhaseReport, Refusal, RefusalKind};
use crate::store::{ClaimStatus, EventKind, Waiting};

/// Where an issue is in its life, in lifecycle order. Persisted by name in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Chosen by the poller; labels not yet changed.
    Claimed,
    /// Labels changed; worktree and session being prepared, task not yet delivered.
    Starting,
    /// The agent has the task (or feedback) and works on it.
    Working,
    /// The agent said its work is committed: pushing and opening the PR.
    Pushing,
    /// Waiting for CI on the pushed head.
    AwaitingCi,
    /// CI is green on the head; waiting for an approval on that head.
    AwaitingReview,
    /// The merge call is (or may have been) made.
    Merging,
    /// Merged: closing the issue and cleaning up.
    Merged,
    /// Handed back: refused by the agent (backlog, underspecified or closed).
    Released,
    /// The agent gave up or forgehand did: a human must look.
    Blocked,
    /// All done; nothing left to do.
    Done,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Claimed => "claimed",
            Stage::Starting => "starting",
            Stage::Working => "working",
            Stage::Pushing => "pushing",
            Stage::AwaitingCi => "awaiting_ci",
            Stage::AwaitingReview => "awaiting_review",
            Stage::Merging => "merging",
            Stage::Merged => "merged",
            Stage::Released => "released",
            Stage::Blocked => "blocked",
            Stage::Done => "done",
        }
    }

    /// The stage [`Stage::as_str`] names, as the store's `stage` column
    /// holds it; `None` for a name this build does not know.
    pub fn parse(name: &str) -> Option<Stage> {
        // Serde's names are the persisted ones (`rename_all = "snake_case"`).
        use serde::de::value::{Error, StrDeserializer};
        Stage::deserialize(StrDeserializer::<Error>::new(name)).ok()
    }

    /// Stages in which a live agent session is expected.
    pub fn has_session(self) -> bool {
        matches!(
            self,
            Stage::Starting
                | Stage::Working
                | Stage::Pushing
                | Stage::AwaitingCi
                | Stage::AwaitingReview
                | Stage::Merging
        )
    }

    /// Stages in which the agent itself is expected to be busy, so silence
    /// means it is stuck (elsewhere it waits on CI, reviewers or humans).
    pub fn agent_busy(self) -> bool {
        matches!(self, Stage::Starting | Stage::Working)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Stage::Released | Stage::Blocked | Stage::Done)
    }

    /// How the store files a claim in this stage.
    pub fn claim_status(self) -> ClaimStatus {
        match self {
            Stage::Done => ClaimStatus::Done,
            Stage::Blocked => ClaimStatus::Blocked,
            Stage::Released => ClaimStatus::Released,
            _ => ClaimStatus::Active,
        }
    }
}

/// An open question to humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub reason: String,
    /// Only comments after this count as the answer.
    pub since: DateTime<Utc>,
}

/// Everything the dev actor must remember across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevState {
    pub stage: Stage,
    #[serde(default = "Utc::now")]
    pub stage_since: DateTime<Utc>,
    pub pr: Option<PrNumber>,
    /// The head forgehand last pushed: CI and reviews count only on it.
    pub head: Option<CommitSha>,
    #[serde(default)]
    pub last_push_at: Option<DateTime<Utc>>,
    /// Counted per PR, across respawns and restarts.
    pub ci_attempts: u32,
    pub review_rounds: u32,
    #[serde(default)]
    pub respawns: u32,
    pub last_phase: Option<Phase>,
    /// One-line summaries for the recovery prompt.
    #[serde(default)]
    pub last_ci: Option<String>,
    #[serde(default)]
    pub last_review: Option<String>,
    #[serde(default)]
    pub escalation: Option<Escalation>,
    /// The reason of the last escalation, so a respawned agent is told not to
    /// ask the same again.
    #[serde(default)]
    pub last_escalation: Option<String>,
    /// The head whose infrastructure failure was already retried once.
    #[serde(default)]
    pub infra_retried: Option<CommitSha>,
    /// The head whose overdue review was already reported.
    #[serde(default)]
    pub review_overdue_for: Option<CommitSha>,
    /// Issues that must close before a refused issue is picked again.
    #[serde(default)]
    pub waiting_for: Vec<IssueNumber>,
    /// Refusals of this issue so far, carried over when it is picked again,
    /// so an agent refusing for a dependency that is already closed cannot
    /// make it go round forever.
    #[serde(default)]
    pub refusals: u32,
    pub merge_commit: Option<CommitSha>,
    /// The last phase-file write handled, so a write is acted on once
    /// however many inotify events it raises, and a write made while the
    /// daemon was down is still seen on restart.
    #[serde(default)]
    pub phase_seen: Option<PhaseWrite>,
    /// Times the agent was told it stopped without writing a phase, since
    /// its last phase.
    #[serde(default)]
    pub nudges: u32,
    /// A phase was written since the agent last stopped: its next stop ends
    /// a turn that did report. (A message pasted while the agent is busy is
    /// read after that turn's stop, so the stage alone cannot tell.)
    #[serde(default)]
    pub phase_since_stop: bool,
    /// When the claim's labels were set: the issue's time budget counts
    /// from here. (`None` in a state saved before budgets existed.)
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// What the agent spent in this run, as last read from its records.
    #[serde(default)]
    pub spent: Spend,
    /// When the agent was told the issue reached its budget: it is blocked
    /// once `[budget] grace` has passed since.
    #[serde(default)]
    pub wrap_up_since: Option<DateTime<Utc>>,
    /// The head whose merge time (veto window) was announced in a comment.
    #[serde(default)]
    pub merge_announced_for: Option<CommitSha>,
    /// `/forgehand hold`: no merge until `/forgehand release`.
    #[serde(default)]
    pub held: bool,
    /// The newest comment looked at for commands, so each is obeyed once.
    #[serde(default)]
    pub last_command_id: u64,
    /// `/forgehand retry`: the next worktree starts from the primary
    /// branch, not from the branch pushed so far.
    #[serde(default)]
    pub from_primary: bool,
    /// The daemon's monthly budget is reached: nothing more is pasted into
    /// the session, and the issue was escalated (once).
    #[serde(default)]
    pub daemon_capped: bool,
}

impl DevState {
    pub fn new(now: DateTime<Utc>) -> DevState {
        DevState {
            stage: Stage::Claimed,
            stage_since: now,
            pr: None,
            head: None,
            last_push_at: None,
            ci_attempts: 0,
            review_rounds: 0,
            respawns: 0,
            last_phase: None,
            last_ci: None,
            last_review: None,
            escalation: None,
            last_escalation: None,
            infra_retried: None,
            review_overdue_for: None,
            waiting_for: Vec::new(),
            refusals: 0,
            merge_commit: None,
            phase_seen: None,
            nudges: 0,
            phase_since_stop: false,
            started_at: None,
            spent: Spend::default(),
            wrap_up_since: None,
            merge_announced_for: None,
            held: false,
            last_command_id: 0,
            from_primary: false,
            daemon_capped: false,
        }
    }

    /// What the issue waits for, for the store's `waiting` column: an open
    /// escalation waits for a human's answer whatever the stage; a finished
    /// claim waits for nothing.
    pub fn waiting(&self) -> Option<Waiting> {
        if self.stage.is_terminal() {
            return None;
        }
        if self.escalation.is_some() {
            return Some(Waiting::Answer);
        }
        match self.stage {
            Stage::AwaitingCi => Some(Waiting::Ci),
            Stage::AwaitingReview => Some(Waiting::Review),
            _ => None,
        }
    }
}

/// What identifies one write of the phase file. The modification time alone
/// does not: file systems stamp it at timer-tick granularity, so two writes a
/// few milliseconds apart can share it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseWrite {
    pub mtime_ns: i64,
    pub content: String,
}

/// Limits from the project file the transitions need.
#[derive(Debug, Clone)]
pub struct Policy {
    pub primary_branch: String,
    pub max_fix_attempts: u32,
    pub max_rounds: u32,
    /// Respawns of a dead session before the issue is blocked.
    pub max_respawns: u32,
    pub ci_timeout: Duration,
    pub review_timeout: Duration,
    pub escalation_timeout: Duration,
    pub idle_timeout: Duration,
    /// `[budget]`: the issue's limits and the grace period.
    pub budget: BudgetConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiVerdict {
    Pending,
    Green,
    Red {
        failures: Vec<CommitStatus>,
        /// The failing steps and their log tails, rendered, when a CI server
        /// was asked.
        details: Option<String>,
        /// The pipeline to restart when the failure is the infrastructure's.
        infrastructure: Option<u64>,
    },
}

impl CiVerdict {
    /// One line for the journal: `green`, `pending`, or `failed: <context>: <first line>`.
    pub fn summary(&self) -> String {
        match self {
            CiVerdict::Pending => "pending".to_string(),
            CiVerdict::Green => "green".to_string(),
            CiVerdict::Red { failures, .. } => {
                let failed: Vec<String> = failures
                    .iter()
                    .map(|f| {
                        let first = f.description.lines().next().unwrap_or_default();
                        format!("{}: {first}", f.context)
                    })
                    .collect();
                format!("failed: {}", failed.join("; "))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewVerdict {
    Waiting,
    Approved,
    /// Feedback already rendered for the agent.
    ChangesRequested {
        feedback: String,
    },
}

/// What happened, as the actor saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The actor (re)started with this state.
    Start,
    /// Labels changed on the forge.
    ClaimRecorded,
    /// The issue, read again before claiming, is no longer there to claim
    /// (closed, or out of the backlog since the list was read).
    NotClaimable {
        why: String,
    },
    /// The agent shows its ready prompt (twice the same screen).
    PromptShown,
    /// The task (or recovery) prompt was delivered to a ready agent.
    AgentReady,
    /// The supervisor gave the issue up after repeated failures.
    GiveUp {
        reason: String,
    },
    Phase(PhaseReport),
    /// `PHASE:failed` + `Reason: refused` with a readable summary.
    Refused(Refusal),
    Pushed {
        head: CommitSha,
    },
    NothingToPush,
    PrOpened {
        pr: PrNumber,
    },
    /// Time to look at the forge again.
    Tick,
    Ci {
        head: CommitSha,
        verdict: CiVerdict,
    },
    Review {
        head: CommitSha,
        verdict: ReviewVerdict,
    },
    MergeDone {
        merge_commit: Option<CommitSha>,
    },
    MergeConflict {
        message: String,
    },
    /// At the merge, the PR was not (or no longer) green or approved.
    MergeDeferred {
        wait: MergeWait,
    },
    /// Approved and green, in the veto window (`[merge] delay`) until `until`.
    MergeWindow {
        until: DateTime<Utc>,
    },
    /// The PR cannot be merged by forgehand (closed, retargeted, pushed to
    /// by someone else).
    MergeImpossible {
        reason: String,
    },
    Finished,
    /// Someone other than forgehand commented while an escalation was open.
    HumanReply {
        author: String,
        body: String,
    },
    /// A person answered in the issue's chat thread; kept in the store
    /// (`id`) until delivered.
    ChatReply {
        id: i64,
        event_id: String,
        author: String,
        body: String,
    },
    /// The tmux session is gone or its pane is dead.
    SessionDead,
    /// No phase change and no pane output for `idle_timeout`.
    Idle,
    /// The agent ended its turn and waits for input (its own hook said so).
    AgentStopped,
    /// What every project spent this month, for the daemon's budget.
    DaemonSpend(Spend),
    /// Comments up to id `upto` were looked at; these are the commands in
    /// them from people with write access, oldest first.
    Commands {
        upto: u64,
        commands: Vec<(String, ForgeCommand)>,
    },
    /// Time to hold the issue to its budget: what the agent spent so far
    /// (`None`: its records say nothing, keep the last known spend).
    Spend {
        spent: Option<Spend>,
    },
}

/// What a deferred merge waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeWait {
    Ci,
    Review,
}

/// Side effects for the actor to perform, in order. Serialisable: what a
/// finished claim still owes the forge is kept in the store
/// (`store/owed.rs`) until it got through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Journal(EventKind, String),
    Notify(Notice),
    /// Read the issue again; unless it is closed or out of the backlog, add
    /// `in-progress`, remove `backlog`. Then `ClaimRecorded` or `NotClaimable`.
    Claim,
    /// Worktree + tmux session (adopting a live one, starting a dead one
    /// again), then deliver the task or the recovery prompt: `AgentReady`.
    EnsureSession,
    /// Paste the task (or, after a respawn, the recovery prompt) into the
    /// ready agent: `AgentReady`.
    DeliverPrompt,
    /// Push the branch if it has commits ahead of primary: `Pushed` or `NothingToPush`.
    Push {
        force: bool,
    },
    /// Open the PR unless one exists: `PrOpened`.
    EnsurePr,
    CheckCi {
        head: CommitSha,
    },
    RestartCi {
        pipeline: u64,
    },
    CheckReview {
        pr: PrNumber,
        head: CommitSha,
    },
    /// Look for a human's comment on the issue or its PR after `since`: `HumanReply`.
    CheckReplies {
        pr: Option<PrNumber>,
        since: DateTime<Utc>,
    },
    /// Update forgehand's clone, so the agent rebases onto the current primary.
    Fetch,
    Paste(String),
    /// Post a comment on the issue.
    Comment(String),
    /// Post `text` on the issue unless forgehand's own comment saying it is
    /// there from `since` on: what a restart may have lost (an effect
    /// waiting behind a forge outage lives in memory only).
    CommentOnce {
        text: String,
        since: DateTime<Utc>,
    },
    /// Merge the PR at `head` if it still may be (`merging::decide`), then
    /// close the issue and drop `in-progress`: `MergeDone`, `MergeConflict`,
    /// `MergeDeferred` or `MergeImpossible`.
    Merge {
        pr: PrNumber,
        head: CommitSha,
    },
    /// Make sure the issue is closed and unlabelled, kill the session,
    /// remove the worktree: `Finished`.
    Finish,
    /// Diagnostic comment with the pane's last lines, label `blocked`, drop
    /// `in-progress`, kill the session; the worktree stays when a PR exists.
    Block {
        reason: String,
    },
    /// Comment, relabel, kill the session and remove the worktree.
    Release {
        outcome: RefusalKind,
        comment: String,
    },
    /// Look for `/forgehand` commands in comments on the issue and its PR
    /// newer than comment `after` and made since `since`: `Commands`.
    CheckCommands {
        pr: Option<PrNumber>,
        after: u64,
        since: DateTime<Utc>,
    },
    /// `/forgehand retry`: kill the session and remove the worktree, so the
    /// next `EnsureSession` starts afresh.
    StartOver,
    /// Mark a chat reply delivered and acknowledge it in the chat.
    ChatReplyDelivered {
        id: i64,
        event_id: String,
    },
    /// Stop the actor: nothing more to do.
    Stop,
}
