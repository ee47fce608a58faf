//! Reading the plans folder into issues: numbering new plans, noticing plans a
//! human moved back to the top folder, and reporting bad plans once per error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::plan::{Plan, PlanError, load_plans, parse_plan};
use super::report;
use super::state::{IssueRecord, Location};
use super::{Inner, LOCAL_LOGIN};
use crate::forge::{ForgeError, ForgeResult, Issue, IssueNumber, IssueState};
use crate::store::EventKind;

/// One plan file as found.
pub(super) struct Entry {
    pub location: Location,
    pub path: PathBuf,
    pub plan: Result<Plan, PlanError>,
}

/// Plan key → where it is and what it says.
pub(super) type Scan = BTreeMap<String, Entry>;

/// What a scan must do outside the state lock.
enum Action {
    Invalid {
        number: u64,
        key: String,
        error: String,
    },
    Fixed {
        key: String,
    },
}

impl Inner {
    /// Reads every plan (top folder, `blocked/`, `done/`) and brings the state up
    /// to date with it.
    pub(super) fn scan(&self) -> ForgeResult<Scan> {
        let mut scan = Scan::new();
        for location in [Location::Done, Location::Blocked] {
            let folder = self.plans.join(location.folder().expect("a sub-folder"));
            if folder.is_dir() {
                for (key, path) in md_files(&folder).map_err(ForgeError::Other)? {
                    let plan = std::fs::read_to_string(&path)
                        .map_err(|e| PlanError {
                            path: path.clone(),
                            line: 1,
                            message: format!("cannot read the plan: {e}"),
                        })
                        .and_then(|text| parse_plan(&path, &text));
                    scan.insert(
                        key,
                        Entry {
                            location,
                            path,
                            plan,
                        },
                    );
                }
            }
        }
        // The top folder last: a plan there is open, whatever copies lie elsewhere.
        let top = load_plans(&self.plans)
            .with_context(|| format!("reading the plans folder {}", self.plans.display()))
            .map_err(ForgeError::Other)?;
        for plan in top {
            let path = match &plan {
                Ok(p) => p.path.clone(),
                Err(e) => e.path.clone(),
            };
            let key = file_key(&path);
            scan.insert(
                key,
                Entry {
                    location: Location::Top,
                    path,
                    plan,
                },
            );
        }

        let actions = self.update(|state| {
            let mut actions = Vec::new();
            for (key, entry) in &scan {
                let record = state.issue(key, entry.location);
                if record.location != entry.location {
                    // Found elsewhere: under its own name, not a kept copy's.
                    record.file = None;
                    if entry.location == Location::Top {
                        // A human moved it back: a fresh backlog issue again.
                        record.added.clear();
                        record.removed.clear();
                    }
                    record.location = entry.location;
                }
                if entry.location != Location::Top {
                    continue;
                }
                match (&entry.plan, &record.invalid) {
                    (Err(e), seen) if seen.as_deref() != Some(e.to_string().as_str()) => {
                        record.invalid = Some(e.to_string());
                        actions.push(Action::Invalid {
                            number: record.number,
                            key: key.clone(),
                            error: e.to_string(),
                        });
                    }
                    (Ok(_), Some(_)) => {
                        record.invalid = None;
                        actions.push(Action::Fixed { key: key.clone() });
                    }
                    _ => {}
                }
            }
            actions
        })?;
        for action in actions {
            match action {
                Action::Invalid { number, key, error } => {
                    self.journal(
                        Some(number),
                        EventKind::Error,
                        &format!("plan `{key}` cannot be used: {error}"),
                    );
                    if let Err(e) = report::write_invalid(&self.plans, &key, &error) {
                        self.journal(Some(number), EventKind::Error, &format!("{e:#}"));
                    }
                }
                Action::Fixed { key } => report::remove_top(&self.plans, &key),
            }
        }
        Ok(scan)
    }

    /// The issue of a scanned plan; `None` for a key not in the state (cannot happen
    /// after `scan`).
    pub(super) fn issue_of(&self, key: &str, entry: &Entry) -> Option<Issue> {
        let state = self.state();
        let record = state.issues.get(key)?;
        Some(self.issue_from(key, entry, record))
    }

    fn issue_from(&self, key: &str, entry: &Entry, record: &IssueRecord) -> Issue {
        let mut labels: Vec<String> = match &entry.plan {
            Ok(plan) => plan.labels.clone(),
            Err(_) => Vec::new(),
        };
        match (entry.location, &entry.plan) {
            (Location::Top, Ok(_)) => labels.push(self.labels.backlog.clone()),
            (Location::Blocked, _) => labels.push(self.labels.blocked.clone()),
            _ => {}
        }
        labels.retain(|l| !record.removed.contains(l));
        for l in &record.added {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
        let (title, body) = match &entry.plan {
            Ok(plan) => (plan.title.clone(), plan.body.clone()),
            Err(e) => (key.to_string(), format!("This plan cannot be used: {e}")),
        };
        Issue {
            number: IssueNumber(record.number),
            title,
            body,
            labels,
            state: if entry.location == Location::Done {
                IssueState::Closed
            } else {
                IssueState::Open
            },
            created_at: record.created_at,
            author: LOCAL_LOGIN.to_string(),
            html_url: format!("file://{}", entry.path.display()),
        }
    }

    /// The scanned entry of issue `n`.
    pub(super) fn entry(&self, n: IssueNumber) -> ForgeResult<(String, Entry)> {
        let not_found = || ForgeError::NotFound(format!("issue #{n} (no such plan)"));
        let key = self.key_of(n.0).ok_or_else(not_found)?;
        let mut scan = self.scan()?;
        let entry = scan.remove(&key).ok_or_else(not_found)?;
        Ok((key, entry))
    }
}

/// `<key>.md` files directly in `dir` (not hidden, not reports, not an
/// earlier plan's kept copy `<key>~N.md`), as (key, path).
fn md_files(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.')
            || name.ends_with(".report.md")
            || !name.ends_with(".md")
            || name.contains('~')
        {
            continue;
        }
        if path.is_file() {
            files.push((file_key(&path), path));
        }
    }
    Ok(files)
}

/// The key a plan file stands for: its name without `.md`.
pub(super) fn file_key(path: &Path) -> String {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.strip_suffix(".md").unwrap_or(&name).to_string()
}
