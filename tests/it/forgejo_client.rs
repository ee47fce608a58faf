//! The Forgejo REST client against a scripted mock server: pagination, headers,
//! the retry policy, error mapping, the merge/PR/label special cases, write
//! access, and that every request it makes exists in Forgejo's swagger.

mod mock;
mod swagger;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use forgehand::forge::{
    CommitSha, Forge, ForgeError, IssueNumber, IssueState, MergeMethod, MergeRequest, NewPull,
    PrNumber, ReviewState, StatusState,
};
use forgehand::http::retry::RetryPolicy;
use mock::{Seen, TOKEN, empty, fast, html, issue, not_found, pull, reply, serve, with_headers};
use serde_json::{Value, json};

fn merge_req() -> MergeRequest {
    MergeRequest {
        method: MergeMethod::Squash,
        head_sha: CommitSha("abc123".into()),
        delete_branch: true,
    }
}

#[tokio::test]
async fn lists_every_page_and_drops_pull_requests() {
    // 120 items over pages of 50, 50, 20; every tenth one is a pull request.
    let mock = serve(|s: &Seen| {
        let page: u64 = s.param("page").unwrap().parse().unwrap();
        let limit: u64 = s.param("limit").unwrap().parse().unwrap();
        let items: Vec<Value> = (1..=120u64)
            .skip(((page - 1) * limit) as usize)
            .take(limit as usize)
            .map(|n| issue(n, &["ready to go"], n % 10 == 0))
            .collect();
        reply(200, Value::Array(items))
    })
    .await;
    let issues = mock
        .client(fast())
        .list_open_issues("ready to go")
        .await
        .unwrap();

    assert_eq!(issues.len(), 108);
    assert!(issues.iter().all(|i| i.number.0 % 10 != 0));
    assert_eq!(issues[0].number, IssueNumber(1));
    assert_eq!(issues[0].author, "alice");
    assert_eq!(issues[0].body, "");
    assert_eq!(issues[0].labels, vec!["ready to go".to_string()]);
    assert_eq!(issues[0].state, IssueState::Open);
    assert_eq!(
        issues[0].created_at.to_rfc3339(),
        "2024-05-01T08:00:00+00:00"
    );
    let seen = mock.seen();
    assert_eq!(seen.len(), 3, "three pages: {seen:?}");
    for (i, s) in seen.iter().enumerate() {
        assert_eq!(s.path, "/api/v1/repos/o/r/issues");
        assert_eq!(s.param("page").unwrap(), (i + 1).to_string());
        assert_eq!(s.param("limit").as_deref(), Some("50"));
        assert_eq!(s.param("state").as_deref(), Some("open"));
        assert_eq!(s.param("type").as_deref(), Some("issues"));
        assert_eq!(s.param("labels").as_deref(), Some("ready to go"));
        assert!(!s.query.contains(' '), "query is encoded: {}", s.query);
    }
}

/// A forge that ignores `since` answers a look for changes with the whole
/// history: seen from issues older than asked for, and from then on the
/// backlog is read whole, the answer still right.
#[tokio::test]
async fn a_forge_ignoring_since_is_read_whole() {
    // Three issues stamped an hour apart; `since` makes no difference here.
    let mock = serve(|_: &Seen| {
        let items: Vec<Value> = (1..=3u64)
            .map(|n| {
                let mut item = issue(n, &["backlog"], false);
                item["updated_at"] = json!(format!("2024-05-01T0{n}:00:00Z"));
                item
            })
            .collect();
        reply(200, Value::Array(items))
    })
    .await;
    let client = mock.client(fast());
    for _ in 0..3 {
        let issues = client.list_open_issues("backlog").await.unwrap();
        assert_eq!(issues.len(), 3);
    }
    let asked_since: Vec<bool> = mock
        .hits("GET", "/issues")
        .iter()
        .map(|s| s.param("since").is_some())
        .collect();
    // Whole; changes, seen to be ignored, then whole; whole from then on.
    assert_eq!(asked_since, [false, true, false, false]);
}

#[tokio::test]
async fn total_count_header_keeps_paging_past_short_pages() {
    // A forge whose page cap (30) is below the client's limit: pages are short,
    // but X-Total-Count says more remain.
    let mock = serve(|s: &Seen| {
        let page: usize = s.param("page").unwrap().parse().unwrap();
        let items: Vec<Value> = (1..=70u64)
            .skip((page - 1) * 30)
            .take(30)
            .map(|n| json!({"id": n, "name": format!("l{n}")}))
            .collect();
        with_headers(reply(200, Value::Array(items)), &[("x-total-count", "70")])
    })
    .await;
    let client = mock.client(fast());
    client.ensure_labels(&["l70".to_string()]).await.unwrap();
    assert_eq!(mock.seen().len(), 3, "three pages, no label created");
}

#[tokio::test]
async fn every_request_carries_token_accept_and_user_agent() {
    let mock = serve(|s: &Seen| match (s.method.as_str(), s.path.as_str()) {
        ("GET", "/api/v1/user") => reply(200, json!({"login": "forgehand"})),
        ("GET", p) if p.ends_with("/issues/5") => reply(200, issue(5, &[], false)),
        ("POST", _) => reply(
            201,
            json!({"id": 9, "body": "hi", "user": {"login": "forgehand"}}),
        ),
        _ => not_found(),
    })
    .await;
    let client = mock.client(fast());
    assert_eq!(client.current_user().await.unwrap(), "forgehand");
    client.get_issue(IssueNumber(5)).await.unwrap();
    let c = client.create_comment(5, "hi").await.unwrap();
    assert_eq!(
        (c.id, c.author.as_str(), c.body.as_str()),
        (9, "forgehand", "hi")
    );
    assert!(matches!(
        client.get_pull(PrNumber(1)).await,
        Err(ForgeError::NotFound(_))
    ));

    let seen = mock.seen();
    assert_eq!(seen.len(), 4);
    let ua = format!("forgehand/{}", env!("CARGO_PKG_VERSION"));
    for s in &seen {
        assert_eq!(
            s.header("authorization"),
            Some(format!("token {TOKEN}").as_str())
        );
        assert_eq!(s.header("accept"), Some("application/json"));
        assert_eq!(s.header("user-agent"), Some(ua.as_str()));
    }
    assert_eq!(seen[2].json(), json!({"body": "hi"}));
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let mock = serve(|s: &Seen| match s.nth {
        0 | 1 => reply(503, json!({"message": "maintenance"})),
        _ => reply(200, json!({"login": "forgehand"})),
    })
    .await;
    assert_eq!(
        mock.client(fast()).current_user().await.unwrap(),
        "forgehand"
    );
    assert_eq!(mock.seen().len(), 3);
}

#[tokio::test]
async fn retries_run_out_with_context() {
    let mock = serve(|_: &Seen| reply(500, json!({"message": "database is locked"}))).await;
    let err = mock.client(fast()).current_user().await.unwrap_err();
    assert_eq!(mock.seen().len(), 4, "max_attempts requests");
    let text = err.to_string();
    assert!(matches!(err, ForgeError::Unavailable(_)), "{text}");
    for part in [
        "GET",
        "/api/v1/user",
        "500",
        "database is locked",
        "4 attempts",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text:?}");
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let mock = serve(|s: &Seen| match s.nth {
        0 => with_headers(
            reply(429, json!({"message": "slow down"})),
            &[("retry-after", "1")],
        ),
        _ => reply(200, json!({"login": "forgehand"})),
    })
    .await;
    assert_eq!(
        mock.client(fast()).current_user().await.unwrap(),
        "forgehand"
    );
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[tokio::test]
async fn rate_limit_exhausted_is_rate_limited_and_forbidden_quota_is_retried() {
    let mock = serve(|s: &Seen| match s.path.as_str() {
        // 403 with a spent quota is a rate limit, not a permission problem.
        "/api/v1/user" if s.nth == 0 => with_headers(
            reply(403, json!({"message": "quota"})),
            &[("x-ratelimit-remaining", "0")],
        ),
        "/api/v1/user" => reply(200, json!({"login": "forgehand"})),
        _ => reply(429, json!({"message": "slow down"})),
    })
    .await;
    let client = mock.client(fast());
    assert_eq!(client.current_user().await.unwrap(), "forgehand");
    let err = client.get_issue(IssueNumber(1)).await.unwrap_err();
    assert!(matches!(err, ForgeError::RateLimited { .. }), "{err}");
    assert_eq!(mock.hits("GET", "/issues/1").len(), 4);
}

#[tokio::test]
async fn timeouts_are_retried_for_get_but_not_for_post() {
    // A server that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
            let _ = tx.send(());
        }
    });
    let policy = RetryPolicy {
        max_attempts: 2,
        request_timeout: Duration::from_millis(300),
        ..fast()
    };
    let client = forgehand::forge::forgejo::ForgejoClient::new(
        &format!("http://{addr}"),
        "o/r",
        TOKEN.to_string(),
        policy,
    )
    .unwrap();
    // Waits for the `expected` connections (the server may accept a little after
    // the client gave up), then counts any extra one.
    async fn connections(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
        expected: usize,
    ) -> usize {
        for _ in 0..expected {
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("connection accepted")
                .unwrap();
        }
        let mut n = expected;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    let err = client.current_user().await.unwrap_err();
    assert!(matches!(err, ForgeError::Unavailable(_)), "{err}");
    assert!(err.to_string().contains("GET /api/v1/user"), "{err}");
    assert_eq!(
        connections(&mut rx, 2).await,
        2,
        "a timed-out GET is tried again"
    );

    // A timed-out POST may have landed: before sending it again the client looks
    // for it, which needs its login (two timed-out GETs here), and then gives up.
    client.create_comment(1, "x").await.unwrap_err();
    assert_eq!(connections(&mut rx, 3).await, 3);
    server.abort();
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_attempts, 5);
    for (attempt, full_ms) in [(1, 500), (2, 1000), (3, 2000), (7, 30_000), (40, 30_000)] {
        let full = Duration::from_millis(full_ms);
        for _ in 0..20 {
            let d = policy.backoff(attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }
}

#[tokio::test]
async fn html_page_with_200_is_retried_on_get() {
    let mock = serve(|s: &Seen| match s.nth {
        0 => html(200),
        _ => reply(200, json!({"login": "forgehand"})),
    })
    .await;
    assert_eq!(
        mock.client(fast()).current_user().await.unwrap(),
        "forgehand"
    );
    assert_eq!(mock.seen().len(), 2);
}

#[tokio::test]
async fn post_is_not_retried_on_500_but_is_on_503() {
    // A POST that may have landed is looked for (GET …/comments) before it is sent
    // again: on issue 1 looking fails too, on issue 2 it finds nothing.
    let mock = serve(
        |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
            (_, ["issues", "1", "comments"]) => reply(500, json!({"message": "boom"})),
            ("GET", ["issues", "2", "comments"]) => reply(200, json!([])),
            (_, ["issues", "2", "comments"]) if s.nth == 0 => empty(503),
            _ => reply(201, json!({"id": 4, "body": "x", "user": {"login": "bot"}})),
        },
    )
    .await;
    let client = mock.client(fast());
    let err = client.create_comment(1, "x").await.unwrap_err();
    assert!(matches!(err, ForgeError::Unavailable(_)), "{err}");
    assert_eq!(mock.hits("POST", "/issues/1/comments").len(), 1);

    client.create_comment(2, "x").await.unwrap();
    assert_eq!(mock.hits("POST", "/issues/2/comments").len(), 2);
}

#[tokio::test]
async fn statuses_map_to_typed_errors_without_retry() {
    let mock = serve(|s: &Seen| match (s.method.as_str(), s.path.as_str()) {
        ("GET", "/api/v1/user") => reply(401, json!({"message": "token is required"})),
        ("GET", _) => not_found(),
        ("PATCH", _) => reply(409, json!({"message": "locked"})),
        _ => reply(403, json!({"message": "no right"})),
    })
    .await;
    let client = mock.client(fast());
    let err = client.current_user().await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized(_)), "{err}");
    let err = client.get_issue(IssueNumber(7)).await.unwrap_err();
    assert!(matches!(err, ForgeError::NotFound(_)), "{err}");
    assert!(
        err.to_string().contains("/api/v1/repos/o/r/issues/7"),
        "{err}"
    );
    let err = client.close_issue(IssueNumber(7)).await.unwrap_err();
    assert!(
        matches!(err, ForgeError::Conflict(ref m) if m.contains("locked")),
        "{err}"
    );
    let err = client.create_comment(7, "x").await.unwrap_err();
    assert!(matches!(err, ForgeError::Unauthorized(_)), "{err}");
    assert_eq!(mock.seen().len(), 4, "none of these is retried");
}

#[tokio::test]
async fn merge_405_on_a_merged_pull_is_already_merged() {
    let mock = serve(
        |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
            ("POST", ["pulls", "3", "merge"]) => reply(405, json!({"message": "not mergeable"})),
            ("GET", ["pulls", "3"]) => reply(200, pull(3, "fix/issue-1", "main", true)),
            _ => not_found(),
        },
    )
    .await;
    let err = mock
        .client(fast())
        .merge_pull(PrNumber(3), &merge_req())
        .await
        .unwrap_err();
    assert!(matches!(err, ForgeError::AlreadyMerged), "{err}");
    let merge = &mock.hits("POST", "/pulls/3/merge")[0];
    assert_eq!(
        merge.json(),
        json!({"Do": "squash", "head_commit_id": "abc123", "delete_branch_after_merge": true})
    );
}

/// Forgejo has no draft flag: a draft is opened with its work-in-progress prefix.
#[tokio::test]
async fn a_draft_pull_is_opened_with_the_wip_prefix() {
    let mock = serve(
        |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
            ("POST", ["pulls"]) => reply(201, pull(9, "fix/issue-1", "main", false)),
            _ => not_found(),
        },
    )
    .await;
    let client = mock.client(fast());
    assert!(
        !client.opens_drafts(),
        "forgehand opens no drafts on Forgejo"
    );
    let new = NewPull {
        head: "fix/issue-1".into(),
        base: "main".into(),
        title: "fix: things (#1)".into(),
        body: "Fixes #1".into(),
        draft: true,
    };
    client.create_pull(&new).await.unwrap();
    let post = &mock.hits("POST", "/pulls")[0];
    assert_eq!(post.json()["title"], "WIP: fix: things (#1)");
}

/// The issue's page is on the forge's web address, without the credentials
/// or query a configured URL may carry.
#[test]
fn issue_urls_are_web_pages_of_the_repository() {
    let client = |url: &str| {
        forgehand::forge::forgejo::ForgejoClient::new(url, "o/r", TOKEN.into(), fast()).unwrap()
    };
    assert_eq!(
        client("https://forge.example/").issue_url(IssueNumber(7)),
        "https://forge.example/o/r/issues/7"
    );
    assert_eq!(
        client("https://bot:pw@forge.example/sub?x=1").issue_url(IssueNumber(7)),
        "https://forge.example/sub/o/r/issues/7"
    );
}

#[tokio::test]
async fn merge_405_on_an_open_pull_is_a_conflict_and_200_is_ok() {
    let mock = serve(
        |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
            ("POST", ["pulls", "3", "merge"]) => reply(405, json!({"message": "conflicts"})),
            ("POST", ["pulls", "4", "merge"]) => empty(200),
            ("GET", ["pulls", "3"]) => reply(200, pull(3, "fix/issue-1", "main", false)),
            _ => not_found(),
        },
    )
    .await;
    let client = mock.client(fast());
    let err = client
        .merge_pull(PrNumber(3), &merge_req())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ForgeError::Conflict(ref m) if m.contains("conflicts")),
        "{err}"
    );
    client.merge_pull(PrNumber(4), &merge_req()).await.unwrap();
}

#[tokio::test]
async fn create_pull_conflict_returns_the_existing_pull() {
    let mock = serve(
        |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
            ("POST", ["pulls"]) => reply(409, json!({"message": "pull request already exists"})),
            ("GET", ["pulls"]) => reply(
                200,
                json!([
                    pull(8, "fix/issue-1", "develop", false),
                    pull(9, "fix/issue-1", "main", false),
                    pull(10, "fix/issue-2", "main", false),
                ]),
            ),
            _ => not_found(),
        },
    )
    .await;
    let new = NewPull {
        head: "fix/issue-1".into(),
        base: "main".into(),
        title: "fix: things (#1)".into(),
        body: "Fixes #1".into(),
        draft: false,
    };
    let pr = mock.client(fast()).create_pull(&new).await.unwrap();
    assert_eq!(pr.number, PrNumber(9));
    assert_eq!(pr.head_ref, "fix/issue-1");
    assert_eq!(pr.head_sha, CommitSha("abc123".into()));
    let post = &mock.hits("POST", "/pulls")[0];
    assert_eq!(
        post.json(),
        json!({"head": "fix/issue-1", "base": "main", "title": "fix: things (#1)", "body": "Fixes #1"})
    );
    assert_eq!(
        mock.hits("GET", "/pulls")[0].param("state").as_deref(),
        Some("open")
    );
}

#[tokio::test]
async fn label_add_resolves_ids_and_creates_missing_labels() {
    let created = Arc::new(AtomicBool::new(false));
    let mock = serve({
        let created = created.clone();
        move |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
            ("GET", ["labels"]) => {
                let mut labels = vec![json!({"id": 7, "name": "in-progress"})];
                if created.load(Ordering::SeqCst) {
                    labels.push(json!({"id": 12, "name": "blocked"}));
                }
                reply(200, Value::Array(labels))
            }
            ("POST", ["labels"]) => {
                created.store(true, Ordering::SeqCst);
                reply(
                    201,
                    json!({"id": 12, "name": "blocked", "color": "#b60205"}),
                )
            }
            ("POST", ["issues", "4", "labels"]) => reply(200, json!([])),
            _ => not_found(),
        }
    })
    .await;
    let client = mock.client(fast());
    client
        .add_label(IssueNumber(4), "in-progress")
        .await
        .unwrap();
    client
        .add_label(IssueNumber(4), "in-progress")
        .await
        .unwrap();
    client.add_label(IssueNumber(4), "blocked").await.unwrap();

    let adds = mock.hits("POST", "/issues/4/labels");
    let bodies: Vec<Value> = adds.iter().map(Seen::json).collect();
    assert_eq!(
        bodies,
        vec![
            json!({"labels": [7]}),
            json!({"labels": [7]}),
            json!({"labels": [12]})
        ]
    );
    // Listed once for the first add, once more on the miss for "blocked".
    assert_eq!(mock.hits("GET", "/labels").len(), 2);
    let create = mock.hits("POST", "/repos/o/r/labels");
    assert_eq!(create.len(), 1);
    assert_eq!(create[0].json()["name"], "blocked");
    assert!(create[0].json()["color"].as_str().unwrap().starts_with('#'));
}

#[tokio::test]
async fn removing_an_absent_label_is_ok() {
    let mock = serve(
        |s: &Seen| match (s.method.as_str(), s.repo_segs().as_slice()) {
            ("GET", ["labels"]) => reply(200, json!([{"id": 3, "name": "backlog"}])),
            ("DELETE", ["issues", "5", "labels", "3"]) => not_found(),
            ("DELETE", ["issues", "6", "labels", "3"]) => empty(204),
            _ => reply(500, json!({"message": "unexpected"})),
        },
    )
    .await;
    let client = mock.client(fast());
    // The repository has no such label: nothing to delete.
    client.remove_label(IssueNumber(5), "nope").await.unwrap();
    // The issue does not carry it: the forge says 404.
    client
        .remove_label(IssueNumber(5), "backlog")
        .await
        .unwrap();
    client
        .remove_label(IssueNumber(6), "backlog")
        .await
        .unwrap();
    assert_eq!(mock.hits("DELETE", "/labels/3").len(), 2);
}

#[tokio::test]
async fn branch_names_are_one_encoded_segment() {
    let mock = serve(|s: &Seen| match s.nth {
        0 => empty(204),
        _ => not_found(),
    })
    .await;
    let client = mock.client(fast());
    client.delete_branch("fix/issue-42").await.unwrap();
    client.delete_branch("fix/issue-42").await.unwrap();
    let seen = mock.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "DELETE");
    assert_eq!(seen[0].path, "/api/v1/repos/o/r/branches/fix%2Fissue-42");
}

#[tokio::test]
async fn reviews_statuses_and_comments_are_mapped() {
    let mock = serve(|s: &Seen| match s.repo_segs().as_slice() {
        ["pulls", "2", "reviews"] => reply(
            200,
            json!([
                {"id": 1, "state": "APPROVED", "commit_id": "abc", "user": {"login": "bob"},
                 "submitted_at": "2024-05-01T10:00:00Z", "stale": true, "official": true},
                {"id": 2, "state": "REQUEST_CHANGES", "body": "fix it", "dismissed": true,
                 "official": false},
                {"id": 3, "state": "COMMENT"}, {"id": 4, "state": "PENDING"},
                {"id": 5, "state": "REQUEST_REVIEW"}, {"id": 6, "state": "WEIRD"},
            ]),
        ),
        ["pulls", "2", "reviews", "2", "comments"] => reply(
            200,
            json!([{"id": 11, "path": "src/a.rs", "position": 4, "body": "typo",
                    "user": {"login": "bob"}},
                   {"id": 12, "path": "src/b.rs", "position": 0, "body": "general"}]),
        ),
        ["commits", "abc", "status"] if s.nth == 0 => reply(
            200,
            json!({"state": "failure", "total_count": 2, "statuses": [
                {"context": "ci/build", "status": "success", "description": "ok",
                 "target_url": "http://ci/1"},
                {"context": "ci/test", "status": "failure", "description": "red"}]}),
        ),
        ["commits", "abc", "status"] => reply(
            200,
            json!({"state": "", "total_count": 0, "statuses": null}),
        ),
        _ => not_found(),
    })
    .await;
    let client = mock.client(fast());
    let reviews = client.list_reviews(PrNumber(2)).await.unwrap();
    let states: Vec<ReviewState> = reviews.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            ReviewState::Approved,
            ReviewState::ChangesRequested,
            ReviewState::Commented,
            ReviewState::Pending,
            ReviewState::RequestReview,
            ReviewState::Other
        ]
    );
    assert_eq!(reviews[0].author, "bob");
    assert_eq!(reviews[0].commit_id, CommitSha("abc".into()));
    assert!(reviews[0].stale && reviews[0].submitted_at.is_some());
    assert!(reviews[1].dismissed && reviews[1].body == "fix it");
    // Only a review the forge calls official counts; without a word, it is not.
    let official: Vec<bool> = reviews.iter().map(|r| r.official).collect();
    assert_eq!(official, [true, false, false, false, false, false]);

    let comments = client.list_review_comments(PrNumber(2), 2).await.unwrap();
    assert_eq!(comments[0].position, Some(4));
    assert_eq!(comments[0].path, "src/a.rs");
    assert_eq!(comments[1].position, None);

    let sha = CommitSha("abc".into());
    let status = client.combined_status(&sha).await.unwrap();
    assert_eq!(status.state, Some(StatusState::Failure));
    assert_eq!(status.statuses.len(), 2);
    assert_eq!(status.statuses[1].context, "ci/test");
    assert_eq!(status.statuses[1].state, StatusState::Failure);
    assert_eq!(status.statuses[0].target_url, "http://ci/1");
    let none = client.combined_status(&sha).await.unwrap();
    assert_eq!(none.state, None);
    assert!(none.statuses.is_empty());
}

/// Write access comes from the collaborator permission endpoint: write, admin
/// and owner may; read, none, an unknown account (404) and an answer forgehand
/// may not read (403) may not. Answers are kept, failures are not.
#[tokio::test]
async fn write_access_is_read_from_the_permission_endpoint_and_kept() {
    let mock = serve(|s: &Seen| match s.repo_segs().as_slice() {
        ["collaborators", login, "permission"] => {
            let mode = match *login {
                "alice" => "write",
                "bob" => "admin",
                "carol" => "owner",
                "mallory" => "read",
                "nobody" => "none",
                "ghost" => return not_found(),
                "hidden" => return reply(403, json!({"message": "only admins"})),
                "flaky" if s.nth == 0 => return reply(500, json!({"message": "oops"})),
                "flaky" => "write",
                _ => "mystery",
            };
            reply(
                200,
                json!({"permission": mode, "role_name": mode, "user": {"login": login}}),
            )
        }
        _ => not_found(),
    })
    .await;
    let client = mock.client(RetryPolicy {
        max_attempts: 1,
        ..fast()
    });
    let expected = [
        ("alice", true),
        ("bob", true),
        ("carol", true),
        ("mallory", false),
        ("nobody", false),
        ("ghost", false),
        ("hidden", false),
        ("newcomer", false),
    ];
    for (login, may) in expected {
        assert_eq!(client.can_write(login).await.unwrap(), may, "{login}");
    }
    assert_eq!(mock.seen().len(), expected.len());
    // Asked again within the cache's lifetime: no request at all.
    for (login, may) in expected {
        assert_eq!(client.can_write(login).await.unwrap(), may, "{login}");
    }
    assert_eq!(mock.seen().len(), expected.len(), "answers are kept");
    assert_eq!(
        mock.hits("GET", "/collaborators/mallory/permission").len(),
        1
    );
    // A failed lookup is an error, and not kept: the next call asks again.
    assert!(client.can_write("flaky").await.is_err());
    assert!(client.can_write("flaky").await.unwrap());
    assert_eq!(mock.hits("GET", "/collaborators/flaky/permission").len(), 2);
    // A comment without a known author: nobody to ask about.
    assert!(!client.can_write("").await.unwrap());
    assert_eq!(mock.seen().len(), expected.len() + 2);
}

#[tokio::test]
async fn the_token_never_shows_in_errors_or_debug() {
    // A misbehaving proxy that echoes the request's credentials back.
    let mock = serve(|s: &Seen| {
        let echoed = s.header("authorization").unwrap_or_default().to_string();
        reply(
            500,
            json!({"message": format!("bad request with {echoed}")}),
        )
    })
    .await;
    let client = mock.client(RetryPolicy {
        max_attempts: 1,
        ..fast()
    });
    let err = client.current_user().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("bad request with token"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!format!("{client:?}").contains(TOKEN));

    // Nothing listens on a closed port: a transport error.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let closed = forgehand::forge::forgejo::ForgejoClient::new(
        &format!("http://user:pw@127.0.0.1:{port}"),
        "o/r",
        TOKEN.to_string(),
        RetryPolicy {
            max_attempts: 2,
            ..fast()
        },
    )
    .unwrap();
    let err = closed.current_user().await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.contains("/api/v1/user"), "{text}");
    assert!(!text.contains(TOKEN) && !text.contains("pw"), "{text}");
}
