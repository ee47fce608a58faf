//! The repository's webhooks and their latest deliveries, for `forgehand
//! doctor` (reading them takes admin rights on the repository).

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{GithubClient, array};
use crate::forge::{Delivery, ForgeResult, Webhook};

#[derive(Deserialize)]
struct WireHook {
    id: u64,
    #[serde(default)]
    active: bool,
    config: WireHookConfig,
}

#[derive(Deserialize)]
struct WireHookConfig {
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct WireDelivery {
    delivered_at: DateTime<Utc>,
    status: String,
    status_code: u16,
}

/// How many of a hook's latest deliveries are looked at.
const DELIVERIES: &str = "10";

impl GithubClient {
    pub(super) async fn hooks(&self) -> ForgeResult<Vec<Webhook>> {
        let url = self
            .api
            .repo_url(&["hooks"], &[("per_page", super::PER_PAGE)]);
        let hooks: Vec<WireHook> = self.api.list(url, false, array).await?;
        Ok(hooks
            .into_iter()
            .map(|h| Webhook {
                id: h.id,
                url: h.config.url.unwrap_or_default(),
                active: h.active,
            })
            .collect())
    }

    /// The hook's latest deliveries, newest first (one page: only the
    /// latest matter).
    pub(super) async fn deliveries(&self, id: u64) -> ForgeResult<Vec<Delivery>> {
        let id = id.to_string();
        let url = self
            .api
            .repo_url(&["hooks", &id, "deliveries"], &[("per_page", DELIVERIES)]);
        let mut deliveries: Vec<WireDelivery> = self.api.get(url).await?;
        deliveries.sort_by_key(|d| std::cmp::Reverse(d.delivered_at));
        Ok(deliveries
            .into_iter()
            .map(|d| Delivery {
                at: d.delivered_at,
                code: d.status_code,
                status: d.status,
            })
            .collect())
    }
}
