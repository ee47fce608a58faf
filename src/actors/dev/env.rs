//! The agent's environment, built from scratch (DESIGN §6): a whitelist of the
//! daemon's variables, the project's `pass_env`, and the FORGEHAND_* variables.
//! Anything else, the forge token first of all, never reaches the agent.

/// Exact names passed through.
const PASSED: &[&str] = &["HOME", "USER", "LOGNAME", "PATH", "SHELL", "LANG", "TMPDIR"];

/// Name prefixes passed through.
const PASSED_PREFIXES: &[&str] = &["LC_", "XDG_", "GIT_AUTHOR_", "GIT_COMMITTER_"];

/// The part of the daemon's environment any agent may see.
pub fn base_env(
    daemon_env: impl IntoIterator<Item = (String, String)>,
    pass_env: &[String],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = daemon_env
        .into_iter()
        .filter(|(k, _)| {
            PASSED.contains(&k.as_str())
                || PASSED_PREFIXES.iter().any(|p| k.starts_with(p))
                || pass_env.iter().any(|p| p == k)
        })
        .collect();
    // The pane is a tmux terminal whatever terminal started the daemon.
    env.push(("TERM".into(), "screen-256color".into()));
    env.sort();
    env
}

/// The protocol variables for one session.
pub struct SessionVars<'a> {
    pub phase_file: &'a str,
    pub summary_file: &'a str,
    pub scratch_file: &'a str,
    /// Where an agent other than Claude Code reports its token use.
    pub usage_file: &'a str,
    /// The issue's key: its number, or a local plan's name.
    pub issue: &'a str,
    pub project: &'a str,
    pub branch: &'a str,
}

pub fn session_env(base: &[(String, String)], v: &SessionVars<'_>) -> Vec<(String, String)> {
    let mut env = base.to_vec();
    env.extend([
        ("FORGEHAND_PHASE_FILE".to_string(), v.phase_file.to_string()),
        (
            "FORGEHAND_SUMMARY_FILE".to_string(),
            v.summary_file.to_string(),
        ),
        (
            "FORGEHAND_SCRATCH_FILE".to_string(),
            v.scratch_file.to_string(),
        ),
        ("FORGEHAND_USAGE_FILE".to_string(), v.usage_file.to_string()),
        ("FORGEHAND_ISSUE".to_string(), v.issue.to_string()),
        ("FORGEHAND_PROJECT".to_string(), v.project.to_string()),
        ("FORGEHAND_BRANCH".to_string(), v.branch.to_string()),
    ]);
    env
}
