//! tmux telling forgehand that a pane died or a session closed. forgehand's
//! hooks on the server signal a `wait-for` channel; a *round* is one tmux
//! call that (re)installs the hooks, lists every session's pane state and then
//! waits on the channel.
//!
//! The listing and the wait are one command list, which the server runs
//! without anything in between: whatever happened before the wait began is
//! in the listing, whatever happens after wakes the wait. A separate listing
//! would not do: tmux forgets a signal when a second one comes while nobody
//! waits (`wait-for -S` on a channel already woken removes it).
//!
//! `pane-died` alone is not enough: tmux before 3.6, built with libutempter
//! (Debian's is), can lose the SIGCHLD of a pane's process. The pane's end
//! of file makes tmux remove the pane's utmp record, and libutempter swaps in
//! its own SIGCHLD handler while its helper runs; a pane process that exits
//! meanwhile stays an unreaped zombie, tmux never learns its status and never
//! runs `pane-died`, though `#{pane_dead}` already says 1 (upstream fix:
//! tmux commit fa5f3cef3, GitHub issue 4559). So the listing also gives each
//! pane's process id, which the caller watches for its exit itself.

use std::collections::HashMap;
use std::process::Stdio;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use super::{CALL_TIMEOUT, Tmux};

/// The `wait-for` channel forgehand's hooks signal.
pub const LIVENESS_CHANNEL: &str = "forgehand-liveness";

/// forgehand's index in the server's global `pane-died` and `session-closed`
/// hook arrays: the hooks people set themselves (index 0, or others) stay.
const HOOK_INDEX: u32 = 1717;

/// The line that ends a round's listing (a pane's line holds a tab).
const LISTED: &str = "forgehand-liveness-listed";

/// The `set-hook` commands (one argument list each) by which tmux signals
/// that a pane died or a session closed: each signals the channel, nothing
/// more. Global, because tmux looks up `session-closed` only there; fixed
/// text, so nothing of a session's name, an issue or an agent reaches a tmux
/// command string. Agents cannot reach the server's socket (the sandbox hides
/// it), so they can neither fake nor block the signal.
pub(super) fn hooks() -> [[String; 4]; 2] {
    let signal = format!("wait-for -S {LIVENESS_CHANNEL}");
    ["pane-died", "session-closed"].map(|hook| {
        [
            "set-hook".to_owned(),
            "-g".to_owned(),
            format!("{hook}[{HOOK_INDEX}]"),
            signal.clone(),
        ]
    })
}

/// What a round's listing says of a session's first pane (the agent's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneState {
    pub dead: bool,
    /// The pane's process (`#{pane_pid}`); `None` when tmux gave no number.
    pub pid: Option<u32>,
}

/// A round under way: its listing was read, its wait goes on. Dropping it
/// ends the waiting `tmux` process.
pub struct LivenessRound {
    child: Child,
}

impl Tmux {
    /// Starts a round: the hooks installed, then whether the first pane of
    /// each session (the agent's) is dead. `None` for the round when tmux
    /// could not wait (no server: the listing is then empty).
    pub async fn liveness_round(
        &self,
    ) -> Result<(Option<LivenessRound>, HashMap<String, PaneState>)> {
        let mut args: Vec<String> = Vec::new();
        for hook in hooks() {
            args.extend(hook);
            args.push(";".into());
        }
        let format = "#{pane_dead}\t#{pane_pid}\t#{session_name}";
        args.extend(["list-panes", "-a", "-F", format, ";"].map(String::from));
        args.extend(["display-message", "-p", LISTED, ";"].map(String::from));
        args.extend(["wait-for", LIVENESS_CHANNEL].map(String::from));
        let mut child = self
            .command()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running tmux{} list-panes", self.socket_note()))?;
        let stdout = child.stdout.take().context("tmux has no stdout")?;
        let listing =
            tokio::time::timeout(CALL_TIMEOUT, read_listing(BufReader::new(stdout).lines()))
                .await
                .map_err(|_| self.timed_out("list-panes"))??;
        if let Some(states) = listing {
            return Ok((Some(LivenessRound { child }), states));
        }
        // Ended before the listing did: no server, or a real failure.
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr).await;
        }
        let status = child.wait().await.context("waiting for tmux")?;
        let out = std::process::Output {
            status,
            stdout: Vec::new(),
            stderr: stderr.into_bytes(),
        };
        if super::is_absent(&out) {
            return Ok((None, HashMap::new()));
        }
        Err(self.failure("list-panes -a", "", &out))
    }
}

impl LivenessRound {
    /// Waits until a hook signals, or the server goes away.
    pub async fn ended(&mut self) {
        let _ = self.child.wait().await;
    }
}

/// The listing's lines up to `LISTED`; `None` when the output ended first.
async fn read_listing(
    mut lines: Lines<BufReader<ChildStdout>>,
) -> Result<Option<HashMap<String, PaneState>>> {
    let mut states = HashMap::new();
    while let Some(line) = lines.next_line().await.context("reading tmux's listing")? {
        if line == LISTED {
            return Ok(Some(states));
        }
        if let Some((dead, rest)) = line.split_once('\t')
            && let Some((pid, name)) = rest.split_once('\t')
        {
            // Panes come window by window: the first is the agent's.
            states.entry(name.to_owned()).or_insert(PaneState {
                dead: dead == "1",
                pid: pid.parse().ok(),
            });
        }
    }
    Ok(None)
}
