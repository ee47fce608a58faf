//! GitHub Actions as the CI server: the failing job's step, exit code and log
//! tail (the log's redirect followed to another host without the token),
//! infrastructure failures re-run with `rerun-failed-jobs`, a matrix's
//! cancelled siblings left out, and runs that say nothing.

use std::sync::{Arc, Mutex};

use forgehand::ci::{CiServer, GithubActions, LOG_TAIL_LINES};
use forgehand::forge::CommitSha;
use serde_json::{Value, json};

use super::assert_all_in_openapi;
use super::mock::{Mock, Seen, empty, fast, not_found, reply, serve, with_headers};

const SHA: &str = "feedface00feedface00feedface00feedface00";

fn run(id: u64, name: &str, workflow: u64, status: &str, conclusion: Option<&str>) -> Value {
    json!({
        "id": id, "name": name, "head_sha": SHA, "workflow_id": workflow,
        "run_number": id, "run_attempt": 1, "event": "pull_request",
        "status": status, "conclusion": conclusion,
        "html_url": format!("https://github.example/o/r/actions/runs/{id}"),
    })
}

fn step(name: &str, conclusion: &str) -> Value {
    json!({"name": name, "status": "completed", "conclusion": conclusion, "number": 1})
}

fn job(id: u64, name: &str, conclusion: &str, steps: Vec<Value>) -> Value {
    json!({
        "id": id, "run_id": 500, "name": name, "head_sha": SHA,
        "status": "completed", "conclusion": conclusion, "steps": steps,
        "html_url": format!("https://github.example/o/r/actions/runs/500/job/{id}"),
    })
}

/// A job log as GitHub writes it: timestamps, groups, the error line, clean-up.
fn log_text(lines: usize, exit: i64) -> String {
    let mut out = String::from("\u{feff}2024-05-01T10:00:00.0000000Z ##[group]Run cargo test\n");
    for i in 1..=lines {
        out.push_str(&format!(
            "2024-05-01T10:00:01.1234567Z \x1b[31mtest line {i}\x1b[0m\n"
        ));
    }
    out.push_str(&format!(
        "2024-05-01T10:00:02.0000000Z ##[error]Process completed with exit code {exit}.\n"
    ));
    out.push_str("2024-05-01T10:00:03.0000000Z Post job cleanup.\n");
    out.push_str("2024-05-01T10:00:03.5000000Z ##[endgroup]\n");
    out
}

/// Storage on another host: serves job logs, remembers what it was asked.
async fn storage() -> Mock {
    serve(|s: &Seen| match s.path.strip_prefix("/logs/") {
        Some(job) => reply_text(&log_text(200, if job == "71" { 101 } else { 1 })),
        None => not_found(),
    })
    .await
}

fn reply_text(text: &str) -> axum::response::Response {
    with_headers(
        axum::response::IntoResponse::into_response(text.to_string()),
        &[("content-type", "text/plain")],
    )
}

/// GitHub answering `runs` on SHA and `jobs` per run, logs redirected to `blob`.
async fn github(blob: &str, runs: Value, jobs: Arc<Mutex<Vec<(u64, Value)>>>) -> Mock {
    let blob = blob.to_string();
    serve(
        move |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
            ("GET", ["actions", "runs"]) => reply(
                200,
                json!({"total_count": runs.as_array().unwrap().len(), "workflow_runs": runs}),
            ),
            ("GET", ["actions", "runs", id, "jobs"]) => {
                let id: u64 = id.parse().unwrap();
                let jobs = jobs.lock().unwrap();
                let list = jobs
                    .iter()
                    .find(|(run, _)| *run == id)
                    .map_or(json!([]), |(_, j)| j.clone());
                reply(
                    200,
                    json!({"total_count": list.as_array().unwrap().len(), "jobs": list}),
                )
            }
            ("GET", ["actions", "jobs", id, "logs"]) => with_headers(
                empty(302),
                &[(
                    "location",
                    &format!("{blob}/logs/{id}?sig=s3cr3t-signature&se=2024"),
                )],
            ),
            ("POST", ["actions", "runs", _, "rerun-failed-jobs"]) => empty(201),
            _ => reply(418, json!({"message": "not scripted"})),
        },
    )
    .await
}

fn actions(mock: &Mock) -> GithubActions {
    GithubActions::new(mock.client(fast()).api())
}

fn sha() -> CommitSha {
    CommitSha(SHA.into())
}

#[tokio::test]
async fn a_failing_job_reports_its_step_exit_code_and_log_tail() {
    let blob = storage().await;
    let runs = json!([
        run(400, "CI", 1, "completed", Some("success")),
        run(500, "CI", 1, "completed", Some("failure")),
        run(600, "Lint", 2, "completed", Some("success")),
    ]);
    let jobs = Arc::new(Mutex::new(vec![(
        500,
        json!([
            job(
                71,
                "test",
                "failure",
                vec![
                    step("Set up job", "success"),
                    step("Run tests", "failure"),
                    step("Post Run actions/checkout@v4", "success"),
                ]
            ),
            job(72, "build", "success", vec![step("Build", "success")]),
        ]),
    )]));
    let mock = github(&blob.url, runs, jobs).await;

    let report = actions(&mock)
        .failure_report(&sha())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(report.pipeline, 500, "the newest run of the workflow");
    assert_eq!(report.status, "failure");
    assert_eq!(report.steps.len(), 1, "{report:#?}");
    let failed = &report.steps[0];
    assert_eq!(failed.workflow, "CI / test");
    assert_eq!(failed.name, "Run tests");
    assert_eq!(failed.exit_code, Some(101));
    assert!(!failed.is_infrastructure() && !report.is_infrastructure());
    let lines: Vec<&str> = failed.log_tail.lines().collect();
    assert_eq!(lines.len(), LOG_TAIL_LINES + 1, "the marker and 80 lines");
    assert_eq!(
        *lines.last().unwrap(),
        "Error: Process completed with exit code 101.",
        "cut after the error, before the clean-up"
    );
    assert_eq!(lines[lines.len() - 2], "test line 200");
    assert!(!failed.log_tail.contains("2024-05-01T"), "no timestamps");
    assert!(!failed.log_tail.contains('\x1b'));
    let text = report.render();
    assert!(
        text.contains("CI pipeline #500 (failure): 1 step failed."),
        "{text}"
    );
    assert!(
        text.contains("\"Run tests\" of workflow \"CI / test\""),
        "{text}"
    );
    assert!(text.contains("exited with code 101"), "{text}");

    // The log's redirect went to storage without GitHub's token.
    let asked = &mock.hits("GET", "/actions/jobs/71/logs")[0];
    assert!(asked.header("authorization").is_some());
    let fetched = blob.seen();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].path, "/logs/71");
    assert_eq!(fetched[0].param("sig").as_deref(), Some("s3cr3t-signature"));
    assert_eq!(fetched[0].header("authorization"), None);
    let runs_asked = &mock.hits("GET", "/repos/o/r/actions/runs")[0];
    assert_eq!(runs_asked.param("head_sha").as_deref(), Some(SHA));
    let jobs_asked = &mock.hits("GET", "/runs/500/jobs")[0];
    assert_eq!(jobs_asked.param("filter").as_deref(), Some("latest"));
    assert_all_in_openapi(&mock);
}

#[tokio::test]
async fn lost_runners_and_cancellations_are_re_run_once() {
    let blob = storage().await;
    let runs = json!([
        run(500, "CI", 1, "completed", Some("failure")),
        run(700, "Nightly", 3, "completed", Some("cancelled")),
    ]);
    let jobs = Arc::new(Mutex::new(vec![
        (
            500,
            json!([job(
                71,
                "test",
                "failure",
                vec![step("Set up job", "success"), step("Run tests", "success"),]
            )]),
        ),
        (
            700,
            json!([job(73, "long", "cancelled", vec![step("Run", "cancelled")])]),
        ),
    ]));
    let mock = github(&blob.url, runs, jobs).await;
    let ci = actions(&mock);

    let report = ci.failure_report(&sha()).await.unwrap().unwrap();
    assert_eq!(report.steps.len(), 2, "{report:#?}");
    assert!(
        report.steps.iter().all(|s| s.is_infrastructure()),
        "{report:#?}"
    );
    assert!(report.is_infrastructure());
    assert!(report.render().contains("runner may have been lost"));

    assert_eq!(
        ci.restart(report.pipeline).await.unwrap(),
        500,
        "the same run"
    );
    let reruns: Vec<String> = mock
        .hits("POST", "/rerun-failed-jobs")
        .iter()
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(
        reruns,
        [
            "/repos/o/r/actions/runs/500/rerun-failed-jobs",
            "/repos/o/r/actions/runs/700/rerun-failed-jobs"
        ]
    );
    assert_all_in_openapi(&mock);
}

#[tokio::test]
async fn a_matrix_failure_is_not_hidden_by_its_cancelled_siblings() {
    let blob = storage().await;
    let runs = json!([run(500, "CI", 1, "completed", Some("failure"))]);
    let jobs = Arc::new(Mutex::new(vec![(
        500,
        json!([
            job(
                71,
                "test (ubuntu)",
                "failure",
                vec![step("Run tests", "failure")]
            ),
            job(
                74,
                "test (macos)",
                "cancelled",
                vec![step("Run tests", "cancelled")]
            ),
        ]),
    )]));
    let mock = github(&blob.url, runs, jobs).await;
    let report = actions(&mock)
        .failure_report(&sha())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.steps.len(), 1, "{report:#?}");
    assert_eq!(report.steps[0].workflow, "CI / test (ubuntu)");
    assert!(!report.is_infrastructure());
}

#[tokio::test]
async fn runs_that_did_not_fail_say_nothing_and_broken_ones_say_why() {
    let blob = storage().await;
    let quiet = json!([
        run(500, "CI", 1, "completed", Some("success")),
        run(600, "Lint", 2, "in_progress", None),
    ]);
    let mock = github(&blob.url, quiet, Arc::new(Mutex::new(vec![]))).await;
    assert_eq!(actions(&mock).failure_report(&sha()).await.unwrap(), None);

    let none = github(&blob.url, json!([]), Arc::new(Mutex::new(vec![]))).await;
    assert_eq!(actions(&none).failure_report(&sha()).await.unwrap(), None);

    let broken = json!([run(800, "CI", 1, "completed", Some("startup_failure"))]);
    let mock = github(&blob.url, broken, Arc::new(Mutex::new(vec![]))).await;
    let report = actions(&mock)
        .failure_report(&sha())
        .await
        .unwrap()
        .unwrap();
    assert!(report.steps.is_empty());
    assert!(
        report.errors[0].contains("startup_failure"),
        "{:?}",
        report.errors
    );
    assert!(!report.is_infrastructure());
    assert!(blob.seen().is_empty());
}
