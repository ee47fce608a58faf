//! CI on the fake GitHub: the simulated Actions (check runs that are jobs, a failing job's
//! log behind a 302, re-runs of failed jobs, infrastructure failures), the "other CI"'s
//! commit statuses and the combined status, check runs added by the test, and the
//! simulated reviewer reacting to green heads.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, open_pull, push_branch, repo, start};
use crate::fake_github::control::CheckRunSpec;
use crate::fake_github::fixture::GitFixture;
use crate::fake_github::{
    ACTIONS_APP, ActionsBehaviour, Behaviour, CiBehaviour, FAILURE_MARKER, InfraFailure,
    OTHER_CI_CONTEXT, REVIEWER, RUNNER_LOST_MESSAGE, ReviewBehaviour,
};

/// The latest check runs on `sha` as (name, status, conclusion).
async fn check_runs(api: &Api, sha: &str) -> Vec<(String, String, Value)> {
    let answer = api.get(&repo(&format!("/commits/{sha}/check-runs"))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        answer.json["total_count"].as_u64(),
        answer.json["check_runs"].as_array().map(|a| a.len() as u64)
    );
    answer.json["check_runs"]
        .as_array()
        .expect("check_runs")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["status"].as_str().unwrap_or_default().to_owned(),
                r["conclusion"].clone(),
            )
        })
        .collect()
}

fn run(name: &str, conclusion: &str) -> (String, String, Value) {
    (name.to_owned(), "completed".to_owned(), json!(conclusion))
}

#[tokio::test]
async fn failing_actions_job_has_a_log_behind_a_redirect_and_the_next_head_passes() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;
    github.set_behaviour(Behaviour {
        actions: ActionsBehaviour::FailFirst(1),
        ..Default::default()
    });
    let api = Api::new(&github);
    let first = push_branch(&fixture, "fix/issue-1", "greeting.txt", "hello, world\n");
    let n = open_pull(&api, "fix/issue-1").await;

    assert_eq!(
        check_runs(&api, &first).await,
        [run("lint", "success"), run("test", "failure")]
    );
    // The branch name is a ref too.
    assert_eq!(check_runs(&api, "fix/issue-1").await.len(), 2);
    let runs = api
        .get(&repo(&format!("/commits/{first}/check-runs")))
        .await;
    let test = &runs.json["check_runs"][1];
    assert_eq!(test["app"]["slug"], ACTIONS_APP);
    assert_eq!(test["pull_requests"][0]["number"], n);
    let job_id = test["id"].as_u64().expect("id");

    // The check run is the job: same id, with the run and steps.
    let job = api.get(&repo(&format!("/actions/jobs/{job_id}"))).await;
    assert_eq!(job.status, StatusCode::OK, "{}", job.text);
    assert_eq!(job.json["conclusion"], "failure");
    assert_eq!(job.json["steps"][1]["conclusion"], "failure");
    let run_id = job.json["run_id"].as_u64().expect("run id");
    let workflow = api
        .get(&repo(&format!("/actions/runs?head_sha={first}")))
        .await;
    assert_eq!(workflow.json["total_count"], 1);
    assert_eq!(workflow.json["workflow_runs"][0]["id"], run_id);
    assert_eq!(workflow.json["workflow_runs"][0]["conclusion"], "failure");

    // The log: a 302 to a signed link, which needs no token and ends with the failure.
    let logs = api
        .get(&repo(&format!("/actions/jobs/{job_id}/logs")))
        .await;
    assert_eq!(logs.status, StatusCode::FOUND);
    let location = logs.header("location").to_owned();
    assert!(location.contains("/_blobs/"), "{location}");
    let log = Api::with_authorization(&github, None).get(&location).await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(log.header("content-type").starts_with("text/plain"));
    let lines: Vec<&str> = log.text.lines().collect();
    assert!(lines.len() > 300, "a long log, {} lines", lines.len());
    let tail = lines[lines.len() - 5..].join("\n");
    assert!(tail.contains(FAILURE_MARKER), "{tail}");
    let forged = Api::with_authorization(&github, None)
        .get(&location.replace("sig=", "sig=0"))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // A re-run fails again: the code is what fails.
    let rerun = api
        .post(
            &repo(&format!("/actions/runs/{run_id}/rerun-failed-jobs")),
            json!({}),
        )
        .await;
    assert_eq!(rerun.status, StatusCode::CREATED, "{}", rerun.text);
    assert_eq!(check_runs(&api, &first).await[1], run("test", "failure"));

    let second = fixture.commit("greeting.txt", "hello, world!\n", "fix");
    fixture.push("fix/issue-1");
    api.get(&repo(&format!("/pulls/{n}"))).await;
    assert_eq!(
        check_runs(&api, &second).await,
        [run("lint", "success"), run("test", "success")]
    );
    let suites = api
        .get(&repo(&format!("/commits/{second}/check-suites")))
        .await;
    assert_eq!(suites.json["check_suites"][0]["conclusion"], "success");
    assert_eq!(suites.json["check_suites"][0]["app"]["slug"], ACTIONS_APP);
    github.assert_no_violations();
}

#[tokio::test]
async fn infrastructure_failures_pass_on_a_rerun_of_failed_jobs() {
    for kind in [InfraFailure::Cancelled, InfraFailure::RunnerLost] {
        let fixture = GitFixture::new();
        let github = start(&fixture).await;
        github.set_behaviour(Behaviour {
            actions: ActionsBehaviour::Infra { kind, attempts: 1 },
            ..Default::default()
        });
        let api = Api::new(&github);
        let head = push_branch(&fixture, "fix/issue-1", "greeting.txt", "hello, world\n");
        open_pull(&api, "fix/issue-1").await;

        let runs = api.get(&repo(&format!("/commits/{head}/check-runs"))).await;
        let test = runs.json["check_runs"][1].clone();
        let job = api
            .get(&repo(&format!("/actions/jobs/{}", test["id"])))
            .await
            .json;
        let run_id = job["run_id"].as_u64().expect("run id");
        match kind {
            InfraFailure::Cancelled => assert_eq!(test["conclusion"], "cancelled"),
            InfraFailure::RunnerLost => {
                // Failed, yet no step failed: the runner went away mid-step.
                assert_eq!(test["conclusion"], "failure");
                assert_eq!(test["output"]["summary"], RUNNER_LOST_MESSAGE);
                let steps = job["steps"].as_array().expect("steps");
                assert!(steps.iter().all(|s| s["conclusion"] != "failure"), "{job}");
                assert!(
                    steps.iter().any(|s| s["conclusion"] == "cancelled"),
                    "{job}"
                );
                let location = api
                    .get(&repo(&format!("/actions/jobs/{}/logs", test["id"])))
                    .await
                    .header("location")
                    .to_owned();
                let log = Api::with_authorization(&github, None).get(&location).await;
                assert!(!log.text.contains(FAILURE_MARKER));
            }
        }
        let rerun = api
            .post(
                &repo(&format!("/actions/runs/{run_id}/rerun-failed-jobs")),
                json!({}),
            )
            .await;
        assert_eq!(
            rerun.status,
            StatusCode::CREATED,
            "{kind:?}: {}",
            rerun.text
        );

        assert_eq!(
            check_runs(&api, &head).await,
            [run("lint", "success"), run("test", "success")],
            "{kind:?}"
        );
        let all = api
            .get(&repo(&format!("/commits/{head}/check-runs?filter=all")))
            .await;
        assert_eq!(all.json["total_count"], 3);
        let run = api.get(&repo(&format!("/actions/runs/{run_id}"))).await;
        assert_eq!(run.json["run_attempt"], 2);
        assert_eq!(run.json["conclusion"], "success");
        let jobs = api
            .get(&repo(&format!("/actions/runs/{run_id}/jobs")))
            .await;
        assert_eq!(jobs.json["total_count"], 2);
        let every = api
            .get(&repo(&format!("/actions/runs/{run_id}/jobs?filter=all")))
            .await;
        assert_eq!(every.json["total_count"], 3);
        // Nothing left to re-run.
        let again = api
            .post(
                &repo(&format!("/actions/runs/{run_id}/rerun-failed-jobs")),
                json!({}),
            )
            .await;
        assert_eq!(again.status, StatusCode::FORBIDDEN);
        github.assert_no_violations();
    }
}

#[tokio::test]
async fn other_ci_statuses_make_the_combined_status() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;
    github.set_behaviour(Behaviour {
        statuses: CiBehaviour::FailFirst(1),
        ..Default::default()
    });
    let api = Api::new(&github);
    let head = push_branch(&fixture, "fix/issue-1", "greeting.txt", "hello, world\n");
    let main = fixture.bare_sha("main");

    // No status at all: GitHub says pending, with nothing in it.
    let empty = api.get(&repo(&format!("/commits/{main}/status"))).await;
    assert_eq!(empty.json["state"], "pending");
    assert_eq!(empty.json["total_count"], 0);

    open_pull(&api, "fix/issue-1").await;
    let combined = api.get(&repo(&format!("/commits/{head}/status"))).await;
    assert_eq!(combined.json["state"], "failure");
    assert_eq!(combined.json["statuses"][0]["context"], OTHER_CI_CONTEXT);
    let posted = api
        .post(
            &repo(&format!("/statuses/{head}")),
            json!({"state": "success", "context": OTHER_CI_CONTEXT, "description": "re-run passed"}),
        )
        .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    assert_eq!(posted.json["creator"]["login"], "forgehand-bot");
    let combined = api.get(&repo(&format!("/commits/{head}/status"))).await;
    assert_eq!(combined.json["state"], "success");
    assert_eq!(combined.json["total_count"], 1);
    let listed = api.get(&repo(&format!("/commits/{head}/statuses"))).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(2));
    assert_eq!(
        listed.json[0]["description"], "re-run passed",
        "newest first"
    );

    // A check run from another app is listed beside Actions' (none here).
    let id = github.add_check_run(
        &head,
        CheckRunSpec::completed("codecov", "coverage", "neutral"),
    );
    let runs = check_runs(&api, &head).await;
    assert_eq!(runs, [run("coverage", "neutral")]);
    github.update_check_run(id, "completed", Some("failure"));
    assert_eq!(check_runs(&api, &head).await, [run("coverage", "failure")]);
    assert!(!github.read(|s| s.is_green(&head)));
    github.assert_no_violations();
}

#[tokio::test]
async fn reviewer_requests_changes_once_then_approves_green_heads() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;
    github.set_behaviour(Behaviour {
        actions: ActionsBehaviour::FailFirst(1),
        review: ReviewBehaviour::RequestChangesOnce {
            body: "Please add a comma.".to_owned(),
            comments: vec![("greeting.txt".to_owned(), 1, "Comma here.".to_owned())],
        },
        ..Default::default()
    });
    let api = Api::new(&github);
    let first = push_branch(&fixture, "fix/issue-1", "greeting.txt", "hello world\n");
    let n = open_pull(&api, "fix/issue-1").await;
    assert!(github.reviews(n).is_empty(), "a red head is not reviewed");

    let second = fixture.commit("greeting.txt", "hello world!\n", "green");
    fixture.push("fix/issue-1");
    github
        .wait_until(Duration::from_secs(10), |s| s.forge.reviews(n).count() == 1)
        .await
        .expect("the reviewer reviews the green head");
    let reviews = api.get(&repo(&format!("/pulls/{n}/reviews"))).await;
    assert_eq!(reviews.json[0]["state"], "CHANGES_REQUESTED");
    assert_eq!(reviews.json[0]["user"]["login"], REVIEWER);
    assert_eq!(reviews.json[0]["commit_id"], second.as_str());

    let third = fixture.commit("greeting.txt", "hello, world!\n", "comma");
    fixture.push("fix/issue-1");
    github
        .wait_until(Duration::from_secs(10), |s| s.forge.reviews(n).count() == 2)
        .await
        .expect("the reviewer approves the next green head");
    let reviews = github.reviews(n);
    assert_eq!(reviews[1].state, "APPROVED");
    assert_eq!(reviews[1].commit_id, third);
    assert_ne!(first, second);
    github.assert_no_violations();
}
