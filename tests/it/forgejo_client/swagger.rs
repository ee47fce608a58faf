//! Every request the Forgejo client makes exists in Forgejo 11.0.3's swagger
//! with that method, declared query parameters and body fields (DESIGN section 7).

use forgehand::forge::{CommitSha, Forge, IssueNumber, NewPull, PrNumber};
use serde_json::json;

use super::merge_req;
use super::mock::{Seen, empty, fast, issue, pull, reply, serve};
use crate::swagger::{self, Route, parse_query};

/// Every request the client makes, by trait method, must exist in Forgejo's
/// swagger with that method.
#[tokio::test]
async fn every_request_exists_in_the_swagger() {
    let mock = serve(permissive).await;
    let client = mock.client(fast());
    let n = IssueNumber(1);
    client.current_user().await.unwrap();
    client
        .ensure_labels(&["backlog".into(), "new one".into()])
        .await
        .unwrap();
    client.list_open_issues("backlog").await.unwrap();
    client.get_issue(n).await.unwrap();
    client.issue_dependencies(n).await.unwrap();
    client.add_label(n, "backlog").await.unwrap();
    client.remove_label(n, "backlog").await.unwrap();
    client.list_comments(1).await.unwrap();
    client.create_comment(1, "hello").await.unwrap();
    client.close_issue(n).await.unwrap();
    client.list_open_pulls().await.unwrap();
    client.find_pull("main", "fix/issue-1").await.unwrap();
    client.get_pull(PrNumber(2)).await.unwrap();
    let new = NewPull {
        head: "fix/issue-1".into(),
        base: "main".into(),
        title: "t".into(),
        body: "b".into(),
        draft: false,
    };
    client.create_pull(&new).await.unwrap();
    client.list_reviews(PrNumber(2)).await.unwrap();
    client.list_review_comments(PrNumber(2), 1).await.unwrap();
    client
        .combined_status(&CommitSha("abc".into()))
        .await
        .unwrap();
    client.merge_pull(PrNumber(2), &merge_req()).await.unwrap();
    client.delete_branch("fix/issue-1").await.unwrap();
    client.can_write("alice").await.unwrap();

    let seen = mock.seen();
    assert!(seen.len() >= 20);
    for s in &seen {
        let query = parse_query(&s.query);
        let checked = swagger::forgejo().check(&s.method, &s.path, &query, s.body.as_bytes());
        assert!(
            matches!(checked.route, Route::Matched { .. }) && checked.problems.is_empty(),
            "{} {}?{} does not fit the swagger: {checked:?}",
            s.method,
            s.path,
            s.query
        );
    }
}

/// Answers every endpoint the client uses with a plausible Forgejo shape.
fn permissive(s: &Seen) -> axum::response::Response {
    if s.path == "/api/v1/user" {
        return reply(200, json!({"login": "forgehand"}));
    }
    match (s.method.as_str(), s.repo_segs().as_slice()) {
        ("GET", ["labels"]) => reply(200, json!([{"id": 1, "name": "backlog"}])),
        ("POST", ["labels"]) => reply(201, json!({"id": 2, "name": "new one"})),
        ("POST", ["issues", _, "labels"]) => reply(200, json!([])),
        ("DELETE", ["issues", _, "labels", _]) => empty(204),
        ("GET", ["issues"]) => reply(200, json!([issue(1, &["backlog"], false)])),
        ("GET", ["issues", _]) => reply(200, issue(1, &[], false)),
        ("PATCH", ["issues", _]) => reply(201, issue(1, &[], false)),
        ("GET", ["issues", _, "dependencies"]) => reply(200, json!([issue(3, &[], false)])),
        ("GET", ["issues", _, "comments"]) => reply(200, json!([])),
        ("POST", ["issues", _, "comments"]) => reply(201, json!({"id": 1, "body": "hello"})),
        ("GET", ["pulls"]) => reply(200, json!([pull(2, "fix/issue-1", "main", false)])),
        ("POST", ["pulls"]) => reply(201, pull(2, "fix/issue-1", "main", false)),
        ("GET", ["pulls", _]) => reply(200, pull(2, "fix/issue-1", "main", false)),
        ("GET", ["pulls", _, "reviews"]) => reply(200, json!([{"id": 1, "state": "APPROVED"}])),
        ("GET", ["pulls", _, "reviews", _, "comments"]) => reply(200, json!([])),
        ("POST", ["pulls", _, "merge"]) => empty(200),
        ("GET", ["commits", _, "status"]) => reply(
            200,
            json!({"state": "success", "total_count": 0, "statuses": []}),
        ),
        ("DELETE", ["branches", _]) => empty(204),
        ("GET", ["collaborators", login, "permission"]) => reply(
            200,
            json!({"permission": "write", "role_name": "write", "user": {"login": login}}),
        ),
        _ => reply(418, json!({"message": "not scripted"})),
    }
}
