//! A forge outage loses nothing and blocks nothing: with issues in every
//! waiting stage, the forge answers every API request with 503 for longer
//! than one call's whole retry budget; once it is back, every issue carries
//! on and merges, once, none blocked, and the outage is journaled once per
//! issue that met it.

use std::time::Duration;

use crate::fake_forge::{Chaos, CiBehaviour, Fault, ReviewBehaviour};
use crate::git_http::GitHttp;
use crate::harness::{Harness, ProjectFile, STEP, auto};
use crate::support::wait_until;

/// Quick recovery: an outage is tried again every second at most.
const TIMINGS: &str = "outage_first=200ms,outage_max=1s,restart_first=200ms,restart_max=1s";

fn down() -> Chaos {
    Chaos {
        rate: 1.0,
        seed: 1,
        faults: vec![Fault::Status {
            status: 503,
            retry_after: None,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_with_issues_in_every_stage_loses_nothing() {
    let mut h = Harness::new("max_sessions = 4", "").await;
    h.env.push(("FORGEHAND_TIMINGS".into(), TIMINGS.into()));
    // CI fails once on every PR, and the reviewer asks for changes once:
    // the issues pass through CI fixes and review rounds.
    h.forge.set_behaviour(auto(
        CiBehaviour::FailFirst(1),
        ReviewBehaviour::RequestChangesOnce {
            body: "Say it louder.".into(),
            comments: vec![],
        },
    ));
    let issues: Vec<u64> = (1..=4)
        .map(|i| h.forge.create_issue(&format!("Task {i}"), "", &["backlog"]))
        .collect();
    // A fifth waits in the backlog behind an open issue: the poller meets
    // the outage too.
    let blocker = h.forge.create_issue("Not yet", "", &[]);
    let later = h
        .forge
        .create_issue("Later", &format!("Depends on #{blocker}"), &["backlog"]);
    h.enable();
    h.start_daemon();
    for &n in &issues {
        h.wait_for_pr(n).await;
    }
    // The forge goes down with the four in flight: CI being fixed, a review
    // awaited or being answered.
    h.forge.set_chaos(down());
    let since = h.forge.faults_injected();
    // Longer than a call's whole retry budget (a few seconds), long enough
    // that every actor met it: measured in refused requests, not time.
    h.forge
        .wait_until(STEP, |s| s.faults_injected() >= since + 150)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "requests refused during the outage: {} since {since}\n{}\n{:#?}",
                h.forge.faults_injected(),
                h.daemon_log()
                    .lines()
                    .rev()
                    .take(60)
                    .collect::<Vec<_>>()
                    .join("\n"),
                h.journal(1)
            )
        });
    // `forgehand status` says why nothing moves.
    wait_until("status to show the outage", STEP, || async {
        let out = h.run(&["status", "--state", &h.state_arg()]);
        String::from_utf8_lossy(&out.stdout)
            .contains("waiting for the forge")
            .then_some(())
    })
    .await;
    h.forge.clear_chaos();
    h.forge.close_issue(blocker);

    for &n in issues.iter().chain([&later]) {
        let pr = h.wait_for_pr(n).await;
        h.forge
            .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
            .await
            .unwrap_or_else(|e| panic!("#{n} merged after the outage: {e}\n{:#?}", h.journal(n)));
    }
    // And once it is back, nobody waits for it any more.
    let out = h.run(&["status", "--state", &h.state_arg()]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("waiting for the forge"));
    for &n in issues.iter().chain([&later]) {
        let pr = h.wait_for_pr(n).await;
        assert_eq!(h.forge.read(|s| s.merge_count(pr)), 1, "#{n} merged once");
    }
    for &n in &issues {
        h.wait_cleaned_up(n).await;
        let issue = h.forge.issue(n);
        assert!(!issue.has_label("blocked"), "#{n} blocked");
        let journal = h.journal(n);
        let met = journal
            .iter()
            .filter(|(_, d)| d.contains("forge unreachable since"))
            .count();
        assert!(
            met <= 1,
            "#{n}: the outage journaled {met} times: {journal:#?}"
        );
        assert!(
            !journal.iter().any(|(_, d)| d.contains("dev actor failed")),
            "#{n}: an outage counted as a failure: {journal:#?}"
        );
    }
    h.assert_no_violations();
}

/// Over git's HTTP protocol, fetches hang (a stuck connection to the forge)
/// while pushes go through: the issue that needs a fetch to start waits, with
/// each fetch cut off at `git_timeout` and tried again; the issue already in
/// flight pushes and merges meanwhile. Once fetches answer, the other starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_fetch_stalls_only_its_own_issue() {
    let mut h = Harness::new("", "").await;
    let http = GitHttp::start(&h.git.bare).await;
    h.write_project_file(&ProjectFile {
        agent_extra: "max_sessions = 2",
        clone_url: Some(http.url().to_string()),
        ..ProjectFile::default()
    });
    h.env.push((
        "FORGEHAND_TIMINGS".into(),
        format!("{TIMINGS},git_timeout=3s"),
    ));
    h.forge.set_behaviour(auto(
        CiBehaviour::Succeed,
        ReviewBehaviour::ApproveWhenGreen,
    ));
    // The first issue's agent asks a question first, so it is in flight
    // (its session made, nothing pushed) when fetches start to hang.
    let first = h.forge.create_issue(
        "Ask first",
        "fake-agent: escalate which greeting?",
        &["backlog"],
    );
    h.enable();
    h.start_daemon();
    // Its question reaches the issue as a comment.
    h.forge
        .wait_until(STEP, |s| {
            s.comments(first).any(|c| c.body.contains("needs a human"))
        })
        .await
        .expect("the first agent to ask");
    http.hang_fetches(true);
    let second = h.forge.create_issue("Start later", "", &["backlog"]);
    wait_until("the second issue's fetch to hang", STEP, || async {
        (http.hung() >= 2).then_some(())
    })
    .await;
    h.forge.add_comment(first, "alice", "Say hello.");
    let pr = h.wait_for_pr(first).await;
    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
        .await
        .expect("the first issue merged while fetches hang");
    assert!(
        !h.has_session(&h.session(second)),
        "the second issue started without a fetch"
    );
    assert!(
        h.journal(second)
            .iter()
            .any(|(_, d)| d.contains("forge unreachable since") && d.contains("did not finish")),
        "{:#?}",
        h.journal(second)
    );

    http.hang_fetches(false);
    let pr = h.wait_for_pr(second).await;
    h.forge
        .wait_until(STEP, |s| s.pull(pr).is_some_and(|p| p.merged))
        .await
        .expect("the second issue merged once fetches answer");
    let (requests, authorized) = http.requests();
    assert!(authorized > 0 && authorized <= requests);
    h.assert_no_violations();
}

/// The invariant, through a randomized run of faults (5xx, resets, slow
/// answers, rate limits, whole outages, and refusals that make dev actors
/// fail for real and be restarted or given up): at every look, an active
/// claim has a live dev actor or a pending restart; and once the forge is
/// well again, every claim ends (merged or blocked), none left active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_claim_is_ever_without_an_actor_in_a_randomized_fault_run() {
    let seed: u64 = std::env::var("FORGEHAND_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("fault seed {seed} (FORGEHAND_FAULT_SEED={seed} repeats this run)");
    let mut h = Harness::new("max_sessions = 4", "").await;
    h.env.push((
        "FORGEHAND_TIMINGS".into(),
        format!("{TIMINGS},failure_window=20s"),
    ));
    h.forge.set_behaviour(auto(
        CiBehaviour::FailFirst(1),
        ReviewBehaviour::ApproveWhenGreen,
    ));
    let issues: Vec<u64> = (1..=6)
        .map(|i| h.forge.create_issue(&format!("Task {i}"), "", &["backlog"]))
        .collect();
    h.enable();
    h.start_daemon();
    h.forge
        .wait_until(STEP, |s| s.requests_matching("GET", "/issues").count() > 0)
        .await
        .expect("the daemon polls");
    let status = |fault: u16| Fault::Status {
        status: fault,
        retry_after: None,
    };
    let mixed = Chaos {
        rate: 0.3,
        seed,
        faults: vec![
            status(500),
            status(502),
            status(503),
            Fault::Status {
                status: 429,
                retry_after: Some(1),
            },
            Fault::Reset,
            Fault::Delay(Duration::from_millis(300)),
            status(502).after_apply(),
            // Refusals: a dev actor meeting one fails for real.
            status(422),
            status(404),
        ],
    };
    // Phases: mixed faults, a whole outage, mixed again; looking at the
    // invariant all along.
    let check = |phase: &str| {
        let out = h.run(&["status", "--state", &h.state_arg(), "--json"]);
        let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
            return;
        };
        for c in claims["issues"].as_array().into_iter().flatten() {
            if c["status"] == "active" {
                assert!(
                    c["runner"] == "running" || c["runner"] == "restarting",
                    "{phase}: an active claim with nobody working on it: {c:#}"
                );
            }
        }
    };
    for (phase, chaos, faults) in [
        ("mixed", mixed.clone(), 80),
        ("outage", down(), 60),
        ("mixed again", mixed, 80),
    ] {
        h.forge.set_chaos(chaos);
        let until = h.forge.faults_injected() + faults;
        while h.forge.faults_injected() < until {
            check(phase);
            let _ = h
                .forge
                .wait_until(Duration::from_millis(300), |s| s.faults_injected() >= until)
                .await;
        }
    }
    h.forge.clear_chaos();
    // Well again: every claim ends, none is left active; the invariant holds
    // on the way.
    wait_until("every claim to end", Duration::from_secs(240), || async {
        check("after");
        let out = h.run(&["status", "--state", &h.state_arg(), "--json"]);
        let claims: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let claims = claims["issues"].as_array()?;
        let ended = claims.len() >= issues.len()
            && claims
                .iter()
                .all(|c| c["status"] == "done" || c["status"] == "blocked");
        ended.then_some(())
    })
    .await;
    for &n in &issues {
        let issue = h.forge.issue(n);
        assert!(
            !issue.is_open() || issue.has_label("blocked"),
            "#{n} ended neither merged nor blocked"
        );
        assert!(!issue.has_label("in-progress"), "#{n} still in progress");
    }
    // The run met real failures, not only outages: dev actors failed and
    // were restarted (or given up) along the way.
    let failed = issues
        .iter()
        .flat_map(|&n| h.journal(n))
        .filter(|(_, d)| d.starts_with("dev actor failed"))
        .count();
    assert!(
        failed > 0,
        "no dev actor failed: the run proved little (seed {seed})"
    );
    assert!(
        h.daemon().try_wait().unwrap().is_none(),
        "the daemon runs on"
    );
}

/// The agent gives up while the forge is down: the block it decides (the
/// diagnostic comment, `blocked`, no `in-progress`) waits for the forge
/// and gets there once it answers again, also when the daemon is killed
/// meanwhile (`restart`), once.
async fn a_block_met_by_an_outage_reaches_the_forge(restart: bool) {
    let mut h = Harness::new("", "").await;
    h.env.push(("FORGEHAND_TIMINGS".into(), TIMINGS.into()));
    let n = h
        .forge
        .create_issue("Stuck for good", "fake-agent: hang", &["backlog"]);
    h.enable();
    h.start_daemon();
    h.agent_received(n, "Stuck for good").await;
    h.forge.set_chaos(down());
    // The test is the agent here: it gives up while nothing reaches the forge.
    let phase = h.session_dir(&h.session(n)).join("phase");
    std::fs::write(&phase, "PHASE:failed\nReason: cannot go on\n").expect("phase file");
    wait_until("the block to meet the outage", STEP, || async {
        let journal = h.journal(n);
        let seen = journal.iter().any(|(_, d)| d.contains("PHASE:failed"));
        let met = journal
            .iter()
            .any(|(_, d)| d.contains("forge unreachable since"));
        (seen && met).then_some(())
    })
    .await;
    // Some more refusals: the block itself has met the outage by then.
    let since = h.forge.faults_injected();
    h.forge
        .wait_until(STEP, |s| s.faults_injected() >= since + 10)
        .await
        .expect("the outage goes on");
    assert!(h.forge.issue(n).has_label("in-progress"));
    if restart {
        h.kill_daemon();
        h.forge.clear_chaos();
        h.start_daemon();
    } else {
        h.forge.clear_chaos();
    }
    h.forge
        .wait_until(STEP, |s| {
            let issue = s.issue(n);
            issue.has_label("blocked") && !issue.has_label("in-progress")
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "#{n} blocked after the outage: {e}\n{:#?}\n{}",
                h.journal(n),
                h.daemon_log()
            )
        });
    let diagnostics = h
        .bot_comments(n)
        .into_iter()
        .filter(|c| c.contains("forgehand stopped working on this issue"))
        .count();
    assert_eq!(diagnostics, 1, "{:#?}", h.bot_comments(n));
    h.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_met_by_an_outage_waits_for_the_forge() {
    a_block_met_by_an_outage_reaches_the_forge(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_met_by_an_outage_survives_a_restart() {
    a_block_met_by_an_outage_reaches_the_forge(true).await;
}
