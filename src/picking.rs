//! Which ready issue an agent works on next (DESIGN §5 "Picking"): pure
//! functions over forge data, so the order is tested without a forge.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::Regex;

use crate::config::Labels;
use crate::forge::{Issue, IssueNumber};

/// Issue numbers named by `Depends on #N` / `Blocked by #N` lines of a body
/// (case-insensitive; several per line: `Depends on #3, #4 and #7`).
pub fn body_dependencies(body: &str) -> Vec<IssueNumber> {
    static LINE: OnceLock<Regex> = OnceLock::new();
    static NUMBER: OnceLock<Regex> = OnceLock::new();
    let line = LINE.get_or_init(|| {
        Regex::new(r"(?im)^[\s>*\-]*(?:depends\s+on|blocked\s+by)\b:?(.*)$").expect("valid")
    });
    let number = NUMBER.get_or_init(|| Regex::new(r"#(\d+)\b").expect("valid"));
    let mut found = BTreeSet::new();
    for cap in line.captures_iter(body) {
        for n in number.captures_iter(&cap[1]) {
            if let Ok(n) = n[1].parse() {
                found.insert(IssueNumber(n));
            }
        }
    }
    found.into_iter().collect()
}

/// Every `#N` mentioned in a text, in order, without repeats.
pub fn mentioned_issues(text: &str) -> Vec<IssueNumber> {
    static NUMBER: OnceLock<Regex> = OnceLock::new();
    let number = NUMBER.get_or_init(|| Regex::new(r"#(\d+)\b").expect("valid"));
    let mut found = Vec::new();
    for n in number.captures_iter(text).filter_map(|c| c[1].parse().ok()) {
        if !found.contains(&IssueNumber(n)) {
            found.push(IssueNumber(n));
        }
    }
    found
}

/// A label naming a defect: bugs go first inside a priority tier.
pub fn is_bug_label(label: &str) -> bool {
    let l = label.to_ascii_lowercase();
    ["bug", "defect", "incident", "regression"]
        .iter()
        .any(|w| l.contains(w))
}

/// Whether an open issue may be picked at all, from its labels alone.
pub fn is_candidate(issue: &Issue, labels: &Labels) -> bool {
    issue.has_label(&labels.backlog)
        && ![&labels.in_progress, &labels.blocked, &labels.underspecified]
            .iter()
            .any(|l| issue.has_label(l))
}

/// Candidates in picking order: `priority` tier first, bugs first inside a
/// tier, then oldest (creation time, then number).
pub fn order<'a>(issues: &'a [Issue], labels: &Labels) -> Vec<&'a Issue> {
    let mut picked: Vec<&Issue> = issues.iter().filter(|i| is_candidate(i, labels)).collect();
    picked.sort_by_key(|i| {
        (
            !i.has_label(&labels.priority),
            !i.labels.iter().any(|l| is_bug_label(l)),
            i.created_at,
            i.number,
        )
    });
    picked
}
