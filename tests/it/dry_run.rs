//! `forgehand run --dry-run` against the fake Forgejo: what would be claimed
//! in picking order and why the rest would not, with no write request, no
//! session and no database.

use std::process::Output;

use crate::harness::{Harness, PROJECT};

fn dry_run(h: &Harness) -> Output {
    let projects = h.projects.display().to_string();
    h.run(&[
        "run",
        "--dry-run",
        "--projects",
        &projects,
        "--state",
        &h.state_arg(),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_says_what_it_would_claim_and_changes_nothing() {
    let h = Harness::new("max_sessions = 1", "").await;
    let dep = h.forge.create_issue("Prepare the database", "", &[]);
    let waiting = h.forge.create_issue(
        "Use the database",
        &format!("Depends on #{dep}"),
        &["backlog"],
    );
    let first = h.forge.create_issue("Add a greeting", "", &["backlog"]);
    let held = h.forge.create_issue("Stuck", "", &["backlog", "blocked"]);
    let urgent = h
        .forge
        .create_issue("Fix the crash", "", &["backlog", "priority"]);
    let before = h.forge.read(|s| s.requests().len());

    let out = dry_run(&h);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "picking is switched off ({} is absent: `forgehand enable`); were it on:",
                h.state.join(".dev-active").display()
            ),
            format!("{PROJECT}: #{urgent} Fix the crash: would be claimed"),
            format!(
                "{PROJECT}: #{waiting} Use the database: not claimed: slots: max_sessions = 1, all taken"
            ),
            format!(
                "{PROJECT}: #{first} Add a greeting: not claimed: slots: max_sessions = 1, all taken"
            ),
            format!("{PROJECT}: #{held} Stuck: not claimed: label: it is labelled `blocked`"),
        ],
        "{stdout}"
    );

    // With two sessions the dependency is asked about and named.
    h.write_project("max_sessions = 2", "");
    let out = dry_run(&h);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "#{waiting} Use the database: not claimed: open dependency #{dep}"
        )) && stdout.contains(&format!("#{first} Add a greeting: would be claimed")),
        "{stdout}"
    );

    let requests = h.forge.read(|s| s.requests()[before..].to_vec());
    assert!(!requests.is_empty(), "the forge was asked");
    let writes: Vec<String> = requests
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "write requests: {writes:#?}");
    assert!(!h.state.join("forgehand.db").exists(), "no database made");
    for n in [urgent, first] {
        assert!(!h.has_session(&h.session(n)));
        assert!(!h.forge.issue(n).has_label("in-progress"));
    }
    h.assert_no_violations();
}
