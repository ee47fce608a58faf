//! What the local backend remembers beyond the plan files: issue numbers for plan
//! keys, forgehand's label overlay, comments, pull requests and CI results, in
//! `<plans>/.forgehand/state.json`, written atomically (temp file + rename) so a
//! crash never leaves half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::forge::{IssueState, StatusState};

/// Where a plan file lies, which decides whether its issue is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// The top folder: open, in the backlog.
    Top,
    /// `blocked/`: open, handed to a human.
    Blocked,
    /// `done/`: closed.
    Done,
}

impl Location {
    /// The folder under the plans folder, `None` for the top folder.
    pub fn folder(self) -> Option<&'static str> {
        match self {
            Location::Top => None,
            Location::Blocked => Some("blocked"),
            Location::Done => Some("done"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueRecord {
    pub number: u64,
    pub created_at: DateTime<Utc>,
    /// Labels forgehand added beyond the plan's own (front matter and folder).
    #[serde(default)]
    pub added: Vec<String>,
    /// Labels forgehand removed from the plan's own.
    #[serde(default)]
    pub removed: Vec<String>,
    /// Where the plan was last seen, to notice a human moving it back.
    pub location: Location,
    /// The error last reported for this plan, so it is reported once, not every poll.
    #[serde(default)]
    pub invalid: Option<String>,
    /// The file name (without `.md`) it was moved to in `done/` or
    /// `blocked/` when that is not its key (`<key>~2`: the key was used).
    #[serde(default)]
    pub file: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PullRecord {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub state: IssueState,
    pub merged: bool,
    pub merge_commit: Option<String>,
    /// The head at the merge, since the branch may be deleted afterwards.
    pub merged_head: Option<String>,
    pub created_at: DateTime<Utc>,
    /// CI runs started on this pull's heads.
    #[serde(default)]
    pub ci_attempts: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentRecord {
    pub id: u64,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// The finished CI run of one commit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CiRecord {
    pub state: StatusState,
    pub description: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Last number handed out; issues and pulls share the sequence, like Forgejo.
    #[serde(default)]
    pub last_number: u64,
    #[serde(default)]
    pub last_comment: u64,
    /// Plan key → its issue.
    #[serde(default)]
    pub issues: BTreeMap<String, IssueRecord>,
    #[serde(default)]
    pub pulls: BTreeMap<u64, PullRecord>,
    /// Issue or pull number → its comments.
    #[serde(default)]
    pub comments: BTreeMap<u64, Vec<CommentRecord>>,
    /// Commit sha → its finished CI run.
    #[serde(default)]
    pub ci: BTreeMap<String, CiRecord>,
}

impl State {
    /// `<plans>/.forgehand/state.json`; a missing file is an empty state.
    pub fn path(plans: &Path) -> PathBuf {
        plans.join(".forgehand").join("state.json")
    }

    pub fn load(plans: &Path) -> anyhow::Result<State> {
        let path = State::path(plans);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, plans: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).context("encoding the local forge state")?;
        write_atomically(&State::path(plans), &bytes)
    }

    pub fn next_number(&mut self) -> u64 {
        self.last_number += 1;
        self.last_number
    }

    /// The plan's issue record, numbered on first sight.
    pub fn issue(&mut self, key: &str, location: Location) -> &mut IssueRecord {
        if !self.issues.contains_key(key) {
            let number = self.next_number();
            self.issues.insert(
                key.to_string(),
                IssueRecord {
                    number,
                    created_at: Utc::now(),
                    added: Vec::new(),
                    removed: Vec::new(),
                    location,
                    invalid: None,
                    file: None,
                },
            );
        }
        self.issues.get_mut(key).expect("inserted above")
    }

    pub fn key_of(&self, number: u64) -> Option<&str> {
        self.issues
            .iter()
            .find(|(_, r)| r.number == number)
            .map(|(k, _)| k.as_str())
    }
}

/// Writes `bytes` to `path` through a temp file in the same folder and a rename,
/// so readers see the old or the new content, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent folder", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // Unique per writer: the daemon's threads and a CLI may write at once.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.{}.{unique}.tmp", std::process::id()));
    std::fs::write(&temp, bytes).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path)
        .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
}
