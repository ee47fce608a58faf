//! The dev actor's transitions as a pure function: `next(state, event, policy,
//! now)` gives the new state and the effects to perform. The actor persists the
//! new state before it performs any effect, so a crash between the two repeats
//! effects (which are idempotent) instead of losing them. Time comes in as an
//! argument, so timeouts are tested without waiting.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::forge::CommitSha;
use crate::notify::Notice;
use crate::phase::{Phase, PhaseReport, Refusal, RefusalKind};
use crate::prompt;
use crate::store::EventKind;

pub use super::model::*;

mod steering;

/// Times an issue may be refused and handed back before a human must look.
pub const MAX_REFUSALS: u32 = 2;

/// Times an agent that stops without writing a phase is told to; once more
/// and it is taken as having failed.
pub const MAX_NUDGES: u32 = 2;

/// The transition function. Events that make no sense in a stage are journaled
/// and otherwise ignored: an agent writing a stale phase must not derail an issue.
pub fn next(
    state: &DevState,
    event: Event,
    policy: &Policy,
    now: DateTime<Utc>,
) -> (DevState, Vec<Effect>) {
    let mut t = Transition {
        s: state.clone(),
        fx: Vec::new(),
        policy,
        now,
    };
    t.apply(event);
    if t.s.stage != state.stage {
        t.s.stage_since = now;
    }
    (t.s, t.fx)
}

struct Transition<'a> {
    s: DevState,
    fx: Vec<Effect>,
    policy: &'a Policy,
    now: DateTime<Utc>,
}

impl Transition<'_> {
    fn push(&mut self, effect: Effect) {
        // At the daemon's monthly budget nothing new reaches any agent.
        if let (true, Effect::Paste(text)) = (self.s.daemon_capped, &effect) {
            let first = text.lines().next().unwrap_or_default().to_string();
            self.journal(
                EventKind::Daemon,
                format!("not pasted (the daemon's monthly budget is reached): {first}"),
            );
            return;
        }
        self.fx.push(effect);
    }

    fn journal(&mut self, kind: EventKind, detail: impl Into<String>) {
        self.fx.push(Effect::Journal(kind, detail.into()));
    }

    fn block(&mut self, reason: String) {
        self.s.stage = Stage::Blocked;
        self.s.escalation = None;
        // The notice first: it is durable once queued (the chat outbox),
        // while effects still waiting behind a forge outage are not.
        self.push(Effect::Notify(Notice::Blocked {
            reason: reason.clone(),
        }));
        self.push(Effect::Block { reason });
        self.push(Effect::Stop);
    }

    fn elapsed(&self, since: DateTime<Utc>) -> Duration {
        (self.now - since).to_std().unwrap_or_default()
    }

    fn apply(&mut self, event: Event) {
        use Stage::*;
        let stage = self.s.stage;
        match (stage, event) {
            (Claimed, Event::Start) => self.push(Effect::Claim),
            (Claimed, Event::NotClaimable { why }) => {
                self.s.stage = Released;
                self.journal(EventKind::Released, format!("not claimed: {why}"));
                self.push(Effect::Stop);
            }
            (Claimed, Event::ClaimRecorded) => {
                self.s.stage = Starting;
                self.s.started_at = Some(self.now);
                self.push(Effect::Notify(Notice::Claimed));
                self.push(Effect::EnsureSession);
            }
            (Starting | Working | AwaitingCi | AwaitingReview, Event::Start) => {
                self.push(Effect::EnsureSession);
                // The question on the forge, unless it made it there
                // before the restart.
                if let Some(esc) = &self.s.escalation {
                    self.push(Effect::CommentOnce {
                        text: prompt::escalation_comment(&esc.reason),
                        since: esc.since,
                    });
                }
            }
            (Pushing, Event::Start) => {
                self.push(Effect::EnsureSession);
                self.push(Effect::Push {
                    force: self.s.head.is_some(),
                });
            }
            (Merging, Event::Start) => match (self.s.pr, self.s.head.clone()) {
                (Some(_), Some(_)) if self.s.held => self.s.stage = AwaitingReview,
                (Some(pr), Some(head)) => self.push(Effect::Merge { pr, head }),
                _ => self.s.stage = Working,
            },
            (Merged, Event::Start) => self.push(Effect::Finish),
            (Released | Blocked | Done, Event::Start | Event::GiveUp { .. }) => {
                self.push(Effect::Stop)
            }
            (_, Event::GiveUp { reason }) => self.block(reason),
            (stage, Event::PromptShown) if stage.has_session() => self.push(Effect::DeliverPrompt),
            (Starting, Event::AgentReady) => self.s.stage = Working,
            // A respawned agent got its recovery prompt: nothing else changes.
            (_, Event::AgentReady) => {}

            (stage, Event::Phase(report)) => {
                let line = match &report.reason {
                    Some(r) => format!("{} (Reason: {r})", report.phase),
                    None => report.phase.to_string(),
                };
                self.journal(EventKind::PhaseSeen, line);
                self.s.last_phase = Some(report.phase);
                self.s.nudges = 0;
                self.s.phase_since_stop = true;
                self.phase(stage, report);
            }
            (stage, Event::Refused(refusal)) if stage.has_session() => self.refused(refusal),

            (Pushing, Event::NothingToPush) => {
                self.s.stage = Working;
                self.push(Effect::Paste(prompt::nothing_to_push()));
            }
            (Pushing, Event::Pushed { head }) => {
                self.s.from_primary = false;
                let moved = self.s.head.as_ref() != Some(&head);
                self.s.head = Some(head.clone());
                if moved {
                    self.s.last_push_at = Some(self.now);
                }
                match self.s.pr {
                    None => self.push(Effect::EnsurePr),
                    Some(_) => {
                        self.s.stage = AwaitingCi;
                        self.push(Effect::CheckCi { head });
                    }
                }
            }
            (Pushing, Event::PrOpened { pr }) => {
                self.s.pr = Some(pr);
                self.s.stage = AwaitingCi;
                self.push(Effect::Notify(Notice::PrOpened { pr }));
                if let Some(head) = self.s.head.clone() {
                    self.push(Effect::CheckCi { head });
                }
            }

            (stage, Event::Tick) => self.tick(stage),
            (AwaitingCi, Event::Ci { head, verdict }) if Some(&head) == self.s.head.as_ref() => {
                self.ci(head, verdict)
            }
            (AwaitingReview, Event::Review { head, verdict })
                if Some(&head) == self.s.head.as_ref() =>
            {
                self.review(head, verdict)
            }

            (Merging, Event::MergeDone { merge_commit }) => {
                self.s.merge_commit = merge_commit.clone();
                self.s.stage = Merged;
                if let Some(pr) = self.s.pr {
                    self.push(Effect::Notify(Notice::Merged { pr, merge_commit }));
                }
                self.push(Effect::Finish);
            }
            (Merging, Event::MergeConflict { message }) => {
                self.s.stage = Working;
                self.journal(EventKind::Merged, format!("not merged: {message}"));
                self.push(Effect::Fetch);
                self.push(Effect::Paste(prompt::rebase_needed(
                    &self.policy.primary_branch,
                )));
            }
            (Merging, Event::MergeDeferred { wait }) => {
                let head = self.s.head.clone();
                match (wait, head, self.s.pr) {
                    (MergeWait::Ci, Some(head), _) => {
                        self.s.stage = AwaitingCi;
                        self.journal(
                            EventKind::Merged,
                            "not merged yet: CI is not green on the head",
                        );
                        self.push(Effect::CheckCi { head });
                    }
                    (MergeWait::Review, Some(head), Some(pr)) => {
                        self.s.stage = AwaitingReview;
                        self.journal(
                            EventKind::Merged,
                            "not merged yet: not approved on the head",
                        );
                        self.push(Effect::CheckReview { pr, head });
                    }
                    _ => self.s.stage = Working,
                }
            }
            (Merging, Event::MergeImpossible { reason }) => self.block(reason),
            // Stays merging: each tick asks again, and a review meanwhile
            // (or the head moving) changes the decision.
            (Merging, Event::MergeWindow { until }) => {
                if let Some(head) = self.s.head.clone()
                    && self.s.merge_announced_for.as_ref() != Some(&head)
                {
                    self.s.merge_announced_for = Some(head);
                    self.push(Effect::Comment(prompt::merge_window(until, true)));
                }
            }
            (Merged, Event::Finished) => {
                self.s.stage = Done;
                self.push(Effect::Stop);
            }

            (_, Event::HumanReply { author, body }) if self.s.escalation.is_some() => {
                self.s.escalation = None;
                self.journal(EventKind::Pasted, format!("answer from {author} delivered"));
                self.push(Effect::Paste(prompt::human_reply(&author, &body)));
                self.push(Effect::Notify(Notice::ReplyDelivered { author }));
            }
            (
                stage,
                Event::ChatReply {
                    id,
                    event_id,
                    author,
                    body,
                },
            ) if stage.has_session() => {
                self.s.escalation = None;
                self.push(Effect::Paste(prompt::human_reply(&author, &body)));
                self.push(Effect::ChatReplyDelivered { id, event_id });
            }
            (stage, Event::SessionDead) if stage.has_session() => {
                self.s.respawns += 1;
                if self.s.respawns > self.policy.max_respawns {
                    self.block(format!(
                        "the agent's session ended {} times",
                        self.s.respawns
                    ));
                } else {
                    self.journal(
                        EventKind::Error,
                        format!("the agent's session ended; respawn {}", self.s.respawns),
                    );
                    self.push(Effect::Notify(Notice::Respawned {
                        count: self.s.respawns,
                    }));
                    self.push(Effect::EnsureSession);
                }
            }
            // Stopping is normal once the agent has said where it stands;
            // while it works (or waits on a human) it is not.
            (_, Event::AgentStopped) if self.s.phase_since_stop => {
                self.s.phase_since_stop = false;
            }
            (Working, Event::AgentStopped) if self.s.escalation.is_none() => {
                if self.s.nudges >= MAX_NUDGES {
                    self.block(format!(
                        "the agent stopped {} times without writing a phase",
                        self.s.nudges + 1
                    ));
                } else {
                    self.s.nudges += 1;
                    self.push(Effect::Paste(prompt::nudge(self.s.nudges, MAX_NUDGES)));
                }
            }
            (stage, Event::Idle) if stage.agent_busy() && self.s.escalation.is_none() => {
                let idle = humanize(self.policy.idle_timeout);
                self.block(format!(
                    "no phase change and no output from the agent for {idle}"
                ));
            }

            (stage, Event::Commands { upto, commands }) if !stage.is_terminal() => {
                self.s.last_command_id = self.s.last_command_id.max(upto);
                for (author, command) in commands {
                    if self.s.stage.is_terminal() {
                        break;
                    }
                    self.command(&author, command);
                }
            }
            (stage, Event::DaemonSpend(spent)) if stage.has_session() => self.daemon_cap(spent),
            (_, Event::Spend { spent }) => {
                if let Some(spent) = spent {
                    self.s.spent = spent;
                }
                self.check_budget();
            }

            // Results for a head that is no longer current, replies nobody
            // waits for, and liveness news about a session not expected to
            // exist are all normal races, not worth a journal line.
            (
                _,
                Event::Ci { .. }
                | Event::Review { .. }
                | Event::HumanReply { .. }
                | Event::ChatReply { .. }
                | Event::SessionDead
                | Event::Idle
                | Event::AgentStopped
                | Event::PromptShown
                | Event::Commands { .. }
                | Event::DaemonSpend(_),
            ) => {}
            (stage, other) => self.journal(
                EventKind::Daemon,
                format!("ignored {} in stage {}", event_name(&other), stage.as_str()),
            ),
        }
    }

    /// What a tick looks at: the stage's own waits, then people's commands.
    fn tick(&mut self, stage: Stage) {
        if !stage.has_session() {
            return;
        }
        self.tick_stage(stage);
        if !self.s.stage.is_terminal() {
            self.push(Effect::CheckCommands {
                pr: self.s.pr,
                after: self.s.last_command_id,
                since: self.s.started_at.unwrap_or(self.s.stage_since),
            });
        }
    }

    fn tick_stage(&mut self, stage: Stage) {
        if let Some(esc) = self.s.escalation.clone() {
            if self.elapsed(esc.since) > self.policy.escalation_timeout {
                let waited = humanize(self.policy.escalation_timeout);
                self.block(format!(
                    "nobody answered the escalation within {waited}: {}",
                    esc.reason
                ));
            } else {
                self.push(Effect::CheckReplies {
                    pr: self.s.pr,
                    since: esc.since,
                });
            }
            return;
        }
        let Some(head) = self.s.head.clone() else {
            return;
        };
        match stage {
            // A merge the forge refused for a passing reason (an outage, a
            // local repository with uncommitted changes) is tried again; the
            // merge effect reads the PR first, so a merge that did land is seen.
            Stage::Merging if self.s.held => self.s.stage = Stage::AwaitingReview,
            Stage::Merging => {
                if let Some(pr) = self.s.pr {
                    self.push(Effect::Merge { pr, head });
                }
            }
            Stage::AwaitingCi if self.elapsed(self.s.stage_since) > self.policy.ci_timeout => {
                let waited = humanize(self.policy.ci_timeout);
                self.block(format!("CI gave no verdict on {head} within {waited}"));
            }
            Stage::AwaitingCi => self.push(Effect::CheckCi { head }),
            Stage::AwaitingReview => {
                if let Some(pr) = self.s.pr {
                    self.push(Effect::CheckReview {
                        pr,
                        head: head.clone(),
                    });
                }
                let overdue = self.elapsed(self.s.stage_since) > self.policy.review_timeout;
                if overdue && self.s.review_overdue_for.as_ref() != Some(&head) {
                    self.s.review_overdue_for = Some(head);
                    self.push(Effect::Notify(Notice::ReviewOverdue));
                }
            }
            _ => {}
        }
    }

    fn phase(&mut self, stage: Stage, report: PhaseReport) {
        use Stage::*;
        if !stage.has_session() || stage == Merging {
            self.journal(
                EventKind::PhaseInvalid,
                format!("{} ignored in stage {}", report.phase, stage.as_str()),
            );
            return;
        }
        match report.phase {
            Phase::AwaitingCi => {
                // Carrying on is the agent's answer to its own question.
                self.s.escalation = None;
                self.s.stage = Pushing;
                self.push(Effect::Push {
                    force: self.s.head.is_some(),
                });
            }
            // An acknowledgement: the wait for a review goes on by itself.
            Phase::AwaitingReview => {}
            Phase::Escalate => {
                let reason = report
                    .reason
                    .unwrap_or_else(|| "no reason given".to_string());
                self.s.escalation = Some(Escalation {
                    reason: reason.clone(),
                    since: self.now,
                });
                self.s.last_escalation = Some(reason.clone());
                // The notice first, as in `block`.
                self.push(Effect::Notify(Notice::Escalation {
                    reason: reason.clone(),
                }));
                self.push(Effect::Comment(prompt::escalation_comment(&reason)));
            }
            Phase::Failed => {
                let reason = report
                    .reason
                    .unwrap_or_else(|| "no reason given".to_string());
                self.block(format!("the agent gave up: {reason}"));
            }
        }
    }

    fn refused(&mut self, refusal: Refusal) {
        let detail = refusal.detail.trim().to_string();
        self.s.refusals += 1;
        if self.s.refusals > MAX_REFUSALS {
            self.block(format!(
                "the agent refused this issue {} times; last: {detail}",
                self.s.refusals
            ));
            return;
        }
        if refusal.status == RefusalKind::UnmetDependency {
            let deps = crate::picking::mentioned_issues(&detail);
            if deps.is_empty() {
                self.block(format!(
                    "the agent reports an unmet dependency but names no issue (#N): {detail}"
                ));
                return;
            }
            self.s.waiting_for = deps;
        }
        self.s.stage = Stage::Released;
        self.s.escalation = None;
        self.push(Effect::Release {
            outcome: refusal.status,
            comment: prompt::refusal_comment(refusal.status, &detail),
        });
        self.push(Effect::Notify(Notice::Refused {
            kind: refusal.status,
            detail,
        }));
        self.push(Effect::Stop);
    }

    fn ci(&mut self, head: CommitSha, verdict: CiVerdict) {
        match verdict {
            CiVerdict::Pending => {}
            CiVerdict::Green => {
                self.s.stage = Stage::AwaitingReview;
                self.s.last_ci = Some(format!("CI passed on {head}"));
                self.push(Effect::Paste(prompt::ci_passed()));
                if let Some(pr) = self.s.pr {
                    self.push(Effect::CheckReview { pr, head });
                }
            }
            CiVerdict::Red {
                infrastructure: Some(pipeline),
                ..
            } if self.s.infra_retried.as_ref() != Some(&head) => {
                self.s.infra_retried = Some(head.clone());
                self.journal(
                    EventKind::CiState,
                    format!(
                        "infrastructure failure on {head}: restarting pipeline {pipeline} once"
                    ),
                );
                self.push(Effect::RestartCi { pipeline });
            }
            CiVerdict::Red {
                failures, details, ..
            } => {
                self.s.ci_attempts += 1;
                let contexts: Vec<String> = failures.iter().map(|f| f.context.clone()).collect();
                self.s.last_ci = Some(format!("CI failed on {head}: {}", contexts.join(", ")));
                let (k, max) = (self.s.ci_attempts, self.policy.max_fix_attempts);
                if k > max {
                    self.block(format!(
                        "CI still fails after {max} fix attempts ({})",
                        contexts.join(", ")
                    ));
                    return;
                }
                self.s.stage = Stage::Working;
                self.push(Effect::Paste(prompt::ci_failed(
                    k,
                    max,
                    &failures,
                    details.as_deref(),
                )));
                self.push(Effect::Notify(Notice::CiFailed {
                    attempt: k,
                    max,
                    contexts,
                }));
            }
        }
    }

    fn review(&mut self, head: CommitSha, verdict: ReviewVerdict) {
        match verdict {
            ReviewVerdict::Waiting => {}
            ReviewVerdict::Approved => {
                self.s.last_review = Some(format!("approved on {head}"));
                if self.s.held {
                    return;
                }
                if let Some(pr) = self.s.pr {
                    self.s.stage = Stage::Merging;
                    self.push(Effect::Merge { pr, head });
                }
            }
            ReviewVerdict::ChangesRequested { feedback } => {
                self.s.review_rounds += 1;
                let (k, max) = (self.s.review_rounds, self.policy.max_rounds);
                self.s.last_review = Some(format!("changes requested on {head} (round {k})"));
                if k > max {
                    self.block(format!("changes still requested after {max} review rounds"));
                    return;
                }
                self.s.stage = Stage::Working;
                self.push(Effect::Paste(prompt::changes_requested(k, max, &feedback)));
                self.push(Effect::Notify(Notice::ChangesRequested { round: k, max }));
            }
        }
    }
}

/// `90s`, `30m`, `2h`, `1d` for messages.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 2 * 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s if s > 0 => format!("{s}s"),
        _ => format!("{}ms", d.as_millis()),
    }
}

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Start => "start",
        Event::ClaimRecorded => "claim recorded",
        Event::NotClaimable { .. } => "not claimable",
        Event::PromptShown => "prompt shown",
        Event::AgentReady => "agent ready",
        Event::GiveUp { .. } => "give up",
        Event::Phase(_) => "phase",
        Event::Refused(_) => "refusal",
        Event::Pushed { .. } => "pushed",
        Event::NothingToPush => "nothing to push",
        Event::PrOpened { .. } => "PR opened",
        Event::Tick => "tick",
        Event::Ci { .. } => "CI result",
        Event::Review { .. } => "review result",
        Event::MergeDone { .. } => "merge done",
        Event::MergeConflict { .. } => "merge conflict",
        Event::MergeDeferred { .. } => "merge deferred",
        Event::MergeImpossible { .. } => "merge impossible",
        Event::MergeWindow { .. } => "veto window",
        Event::Finished => "finished",
        Event::HumanReply { .. } => "human reply",
        Event::ChatReply { .. } => "chat reply",
        Event::SessionDead => "session dead",
        Event::Idle => "idle",
        Event::AgentStopped => "agent stopped",
        Event::Spend { .. } => "spend",
        Event::Commands { .. } => "commands",
        Event::DaemonSpend(_) => "daemon spend",
    }
}
