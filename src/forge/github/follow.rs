//! The lists `forge::changes` follows, as GitHub gives them: its issue list
//! holds pull requests too (with a `pull_request` key) and takes `since`,
//! so one look at what changed covers both.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::wire::{WireIssue, WirePull};
use super::{GithubClient, PAGE_ITEMS, PER_PAGE, array};
use crate::forge::changes::{self, Change, Listed, Source};
use crate::forge::{ForgeResult, Issue, PullRequest};

impl GithubClient {
    /// Every page of the issue list with `query`, conditionally; each
    /// issue's page remembered.
    async fn issue_list(&self, query: &[(&str, &str)]) -> ForgeResult<Vec<WireIssue>> {
        let mut query = query.to_vec();
        query.push(("per_page", PER_PAGE));
        let url = self.api.repo_url(&["issues"], &query);
        let issues: Vec<WireIssue> = self.api.list(url, true, array).await?;
        for issue in &issues {
            self.remember_url(issue);
        }
        Ok(issues)
    }
}

#[async_trait]
impl Source for GithubClient {
    async fn changed_since(
        &self,
        since: &str,
    ) -> ForgeResult<Vec<(Change, Option<DateTime<Utc>>)>> {
        let changed = self
            .issue_list(&[("state", "all"), ("since", since)])
            .await?;
        Ok(changes::changes(changed))
    }

    async fn labelled(&self, label: &str) -> ForgeResult<Vec<(Issue, Option<DateTime<Utc>>)>> {
        let listed = self
            .issue_list(&[("state", "open"), ("labels", label)])
            .await?;
        Ok(changes::issues(listed))
    }

    async fn open_pulls(&self) -> ForgeResult<Vec<PullRequest>> {
        let url = self
            .api
            .repo_url(&["pulls"], &[("state", "open"), ("per_page", PER_PAGE)]);
        let pulls: Vec<WirePull> = self.api.list(url, true, array).await?;
        Ok(pulls.into_iter().map(WirePull::into_domain).collect())
    }

    fn forget_looks(&self) {
        self.api.forget_pages(|url| url.contains("since="));
    }

    fn page_size(&self) -> usize {
        PAGE_ITEMS
    }
}

impl Listed for WireIssue {
    fn is_pull(&self) -> bool {
        WireIssue::is_pull(self)
    }

    fn number(&self) -> u64 {
        WireIssue::number(self)
    }

    fn updated_at(&self) -> Option<DateTime<Utc>> {
        WireIssue::updated_at(self)
    }

    fn into_issue(self) -> Issue {
        self.into_domain()
    }
}
