//! The files people's `forgehand` commands leave for the daemon in
//! `<plans>/.forgehand/<kind>/` (reviews, comments): one JSON file each,
//! named `<id>-<key>.json`, written whole by rename. Files of their own,
//! because the daemon holds `state.json` in memory and rewrites it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::state::write_atomically;

/// A record's id: unique and increasing, its writing time in nanoseconds.
pub(super) fn record_id(now: DateTime<Utc>) -> u64 {
    now.timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or_default()
}

/// Writes `record` as `<dir>/<id>-<key>.json`; its path.
pub(super) fn write_record<T: Serialize>(
    dir: &Path,
    id: u64,
    key: &str,
    record: &T,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{id}-{key}.json"));
    let bytes = serde_json::to_vec_pretty(record)
        .with_context(|| format!("encoding {}", path.display()))?;
    write_atomically(&path, &bytes)?;
    Ok(path)
}

/// Reads one record file.
pub(super) fn read_record<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))
}

/// Every record in `dir` (none when it does not exist). Unreadable files
/// are skipped with a warning: one bad file must not hide the others.
pub(super) fn read_records<T: DeserializeOwned>(dir: &Path) -> anyhow::Result<Vec<T>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if !is_record_file(&path) {
            continue;
        }
        match read_record(&path) {
            Ok(record) => records.push(record),
            Err(e) => tracing::warn!("skipping a file: {e:#}"),
        }
    }
    Ok(records)
}

/// A finished record file (not a temp file being written).
pub(super) fn is_record_file(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    !name.starts_with('.') && name.ends_with(".json")
}
