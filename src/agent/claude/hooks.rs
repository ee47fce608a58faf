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
/// other settings there) and exclude `.claude/` from commits.
pub async fn install(worktree: &Path) -> anyhow::Result<()> {
    let dir = worktree.join(".claude");
    tokio::fs::create_dir_all(&dir)
        .await
        .with_context(|| format!("creating {}", dir.display()))?;
    let file = dir.join("settings.local.json");
    let mut settings = match tokio::fs::read(&file).await {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
        Err(_) => Map::new(),
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
    tokio::fs::write(&file, text)
        .await
        .with_context(|| format!("writing {}", file.display()))?;
    exclude(worktree, ".claude/").await
}

/// Add `pattern` to the repository's `info/exclude` unless it is there. A
/// worktree shares its main repository's file, which is fine: the pattern
/// holds for every worktree.
async fn exclude(worktree: &Path, pattern: &str) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("git")
        .args(["rev-parse", "--git-path", "info/exclude"])
        .current_dir(worktree)
        .output()
        .await
        .context("running git rev-parse")?;
    anyhow::ensure!(
        out.status.success(),
        "git rev-parse --git-path info/exclude in {}: {}",
        worktree.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let rel = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = worktree.join(rel);
    let current = tokio::fs::read_to_string(&path).await.unwrap_or_default();
    if current.lines().any(|l| l.trim() == pattern) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(pattern);
    text.push('\n');
    tokio::fs::write(&path, text)
        .await
        .with_context(|| format!("writing {}", path.display()))
}
