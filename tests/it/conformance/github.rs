//! The conformance driver for the GitHub client: the fake GitHub over a real bare
//! repository is the world; CI reports as a check run and a commit status, as
//! GitHub Actions and another CI would. The same checks run twice: signed in
//! with a token, and as a GitHub App (`app`).

use std::time::Duration;

use async_trait::async_trait;
use forgehand::forge::github::{Credentials, GithubClient};
use forgehand::forge::{CommitSha, Forge, IssueNumber, Nudge, PrNumber, ReviewState, StatusState};
use forgehand::http::retry::RetryPolicy;

use super::{Ci, Driver, PRIMARY, Reviewer, Support, checks};
use crate::fake_forge::fixture::{GitFixture, git};
use crate::fake_github::control::CheckRunSpec;
use crate::fake_github::{AppOptions, FakeGithub, FakeGithubOptions, HUMAN, keys};

/// The check run's name and the status context the driver's CI reports under.
const CONTEXT: &str = "ci/conformance";
/// Someone with read access only.
const OUTSIDER: &str = "passer-by";

pub struct GithubDriver {
    // Dropped in this order: the client, the fake, then its repository.
    client: GithubClient,
    fake: FakeGithub,
    fixture: GitFixture,
}

impl GithubDriver {
    /// Signed in with a personal access token.
    pub async fn start() -> GithubDriver {
        GithubDriver::with(false).await
    }

    /// Signed in as a GitHub App.
    pub async fn start_app() -> GithubDriver {
        GithubDriver::with(true).await
    }

    async fn with(as_app: bool) -> GithubDriver {
        let fixture = GitFixture::new();
        let key = keys::app_key();
        let app = AppOptions::new(key);
        let fake = FakeGithub::start(FakeGithubOptions {
            bare_repo: fixture.bare.clone(),
            app: as_app.then(|| app.clone()),
            ..Default::default()
        })
        .await;
        fake.set_permission(OUTSIDER, "read");
        // No faults here: a retry would only hide a contract broken.
        let policy = RetryPolicy {
            max_attempts: 1,
            request_timeout: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let credentials = if as_app {
            Credentials::App {
                app_id: app.app_id,
                installation_id: app.installation_id,
                private_key_pem: key.private_pem.clone(),
            }
        } else {
            Credentials::Token(fake.token().to_owned())
        };
        let client = GithubClient::new(&fake.url(), "acme/widget", credentials, policy)
            .expect("a client for the fake GitHub");
        GithubDriver {
            client,
            fake,
            fixture,
        }
    }
}

conformance!(GithubDriver::start);

/// The same checks, signed in as a GitHub App (the macro's `super::checks` and
/// `super::Driver` are this file's imports).
mod app {
    use super::GithubDriver;

    conformance!(GithubDriver::start_app);
}

#[async_trait]
impl Driver for GithubDriver {
    fn forge(&self) -> &dyn Forge {
        &self.client
    }

    async fn create_issue(&self, title: &str, body: &str, labels: &[&str]) -> IssueNumber {
        IssueNumber(self.fake.create_issue(title, body, labels))
    }

    async fn push_branch(&self, branch: &str, ci: Ci) -> CommitSha {
        // Off the primary branch as the forge has it now (merges happen there).
        git(&self.fixture.work, &["fetch", "-q", "origin"]);
        self.fixture.branch(branch, &format!("origin/{PRIMARY}"));
        let file = format!("{}.txt", branch.replace('/', "-"));
        let sha = self.fixture.commit(&file, branch, branch);
        self.fixture.push(branch);
        let (conclusion, state) = match ci {
            Ci::Pass => ("success", "success"),
            Ci::Fail => ("failure", "failure"),
            Ci::Silent => return CommitSha(sha),
        };
        self.fake.add_check_run(
            &sha,
            CheckRunSpec::completed("conformance-ci", CONTEXT, conclusion),
        );
        self.fake
            .set_status(&sha, CONTEXT, state, "the tests", "http://ci.example/1");
        CommitSha(sha)
    }

    /// Check runs and statuses are reported as the branch is pushed.
    async fn ci_reported(&self, _sha: &CommitSha) {}

    async fn comment_as_person(&self, n: u64, body: &str) -> Support<String> {
        self.fake.add_comment(n, HUMAN, body);
        Support::Yes(HUMAN.to_owned())
    }

    async fn label_pull(&self, pr: PrNumber, label: &str) -> Support<()> {
        self.fake.add_label(pr.0, label);
        Support::Yes(())
    }

    async fn review(
        &self,
        pr: PrNumber,
        state: ReviewState,
        who: Reviewer,
        body: &str,
    ) -> Support<()> {
        let state = match state {
            ReviewState::Approved => "APPROVED",
            ReviewState::ChangesRequested => "CHANGES_REQUESTED",
            other => panic!("the checks give no {other:?} reviews"),
        };
        let user = match who {
            Reviewer::Writer => HUMAN,
            Reviewer::Outsider => OUTSIDER,
        };
        self.fake.submit_review(pr.0, user, state, body, None, &[]);
        Support::Yes(())
    }

    async fn review_line(&self, pr: PrNumber, path: &str, line: u64, body: &str) -> Support<()> {
        self.fake
            .submit_review(pr.0, HUMAN, "COMMENTED", "", None, &[(path, line, body)]);
        Support::Yes(())
    }

    async fn next_nudge(&self) -> Support<Nudge> {
        Support::No(
            "a forge over HTTP reports its changes through webhooks, which the daemon receives",
        )
    }

    fn writer(&self) -> String {
        HUMAN.to_owned()
    }

    fn outsider(&self) -> Support<String> {
        Support::Yes(OUTSIDER.to_owned())
    }

    async fn primary_head(&self) -> CommitSha {
        CommitSha(self.fixture.bare_sha(PRIMARY))
    }

    fn unreported_status(&self) -> Option<StatusState> {
        None
    }

    fn expected_issue_url(&self, n: IssueNumber) -> String {
        format!("{}/acme/widget/issues/{n}", self.fake.server_url())
    }

    fn assert_contract_kept(&self) {
        self.fake.assert_no_violations();
    }
}
