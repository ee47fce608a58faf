//! Token use from Claude Code's session transcripts: JSON lines under
//! `~/.claude/projects/<folder>/`, where `<folder>` is the working directory
//! with every character but ASCII letters and digits turned into `-`.
//! Assistant entries carry `message.usage`; one API message may be written as
//! several entries (one per content block) with the same usage, so entries
//! are counted once per message id.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::budget::ModelUsage;
use crate::store::TokenUsage;

/// The most of one transcript read (a long session's is tens of megabytes).
const MAX_TRANSCRIPT: usize = 512 * 1024 * 1024;

/// Claude Code shortens longer folder names and adds a hash.
const MAX_FOLDER_NAME: usize = 200;

/// The transcript folder name for a working directory.
pub fn folder_name(cwd: &str) -> String {
    cwd.chars()
        .flat_map(|c| {
            let keep = c.is_ascii_alphanumeric();
            // JavaScript replaces each UTF-16 unit.
            std::iter::repeat_n(
                if keep { c } else { '-' },
                if keep { 1 } else { c.len_utf16() },
            )
        })
        .collect()
}

/// The transcript folder for `cwd` under `home`, if it exists.
pub fn dir(home: &Path, cwd: &str) -> Option<PathBuf> {
    let projects = home.join(".claude").join("projects");
    let name = folder_name(cwd);
    if name.len() <= MAX_FOLDER_NAME {
        let dir = projects.join(name);
        return dir.is_dir().then_some(dir);
    }
    // The hash Claude Code appends is its own; match the prefix.
    let prefix = format!("{}-", &name[..MAX_FOLDER_NAME]);
    std::fs::read_dir(&projects)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
}

/// The usage of every message in one transcript's text, by message id,
/// with the model that answered.
pub fn usage_in_text(text: &str, into: &mut HashMap<String, (String, TokenUsage)>) {
    for (n, line) in text.lines().enumerate() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            // A line being written while we read, or not ours to understand.
            continue;
        };
        let message = &entry["message"];
        let usage = &message["usage"];
        if !usage.is_object() {
            continue;
        }
        let count = |k: &str| usage[k].as_u64().unwrap_or(0);
        let key = message["id"]
            .as_str()
            .or_else(|| entry["uuid"].as_str())
            .map_or_else(|| format!("line-{n}"), str::to_string);
        let model = message["model"]
            .as_str()
            .unwrap_or(crate::budget::UNKNOWN_MODEL)
            .to_string();
        into.insert(
            key,
            (
                model,
                TokenUsage {
                    input: count("input_tokens"),
                    output: count("output_tokens"),
                    cache_creation: count("cache_creation_input_tokens"),
                    cache_read: count("cache_read_input_tokens"),
                },
            ),
        );
    }
}

/// The usage of one transcript's text, each message once.
pub fn usage(text: &str) -> TokenUsage {
    let mut seen = HashMap::new();
    usage_in_text(text, &mut seen);
    seen.values().map(|(_, u)| *u).sum()
}

/// Each message's usage added up by model.
fn by_model(seen: HashMap<String, (String, TokenUsage)>) -> ModelUsage {
    let mut out = ModelUsage::new();
    for (model, u) in seen.into_values() {
        let sum = out.entry(model).or_default();
        *sum = *sum + u;
    }
    out
}

/// The usage of every transcript in `dir` (one per session started there),
/// by model.
pub fn usage_in_dir(dir: &Path) -> anyhow::Result<ModelUsage> {
    let mut seen = HashMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            // The agent can write here: no links, no pipes, no endless file.
            let read = crate::untrusted::read_capped(&path, MAX_TRANSCRIPT)?;
            usage_in_text(&read.text(), &mut seen);
        }
    }
    Ok(by_model(seen))
}
