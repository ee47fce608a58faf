//! The local backend keeps what it owes a person: `forgehand reply` answers an
//! escalated plan (pasted to the agent as a person's reply), an answer
//! nobody asked for is refused, and a later plan with a used key is kept
//! beside the earlier one in `done/` (`<key>~2.md`, its report beside it).

use forgehand::store::{Db, Waiting};

use crate::local_e2e::{LocalHarness, STEP};
use crate::support::{wait_for_file, wait_until};

pub(crate) fn reply(h: &LocalHarness, key: &str, message: &str) -> std::process::Output {
    let projects = h.projects.display().to_string();
    let state = h.state.display().to_string();
    h.command(&[
        "reply",
        "--projects",
        &projects,
        "--state",
        &state,
        "proj",
        key,
        "--message",
        message,
    ])
    .output()
    .expect("running forgehand reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalated_plan_is_answered_with_forgehand_reply() {
    let mut h = LocalHarness::new(0);
    h.start();
    h.watching().await;

    let out = reply(&h, "nosuch", "hello");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no plan `nosuch`"), "{stderr}");
    let out = reply(&h, "ask", "  ");
    assert_eq!(out.status.code(), Some(2), "an empty answer: {out:?}");

    std::fs::write(
        h.plans.join("ask.md"),
        "# Pick a colour\n\nfake-agent: escalate blue or green?\n",
    )
    .unwrap();
    let db = h.state.join("forgehand.db");
    wait_until("the plan to wait for an answer", STEP, || async {
        let db = Db::open_read_only(&db).ok()?;
        let claim = db.claims(Some("proj"), None).ok()?.into_iter().next()?;
        (claim.waiting == Some(Waiting::Answer)).then_some(())
    })
    .await;

    let out = reply(&h, "ask", "Green, please.");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("answered: ask"));
    let transcript = h.state.join("sessions/dev-proj-ask/agent-transcript.log");
    let text = wait_for_file(&transcript, STEP, |t| t.contains("Green, please.")).await;
    assert!(text.contains("carol answered your question"), "{text}");
    let report = h.plans.join("done/ask.report.md");
    wait_for_file(&report, STEP, |t| t.contains("status: merged")).await;

    // Nothing waits for an answer any more: a late one is refused.
    let out = reply(&h, "ask", "Actually, blue.");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not waiting for an answer"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_plan_with_a_used_key_is_kept_beside_the_earlier_one() {
    let mut h = LocalHarness::new(0);
    h.start();
    h.watching().await;
    let done = h.plans.join("done");

    std::fs::write(h.plans.join("twice.md"), "# First version\n\nOne.\n").unwrap();
    wait_for_file(&done.join("twice.report.md"), STEP, |t| {
        t.contains("status: merged")
    })
    .await;
    std::fs::write(h.plans.join("twice.md"), "# Second version\n\nTwo.\n").unwrap();
    let second = wait_for_file(&done.join("twice~2.report.md"), STEP, |t| {
        t.contains("status: merged")
    })
    .await;
    assert!(second.contains("# Second version"), "{second}");
    let first = std::fs::read_to_string(done.join("twice.report.md")).unwrap();
    assert!(first.contains("# First version"), "{first}");
    let plan = |name: &str| std::fs::read_to_string(done.join(name)).unwrap();
    assert!(plan("twice.md").contains("First version"));
    assert!(plan("twice~2.md").contains("Second version"));
    assert!(!h.plans.join("twice.md").exists());
}
