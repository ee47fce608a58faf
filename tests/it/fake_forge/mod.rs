//! A stateful fake Forgejo for end-to-end tests, written from the official swagger (not
//! from forgehand's client) so that the two can disagree and a test can see it.
//!
//! # Layout
//! - `mod.rs` — [`FakeForge`]: start/stop, control methods, snapshots, [`FakeForge::wait_until`].
//! - `routes.rs` — the request path: log, swagger check, fault hook, auth, dispatch, paging.
//! - `issues.rs`, `pulls.rs` — endpoint handlers.
//! - `state.rs` — [`ForgeState`] and its records; `json.rs` — the wire shapes.
//! - `behaviour.rs` — simulated CI and reviewer; `git.rs` — the real bare repository.
//! - `log.rs` — request log, violations, faults (queued and chaos); requests are judged
//!   by `crate::swagger`.
//! - `conn.rs` — the listener whose connections a handler can reset (the `Reset` fault).
//! - `fixture.rs` — [`fixture::GitFixture`], a bare repository plus a clone for tests.
//!
//! ```ignore
//! let forge = FakeForge::start(FakeForgeOptions { bare_repo, ..Default::default() }).await;
//! let n = forge.create_issue("Add a greeting", "body", &["backlog"]);
//! forge.set_behaviour(Behaviour { ci: CiBehaviour::Succeed, review: ReviewBehaviour::ApproveWhenGreen, ..Default::default() });
//! forge.wait_until(Duration::from_secs(60), |s| !s.issue(n).is_open()).await?;
//! assert!(forge.violations().is_empty(), "{:#?}", forge.violations());
//! ```
//!
//! The server runs on its own thread and runtime, so a test may block its own runtime
//! (e.g. waiting on a child process) without starving the fake.

// The API serves end-to-end tests written elsewhere; not every item is used by the self-test.
#![allow(dead_code, unused_imports)]

pub(crate) mod behaviour;
pub(crate) mod conn;
pub mod fixture;
pub(crate) mod git;
mod issues;
mod json;
pub(crate) mod log;
mod pulls;
mod routes;
pub(crate) mod state;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use tokio::sync::{Notify, oneshot};

pub use behaviour::{Behaviour, CI_CONTEXT, CI_USER, CiBehaviour, REVIEWER, ReviewBehaviour};
pub use git::BareRepo;
pub use log::{Chaos, Fault, FaultRule, RequestRecord, Violation, ViolationKind};
pub use state::{
    Comment, CommitStatus, ForgeState, Issue, Label, MergeRecord, Pull, Review, ReviewComment,
};

/// Default author of issues and comments created by the test (a human with
/// write access to the repository).
pub const HUMAN: &str = "alice";

/// How to start a [`FakeForge`].
#[derive(Debug, Clone)]
pub struct FakeForgeOptions {
    pub owner: String,
    pub repo: String,
    /// The only token accepted (`Authorization: token <T>` or `Bearer <T>`).
    pub token: String,
    /// The real bare repository PR heads are read from and merges are made in.
    pub bare_repo: PathBuf,
    pub default_branch: String,
    /// Login `GET /user` returns and the author of everything the API creates.
    pub bot_login: String,
}

impl Default for FakeForgeOptions {
    fn default() -> Self {
        Self {
            owner: "acme".to_owned(),
            repo: "widget".to_owned(),
            token: "tok-123".to_owned(),
            bare_repo: PathBuf::new(),
            default_branch: "main".to_owned(),
            bot_login: "forgehand-bot".to_owned(),
        }
    }
}

/// What the server thread and the test share.
struct Shared {
    state: Mutex<ForgeState>,
    /// Signalled after every request and every control method, for `wait_until`.
    changed: Notify,
    token: String,
}

impl Shared {
    /// Locks the state; a panicking predicate must not wedge the whole fake.
    fn lock(&self) -> MutexGuard<'_, ForgeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake Forgejo; stops when dropped.
pub struct FakeForge {
    shared: Arc<Shared>,
    url: String,
    options: FakeForgeOptions,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<conn::ConnHandle>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = chrono::Utc::now();
    let fault = shared.lock().faults.take(method.as_str(), uri.path());
    // Waited out without the lock, so other requests go on meanwhile.
    if let Some(Fault::Delay(wait)) = fault {
        tokio::time::sleep(wait).await;
    }
    let answer = {
        let mut state = shared.lock();
        let query = uri.query().unwrap_or("");
        routes::serve(
            &mut state,
            &shared.token,
            method.as_str(),
            uri.path(),
            query,
            &headers,
            &body,
            fault.as_ref(),
            received,
        )
    };
    shared.changed.notify_waiters();
    match answer.delivery {
        routes::Delivery::Now => {}
        routes::Delivery::After(wait) => tokio::time::sleep(wait).await,
        routes::Delivery::Reset => conn.reset(),
    }
    answer.response
}

impl FakeForge {
    /// Binds `127.0.0.1:0` and serves the API under `/api/v1` from a dedicated thread.
    pub async fn start(options: FakeForgeOptions) -> FakeForge {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("binding the fake forge to 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("making the fake forge listener non-blocking");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("fake forge address")
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(ForgeState::new(url.clone(), &options)),
            changed: Notify::new(),
            token: options.token.clone(),
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name("fake-forge".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("building the fake forge runtime");
                runtime.block_on(async move {
                    let listener = conn::ResettableListener(
                        tokio::net::TcpListener::from_std(listener).expect("fake forge listener"),
                    );
                    let app = app.into_make_service_with_connect_info::<conn::ConnHandle>();
                    tokio::select! {
                        served = axum::serve(listener, app) => served.expect("fake forge server"),
                        _ = stopped => {}
                    }
                });
                // Open keep-alive connections must not hold the test up.
                runtime.shutdown_background();
            })
            .expect("spawning the fake forge thread");
        FakeForge {
            shared,
            url,
            options,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, the forge URL for forgehand's project file.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `<url>/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.url)
    }

    pub fn token(&self) -> &str {
        &self.options.token
    }

    pub fn bare_repo(&self) -> &Path {
        &self.options.bare_repo
    }

    /// Runs `f` on the state after bringing it up to date with the bare repository, then
    /// wakes waiters (so control methods built on it count as state changes).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut ForgeState) -> R) -> R {
        let result = {
            let mut state = self.shared.lock();
            behaviour::settle(&mut state);
            let result = f(&mut state);
            behaviour::settle(&mut state);
            result
        };
        self.shared.changed.notify_waiters();
        result
    }

    /// Reads the up-to-date state.
    pub fn read<R>(&self, f: impl FnOnce(&ForgeState) -> R) -> R {
        self.with_state(|s| f(s))
    }

    /// Adds a repository webhook delivering to `url`, as the web UI would.
    pub fn add_hook(&self, url: &str, active: bool) {
        self.with_state(|s| {
            let id = s.hooks.len() as u64 + 1;
            s.hooks.push(serde_json::json!({
                "id": id,
                "type": "forgejo",
                "active": active,
                "events": ["issues", "issue_comment", "pull_request", "pull_request_review", "status"],
                "config": {"url": url, "content_type": "json"},
                "created_at": "2026-11-01T12:00:00Z",
                "updated_at": "2026-11-01T12:00:00Z",
            }))
        });
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.with_state(|s| s.behaviour = behaviour);
    }

    /// Queues a fault for matching requests (see [`FaultRule`]).
    pub fn inject_fault(&self, rule: FaultRule) {
        self.with_state(|s| s.faults.rules.push(rule));
    }

    /// Injects random faults into a fraction of all later requests (see [`Chaos`]);
    /// queued rules still come first.
    pub fn set_chaos(&self, chaos: Chaos) {
        self.with_state(|s| s.faults.set_chaos(Some(chaos)));
    }

    /// Stops injecting random faults.
    pub fn clear_chaos(&self) {
        self.with_state(|s| s.faults.set_chaos(None));
    }

    /// How many requests got an injected fault so far.
    pub fn faults_injected(&self) -> u64 {
        self.shared.lock().faults.injected
    }

    /// Creates a repository label and returns its id.
    pub fn create_label(&self, name: &str, color: &str) -> u64 {
        self.with_state(|s| s.new_label(name, color, ""))
    }

    /// Creates an issue by [`HUMAN`] with these labels (missing labels are created) and
    /// returns its number.
    pub fn create_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
        self.create_issue_by(HUMAN, title, body, labels)
    }

    pub fn create_issue_by(&self, user: &str, title: &str, body: &str, labels: &[&str]) -> u64 {
        let n = self.with_state(|s| s.new_issue(title, body, user, false));
        for label in labels {
            self.add_label(n, label);
        }
        n
    }

    /// Adds a label by name, creating it in the repository if needed.
    pub fn add_label(&self, issue: u64, name: &str) {
        self.with_state(|s| {
            if s.label_by_name(name).is_none() {
                s.new_label(name, issues::DEFAULT_COLOR, "");
            }
            s.attach_label(issue, name);
        });
    }

    pub fn remove_label(&self, issue: u64, name: &str) {
        self.with_state(|s| {
            // Forgejo stamps an issue with every change of its labels.
            if let Some(i) = s.issues.get_mut(&issue)
                && i.labels.iter().any(|l| l == name)
            {
                i.labels.retain(|l| l != name);
                i.updated_at = chrono::Utc::now();
            }
        });
    }

    /// From now on issue lists show the issues as they are now, until
    /// `thaw_lists`: what a list read just before later changes shows.
    pub fn freeze_lists(&self) {
        self.with_state(|s| s.lists_as_of = Some(s.issues.clone()));
    }

    pub fn thaw_lists(&self) {
        self.with_state(|s| s.lists_as_of = None);
    }

    pub fn close_issue(&self, issue: u64) {
        self.with_state(|s| s.set_issue_state(issue, "closed"));
    }

    pub fn reopen_issue(&self, issue: u64) {
        self.with_state(|s| s.set_issue_state(issue, "open"));
    }

    /// Records that `issue` depends on (is blocked by) `blocker`, as the dependency API shows.
    pub fn add_dependency(&self, issue: u64, blocker: u64) {
        self.with_state(|s| {
            if let Some(i) = s.issues.get_mut(&issue)
                && !i.depends_on.contains(&blocker)
            {
                i.depends_on.push(blocker);
                i.updated_at = chrono::Utc::now();
            }
        });
    }

    /// Posts a comment as `user` and returns its id.
    pub fn add_comment(&self, issue: u64, user: &str, body: &str) -> u64 {
        self.with_state(|s| s.new_comment(issue, user, body))
    }

    /// Posts a commit status as the CI user and returns its id.
    pub fn set_status(
        &self,
        sha: &str,
        context: &str,
        state: &str,
        description: &str,
        target_url: &str,
    ) -> u64 {
        self.with_state(|s| s.new_status(sha, context, state, description, target_url, CI_USER))
    }

    /// Submits a review (`APPROVED`, `REQUEST_CHANGES`, `COMMENT`) on `commit_id`, or on the
    /// PR's current head when `None`; `comments` are (path, line, text). Returns its id.
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
            let head = s
                .pulls
                .get(&pull)
                .map(|p| p.head_sha.clone())
                .unwrap_or_default();
            let commit = commit_id.map_or(head, str::to_owned);
            s.new_review(pull, user, state, body, &commit, &comments, None)
        })
    }

    /// Submits a review on the PR's current head that is official or not
    /// whatever `user` may do (as with a branch's approvals whitelist).
    pub fn submit_review_official(
        &self,
        pull: u64,
        user: &str,
        state: &str,
        body: &str,
        official: bool,
    ) -> u64 {
        self.with_state(|s| {
            let head = s
                .pulls
                .get(&pull)
                .map(|p| p.head_sha.clone())
                .unwrap_or_default();
            s.new_review(pull, user, state, body, &head, &[], Some(official))
        })
    }

    /// Gives `login` this access mode on the repository (`none`, `read`,
    /// `write`, `admin`, `owner`); it decides whether `login`'s later reviews
    /// are official and what the permission endpoint answers.
    pub fn set_permission(&self, login: &str, mode: &str) {
        self.with_state(|s| {
            s.permissions.insert(login.to_owned(), mode.to_owned());
        });
    }

    /// Marks a review dismissed, as a maintainer would.
    pub fn dismiss_review(&self, id: u64) {
        self.with_state(|s| {
            if let Some(r) = s.reviews.iter_mut().find(|r| r.id == id) {
                r.dismissed = true;
            }
        });
    }

    pub fn issue(&self, n: u64) -> Issue {
        self.read(|s| s.issue(n).clone())
    }

    /// PR `n`; panics if there is none.
    pub fn pull(&self, n: u64) -> Pull {
        self.read(|s| s.pull(n).cloned())
            .unwrap_or_else(|| panic!("fake forge has no pull request #{n}"))
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.read(|s| s.pulls().cloned().collect())
    }

    pub fn comments(&self, issue: u64) -> Vec<Comment> {
        self.read(|s| s.comments(issue).cloned().collect())
    }

    pub fn reviews(&self, pull: u64) -> Vec<Review> {
        self.read(|s| s.reviews(pull).cloned().collect())
    }

    pub fn statuses(&self, sha: &str) -> Vec<CommitStatus> {
        self.read(|s| s.statuses(sha).cloned().collect())
    }

    pub fn merges(&self) -> Vec<MergeRecord> {
        self.read(|s| s.merges().to_vec())
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests().to_vec()
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.shared.lock().violations().to_vec()
    }

    pub fn request_count(&self) -> usize {
        self.shared.lock().requests().len()
    }

    /// Waits until `predicate` holds, re-checking after every state change (requests and
    /// control methods signal a `Notify`; no polling). On timeout the error carries a
    /// summary of the state.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        predicate: impl Fn(&ForgeState) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            // Registered before checking, so a change between check and wait is not lost.
            changed.as_mut().enable();
            {
                let mut state = self.shared.lock();
                behaviour::settle(&mut state);
                if predicate(&state) {
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let summary = self.shared.lock().summary();
                anyhow::bail!(
                    "fake forge: condition not met within {timeout:?}; state:\n{summary}"
                );
            }
        }
    }
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
