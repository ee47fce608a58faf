//! Every text forgehand pastes into an agent's session. Kept in one place so
//! the protocol the agent is taught and the messages it later receives agree.

use std::fmt::Write as _;
use std::path::Path;

use crate::forge::{Comment, CommitStatus, Review, ReviewComment};
use crate::phase::RefusalKind;

/// What the first prompt is built from.
pub struct TaskPrompt<'a> {
    pub repo: &'a str,
    pub issue: u64,
    pub title: &'a str,
    pub body: &'a str,
    /// Human comments on the issue, oldest first.
    pub comments: &'a [Comment],
    /// The agent's notes from an earlier session, if any.
    pub scratch: &'a str,
    pub branch: &'a str,
    pub primary_branch: &'a str,
    pub phase_file: &'a Path,
    pub summary_file: &'a Path,
    pub scratch_file: &'a Path,
    pub usage_file: &'a Path,
}

pub fn task(t: &TaskPrompt<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "You are working on issue #{} of {}: {}",
        t.issue, t.repo, t.title
    );
    let _ = writeln!(out);
    let body = t.body.trim();
    let _ = writeln!(
        out,
        "{}",
        if body.is_empty() {
            "(the issue has no description)"
        } else {
            body
        }
    );
    if !t.comments.is_empty() {
        let _ = writeln!(out, "\nComments on the issue:");
        for c in t.comments {
            let _ = writeln!(
                out,
                "--- {} ({}):\n{}",
                c.author,
                c.created_at.format("%Y-%m-%d %H:%M"),
                c.body.trim()
            );
        }
    }
    if !t.scratch.trim().is_empty() {
        let _ = writeln!(
            out,
            "\nYour notes from an earlier session ({}):\n{}",
            t.scratch_file.display(),
            t.scratch.trim()
        );
    }
    let _ = write!(out, "\n{}", protocol(t));
    out
}

/// The phase-file protocol, with the exact paths.
pub fn protocol(t: &TaskPrompt<'_>) -> String {
    format!(
        "How to work with forgehand (it supervises this session):\n\
         - You are in a git worktree on branch {branch}, made from {primary}. Commit your work on this branch. \
         Do not push, open pull requests or change labels: forgehand does that with its own credentials.\n\
         - When your work is committed, write a short summary for the pull request to {summary}, \
         then write the line PHASE:awaiting_ci to {phase}.\n\
         - forgehand then pushes, opens the pull request and tells you what CI and reviewers say. \
         When it tells you CI passed, write PHASE:awaiting_review to {phase}.\n\
         - If you need a human decision, write PHASE:escalate to {phase} with a second line Reason: <what you need>, and wait for the answer.\n\
         - If you should not do this task, write to {summary} the JSON {{\"status\": \"unmet_dependency\" | \"too_large\" | \"already_done\", \"detail\": \"...\"}} \
         and write PHASE:failed with a second line Reason: refused to {phase}. For any other failure write PHASE:failed with Reason: <why>.\n\
         - Keep notes for yourself in {scratch}: they survive a restart of this session.\n\
         - If you are not Claude Code, report the tokens you use: after each turn append one JSON line to {usage} \
         ($FORGEHAND_USAGE_FILE), e.g. {{\"model\": \"<model name>\", \"input_tokens\": 1200, \"output_tokens\": 340, \
         \"cache_creation_input_tokens\": 0, \"cache_read_input_tokens\": 0}} (the counts of that turn). \
         Budgets are checked against it.\n\
         - The phase file is read on every write; write the whole file each time.",
        branch = t.branch,
        primary = t.primary_branch,
        summary = t.summary_file.display(),
        phase = t.phase_file.display(),
        scratch = t.scratch_file.display(),
        usage = t.usage_file.display(),
    )
}

/// To an agent whose issue reached its budget (`what`, e.g. "its budget of
/// 20000 tokens"): one message, then the issue is blocked after `grace`.
pub fn budget_wrap_up(what: &str, spent: &str, grace: &str) -> String {
    format!(
        "forgehand: this issue reached {what} (spent: {spent}). Stop working on new changes now. \
         Within {grace}: commit what is worth keeping, write where you stand to the summary file \
         ($FORGEHAND_SUMMARY_FILE) and your notes file, then write a phase: PHASE:awaiting_ci if the \
         committed work is ready, otherwise PHASE:failed with a Reason line. After that a human takes over."
    )
}

pub fn nothing_to_push() -> String {
    "forgehand: you wrote PHASE:awaiting_ci but the branch has no commits ahead of the primary branch. \
     Commit your work on this branch, then write PHASE:awaiting_ci again."
        .to_string()
}

/// To an agent that ended its turn without writing a phase.
pub fn nudge(count: u32, max: u32) -> String {
    format!(
        "forgehand: you stopped without writing a phase (reminder {count} of {max}). \
         If your work is committed, write PHASE:awaiting_ci to the phase file ($FORGEHAND_PHASE_FILE). \
         If you need a human, write PHASE:escalate with a Reason line; if you cannot do the task, PHASE:failed with a Reason line. \
         Otherwise carry on with the task."
    )
}

pub fn ci_passed() -> String {
    "forgehand: CI passed on your latest push, waiting for review. \
     Write PHASE:awaiting_review to the phase file; forgehand will tell you what the reviewer says."
        .to_string()
}

pub fn ci_failed(
    attempt: u32,
    max: u32,
    failures: &[CommitStatus],
    details: Option<&str>,
) -> String {
    let mut out =
        format!("forgehand: CI failed on your latest push (fix attempt {attempt}/{max}).\n");
    for f in failures {
        let _ = writeln!(out, "- {}: {} {}", f.context, f.description, f.target_url);
    }
    if let Some(details) = details {
        let _ = writeln!(out, "\n{}", details.trim_end());
    }
    out.push_str("\nFix it, commit, then write PHASE:awaiting_ci to the phase file.");
    out
}

pub fn changes_requested(round: u32, max: u32, feedback: &str) -> String {
    format!(
        "forgehand: the reviewer requested changes (review round {round}/{max}).\n\n{}\n\n\
         Address them, commit, then write PHASE:awaiting_ci to the phase file.",
        feedback.trim()
    )
}

/// What the reviewers asked for, for `changes_requested`: each review's
/// body and its inline comments as `path:line: text`, then the comments
/// people wrote since the last push.
pub fn review_feedback(reviews: &[(&Review, Vec<ReviewComment>)], comments: &[Comment]) -> String {
    let mut out = String::new();
    for (review, inline) in reviews {
        let _ = writeln!(out, "Review by {}:\n{}", review.author, review.body.trim());
        for c in inline {
            let line = c.position.map_or("?".to_string(), |p| p.to_string());
            let _ = writeln!(out, "{}:{line}: {}", c.path, c.body.trim());
        }
    }
    if !comments.is_empty() {
        out.push_str("\nComments since your last push:\n");
        for c in comments {
            let _ = writeln!(out, "--- {}:\n{}", c.author, c.body.trim());
        }
    }
    out
}

/// The phase file could not be read at all (a link, a pipe, a device…).
pub fn phase_file_unreadable(problem: &str) -> String {
    format!(
        "forgehand: {problem}. Write the phase as a plain file: line 1 \
         PHASE:<name>, optional line 2 Reason: <text>."
    )
}

/// The phase file was read but does not say a phase.
pub fn phase_file_invalid(path: &Path, error: &str) -> String {
    format!(
        "forgehand: could not read your phase file {}: {error}. \
         Write the whole file again: line 1 PHASE:<name>, optional line 2 Reason: <text>.",
        path.display()
    )
}

pub fn rebase_needed(primary: &str) -> String {
    format!(
        "forgehand: the pull request cannot be merged as it is: it conflicts with {primary}. \
         Rebase your branch onto origin/{primary} (already fetched; `git fetch origin` \
         fetches it again), resolve the conflicts, \
         commit, then write PHASE:awaiting_ci; forgehand pushes the rebased branch."
    )
}

/// The answer to `/forgehand status`.
pub fn status_reply(
    s: &crate::actors::dev::machine::DevState,
    p: &crate::actors::dev::machine::Policy,
) -> String {
    let pr = s.pr.map_or("none".to_string(), |pr| format!("#{pr}"));
    format!(
        "stage {}, PR {pr}, CI fix attempts {}/{}, review rounds {}/{}, respawns {}, spent {}{}{}.",
        s.stage.as_str(),
        s.ci_attempts,
        p.max_fix_attempts,
        s.review_rounds,
        p.max_rounds,
        s.respawns,
        s.spent,
        if s.held { ", merges held" } else { "" },
        if s.escalation.is_some() {
            ", waiting for an answer"
        } else {
            ""
        },
    )
}

/// Once per head when `[merge] delay` holds back a merge: on the issue by
/// its dev actor, on the pull request by the merge scanner. `hold`: whether
/// `/forgehand hold` is obeyed there (only a dev actor reads commands).
pub fn merge_window(until: chrono::DateTime<chrono::Utc>, hold: bool) -> String {
    format!(
        "The pull request is approved and CI is green: forgehand merges it at {} \
         unless someone objects before. To stop it, submit a review requesting changes{}.",
        until.format("%Y-%m-%d %H:%M:%S UTC"),
        if hold {
            " or comment `/forgehand hold`"
        } else {
            ""
        }
    )
}

pub fn escalation_comment(reason: &str) -> String {
    format!(
        "The agent working on this issue needs a human:\n\n> {}\n\n\
         Please answer in a comment here (on the issue or its pull request); \
         the answer is passed to the agent.",
        reason.trim().replace('\n', "\n> ")
    )
}

pub fn human_reply(author: &str, body: &str) -> String {
    format!(
        "forgehand: {author} answered your question:\n\n{}\n\n\
         Carry on; when your work is committed, write PHASE:awaiting_ci.",
        body.trim()
    )
}

pub fn refusal_comment(kind: RefusalKind, detail: &str) -> String {
    let what = match kind {
        RefusalKind::UnmetDependency => {
            "The agent found that this issue depends on work that is not done yet. \
             It goes back to the backlog and is picked again once that work is closed."
        }
        RefusalKind::TooLarge => {
            "The agent found this issue too large for one change. \
             It is labelled underspecified: please split it into smaller issues."
        }
        RefusalKind::AlreadyDone => "The agent found this issue already done, so it is closed.",
    };
    format!(
        "{what}\n\nThe agent's explanation:\n\n> {}",
        detail.trim().replace('\n', "\n> ")
    )
}

/// What a respawned agent is told, after the task itself.
pub struct Recovery<'a> {
    pub pr: Option<u64>,
    pub last_phase: Option<&'a str>,
    pub last_ci: Option<&'a str>,
    pub last_review: Option<&'a str>,
    pub last_escalation: Option<&'a str>,
}

pub fn recovery(r: &Recovery<'_>) -> String {
    let mut out = String::from(
        "forgehand: this session was restarted. Your earlier work is in this worktree and its branch.\n",
    );
    if let Some(pr) = r.pr {
        let _ = writeln!(
            out,
            "- Pull request #{pr} exists for this branch: do not open another."
        );
    }
    if let Some(p) = r.last_phase {
        let _ = writeln!(out, "- The last phase you wrote: {p}.");
    }
    if let Some(c) = r.last_ci {
        let _ = writeln!(out, "- Last CI result: {c}.");
    }
    if let Some(v) = r.last_review {
        let _ = writeln!(out, "- Last review: {v}.");
    }
    if let Some(e) = r.last_escalation {
        let _ = writeln!(
            out,
            "- You already escalated ({e}); don't escalate again for the same reason."
        );
    }
    out.push_str("Check the state of the branch, then carry on with the protocol below.");
    out
}

/// The most forgehand pastes in one message; agents choke on megabytes and a
/// human reading the pane would too.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// Cut `text` to `max` bytes (on a character boundary), saying so.
pub fn limit(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[forgehand: message truncated, {} of {} bytes cut]",
        &text[..end],
        text.len() - end,
        text.len()
    )
}
