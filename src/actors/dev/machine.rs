//! The dev actor's transitions as a pure function: `next(state, event)` gives
//! the new state and the effects to perform. The actor persists the new state
//! before it performs any effect, so a crash between the two repeats effects
//! (which are idempotent) instead of losing them.

use serde::{Deserialize, Serialize};

use crate::forge::{CommitSha, CommitStatus, PrNumber};
use crate::phase::{Phase, PhaseReport};
use crate::prompt;
use crate::store::EventKind;

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
            Stage::Blocked => "blocked",
            Stage::Done => "done",
        }
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

    pub fn is_terminal(self) -> bool {
        matches!(self, Stage::Blocked | Stage::Done)
    }
}

/// Everything the dev actor must remember across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevState {
    pub stage: Stage,
    pub pr: Option<PrNumber>,
    /// The head forgehand last pushed: CI and reviews count only on it.
    pub head: Option<CommitSha>,
    pub ci_attempts: u32,
    pub review_rounds: u32,
    pub last_phase: Option<Phase>,
    pub merge_commit: Option<CommitSha>,
    /// Modification time (ns) of the last phase-file write handled, so a
    /// write is acted on once however many inotify events it raises, and a
    /// write made while the daemon was down is still seen on restart.
    #[serde(default)]
    pub phase_mtime_ns: Option<i64>,
}

impl DevState {
    pub fn new() -> DevState {
        DevState {
            stage: Stage::Claimed,
            pr: None,
            head: None,
            ci_attempts: 0,
            review_rounds: 0,
            last_phase: None,
            merge_commit: None,
            phase_mtime_ns: None,
        }
    }
}

impl Default for DevState {
    fn default() -> Self {
        DevState::new()
    }
}

/// Limits from the project file the transitions need.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_fix_attempts: u32,
    pub max_rounds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiVerdict {
    Pending,
    Green,
    Red { failures: Vec<CommitStatus> },
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
    /// The task prompt was delivered to a ready agent.
    AgentReady,
    Phase(PhaseReport),
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
    Finished,
}

/// Side effects for the actor to perform, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Journal(EventKind, String),
    /// Add `in-progress`, remove `backlog`. Then `ClaimRecorded`.
    Claim,
    /// Worktree + tmux session (adopting a live one), then deliver the task
    /// once the agent is ready: `AgentReady`.
    EnsureSession,
    /// Push the branch if it has commits ahead of primary: `Pushed` or `NothingToPush`.
    Push {
        force: bool,
    },
    /// Open the PR unless one exists: `PrOpened`.
    EnsurePr,
    CheckCi {
        head: CommitSha,
    },
    CheckReview {
        pr: PrNumber,
        head: CommitSha,
    },
    Paste(String),
    Merge {
        pr: PrNumber,
        head: CommitSha,
    },
    /// Close the issue, drop `in-progress`, kill the session, remove the worktree: `Finished`.
    Finish,
    /// Post a comment on the issue.
    Comment(String),
    /// Label `blocked` with a diagnostic comment and kill the session.
    Block {
        reason: String,
    },
    /// Stop the actor: nothing more to do.
    Stop,
}

/// The transition function. Events that make no sense in a stage are journaled
/// and otherwise ignored: an agent writing a stale phase must not derail an issue.
pub fn next(state: &DevState, event: Event, policy: Policy) -> (DevState, Vec<Effect>) {
    let mut s = state.clone();
    let mut fx = Vec::new();
    use Stage::*;
    match (state.stage, event) {
        (Claimed, Event::Start) => fx.push(Effect::Claim),
        (Claimed, Event::ClaimRecorded) => {
            s.stage = Starting;
            fx.push(Effect::EnsureSession);
        }
        (Starting, Event::Start) => fx.push(Effect::EnsureSession),
        (Starting, Event::AgentReady) => s.stage = Working,

        (Working, Event::Start) => fx.push(Effect::EnsureSession),
        (Pushing, Event::Start) => {
            fx.push(Effect::EnsureSession);
            fx.push(Effect::Push {
                force: state.head.is_some(),
            });
        }
        (AwaitingCi | AwaitingReview, Event::Start) => fx.push(Effect::EnsureSession),
        (Merging, Event::Start) => {
            if let (Some(pr), Some(head)) = (state.pr, state.head.clone()) {
                fx.push(Effect::Merge { pr, head });
            }
        }
        (Merged, Event::Start) => fx.push(Effect::Finish),
        (Blocked | Done, Event::Start) => fx.push(Effect::Stop),

        (stage, Event::Phase(report)) => {
            fx.push(Effect::Journal(EventKind::PhaseSeen, describe(&report)));
            s.last_phase = Some(report.phase);
            phase(&mut s, &mut fx, stage, report);
        }

        (Pushing, Event::NothingToPush) => {
            s.stage = Working;
            fx.push(Effect::Paste(prompt::nothing_to_push()));
        }
        (Pushing, Event::Pushed { head }) => {
            let moved = state.head.as_ref() != Some(&head);
            s.head = Some(head.clone());
            match state.pr {
                None => fx.push(Effect::EnsurePr),
                Some(_) => {
                    s.stage = AwaitingCi;
                    if !moved {
                        fx.push(Effect::Journal(
                            EventKind::Pushed,
                            format!("head unchanged at {head}"),
                        ));
                    }
                    fx.push(Effect::CheckCi { head });
                }
            }
        }
        (Pushing, Event::PrOpened { pr }) => {
            s.pr = Some(pr);
            s.stage = AwaitingCi;
            if let Some(head) = state.head.clone() {
                fx.push(Effect::CheckCi { head });
            }
        }

        (AwaitingCi, Event::Tick) => {
            if let Some(head) = state.head.clone() {
                fx.push(Effect::CheckCi { head });
            }
        }
        (AwaitingCi, Event::Ci { head, verdict }) if Some(&head) == state.head.as_ref() => {
            match verdict {
                CiVerdict::Pending => {}
                CiVerdict::Green => {
                    s.stage = AwaitingReview;
                    fx.push(Effect::Paste(prompt::ci_passed()));
                    if let Some(pr) = state.pr {
                        fx.push(Effect::CheckReview { pr, head });
                    }
                }
                CiVerdict::Red { failures } => {
                    s.ci_attempts += 1;
                    if s.ci_attempts > policy.max_fix_attempts {
                        s.stage = Blocked;
                        fx.push(Effect::Block {
                            reason: format!(
                                "CI still failing after {} fix attempts",
                                policy.max_fix_attempts
                            ),
                        });
                    } else {
                        s.stage = Working;
                        fx.push(Effect::Paste(prompt::ci_failed(
                            s.ci_attempts,
                            policy.max_fix_attempts,
                            &failures,
                        )));
                    }
                }
            }
        }

        (AwaitingReview, Event::Tick) => {
            if let (Some(pr), Some(head)) = (state.pr, state.head.clone()) {
                fx.push(Effect::CheckReview { pr, head });
            }
        }
        (AwaitingReview, Event::Review { head, verdict }) if Some(&head) == state.head.as_ref() => {
            match verdict {
                ReviewVerdict::Waiting => {}
                ReviewVerdict::Approved => {
                    if let Some(pr) = state.pr {
                        s.stage = Merging;
                        fx.push(Effect::Merge { pr, head });
                    }
                }
                ReviewVerdict::ChangesRequested { feedback } => {
                    s.review_rounds += 1;
                    if s.review_rounds > policy.max_rounds {
                        s.stage = Blocked;
                        fx.push(Effect::Block {
                            reason: format!(
                                "changes still requested after {} review rounds",
                                policy.max_rounds
                            ),
                        });
                    } else {
                        s.stage = Working;
                        fx.push(Effect::Paste(prompt::changes_requested(
                            s.review_rounds,
                            policy.max_rounds,
                            &feedback,
                        )));
                    }
                }
            }
        }

        (Merging, Event::MergeDone { merge_commit }) => {
            s.merge_commit = merge_commit;
            s.stage = Merged;
            fx.push(Effect::Finish);
        }
        (Merging, Event::MergeConflict { message }) => {
            s.stage = Working;
            fx.push(Effect::Journal(
                EventKind::Merged,
                format!("not merged: {message}"),
            ));
            fx.push(Effect::Paste(prompt::rebase_needed()));
        }
        (Merged, Event::Finished) => {
            s.stage = Done;
            fx.push(Effect::Stop);
        }

        // Results for a head that is no longer current, and ticks while nothing
        // is awaited, are expected and not worth a journal line.
        (_, Event::Tick | Event::Ci { .. } | Event::Review { .. }) => {}
        (stage, other) => fx.push(Effect::Journal(
            EventKind::Daemon,
            format!("ignored {} in stage {}", event_name(&other), stage.as_str()),
        )),
    }
    (s, fx)
}

fn phase(s: &mut DevState, fx: &mut Vec<Effect>, stage: Stage, report: PhaseReport) {
    use Stage::*;
    match report.phase {
        Phase::AwaitingCi => match stage {
            Starting | Working | Pushing | AwaitingCi | AwaitingReview => {
                s.stage = Pushing;
                fx.push(Effect::Push {
                    force: s.head.is_some(),
                });
            }
            _ => fx.push(ignored_phase(&report, stage)),
        },
        // An acknowledgement: the wait for a review goes on by itself.
        Phase::AwaitingReview => {}
        Phase::Escalate if stage.has_session() => {
            let reason = report
                .reason
                .clone()
                .unwrap_or_else(|| "no reason given".to_string());
            fx.push(Effect::Comment(prompt::escalation_comment(&reason)));
        }
        Phase::Failed if stage.has_session() => {
            s.stage = Blocked;
            let reason = report
                .reason
                .clone()
                .unwrap_or_else(|| "no reason given".to_string());
            fx.push(Effect::Block {
                reason: format!("the agent wrote {}: {reason}", report.phase),
            });
        }
        Phase::Escalate | Phase::Failed => fx.push(ignored_phase(&report, stage)),
    }
}

fn ignored_phase(report: &PhaseReport, stage: Stage) -> Effect {
    Effect::Journal(
        EventKind::PhaseInvalid,
        format!("{} ignored in stage {}", report.phase, stage.as_str()),
    )
}

fn describe(report: &PhaseReport) -> String {
    match &report.reason {
        Some(r) => format!("{} (Reason: {r})", report.phase),
        None => report.phase.to_string(),
    }
}

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Start => "start",
        Event::ClaimRecorded => "claim recorded",
        Event::AgentReady => "agent ready",
        Event::Phase(_) => "phase",
        Event::Pushed { .. } => "pushed",
        Event::NothingToPush => "nothing to push",
        Event::PrOpened { .. } => "PR opened",
        Event::Tick => "tick",
        Event::Ci { .. } => "CI result",
        Event::Review { .. } => "review result",
        Event::MergeDone { .. } => "merge done",
        Event::MergeConflict { .. } => "merge conflict",
        Event::Finished => "finished",
    }
}
