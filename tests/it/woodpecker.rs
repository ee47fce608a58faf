//! The Woodpecker client against the fake Woodpecker: failure reports (failing steps, exit
//! codes, log tails), infrastructure classification, restarts, pagination, token hygiene,
//! and that every request fits Woodpecker's swagger; plus `log_tail` on its own.

use std::time::Duration;

use forgehand::ci::woodpecker::is_infrastructure_failure;
use forgehand::ci::{
    CiServer, FailureReport, LOG_TAIL_BYTES, LOG_TAIL_LINES, WoodpeckerClient, clean_line, log_tail,
};
use forgehand::forge::CommitSha;
use forgehand::http::retry::RetryPolicy;

use crate::fake_woodpecker::{FakeStep, FakeWoodpecker, FakeWorkflow, Restart};

const REPO_ID: u64 = 7;
const TOKEN: &str = "wp-s3cr3t-t0ken";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const CUT: &str = "(… earlier lines cut)";

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(5),
        max_retry_after: Duration::from_secs(5),
    }
}

fn client(ci: &FakeWoodpecker) -> WoodpeckerClient {
    WoodpeckerClient::new(ci.url(), REPO_ID, TOKEN.to_owned(), fast()).unwrap()
}

fn sha(text: &str) -> CommitSha {
    CommitSha(text.to_owned())
}

fn numbered(n: usize, text: impl Fn(usize) -> String) -> Vec<String> {
    (1..=n).map(text).collect()
}

fn assert_no_violations(ci: &FakeWoodpecker) {
    let violations = ci.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

/// Woodpecker's verdict on a step like this one.
fn step(name: &str, kind: &str, exit_code: i64) -> bool {
    is_infrastructure_failure(kind, name, exit_code)
}

#[tokio::test]
async fn reports_the_failing_step_with_the_tail_of_its_log() {
    let ci = FakeWoodpecker::start(REPO_ID, TOKEN);
    // Coloured output, as test runners print it; the fake serves it base64-encoded.
    let log = numbered(500, |i| {
        format!("\x1b[31mline {i}\x1b[0m: \x1b[1mfailed\x1b[0m")
    });
    let n = ci.add_pipeline(
        SHA,
        vec![
            FakeStep::new("clone", "clone", 0, vec!["cloning".into()]),
            FakeStep::ok("build"),
            FakeStep::new("test", "commands", 2, log),
        ],
    );

    let report = client(&ci)
        .failure_report(&sha(SHA))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(report.pipeline, n);
    assert_eq!(report.status, "failure");
    assert_eq!(report.steps.len(), 1, "{report:#?}");
    let failed = &report.steps[0];
    assert_eq!(
        (
            failed.workflow.as_str(),
            failed.name.as_str(),
            failed.kind.as_str()
        ),
        ("ci", "test", "commands")
    );
    assert_eq!(failed.exit_code, Some(2));
    let lines: Vec<&str> = failed.log_tail.lines().collect();
    assert_eq!(lines.len(), LOG_TAIL_LINES + 1, "the marker and 80 lines");
    assert_eq!(lines[0], CUT);
    assert_eq!(lines[1], "line 421: failed");
    assert_eq!(*lines.last().unwrap(), "line 500: failed");
    assert!(!failed.log_tail.contains('\x1b'));
    assert!(!report.is_infrastructure());

    let text = report.render();
    assert!(text.contains(&format!("pipeline #{n}")), "{text}");
    assert!(
        text.contains("\"test\"") && text.contains("exited with code 2"),
        "{text}"
    );
    assert!(text.contains("line 500: failed"), "{text}");
    assert_no_violations(&ci);
}

#[tokio::test]
async fn long_lines_are_cut_to_eight_kilobytes_of_whole_lines() {
    let ci = FakeWoodpecker::start(REPO_ID, TOKEN);
    // 500 lines of ~300 bytes, with multi-byte characters: 80 of them would be ~24 KB.
    let log = numbered(500, |i| format!("{i:03} {}", "ü€x".repeat(50)));
    ci.add_pipeline(SHA, vec![FakeStep::new("lint", "commands", 1, log.clone())]);

    let report = client(&ci)
        .failure_report(&sha(SHA))
        .await
        .unwrap()
        .unwrap();

    let tail = &report.steps[0].log_tail;
    assert!(tail.len() <= LOG_TAIL_BYTES, "{} bytes", tail.len());
    assert!(
        tail.len() > LOG_TAIL_BYTES - 400,
        "fills the budget: {}",
        tail.len()
    );
    let mut lines = tail.lines();
    assert_eq!(lines.next(), Some(CUT));
    let kept: Vec<&str> = lines.collect();
    assert!(kept.len() < LOG_TAIL_LINES);
    // Whole lines only, the last ones of the log, in order.
    let expected: Vec<&str> = log[log.len() - kept.len()..]
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(kept, expected);
    assert_no_violations(&ci);
}

#[tokio::test]
async fn reports_failing_steps_of_every_workflow() {
    let ci = FakeWoodpecker::start(REPO_ID, TOKEN);
    ci.add_pipeline_workflows(
        SHA,
        vec![
            FakeWorkflow::new(
                "lint",
                vec![
                    FakeStep::new("clone", "clone", 0, vec![]),
                    FakeStep::new("clippy", "commands", 101, vec!["error: unused".into()]),
                ],
            ),
            FakeWorkflow::new("docs", vec![FakeStep::ok("build")]),
            FakeWorkflow::new(
                "test",
                vec![
                    FakeStep::ok("build"),
                    FakeStep::new("unit", "commands", 1, vec!["assertion failed".into()]),
                ],
            ),
        ],
    );

    let report = client(&ci)
        .failure_report(&sha(SHA))
        .await
        .unwrap()
        .unwrap();

    let got: Vec<(&str, &str, Option<i64>, &str)> = report
        .steps
        .iter()
        .map(|s| {
            (
                s.workflow.as_str(),
                s.name.as_str(),
                s.exit_code,
                s.log_tail.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("lint", "clippy", Some(101), "error: unused"),
            ("test", "unit", Some(1), "assertion failed"),
        ]
    );
    let text = report.render();
    assert!(text.contains("2 steps failed"), "{text}");
    assert!(text.contains("workflow \"lint\"") && text.contains("workflow \"test\""));
    assert_no_violations(&ci);
}

#[tokio::test]
async fn no_pipeline_for_the_commit_is_none_and_a_short_page_ends_the_search() {
    let ci = FakeWoodpecker::start(REPO_ID, TOKEN);
    ci.add_pipeline("aaaa", vec![FakeStep::ok("test")]);
    ci.add_pipeline("bbbb", vec![FakeStep::new("test", "commands", 1, vec![])]);

    assert_eq!(client(&ci).failure_report(&sha(SHA)).await.unwrap(), None);

    let lists: Vec<_> = ci.requests();
    assert_eq!(lists.len(), 1, "{lists:#?}");
    assert_eq!(lists[0].param("page").as_deref(), Some("1"));
    assert_no_violations(&ci);
}

#[tokio::test]
async fn a_passing_pipeline_has_no_failing_steps() {
    let ci = FakeWoodpecker::start(REPO_ID, TOKEN);
    let n = ci.add_pipeline(
        SHA,
        vec![
            FakeStep::new("clone", "clone", 0, vec![]),
            FakeStep::ok("test"),
        ],
    );

    let report = client(&ci)
        .failure_report(&sha(SHA))
        .await
        .unwrap()
        .unwrap();

    assert_eq!(report.pipeline, n);
    assert_eq!(report.status, "success");
    assert!(report.steps.is_empty(), "{report:#?}");
    assert!(!report.is_infrastructure());
    assert!(report.render().contains("no step failed"));
    // No log was fetched: only the list and the pipeline.
    assert!(ci.requests().iter().all(|r| !r.path.contains("/logs/")));
    assert_no_violations(&ci);
}

#[tokio::test]
async fn infrastructure_failures_are_a_clone_128_or_any_137() {
    let ci = FakeWoodpecker::start(REPO_ID, TOKEN);
    let clone_failed = "c10e";
    ci.add_pipeline(
        clone_failed,
        vec![FakeStep::new(
            "clone",
            "clone",
            128,
            vec!["fatal: could not read from remote repository".into()],
        )],
    );
    let oom = "0000";
    ci.add_pipeline(oom, vec![FakeStep::new("test", "commands", 137, vec![])]);
    let mixed = "3333";
    ci.add_pipeline_workflows(
        mixed,
        vec![
            FakeWorkflow::new("a", vec![FakeStep::new("test", "commands", 137, vec![])]),
            FakeWorkflow::new("b", vec![FakeStep::new("test", "commands", 1, vec![])]),
        ],
    );
    let client = client(&ci);

    let report = client
        .failure_report(&sha(clone_failed))
        .await
        .unwrap()
        .unwrap();
    assert!(report.steps[0].is_infrastructure() && report.is_infrastructure());
    assert!(report.steps[0].log_tail.contains("fatal: could not read"));
    let report = client.failure_report(&sha(oom)).await.unwrap().unwrap();
    assert!(report.is_infrastructure(), "{report:#?}");
    // A real failure next to a killed step is the agent's to fix.
    let report = client.failure_report(&sha(mixed)).await.unwrap().unwrap();
    assert!(report.steps[0].is_infrastructure());
    assert!(!report.steps[1].is_infrastructure());
    assert!(!report.is_infrastructure());

    // A clone step is known by its type or its name; 128 elsewhere is the code's own.
    assert!(step("clone", "", 128));
    assert!(step("fetch", "clone", 128));
    assert!(step("build", "plugin", 137));
    assert!(!step("test", "commands", 128));
    assert!(!step("clone", "clone", 1));
    assert!(!step("test", "commands", 1));
    let empty = FailureReport {
        pipeline: 1,
        status: "error".into(),
        errors: vec!["config: yaml broken".into()],
        steps: vec![],
    };
    assert!(!empty.is_infrastructure());
    assert!(empty.render().contains("config: yaml broken"));
    assert_no_violations(&ci);
}

#[tokio::test]
async fn a_restart_runs_the_pipeline_again_on_the_same_commit() {
    let ci = FakeWoodpecker::start(REPO_ID, TOKEN);
    let n = ci.add_pipeline(
        SHA,
        vec![FakeStep::new("clone", "clone", 128, vec!["fatal".into()])],
    );
    ci.on_restart(vec![FakeWorkflow::new(
        "ci",
        vec![
            FakeStep::new("clone", "clone", 0, vec![]),
            FakeStep::ok("test"),
        ],
    )]);
    let client = client(&ci);
    let report = client.failure_report(&sha(SHA)).await.unwrap().unwrap();
    assert!(report.is_infrastructure());

    let new = client.restart(report.pipeline).await.unwrap();

    assert_ne!(new, n);
    assert_eq!(ci.restarts(), vec![Restart { from: n, to: new }]);
    let posts: Vec<_> = ci
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].path, format!("/api/repos/{REPO_ID}/pipelines/{n}"));
    // The newest pipeline on the commit is now the restarted one, and it passed.
    let report = client.failure_report(&sha(SHA)).await.unwrap().unwrap();
    assert_eq!(report.pipeline, new);
    assert!(report.steps.is_empty(), "{report:#?}");
    assert_no_violations(&ci);
}

#[tokio::test]
async fn the_token_never_shows_in_errors_or_debug_output() {
    let ci = FakeWoodpecker::start(REPO_ID, TOKEN);
    ci.add_pipeline(SHA, vec![FakeStep::ok("test")]);
    let wrong = format!("{TOKEN}-old");
    // The fake echoes the Authorization header in its 401, as a careless proxy might.
    let client = WoodpeckerClient::new(ci.url(), REPO_ID, wrong.clone(), fast()).unwrap();

    let err = client.failure_report(&sha(SHA)).await.unwrap_err();
    let restart_err = client.restart(1).await.unwrap_err();

    for text in [
        format!("{err:#}"),
        format!("{err:?}"),
        format!("{restart_err:#}"),
        format!("{client:?}"),
    ] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    let text = format!("{err:#}");
    assert!(text.contains("401") && text.contains("pipelines"), "{text}");
    assert!(text.contains("[REDACTED]"), "the echo was redacted: {text}");
    assert!(ci.requests().iter().all(|r| !r.authorized));

    // A malformed token is refused without being echoed.
    let bad = WoodpeckerClient::new(ci.url(), REPO_ID, format!("{TOKEN}\n"), fast()).unwrap_err();
    assert!(!format!("{bad:#}").contains(TOKEN));
    // Credentials in the URL are dropped: the bearer token is the only one sent.
    let with_user = ci.url().replace("http://", "http://user:pw@");
    let client = WoodpeckerClient::new(&with_user, REPO_ID, TOKEN.into(), fast()).unwrap();
    assert!(!format!("{client:?}").contains("pw"));
    assert!(client.failure_report(&sha(SHA)).await.unwrap().is_some());
}

#[tokio::test]
async fn pages_through_newer_pipelines_up_to_a_limit() {
    let ci = FakeWoodpecker::start(REPO_ID, TOKEN);
    let n = ci.add_pipeline(SHA, vec![FakeStep::new("test", "commands", 1, vec![])]);
    for i in 0..120 {
        ci.add_pipeline(&format!("other{i}"), vec![FakeStep::ok("test")]);
    }
    let client = client(&ci);

    let report = client.failure_report(&sha(SHA)).await.unwrap().unwrap();

    assert_eq!(report.pipeline, n);
    let pages: Vec<(Option<String>, Option<String>)> = ci
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/pipelines"))
        .map(|r| (r.param("page"), r.param("perPage")))
        .collect();
    let want: Vec<_> = ["1", "2", "3"]
        .iter()
        .map(|p| (Some((*p).to_owned()), Some("50".to_owned())))
        .collect();
    assert_eq!(pages, want);

    // A commit buried under more than 200 newer pipelines is not searched for forever.
    for i in 0..100 {
        ci.add_pipeline(&format!("newer{i}"), vec![FakeStep::ok("test")]);
    }
    let before = ci.requests().len();
    assert_eq!(client.failure_report(&sha(SHA)).await.unwrap(), None);
    assert_eq!(ci.requests().len() - before, 4);

    // Two pipelines on one commit: the newer one counts.
    let newer = ci.add_pipeline(SHA, vec![FakeStep::ok("test")]);
    let report = client.failure_report(&sha(SHA)).await.unwrap().unwrap();
    assert_eq!(report.pipeline, newer);
    assert_no_violations(&ci);
}

#[tokio::test]
async fn every_request_fits_the_woodpecker_swagger() {
    let ci = FakeWoodpecker::start(REPO_ID, TOKEN);
    let n = ci.add_pipeline(
        SHA,
        vec![FakeStep::new("test", "commands", 1, vec!["x".into()])],
    );
    let client = client(&ci);
    client.failure_report(&sha(SHA)).await.unwrap().unwrap();
    client.restart(n).await.unwrap();

    let templates: Vec<(String, String)> = ci
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let has = |method: &str, part: &str| {
        templates
            .iter()
            .any(|(m, p)| m == method && p.contains(part))
    };
    assert!(has("GET", "/api/repos/7/pipelines"));
    assert!(has("GET", &format!("/api/repos/7/pipelines/{n}")));
    assert!(has("GET", &format!("/api/repos/7/logs/{n}/")));
    assert!(has("POST", &format!("/api/repos/7/pipelines/{n}")));
    assert_no_violations(&ci);

    // The fake does judge: a request off the swagger is listed.
    let http = reqwest::Client::new();
    let status = http
        .get(format!("{}/api/repos/7/builds?limit=5", ci.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
    assert_eq!(ci.violations().len(), 1, "{:#?}", ci.violations());
}

#[test]
fn log_tail_keeps_whole_lines_from_the_end() {
    let lines = |v: &[&str]| -> Vec<String> { v.iter().map(|s| (*s).to_owned()).collect() };

    // Everything fits: no marker.
    assert_eq!(log_tail(&lines(&["a", "b"]), 80, 8192), "a\nb");
    assert_eq!(log_tail(&[], 80, 8192), "");
    // Line limit.
    assert_eq!(
        log_tail(&lines(&["a", "b", "c"]), 2, 8192),
        format!("{CUT}\nb\nc")
    );
    // Byte limit, counted with the marker and newlines.
    let long: Vec<String> = (1..=4).map(|i| i.to_string().repeat(20)).collect();
    let max = CUT.len() + 1 + 41;
    assert!(max < 83, "less than the whole log");
    let last_two = format!("{CUT}\n{}\n{}", long[2], long[3]);
    assert_eq!(log_tail(&long, 80, max), last_two);
    assert_eq!(log_tail(&long, 80, max - 1), format!("{CUT}\n{}", long[3]));

    // One line longer than the limit keeps its end, cut at a character boundary.
    let wide = vec!["é".repeat(5000)];
    let tail = log_tail(&wide, 80, 100);
    assert!(tail.len() <= 100 && tail.len() > 90, "{}", tail.len());
    assert!(tail.starts_with('…') && tail.ends_with('é'));
    for max in 95..=100 {
        let with_earlier = vec!["short".to_owned(), "€".repeat(1000)];
        let tail = log_tail(&with_earlier, 80, max);
        assert!(tail.len() <= max, "{max}: {}", tail.len());
        assert!(tail.starts_with(CUT), "{tail}");
    }
    // Even a limit too small for the marker is kept.
    for max in 0..30 {
        assert!(log_tail(&long, 80, max).len() <= max);
    }
}

#[test]
fn log_lines_are_shown_as_a_terminal_would() {
    assert_eq!(clean_line("\x1b[1;32mok\x1b[0m done"), "ok done");
    // Progress bars redrawn with `\r` show their last state.
    assert_eq!(clean_line("10%\r50%\r100% done\r"), "100% done");
    // Hyperlinks (OSC 8) keep their text.
    assert_eq!(
        clean_line("see \x1b]8;;https://x.example\x07docs\x1b]8;;\x07"),
        "see docs"
    );
}
