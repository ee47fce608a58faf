//! Commands people give forgehand in a comment on an issue or its pull
//! request: a line `/forgehand stop|retry|hold|release|status`. Only people
//! with write access are obeyed (the dev actor checks); the text is forge
//! text, so only the exact verbs are recognised and nothing else of the
//! comment is used.

/// What a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeCommand {
    /// Kill the session and label the issue `blocked`.
    Stop,
    /// Start over from the primary branch: a new worktree, a new agent.
    Retry,
    /// No merge until `Release`.
    Hold,
    Release,
    /// Reply with the stage, the attempts and the spend.
    Status,
}

impl ForgeCommand {
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeCommand::Stop => "stop",
            ForgeCommand::Retry => "retry",
            ForgeCommand::Hold => "hold",
            ForgeCommand::Release => "release",
            ForgeCommand::Status => "status",
        }
    }
}

/// forgehand's reply to `author`'s command: `@author: what`.
pub fn reply(author: &str, what: &str) -> String {
    format!("@{author}: {what}")
}

/// Why an issue `author` stopped is blocked (said in the block's comment,
/// which is the stop's reply).
pub fn stop_reason(author: &str) -> String {
    format!("stopped by {author} (/forgehand stop)")
}

/// Whether forgehand's comment `body` answers a command by `author`.
pub fn answers(body: &str, author: &str) -> bool {
    body.starts_with(&reply(author, "")) || body.contains(&stop_reason(author))
}

/// The command of a comment: its first line reading `/forgehand <verb>`
/// (surrounding blanks allowed, any case), or `None`.
pub fn parse(body: &str) -> Option<ForgeCommand> {
    body.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        if !words.next()?.eq_ignore_ascii_case("/forgehand") {
            return None;
        }
        let verb = words.next()?.to_ascii_lowercase();
        if words.next().is_some() {
            return None;
        }
        match verb.as_str() {
            "stop" => Some(ForgeCommand::Stop),
            "retry" => Some(ForgeCommand::Retry),
            "hold" => Some(ForgeCommand::Hold),
            "release" => Some(ForgeCommand::Release),
            "status" => Some(ForgeCommand::Status),
            _ => None,
        }
    })
}
