//! Self-tests of the fake GitHub over plain HTTP (reqwest, no forgehand code): that it
//! refuses what GitHub's description does not allow, authenticates tokens, app JWTs and
//! installation tokens, pages with `Link`, answers `304` for free, limits rates, and that
//! issues, PRs, merges, reviews, checks, Actions and the simulated CI and reviewer behave
//! as on GitHub. Every test also asserts the fake's answers fit the description.

mod auth;
mod ci;
mod issues;
mod limits;
mod pulls;
mod shapes;
mod webhooks;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::fake_github::fixture::GitFixture;
use crate::fake_github::{FakeGithub, FakeGithubOptions};

/// A client for the fake's API with one `Authorization` header (or none).
pub struct Api {
    client: reqwest::Client,
    /// The API root (`FakeGithub::url`).
    root: String,
    authorization: Option<String>,
}

/// Status, headers and JSON (`Null` when the body is not JSON) of one answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl Api {
    /// With the fake's personal access token, as `Bearer`.
    pub fn new(github: &FakeGithub) -> Self {
        Self::with_authorization(github, Some(format!("Bearer {}", github.token())))
    }

    pub fn with_authorization(github: &FakeGithub, authorization: Option<String>) -> Self {
        Self {
            // Redirects are the test's to follow: the logs redirect is under test.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("fake-github-selftest")
                .build()
                .expect("reqwest client"),
            root: github.url(),
            authorization,
        }
    }

    /// `path` is relative to the API root: `/user`, `/repos/acme/widget/issues?state=all`;
    /// a full URL (a `Link` target) is taken as it is.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.root)
        };
        let mut request = self.client.request(method, url);
        if let Some(a) = &self.authorization {
            request = request.header("Authorization", a);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request to the fake GitHub");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        Answer {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body), &[])
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::PUT, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::PATCH, path, Some(body), &[])
            .await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None, &[]).await
    }
}

/// `/repos/acme/widget` + `rest`.
pub fn repo(rest: &str) -> String {
    format!("/repos/acme/widget{rest}")
}

pub async fn start(fixture: &GitFixture) -> FakeGithub {
    FakeGithub::start(FakeGithubOptions {
        bare_repo: fixture.bare.clone(),
        ..Default::default()
    })
    .await
}

/// Pushes a branch `name` off `main` with one commit changing `file`, and returns its sha.
pub fn push_branch(fixture: &GitFixture, name: &str, file: &str, content: &str) -> String {
    fixture.branch(name, "main");
    let sha = fixture.commit(file, content, &format!("change {file}"));
    fixture.push(name);
    sha
}

/// Opens a PR for `branch` into `main` over the API and returns its number.
pub async fn open_pull(api: &Api, branch: &str) -> u64 {
    let created = api
        .post(
            &repo("/pulls"),
            serde_json::json!({"head": branch, "base": "main", "title": format!("{branch} work"), "body": "Fixes #1"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.json["number"].as_u64().expect("PR number")
}

/// The names of the objects in a JSON array (`name`, or `title` for issues).
pub fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().or_else(|| v["title"].as_str()))
        .map(str::to_owned)
        .collect()
}
