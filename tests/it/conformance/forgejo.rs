//! The conformance driver for the Forgejo client: the fake Forgejo over a real
//! bare repository is the world, its control methods set it up as a person
//! or a CI server would.

use std::time::Duration;

use async_trait::async_trait;
use forgehand::forge::forgejo::ForgejoClient;
use forgehand::forge::{CommitSha, Forge, IssueNumber, Nudge, PrNumber, ReviewState, StatusState};
use forgehand::http::retry::RetryPolicy;

use super::{Ci, Driver, PRIMARY, Reviewer, Support};
use crate::fake_forge::fixture::{GitFixture, git};
use crate::fake_forge::{FakeForge, FakeForgeOptions, HUMAN};

/// The status context the driver's CI posts under.
const CONTEXT: &str = "ci/conformance";
/// Someone the fake gives only read access.
const OUTSIDER: &str = "passer-by";

pub struct ForgejoDriver {
    // Dropped in this order: the client, the fake, then its repository.
    client: ForgejoClient,
    fake: FakeForge,
    fixture: GitFixture,
}

impl ForgejoDriver {
    pub async fn start() -> ForgejoDriver {
        let fixture = GitFixture::new();
        let fake = FakeForge::start(FakeForgeOptions {
            bare_repo: fixture.bare.clone(),
            ..Default::default()
        })
        .await;
        // No faults here: a retry would only hide a contract broken.
        let policy = RetryPolicy {
            max_attempts: 1,
            request_timeout: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let client = ForgejoClient::new(fake.url(), "acme/widget", fake.token().to_owned(), policy)
            .expect("a client for the fake forge");
        ForgejoDriver {
            client,
            fake,
            fixture,
        }
    }
}

conformance!(ForgejoDriver::start);

#[async_trait]
impl Driver for ForgejoDriver {
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
        let state = match ci {
            Ci::Pass => "success",
            Ci::Fail => "failure",
            Ci::Silent => return CommitSha(sha),
        };
        self.fake
            .set_status(&sha, CONTEXT, state, "the tests", "http://ci.example/1");
        CommitSha(sha)
    }

    /// Statuses are posted as the branch is pushed.
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
            ReviewState::ChangesRequested => "REQUEST_CHANGES",
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
            .submit_review(pr.0, HUMAN, "COMMENT", "", None, &[(path, line, body)]);
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
        format!("{}/acme/widget/issues/{n}", self.fake.url())
    }

    fn assert_contract_kept(&self) {
        let violations = self.fake.violations();
        assert!(violations.is_empty(), "{violations:#?}");
    }
}
