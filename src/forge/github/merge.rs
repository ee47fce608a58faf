//! Merging a pull request on GitHub (`PUT …/pulls/{n}/merge` with the approved
//! head's `sha`) and deleting its branch afterwards (`DELETE …/git/refs/heads/…`).
//!
//! What GitHub's refusals mean here:
//! - `405` (not mergeable; also what a second merge gets): the pull request is
//!   read again. Merged counts as merged (`AlreadyMerged`); otherwise it is a
//!   `Conflict`, which asks the agent for a rebase.
//! - `409` (the head or the base moved while merging; GitHub says "try the
//!   merge again"): the pull request is read again. Merged is `AlreadyMerged`.
//!   A head other than the approved one is a `Conflict`, as for Forgejo and
//!   in the conformance contract: forgehand never merges a head it did not
//!   test. The same head means the base moved under the merge: that is
//!   `Unavailable`, a passing state the caller waits out and then looks again
//!   (the dev actor reads the pull request before every merge attempt, so it
//!   merges the head it sees then, or finds it moved).

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::GithubClient;
use super::wire::WirePull;
use crate::forge::{ForgeError, ForgeResult, MergeRequest, PrNumber};
use crate::http::redact;
use crate::http::retry::Replay;

impl GithubClient {
    pub(super) async fn merge(&self, n: PrNumber, req: &MergeRequest) -> ForgeResult<()> {
        let n_s = n.to_string();
        let url = self.api.repo_url(&["pulls", &n_s, "merge"], &[]);
        let body = json!({
            "sha": req.head_sha.0,
            "merge_method": req.method.as_str(),
        });
        let token = self.api.token().await?;
        // Safe to send again: a merge that landed makes the next attempt a 405
        // (and a moved head a 409), never a second merge.
        let refused = match self
            .api
            .status_only(&token, Method::PUT, url, Some(body), Replay::Safe)
            .await
        {
            Ok(_) => {
                if req.delete_branch {
                    self.delete_merged_branch(n).await;
                }
                return Ok(());
            }
            Err(e) => e,
        };
        let status = refused.status();
        if !matches!(
            status,
            Some(StatusCode::METHOD_NOT_ALLOWED | StatusCode::CONFLICT)
        ) {
            return Err(self.api.error(refused, &token));
        }
        let why = redact(refused.message().unwrap_or("no reason given"), &token);
        let pull: WirePull = self
            .api
            .get(self.api.repo_url(&["pulls", &n_s], &[]))
            .await?;
        if pull.merged() {
            return Err(ForgeError::AlreadyMerged);
        }
        let head = pull.head_sha().unwrap_or_default();
        if status == Some(StatusCode::METHOD_NOT_ALLOWED) {
            return Err(ForgeError::Conflict(format!(
                "pull request #{n} is not mergeable: {why}"
            )));
        }
        if head != req.head_sha.0 {
            return Err(ForgeError::Conflict(format!(
                "pull request #{n} is at {head}, not at the approved {}: {why}",
                req.head_sha
            )));
        }
        Err(ForgeError::Unavailable(format!(
            "PUT /repos/{}/pulls/{n}/merge: HTTP 409, GitHub asks to try again: {why}",
            self.api.repo_name()
        )))
    }

    /// Deletes the branch of pull request `n`, merged just now, when it is in
    /// this repository (a fork's branch of the same name is not ours). The
    /// merge stands whatever happens here, so a failure is only logged.
    async fn delete_merged_branch(&self, n: PrNumber) {
        let n_s = n.to_string();
        let pull: WirePull = match self.api.get(self.api.repo_url(&["pulls", &n_s], &[])).await {
            Ok(pull) => pull,
            Err(e) => {
                tracing::warn!(
                    "merged pull request #{n}, but could not read its branch to delete: {e}"
                );
                return;
            }
        };
        let Some(branch) = pull.head_branch_in(&self.api.repo_name()) else {
            return;
        };
        if let Err(e) = self.delete_ref(branch).await {
            tracing::warn!("merged pull request #{n}, but could not delete {branch}: {e}");
        }
    }

    /// `DELETE …/git/refs/heads/<name>`; a branch already gone is fine.
    pub(super) async fn delete_ref(&self, name: &str) -> ForgeResult<()> {
        // The ref keeps its slashes (`heads/fix/issue-1`): GitHub reads them as
        // the ref's own, as in its documentation's examples.
        let mut segments = vec!["git", "refs", "heads"];
        segments.extend(name.split('/'));
        let url = self.api.repo_url(&segments, &[]);
        let token = self.api.token().await?;
        match self
            .api
            .status_only(&token, Method::DELETE, url, None, Replay::Safe)
            .await
        {
            Ok(_) => Ok(()),
            // 422 "Reference does not exist" (and 404 from older servers).
            Err(e)
                if matches!(
                    e.status(),
                    Some(StatusCode::UNPROCESSABLE_ENTITY | StatusCode::NOT_FOUND)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(self.api.error(e, &token)),
        }
    }
}
