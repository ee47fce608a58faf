//! Pull requests against the real bare repository: heads that follow pushes,
//! `mergeable: null` while GitHub "computes", the merge endpoint's 200/405/409, branch
//! deletion through git refs, and reviews with their inline comments.

use reqwest::StatusCode;
use serde_json::json;

use super::{Api, open_pull, push_branch, repo, start};
use crate::fake_github::fixture::{GitFixture, git};
use crate::fake_github::{
    Behaviour, FakeGithub, FakeGithubOptions, HUMAN, REVIEWER, ViolationKind,
};

#[tokio::test]
async fn pull_heads_follow_pushes_and_mergeable_is_null_while_computing() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;
    github.set_behaviour(Behaviour {
        mergeable_pending_reads: 2,
        ..Default::default()
    });
    let api = Api::new(&github);
    let first = push_branch(&fixture, "fix/issue-1", "greeting.txt", "hello, world\n");

    let created = api
        .post(
            &repo("/pulls"),
            json!({"head": "acme:fix/issue-1", "base": "main", "title": "Greet the world"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let n = created.json["number"].as_u64().expect("number");
    assert_eq!(created.json["head"]["sha"], first.as_str());
    assert_eq!(created.json["head"]["ref"], "fix/issue-1");
    assert_eq!(created.json["head"]["label"], "acme:fix/issue-1");
    assert!(created.json["mergeable"].is_null());
    let again = api
        .post(
            &repo("/pulls"),
            json!({"head": "fix/issue-1", "base": "main", "title": "again"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.text.contains("already exists"), "{}", again.text);

    let path = repo(&format!("/pulls/{n}"));
    for _ in 0..2 {
        let pr = api.get(&path).await.json;
        assert!(pr["mergeable"].is_null(), "{pr}");
        assert_eq!(pr["mergeable_state"], "unknown");
    }
    let pr = api.get(&path).await.json;
    assert_eq!(pr["mergeable"], true);
    assert_eq!(pr["merged"], false);

    // A push moves the head and starts the computing over.
    let second = fixture.commit("greeting.txt", "hello, world!\n", "punctuate");
    fixture.push("fix/issue-1");
    let pr = api.get(&path).await.json;
    assert_eq!(pr["head"]["sha"], second.as_str());
    assert!(pr["mergeable"].is_null());
    assert_eq!(github.pull(n).heads_seen, [first, second]);

    // The list has no mergeability at all (pull-request-simple), and filters by head.
    let listed = api
        .get(&repo("/pulls?head=acme:fix/issue-1&state=open"))
        .await;
    assert_eq!(listed.json[0]["number"], n);
    assert!(listed.json[0].get("mergeable").is_none());
    let other = api.get(&repo("/pulls?head=acme:fix/issue-2")).await;
    assert_eq!(other.json.as_array().map(Vec::len), Some(0));
    github.assert_no_violations();
}

#[tokio::test]
async fn merge_checks_the_head_sha_and_makes_a_merge_commit() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;
    let api = Api::new(&github);
    let head = push_branch(&fixture, "fix/issue-1", "greeting.txt", "hello, world\n");
    let n = open_pull(&api, "fix/issue-1").await;
    let merge = repo(&format!("/pulls/{n}/merge"));

    let stale = api
        .put(
            &merge,
            json!({"sha": "0".repeat(40), "merge_method": "merge"}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.text);
    let base_before = fixture.bare_sha("main");
    let merged = api
        .put(&merge, json!({"sha": head, "merge_method": "merge"}))
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.text);
    assert_eq!(merged.json["merged"], true);
    let sha = merged.json["sha"].as_str().expect("merge sha").to_owned();
    assert_eq!(fixture.bare_sha("main"), sha);
    // Always a merge commit, even where a fast-forward was possible, as on GitHub.
    let parents = git(&fixture.bare, &["rev-list", "--parents", "-n", "1", &sha]);
    assert_eq!(parents, format!("{sha} {base_before} {head}"));

    let twice = api.put(&merge, json!({"sha": head})).await;
    assert_eq!(twice.status, StatusCode::METHOD_NOT_ALLOWED);
    let pr = api.get(&repo(&format!("/pulls/{n}"))).await;
    assert_eq!(pr.json["merged"], true);
    assert_eq!(pr.json["state"], "closed");
    assert_eq!(pr.json["merge_commit_sha"], sha.as_str());
    assert_eq!(api.get(&merge).await.status, StatusCode::NO_CONTENT);
    assert_eq!(github.read(|s| s.forge.merge_count(n)), 1);

    // The branch goes through git refs; gone is 422.
    let deleted = api.delete(&repo("/git/refs/heads/fix/issue-1")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(
        github
            .read(|s| s.forge.git.branch_sha("fix/issue-1"))
            .is_none()
    );
    let gone = api.delete(&repo("/git/refs/heads/fix/issue-1")).await;
    assert_eq!(gone.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        gone.json["errors"][0]["message"],
        "Reference does not exist"
    );
    github.assert_no_violations();
}

#[tokio::test]
async fn conflicts_are_405_and_squash_makes_one_commit() {
    let fixture = GitFixture::new();
    let github = FakeGithub::start(FakeGithubOptions {
        bare_repo: fixture.bare.clone(),
        delete_branch_on_merge: true,
        ..Default::default()
    })
    .await;
    let api = Api::new(&github);
    let clean = push_branch(&fixture, "clean", "other.txt", "other\n");
    let conflict = push_branch(&fixture, "conflict", "greeting.txt", "bonjour\n");
    fixture.branch("main", "main");
    fixture.commit("greeting.txt", "hi\n", "shorter");
    fixture.push("main");
    let clean_pr = open_pull(&api, "clean").await;
    let conflict_pr = open_pull(&api, "conflict").await;

    let pr = api.get(&repo(&format!("/pulls/{conflict_pr}"))).await;
    assert!(pr.json["mergeable"].is_null(), "first read after the push");
    let pr = api.get(&repo(&format!("/pulls/{conflict_pr}"))).await;
    assert_eq!(pr.json["mergeable"], false);
    assert_eq!(pr.json["mergeable_state"], "dirty");
    let refused = api
        .put(
            &repo(&format!("/pulls/{conflict_pr}/merge")),
            json!({"sha": conflict}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(refused.json["message"], "Pull Request is not mergeable");

    let base = fixture.bare_sha("main");
    let squashed = api
        .put(
            &repo(&format!("/pulls/{clean_pr}/merge")),
            json!({"sha": clean, "merge_method": "squash", "commit_title": "Add other (#2)"}),
        )
        .await;
    assert_eq!(squashed.status, StatusCode::OK, "{}", squashed.text);
    let sha = squashed.json["sha"].as_str().expect("sha");
    let parents = git(&fixture.bare, &["rev-list", "--parents", "-n", "1", sha]);
    assert_eq!(parents, format!("{sha} {base}"));
    let subject = git(&fixture.bare, &["log", "-1", "--format=%s", sha]);
    assert_eq!(subject, "Add other (#2)");
    // The repository deletes merged branches itself; deleting again is 422.
    assert!(github.read(|s| s.forge.git.branch_sha("clean")).is_none());
    let gone = api.delete(&repo("/git/refs/heads/clean")).await;
    assert_eq!(gone.status, StatusCode::UNPROCESSABLE_ENTITY);
    github.assert_no_violations();

    // Merging without `sha` works on GitHub, but races a push: flagged.
    let racy = api
        .put(&repo(&format!("/pulls/{conflict_pr}/merge")), json!({}))
        .await;
    assert_eq!(racy.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(github.violations()[0].kind, ViolationKind::Suspicious);
}

#[tokio::test]
async fn reviews_show_their_author_state_commit_and_inline_comments() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;
    let api = Api::new(&github);
    let head = push_branch(&fixture, "fix/issue-1", "greeting.txt", "hello, world\n");
    let n = open_pull(&api, "fix/issue-1").await;
    let old = github.submit_review(n, HUMAN, "COMMENTED", "looking", Some("0123abcd"), &[]);
    let changes = github.submit_review(
        n,
        REVIEWER,
        "CHANGES_REQUESTED",
        "Please punctuate.",
        None,
        &[
            ("greeting.txt", 1, "Add a comma."),
            ("README.md", 3, "Mention it."),
        ],
    );
    let approved = github.submit_review(n, HUMAN, "APPROVED", "", None, &[]);
    github.dismiss_review(approved);

    let reviews = api.get(&repo(&format!("/pulls/{n}/reviews"))).await;
    assert_eq!(reviews.status, StatusCode::OK);
    let list = reviews.json.as_array().expect("list");
    let seen: Vec<(&str, &str, &str)> = list
        .iter()
        .map(|r| {
            (
                r["user"]["login"].as_str().unwrap_or_default(),
                r["state"].as_str().unwrap_or_default(),
                r["commit_id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (HUMAN, "COMMENTED", "0123abcd"),
            (REVIEWER, "CHANGES_REQUESTED", head.as_str()),
            (HUMAN, "DISMISSED", head.as_str()),
        ]
    );
    assert!(list.iter().all(|r| r["submitted_at"].is_string()));
    assert_eq!(list[0]["id"], old);

    let inline = api
        .get(&repo(&format!("/pulls/{n}/reviews/{changes}/comments")))
        .await;
    let comments: Vec<(String, u64, String)> = inline
        .json
        .as_array()
        .expect("list")
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap_or_default().to_owned(),
                c["line"].as_u64().unwrap_or_default(),
                c["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        comments,
        [
            ("greeting.txt".to_owned(), 1, "Add a comma.".to_owned()),
            ("README.md".to_owned(), 3, "Mention it.".to_owned()),
        ]
    );
    let all = api.get(&repo(&format!("/pulls/{n}/comments"))).await;
    assert_eq!(all.json.as_array().map(Vec::len), Some(2));
    assert_eq!(all.json[0]["pull_request_review_id"], changes);
    github.assert_no_violations();
}
