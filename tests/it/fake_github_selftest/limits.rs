//! Rate limits and conditional requests: the `X-RateLimit-*` headers on every answer, a
//! `304` for a held ETag that costs no quota, an exhausted quota, `/rate_limit` for free,
//! and injected secondary rate limits (403 or 429 with `Retry-After`).

use reqwest::StatusCode;

use super::{Api, repo, start};
use crate::fake_github::fixture::GitFixture;
use crate::fake_github::{Fault, FaultRule};

fn remaining(answer: &super::Answer) -> u64 {
    answer
        .header("x-ratelimit-remaining")
        .parse()
        .expect("X-RateLimit-Remaining")
}

#[tokio::test]
async fn a_304_for_a_held_etag_costs_no_quota() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;
    let api = Api::new(&github);
    github.create_issue("Add a greeting", "", &["backlog"]);

    let first = api.get(&repo("/issues?labels=backlog")).await;
    assert_eq!(first.status, StatusCode::OK);
    for header in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-used",
        "x-ratelimit-resource",
    ] {
        assert!(!first.header(header).is_empty(), "{header} missing");
    }
    assert_eq!(remaining(&first), 4999);
    assert_eq!(first.header("x-ratelimit-used"), "1");
    let etag = first.header("etag").to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");

    let path = repo("/issues?labels=backlog");
    let held = [("If-None-Match", etag.as_str())];
    let cached = api.send(reqwest::Method::GET, &path, None, &held).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.text.is_empty());
    assert_eq!(remaining(&cached), 4999, "a 304 is free");
    assert_eq!(cached.header("etag"), etag);

    // A change makes a new tag, and a full (paid) answer.
    github.create_issue("Another", "", &["backlog"]);
    let changed = api.send(reqwest::Method::GET, &path, None, &held).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), etag);
    assert_eq!(remaining(&changed), 4998);

    // Asking for the quota is free too.
    let quota = api.get("/rate_limit").await;
    assert_eq!(quota.json["resources"]["core"]["remaining"], 4998);
    assert_eq!(remaining(&quota), 4998);
    github.assert_no_violations();
}

#[tokio::test]
async fn an_exhausted_quota_is_403_until_the_reset() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;
    let api = Api::new(&github);
    github.set_rate_limit(1, 600);
    let last = api.get(&repo("/labels")).await;
    assert_eq!(last.status, StatusCode::OK);
    assert_eq!(remaining(&last), 0);
    let reset: i64 = last.header("x-ratelimit-reset").parse().expect("reset");
    assert!(reset > chrono::Utc::now().timestamp() + 500);
    let refused = api.get(&repo("/labels")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.json["message"]
            .as_str()
            .unwrap_or_default()
            .contains("rate limit exceeded")
    );
    assert_eq!(remaining(&refused), 0);

    // The hour is over: the quota is back.
    github.set_rate_limit(0, -1);
    let back = api.get(&repo("/labels")).await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(remaining(&back), 4999);
    github.assert_no_violations();
}

#[tokio::test]
async fn secondary_rate_limits_are_injected_with_retry_after() {
    let fixture = GitFixture::new();
    let github = start(&fixture).await;
    let api = Api::new(&github);
    let n = github.create_issue("Add a greeting", "", &[]);
    github.inject_secondary_rate_limit("POST", "/comments", 403, Some(30), 1);
    github.inject_secondary_rate_limit("GET", "/labels", 429, Some(5), 2);

    let comment = api
        .post(
            &repo(&format!("/issues/{n}/comments")),
            serde_json::json!({"body": "hi"}),
        )
        .await;
    assert_eq!(comment.status, StatusCode::FORBIDDEN);
    assert_eq!(comment.header("retry-after"), "30");
    assert!(
        comment.json["message"]
            .as_str()
            .unwrap_or_default()
            .contains("secondary rate limit")
    );
    // Not the primary limit: quota is left, which is how a client tells them apart.
    assert!(remaining(&comment) > 0);
    assert!(github.comments(n).is_empty(), "the request was not applied");

    for _ in 0..2 {
        let labels = api.get(&repo("/labels")).await;
        assert_eq!(labels.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(labels.header("retry-after"), "5");
    }
    assert_eq!(api.get(&repo("/labels")).await.status, StatusCode::OK);
    assert_eq!(github.read(|s| s.forge.faults_injected()), 3);

    // The fake Forgejo's other faults work here too: a request that landed but whose
    // answer was lost.
    github.inject_fault(FaultRule::on(
        "POST",
        "/comments",
        Fault::Status {
            status: 502,
            retry_after: None,
        }
        .after_apply(),
    ));
    let lost = api
        .post(
            &repo(&format!("/issues/{n}/comments")),
            serde_json::json!({"body": "hi"}),
        )
        .await;
    assert_eq!(lost.status, StatusCode::BAD_GATEWAY);
    assert_eq!(github.comments(n).len(), 1, "applied before the fault");
    github.assert_no_violations();
}
