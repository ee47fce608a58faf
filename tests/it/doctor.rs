//! `forgehand doctor` against the fake Forgejo: every check passes with a
//! good token (the labels only created with `--fix`), and a bad token fails
//! with exit 1 and a line saying what to do.

use crate::harness::Harness;

fn doctor(h: &Harness, extra: &[&str], token: Option<&str>) -> (i32, String) {
    let projects = h.projects.display().to_string();
    let state = h.state_arg();
    let mut args = vec!["doctor", "--projects", &projects, "--state", &state];
    args.extend_from_slice(extra);
    let mut cmd = h.command(&args);
    if let Some(token) = token {
        cmd.env("FORGE_TOKEN", token);
    }
    let out = cmd.output().expect("running forgehand doctor");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_set_up_and_fix_creates_the_labels() {
    let h = Harness::new("", "").await;
    let label_names = |h: &Harness| -> Vec<String> {
        h.forge
            .read(|s| s.labels().iter().map(|l| l.name.clone()).collect())
    };
    // The state folder is open to others: a failure `--fix` repairs.
    let (code, text) = doctor(&h, &[], None);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("is open to others"), "{text}");
    let agent = format!("ok   proj: agent command {}: ", crate::harness::python());
    for needle in [
        "ok   daemon: git: ",
        "ok   daemon: tmux: ",
        "ok   proj: forge ",
        "signed in as ",
        "ok   proj: reads the pull requests of acme/widget",
        "may write to acme/widget",
        &agent,
        "skip proj: labels: run with --fix",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    let writes = h
        .forge
        .read(|s| s.requests().iter().filter(|r| r.method != "GET").count());
    assert_eq!(writes, 0, "without --fix the doctor only reads");
    assert!(!label_names(&h).contains(&"in-progress".to_string()));

    let (code, text) = doctor(&h, &["--fix"], None);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("is private") && text.contains("(missing ones created)"),
        "{text}"
    );
    let names = label_names(&h);
    for l in [
        "backlog",
        "priority",
        "in-progress",
        "blocked",
        "underspecified",
    ] {
        assert!(names.contains(&l.to_string()), "{l} in {names:?}");
    }
    let (code, text) = doctor(&h, &[], None);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    h.assert_no_violations();

    let (code, text) = doctor(&h, &[], Some("not-the-token"));
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("FAIL proj: forge ") && text.contains("check the token in [forge] token_env"),
        "{text}"
    );
    assert!(text.contains("check(s) failed"), "{text}");
    assert!(
        !text.contains("not-the-token"),
        "the token is never printed"
    );
}
