//! The Forgejo client tests' mock server (`mock_http`) in Forgejo's
//! shapes: the client for it, and the issue and PR bodies the tests serve.

use axum::response::Response;
use forgehand::forge::forgejo::ForgejoClient;
use forgehand::http::retry::RetryPolicy;
use serde_json::{Value, json};

pub use crate::mock_http::{Seen, empty, fast, html, reply, with_headers};

pub const TOKEN: &str = "s3cr3t-t0ken-xyz";

pub struct Forgejo;

pub type Mock = crate::mock_http::ForgeMock<Forgejo>;

impl Mock {
    /// A client for repository `o/r` on this server.
    pub fn client(&self, policy: RetryPolicy) -> ForgejoClient {
        ForgejoClient::new(&self.url, "o/r", TOKEN.to_string(), policy).unwrap()
    }
}

pub async fn serve(answer: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Mock {
    crate::mock_http::serve("/api/v1/repos/o/r/", answer).await
}

pub fn not_found() -> Response {
    reply(404, json!({"message": "The target couldn't be found."}))
}

pub fn issue(n: u64, labels: &[&str], is_pull: bool) -> Value {
    let labels: Vec<Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| json!({"id": i + 1, "name": l, "color": "ededed"}))
        .collect();
    json!({
        "id": 1000 + n,
        "number": n,
        "title": format!("issue {n}"),
        "body": null,
        "labels": labels,
        "state": "open",
        "created_at": "2024-05-01T10:00:00+02:00",
        "user": {"id": 3, "login": "alice"},
        "html_url": format!("http://forge/o/r/issues/{n}"),
        "pull_request": if is_pull { json!({"merged": false, "draft": false}) } else { Value::Null },
    })
}

pub fn pull(n: u64, head: &str, base: &str, merged: bool) -> Value {
    json!({
        "id": 2000 + n,
        "number": n,
        "title": format!("fix: {head}"),
        "body": "Fixes #1",
        "head": {"ref": head, "sha": "abc123", "label": head},
        "base": {"ref": base, "sha": "def456"},
        "state": if merged { "closed" } else { "open" },
        "merged": merged,
        "mergeable": !merged,
        "merge_commit_sha": if merged { json!("fff999") } else { Value::Null },
        "html_url": format!("http://forge/o/r/pulls/{n}"),
        "user": {"login": "forgehand"},
    })
}
