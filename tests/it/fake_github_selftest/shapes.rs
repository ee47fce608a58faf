//! A sweep over the endpoints the other self-tests leave out, so that every operation the
//! fake serves is shown to answer in the description's shape (the fake validates its own
//! answers; `assert_no_violations` fails on any that is off).

use reqwest::StatusCode;
use serde_json::json;

use super::{Api, open_pull, push_branch, repo, start};
use crate::fake_github::control::CheckRunSpec;
use crate::fake_github::fixture::GitFixture;
use crate::fake_github::{ACTIONS_APP, ActionsBehaviour, Behaviour, HUMAN};

#[tokio::test]
async fn every_served_endpoint_answers_in_the_description_shape() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;
    github.set_behaviour(Behaviour {
        actions: ActionsBehaviour::Succeed,
        ..Default::default()
    });
    let api = Api::new(&github);
    let head = push_branch(&fixture, "fix/issue-1", "greeting.txt", "hello, world\n");
    let n = open_pull(&api, "fix/issue-1").await;
    let expect = |answer: super::Answer, status: StatusCode| {
        assert_eq!(answer.status, status, "{}", answer.text);
        answer
    };

    let full = expect(api.get(&repo("")).await, StatusCode::OK);
    assert_eq!(full.json["default_branch"], "main");
    assert_eq!(full.json["permissions"]["push"], true);
    expect(
        api.get(&repo("/branches/fix/issue-1")).await,
        StatusCode::OK,
    );
    let reference = expect(
        api.get(&repo("/git/ref/heads/fix/issue-1")).await,
        StatusCode::OK,
    );
    assert_eq!(reference.json["object"]["sha"], head.as_str());
    expect(
        api.get(&repo("/git/ref/heads/nope")).await,
        StatusCode::NOT_FOUND,
    );
    let main = fixture.bare_sha("main");
    expect(
        api.post(
            &repo("/git/refs"),
            json!({"ref": "refs/heads/spare", "sha": main}),
        )
        .await,
        StatusCode::CREATED,
    );
    expect(
        api.patch(&repo("/git/refs/heads/spare"), json!({"sha": head}))
            .await,
        StatusCode::OK,
    );
    expect(
        api.patch(&repo("/git/refs/heads/spare"), json!({"sha": main}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    expect(
        api.patch(
            &repo("/git/refs/heads/spare"),
            json!({"sha": main, "force": true}),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(
        github.read(|s| s.forge.git.branch_sha("spare")),
        Some(main.clone())
    );

    expect(
        api.patch(&repo(&format!("/pulls/{n}")), json!({"title": "Greet"}))
            .await,
        StatusCode::OK,
    );
    expect(
        api.get(&repo(&format!("/collaborators/{HUMAN}"))).await,
        StatusCode::NO_CONTENT,
    );
    expect(
        api.get(&repo("/collaborators/stranger")).await,
        StatusCode::NOT_FOUND,
    );

    github.create_label("backlog", "ededed");
    github.create_label("ready", "00ff00");
    let issue = expect(
        api.post(
            &repo("/issues"),
            json!({"title": "Follow-up", "labels": ["backlog"]}),
        )
        .await,
        StatusCode::CREATED,
    );
    let m = issue.json["number"].as_u64().expect("number");
    assert_eq!(issue.json["user"]["login"], "forgehand-bot");
    expect(api.get(&repo("/labels/backlog")).await, StatusCode::OK);
    expect(
        api.get(&repo(&format!("/issues/{m}/labels"))).await,
        StatusCode::OK,
    );
    let set = expect(
        api.put(
            &repo(&format!("/issues/{m}/labels")),
            json!({"labels": ["ready"]}),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(set.json[0]["name"], "ready");
    expect(
        api.delete(&repo(&format!("/issues/{m}/labels"))).await,
        StatusCode::NO_CONTENT,
    );
    assert!(github.issue(m).labels.is_empty());

    let comment = expect(
        api.post(
            &repo(&format!("/issues/{m}/comments")),
            json!({"body": "first"}),
        )
        .await,
        StatusCode::CREATED,
    );
    let id = comment.json["id"].as_u64().expect("id");
    expect(
        api.get(&repo(&format!("/issues/comments/{id}"))).await,
        StatusCode::OK,
    );
    let edited = expect(
        api.patch(
            &repo(&format!("/issues/comments/{id}")),
            json!({"body": "edited"}),
        )
        .await,
        StatusCode::OK,
    );
    assert_eq!(edited.json["body"], "edited");
    expect(
        api.delete(&repo(&format!("/issues/comments/{id}"))).await,
        StatusCode::NO_CONTENT,
    );

    github.add_dependency(m, n);
    expect(
        api.get(&repo(&format!("/issues/{n}/dependencies/blocking")))
            .await,
        StatusCode::OK,
    );
    expect(
        api.delete(&repo(&format!(
            "/issues/{m}/dependencies/blocked_by/{}",
            github.issue_id(n)
        )))
        .await,
        StatusCode::OK,
    );
    assert!(github.issue(m).depends_on.is_empty());

    let runs = expect(
        api.get(&repo(&format!("/commits/{head}/check-runs"))).await,
        StatusCode::OK,
    );
    let check_run = runs.json["check_runs"][0]["id"].as_u64().expect("id");
    let suite = runs.json["check_runs"][0]["check_suite"]["id"]
        .as_u64()
        .expect("suite");
    expect(
        api.get(&repo(&format!("/check-runs/{check_run}"))).await,
        StatusCode::OK,
    );
    expect(
        api.get(&repo(&format!("/check-suites/{suite}"))).await,
        StatusCode::OK,
    );
    let in_suite = expect(
        api.get(&repo(&format!("/check-suites/{suite}/check-runs")))
            .await,
        StatusCode::OK,
    );
    assert_eq!(in_suite.json["total_count"], 2);
    let job = expect(
        api.get(&repo(&format!("/actions/jobs/{check_run}"))).await,
        StatusCode::OK,
    );
    let run_id = job.json["run_id"].as_u64().expect("run");
    expect(
        api.post(
            &repo(&format!("/actions/jobs/{check_run}/rerun")),
            json!({}),
        )
        .await,
        StatusCode::CREATED,
    );
    expect(
        api.post(&repo(&format!("/actions/runs/{run_id}/rerun")), json!({}))
            .await,
        StatusCode::CREATED,
    );
    let run = expect(
        api.get(&repo(&format!("/actions/runs/{run_id}"))).await,
        StatusCode::OK,
    );
    assert_eq!(run.json["run_attempt"], 3);
    let by_status = expect(
        api.get(&repo(
            "/actions/runs?status=success&event=pull_request&branch=fix/issue-1",
        ))
        .await,
        StatusCode::OK,
    );
    assert_eq!(by_status.json["total_count"], 1);

    // A check run the test adds for Actions is a job too, with a log.
    let added = github.add_check_run(
        &head,
        CheckRunSpec::completed(ACTIONS_APP, "e2e", "success"),
    );
    expect(
        api.get(&repo(&format!("/actions/jobs/{added}"))).await,
        StatusCode::OK,
    );
    let logs = expect(
        api.get(&repo(&format!("/actions/jobs/{added}/logs"))).await,
        StatusCode::FOUND,
    );
    assert!(!logs.header("location").is_empty());
    github.assert_no_violations();
}
