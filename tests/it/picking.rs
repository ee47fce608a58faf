//! Picking order and dependency lines (DESIGN §5 "Picking").

use chrono::{DateTime, TimeZone, Utc};
use forgehand::config::Labels;
use forgehand::forge::{Issue, IssueNumber, IssueState};
use forgehand::picking::{body_dependencies, is_bug_label, order};

fn labels() -> Labels {
    Labels {
        backlog: "backlog".into(),
        priority: "priority".into(),
        in_progress: "in-progress".into(),
        blocked: "blocked".into(),
        underspecified: "underspecified".into(),
    }
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, 12, 0, 0).unwrap()
}

fn issue(n: u64, day: u32, labels: &[&str]) -> Issue {
    Issue {
        number: IssueNumber(n),
        title: format!("issue {n}"),
        body: String::new(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        state: IssueState::Open,
        created_at: at(day),
        author: "alice".into(),
        html_url: String::new(),
    }
}

fn numbers(issues: &[Issue]) -> Vec<u64> {
    order(issues, &labels())
        .iter()
        .map(|i| i.number.0)
        .collect()
}

#[test]
fn priority_tier_then_bugs_then_oldest() {
    let issues = vec![
        issue(1, 2, &["backlog"]),
        issue(2, 3, &["backlog", "bug"]),
        issue(3, 4, &["backlog", "priority"]),
        issue(4, 5, &["backlog", "priority", "kind/regression"]),
        issue(5, 6, &["backlog", "Defect"]),
        issue(6, 1, &["backlog"]),
    ];
    assert_eq!(numbers(&issues), vec![4, 3, 2, 5, 6, 1]);
}

#[test]
fn same_age_falls_back_to_number() {
    let issues = vec![issue(9, 1, &["backlog"]), issue(7, 1, &["backlog"])];
    assert_eq!(numbers(&issues), vec![7, 9]);
}

#[test]
fn excluded_labels_and_missing_backlog_are_not_picked() {
    let issues = vec![
        issue(1, 1, &[]),
        issue(2, 1, &["backlog", "in-progress"]),
        issue(3, 1, &["backlog", "blocked"]),
        issue(4, 1, &["backlog", "underspecified"]),
        issue(5, 1, &["priority"]),
        issue(6, 1, &["backlog"]),
    ];
    assert_eq!(numbers(&issues), vec![6]);
}

#[test]
fn bug_words() {
    for l in [
        "bug",
        "type: Bug",
        "defect",
        "incident",
        "regression",
        "BUGFIX",
    ] {
        assert!(is_bug_label(l), "{l}");
    }
    for l in ["feature", "docs", "priority", "backlog"] {
        assert!(!is_bug_label(l), "{l}");
    }
}

#[test]
fn dependency_lines() {
    let n = |v: &[u64]| v.iter().map(|&n| IssueNumber(n)).collect::<Vec<_>>();
    assert_eq!(body_dependencies("Depends on #39"), n(&[39]));
    assert_eq!(body_dependencies("text\nblocked by #7\nmore"), n(&[7]));
    assert_eq!(
        body_dependencies("Depends on #3, #4 and #12"),
        n(&[3, 4, 12])
    );
    assert_eq!(
        body_dependencies("- Depends on: #5\n> Blocked by #2"),
        n(&[2, 5])
    );
    assert_eq!(body_dependencies("DEPENDS ON #8\r\n"), n(&[8]));
    // Mentions elsewhere are not dependencies.
    assert_eq!(
        body_dependencies("See #4, which depends on nothing"),
        n(&[])
    );
    assert_eq!(body_dependencies("Fixes #9"), n(&[]));
    assert_eq!(body_dependencies("Depends on the #fragment"), n(&[]));
}
