//! A stateful fake GitHub for the GitHub client's tests and the end-to-end tests, written
//! from GitHub's official OpenAPI description (`crate::openapi`), not from forgehand's
//! client, so that the two can disagree and a test can see it.
//!
//! It is the fake Forgejo's state ([`ForgeState`]: issues, labels, comments, PRs whose
//! heads come from a real bare repository, reviews, statuses, merges, request log, faults)
//! behind a second router that speaks GitHub's REST API at the root (the client's `url`
//! is [`FakeGithub::url`], like `https://api.github.com`), extended with what GitHub has
//! and Forgejo lacks: check suites and runs, Actions workflow runs and jobs with logs,
//! issue dependencies by id, git refs, GitHub's merge rules, `mergeable: null` while
//! "computing", rate limits, ETags, and the GitHub App authentication.
//!
//! # Layout
//! - `mod.rs` — [`FakeGithub`]: options, start/stop, [`FakeGithub::wait_until`].
//! - `control.rs` — the control methods tests use to play the world around forgehand.
//! - `routes.rs` — the request path: log, OpenAPI check, faults, auth, rate limit,
//!   dispatch, ETags, pagination; `auth.rs` — tokens, JWTs and installation tokens.
//! - `issues.rs`, `pulls.rs`, `checks.rs` — endpoint handlers.
//! - `state.rs` — [`GithubState`] and its records; `json.rs`, `pull_json.rs`,
//!   `ci_json.rs` — the wire shapes.
//! - `behaviour.rs` — simulated Actions CI, "other CI" statuses and reviewer.
//! - `keys.rs` — test RSA keys (made with `openssl` at test time) and JWTs.
//! - `webhooks.rs` — GitHub's example deliveries, rewritten to a test repository and signed.
//!
//! ```ignore
//! let github = FakeGithub::start(FakeGithubOptions { bare_repo, ..Default::default() }).await;
//! let n = github.create_issue("Add a greeting", "body", &["backlog"]);
//! github.set_behaviour(Behaviour { actions: ActionsBehaviour::FailFirst(1),
//!     review: ReviewBehaviour::ApproveWhenGreen, ..Default::default() });
//! github.wait_until(Duration::from_secs(60), |s| !s.forge.issue(n).is_open()).await?;
//! github.assert_no_violations();
//! ```
//!
//! # What a client must do to pass
//! - Only operations of `tests/api/github-rest.subset.json`, with declared query
//!   parameters and enum values and bodies that fit the request schema; anything else is
//!   refused (404/422) and recorded ([`ViolationKind`]), and `assert_no_violations` fails.
//! - A `User-Agent` header; `Authorization: Bearer <t>` or `token <t>` with the token or a
//!   live installation token; the app JWT (RS256, `iss` the app id, `exp` at most 10
//!   minutes ahead) only on `GET /app` and `POST /app/installations/{id}/access_tokens`.
//! - Merges with `sha` (flagged otherwise); dependencies added by issue *id*; labels by
//!   name, created before use (a missing one is flagged); no `GET /user` as an app.
//! - Cope with GitHub's ways: PRs in the issue list, `mergeable: null`, `Link` paging,
//!   a combined status `pending` with no statuses, the logs `302` to a tokenless link.
//!
//! Like the fake Forgejo, the server runs on its own thread and runtime, so a test may
//! block its own runtime without starving the fake.

// The API serves end-to-end tests written elsewhere; not every item is used by the self-test.
#![allow(dead_code, unused_imports)]

mod auth;
mod behaviour;
mod checks;
mod ci_json;
pub mod control;
mod hooks;
mod issues;
mod json;
pub mod keys;
mod paging;
mod pull_json;
mod pulls;
mod routes;
mod state;
pub mod webhooks;

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

use crate::fake_forge::conn;
pub use crate::fake_forge::fixture;
use crate::fake_forge::{Chaos, FakeForgeOptions, ForgeState};
pub use crate::fake_forge::{
    CiBehaviour, Comment, CommitStatus, Fault, FaultRule, Issue, Label, MergeRecord, Pull,
    RequestRecord, Review, ReviewBehaviour, ReviewComment, Violation, ViolationKind,
};
pub use behaviour::{
    ACTIONS_JOBS, ActionsBehaviour, Behaviour, FAILURE_MARKER, InfraFailure, OTHER_CI_CONTEXT,
    REVIEWER, RUNNER_LOST_MESSAGE,
};
pub use keys::TestKey;
pub use state::{
    ACTIONS_APP, CheckRun, CheckSuite, GithubState, InstallationToken, Job, Step, WorkflowRun,
};

/// Default author of issues and comments created by the test: a human with write access.
pub const HUMAN: &str = crate::fake_forge::HUMAN;

/// How to start a [`FakeGithub`].
#[derive(Debug, Clone)]
pub struct FakeGithubOptions {
    pub owner: String,
    pub repo: String,
    /// The personal access token accepted (`Authorization: Bearer <T>` or `token <T>`).
    pub token: String,
    /// The real bare repository PR heads are read from and merges are made in.
    pub bare_repo: PathBuf,
    pub default_branch: String,
    /// Login of the token's user: what `GET /user` answers and who authors what the
    /// token creates.
    pub bot_login: String,
    /// The GitHub App, when the App authentication is to be tested.
    pub app: Option<AppOptions>,
    /// Where the API lives under the server: `""` as on api.github.com, `"/api/v3"` as on
    /// GitHub Enterprise Server.
    pub api_prefix: String,
    /// `X-RateLimit-Limit` of the primary (core) rate limit; the window is an hour.
    pub rate_limit: u64,
    /// The repository setting: GitHub deletes the head branch itself after a merge.
    pub delete_branch_on_merge: bool,
}

impl Default for FakeGithubOptions {
    fn default() -> Self {
        Self {
            owner: "acme".to_owned(),
            repo: "widget".to_owned(),
            token: "ghp_test123".to_owned(),
            bare_repo: PathBuf::new(),
            default_branch: "main".to_owned(),
            bot_login: "forgehand-bot".to_owned(),
            app: None,
            api_prefix: String::new(),
            rate_limit: 5000,
            delete_branch_on_merge: false,
        }
    }
}

/// The GitHub App the fake knows: JWTs signed with the key whose public half is here are
/// accepted for `/app` and for installation tokens of `installation_id`.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub app_id: u64,
    /// The app's slug: `GET /app` tells it, and what an installation token does is done
    /// by `<slug>[bot]`.
    pub slug: String,
    pub installation_id: u64,
    /// PEM (`BEGIN PUBLIC KEY`) of the key the app's JWTs must be signed with.
    pub public_key_pem: String,
    /// How long an installation token lives (GitHub: one hour); short to test renewal.
    pub token_lifetime: Duration,
}

impl AppOptions {
    /// An app with id 4242, slug `forgehand-test`, installation 777, tokens for an hour,
    /// verifying JWTs with `key`.
    pub fn new(key: &TestKey) -> Self {
        Self {
            app_id: 4242,
            slug: "forgehand-test".to_owned(),
            installation_id: 777,
            public_key_pem: key.public_pem.clone(),
            token_lifetime: Duration::from_secs(3600),
        }
    }

    /// `<slug>[bot]`, the login of everything done with an installation token.
    pub fn bot_login(&self) -> String {
        format!("{}[bot]", self.slug)
    }
}

/// What the server thread and the test share.
struct Shared {
    state: Mutex<GithubState>,
    /// Signalled after every request and every control method, for `wait_until`.
    changed: Notify,
}

impl Shared {
    /// Locks the state; a panicking predicate must not wedge the whole fake.
    fn lock(&self) -> MutexGuard<'_, GithubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running fake GitHub; stops when dropped.
pub struct FakeGithub {
    shared: Arc<Shared>,
    url: String,
    options: FakeGithubOptions,
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
    let fault = shared.lock().forge.faults.take(method.as_str(), uri.path());
    // Waited out without the lock, so other requests go on meanwhile.
    if let Some(Fault::Delay(wait)) = fault {
        tokio::time::sleep(wait).await;
    }
    let answer = {
        let mut state = shared.lock();
        routes::serve(
            &mut state,
            routes::Incoming {
                method: method.as_str(),
                path: uri.path(),
                raw_query: uri.query().unwrap_or(""),
                headers: &headers,
                body: &body,
                received,
            },
            fault.as_ref(),
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

impl FakeGithub {
    /// Binds `127.0.0.1:0` and serves the API from a dedicated thread.
    pub async fn start(options: FakeGithubOptions) -> FakeGithub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("binding the fake GitHub to 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("making the fake GitHub listener non-blocking");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("fake GitHub address")
        );
        let forge_options = FakeForgeOptions {
            owner: options.owner.clone(),
            repo: options.repo.clone(),
            token: options.token.clone(),
            bare_repo: options.bare_repo.clone(),
            default_branch: options.default_branch.clone(),
            bot_login: options.bot_login.clone(),
        };
        let forge = ForgeState::new(url.clone(), &forge_options);
        let shared = Arc::new(Shared {
            state: Mutex::new(GithubState::new(forge, &options)),
            changed: Notify::new(),
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name("fake-github".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("building the fake GitHub runtime");
                runtime.block_on(async move {
                    let listener = conn::ResettableListener(
                        tokio::net::TcpListener::from_std(listener).expect("fake GitHub listener"),
                    );
                    let app = app.into_make_service_with_connect_info::<conn::ConnHandle>();
                    tokio::select! {
                        served = axum::serve(listener, app) => served.expect("fake GitHub server"),
                        _ = stopped => {}
                    }
                });
                // Open keep-alive connections must not hold the test up.
                runtime.shutdown_background();
            })
            .expect("spawning the fake GitHub thread");
        FakeGithub {
            shared,
            url,
            options,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` plus the API prefix: the `[forge] url` for forgehand (as
    /// `https://api.github.com`, or `https://HOST/api/v3` on Enterprise).
    pub fn url(&self) -> String {
        format!("{}{}", self.url, self.options.api_prefix)
    }

    /// `http://127.0.0.1:PORT`, without the API prefix.
    pub fn server_url(&self) -> &str {
        &self.url
    }

    pub fn token(&self) -> &str {
        &self.options.token
    }

    pub fn options(&self) -> &FakeGithubOptions {
        &self.options
    }

    pub fn bare_repo(&self) -> &Path {
        &self.options.bare_repo
    }

    /// Runs `f` on the state after bringing it up to date with the bare repository, then
    /// wakes waiters (so control methods built on it count as state changes).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut GithubState) -> R) -> R {
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
    pub fn read<R>(&self, f: impl FnOnce(&GithubState) -> R) -> R {
        self.with_state(|s| f(s))
    }

    /// Waits until `predicate` holds, re-checking after every state change (requests and
    /// control methods signal a `Notify`; no polling). On timeout the error carries a
    /// summary of the state.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        predicate: impl Fn(&GithubState) -> bool,
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
                    "fake GitHub: condition not met within {timeout:?}; state:\n{summary}"
                );
            }
        }
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
