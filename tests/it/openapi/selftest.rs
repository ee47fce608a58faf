//! Self-test of the OpenAPI checker: the GitHub paths forgehand may use are accepted
//! (refs with `/` in them included), made-up paths, wrong methods, undeclared or
//! mistyped query parameters and malformed bodies are not, and answers are validated
//! against the response schemas.

use serde_json::json;

use super::{Route, github};

fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn template_of(method: &str, path: &str) -> (String, std::collections::HashMap<String, String>) {
    match github().check(method, path, &[], b"").route {
        Route::Matched { template, params } => (template, params),
        other => panic!("{method} {path}: {other:?}"),
    }
}

#[test]
fn openapi_checker_accepts_the_real_paths() {
    let accepted = [
        ("GET", "/user"),
        ("GET", "/rate_limit"),
        ("GET", "/app"),
        ("POST", "/app/installations/42/access_tokens"),
        ("GET", "/repos/acme/widget"),
        ("GET", "/repos/acme/widget/labels"),
        ("GET", "/repos/acme/widget/issues"),
        ("GET", "/repos/acme/widget/issues/4"),
        ("GET", "/repos/acme/widget/issues/comments"),
        ("DELETE", "/repos/acme/widget/issues/4/labels/in-progress"),
        ("GET", "/repos/acme/widget/issues/4/dependencies/blocked_by"),
        ("GET", "/repos/acme/widget/pulls/5/reviews"),
        ("GET", "/repos/acme/widget/pulls/5/comments"),
        ("GET", "/repos/acme/widget/commits/abc123/check-runs"),
        ("GET", "/repos/acme/widget/commits/abc123/status"),
        ("GET", "/repos/acme/widget/actions/runs/7/jobs"),
        ("GET", "/repos/acme/widget/actions/jobs/8/logs"),
        (
            "POST",
            "/repos/acme/widget/actions/runs/7/rerun-failed-jobs",
        ),
        ("GET", "/repos/acme/widget/collaborators/bob/permission"),
        ("DELETE", "/repos/acme/widget/git/refs/heads/fix/issue-4"),
    ];
    for (method, path) in accepted {
        let checked = github().check(method, path, &[], b"");
        assert!(
            matches!(checked.route, Route::Matched { .. }),
            "{method} {path}: {checked:?}"
        );
        assert!(checked.problems.is_empty(), "{method} {path}: {checked:?}");
    }

    // Refs and branch names with `/`, anywhere in the path, raw or encoded.
    let (template, params) =
        template_of("GET", "/repos/acme/widget/commits/fix/issue-4/check-runs");
    assert_eq!(template, "/repos/{owner}/{repo}/commits/{ref}/check-runs");
    assert_eq!(params["ref"], "fix/issue-4");
    let (template, params) = template_of("GET", "/repos/acme/widget/commits/fix%2Fissue-4/status");
    assert_eq!(template, "/repos/{owner}/{repo}/commits/{ref}/status");
    assert_eq!(params["ref"], "fix/issue-4");
    let (template, params) = template_of("GET", "/repos/acme/widget/git/ref/heads/fix/issue-4");
    assert_eq!(template, "/repos/{owner}/{repo}/git/ref/{ref}");
    assert_eq!(params["ref"], "heads/fix/issue-4");
    let (template, params) = template_of("GET", "/repos/acme/widget/branches/fix/issue-4");
    assert_eq!(template, "/repos/{owner}/{repo}/branches/{branch}");
    assert_eq!(params["branch"], "fix/issue-4");
    // The longer template wins over a ref swallowing its last segment.
    let (template, params) = template_of("GET", "/repos/acme/widget/commits/abc/status");
    assert_eq!(template, "/repos/{owner}/{repo}/commits/{ref}/status");
    assert_eq!(params["ref"], "abc");
    // A literal wins over a parameter.
    let (template, _) = template_of("GET", "/repos/acme/widget/issues/comments/9");
    assert_eq!(
        template,
        "/repos/{owner}/{repo}/issues/comments/{comment_id}"
    );
    // `{repo}` never spans.
    assert_eq!(
        github()
            .check("GET", "/repos/acme/widget/extra", &[], b"")
            .route,
        Route::UnknownPath
    );
}

#[test]
fn openapi_checker_rejects_what_github_does_not_have() {
    let s = github();
    // Forgejo's paths are not GitHub's.
    assert_eq!(
        s.check("GET", "/api/v1/repos/acme/widget/issues", &[], b"")
            .route,
        Route::UnknownPath
    );
    assert_eq!(
        s.check("GET", "/repos/acme/widget/issues/4/dependencies", &[], b"")
            .route,
        Route::UnknownPath
    );
    // GitHub merges with PUT, Forgejo with POST.
    let wrong = s.check("POST", "/repos/acme/widget/pulls/5/merge", &[], b"");
    assert!(
        matches!(wrong.route, Route::MethodNotAllowed { .. }),
        "{wrong:?}"
    );
    assert_eq!(wrong.problems.len(), 1);

    // Query: Forgejo's paging name, an enum value that is not GitHub's, a non-integer.
    let limit = s.check(
        "GET",
        "/repos/acme/widget/issues",
        &q(&[("limit", "50")]),
        b"",
    );
    assert!(
        limit.problems.iter().any(|p| p.contains("limit")),
        "{limit:?}"
    );
    let state = s.check(
        "GET",
        "/repos/acme/widget/issues",
        &q(&[("state", "opened")]),
        b"",
    );
    assert!(
        state.problems.iter().any(|p| p.contains("opened")),
        "{state:?}"
    );
    let filter = s.check(
        "GET",
        "/repos/acme/widget/commits/abc/check-runs",
        &q(&[("filter", "newest")]),
        b"",
    );
    assert_eq!(filter.problems.len(), 1, "{filter:?}");
    let page = s.check(
        "GET",
        "/repos/acme/widget/pulls",
        &q(&[("per_page", "many")]),
        b"",
    );
    assert_eq!(page.problems.len(), 1, "{page:?}");
    let fine = s.check(
        "GET",
        "/repos/acme/widget/issues",
        &q(&[
            ("state", "open"),
            ("labels", "a,b"),
            ("per_page", "100"),
            ("page", "2"),
        ]),
        b"",
    );
    assert!(fine.problems.is_empty(), "{fine:?}");
    // Path parameters are typed too.
    let not_a_number = s.check("GET", "/repos/acme/widget/issues/four", &[], b"");
    assert!(
        not_a_number
            .problems
            .iter()
            .any(|p| p.contains("issue_number")),
        "{not_a_number:?}"
    );
}

#[test]
fn openapi_checker_checks_bodies_against_the_request_schema() {
    let s = github();
    let merge = "/repos/acme/widget/pulls/5/merge";
    let body = |v: serde_json::Value| v.to_string().into_bytes();

    let ok = s.check(
        "PUT",
        merge,
        &[],
        &body(json!({"sha": "abc", "merge_method": "squash"})),
    );
    assert!(ok.problems.is_empty(), "{ok:?}");
    // The body of this operation is optional and nullable.
    assert!(s.check("PUT", merge, &[], b"").problems.is_empty());
    assert!(s.check("PUT", merge, &[], b"null").problems.is_empty());
    // Forgejo's merge body is not GitHub's.
    let forgejo = s.check(
        "PUT",
        merge,
        &[],
        &body(json!({"Do": "merge", "head_commit_id": "abc"})),
    );
    assert_eq!(forgejo.problems.len(), 2, "{forgejo:?}");
    let method = s.check(
        "PUT",
        merge,
        &[],
        &body(json!({"merge_method": "fast-forward"})),
    );
    assert!(
        method.problems.iter().any(|p| p.contains("fast-forward")),
        "{method:?}"
    );
    let typed = s.check("PUT", merge, &[], &body(json!({"sha": 12})));
    assert!(
        typed.problems.iter().any(|p| p.contains("sha")),
        "{typed:?}"
    );
    let not_json = s.check("PUT", merge, &[], b"sha=abc");
    assert!(
        not_json.problems.iter().any(|p| p.contains("not JSON")),
        "{not_json:?}"
    );

    // Required properties and required bodies.
    let labels = "/repos/acme/widget/labels";
    let missing = s.check("POST", labels, &[], &body(json!({"color": "ededed"})));
    assert!(
        missing.problems.iter().any(|p| p.contains("\"name\"")),
        "{missing:?}"
    );
    let none = s.check("POST", labels, &[], b"");
    assert!(
        none.problems.iter().any(|p| p.contains("requires a body")),
        "{none:?}"
    );
    let get_with_body = s.check("GET", labels, &[], &body(json!({"name": "x"})));
    assert!(
        get_with_body
            .problems
            .iter()
            .any(|p| p.contains("takes no body")),
        "{get_with_body:?}"
    );

    // `oneOf`: labels by name, as strings or `{"name"}` objects, in an object; not by id,
    // and not as the bare array older descriptions allowed.
    let issue_labels = "/repos/acme/widget/issues/4/labels";
    for method in ["POST", "PUT"] {
        for good in [
            json!({"labels": ["backlog"]}),
            json!({"labels": [{"name": "backlog"}]}),
        ] {
            let checked = s.check(method, issue_labels, &[], &body(good.clone()));
            assert!(checked.problems.is_empty(), "{method} {good}: {checked:?}");
        }
        let bare = s.check(method, issue_labels, &[], &body(json!(["backlog"])));
        assert_eq!(bare.problems.len(), 1, "{method}: {bare:?}");
    }
    let by_id = s.check("PUT", issue_labels, &[], &body(json!({"label_ids": [1]})));
    assert_eq!(by_id.problems.len(), 1, "{by_id:?}");
    assert!(
        by_id.problems[0].contains("none of the 2 forms"),
        "{by_id:?}"
    );

    // `anyOf` beside properties: a completed check run needs a conclusion.
    let check_run = "/repos/acme/widget/check-runs/9";
    let incomplete = s.check(
        "PATCH",
        check_run,
        &[],
        &body(json!({"status": "completed"})),
    );
    assert_eq!(incomplete.problems.len(), 1, "{incomplete:?}");
    let complete = s.check(
        "PATCH",
        check_run,
        &[],
        &body(json!({"status": "completed", "conclusion": "success"})),
    );
    assert!(complete.problems.is_empty(), "{complete:?}");
    let started = s.check(
        "PATCH",
        check_run,
        &[],
        &body(json!({"status": "in_progress"})),
    );
    assert!(started.problems.is_empty(), "{started:?}");
}

#[test]
fn openapi_checker_validates_answers_against_response_schemas() {
    let s = github();
    let template = "/repos/{owner}/{repo}/pulls/{pull_number}/merge";
    let good = json!({"sha": "abc", "merged": true, "message": "Pull Request successfully merged"});
    assert!(s.check_response("PUT", template, 200, &good).is_empty());
    let missing = s.check_response("PUT", template, 200, &json!({"merged": true}));
    assert_eq!(missing.len(), 2, "{missing:?}");
    let typo = s.check_response(
        "PUT",
        template,
        200,
        &json!({"sha": "abc", "merged": "yes", "message": "", "mergd": 1}),
    );
    assert_eq!(typo.len(), 2, "{typo:?}");

    // Nested: a permission answer's user must be a full collaborator object.
    let permission = "/repos/{owner}/{repo}/collaborators/{username}/permission";
    let bad_user = s.check_response(
        "GET",
        permission,
        200,
        &json!({"permission": "write", "role_name": "write", "user": {"login": "bob"}}),
    );
    assert!(
        bad_user.iter().any(|p| p.starts_with("$.user.id")),
        "{bad_user:?}"
    );
    // Enums: a check run's conclusion.
    let runs = "/repos/{owner}/{repo}/commits/{ref}/check-runs";
    let odd = s.check_response(
        "GET",
        runs,
        200,
        &json!({"total_count": 0, "check_runs": [{"conclusion": "green"}]}),
    );
    assert!(odd.iter().any(|p| p.contains("green")), "{odd:?}");
    // A status the operation does not declare.
    assert!(!s.check_response("GET", runs, 201, &json!({})).is_empty());
}
