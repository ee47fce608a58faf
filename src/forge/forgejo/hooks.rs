//! The repository's webhooks, for `forgehand doctor`. Forgejo's API lists
//! them but says nothing of their deliveries (its web page does).

use std::collections::HashMap;

use serde::Deserialize;

use super::ForgejoClient;
use crate::forge::{ForgeResult, Webhook};

#[derive(Deserialize)]
struct WireHook {
    id: u64,
    #[serde(default)]
    active: bool,
    /// `url` (and `content_type`) of the target.
    #[serde(default)]
    config: HashMap<String, String>,
}

impl ForgejoClient {
    /// Every webhook of the repository (reading them takes admin rights).
    pub(super) async fn hooks(&self) -> ForgeResult<Vec<Webhook>> {
        let hooks: Vec<WireHook> = self.list_all(&["hooks"], &[]).await?;
        Ok(hooks
            .into_iter()
            .map(|mut h| Webhook {
                id: h.id,
                url: h.config.remove("url").unwrap_or_default(),
                active: h.active,
            })
            .collect())
    }
}
