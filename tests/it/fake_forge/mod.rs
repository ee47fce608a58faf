//! A stateful fake Forgejo for end-to-end tests, written from the official swagger (not
//! from forgehand's client) so that the two can disagree and a test can see it.
//!
//! # Layout
//! - `mod.rs` — [`FakeForge`]: start, the control methods only Forgejo has.
//! - `crate::fake_server` — what it shares with the fake GitHub: the server, the control
//!   methods on issues, PRs and faults, snapshots, [`FakeServer::wait_until`], replies,
//!   played faults, ETags, paging.
//! - `routes.rs` — the request path: log, swagger check, fault hook, auth, dispatch, paging.
//! - `issues.rs`, `pulls.rs` — endpoint handlers.
//! - `state.rs` — [`ForgeState`] and its records; `json.rs` — the wire shapes.
//! - `behaviour.rs` — simulated CI and reviewer; `git.rs` — the real bare repository.
//! - `log.rs` — request log, violations, faults (queued and chaos); requests are judged
//!   by `crate::swagger`.
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
pub mod fixture;
pub(crate) mod git;
mod issues;
mod json;
pub(crate) mod log;
mod pulls;
mod routes;
pub(crate) mod state;

use std::path::{Path, PathBuf};

use crate::fake_server::{Answer, FakeApi, FakeServer, Incoming};

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

/// A running fake Forgejo; stops when dropped.
pub type FakeForge = FakeServer<ForgeState>;

impl FakeApi for ForgeState {
    const NAME: &'static str = "fake forge";

    type Options = FakeForgeOptions;

    fn forge(&self) -> &ForgeState {
        self
    }

    fn forge_mut(&mut self) -> &mut ForgeState {
        self
    }

    fn settle(&mut self) {
        behaviour::settle(self);
    }

    fn summary(&self) -> String {
        ForgeState::summary(self)
    }

    fn serve(&mut self, incoming: Incoming, fault: Option<&Fault>) -> Answer {
        routes::serve(self, incoming, fault)
    }
}

impl FakeForge {
    /// Binds `127.0.0.1:0` and serves the API under `/api/v1` from a dedicated thread.
    pub async fn start(options: FakeForgeOptions) -> FakeForge {
        FakeServer::spawn(options, ForgeState::new)
    }

    /// `http://127.0.0.1:PORT`, the forge URL for forgehand's project file.
    pub fn url(&self) -> &str {
        self.server_url()
    }

    /// `<url>/api/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/api/v1", self.url())
    }

    pub fn token(&self) -> &str {
        &self.options().token
    }

    pub fn bare_repo(&self) -> &Path {
        &self.options().bare_repo
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
            let head = s.head_of(pull);
            s.new_review(pull, user, state, body, &head, &[], Some(official))
        })
    }
}
