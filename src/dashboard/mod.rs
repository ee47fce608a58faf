//! The web dashboard (`forgehand run --dashboard ADDR`): a page of every
//! project and issue forgehand holds, a page per issue with its journal and
//! a redacted snapshot of its agent's pane, both kept live over server-sent
//! events; `/api/status` (the rows of `forgehand status --json`) and
//! `/metrics` (Prometheus). It faces people, not the forge: separate from
//! the webhook listener, and behind a token when not on loopback (`auth.rs`).
//!
//! It only reads: the store through its thread ([`Store`]), tmux with
//! `capture-pane`. The pages and their script are compiled into the binary
//! and put every fact into the document as text, never as HTML; a strict
//! Content-Security-Policy forbids any script but the dashboard's own.

mod auth;
mod feed;
mod metrics;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::actors::ProjectCtx;
use crate::config::ForgeConfig;
use crate::paths::{StatePaths, session_name};
use crate::redact::Redactor;
use crate::store::Store;
use crate::tmux::Tmux;
use crate::webhook::Limits;

pub use auth::{Access, MIN_TOKEN_LEN, TOKEN_ENV, access};

const INDEX: &str = include_str!("assets/index.html");
const ISSUE: &str = include_str!("assets/issue.html");
const LOGIN: &str = include_str!("assets/login.html");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// Only the dashboard's own files, fetched from its own address; nothing
/// inline, nothing framed, forms posted only back to it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A bound dashboard, not yet serving.
pub struct Bound {
    listener: TcpListener,
    access: Access,
    pub addr: SocketAddr,
}

/// Why the dashboard cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The address and the token do not go together (a usage error).
    #[error("{0}")]
    Access(String),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// Bind `addr` and decide who may look, from the token's value if the
/// variable is set. Logs the address bound (port 0 picks one).
pub async fn bind(addr: &str, token: Option<&str>) -> Result<Bound, BindError> {
    use anyhow::Context;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening for the dashboard on {addr}"))?;
    let bound = listener
        .local_addr()
        .with_context(|| format!("reading the address bound for {addr}"))?;
    let access = access(bound.ip(), token).map_err(BindError::Access)?;
    let who = match access {
        Access::Loopback => "this machine's users, no token",
        Access::Token(_) => "holders of the token",
    };
    tracing::info!("dashboard on http://{bound}/ (for {who})");
    Ok(Bound {
        listener,
        access,
        addr: bound,
    })
}

/// One project as the dashboard knows it.
pub struct DashboardProject {
    pub name: String,
    forge_kind: &'static str,
    forge: ForgeConfig,
    repo: String,
    /// The project's own: everything shown passes it.
    redactor: Redactor,
}

impl DashboardProject {
    pub fn of(ctx: &ProjectCtx) -> DashboardProject {
        let project = &ctx.project;
        DashboardProject {
            name: project.name.clone(),
            forge_kind: match project.forge {
                ForgeConfig::Forgejo(_) => "forgejo",
                ForgeConfig::Gitea(_) => "gitea",
                ForgeConfig::Github(_) => "github",
                ForgeConfig::Local(_) => "local",
            },
            forge: project.forge.clone(),
            repo: project.repo.clone(),
            redactor: ctx.redactor.clone(),
        }
    }

    fn pr_url(&self, n: u64) -> Option<String> {
        view::pr_url(&self.forge, &self.repo, n)
    }
}

/// What the dashboard reads from.
pub struct DashboardArgs {
    pub projects: Vec<DashboardProject>,
    pub store: Arc<Store>,
    /// The server the agents' sessions are on.
    pub tmux: Tmux,
    pub paths: StatePaths,
    pub limits: Limits,
}

/// What every request handler shares.
struct App {
    projects: Vec<DashboardProject>,
    store: Arc<Store>,
    tmux: Tmux,
    paths: StatePaths,
    access: Access,
    feed: feed::Feed,
}

/// Serve the dashboard until the future is dropped.
pub async fn serve(bound: Bound, args: DashboardArgs) {
    let app = Arc::new(App {
        projects: args.projects,
        store: args.store,
        tmux: args.tmux,
        paths: args.paths,
        access: bound.access.clone(),
        feed: feed::Feed::new(),
    });
    let router = router(app.clone());
    // Both in this one future, so dropping it stops both.
    tokio::select! {
        () = feed::keep_fresh(app) => {}
        () = crate::webhook::serve::serve(bound.listener, router, args.limits, "dashboard") => {}
    }
}

fn router(app: Arc<App>) -> Router {
    let access = app.access.clone();
    Router::new()
        .route("/", get(overview_page))
        .route("/issue/{project}/{key}", get(issue_page))
        .route("/events", get(overview_events))
        .route("/events/issue/{project}/{key}", get(issue_events))
        .route("/api/status", get(api_status))
        .route("/metrics", get(metrics_text))
        .route(
            "/assets/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/assets/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/login", get(login_page).post(login))
        .layer(middleware::from_fn_with_state(access, auth::guard))
        .layer(middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(app)
}

/// On every answer, the refused ones included.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The issue's session, when the address names one the way forgehand
/// names them: a project name and an issue number or a plan's name.
fn session_for(project: &str, key: &str) -> Option<String> {
    let project_ok = !project.is_empty()
        && project.len() <= 64
        && project
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let key_ok = !key.is_empty()
        && key.len() <= 128
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    (project_ok && key_ok).then(|| session_name(project, key))
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such page\n").into_response()
}

/// Where a page's first data goes: a JSON data block, which is never run.
const DATA_MARK: &str = "@@FIRST_PAINT@@";

/// `page` with `json` in its data block. `<`, `>` and `&` become JSON
/// escapes, so no text in it can end the block or start markup.
fn with_data(page: &str, json: &str) -> Html<String> {
    let safe = json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    Html(page.replacen(DATA_MARK, &safe, 1))
}

async fn overview_page(State(app): State<Arc<App>>) -> Response {
    let data = feed::first_paint(&app, feed::FirstPaint::Overview).await;
    with_data(INDEX, &data).into_response()
}

async fn issue_page(
    State(app): State<Arc<App>>,
    Path((project, key)): Path<(String, String)>,
) -> Response {
    let Some(session) = session_for(&project, &key) else {
        return not_found();
    };
    let page = feed::FirstPaint::Issue {
        project: &project,
        session: &session,
    };
    let data = feed::first_paint(&app, page).await;
    with_data(ISSUE, &data).into_response()
}

async fn overview_events(State(app): State<Arc<App>>) -> Response {
    live(Sse::new(feed::overview_stream(app.feed.subscribe())).keep_alive(KeepAlive::default()))
}

/// An event stream's answer, marked so that a proxy in front (nginx) passes
/// each event on at once instead of buffering them.
fn live(sse: impl IntoResponse) -> Response {
    let mut response = sse.into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

async fn issue_events(
    State(app): State<Arc<App>>,
    Path((project, key)): Path<(String, String)>,
) -> Response {
    let Some(session) = session_for(&project, &key) else {
        return not_found();
    };
    live(Sse::new(feed::issue_stream(app, project, session)).keep_alive(KeepAlive::default()))
}

fn store_failed(what: &str, e: anyhow::Error) -> Response {
    tracing::error!("dashboard: {what}: {e:#}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "could not read the store\n",
    )
        .into_response()
}

async fn api_status(State(app): State<Arc<App>>) -> Response {
    match app.store.status_json(None).await {
        Ok(status) => axum::Json(view::status_json(&app.projects, status)).into_response(),
        Err(e) => store_failed("reading the status", e),
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    let counts = match app.store.counts().await {
        Ok(counts) => counts,
        Err(e) => return store_failed("counting for /metrics", e),
    };
    // A tmux that does not answer leaves the session count at zero rather
    // than failing the whole scrape.
    let live_sessions = app.tmux.list_sessions().await.unwrap_or_else(|e| {
        tracing::warn!("dashboard: listing tmux sessions: {e:#}");
        Vec::new()
    });
    let projects: Vec<String> = app.projects.iter().map(|p| p.name.clone()).collect();
    let text = metrics::render(&metrics::Scrape {
        projects: &projects,
        counts: &counts,
        requests: &crate::http::metrics::requests_by_answer(),
        live_sessions: &live_sessions,
    });
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

/// The login form, or (nothing to log in to) the dashboard itself.
async fn login_page(State(app): State<Arc<App>>) -> Response {
    match app.access {
        Access::Loopback => redirect("/"),
        Access::Token(_) => Html(LOGIN).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(app): State<Arc<App>>, axum::Form(form): axum::Form<LoginForm>) -> Response {
    let Access::Token(check) = &app.access else {
        return redirect("/");
    };
    if !check.token_matches(form.token.trim()) {
        tracing::warn!("dashboard: a login with a wrong token was refused");
        let page = LOGIN.replace(
            "<!--failed-->",
            "<p class=\"failed\" role=\"alert\">That is not the dashboard's token.</p>",
        );
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000",
        auth::COOKIE,
        check.cookie_value()
    );
    let mut response = redirect("/");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn redirect(to: &'static str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, to)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
