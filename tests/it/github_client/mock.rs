//! A minimal scripted HTTP server in GitHub's shapes for the GitHub client
//! tests: one closure answers every request, and every request is recorded for
//! assertions (and for the check against GitHub's OpenAPI description).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use forgehand::forge::github::{Credentials, GithubClient};
use forgehand::http::retry::RetryPolicy;
use serde_json::{Value, json};

pub const TOKEN: &str = "ghp_t0kenForTheMockServer1234567890";

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Raw (still percent-encoded) path.
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
    pub at: Instant,
    /// How many requests with the same method and path came before this one.
    pub nth: usize,
}

impl Seen {
    /// The decoded value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<String> {
        let url = reqwest::Url::parse(&format!("http://x/?{}", self.query)).unwrap();
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// The path below `/repos/o/r/`, split at `/`.
    pub fn repo_segs(&self) -> Vec<&str> {
        self.path
            .strip_prefix("/repos/o/r/")
            .map(|p| p.split('/').collect())
            .unwrap_or_default()
    }
}

pub struct Mock {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mock {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests with this method whose path ends with `suffix`.
    pub fn hits(&self, method: &str, suffix: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method && s.path.ends_with(suffix))
            .collect()
    }

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

/// Retries without waiting for real backoffs.
pub fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(5),
        max_retry_after: Duration::from_secs(5),
    }
}

pub async fn serve(answer: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Mock {
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let answer = Arc::new(answer);
    let app = Router::new().fallback({
        let seen = seen.clone();
        move |req: Request| {
            let seen = seen.clone();
            let answer = answer.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
                let method = parts.method.to_string();
                let path = parts.uri.path().to_string();
                let nth = {
                    let log = seen.lock().unwrap();
                    log.iter()
                        .filter(|s| s.method == method && s.path == path)
                        .count()
                };
                let s = Seen {
                    method,
                    path,
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    headers: parts.headers,
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                    at: Instant::now(),
                    nth,
                };
                let response = answer(&s);
                seen.lock().unwrap().push(s);
                response
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Mock {
        url: format!("http://{addr}"),
        seen,
        task,
    }
}

pub fn reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

pub fn empty(status: u16) -> Response {
    StatusCode::from_u16(status).unwrap().into_response()
}

pub fn with_headers(mut r: Response, headers: &[(&'static str, &str)]) -> Response {
    for (k, v) in headers {
        r.headers_mut().insert(*k, v.parse().unwrap());
    }
    r
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
