//! GitHub's real webhook deliveries (`tests/api/github-webhook-examples.json`)
//! through the payload mapping and through the listener: every example of the
//! events forgehand acts on nudges the issue, pull request or commit it names;
//! `ping` is answered and nudges nothing; other events are answered 200.

use std::sync::Arc;
use std::time::Duration;

use forgehand::forge::{CommitSha, IssueNumber, Nudge, PrNumber};
use forgehand::store::Store;
use forgehand::webhook::{self, HookTarget, WebhookConfig, nudge_for, sign};
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::mpsc::unbounded_channel;

const SECRET: &str = "gh-s3cret";
const REPO: &str = "acme/widgets";

/// Events forgehand acts on.
const ACTED_ON: [&str; 9] = [
    "issues",
    "issue_comment",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "status",
    "check_run",
    "check_suite",
    "workflow_run",
];

/// Every example delivery: (event, body).
fn examples() -> Vec<(String, Value)> {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/github-webhook-examples.json"
    );
    let events: Vec<Value> = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    events
        .into_iter()
        .flat_map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            e["examples"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |ex| (name.clone(), ex.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn number(body: &Value, pointer: &str) -> u64 {
    body.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} in {body}"))
}

fn text(body: &Value, pointer: &str) -> String {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {body}"))
        .to_string()
}

/// What an example of `event` should nudge, read from the payload itself.
fn expected(event: &str, body: &Value) -> Option<Nudge> {
    let on_pull = body
        .pointer("/issue/pull_request")
        .is_some_and(|v| !v.is_null());
    Some(match event {
        "issues" | "issue_comment" if on_pull => {
            Nudge::Pull(PrNumber(number(body, "/issue/number")))
        }
        "issues" | "issue_comment" => Nudge::Issue(IssueNumber(number(body, "/issue/number"))),
        "pull_request" | "pull_request_review" | "pull_request_review_comment" => {
            Nudge::Pull(PrNumber(number(body, "/pull_request/number")))
        }
        "status" => Nudge::Commit(CommitSha(text(body, "/sha"))),
        "check_run" => Nudge::Commit(CommitSha(text(body, "/check_run/head_sha"))),
        "check_suite" => Nudge::Commit(CommitSha(text(body, "/check_suite/head_sha"))),
        "workflow_run" => Nudge::Commit(CommitSha(text(body, "/workflow_run/head_sha"))),
        "push" => Nudge::Repo,
        _ => return None,
    })
}

#[test]
fn every_example_maps_to_what_it_names() {
    let mut acted = std::collections::BTreeMap::<String, usize>::new();
    for (event, body) in examples() {
        let bytes = body.to_string().into_bytes();
        let got = nudge_for(&event, &bytes)
            .unwrap_or_else(|e| panic!("{event}: {e}"))
            .map(|n| {
                assert_eq!(
                    n.repo(),
                    text(&body, "/repository/full_name"),
                    "{event}: the repository"
                );
                n.into_forge()
            });
        assert_eq!(got, expected(&event, &body), "{event}: {body}");
        if ACTED_ON.contains(&event.as_str()) {
            *acted.entry(event).or_default() += 1;
        }
    }
    // Every event of the list has examples, and each was looked at.
    for event in ACTED_ON {
        assert!(
            acted.get(event).is_some_and(|n| *n > 0),
            "no example of {event}"
        );
    }
}

#[tokio::test]
async fn every_example_delivered_and_signed_nudges_the_project() {
    let dir = TempDir::new().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
    let (tx, mut nudges) = unbounded_channel();
    let target = HookTarget {
        project: "widgets".into(),
        repo: REPO.into(),
        secret: SECRET.into(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(webhook::serve(
        listener,
        WebhookConfig::new(vec![target]),
        store,
        tx,
    ));
    let client = reqwest::Client::new();
    for (i, (event, mut body)) in examples().into_iter().enumerate() {
        // Rewritten to the project's repository, as GitHub would send it for it.
        body["repository"]["full_name"] = Value::from(REPO);
        let bytes = body.to_string().into_bytes();
        let response = client
            .post(format!("{base}/hooks/github"))
            .header("X-GitHub-Event", &event)
            .header("X-GitHub-Delivery", format!("delivery-{i}"))
            .header(
                "X-Hub-Signature-256",
                format!("sha256={}", sign(SECRET.as_bytes(), &bytes)),
            )
            .header("Content-Type", "application/json")
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{event}");
        let said = response.text().await.unwrap();
        if event == "ping" {
            assert_eq!(said, "pong\n");
        }
        match expected(&event, &body) {
            Some(nudge) => {
                let got = tokio::time::timeout(Duration::from_secs(5), nudges.recv())
                    .await
                    .expect("a nudge within 5 s")
                    .expect("channel open");
                assert_eq!(got, ("widgets".to_string(), nudge), "{event}");
            }
            // Each handler sends before it answers: nothing came, nothing will.
            None => assert_eq!(nudges.try_recv().ok(), None, "{event}"),
        }
    }
    server.abort();
}
