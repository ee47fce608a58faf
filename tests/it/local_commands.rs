//! `/forgehand` commands on the local backend: given with `forgehand reply`
//! (the person at the machine is the one with write access), answered by
//! the daemon, and the answer printed by the command.

use crate::local_answers::reply;
use crate::local_e2e::{LocalHarness, STEP};
use crate::support::{wait_for_file, wait_until};

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A daemon on a local project whose one plan `key` passed CI and waits
/// for a review.
async fn awaiting_review(key: &str) -> LocalHarness {
    let mut h = LocalHarness::new(1);
    h.start();
    h.watching().await;
    std::fs::write(h.plans.join(format!("{key}.md")), "# A plan\n\nA change.\n").unwrap();
    wait_until("CI green and a review awaited", STEP, || async {
        h.journal()
            .iter()
            .any(|(k, d)| k == "review_state" && d.contains("waiting"))
            .then_some(())
    })
    .await;
    h
}

/// Status and hold are answered on the command line; a held plan is not
/// merged however approved; stop blocks it; a command on a blocked plan is
/// refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_steer_a_local_plan_and_print_the_answer() {
    let h = awaiting_review("steer").await;

    let status = stdout(&reply(&h, "steer", "/forgehand status"));
    assert!(
        status.starts_with("/forgehand status for steer: @carol: stage awaiting_review"),
        "{status}"
    );
    let held = stdout(&reply(&h, "steer", "/forgehand hold"));
    assert!(held.contains("@carol: held"), "{held}");

    let projects = h.projects.display().to_string();
    let out = h
        .command(&["approve", "--projects", &projects, "proj", "steer"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    wait_until("the approval seen while held", STEP, || async {
        h.journal()
            .iter()
            .any(|(_, d)| d.starts_with("review on ") && d.ends_with(": approved"))
            .then_some(())
    })
    .await;
    let status = stdout(&reply(&h, "steer", "/forgehand status"));
    assert!(status.contains("merges held"), "{status}");
    assert!(!h.plans.join("done/steer.md").exists(), "merged while held");

    let stopped = stdout(&reply(&h, "steer", "/forgehand stop"));
    assert!(
        stopped.contains("stopped by carol (/forgehand stop)"),
        "{stopped}"
    );
    let report = wait_for_file(&h.plans.join("blocked/steer.report.md"), STEP, |t| {
        t.contains("status: blocked")
    })
    .await;
    assert!(report.contains("stopped by carol"), "{report}");
    let journal = h.journal();
    for verb in ["status", "hold", "stop"] {
        let line = format!("/forgehand {verb} from carol");
        assert!(
            journal.iter().any(|(_, d)| *d == line),
            "{line}: {journal:#?}"
        );
    }

    // The claim is blocked before the stop is answered (state first).
    let out = reply(&h, "steer", "/forgehand retry");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not work on plan `steer`") && stderr.contains("blocked"),
        "{stderr}"
    );
}

/// A command given while no daemon runs is kept in the plan's comments and
/// said to be so; the next daemon obeys it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_given_while_no_daemon_runs_is_obeyed_by_the_next() {
    let mut h = awaiting_review("later").await;
    h.kill();

    let sent = stdout(&reply(&h, "later", "/forgehand hold"));
    assert!(
        sent.starts_with("sent: /forgehand hold for later (") && sent.contains("no daemon runs on"),
        "{sent}"
    );

    h.start();
    wait_until("the hold obeyed", STEP, || async {
        h.journal()
            .iter()
            .any(|(_, d)| d == "/forgehand hold from carol")
            .then_some(())
    })
    .await;
    let status = stdout(&reply(&h, "later", "/forgehand status"));
    assert!(status.contains("merges held"), "{status}");
}
