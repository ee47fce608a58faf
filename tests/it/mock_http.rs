//! A minimal scripted HTTP server for the forge clients' tests: one closure
//! answers every request, and every request is recorded for assertions.
//! Each forge's `mock` module adds its shapes and its client on top.

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use forgehand::http::retry::RetryPolicy;
use serde_json::Value;

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
    /// Where repository `o/r`'s API begins on this forge (`…/repos/o/r/`).
    repo_prefix: &'static str,
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

    /// The path below repository `o/r`'s API, split at `/`.
    pub fn repo_segs(&self) -> Vec<&str> {
        self.path
            .strip_prefix(self.repo_prefix)
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
}

/// A forge's mock: the server plus what that forge's tests add (a client).
pub struct ForgeMock<F> {
    mock: Mock,
    forge: std::marker::PhantomData<F>,
}

impl<F> Deref for ForgeMock<F> {
    type Target = Mock;

    fn deref(&self) -> &Mock {
        &self.mock
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

/// Serve `answer` for a forge whose repository API begins at `repo_prefix`.
pub async fn serve<F>(
    repo_prefix: &'static str,
    answer: impl Fn(&Seen) -> Response + Send + Sync + 'static,
) -> ForgeMock<F> {
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
                // Recorded in arrival order before the answer, which runs
                // without the lock (an answer may take its time).
                let s = {
                    let mut log = seen.lock().unwrap();
                    let nth = log
                        .iter()
                        .filter(|s| s.method == method && s.path == path)
                        .count();
                    let s = Seen {
                        method,
                        path,
                        query: parts.uri.query().unwrap_or_default().to_string(),
                        headers: parts.headers,
                        body: String::from_utf8_lossy(&bytes).into_owned(),
                        at: Instant::now(),
                        nth,
                        repo_prefix,
                    };
                    log.push(s.clone());
                    s
                };
                answer(&s)
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    ForgeMock {
        mock: Mock {
            url: format!("http://{addr}"),
            seen,
            task,
        },
        forge: std::marker::PhantomData,
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

/// What a proxy in front of the forge answers when the forge is away.
pub fn html(status: u16) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html")
        .body(Body::from(
            "<html><body>Bad gateway, try later</body></html>",
        ))
        .unwrap()
}
