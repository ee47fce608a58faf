//! git's smart HTTP protocol in front of a bare repository, through the real
//! `git http-backend` (CGI): what a forge's `https://…/owner/name.git` is to
//! forgehand's fetches and pushes. It records whether each request carried
//! an `Authorization` header, and can be told to hang fetches (a stuck forge
//! connection) while pushes go through.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use tokio::io::AsyncWriteExt;

struct Shared {
    /// The folder holding `<name>.git`.
    root: PathBuf,
    hang_fetches: AtomicBool,
    /// Fetches that were left hanging.
    hung: AtomicUsize,
    /// Requests that came with an `Authorization` header.
    authorized: AtomicUsize,
    requests: AtomicUsize,
}

pub struct GitHttp {
    shared: Arc<Shared>,
    url: String,
    _server: tokio::task::JoinHandle<()>,
}

impl GitHttp {
    /// Serves the bare repository `bare` at `http://127.0.0.1:<port>/<name>.git`.
    pub async fn start(bare: &Path) -> GitHttp {
        let root = bare
            .parent()
            .expect("a bare repository in a folder")
            .to_path_buf();
        let name = bare
            .file_name()
            .expect("a named repository")
            .to_string_lossy()
            .into_owned();
        let shared = Arc::new(Shared {
            root,
            hang_fetches: AtomicBool::new(false),
            hung: AtomicUsize::new(0),
            authorized: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the git server");
        let addr = listener.local_addr().expect("its address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        GitHttp {
            shared,
            url: format!("http://{addr}/{name}"),
            _server: server,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// From now on fetches (`git-upload-pack` POSTs) never get an answer;
    /// pushes and ref listings still do.
    pub fn hang_fetches(&self, hang: bool) {
        self.shared.hang_fetches.store(hang, Ordering::SeqCst);
    }

    pub fn hung(&self) -> usize {
        self.shared.hung.load(Ordering::SeqCst)
    }

    /// How many requests came, and how many of them with credentials.
    pub fn requests(&self) -> (usize, usize) {
        (
            self.shared.requests.load(Ordering::SeqCst),
            self.shared.authorized.load(Ordering::SeqCst),
        )
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if headers.contains_key("authorization") {
        shared.authorized.fetch_add(1, Ordering::SeqCst);
    }
    let path = uri.path().to_string();
    if method == Method::POST
        && path.ends_with("/git-upload-pack")
        && shared.hang_fetches.load(Ordering::SeqCst)
    {
        shared.hung.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut cgi = tokio::process::Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        // Pushes over HTTP need an authenticated user, as on a forge.
        .env("REMOTE_USER", "forgehand-bot")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cgi.spawn() {
        Ok(c) => c,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body).await;
    }
    let out = match child.wait_with_output().await {
        Ok(out) => out,
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}")),
    };
    cgi_response(&out.stdout)
}

/// A CGI answer (headers, a blank line, the body) as an HTTP response.
fn cgi_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((at, gap)) = split else {
        return plain(StatusCode::BAD_GATEWAY, "no CGI headers".into());
    };
    let head = String::from_utf8_lossy(&raw[..at]).into_owned();
    let mut response = Response::builder().status(StatusCode::OK);
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("200");
            response = response.status(code.parse::<u16>().unwrap_or(200));
        } else {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(raw[at + gap..].to_vec()))
        .unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "bad CGI headers".into()))
}

fn plain(status: StatusCode, text: String) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from(text))
        .expect("a plain response")
}
