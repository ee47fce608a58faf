//! Self-tests of the fake Forgejo over HTTP: authentication, paging, labels,
//! PRs against a real bare repository, merges, the simulated CI and reviewer,
//! rights and official reviews, and `wait_until`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fake_forge::fixture::{GitFixture, git};
use crate::fake_forge::{
    Behaviour, CI_CONTEXT, CiBehaviour, FakeForge, FakeForgeOptions, Fault, FaultRule, HUMAN,
    REVIEWER, ReviewBehaviour, ViolationKind,
};

/// An authenticated client for the fake's API.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    fn new(forge: &FakeForge) -> Self {
        Self {
            client: reqwest::Client::new(),
            base: format!("{}/repos/acme/widget", forge.api_url()),
            token: forge.token().to_owned(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let url = if path.starts_with('/') {
            format!(
                "{}{path}",
                self.base.split("/repos/").next().unwrap_or_default()
            )
        } else {
            format!("{}/{path}", self.base)
        };
        let mut request = self
            .client
            .request(method, url)
            .header("Authorization", format!("token {}", self.token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request to the fake forge");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, value) = self.send(reqwest::Method::POST, path, Some(body)).await;
        (status, value)
    }
}

async fn start(fixture: &GitFixture) -> FakeForge {
    FakeForge::start(FakeForgeOptions {
        bare_repo: fixture.bare.clone(),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn requests_without_the_token_are_rejected_and_recorded() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    let client = reqwest::Client::new();

    let anonymous = client
        .get(format!("{}/user", forge.api_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.expect("json error body");
    assert!(body["message"].is_string(), "{body}");

    let bearer = client
        .get(format!("{}/user", forge.api_url()))
        .bearer_auth("tok-123")
        .send()
        .await
        .expect("request");
    assert_eq!(bearer.status(), StatusCode::OK);
    let user: Value = bearer.json().await.expect("user");
    assert_eq!(user["login"], "forgehand-bot");

    let requests = forge.requests();
    assert_eq!(forge.request_count(), 2);
    assert!(!requests[0].token_present && !requests[0].authorized);
    assert!(requests[1].authorized);
    let violations = forge.violations();
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert_eq!(violations[0].kind, ViolationKind::Unauthorized);
}

#[tokio::test]
async fn issue_listing_paginates_with_total_count_and_filters() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    for i in 0..35 {
        let labels: &[&str] = if i % 5 == 0 { &["backlog"] } else { &[] };
        forge.create_issue(&format!("issue {i}"), "", labels);
    }
    let api = Api::new(&forge);

    let (status, headers, page2) = api
        .get("issues?state=open&type=issues&limit=10&page=2&sort=oldest")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-total-count"], "35");
    let titles: Vec<&str> = page2
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    assert_eq!(titles.first(), Some(&"issue 10"));
    assert_eq!(titles.len(), 10);
    let link = headers["link"].to_str().expect("link header");
    assert!(
        link.contains("page=3") && link.contains("rel=\"next\""),
        "{link}"
    );
    assert!(
        link.contains("page=4") && link.contains("rel=\"last\""),
        "{link}"
    );

    let (_, headers, default_page) = api.get("issues").await;
    assert_eq!(default_page.as_array().map(Vec::len), Some(30));
    assert_eq!(headers["x-total-count"], "35");
    let (_, _, capped) = api.get("issues?limit=100").await;
    assert_eq!(capped.as_array().map(Vec::len), Some(35));

    let (_, headers, backlog) = api.get("issues?labels=backlog,nonexistent").await;
    assert_eq!(headers["x-total-count"], "7");
    let issue = &backlog[0];
    assert_eq!(issue["labels"][0]["name"], "backlog");
    assert!(issue["pull_request"].is_null());
    assert_eq!(issue["user"]["login"], "alice");
    assert!(
        chrono::DateTime::parse_from_rfc3339(issue["created_at"].as_str().unwrap_or_default())
            .is_ok()
    );
    assert!(forge.violations().is_empty(), "{:#?}", forge.violations());
}

#[tokio::test]
async fn labels_are_added_and_removed_by_id() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    let api = Api::new(&forge);
    let n = forge.create_issue("Add a greeting", "", &["backlog"]);

    let (status, label) = api
        .post("labels", json!({"name": "in-progress", "color": "#00aabb"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(label["color"], "00aabb");
    let id = label["id"].as_u64().expect("label id");

    let (status, labels) = api
        .post(&format!("issues/{n}/labels"), json!({"labels": [id]}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = labels
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, ["backlog", "in-progress"]);

    let backlog_id = forge
        .read(|s| {
            s.labels()
                .iter()
                .find(|l| l.name == "backlog")
                .map(|l| l.id)
        })
        .expect("backlog");
    let (status, _, _) = api
        .send(
            reqwest::Method::DELETE,
            &format!("issues/{n}/labels/{backlog_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(forge.issue(n).labels, ["in-progress"]);

    let (_, labels) = api
        .post(
            &format!("issues/{n}/labels"),
            json!({"labels": ["backlog"]}),
        )
        .await;
    assert_eq!(labels.as_array().map(Vec::len), Some(2));
    assert!(forge.violations().is_empty(), "{:#?}", forge.violations());

    // Forgejo ignores unknown labels; the fake does too, but flags it.
    api.post(
        &format!("issues/{n}/labels"),
        json!({"labels": ["no-such-label"]}),
    )
    .await;
    assert_eq!(forge.violations()[0].kind, ViolationKind::Suspicious);
}

#[tokio::test]
async fn pull_request_heads_follow_pushes_to_the_bare_repo() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    let api = Api::new(&forge);
    fixture.branch("fix/issue-1", "main");
    let first = fixture.commit("greeting.txt", "hello, world\n", "greet the world");
    fixture.push("fix/issue-1");

    let (status, missing) = api
        .post(
            "pulls",
            json!({"head": "fix/issue-9", "base": "main", "title": "t", "body": ""}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");

    let create = json!({"head": "fix/issue-1", "base": "main", "title": "fix: greet (#1)", "body": "Fixes #1"});
    let (status, pr) = api.post("pulls", create.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{pr}");
    let n = pr["number"].as_u64().expect("number");
    assert_eq!(pr["head"]["sha"], first.as_str());
    assert_eq!(pr["head"]["ref"], "fix/issue-1");
    assert_eq!(pr["base"]["sha"], fixture.bare_sha("main").as_str());
    assert_eq!(pr["mergeable"], true);
    assert_eq!(pr["merged"], false);

    let (status, _) = api.post("pulls", create).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let second = fixture.commit("greeting.txt", "hello, world!\n", "punctuate");
    fixture.push("fix/issue-1");
    let (_, _, pr) = api.get(&format!("pulls/{n}")).await;
    assert_eq!(pr["head"]["sha"], second.as_str());
    assert_eq!(forge.pull(n).heads_seen, [first, second]);

    // The PR is also an issue, with a pull_request object, in the same number sequence.
    let (_, _, issue) = api.get(&format!("issues/{n}")).await;
    assert!(issue["pull_request"].is_object(), "{issue}");
    let (_, branch_headers, branch) = api.get("branches/fix%2Fissue-1").await;
    assert_eq!(
        branch["commit"]["id"],
        forge.pull(n).head_sha.as_str(),
        "{branch_headers:?}"
    );
    assert!(forge.violations().is_empty(), "{:#?}", forge.violations());
}

#[tokio::test]
async fn merge_fast_forwards_the_real_base_ref_once() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    let api = Api::new(&forge);
    fixture.branch("fix/issue-1", "main");
    let head = fixture.commit("greeting.txt", "hello, world\n", "greet");
    fixture.push("fix/issue-1");
    let (_, pr) = api
        .post(
            "pulls",
            json!({"head": "fix/issue-1", "base": "main", "title": "greet", "body": ""}),
        )
        .await;
    let n = pr["number"].as_u64().expect("number");

    let (status, _) = api
        .post(
            &format!("pulls/{n}/merge"),
            json!({"Do": "merge", "head_commit_id": "0".repeat(40)}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a stale head_commit_id is refused"
    );

    let merge = json!({"Do": "merge", "head_commit_id": head, "delete_branch_after_merge": true});
    let (status, _) = api.post(&format!("pulls/{n}/merge"), merge.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fixture.bare_sha("main"), head, "fast-forwarded");
    let (status, _, _) = api.get("branches/fix/issue-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "head branch deleted");

    let (status, _) = api.post(&format!("pulls/{n}/merge"), merge).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "already merged");
    let (_, _, pr) = api.get(&format!("pulls/{n}")).await;
    assert_eq!(pr["merged"], true);
    assert_eq!(pr["state"], "closed");
    assert_eq!(pr["merge_commit_sha"], head.as_str());
    assert_eq!(forge.read(|s| s.merge_count(n)), 1);
    assert!(forge.violations().is_empty(), "{:#?}", forge.violations());
}

#[tokio::test]
async fn diverged_heads_get_a_merge_commit_and_conflicts_get_405() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    let api = Api::new(&forge);
    fixture.branch("clean", "main");
    let clean_head = fixture.commit("other.txt", "other\n", "add other");
    fixture.push("clean");
    fixture.branch("conflict", "main");
    fixture.commit("greeting.txt", "bonjour\n", "french");
    fixture.push("conflict");
    fixture.branch("main", "main");
    fixture.commit("greeting.txt", "hi\n", "shorter");
    fixture.push("main");
    let base = fixture.bare_sha("main");

    let (_, clean) = api
        .post(
            "pulls",
            json!({"head": "clean", "base": "main", "title": "clean"}),
        )
        .await;
    let (_, conflict) = api
        .post(
            "pulls",
            json!({"head": "conflict", "base": "main", "title": "conflict"}),
        )
        .await;
    assert_eq!(conflict["mergeable"], false);

    let (status, _) = api
        .post(
            &format!("pulls/{}/merge", clean["number"]),
            json!({"Do": "merge"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let merged = fixture.bare_sha("main");
    let parents = git(
        &fixture.bare,
        &["rev-list", "--parents", "-n", "1", &merged],
    );
    assert_eq!(parents, format!("{merged} {base} {clean_head}"));

    let (status, _) = api
        .post(
            &format!("pulls/{}/merge", conflict["number"]),
            json!({"Do": "squash"}),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        fixture.bare_sha("main"),
        merged,
        "a conflict changes nothing"
    );
    assert_eq!(forge.merges().len(), 1);
}

#[tokio::test]
async fn simulated_ci_and_reviewer_act_on_each_new_head() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    forge.set_behaviour(Behaviour {
        ci: CiBehaviour::Succeed,
        review: ReviewBehaviour::ApproveWhenGreen,
        ..Default::default()
    });
    let api = Api::new(&forge);
    fixture.branch("fix/issue-1", "main");
    let first = fixture.commit("greeting.txt", "hello, world\n", "greet");
    fixture.push("fix/issue-1");
    let (_, pr) = api
        .post(
            "pulls",
            json!({"head": "fix/issue-1", "base": "main", "title": "greet"}),
        )
        .await;
    let n = pr["number"].as_u64().expect("number");

    let (_, _, combined) = api.get(&format!("commits/{first}/status")).await;
    assert_eq!(combined["state"], "success");
    assert_eq!(combined["statuses"][0]["context"], CI_CONTEXT);
    assert_eq!(combined["statuses"][0]["status"], "success");
    let (_, _, reviews) = api.get(&format!("pulls/{n}/reviews")).await;
    assert_eq!(reviews[0]["state"], "APPROVED");
    assert_eq!(reviews[0]["commit_id"], first.as_str());
    assert_eq!(reviews[0]["user"]["login"], REVIEWER);

    let second = fixture.commit("greeting.txt", "hello, world!\n", "punctuate");
    fixture.push("fix/issue-1");
    let (_, _, reviews) = api.get(&format!("pulls/{n}/reviews")).await;
    assert_eq!(reviews.as_array().map(Vec::len), Some(2), "{reviews}");
    assert_eq!(reviews[0]["stale"], true);
    assert_eq!(reviews[1]["commit_id"], second.as_str());
    assert_eq!(reviews[1]["stale"], false);
    // Like Forgejo's router, `{ref}` is one segment: a branch name's `/` must be encoded.
    let (_, _, combined) = api.get("commits/fix%2Fissue-1/status").await;
    assert_eq!(combined["sha"], second.as_str());

    let (_, _, none) = api.get(&format!("commits/{}/status", "f".repeat(40))).await;
    assert_eq!(none["state"], "");
    assert!(none["statuses"].is_null());
    assert!(forge.violations().is_empty(), "{:#?}", forge.violations());
}

/// Rights come from the fake's table (the test's people write, anyone else
/// reads), and they make a review official unless the test says otherwise.
#[tokio::test]
async fn permissions_answer_from_the_table_and_make_reviews_official() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    let api = Api::new(&forge);
    forge.set_permission("bob", "admin");
    for (login, mode) in [
        (REVIEWER, "write"),
        (HUMAN, "write"),
        ("acme", "owner"),
        ("bob", "admin"),
        ("mallory", "read"),
    ] {
        let (status, _, answer) = api.get(&format!("collaborators/{login}/permission")).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["permission"], mode, "{login}: {answer}");
        assert_eq!(answer["user"]["login"], login);
    }
    assert_eq!(forge.read(|s| s.permission_requests("mallory")), 1);

    fixture.branch("fix/issue-1", "main");
    fixture.commit("rights.txt", "who may write\n", "note the rights");
    fixture.push("fix/issue-1");
    let (_, pr) = api
        .post(
            "pulls",
            json!({"head": "fix/issue-1", "base": "main", "title": "greet"}),
        )
        .await;
    let n = pr["number"].as_u64().expect("number");
    forge.submit_review(n, REVIEWER, "APPROVED", "ok", None, &[]);
    forge.submit_review(n, "mallory", "APPROVED", "lgtm!!", None, &[]);
    forge.submit_review_official(n, "bob", "REQUEST_CHANGES", "not on the list", false);
    let (_, _, reviews) = api.get(&format!("pulls/{n}/reviews")).await;
    let official: Vec<(&str, bool)> = reviews
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| {
            (
                r["user"]["login"].as_str().unwrap_or_default(),
                r["official"].as_bool().expect("official is a boolean"),
            )
        })
        .collect();
    assert_eq!(
        official,
        [(REVIEWER, true), ("mallory", false), ("bob", false)]
    );
    assert!(forge.violations().is_empty(), "{:#?}", forge.violations());
}

#[tokio::test]
async fn failing_ci_and_requested_changes_come_first() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    forge.set_behaviour(Behaviour {
        ci: CiBehaviour::FailFirst(1),
        review: ReviewBehaviour::RequestChangesOnce {
            body: "Please handle the empty name.".into(),
            comments: vec![("greeting.txt".into(), 1, "empty name?".into())],
        },
        ..Default::default()
    });
    let api = Api::new(&forge);
    fixture.branch("fix/issue-1", "main");
    fixture.commit("greeting.txt", "hello 0\n", "unpushed work");
    let head = fixture.commit("greeting.txt", "hello 1\n", "change");
    fixture.push("fix/issue-1");
    let (_, pr) = api
        .post(
            "pulls",
            json!({"head": "fix/issue-1", "base": "main", "title": "t"}),
        )
        .await;
    let n = pr["number"].as_u64().expect("number");
    assert_eq!(forge.pull(n).heads_seen, std::slice::from_ref(&head));
    let (_, _, statuses) = api.get(&format!("commits/{head}/statuses")).await;
    assert_eq!(statuses[0]["status"], "failure");
    assert!(
        statuses[0]["target_url"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );

    let fixed = fixture.commit("greeting.txt", "hello fixed\n", "fix");
    fixture.push("fix/issue-1");
    let (_, _, reviews) = api.get(&format!("pulls/{n}/reviews")).await;
    let review = &reviews[0];
    assert_eq!(review["state"], "REQUEST_CHANGES");
    assert_eq!(review["commit_id"], fixed.as_str());
    assert_eq!(review["comments_count"], 1);
    let (_, _, comments) = api
        .get(&format!("pulls/{n}/reviews/{}/comments", review["id"]))
        .await;
    assert_eq!(comments[0]["path"], "greeting.txt");
    assert_eq!(comments[0]["position"], 1);

    let last = fixture.commit("greeting.txt", "hello again\n", "address review");
    fixture.push("fix/issue-1");
    let (_, _, reviews) = api.get(&format!("pulls/{n}/reviews")).await;
    assert_eq!(reviews[1]["state"], "APPROVED");
    assert_eq!(reviews[1]["commit_id"], last.as_str());
}

#[tokio::test]
async fn wait_until_wakes_on_a_change_and_times_out_otherwise() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    let n = forge.create_issue("Add a greeting", "", &["backlog"]);
    let api = Api::new(&forge);

    let wait = forge.wait_until(Duration::from_secs(10), |s| s.comments(n).count() == 1);
    let path = format!("issues/{n}/comments");
    let comment = api.post(&path, json!({"body": "working on it"}));
    let (waited, (status, _)) = tokio::join!(wait, comment);
    assert_eq!(status, StatusCode::CREATED);
    waited.expect("woken by the comment");
    assert_eq!(forge.comments(n)[0].user, "forgehand-bot");

    let err = forge
        .wait_until(Duration::from_millis(200), |s| !s.issue(n).is_open())
        .await
        .expect_err("nothing closes the issue");
    let text = format!("{err:#}");
    assert!(
        text.contains("condition not met") && text.contains("Add a greeting"),
        "{text}"
    );
}

#[tokio::test]
async fn dependencies_are_listed_and_block_closing() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    let api = Api::new(&forge);
    let blocker = forge.create_issue("Blocker", "", &[]);
    let blocked = forge.create_issue("Blocked", "Depends on #1", &["backlog"]);
    forge.add_dependency(blocked, blocker);

    let (_, headers, deps) = api.get(&format!("issues/{blocked}/dependencies")).await;
    assert_eq!(headers["x-total-count"], "1");
    assert_eq!(deps[0]["number"], blocker);

    let close = json!({"state": "closed"});
    let path = format!("issues/{blocked}");
    let (status, _, _) = api
        .send(reqwest::Method::PATCH, &path, Some(close.clone()))
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    forge.close_issue(blocker);
    let (status, _, issue) = api.send(reqwest::Method::PATCH, &path, Some(close)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(issue["state"], "closed");
    assert!(issue["closed_at"].is_string());
}

#[tokio::test]
async fn a_queued_fault_is_played_once_before_normal_answers() {
    let fixture = GitFixture::new();
    let forge = start(&fixture).await;
    let api = Api::new(&forge);
    forge.inject_fault(FaultRule {
        method: Some("GET".into()),
        path_contains: Some("/issues".into()),
        ..FaultRule::once(Fault::Status {
            status: 429,
            retry_after: Some(3),
        })
    });

    let (status, headers, _) = api.get("issues").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "3");
    let (status, _, _) = api.get("issues").await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<u16> = forge.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}
