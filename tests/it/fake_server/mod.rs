//! What the fake Forgejo (`crate::fake_forge`) and the fake GitHub (`crate::fake_github`)
//! have in common: the server thread and its request loop, waiting on the state, the
//! control methods on the Forgejo-shaped state both keep, handler answers, the played
//! faults, ETags and paging by `Link`. Each fake keeps its own wire shapes and rules.
//!
//! A fake is a state type implementing [`FakeApi`] run by a [`FakeServer`]: `FakeForge`
//! is `FakeServer<ForgeState>` and `FakeGithub` is `FakeServer<GithubState>`, each with
//! its own start and control methods besides the shared ones here. `conn.rs` is the
//! listener whose connections a handler can reset (the `Reset` fault).

// The API serves end-to-end tests written elsewhere; not every item is used by each fake.
#![allow(dead_code)]

mod conn;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use crate::fake_forge::{
    Chaos, Comment, CommitStatus, Fault, FaultRule, ForgeState, Issue, MergeRecord, Pull,
    RequestRecord, Review, Violation, ViolationKind,
};
use crate::swagger::{Checked, Route, parse_query};

/// The state of a fake forge, as its server runs it.
pub trait FakeApi: Send + 'static {
    /// How messages name the fake (`fake forge`, `fake GitHub`).
    const NAME: &'static str;

    /// How the fake is started.
    type Options: Send + 'static;

    /// The Forgejo-shaped records: issues, PRs, reviews, statuses, requests, faults.
    fn forge(&self) -> &ForgeState;
    fn forge_mut(&mut self) -> &mut ForgeState;

    /// Brings the state up to date (the bare repository, the simulated CI and reviewer).
    fn settle(&mut self);

    /// A readable summary for timeout errors.
    fn summary(&self) -> String;

    /// Handles one request under the state lock; `fault` was taken for it (a plain
    /// `Delay` has already been waited out).
    fn serve(&mut self, incoming: Incoming, fault: Option<&Fault>) -> Answer;
}

/// The request as it came off the wire.
pub struct Incoming<'a> {
    pub method: &'a str,
    /// Raw (percent-encoded) path.
    pub path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub received: DateTime<Utc>,
}

impl Incoming<'_> {
    /// The `Authorization` header, when there is a readable one.
    pub fn authorization(&self) -> Option<&str> {
        self.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The query's pairs, percent-decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        parse_query(self.raw_query)
    }

    /// The request-log entry for this request, not yet authorized nor answered.
    pub fn record(&self) -> RequestRecord {
        RequestRecord {
            at: self.received,
            received: self.received,
            method: self.method.to_owned(),
            path: self.path.to_owned(),
            query: self.raw_query.to_owned(),
            body: String::from_utf8_lossy(self.body).into_owned(),
            token_present: self.authorization().is_some(),
            authorized: false,
            template: None,
            status: 0,
            fault: None,
        }
    }
}

/// One routed request, as handlers see it; `Caller` is who the forge found it comes
/// from (GitHub: the actor and its login; Forgejo needs nothing).
#[derive(Debug)]
pub struct Req<'a, Caller = ()> {
    pub method: &'a str,
    /// Raw request path, any API prefix included (for pagination links and violations).
    pub path: &'a str,
    /// Percent-decoded path parameters by the API description's names.
    pub params: HashMap<String, String>,
    pub query: Vec<(String, String)>,
    /// The JSON body, `Null` when absent or not JSON.
    pub body: Value,
    pub caller: Caller,
}

impl<'a, Caller> Req<'a, Caller> {
    /// `incoming` routed to a template with these parameters.
    pub fn new(
        incoming: &Incoming<'a>,
        params: HashMap<String, String>,
        query: Vec<(String, String)>,
        caller: Caller,
    ) -> Self {
        Self {
            method: incoming.method,
            path: incoming.path,
            params,
            query,
            body: serde_json::from_slice(incoming.body).unwrap_or(Value::Null),
            caller,
        }
    }

    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

    /// The first value of a query parameter.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated query parameter (`labels=1&labels=2`).
    pub fn q_all(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}

/// What the server thread and the test share.
struct Shared<S> {
    state: Mutex<S>,
    /// Signalled after every request and every control method, for `wait_until`.
    changed: Notify,
}

impl<S> Shared<S> {
    /// Locks the state; a panicking predicate must not wedge the whole fake.
    fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake on `127.0.0.1`, served from its own thread and runtime so that a test
/// may block its own runtime (e.g. waiting on a child process) without starving the
/// fake; stops when dropped.
pub struct FakeServer<S: FakeApi> {
    shared: Arc<Shared<S>>,
    url: String,
    options: S::Options,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Serves one request: takes the fault injected into it, waits out a plain delay without
/// the lock, lets the state answer, wakes waiters and delivers the answer as the fault
/// says.
async fn handle<S: FakeApi>(
    State(shared): State<Arc<Shared<S>>>,
    ConnectInfo(conn): ConnectInfo<conn::ConnHandle>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Utc::now();
    let fault = shared
        .lock()
        .forge_mut()
        .faults
        .take(method.as_str(), uri.path());
    // Waited out without the lock, so other requests go on meanwhile.
    if let Some(Fault::Delay(wait)) = fault {
        tokio::time::sleep(wait).await;
    }
    let answer = shared.lock().serve(
        Incoming {
            method: method.as_str(),
            path: uri.path(),
            raw_query: uri.query().unwrap_or(""),
            headers: &headers,
            body: &body,
            received,
        },
        fault.as_ref(),
    );
    shared.changed.notify_waiters();
    match answer.delivery {
        Delivery::Now => {}
        Delivery::After(wait) => tokio::time::sleep(wait).await,
        Delivery::Reset => conn.reset(),
    }
    answer.response
}

impl<S: FakeApi> FakeServer<S> {
    /// Binds `127.0.0.1:0` and serves the state `new_state` makes from the server's URL
    /// and the options.
    pub fn spawn(options: S::Options, new_state: impl FnOnce(String, &S::Options) -> S) -> Self {
        let name = S::NAME;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("binding the {name} to 127.0.0.1:0: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("making the {name} listener non-blocking: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{name} address: {e}"));
        let url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            state: Mutex::new(new_state(url.clone(), &options)),
            changed: Notify::new(),
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .fallback(handle::<S>)
            .with_state(Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name(name.replace(' ', "-").to_lowercase())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("building the {name} runtime: {e}"));
                runtime.block_on(async move {
                    let listener = conn::ResettableListener(
                        tokio::net::TcpListener::from_std(listener)
                            .unwrap_or_else(|e| panic!("{name} listener: {e}")),
                    );
                    let app = app.into_make_service_with_connect_info::<conn::ConnHandle>();
                    tokio::select! {
                        served = axum::serve(listener, app) => {
                            served.unwrap_or_else(|e| panic!("{name} server: {e}"));
                        }
                        _ = stopped => {}
                    }
                });
                // Open keep-alive connections must not hold the test up.
                runtime.shutdown_background();
            })
            .unwrap_or_else(|e| panic!("spawning the {name} thread: {e}"));
        FakeServer {
            shared,
            url,
            options,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn server_url(&self) -> &str {
        &self.url
    }

    /// The options the fake was started with.
    pub fn options(&self) -> &S::Options {
        &self.options
    }

    /// The state as it is, without settling it and without waking waiters.
    pub(crate) fn lock(&self) -> MutexGuard<'_, S> {
        self.shared.lock()
    }

    /// Runs `f` on the state after bringing it up to date with the bare repository, then
    /// wakes waiters (so control methods built on it count as state changes).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let result = {
            let mut state = self.shared.lock();
            state.settle();
            let result = f(&mut state);
            state.settle();
            result
        };
        self.shared.changed.notify_waiters();
        result
    }

    /// Reads the up-to-date state.
    pub fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        self.with_state(|s| f(s))
    }

    /// Waits until `predicate` holds, re-checking after every state change (requests and
    /// control methods signal a `Notify`; no polling). On timeout the error carries a
    /// summary of the state.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        predicate: impl Fn(&S) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            // Registered before checking, so a change between check and wait is not lost.
            changed.as_mut().enable();
            {
                let mut state = self.shared.lock();
                state.settle();
                if predicate(&state) {
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let summary = self.shared.lock().summary();
                anyhow::bail!(
                    "{}: condition not met within {timeout:?}; state:\n{summary}",
                    S::NAME
                );
            }
        }
    }

    // ----- control methods on the Forgejo-shaped records both fakes keep -----

    /// Queues a fault for matching requests (see [`FaultRule`]).
    pub fn inject_fault(&self, rule: FaultRule) {
        self.with_state(|s| s.forge_mut().faults.rules.push(rule));
    }

    /// Injects random faults into a fraction of all later requests (see [`Chaos`]);
    /// queued rules still come first.
    pub fn set_chaos(&self, chaos: Chaos) {
        self.with_state(|s| s.forge_mut().faults.set_chaos(Some(chaos)));
    }

    /// Stops injecting random faults.
    pub fn clear_chaos(&self) {
        self.with_state(|s| s.forge_mut().faults.set_chaos(None));
    }

    /// How many requests got an injected fault so far.
    pub fn faults_injected(&self) -> u64 {
        self.lock().forge().faults.injected
    }

    /// Creates a repository label and returns its id.
    pub fn create_label(&self, name: &str, color: &str) -> u64 {
        self.with_state(|s| s.forge_mut().new_label(name, color, ""))
    }

    /// Creates an issue by [`crate::fake_forge::HUMAN`] with these labels (missing
    /// labels are created) and returns its number.
    pub fn create_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
        self.create_issue_by(crate::fake_forge::HUMAN, title, body, labels)
    }

    pub fn create_issue_by(&self, user: &str, title: &str, body: &str, labels: &[&str]) -> u64 {
        let n = self.with_state(|s| s.forge_mut().new_issue(title, body, user, false));
        for label in labels {
            self.add_label(n, label);
        }
        n
    }

    /// Adds a label by name, creating it in the repository if needed.
    pub fn add_label(&self, issue: u64, name: &str) {
        self.with_state(|s| {
            let forge = s.forge_mut();
            if forge.label_by_name(name).is_none() {
                forge.new_label(name, DEFAULT_LABEL_COLOR, "");
            }
            forge.attach_label(issue, name);
        });
    }

    pub fn close_issue(&self, issue: u64) {
        self.with_state(|s| s.forge_mut().set_issue_state(issue, "closed"));
    }

    pub fn reopen_issue(&self, issue: u64) {
        self.with_state(|s| s.forge_mut().set_issue_state(issue, "open"));
    }

    /// Posts a comment as `user` and returns its id.
    pub fn add_comment(&self, issue: u64, user: &str, body: &str) -> u64 {
        self.with_state(|s| s.forge_mut().new_comment(issue, user, body))
    }

    /// Submits a review on `commit_id`, or on the PR's current head when `None`;
    /// `comments` are (path, line, text). Returns its id. The states are the forge's
    /// own (Forgejo: `APPROVED`, `REQUEST_CHANGES`, `COMMENT`; GitHub: `APPROVED`,
    /// `CHANGES_REQUESTED`, `COMMENTED`).
    pub fn submit_review(
        &self,
        pull: u64,
        user: &str,
        state: &str,
        body: &str,
        commit_id: Option<&str>,
        comments: &[(&str, u64, &str)],
    ) -> u64 {
        let comments: Vec<(String, u64, String)> = comments
            .iter()
            .map(|(p, l, t)| ((*p).to_owned(), *l, (*t).to_owned()))
            .collect();
        self.with_state(|s| {
            let forge = s.forge_mut();
            let commit = commit_id.map_or_else(|| forge.head_of(pull), str::to_owned);
            forge.new_review(pull, user, state, body, &commit, &comments, None)
        })
    }

    /// Gives `login` a role on the repository, in the forge's words (Forgejo: `none`,
    /// `read`, `write`, `admin`, `owner`; GitHub: `admin`, `maintain`, `write`,
    /// `triage`, `read`, `none`). The permission endpoint answers from it, and on
    /// Forgejo it decides whether `login`'s later reviews are official.
    pub fn set_permission(&self, login: &str, role: &str) {
        self.with_state(|s| {
            s.forge_mut()
                .permissions
                .insert(login.to_owned(), role.to_owned());
        });
    }

    /// Dismisses a review, as a maintainer would.
    pub fn dismiss_review(&self, id: u64) {
        self.with_state(|s| {
            if let Some(r) = s.forge_mut().reviews.iter_mut().find(|r| r.id == id) {
                r.dismissed = true;
            }
        });
    }

    pub fn issue(&self, n: u64) -> Issue {
        self.read(|s| s.forge().issue(n).clone())
    }

    /// PR `n`; panics if there is none.
    pub fn pull(&self, n: u64) -> Pull {
        self.read(|s| s.forge().pull(n).cloned())
            .unwrap_or_else(|| panic!("{} has no pull request #{n}", S::NAME))
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.read(|s| s.forge().pulls().cloned().collect())
    }

    pub fn comments(&self, issue: u64) -> Vec<Comment> {
        self.read(|s| s.forge().comments(issue).cloned().collect())
    }

    pub fn reviews(&self, pull: u64) -> Vec<Review> {
        self.read(|s| s.forge().reviews(pull).cloned().collect())
    }

    pub fn statuses(&self, sha: &str) -> Vec<CommitStatus> {
        self.read(|s| s.forge().statuses(sha).cloned().collect())
    }

    pub fn merges(&self) -> Vec<MergeRecord> {
        self.read(|s| s.forge().merges().to_vec())
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().forge().requests().to_vec()
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.lock().forge().violations().to_vec()
    }

    pub fn request_count(&self) -> usize {
        self.lock().forge().requests().len()
    }
}

impl<S: FakeApi> Drop for FakeServer<S> {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The colour both forges give a label made without one.
pub const DEFAULT_LABEL_COLOR: &str = "ededed";

/// Records the problems the API description found with a request as violations (of the
/// kind its route says) and returns the template it matched, if any.
pub fn judge(
    forge: &mut ForgeState,
    checked: &Checked,
    method: &str,
    path: &str,
) -> Option<String> {
    let kind = match checked.route {
        Route::Matched { .. } => ViolationKind::NotInSwagger,
        Route::MethodNotAllowed { .. } => ViolationKind::MethodNotAllowed,
        Route::UnknownPath => ViolationKind::UnknownPath,
    };
    for problem in &checked.problems {
        forge.violation(kind, method, path, problem.clone());
    }
    match &checked.route {
        Route::Matched { template, .. } | Route::MethodNotAllowed { template } => {
            Some(template.clone())
        }
        Route::UnknownPath => None,
    }
}

/// What a handler answers, turned into an HTTP response by [`Reply::into_response`].
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    body: ReplyBody,
    headers: Vec<(&'static str, String)>,
}

#[derive(Debug)]
enum ReplyBody {
    Json(Value),
    /// The forge's error body with this message.
    Error(String),
    Text(String),
    Html(String),
    Empty,
}

impl Reply {
    fn with_body(status: u16, body: ReplyBody) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub fn json(status: u16, value: Value) -> Self {
        Self::with_body(status, ReplyBody::Json(value))
    }

    /// The forge's error body (see [`Reply::into_response`]) with this message.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::with_body(status, ReplyBody::Error(message.into()))
    }

    pub fn empty(status: u16) -> Self {
        Self::with_body(status, ReplyBody::Empty)
    }

    pub fn text(status: u16, text: String) -> Self {
        Self::with_body(status, ReplyBody::Text(text))
    }

    /// What a proxy in front of the forge answers: an HTML page.
    pub fn html(status: u16, page: &str) -> Self {
        Self::with_body(status, ReplyBody::Html(page.to_owned()))
    }

    /// `302 Found` to `location`.
    pub fn redirect(location: String) -> Self {
        Self::empty(302).with_header("location", location)
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The JSON body, when the answer is JSON (errors are not).
    pub fn json_body(&self) -> Option<&Value> {
        match &self.body {
            ReplyBody::Json(v) => Some(v),
            _ => None,
        }
    }

    /// The HTTP response; `error_body` makes the forge's JSON for an error's status and
    /// message.
    pub fn into_response(self, error_body: impl FnOnce(u16, &str) -> Value) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match self.body {
            ReplyBody::Json(v) => (status, axum::Json(v)).into_response(),
            ReplyBody::Error(m) => {
                (status, axum::Json(error_body(self.status, &m))).into_response()
            }
            ReplyBody::Text(t) => (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                t,
            )
                .into_response(),
            ReplyBody::Html(h) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                h,
            )
                .into_response(),
            ReplyBody::Empty => status.into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

/// How an answer reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Now,
    /// After this long (the state lock released meanwhile).
    After(Duration),
    /// Not at all: the connection is cut.
    Reset,
}

/// A handled request: the response and how to deliver it.
pub struct Answer {
    pub response: Response,
    pub delivery: Delivery,
}

/// How a forge looks when a fault is played on it.
pub struct FaultLook {
    /// The error message of an injected status.
    pub status_message: fn(u16) -> &'static str,
    /// The page of an injected HTML answer.
    pub html_page: &'static str,
}

/// What the client gets for `fault`; `real` is the answer of a request already applied
/// (`AfterApply`), `None` when the fault replaces handling it.
pub fn play(fault: &Fault, real: Option<Reply>, look: &FaultLook) -> (Reply, Delivery) {
    match fault {
        Fault::Status {
            status,
            retry_after,
        } => {
            let reply = Reply::error(*status, (look.status_message)(*status));
            let reply = match retry_after {
                Some(secs) => reply.with_header("retry-after", secs.to_string()),
                None => reply,
            };
            (reply, Delivery::Now)
        }
        Fault::Html { status } => (Reply::html(*status, look.html_page), Delivery::Now),
        Fault::Reset => (Reply::empty(500), Delivery::Reset),
        // Only reached after applying: a plain delay is waited out before `serve`.
        Fault::Delay(wait) => (
            real.unwrap_or_else(|| Reply::error(500, "delay without an answer")),
            Delivery::After(*wait),
        ),
        Fault::AfterApply(inner) => play(inner, real, look),
    }
}

/// Plays the fault injected into a request around `apply`, which handles it: injected
/// failures come after the contract check, so a faulty request is still judged; only
/// `AfterApply` lets the request change the state first.
pub fn apply_with_fault(
    fault: Option<&Fault>,
    look: &FaultLook,
    apply: impl FnOnce() -> Reply,
) -> (Reply, Delivery) {
    match fault {
        None | Some(Fault::Delay(_)) => (apply(), Delivery::Now),
        Some(Fault::AfterApply(inner)) => {
            let real = apply();
            play(inner, Some(real), look)
        }
        Some(other) => play(other, None, look),
    }
}

/// A 200 JSON answer tagged with a hash of everything it says; `304` without a body
/// when the client already holds that tag. A `weak` tag is GitHub's form (`W/"…"`),
/// and then the strong form of the same tag matches as well.
pub fn with_etag(reply: Reply, request: &HeaderMap, weak: bool) -> Reply {
    let Some(value) = reply.json_body() else {
        return reply;
    };
    if reply.status != 200 {
        return reply;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    reply.headers.hash(&mut hasher);
    let strong = format!("\"{:016x}\"", hasher.finish());
    let etag = if weak {
        format!("W/{strong}")
    } else {
        strong.clone()
    };
    let held = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == etag || (weak && t.trim() == strong))
        });
    if held {
        Reply::empty(304).with_header("etag", etag)
    } else {
        reply.with_header("etag", etag)
    }
}

/// How a forge pages its lists.
pub struct Paging {
    /// The query parameter of the page size (`limit`, `per_page`).
    pub size_param: &'static str,
    /// The page size when the parameter is absent or 0.
    pub default_size: usize,
    /// The largest page size.
    pub max_size: usize,
    /// Between the links of the `Link` header.
    pub link_separator: &'static str,
}

/// The page the request's `page` and page size ask for, and the `Link` header to the
/// other pages (`next`, `last`, `first`, `prev`), which repeats the request's own path
/// and query so a client can follow it verbatim.
pub fn page_of<T>(
    paging: &Paging,
    base_url: &str,
    path: &str,
    query: &[(String, String)],
    items: Vec<T>,
) -> (Vec<T>, Option<String>) {
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let total = items.len();
    let size = match q(paging.size_param).and_then(|l| l.parse::<usize>().ok()) {
        None | Some(0) => paging.default_size,
        Some(l) => l.min(paging.max_size),
    };
    let page = q("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let last = total.div_ceil(size).max(1);
    let chunk: Vec<T> = items
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    let link = |p: usize, rel: &str| {
        let mut pairs: Vec<String> = query
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        pairs.push(format!("page={p}"));
        format!("<{base_url}{path}?{}>; rel=\"{rel}\"", pairs.join("&"))
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    (
        chunk,
        (!links.is_empty()).then(|| links.join(paging.link_separator)),
    )
}

/// Percent-encodes a query component (unreserved characters stay as they are).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
