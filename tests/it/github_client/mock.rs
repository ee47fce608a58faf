//! The GitHub client tests' mock server (`mock_http`) in GitHub's shapes:
//! the client for it, and the bodies the tests serve. Every request it
//! records is also checked against GitHub's OpenAPI description.

use axum::response::Response;
use forgehand::forge::github::{Credentials, GithubClient};
use forgehand::http::retry::RetryPolicy;
use serde_json::{Value, json};

pub use crate::mock_http::{Seen, empty, fast, reply, with_headers};

pub const TOKEN: &str = "ghp_t0kenForTheMockServer1234567890";

pub struct Github;

pub type Mock = crate::mock_http::ForgeMock<Github>;

impl Mock {
    /// A client for repository `o/r` on this server, with a token.
    pub fn client(&self, policy: RetryPolicy) -> GithubClient {
        GithubClient::new(
            &self.url,
            "o/r",
            Credentials::Token(TOKEN.to_string()),
            policy,
        )
        .unwrap()
    }
}

pub async fn serve(answer: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Mock {
    crate::mock_http::serve("/repos/o/r/", answer).await
}

pub fn not_found() -> Response {
    reply(
        404,
        json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
    )
}

/// GitHub's `issue`; a pull request carries `pull_request`.
pub fn issue(n: u64, labels: &[&str], is_pull: bool) -> Value {
    let labels: Vec<Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| json!({"id": i + 1, "name": l, "color": "ededed", "default": false}))
        .collect();
    let mut issue = json!({
        "id": 1000 + n,
        "number": n,
        "title": format!("issue {n}"),
        "body": null,
        "labels": labels,
        "state": "open",
        "created_at": "2024-05-01T10:00:00Z",
        "user": {"login": "alice", "id": 3},
        "html_url": format!("https://github.example/o/r/issues/{n}"),
    });
    if is_pull {
        issue["pull_request"] = json!({
            "url": format!("https://api.github.example/repos/o/r/pulls/{n}"),
            "merged_at": null,
        });
    }
    issue
}

/// GitHub's `pull-request` (`full`) or `pull-request-simple` (the list's).
pub fn pull(n: u64, head: &str, sha: &str, full: bool) -> Value {
    let mut pull = json!({
        "id": 2000 + n,
        "number": n,
        "title": format!("fix: {head}"),
        "body": "Fixes #1",
        "head": {"ref": head, "sha": sha, "label": format!("o:{head}"),
                 "repo": {"full_name": "o/r"}},
        "base": {"ref": "main", "sha": "base000", "label": "o:main",
                 "repo": {"full_name": "o/r"}},
        "state": "open",
        "merged_at": null,
        "merge_commit_sha": "testmerge123",
        "html_url": format!("https://github.example/o/r/pull/{n}"),
        "user": {"login": "forgehand"},
        "draft": false,
    });
    if full {
        pull["merged"] = json!(false);
        pull["mergeable"] = json!(true);
    }
    pull
}

/// `pull` after a merge.
pub fn merged_pull(n: u64, head: &str, sha: &str) -> Value {
    let mut p = pull(n, head, sha, true);
    p["merged"] = json!(true);
    p["state"] = json!("closed");
    p["merged_at"] = json!("2024-05-02T10:00:00Z");
    p["merge_commit_sha"] = json!("merged999");
    p["mergeable"] = Value::Null;
    p
}

/// A `Link` header pointing at `path?page=<next>` of this server.
pub fn link_next(base: &str, path: &str, query: &str, next: u32) -> String {
    format!(
        "<{base}{path}?{query}&page={next}>; rel=\"next\", <{base}{path}?{query}&page=99>; rel=\"last\""
    )
}
