//! `forgehand demo` as a newcomer runs it: from the built binary, no forge, no
//! token; it must merge its three plans, show its agents in tmux sessions
//! `dev-demo-<plan>`, and say so in its table.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::git;

const PLANS: [&str; 3] = ["add-farewell", "document-greeting", "add-changelog"];

fn tmux(tmpdir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .args(args)
        .env("TMUX_TMPDIR", tmpdir)
        .env_remove("TMUX")
        .output()
        .expect("running tmux")
}

#[test]
fn demo_merges_all_three_plans() {
    let tmp = tempfile::tempdir().unwrap();
    let tmux_dir = tmp.path().join("tmux");
    std::fs::create_dir(&tmux_dir).unwrap();
    let root = tmp.path().join("demo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_forgehand"))
        .args(["demo", "--keep", "--state"])
        .arg(&root)
        .env("TMUX_TMPDIR", &tmux_dir)
        .env_remove("TMUX")
        .env_remove("FORGE_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting forgehand demo");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    // While it runs, the CI plan's agent is in `dev-demo-add-farewell`.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut output = Vec::new();
    let mut seen_agent = false;
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => output.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if !seen_agent {
            let pane = tmux(
                &tmux_dir,
                &["capture-pane", "-p", "-t", "=dev-demo-add-farewell:"],
            );
            seen_agent = pane.status.success()
                && String::from_utf8_lossy(&pane.stdout).contains("Received message");
        }
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    output.extend(lines.try_iter());
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap_or_default();
    let _ = tmux(&tmux_dir, &["kill-server"]);
    let printed = output.join("\n");
    let log = std::fs::read_to_string(root.join("daemon.log")).unwrap_or_default();
    assert!(
        status.success(),
        "demo failed ({status}):\n{printed}\n{stderr}\n--- daemon.log ---\n{log}"
    );

    assert!(
        seen_agent,
        "the agent never showed in dev-demo-add-farewell"
    );
    assert!(printed.contains("all 3 plans merged"), "{printed}");
    for plan in PLANS {
        let row = output
            .iter()
            .find(|l| l.starts_with(plan) && !l.contains('['))
            .unwrap_or_else(|| panic!("no table row for {plan}:\n{printed}"));
        assert!(row.contains("merged"), "{row}");
        // Outcome written back beside the plan.
        let done = root.join("plans").join("done");
        assert!(
            done.join(format!("{plan}.md")).exists(),
            "{plan} not in done/"
        );
        let report = std::fs::read_to_string(done.join(format!("{plan}.report.md")))
            .unwrap_or_else(|e| panic!("{plan}'s report: {e}"));
        assert!(report.contains("merged"), "{report}");
    }
    // The CI plan failed once; the review plan got a change request.
    let row = |plan: &str| output.iter().find(|l| l.starts_with(plan)).unwrap().clone();
    // Columns: plan, outcome, ci attempts, review rounds, merge, title.
    let column = |plan: &str, i: usize| -> u32 {
        row(plan)
            .split_whitespace()
            .nth(i)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(column("add-farewell", 2) >= 1, "{printed}");
    assert!(column("document-greeting", 3) >= 1, "{printed}");
    assert!(printed.contains("changes requested"), "{printed}");

    // Real merges on the repository's primary branch, tests passing there.
    let repo = root.join("repo");
    let log = git(&repo, &["log", "--format=%s", "main"]);
    for plan in PLANS {
        assert!(
            std::fs::read_to_string(repo.join("work").join(format!("issue-{plan}.txt"))).is_ok(),
            "{plan}'s change is not on main:\n{log}"
        );
    }
    let suite = Command::new("sh")
        .arg("test.sh")
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(
        suite.status.success(),
        "{}",
        String::from_utf8_lossy(&suite.stdout)
    );
}
