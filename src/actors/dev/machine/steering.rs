//! The transitions people and budgets steer: the issue's budget (a wrap-up
//! message, then a block after the grace period) and the `/forgehand`
//! commands from comments.

use std::time::Duration;

use super::{DevState, Effect, EventKind, Stage, Transition, humanize};
use crate::commands::{self, ForgeCommand};
use crate::prompt;

impl Transition<'_> {
    /// Hold the issue to its budget: once over it, tell the agent to wrap
    /// up (once); once `grace` has passed since, block the issue stating
    /// what was spent. A merge under way is let finish.
    pub(super) fn check_budget(&mut self) {
        let stage = self.s.stage;
        if !stage.has_session() || stage == Stage::Merging {
            return;
        }
        let budget = &self.policy.budget;
        let elapsed = self.s.started_at.map(|t| self.elapsed(t));
        let took = elapsed.map_or(String::new(), |e| format!(" in {}", humanize_rounded(e)));
        if let Some(since) = self.s.wrap_up_since {
            if self.elapsed(since) >= budget.grace {
                self.block(format!(
                    "the issue reached its budget; the agent spent {}{took}, and its {} to wrap up are over",
                    self.s.spent,
                    humanize(budget.grace)
                ));
            }
            return;
        }
        if let Some(what) = budget.issue_over(self.s.spent, elapsed.unwrap_or_default()) {
            self.s.wrap_up_since = Some(self.now);
            let grace = humanize(budget.grace);
            let spent = format!("{}{took}", self.s.spent);
            self.journal(
                EventKind::Daemon,
                format!("reached {what}: spent {spent}; the agent has {grace} to wrap up"),
            );
            self.push(Effect::Paste(prompt::budget_wrap_up(&what, &spent, &grace)));
        }
    }

    /// The daemon's monthly budget: once reached, escalate this issue once;
    /// from then on nothing is pasted into its session (see `push`).
    pub(super) fn daemon_cap(&mut self, spent: crate::budget::Spend) {
        let Some(what) = self.policy.budget.daemon_month.reached(spent) else {
            return;
        };
        if self.s.daemon_capped {
            return;
        }
        self.s.daemon_capped = true;
        let reason = format!(
            "the daemon's monthly budget of {what} is reached (spent this month: {spent}): \
             nothing more is passed to the agent until a human decides"
        );
        self.push(Effect::Comment(prompt::escalation_comment(&reason)));
        self.push(Effect::Notify(crate::notify::Notice::Escalation { reason }));
    }

    /// A `/forgehand` command from a person with write access; each is
    /// answered on the issue (a stop by the block's own comment).
    pub(super) fn command(&mut self, author: &str, command: ForgeCommand) {
        use Stage::*;
        self.journal(
            EventKind::Daemon,
            format!("/forgehand {} from {author}", command.as_str()),
        );
        let ack = |what: &str| Effect::Comment(commands::reply(author, what));
        match command {
            ForgeCommand::Stop => self.block(commands::stop_reason(author)),
            ForgeCommand::Hold => {
                self.s.held = true;
                if self.s.stage == Merging {
                    self.s.stage = AwaitingReview;
                }
                self.push(ack(
                    "held: forgehand will not merge this until `/forgehand release`.",
                ));
            }
            ForgeCommand::Release => {
                self.s.held = false;
                self.push(ack("released: forgehand merges once approved and green."));
                if let (AwaitingReview, Some(pr), Some(head)) =
                    (self.s.stage, self.s.pr, self.s.head.clone())
                {
                    self.push(Effect::CheckReview { pr, head });
                }
            }
            ForgeCommand::Status => {
                let text = prompt::status_reply(&self.s, self.policy);
                self.push(ack(&text));
            }
            ForgeCommand::Retry => {
                self.s = DevState {
                    stage: Starting,
                    from_primary: true,
                    // Kept: the PR gets the new work (pushed with force).
                    pr: self.s.pr,
                    head: self.s.head.clone(),
                    held: self.s.held,
                    last_command_id: self.s.last_command_id,
                    refusals: self.s.refusals,
                    ..DevState::new(self.now)
                };
                self.s.started_at = Some(self.now);
                self.push(ack(
                    "starting over from the primary branch with a new session.",
                ));
                self.push(Effect::StartOver);
                self.push(Effect::EnsureSession);
            }
        }
    }
}

/// A duration in messages, to the minute once it is over a minute.
fn humanize_rounded(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 60 => humanize(Duration::from_secs(s / 60 * 60)),
        s => humanize(Duration::from_secs(s)),
    }
}
