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
//! - `mod.rs` — [`FakeGithub`]: options, start.
//! - `crate::fake_server` — what it shares with the fake Forgejo: the server, the control
//!   methods on issues, PRs and faults, snapshots, [`FakeServer::wait_until`], replies,
//!   played faults, ETags, paging.
//! - `control.rs` — the control methods only GitHub has, to play the world around forgehand.
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
use std::time::Duration;

pub use crate::fake_forge::fixture;
pub use crate::fake_forge::{
    CiBehaviour, Comment, CommitStatus, Fault, FaultRule, Issue, Label, MergeRecord, Pull,
    RequestRecord, Review, ReviewBehaviour, ReviewComment, Violation, ViolationKind,
};
use crate::fake_forge::{FakeForgeOptions, ForgeState};
use crate::fake_server::{Answer, FakeApi, FakeServer, Incoming};
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

/// A running fake GitHub; stops when dropped.
pub type FakeGithub = FakeServer<GithubState>;

impl FakeApi for GithubState {
    const NAME: &'static str = "fake GitHub";

    type Options = FakeGithubOptions;

    fn forge(&self) -> &ForgeState {
        &self.forge
    }

    fn forge_mut(&mut self) -> &mut ForgeState {
        &mut self.forge
    }

    fn settle(&mut self) {
        behaviour::settle(self);
    }

    fn summary(&self) -> String {
        GithubState::summary(self)
    }

    fn serve(&mut self, incoming: Incoming, fault: Option<&Fault>) -> Answer {
        routes::serve(self, incoming, fault)
    }
}

impl FakeGithub {
    /// Binds `127.0.0.1:0` and serves the API from a dedicated thread.
    pub async fn start(options: FakeGithubOptions) -> FakeGithub {
        let forge_options = FakeForgeOptions {
            owner: options.owner.clone(),
            repo: options.repo.clone(),
            token: options.token.clone(),
            bare_repo: options.bare_repo.clone(),
            default_branch: options.default_branch.clone(),
            bot_login: options.bot_login.clone(),
        };
        FakeServer::spawn(options, |url, options| {
            GithubState::new(ForgeState::new(url, &forge_options), options)
        })
    }

    /// `http://127.0.0.1:PORT` plus the API prefix: the `[forge] url` for forgehand (as
    /// `https://api.github.com`, or `https://HOST/api/v3` on Enterprise).
    pub fn url(&self) -> String {
        format!("{}{}", self.server_url(), self.options().api_prefix)
    }

    pub fn token(&self) -> &str {
        &self.options().token
    }

    pub fn bare_repo(&self) -> &Path {
        &self.options().bare_repo
    }
}
