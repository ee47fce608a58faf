//! One contract, every `Forge`: checks written once against `&dyn Forge`, run
//! against each implementation through a [`Driver`] that sets up its world
//! (issues, branches, CI verdicts, reviews, comments by people).
//!
//! Where an implementation legitimately differs (the local backend has no
//! other people to comment, no unofficial reviewers, CI that starts when
//! asked), its driver says so: a [`Support::No`] with the reason, or a
//! different expected value, which the checks then assert. Nothing is skipped
//! silently: every `No` is printed with its reason.
//!
//! # Layout
//! - `mod.rs`: the driver interface and `conformance!`, which makes one test
//!   per check in a driver's module.
//! - `checks.rs`: the checks, each against `&dyn Driver` and its forge.
//! - `forgejo.rs`: the Forgejo client against the fake Forgejo.
//! - `github.rs`: the GitHub client against the fake GitHub, with a token and
//!   as a GitHub App.
//! - `local.rs`: the local backend over a plans folder and a real repository.
//!
//! A new implementation adds a module with its driver and one
//! `conformance!(ItsDriver::start);` line.

use std::time::Duration;

use async_trait::async_trait;
use forgehand::forge::{CommitSha, Forge, IssueNumber, Nudge, PrNumber, ReviewState, StatusState};

/// How long anything asynchronous (local CI, a folder watch) may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// The primary branch of every driver's repository.
pub const PRIMARY: &str = "main";

/// What the CI of a pushed commit will say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ci {
    Pass,
    Fail,
    /// Nothing has reported on it yet (the check looks before any CI).
    Silent,
}

/// Who reviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reviewer {
    /// A person with write access: the review counts.
    Writer,
    /// Someone without it: the review is there but does not count.
    Outsider,
}

/// A driver's answer to a request its implementation cannot honour, with why.
pub enum Support<T> {
    Yes(T),
    No(&'static str),
}

impl<T> Support<T> {
    /// The value, or `None` after printing why this implementation has none.
    fn or_say(self, what: &str) -> Option<T> {
        match self {
            Support::Yes(value) => Some(value),
            Support::No(why) => {
                eprintln!("conformance: {what}: not on this forge: {why}");
                None
            }
        }
    }
}

/// What a check needs of an implementation's world besides the forge itself.
#[async_trait]
pub trait Driver: Send + Sync {
    /// The implementation under test.
    fn forge(&self) -> &dyn Forge;

    /// Creates an open issue by a person with write access, carrying exactly
    /// `labels`.
    async fn create_issue(&self, title: &str, body: &str, labels: &[&str]) -> IssueNumber;

    /// Pushes `branch`: one commit of its own on the primary branch as it is
    /// now, whose CI will say `ci`. The commit.
    async fn push_branch(&self, branch: &str, ci: Ci) -> CommitSha;

    /// Returns once the CI verdict `push_branch` promised for `sha` is in.
    async fn ci_reported(&self, sha: &CommitSha);

    /// A person with write access comments on issue or pull request `n`; their login.
    async fn comment_as_person(&self, n: u64, body: &str) -> Support<String>;

    /// Labels pull request `pr` as an issue would be.
    async fn label_pull(&self, pr: PrNumber, label: &str) -> Support<()>;

    /// `who` reviews `pr` on its current head.
    async fn review(
        &self,
        pr: PrNumber,
        state: ReviewState,
        who: Reviewer,
        body: &str,
    ) -> Support<()>;

    /// A person with write access comments on line `line` of `path` in a review of `pr`.
    async fn review_line(&self, pr: PrNumber, path: &str, line: u64, body: &str) -> Support<()>;

    /// The next change the forge reported itself (`Forge::watch`).
    async fn next_nudge(&self) -> Support<Nudge>;

    /// A login with write access to the repository.
    fn writer(&self) -> String;

    /// A login without it.
    fn outsider(&self) -> Support<String>;

    /// The commit the primary branch points at in the repository.
    async fn primary_head(&self) -> CommitSha;

    /// What `combined_status` says of a commit nothing has reported on.
    fn unreported_status(&self) -> Option<StatusState>;

    /// Where people find issue `n`, worked out independently of the forge.
    fn expected_issue_url(&self, n: IssueNumber) -> String;

    /// Fails the test if the world saw the implementation break its own
    /// contract (the fake Forgejo's swagger violations).
    fn assert_contract_kept(&self);
}

/// One `#[tokio::test]` per check, in the module of the driver that
/// `$start().await` makes; each test gets a world of its own.
macro_rules! conformance {
    ($start:path) => {
        conformance!(@each $start;
            labels_are_added_and_removed => labels,
            open_issues_by_label_every_page_without_pulls => open_issues_by_label,
            get_issue_and_close_it => get_and_close_issue,
            comments_are_listed_and_created => comments,
            pulls_are_created_found_and_read => pulls,
            reviews_say_whether_they_count => reviews,
            combined_status_follows_ci => combined_status,
            merge_once_then_already_merged => merge,
            issue_keys_round_trip_and_urls_are_the_forges => keys_and_urls,
            write_access_is_told => write_access,
            a_forge_that_reports_changes_does => reports_changes,
        );
    };
    (@each $start:path; $($test:ident => $check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let driver = $start().await;
                super::checks::$check(&driver).await;
                super::Driver::assert_contract_kept(&driver);
            }
        )*
    };
}

// After the macro, which they invoke.
mod checks;
mod forgejo;
mod github;
mod local;
