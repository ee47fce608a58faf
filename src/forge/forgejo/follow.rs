//! The lists `forge::changes` follows, as Forgejo gives them: its issue
//! list without `type` holds pull requests too (with a `pull_request` key),
//! so one look at what changed covers both.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::ForgejoClient;
use super::wire::{WireIssue, WirePull};
use crate::forge::changes::{self, Change, Listed, Source};
use crate::forge::{ForgeResult, Issue, PullRequest};

#[async_trait]
impl Source for ForgejoClient {
    async fn changed_since(
        &self,
        since: &str,
    ) -> ForgeResult<Vec<(Change, Option<DateTime<Utc>>)>> {
        let query = [("state", "all"), ("since", since)];
        let changed: Vec<WireIssue> = self.list_all_conditional(&["issues"], &query).await?;
        Ok(changes::changes(changed))
    }

    async fn labelled(&self, label: &str) -> ForgeResult<Vec<(Issue, Option<DateTime<Utc>>)>> {
        let query = [("state", "open"), ("type", "issues"), ("labels", label)];
        let listed: Vec<WireIssue> = self.list_all_conditional(&["issues"], &query).await?;
        Ok(changes::issues(listed))
    }

    async fn open_pulls(&self) -> ForgeResult<Vec<PullRequest>> {
        let pulls: Vec<WirePull> = self
            .list_all_conditional(&["pulls"], &[("state", "open")])
            .await?;
        Ok(pulls.into_iter().map(WirePull::into_domain).collect())
    }

    fn forget_looks(&self) {
        self.forget_pages(|url| url.contains("since="));
    }

    fn page_size(&self) -> usize {
        super::PAGE_LIMIT
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
