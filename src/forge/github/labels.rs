//! The label half of the GitHub client: which labels the repository has (GitHub
//! adds and removes them on issues by name, so only their existence matters),
//! and creating a missing one with forgehand's colour and a log line. GitHub
//! refuses a second label of the same name (whatever its case), so creating one
//! is safe to send again.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::wire::WireLabel;
use super::{GithubClient, PER_PAGE, array};
use crate::forge::ForgeResult;
use crate::forge::rights::label_color;
use crate::http::retry::Replay;

impl GithubClient {
    /// Lists every label of the repository into the cache.
    pub(super) async fn refresh_labels(&self) -> ForgeResult<()> {
        let url = self.api.repo_url(&["labels"], &[("per_page", PER_PAGE)]);
        let labels: Vec<WireLabel> = self.api.list(url, false, array).await?;
        let names = labels.into_iter().map(|l| l.name.to_lowercase()).collect();
        *self.labels.lock().expect("label cache poisoned") = Some(names);
        Ok(())
    }

    /// Which of `names` the repository lacks, read afresh.
    pub(super) async fn missing(&self, names: &[String]) -> ForgeResult<Vec<String>> {
        self.refresh_labels().await?;
        Ok(names
            .iter()
            .filter(|n| !self.has_label(n))
            .cloned()
            .collect())
    }

    /// Whether the repository is known to have label `name` (GitHub compares
    /// label names without regard to case).
    pub(super) fn has_label(&self, name: &str) -> bool {
        let cache = self.labels.lock().expect("label cache poisoned");
        cache
            .as_ref()
            .is_some_and(|names| names.contains(&name.to_lowercase()))
    }

    pub(super) async fn create_label(&self, name: &str) -> ForgeResult<()> {
        let body = json!({
            "name": name,
            "color": label_color(name),
            "description": "managed by forgehand",
        });
        let url = self.api.repo_url(&["labels"], &[]);
        let token = self.api.token().await?;
        match self
            .api
            .status_only(&token, Method::POST, url, Some(body), Replay::Safe)
            .await
        {
            Ok(_) => {
                tracing::info!(
                    "created the label {name:?} on {}, which lacked it",
                    self.api.repo_name()
                );
            }
            // It exists: someone made it meanwhile, or an earlier attempt of
            // ours landed without its answer.
            Err(e)
                if e.status() == Some(StatusCode::UNPROCESSABLE_ENTITY)
                    && e.message().is_some_and(|m| m.contains("already_exists")) => {}
            Err(e) => return Err(self.api.error(e, &token)),
        }
        self.labels
            .lock()
            .expect("label cache poisoned")
            .get_or_insert_default()
            .insert(name.to_lowercase());
        Ok(())
    }
}
