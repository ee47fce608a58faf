//! Claude Code hooks in the worktree's `.claude/settings.local.json`. Each
//! hook command is fixed text: it names files only through the FORGEHAND_*
//! variables of the session, never any user text. `.claude/` is listed in the
//! repository's `info/exclude`, so these files can never be committed.
//!
//! - `Stop` → the `agent-stopped` marker (the hook's JSON input).
//! - `SessionEnd` → the `agent-exited` marker.
//! - `StopFailure` (an API error ended the turn) → `PHASE:failed` with the
//!   error kind as the reason.
//! - `SessionStart` after compaction → print the protocol text again, which
//!   Claude Code adds to the agent's context.

use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value, json};

use crate::agent::{EXITED_MARKER, PROTOCOL_FILE, STOPPED_MARKER};
use crate::untrusted;

/// The kinds of `StopFailure` Claude Code 2.x reports (the hook's matcher).
const STOP_FAILURES: &[&str] = &[
    "authentication_failed",
    "oauth_org_not_allowed",
    "account_on_hold",
    "verification_required",
    "billing_error",
    "rate_limit",
    "overloaded",
    "invalid_request",
    "model_not_found",
    "server_error",
    "max_output_tokens",
    "cloud_credential_error",
    "unknown",
];

const SESSION_DIR: &str = r#""$(dirname "$FORGEHAND_PHASE_FILE")""#;

fn command(cmd: String) -> Value {
    json!({ "hooks": [{ "type": "command", "command": cmd }] })
}

/// The `hooks` object forgehand installs.
pub fn hooks() -> Value {
    let marker = |name: &str| format!(r#"cat > {SESSION_DIR}/{name}"#);
    let failures: Vec<Value> = STOP_FAILURES
        .iter()
        .map(|kind| {
            let mut entry = command(format!(
                r#"printf 'PHASE:failed\nReason: Claude Code stopped: {kind}\n' > "$FORGEHAND_PHASE_FILE""#
            ));
            entry["matcher"] = json!(kind);
            entry
        })
        .collect();
    let mut compact = command(format!("cat {SESSION_DIR}/{PROTOCOL_FILE}"));
    compact["matcher"] = json!("compact");
    json!({
        "Stop": [command(marker(STOPPED_MARKER))],
        "SessionEnd": [command(marker(EXITED_MARKER))],
        "StopFailure": failures,
        "SessionStart": [compact],
    })
}

/// Write the hooks into `<worktree>/.claude/settings.local.json` (keeping any
/// other settings there) and exclude `.claude/` from commits. The worktree is
/// the agent's: nothing in it is followed if it is a link.
pub async fn install(worktree: &Path) -> anyhow::Result<()> {
    let worktree = worktree.to_path_buf();
    tokio::task::spawn_blocking(move || install_blocking(&worktree))
        .await
        .context("installing Claude Code's hooks")?
}

/// The settings file's largest believable size.
const MAX_SETTINGS: usize = 1024 * 1024;

fn install_blocking(worktree: &Path) -> anyhow::Result<()> {
    let file = Path::new(".claude/settings.local.json");
    let mut settings = match untrusted::read_capped_in(worktree, file, MAX_SETTINGS) {
        Ok(read) if !read.truncated => match serde_json::from_slice::<Value>(&read.bytes) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    let Value::Object(ours) = hooks() else {
        unreachable!("hooks() is an object")
    };
    let installed = settings.entry("hooks").or_insert_with(|| json!({}));
    if !installed.is_object() {
        *installed = json!({});
    }
    let installed = installed.as_object_mut().expect("just made an object");
    for (event, entries) in ours {
        installed.insert(event, entries);
    }
    let text = serde_json::to_string_pretty(&Value::Object(settings))?;
    untrusted::write_in(worktree, file, text.as_bytes(), 0o644)?;
    exclude(worktree, ".claude/")
}

/// Add `pattern` to the agent's repository's `info/exclude` unless it is there.
fn exclude(worktree: &Path, pattern: &str) -> anyhow::Result<()> {
    // A linked worktree of forgehand's clone, made before agents had
    // repositories of their own: the clone's shared exclude file had the
    // pattern added back then.
    if std::fs::symlink_metadata(worktree.join(".git")).is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    let file = Path::new(".git/info/exclude");
    let current = match untrusted::read_capped_in(worktree, file, MAX_SETTINGS) {
        Ok(read) => read.text(),
        Err(e) if e.is_missing() => String::new(),
        Err(e) => return Err(e.into()),
    };
    if current.lines().any(|l| l.trim() == pattern) {
        return Ok(());
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(pattern);
    text.push('\n');
    untrusted::write_in(worktree, file, text.as_bytes(), 0o644)
}
