//! The GitHub REST client against a scripted mock server: headers, `Link`
//! paging, pull requests dropped from the issue list, conditional requests,
//! labels, pulls, reviews and who may write, check runs and statuses folded,
//! the merge outcomes, rate limits; the App's sign-in (`app.rs`), Actions as
//! a CI server (`actions.rs`); and that every request exists in GitHub's
//! OpenAPI description.

mod actions;
pub(crate) mod app;
pub(crate) mod mock;

use std::time::Duration;

use chrono::Utc;
use forgehand::forge::{
    CommitSha, Forge, ForgeError, IssueNumber, IssueState, MergeMethod, MergeRequest, NewPull,
    PrNumber, ReviewState, StatusState,
};
use forgehand::http::retry::RetryPolicy;
use mock::{
    Mock, Seen, TOKEN, empty, fast, issue, link_next, merged_pull, not_found, pull, reply, serve,
    with_headers,
};
use serde_json::{Value, json};

use crate::openapi::{self, Route, parse_query};

const HEAD: &str = "abc123abc123abc123abc123abc123abc123abcd";

fn merge_req(sha: &str, delete_branch: bool) -> MergeRequest {
    MergeRequest {
        method: MergeMethod::Squash,
        head_sha: CommitSha(sha.into()),
        delete_branch,
    }
}

/// The mock's own address, from the request (for `Link` headers).
fn base(s: &Seen) -> String {
    format!("http://{}", s.header("host").unwrap())
}

/// Every request `mock` saw exists in GitHub's description with that method,
/// its query parameters and its body (`crate::openapi`, the fake GitHub's judge).
pub fn assert_all_in_openapi(mock: &Mock) {
    for s in mock.seen() {
        let query = parse_query(&s.query);
        let checked = openapi::github().check(&s.method, &s.path, &query, s.body.as_bytes());
        assert!(
            matches!(checked.route, Route::Matched { .. }) && checked.problems.is_empty(),
            "{} {}?{} does not fit GitHub's OpenAPI description: {checked:?}",
            s.method,
            s.path,
            s.query
        );
    }
}

#[tokio::test]
async fn every_request_carries_the_token_and_githubs_headers() {
    let mock = serve(|s: &Seen| match (s.method.as_str(), s.path.as_str()) {
        ("GET", "/user") => reply(200, json!({"login": "forgehand"})),
        ("GET", "/repos/o/r/issues/5") => reply(200, issue(5, &[], false)),
        ("POST", "/repos/o/r/issues/5/comments") => reply(
            201,
            json!({"id": 9, "body": "hi", "user": {"login": "forgehand"}}),
        ),
        _ => not_found(),
    })
    .await;
    let client = mock.client(fast());
    assert_eq!(client.current_user().await.unwrap(), "forgehand");
    let issue = client.get_issue(IssueNumber(5)).await.unwrap();
    assert_eq!(issue.html_url, "https://github.example/o/r/issues/5");
    assert_eq!(
        client.issue_url(IssueNumber(5)),
        "https://github.example/o/r/issues/5",
        "the issue's own page, as GitHub named it"
    );
    let c = client.create_comment(5, "hi").await.unwrap();
    assert_eq!((c.id, c.author.as_str()), (9, "forgehand"));
    assert!(matches!(
        client.get_pull(PrNumber(1)).await,
        Err(ForgeError::NotFound(_))
    ));

    let ua = format!("forgehand/{}", env!("CARGO_PKG_VERSION"));
    for s in mock.seen() {
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(s.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(s.header("x-github-api-version"), Some("2022-11-28"));
        assert_eq!(s.header("user-agent"), Some(ua.as_str()));
    }
    assert_all_in_openapi(&mock);
}

#[tokio::test]
async fn issue_urls_without_an_answer_are_made_from_the_web_address() {
    let client = |url: &str| {
        forgehand::forge::github::GithubClient::new(
            url,
            "o/r",
            forgehand::forge::github::Credentials::Token(TOKEN.into()),
            fast(),
        )
        .unwrap()
    };
    assert_eq!(
        client("https://api.github.com").issue_url(IssueNumber(7)),
        "https://github.com/o/r/issues/7"
    );
    assert_eq!(
        client("https://ghe.example/api/v3").issue_url(IssueNumber(7)),
        "https://ghe.example/o/r/issues/7"
    );
}

#[tokio::test]
async fn lists_every_page_through_link_headers_and_drops_pull_requests() {
    // 250 items over pages of 100, 100, 50; every tenth one is a pull request.
    let mock = serve(|s: &Seen| {
        let page: usize = s.param("page").map_or(1, |p| p.parse().unwrap());
        let items: Vec<Value> = (1..=250u64)
            .skip((page - 1) * 100)
            .take(100)
            .map(|n| issue(n, &["ready to go"], n % 10 == 0))
            .collect();
        let r = reply(200, Value::Array(items));
        if page < 3 {
            let query = "state=open&labels=ready+to+go&per_page=100";
            let link = link_next(&base(s), &s.path, query, page as u32 + 1);
            with_headers(r, &[("link", &link)])
        } else {
            r
        }
    })
    .await;
    let issues = mock
        .client(fast())
        .list_open_issues("ready to go")
        .await
        .unwrap();

    assert_eq!(issues.len(), 225);
    assert!(issues.iter().all(|i| i.number.0 % 10 != 0));
    assert_eq!(issues[0].number, IssueNumber(1));
    assert_eq!(issues[0].author, "alice");
    assert_eq!(issues[0].labels, vec!["ready to go".to_string()]);
    assert_eq!(issues[0].state, IssueState::Open);
    let seen = mock.seen();
    assert_eq!(seen.len(), 3, "three pages: {seen:?}");
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.path, "/repos/o/r/issues");
        assert_eq!(s.param("state").as_deref(), Some("open"));
        assert_eq!(s.param("labels").as_deref(), Some("ready to go"));
        assert_eq!(s.param("per_page").as_deref(), Some("100"));
        assert_eq!(s.param("type"), None, "GitHub's `type` is an issue type");
        if i > 0 {
            assert_eq!(s.param("page"), Some((i + 1).to_string()));
        }
    }
    assert_all_in_openapi(&mock);
}

#[tokio::test]
async fn a_next_page_on_another_host_is_not_followed() {
    let mock = serve(|_: &Seen| {
        with_headers(
            reply(200, json!([issue(1, &[], false)])),
            &[(
                "link",
                "<https://elsewhere.example/repos/o/r/issues?page=2>; rel=\"next\"",
            )],
        )
    })
    .await;
    let err = mock
        .client(fast())
        .list_open_issues("backlog")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another host"), "{err}");
    assert_eq!(mock.seen().len(), 1);
}

#[tokio::test]
async fn an_idle_poll_costs_two_conditional_requests_answered_304() {
    let mock = serve(|s: &Seen| {
        let etag = match s.path.as_str() {
            "/repos/o/r/issues" => "\"issues-v1\"",
            "/repos/o/r/pulls" => "\"pulls-v1\"",
            _ => return not_found(),
        };
        if s.header("if-none-match") == Some(etag) {
            return with_headers(
                empty(304),
                &[
                    ("x-ratelimit-remaining", "4990"),
                    ("x-ratelimit-reset", "2000000000"),
                ],
            );
        }
        let body = if s.path.ends_with("issues") {
            json!([issue(1, &["backlog"], false), issue(2, &["backlog"], true)])
        } else {
            json!([pull(2, "fix/issue-1", HEAD, false)])
        };
        with_headers(
            reply(200, body),
            &[
                ("etag", etag),
                ("x-ratelimit-remaining", "4991"),
                ("x-ratelimit-limit", "5000"),
                ("x-ratelimit-reset", "2000000000"),
            ],
        )
    })
    .await;
    let client = mock.client(fast());
    let first = client.list_open_issues("backlog").await.unwrap();
    let pulls = client.list_open_pulls().await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].mergeable, None, "the list does not say");
    assert!(!pulls[0].merged);
    assert_eq!(
        pulls[0].merge_commit_sha, None,
        "GitHub's test merge commit is not a merge"
    );

    let before = mock.seen().len();
    let again = client.list_open_issues("backlog").await.unwrap();
    let pulls_again = client.list_open_pulls().await.unwrap();
    let idle: Vec<Seen> = mock.seen().split_off(before);
    assert_eq!(idle.len(), 2, "one request per list: {idle:?}");
    assert_eq!(idle[0].header("if-none-match"), Some("\"issues-v1\""));
    assert_eq!(idle[1].header("if-none-match"), Some("\"pulls-v1\""));
    assert_eq!(again, first, "the kept answer");
    assert_eq!(pulls_again, pulls);
    let quota = client.rate_limit().expect("a quota");
    assert_eq!(quota.remaining, 4990, "304s report the quota too");
    assert_eq!(quota.reset.timestamp(), 2_000_000_000);
    assert_all_in_openapi(&mock);
}

#[tokio::test]
async fn labels_are_created_when_missing_and_named_in_paths() {
    let mock = serve(
        |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
            ("GET", ["labels"]) => reply(
                200,
                json!([{"id": 1, "name": "Backlog", "color": "ffffff", "default": false}]),
            ),
            ("POST", ["labels"]) => reply(201, json!({"id": 2, "name": s.json()["name"]})),
            ("POST", ["issues", "3", "labels"]) => reply(200, json!([])),
            ("DELETE", ["issues", "3", "labels", "in%20progress"]) => not_found(),
            _ => reply(418, json!({"message": "not scripted"})),
        },
    )
    .await;
    let client = mock.client(fast());
    client
        .ensure_labels(&["backlog".into(), "blocked".into()])
        .await
        .unwrap();
    let created = mock.hits("POST", "/repos/o/r/labels");
    assert_eq!(created.len(), 1, "backlog exists as Backlog");
    assert_eq!(created[0].json()["name"], "blocked");
    assert_eq!(created[0].json()["color"], "b60205", "no '#' on GitHub");

    client
        .add_label(IssueNumber(3), "in progress")
        .await
        .unwrap();
    let created = mock.hits("POST", "/repos/o/r/labels");
    assert_eq!(created.len(), 2, "made before it is added");
    assert_eq!(created[1].json()["name"], "in progress");
    let added = mock.hits("POST", "/issues/3/labels");
    assert_eq!(added[0].json(), json!({"labels": ["in progress"]}));
    client
        .remove_label(IssueNumber(3), "in progress")
        .await
        .expect("removing a label the issue lacks is fine");
    assert_all_in_openapi(&mock);
}

#[tokio::test]
async fn dependencies_switched_off_are_none() {
    let mock = serve(|s: &Seen| match s.repo_segs().as_slice() {
        ["issues", "1", "dependencies", "blocked_by"] => reply(200, json!([issue(7, &[], false)])),
        ["issues", "2", "dependencies", "blocked_by"] => not_found(),
        ["issues", "3", "dependencies", "blocked_by"] => {
            reply(410, json!({"message": "Issues are disabled"}))
        }
        _ => reply(418, json!({"message": "not scripted"})),
    })
    .await;
    let client = mock.client(fast());
    let deps = client.issue_dependencies(IssueNumber(1)).await.unwrap();
    assert_eq!(deps[0].number, IssueNumber(7));
    assert!(
        client
            .issue_dependencies(IssueNumber(2))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        client
            .issue_dependencies(IssueNumber(3))
            .await
            .unwrap()
            .is_empty()
    );
    assert_all_in_openapi(&mock);
}

#[tokio::test]
async fn pulls_are_created_found_by_owner_and_branch_and_read() {
    let mock = serve(
        |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
            ("POST", ["pulls"]) if s.json()["head"] == "fix/issue-1" => reply(
                422,
                json!({"message": "Validation Failed", "errors": [{
                "resource": "PullRequest", "code": "custom",
                "message": "A pull request already exists for o:fix/issue-1."}]}),
            ),
            ("POST", ["pulls"]) => reply(
                422,
                json!({"message": "Validation Failed", "errors": [{
                "resource": "PullRequest", "field": "head", "code": "invalid"}]}),
            ),
            ("GET", ["pulls"]) => reply(200, json!([pull(4, "fix/issue-1", HEAD, false)])),
            ("GET", ["pulls", "4"]) => {
                let mut p = pull(4, "fix/issue-1", HEAD, true);
                p["mergeable"] = Value::Null;
                reply(200, p)
            }
            _ => reply(418, json!({"message": "not scripted"})),
        },
    )
    .await;
    let client = mock.client(fast());
    let new = |head: &str| NewPull {
        head: head.into(),
        base: "main".into(),
        title: "fix: it".into(),
        body: "Fixes #1".into(),
        draft: false,
    };
    let pr = client.create_pull(&new("fix/issue-1")).await.unwrap();
    assert_eq!(pr.number, PrNumber(4));
    let find = mock.hits("GET", "/repos/o/r/pulls");
    assert_eq!(find[0].param("head").as_deref(), Some("o:fix/issue-1"));
    assert_eq!(find[0].param("base").as_deref(), Some("main"));
    assert_eq!(find[0].param("state").as_deref(), Some("open"));
    let post = &mock.hits("POST", "/repos/o/r/pulls")[0];
    assert_eq!(post.json()["draft"], false);

    match client.create_pull(&new("no-such-branch")).await {
        Err(ForgeError::NotFound(_)) => {}
        other => panic!("a pull request from a missing branch is NotFound: {other:?}"),
    }
    let got = client.get_pull(PrNumber(4)).await.unwrap();
    assert_eq!(got.mergeable, None, "null while GitHub computes it");
    assert_eq!(got.head_sha.0, HEAD);
    assert_eq!(got.head_ref, "fix/issue-1");
    assert!(!got.merged && got.merge_commit_sha.is_none());
    assert_all_in_openapi(&mock);
}

#[tokio::test]
async fn reviews_count_for_writers_and_say_their_lines() {
    let mock = serve(|s: &Seen| match s.repo_segs().as_slice() {
        ["pulls", "4", "reviews"] => reply(
            200,
            json!([
                {"id": 1, "user": {"login": "maya"}, "state": "CHANGES_REQUESTED",
                 "body": "fix it", "commit_id": HEAD, "submitted_at": "2024-05-01T10:00:00Z"},
                {"id": 2, "user": {"login": "maya"}, "state": "APPROVED",
                 "body": "ok", "commit_id": HEAD, "submitted_at": "2024-05-01T11:00:00Z"},
                {"id": 3, "user": {"login": "drive-by"}, "state": "APPROVED",
                 "body": "lgtm", "commit_id": HEAD, "submitted_at": "2024-05-01T12:00:00Z"},
                {"id": 4, "user": {"login": "owner"}, "state": "DISMISSED",
                 "body": "", "commit_id": HEAD, "submitted_at": "2024-05-01T12:30:00Z"},
                {"id": 5, "user": {"login": "lead"}, "state": "COMMENTED",
                 "body": "see inline", "commit_id": HEAD, "submitted_at": null},
            ]),
        ),
        ["pulls", "4", "reviews", "5", "comments"] => reply(
            200,
            json!([
                {"id": 51, "user": {"login": "lead"}, "path": "src/a.rs",
                 "line": 12, "original_line": 10, "position": 4, "body": "rename"},
                {"id": 52, "user": {"login": "lead"}, "path": "src/b.rs",
                 "line": null, "original_line": 3, "position": null, "body": "old"},
            ]),
        ),
        ["collaborators", login, "permission"] => {
            let (permission, role) = match *login {
                "maya" => ("write", "maintain"),
                "owner" => ("admin", "admin"),
                "lead" => ("write", "write"),
                _ => ("read", "triage"),
            };
            reply(
                200,
                json!({"permission": permission, "role_name": role, "user": {"login": login}}),
            )
        }
        _ => reply(418, json!({"message": "not scripted"})),
    })
    .await;
    let client = mock.client(fast());
    let reviews = client.list_reviews(PrNumber(4)).await.unwrap();
    let by_id = |id: u64| reviews.iter().find(|r| r.id == id).unwrap();
    assert_eq!(by_id(1).state, ReviewState::ChangesRequested);
    assert_eq!(by_id(2).state, ReviewState::Approved);
    assert!(by_id(1).official && by_id(2).official);
    assert!(!by_id(3).official, "read access does not count");
    assert!(by_id(4).dismissed);
    assert_eq!(by_id(5).state, ReviewState::Commented);
    assert_eq!(by_id(2).commit_id.0, HEAD);
    assert!(by_id(1).submitted_at < by_id(2).submitted_at);
    // One question per reviewer, kept for the next look.
    assert_eq!(mock.hits("GET", "/permission").len(), 4);
    client.list_reviews(PrNumber(4)).await.unwrap();
    assert_eq!(mock.hits("GET", "/permission").len(), 4);
    assert!(client.can_write("maya").await.unwrap());
    assert!(!client.can_write("drive-by").await.unwrap());
    assert!(!client.can_write("").await.unwrap());

    let lines = client.list_review_comments(PrNumber(4), 5).await.unwrap();
    assert_eq!(lines[0].path, "src/a.rs");
    assert_eq!(lines[0].position, Some(12), "the file's line");
    assert_eq!(lines[1].position, Some(3), "the line it was written on");
    assert_all_in_openapi(&mock);
}

#[tokio::test]
async fn unknown_accounts_do_not_write() {
    let mock = serve(|s: &Seen| match s.repo_segs().as_slice() {
        ["collaborators", "ghost", "permission"] => not_found(),
        ["collaborators", _, "permission"] => reply(
            403,
            json!({"message": "Resource not accessible by integration"}),
        ),
        _ => reply(418, json!({"message": "not scripted"})),
    })
    .await;
    let client = mock.client(fast());
    assert!(!client.can_write("ghost").await.unwrap());
    assert!(!client.can_write("someone").await.unwrap());
}

/// A mock answering check runs and the combined status of `HEAD` as given.
async fn statuses(runs: Value, combined: Value) -> Mock {
    serve(move |s: &Seen| match s.repo_segs().as_slice() {
        ["commits", HEAD, "check-runs"] => reply(200, runs.clone()),
        ["commits", HEAD, "status"] => reply(200, combined.clone()),
        _ => reply(418, json!({"message": "not scripted"})),
    })
    .await
}

fn run(name: &str, status: &str, conclusion: Option<&str>) -> Value {
    json!({
        "id": name.len(), "name": name, "head_sha": HEAD, "status": status,
        "conclusion": conclusion,
        "html_url": format!("https://github.example/o/r/runs/{name}"),
        "details_url": "https://ci.example/details",
        "output": {"title": format!("{name} says"), "summary": "more"},
        "app": {"slug": "github-actions"},
    })
}

fn runs(list: Vec<Value>) -> Value {
    json!({"total_count": list.len(), "check_runs": list})
}

fn combined(state: &str, statuses: Vec<Value>) -> Value {
    json!({"state": state, "sha": HEAD, "total_count": statuses.len(), "statuses": statuses})
}

fn status(context: &str, state: &str) -> Value {
    json!({"context": context, "state": state, "description": format!("{context} is {state}"),
           "target_url": "https://ci.example/1"})
}

#[tokio::test]
async fn check_runs_and_statuses_fold_into_one_verdict() {
    let sha = CommitSha(HEAD.into());
    let verdict = async |runs: Value, combined: Value| {
        let mock = statuses(runs, combined).await;
        let folded = mock.client(fast()).combined_status(&sha).await.unwrap();
        assert_all_in_openapi(&mock);
        folded
    };
    let none = verdict(runs(vec![]), combined("pending", vec![])).await;
    assert_eq!(none.state, None, "nothing reported yet");

    let green = verdict(
        runs(vec![
            run("build", "completed", Some("success")),
            run("lint", "completed", Some("neutral")),
            run("docs", "completed", Some("skipped")),
        ]),
        combined("pending", vec![]),
    )
    .await;
    assert_eq!(green.state, Some(StatusState::Success), "{green:?}");

    let running = verdict(
        runs(vec![
            run("build", "completed", Some("failure")),
            run("test", "in_progress", None),
        ]),
        combined("pending", vec![]),
    )
    .await;
    assert_eq!(running.state, Some(StatusState::Pending));
    let queued = verdict(
        runs(vec![run("test", "queued", None)]),
        combined("success", vec![status("ext", "success")]),
    )
    .await;
    assert_eq!(queued.state, Some(StatusState::Pending));

    let red = verdict(
        runs(vec![
            run("build", "completed", Some("success")),
            run("test", "completed", Some("failure")),
            run("e2e", "completed", Some("timed_out")),
        ]),
        combined("pending", vec![]),
    )
    .await;
    assert_eq!(red.state, Some(StatusState::Failure));
    let test = red.statuses.iter().find(|s| s.context == "test").unwrap();
    assert_eq!(test.state, StatusState::Failure);
    assert_eq!(test.description, "test says");
    assert_eq!(test.target_url, "https://github.example/o/r/runs/test");
    let e2e = red.statuses.iter().find(|s| s.context == "e2e").unwrap();
    assert_eq!(e2e.state, StatusState::Error);

    let green_runs = || runs(vec![run("build", "completed", Some("success"))]);
    let both = verdict(
        green_runs(),
        combined("success", vec![status("ext", "success")]),
    )
    .await;
    assert_eq!(both.state, Some(StatusState::Success));
    let waiting = verdict(
        green_runs(),
        combined("pending", vec![status("ext", "pending")]),
    )
    .await;
    assert_eq!(waiting.state, Some(StatusState::Pending));
    let failed = verdict(
        green_runs(),
        combined("failure", vec![status("ext", "failure")]),
    )
    .await;
    assert_eq!(failed.state, Some(StatusState::Failure));
    assert!(
        failed
            .statuses
            .iter()
            .any(|s| s.context == "ext" && s.state == StatusState::Failure)
    );
    let outside = verdict(
        runs(vec![]),
        combined("success", vec![status("ext", "success")]),
    )
    .await;
    assert_eq!(outside.state, Some(StatusState::Success), "statuses alone");
}

#[tokio::test]
async fn check_runs_are_read_over_every_page() {
    let mock = serve(|s: &Seen| match s.repo_segs().as_slice() {
        ["commits", HEAD, "check-runs"] => {
            let page: u32 = s.param("page").map_or(1, |p| p.parse().unwrap());
            if page == 1 {
                let link = link_next(&base(s), &s.path, "per_page=100", 2);
                let list: Vec<Value> = (0..100)
                    .map(|i| run(&format!("job{i}"), "completed", Some("success")))
                    .collect();
                with_headers(reply(200, runs(list)), &[("link", &link)])
            } else {
                reply(200, runs(vec![run("last", "completed", Some("failure"))]))
            }
        }
        ["commits", HEAD, "status"] => reply(200, combined("pending", vec![])),
        _ => reply(418, json!({"message": "not scripted"})),
    })
    .await;
    let folded = mock
        .client(fast())
        .combined_status(&CommitSha(HEAD.into()))
        .await
        .unwrap();
    assert_eq!(folded.statuses.len(), 101);
    assert_eq!(
        folded.state,
        Some(StatusState::Failure),
        "the second page fails"
    );
}

/// A mock whose merge answers `status`, and whose pull request is then `after`.
async fn merging(status: u16, after: Value) -> Mock {
    serve(move |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
        ("PUT", ["pulls", "4", "merge"]) => match status {
            200 => reply(
                200,
                json!({"sha": "merged999", "merged": true, "message": "Pull Request successfully merged"}),
            ),
            405 => reply(405, json!({"message": "Pull Request is not mergeable"})),
            409 => reply(
                409,
                json!({"message": "Head branch was modified. Review and try the merge again."}),
            ),
            other => empty(other),
        },
        ("GET", ["pulls", "4"]) => reply(200, after.clone()),
        ("DELETE", ["git", "refs", "heads", ..]) => empty(204),
        _ => reply(418, json!({"message": "not scripted"})),
    })
    .await
}

#[tokio::test]
async fn a_merge_sends_the_approved_head_and_deletes_the_branch() {
    let mock = merging(200, merged_pull(4, "fix/issue-4", HEAD)).await;
    let client = mock.client(fast());
    client
        .merge_pull(PrNumber(4), &merge_req(HEAD, true))
        .await
        .unwrap();
    let put = &mock.hits("PUT", "/pulls/4/merge")[0];
    assert_eq!(put.json(), json!({"sha": HEAD, "merge_method": "squash"}));
    let deleted = mock.hits("DELETE", "");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].path, "/repos/o/r/git/refs/heads/fix/issue-4");
    let merged = client.get_pull(PrNumber(4)).await.unwrap();
    assert!(merged.merged);
    assert_eq!(merged.state, IssueState::Closed);
    assert_eq!(merged.merge_commit_sha, Some(CommitSha("merged999".into())));
    assert_all_in_openapi(&mock);

    // Without delete_branch, and for a fork's branch, nothing is deleted.
    let mock = merging(200, merged_pull(4, "fix/issue-4", HEAD)).await;
    let client = mock.client(fast());
    client
        .merge_pull(PrNumber(4), &merge_req(HEAD, false))
        .await
        .unwrap();
    assert!(mock.hits("DELETE", "").is_empty());
    let mut forked = merged_pull(4, "main", HEAD);
    forked["head"]["repo"]["full_name"] = json!("stranger/r");
    let mock = merging(200, forked).await;
    mock.client(fast())
        .merge_pull(PrNumber(4), &merge_req(HEAD, true))
        .await
        .unwrap();
    assert!(mock.hits("DELETE", "").is_empty(), "not our branch");
}

#[tokio::test]
async fn merge_refusals_are_read_against_the_pull_request() {
    let outcome = async |status: u16, after: Value| {
        let mock = merging(status, after).await;
        let result = mock
            .client(fast())
            .merge_pull(PrNumber(4), &merge_req(HEAD, true))
            .await;
        assert!(mock.hits("DELETE", "").is_empty());
        result
    };
    assert!(matches!(
        outcome(405, merged_pull(4, "fix/issue-4", HEAD)).await,
        Err(ForgeError::AlreadyMerged)
    ));
    match outcome(405, pull(4, "fix/issue-4", HEAD, true)).await {
        Err(ForgeError::Conflict(why)) => assert!(why.contains("not mergeable"), "{why}"),
        other => panic!("{other:?}"),
    }
    match outcome(409, pull(4, "fix/issue-4", "moved000", true)).await {
        Err(ForgeError::Conflict(why)) => assert!(why.contains("moved000"), "{why}"),
        other => panic!("a moved head is a conflict: {other:?}"),
    }
    match outcome(409, pull(4, "fix/issue-4", HEAD, true)).await {
        Err(e @ ForgeError::Unavailable(_)) => assert!(e.is_transient()),
        other => panic!("the base moved: try again later: {other:?}"),
    }
    assert!(matches!(
        outcome(409, merged_pull(4, "fix/issue-4", HEAD)).await,
        Err(ForgeError::AlreadyMerged)
    ));
}

#[tokio::test]
async fn deleting_a_branch_already_gone_is_fine() {
    let mock = serve(|_: &Seen| reply(422, json!({"message": "Reference does not exist"}))).await;
    mock.client(fast())
        .delete_branch("fix/issue-9")
        .await
        .unwrap();
    assert_eq!(mock.seen()[0].path, "/repos/o/r/git/refs/heads/fix/issue-9");
    assert_all_in_openapi(&mock);
}

/// Rate-limit headers for a spent quota that is full again at `reset`.
fn spent(reset: i64) -> [(&'static str, String); 3] {
    [
        ("x-ratelimit-remaining", "0".into()),
        ("x-ratelimit-limit", "5000".into()),
        ("x-ratelimit-reset", reset.to_string()),
    ]
}

fn headers<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn a_spent_quota_is_waited_out_until_its_reset() {
    let mock = serve(move |s: &Seen| match s.nth {
        // From when the request arrives, not when the test began: on a
        // loaded machine the first request can come a second later.
        0 => with_headers(
            reply(
                403,
                json!({"message": "API rate limit exceeded for user ID 1."}),
            ),
            &headers(&spent(Utc::now().timestamp() + 2)),
        ),
        _ => with_headers(
            reply(200, json!({"login": "forgehand"})),
            &[
                ("x-ratelimit-remaining", "4999"),
                ("x-ratelimit-limit", "5000"),
                ("x-ratelimit-reset", "2000000000"),
            ],
        ),
    })
    .await;
    let client = mock.client(fast());
    let mut updates = client.rate_limits();
    assert_eq!(client.current_user().await.unwrap(), "forgehand");
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(900), "retried after {gap:?}");
    let quota = client.rate_limit().unwrap();
    assert_eq!((quota.remaining, quota.limit), (4999, Some(5000)));
    assert!(updates.has_changed().unwrap());
    assert_eq!(updates.borrow_and_update().unwrap().remaining, 4999);
}

#[tokio::test]
async fn a_quota_spent_for_longer_than_the_cap_is_rate_limited_at_once() {
    let reset = Utc::now().timestamp() + 3600;
    let mock = serve(move |_: &Seen| {
        with_headers(
            reply(429, json!({"message": "API rate limit exceeded"})),
            &headers(&spent(reset)),
        )
    })
    .await;
    let client = mock.client(fast());
    let err = client.get_issue(IssueNumber(1)).await.unwrap_err();
    match &err {
        ForgeError::RateLimited {
            retry_after: Some(wait),
        } => assert!(*wait > Duration::from_secs(3000), "{wait:?}"),
        other => panic!("{other:?}"),
    }
    assert!(err.is_transient());
    assert_eq!(
        mock.seen().len(),
        1,
        "no point asking again before the reset"
    );
    assert_eq!(client.rate_limit().unwrap().remaining, 0);
}

#[tokio::test]
async fn secondary_limits_are_honoured() {
    // With Retry-After.
    let mock = serve(|s: &Seen| match s.nth {
        0 => with_headers(
            reply(
                403,
                json!({"message": "You have exceeded a secondary rate limit."}),
            ),
            &[("retry-after", "1"), ("x-ratelimit-remaining", "4000")],
        ),
        _ => reply(200, json!({"login": "forgehand"})),
    })
    .await;
    mock.client(fast()).current_user().await.unwrap();
    let seen = mock.seen();
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(950));

    // Without: GitHub asks for a minute, waited up to the policy's cap.
    let mock = serve(|s: &Seen| match s.nth {
        0 => with_headers(
            reply(
                403,
                json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
            ),
            &[("x-ratelimit-remaining", "4000")],
        ),
        _ => reply(200, json!({"login": "forgehand"})),
    })
    .await;
    let policy = RetryPolicy {
        max_retry_after: Duration::from_millis(300),
        ..fast()
    };
    mock.client(policy).current_user().await.unwrap();
    let seen = mock.seen();
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(290));
}

#[tokio::test]
async fn a_forbidden_answer_with_quota_left_is_not_a_rate_limit() {
    let mock = serve(|_: &Seen| {
        with_headers(
            reply(
                403,
                json!({"message": "Resource not accessible by personal access token"}),
            ),
            &[
                ("x-ratelimit-remaining", "4000"),
                ("x-ratelimit-reset", "2000000000"),
            ],
        )
    })
    .await;
    let err = mock
        .client(fast())
        .close_issue(IssueNumber(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized(_)), "{err}");
    assert_eq!(mock.seen().len(), 1);
}

#[tokio::test]
async fn a_comment_whose_answer_was_lost_is_found_not_posted_twice() {
    let mock = serve(|s: &Seen| match (s.method.as_str(), s.path.as_str()) {
        ("GET", "/user") => reply(200, json!({"login": "forgehand"})),
        ("POST", "/repos/o/r/issues/3/comments") => reply(500, json!({"message": "oops"})),
        ("GET", "/repos/o/r/issues/3/comments") => reply(
            200,
            json!([{"id": 77, "body": "hello", "user": {"login": "forgehand"},
                    "created_at": "2024-05-01T10:00:00Z"}]),
        ),
        _ => reply(418, json!({"message": "not scripted"})),
    })
    .await;
    let c = mock
        .client(fast())
        .create_comment(3, "hello")
        .await
        .unwrap();
    assert_eq!(c.id, 77);
    assert_eq!(mock.hits("POST", "/comments").len(), 1);
    let look = &mock.hits("GET", "/issues/3/comments")[0];
    assert!(look.param("since").is_some());
    assert_all_in_openapi(&mock);
}
