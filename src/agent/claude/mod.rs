//! Claude Code, run unattended. Started fresh in a new worktree it would stop
//! at onboarding, at "Do you want to use this API key?", at "Do you trust this
//! folder?" and at the bypass-permissions warning, and refuse
//! `--dangerously-skip-permissions` as root. `prepare` answers all of these in
//! advance (`global_config`), installs hooks that report back through marker
//! files (`hooks`), and `usage` reads token counts from its transcript
//! (`transcript`).

pub mod global_config;
pub mod hooks;
pub mod transcript;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value, json};

use super::{PROTOCOL_FILE, SessionCtx};

/// The flag that needs the bypass-permissions warning accepted.
const BYPASS_FLAG: &str = "--dangerously-skip-permissions";
/// Text only Claude Code's dialogs show; the prompt is not ready under one.
const DIALOG_MARKERS: &[&str] = &[
    "Enter to confirm",
    "Esc to cancel",
    "Press Enter to continue",
];

/// What `prepare` decided to write into `~/.claude.json`, from the session's
/// command and environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The worktree to trust (its canonical path, as Claude Code sees its cwd).
    pub folder: String,
    pub bypass_permissions: bool,
    /// The last 20 characters of the API key, as Claude Code records an approval.
    pub api_key_suffix: Option<String>,
}

impl Consent {
    pub fn for_session(ctx: &SessionCtx<'_>) -> anyhow::Result<Consent> {
        Ok(Consent {
            folder: folder_key(ctx.worktree)?,
            bypass_permissions: ctx.command.contains(BYPASS_FLAG),
            api_key_suffix: ctx
                .var("ANTHROPIC_API_KEY")
                .map(api_key_suffix)
                .filter(|s| !s.is_empty()),
        })
    }

    /// Set what this session needs in the parsed `~/.claude.json`; every
    /// other key stays as it was.
    pub fn apply(&self, config: &mut Map<String, Value>) {
        config.insert("hasCompletedOnboarding".into(), Value::Bool(true));
        if self.bypass_permissions {
            // Claude Code moves this into its user settings
            // (`skipDangerousModePermissionPrompt`) on start.
            config.insert("bypassPermissionsModeAccepted".into(), Value::Bool(true));
        }
        if let Some(suffix) = &self.api_key_suffix {
            let responses = object_at(config, "customApiKeyResponses");
            let approved = responses.entry("approved").or_insert_with(|| json!([]));
            if !approved.is_array() {
                *approved = json!([]);
            }
            let list = approved.as_array_mut().expect("just made an array");
            if !list.iter().any(|v| v.as_str() == Some(suffix)) {
                list.push(Value::String(suffix.clone()));
            }
            if let Some(Value::Array(rejected)) = responses.get_mut("rejected") {
                rejected.retain(|v| v.as_str() != Some(suffix));
            }
        }
        let projects = object_at(config, "projects");
        let project = projects
            .entry(self.folder.clone())
            .or_insert_with(|| json!({}));
        if !project.is_object() {
            *project = json!({});
        }
        let project = project.as_object_mut().expect("just made an object");
        project.insert("hasTrustDialogAccepted".into(), Value::Bool(true));
    }
}

/// The object under `key`, made one if it is missing or something else.
fn object_at<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let value = config.entry(key).or_insert_with(|| json!({}));
    if !value.is_object() {
        *value = json!({});
    }
    value.as_object_mut().expect("just made an object")
}

/// How Claude Code records an approved key: its last 20 characters.
pub fn api_key_suffix(key: &str) -> String {
    let key = key.trim();
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(20)..].iter().collect()
}

/// The worktree as Claude Code names it: its real path.
fn folder_key(worktree: &Path) -> anyhow::Result<String> {
    let real = std::fs::canonicalize(worktree)
        .with_context(|| format!("resolving {}", worktree.display()))?;
    real.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", real.display()))
}

fn home(ctx: &SessionCtx<'_>) -> anyhow::Result<PathBuf> {
    ctx.home()
        .context("HOME is not set: Claude Code keeps its settings in $HOME/.claude.json")
}

/// Claude Code's own config and records, writable in the sandbox: the
/// `~/.claude` folder (settings, login, transcripts) and `~/.claude.json`.
pub fn sandbox_rw(home: &Path) -> Vec<PathBuf> {
    vec![home.join(".claude"), global_config::path(home)]
}

pub async fn prepare(ctx: &SessionCtx<'_>) -> anyhow::Result<Vec<(String, String)>> {
    let home = home(ctx)?;
    let consent = Consent::for_session(ctx)?;
    let path = global_config::path(&home);
    let to_apply = consent.clone();
    tokio::task::spawn_blocking(move || global_config::update(&path, |c| to_apply.apply(c)))
        .await
        .context("updating ~/.claude.json")??;
    // Bound into the sandbox, so it must exist before the session starts.
    let records = home.join(".claude");
    tokio::fs::create_dir_all(&records)
        .await
        .with_context(|| format!("creating {}", records.display()))?;
    hooks::install(ctx.worktree).await?;
    crate::untrusted::write_in(
        ctx.session_dir,
        Path::new(PROTOCOL_FILE),
        ctx.protocol.as_bytes(),
        0o644,
    )?;
    let mut env = Vec::new();
    // Claude Code refuses the bypass flag as root unless told it runs in a sandbox.
    if consent.bypass_permissions && nix::unistd::geteuid().is_root() {
        env.push(("IS_SANDBOX".to_string(), "1".to_string()));
    }
    Ok(env)
}

/// Ready: the input box's `❯` prompt (a prompt line under a rule) with no
/// dialog on screen. Dialogs show `❯` too, as their selection cursor.
pub fn is_ready(screen: &str, ready_pattern: &str) -> bool {
    if DIALOG_MARKERS.iter().any(|m| screen.contains(m)) {
        return false;
    }
    let lines: Vec<&str> = screen.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        line.trim_start().starts_with(ready_pattern)
            && lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|above| is_rule(above))
    })
}

fn is_rule(line: &str) -> bool {
    let line = line.trim();
    line.chars().count() >= 10 && line.chars().all(|c| c == '─')
}

pub async fn usage(ctx: &SessionCtx<'_>) -> anyhow::Result<Option<crate::budget::ModelUsage>> {
    let home = home(ctx)?;
    let folder = folder_key(ctx.worktree)?;
    let Some(dir) = transcript::dir(&home, &folder) else {
        return Ok(None);
    };
    tokio::task::spawn_blocking(move || transcript::usage_in_dir(&dir).map(Some))
        .await
        .context("reading Claude Code's transcripts")?
}

/// Forget the worktree: its trust entry and its transcripts.
pub async fn cleanup(ctx: &SessionCtx<'_>) -> anyhow::Result<()> {
    let home = home(ctx)?;
    // The worktree may already be gone; its path is then taken as given.
    let folder =
        folder_key(ctx.worktree).unwrap_or_else(|_| ctx.worktree.to_string_lossy().into_owned());
    if let Some(dir) = transcript::dir(&home, &folder) {
        tokio::fs::remove_dir_all(&dir)
            .await
            .with_context(|| format!("removing {}", dir.display()))?;
    }
    let path = global_config::path(&home);
    if path.exists() {
        tokio::task::spawn_blocking(move || {
            global_config::update(&path, |c| {
                if let Some(Value::Object(projects)) = c.get_mut("projects") {
                    projects.remove(&folder);
                }
            })
        })
        .await
        .context("updating ~/.claude.json")??;
    }
    Ok(())
}
