//! The usage file (`FORGEHAND_USAGE_FILE`): how an agent other than Claude
//! Code reports what it spent. One JSON object per line, appended after each
//! turn:
//!
//! ```json
//! {"model": "gpt-5", "input_tokens": 1200, "output_tokens": 340,
//!  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 800}
//! ```
//!
//! Every key is optional (a missing count is 0, a missing model `unknown`).
//! The agent writes the file, so it is hostile input: opened without
//! following links or blocking, read up to `MAX_USAGE_FILE`, a line that is
//! not such an object is skipped, a model name is cut to `MAX_MODEL_NAME`
//! characters and a count above `MAX_TOKENS_PER_LINE` is taken as that.

use std::path::Path;

use serde_json::Value;

use crate::budget::{ModelUsage, UNKNOWN_MODEL};
use crate::store::TokenUsage;
use crate::untrusted::UntrustedError;

/// The file's name in the session folder.
pub const USAGE_FILE: &str = "usage.jsonl";
/// The most of the file read.
pub const MAX_USAGE_FILE: usize = 8 * 1024 * 1024;
/// The longest model name kept.
pub const MAX_MODEL_NAME: usize = 100;
/// The most tokens one line may count, per counter.
pub const MAX_TOKENS_PER_LINE: u64 = 100_000_000;

/// What the file says, by model; what it does not (a line that is not an
/// object) is counted in `skipped`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UsageFile {
    pub usage: ModelUsage,
    pub skipped: usize,
    /// The file was longer than `MAX_USAGE_FILE`; the rest was not read.
    pub truncated: bool,
}

pub fn parse(text: &str) -> UsageFile {
    let mut out = UsageFile::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(Value::Object(entry)) = serde_json::from_str::<Value>(line) else {
            out.skipped += 1;
            continue;
        };
        let count = |k: &str| {
            entry
                .get(k)
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(MAX_TOKENS_PER_LINE)
        };
        let model: String = entry
            .get("model")
            .and_then(Value::as_str)
            .map(|m| {
                m.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_MODEL_NAME)
                    .collect()
            })
            .filter(|m: &String| !m.trim().is_empty())
            .unwrap_or_else(|| UNKNOWN_MODEL.to_string());
        let line_usage = TokenUsage {
            input: count("input_tokens"),
            output: count("output_tokens"),
            cache_creation: count("cache_creation_input_tokens"),
            cache_read: count("cache_read_input_tokens"),
        };
        let sum = out.usage.entry(model).or_default();
        *sum = *sum + line_usage;
    }
    out
}

/// The file at `path`; `None` when the agent wrote none.
pub fn read(path: &Path) -> anyhow::Result<Option<UsageFile>> {
    match crate::untrusted::read_capped(path, MAX_USAGE_FILE) {
        Ok(read) => {
            // A line cut at the cap is dropped, not half counted.
            let text = read.text();
            let text = match read.truncated {
                true => text.rsplit_once('\n').map_or("", |(whole, _)| whole),
                false => &text,
            };
            let mut parsed = parse(text);
            parsed.truncated = read.truncated;
            Ok(Some(parsed))
        }
        Err(UntrustedError::Missing(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
