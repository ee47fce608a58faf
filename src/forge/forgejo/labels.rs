//! The label half of the Forgejo client: a name → id cache (the API adds and
//! removes labels by id) and creating a missing label exactly once, even when the
//! answer to its creation is lost.

use reqwest::StatusCode;
use serde_json::json;

use super::ForgejoClient;
use super::wire::WireLabel;
use crate::forge::ForgeResult;
use crate::forge::rights::label_color;
use crate::http::retry::CheckedError;

impl ForgejoClient {
    /// Refetches every label of the repository into the cache.
    pub(super) async fn refresh_labels(&self) -> ForgeResult<()> {
        let labels: Vec<WireLabel> = self.list_all(&["labels"], &[]).await?;
        let mut cache = self.labels.lock().expect("label cache poisoned");
        *cache = labels.into_iter().map(|l| (l.name, l.id)).collect();
        Ok(())
    }

    /// Which of `names` the repository lacks, read afresh.
    pub(super) async fn missing(&self, names: &[String]) -> ForgeResult<Vec<String>> {
        self.refresh_labels().await?;
        Ok(names
            .iter()
            .filter(|n| self.cached_label(n).is_none())
            .cloned()
            .collect())
    }

    pub(super) fn cached_label(&self, name: &str) -> Option<u64> {
        let cache = self.labels.lock().expect("label cache poisoned");
        cache.get(name).copied()
    }

    /// The id of label `name`, refreshing the cache once on a miss.
    pub(super) async fn label_id(&self, name: &str) -> ForgeResult<Option<u64>> {
        if let Some(id) = self.cached_label(name) {
            return Ok(Some(id));
        }
        self.refresh_labels().await?;
        Ok(self.cached_label(name))
    }

    pub(super) async fn create_label(&self, name: &str) -> ForgeResult<u64> {
        let body = json!({
            "name": name,
            "color": format!("#{}", label_color(name)),
            "description": "managed by forgehand",
        });
        let url = self.repo_url(&["labels"], &[]);
        // Forgejo accepts a second label of the same name: an attempt that may have
        // landed is looked for in a fresh list before the label is created again.
        let landed = || async {
            self.refresh_labels().await?;
            Ok(self.cached_label(name))
        };
        match self
            .create_checked(url, body, |l: WireLabel| l.id, landed)
            .await
        {
            Ok(id) => {
                self.labels
                    .lock()
                    .expect("label cache poisoned")
                    .insert(name.to_string(), id);
                Ok(id)
            }
            // Someone created it meanwhile: use theirs.
            Err(CheckedError::Request(e))
                if matches!(
                    e.status(),
                    Some(StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY)
                ) =>
            {
                self.refresh_labels().await?;
                self.cached_label(name).ok_or_else(|| self.error(e))
            }
            Err(e) => Err(self.checked_error(e)),
        }
    }
}
