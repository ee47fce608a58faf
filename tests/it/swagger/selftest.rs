//! Self-test of the swagger matcher: the real Forgejo and Woodpecker paths forgehand uses
//! are accepted, made-up paths, wrong methods, undeclared query parameters and unknown body
//! fields are not.

use super::{Route, forgejo, woodpecker};

#[test]
fn swagger_matcher_accepts_the_real_paths_and_rejects_others() {
    let s = forgejo();
    let accepted = [
        ("GET", "/api/v1/user"),
        ("GET", "/api/v1/repos/acme/widget/labels"),
        ("POST", "/api/v1/repos/acme/widget/issues"),
        ("PATCH", "/api/v1/repos/acme/widget/issues/4"),
        ("POST", "/api/v1/repos/acme/widget/issues/4/labels"),
        ("DELETE", "/api/v1/repos/acme/widget/issues/4/labels/7"),
        ("GET", "/api/v1/repos/acme/widget/issues/4/comments"),
        ("GET", "/api/v1/repos/acme/widget/issues/4/dependencies"),
        ("POST", "/api/v1/repos/acme/widget/pulls"),
        (
            "GET",
            "/api/v1/repos/acme/widget/pulls/5/reviews/9/comments",
        ),
        ("POST", "/api/v1/repos/acme/widget/pulls/5/merge"),
        ("GET", "/api/v1/repos/acme/widget/commits/abc123/status"),
        ("GET", "/api/v1/repos/acme/widget/commits/abc123/statuses"),
        ("POST", "/api/v1/repos/acme/widget/statuses/abc123"),
    ];
    for (method, path) in accepted {
        let checked = s.check(method, path, &[], b"");
        assert!(
            matches!(checked.route, Route::Matched { .. }),
            "{method} {path}: {checked:?}"
        );
        assert!(
            checked.problems.is_empty(),
            "{method} {path}: {:?}",
            checked.problems
        );
    }

    // Branch names with `/`, raw or encoded, reach the branch endpoint with the full name.
    for path in [
        "/api/v1/repos/acme/widget/branches/fix/issue-42",
        "/api/v1/repos/acme/widget/branches/fix%2Fissue-42",
    ] {
        match s.check("DELETE", path, &[], b"").route {
            Route::Matched { template, params } => {
                assert_eq!(template, "/repos/{owner}/{repo}/branches/{branch}");
                assert_eq!(params["branch"], "fix/issue-42");
            }
            other => panic!("{path}: {other:?}"),
        }
    }

    // A literal segment wins over a parameter.
    match s
        .check(
            "GET",
            "/api/v1/repos/acme/widget/issues/comments/5",
            &[],
            b"",
        )
        .route
    {
        Route::Matched { template, .. } => {
            assert_eq!(template, "/repos/{owner}/{repo}/issues/comments/{id}")
        }
        other => panic!("{other:?}"),
    }

    let made_up = s.check(
        "GET",
        "/api/v1/repos/acme/widget/merge-requests/5",
        &[],
        b"",
    );
    assert_eq!(made_up.route, Route::UnknownPath);
    let wrong_method = s.check("PUT", "/api/v1/repos/acme/widget/pulls/5/merge", &[], b"");
    assert!(matches!(wrong_method.route, Route::MethodNotAllowed { .. }));

    let q = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    let undeclared = s.check(
        "GET",
        "/api/v1/repos/acme/widget/issues",
        &q("per_page", "50"),
        b"",
    );
    assert!(
        undeclared.problems.iter().any(|p| p.contains("per_page")),
        "{undeclared:?}"
    );
    let bad_enum = s.check(
        "GET",
        "/api/v1/repos/acme/widget/issues",
        &q("state", "opened"),
        b"",
    );
    assert_eq!(bad_enum.problems.len(), 1, "{bad_enum:?}");
    let declared = s.check(
        "GET",
        "/api/v1/repos/acme/widget/issues",
        &q("type", "issues"),
        b"",
    );
    assert!(declared.problems.is_empty(), "{declared:?}");

    let body = br#"{"Do": "merge", "delete_branch": true}"#;
    let bad_body = s.check("POST", "/api/v1/repos/acme/widget/pulls/5/merge", &[], body);
    assert!(
        bad_body
            .problems
            .iter()
            .any(|p| p.contains("delete_branch")),
        "{bad_body:?}"
    );
    let missing = s.check(
        "POST",
        "/api/v1/repos/acme/widget/pulls/5/merge",
        &[],
        br#"{"head_commit_id": "x"}"#,
    );
    assert!(
        missing.problems.iter().any(|p| p.contains("\"Do\"")),
        "{missing:?}"
    );
}

#[test]
fn woodpecker_matcher_accepts_the_real_paths_and_rejects_others() {
    let s = woodpecker();
    assert_eq!(s.base_path(), "/api");
    let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let accepted = [
        (
            "GET",
            "/api/repos/7/pipelines",
            q(&[("page", "2"), ("perPage", "50")]),
        ),
        ("GET", "/api/repos/7/pipelines/12", q(&[])),
        ("POST", "/api/repos/7/pipelines/12", q(&[])),
        ("GET", "/api/repos/7/logs/12/345", q(&[])),
    ];
    for (method, path, query) in &accepted {
        let checked = s.check(method, path, query, b"");
        assert!(
            matches!(checked.route, Route::Matched { .. }),
            "{method} {path}: {checked:?}"
        );
        assert!(checked.problems.is_empty(), "{method} {path}: {checked:?}");
    }

    // Forgejo's paths are not Woodpecker's, and the reverse.
    let forgejo_style = s.check("GET", "/api/v1/repos/acme/widget/pulls", &[], b"");
    assert_eq!(forgejo_style.route, Route::UnknownPath);
    let woodpecker_style = forgejo().check("GET", "/api/repos/7/pipelines", &[], b"");
    assert_eq!(woodpecker_style.route, Route::UnknownPath);

    let wrong_method = s.check("PUT", "/api/repos/7/pipelines/12", &[], b"");
    assert!(matches!(wrong_method.route, Route::MethodNotAllowed { .. }));
    // Forgejo's paging names are not Woodpecker's.
    let limit = s.check("GET", "/api/repos/7/pipelines", &q(&[("limit", "50")]), b"");
    assert!(
        limit.problems.iter().any(|p| p.contains("limit")),
        "{limit:?}"
    );
    let not_a_number = s.check("GET", "/api/repos/7/logs/12/abc", &[], b"");
    assert!(
        not_a_number.problems.iter().any(|p| p.contains("step_id")),
        "{not_a_number:?}"
    );
}
